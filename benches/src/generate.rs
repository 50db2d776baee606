//! A deterministic generator of Discogs-shaped records.
//!
//! The shapes follow what the real dumps hold. For releases, the frequencies and list
//! lengths were measured on the 4,229 releases of the 2025-11 excerpt in
//! `shared/fixtures/nicolascalo__…/discogs_20251101_releases_sample_100000.xml.gz`
//! (with `examples/dump_json` and a short script): every release has artists (1.1 on
//! average), labels (1.2), one format, genres and styles; 82% have extra artists, 76%
//! notes (253 characters on average), 84% a master, 80% identifiers, 81% videos (147
//! character descriptions), 76% companies; tracks carry a duration 69% of the time,
//! track artists 27%, track credits 30%. That excerpt holds the oldest ids, which are
//! richer than the average record (4.5 KB of XML against about 3.0 KB over the whole
//! 2026 dump), so list lengths are scaled to land on the whole dump's average size.
//! Text mixes ASCII words, accented and non-Latin names, `&`, Discogs markup and
//! `&#13;` line ends, as the dumps do. Artists, labels and masters follow the same
//! approach at their own sizes.
//!
//! The same seed always gives the same records.

use std::borrow::Cow;

use discogs_model::{
    Artist, Company, Credit, EntityRef, Format, Identifier, Label, Master, Record, RecordKind,
    Release, ReleaseLabel, Track, Video,
};

/// The highest id a generated reference to each kind may take.
///
/// [`IdSpace::FULL_DUMP`] spreads references over a whole monthly dump's ids, so almost
/// none of them lands on a generated record (right for benchmarks of one kind);
/// [`IdSpace::matching`] keeps them within the id range a generator of each kind covers
/// for a given number of records; since the ids have gaps, about half of those still miss.
/// [`IdPools::connect`] points references at generated records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdSpace {
    /// Highest referenced artist id.
    pub artists: u64,
    /// Highest referenced label id.
    pub labels: u64,
    /// Highest referenced master id.
    pub masters: u64,
    /// Highest referenced release id.
    pub releases: u64,
}

impl IdSpace {
    /// About the id ranges of a 2026 dump.
    pub const FULL_DUMP: Self = Self {
        artists: 10_000_000,
        labels: 2_500_000,
        masters: 3_000_000,
        releases: 30_000_000,
    };

    /// References within the ids of `artists`, `labels`, `masters` and `releases` records
    /// made by [`Generator`]s (whose ids climb by 2 on average, with gaps).
    #[must_use]
    pub fn matching(artists: u64, labels: u64, masters: u64, releases: u64) -> Self {
        let span = |n: u64| (2 * n).max(1);
        Self {
            artists: span(artists),
            labels: span(labels),
            masters: span(masters),
            releases: span(releases),
        }
    }

    fn max(self, kind: RecordKind) -> u64 {
        match kind {
            RecordKind::Artist => self.artists,
            RecordKind::Label => self.labels,
            RecordKind::Master => self.masters,
            RecordKind::Release => self.releases,
        }
        .max(1)
    }
}

/// The ids that [`Generator`]s of each kind produce, and generated references pointed at
/// them, so that records refer to records that exist, as in a real dump.
///
/// A generator's own references are drawn at random within an [`IdSpace`]; its ids climb
/// with gaps, so about half of such references miss every generated record. Loaded into a
/// graph, each miss becomes a stub (a node that only references create), which a real
/// dump, whose references point at its own records, hardly has. [`IdPools::connect`]
/// moves each reference onto a generated record (chosen by the drawn id, so the same seed
/// gives the same data), and can leave a chosen few pointing past the last id.
///
/// ```
/// use discogs_benches::generate::{Generator, IdPools, IdSpace};
/// use discogs_model::{Record, RecordKind};
///
/// let pools = IdPools::generated(7, IdSpace::FULL_DUMP, |_| 100);
/// let mut release = Generator::new(RecordKind::Release, 7).record();
/// pools.connect(&mut release, 0);
/// let Record::Release(r) = release else { unreachable!() };
/// let artists = pools.of(RecordKind::Artist);
/// assert!(r.artists.iter().filter_map(|c| c.id).all(|id| artists.contains(&id)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdPools {
    /// Ids of the generated artists, in order.
    pub artists: Vec<u64>,
    /// Ids of the generated labels, in order.
    pub labels: Vec<u64>,
    /// Ids of the generated masters, in order.
    pub masters: Vec<u64>,
    /// Ids of the generated releases, in order.
    pub releases: Vec<u64>,
}

impl IdPools {
    /// The ids of the first `count(kind)` records of `Generator::within(kind, seed, ids)`,
    /// for each kind.
    #[must_use]
    pub fn generated(seed: u64, ids: IdSpace, count: impl Fn(RecordKind) -> u64) -> Self {
        let pool = |kind| {
            Generator::within(kind, seed, ids)
                .take(usize::try_from(count(kind)).unwrap_or(usize::MAX))
                .map(|r| r.id())
                .collect()
        };
        Self {
            artists: pool(RecordKind::Artist),
            labels: pool(RecordKind::Label),
            masters: pool(RecordKind::Master),
            releases: pool(RecordKind::Release),
        }
    }

    /// The ids of `kind`.
    #[must_use]
    pub fn of(&self, kind: RecordKind) -> &[u64] {
        match kind {
            RecordKind::Artist => &self.artists,
            RecordKind::Label => &self.labels,
            RecordKind::Master => &self.masters,
            RecordKind::Release => &self.releases,
        }
    }

    /// Points every reference of `record` (aliases, members, groups, parent and sublabels,
    /// credits, labels, master) at a generated record of its kind, and a master's main
    /// release at a release of its own (distinct masters get distinct releases, as in
    /// the dumps, where a release belongs to one master at most). With `dangling` > 0, a
    /// reference whose drawn id is a multiple of `dangling` points past the last
    /// generated id instead, so that about one in `dangling` stays a stub. A kind with no
    /// generated ids keeps its references.
    pub fn connect(&self, record: &mut Record<'_>, dangling: u64) {
        let point = |id: &mut Option<u64>, kind: RecordKind| {
            let pool = self.of(kind);
            let (Some(v), Some(last)) = (id.as_mut(), pool.last()) else {
                return;
            };
            *v = if dangling > 0 && *v % dangling == 0 {
                last + *v
            } else {
                pool[usize::try_from(*v).unwrap_or(0) % pool.len()]
            };
        };
        match record {
            Record::Artist(a) => {
                for r in a
                    .aliases
                    .iter_mut()
                    .chain(&mut a.members)
                    .chain(&mut a.groups)
                {
                    point(&mut r.id, RecordKind::Artist);
                }
            }
            Record::Label(l) => {
                for r in l.sublabels.iter_mut().chain(l.parent_label.as_mut()) {
                    point(&mut r.id, RecordKind::Label);
                }
            }
            Record::Master(m) => {
                if let (Ok(i), false) =
                    (self.masters.binary_search(&m.id), self.releases.is_empty())
                {
                    m.main_release =
                        Some(self.releases[i * self.releases.len() / self.masters.len()]);
                }
                for c in &mut m.artists {
                    point(&mut c.id, RecordKind::Artist);
                }
            }
            Record::Release(r) => {
                for c in r.artists.iter_mut().chain(&mut r.extra_artists) {
                    point(&mut c.id, RecordKind::Artist);
                }
                for l in &mut r.labels {
                    point(&mut l.id, RecordKind::Label);
                }
                point(&mut r.master_id, RecordKind::Master);
            }
        }
    }
}

/// SplitMix64: small, fast, and good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    ids: IdSpace,
}

impl Rng {
    /// A generator seeded with `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed,
            ids: IdSpace::FULL_DUMP,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A count in `0..n`.
    pub fn upto(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).unwrap_or(0)
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        // 53 random bits as a fraction in [0, 1).
        let bits = self.next_u64() >> 11;
        (bits as f64) / ((1u64 << 53) as f64) < p
    }

    /// One of `items`.
    pub fn pick<'t>(&mut self, items: &[&'t str]) -> &'t str {
        items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }

    /// A count with mean about `mean`, at least `min`, at most `max` (geometric).
    pub fn count(&mut self, mean: f64, min: usize, max: usize) -> usize {
        let mut n = min;
        let p = 1.0 / (1.0 + mean - min as f64);
        while n < max && !self.chance(p) {
            n += 1;
        }
        n
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ra", "to", "su", "vi", "de", "an", "el", "or", "un", "ber", "son",
    "ton", "mar", "lin", "strom", "nez", "o", "der", "ska", "rock", "funk", "dub", "tech", "no",
    "house", "jazz", "soul", "vox",
];
const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "in",
    "love",
    "night",
    "dance",
    "remix",
    "original",
    "mix",
    "version",
    "edit",
    "live",
    "sound",
    "system",
    "music",
    "records",
    "vol.",
    "part",
    "dream",
    "city",
    "blue",
    "red",
    "black",
    "&",
    "feat.",
    "[a=Someone]",
    "[l=Label]",
    "(2)",
    "at",
    "on",
    "for",
    "with",
    "from",
];
/// Non-ASCII syllables and words: rare, as in the dumps (about 0.3-0.5% of the bytes
/// of the real excerpts are not ASCII).
const ACCENTED: &[&str] = &["ström", "ñez", "ø", "ä", "é", "ü"];
const FOREIGN: &[&str] = &["Ⅱ", "Москва", "東京", "São", "Köln", "Ελλάδα"];
const GENRES: &[&str] = &[
    "Electronic",
    "Rock",
    "Pop",
    "Jazz",
    "Funk / Soul",
    "Hip Hop",
    "Classical",
    "Latin",
    "Reggae",
];
const STYLES: &[&str] = &[
    "House",
    "Techno",
    "Deep House",
    "Ambient",
    "Synth-pop",
    "Disco",
    "Punk",
    "Indie Rock",
    "Soul",
    "Dub",
    "Trance",
];
const FORMATS: &[&str] = &[
    "Vinyl", "CD", "File", "Cassette", "CDr", "Box Set", "DVD", "Shellac",
];
const DESCRIPTIONS: &[&str] = &[
    "12\"",
    "33 ⅓ RPM",
    "LP",
    "Album",
    "Single",
    "EP",
    "Compilation",
    "Reissue",
    "Stereo",
];
const COUNTRIES: &[&str] = &[
    "US",
    "UK",
    "Germany",
    "France",
    "Netherlands",
    "Japan",
    "Sweden",
    "Europe",
    "Italy",
];
const QUALITY: &[&str] = &[
    "Needs Vote",
    "Correct",
    "Complete and Correct",
    "Needs Minor Changes",
];
const ROLES: &[&str] = &[
    "Written-By",
    "Producer",
    "Mastered By",
    "Lacquer Cut By",
    "Design",
    "Photography By",
    "Mixed By",
    "Remix",
];
const ID_TYPES: &[&str] = &[
    "Barcode",
    "Matrix / Runout",
    "Rights Society",
    "Label Code",
    "Mastering SID Code",
];
const COMPANY_ROLES: &[(u32, &str)] = &[
    (17, "Pressed By"),
    (21, "Published By"),
    (13, "Phonographic Copyright (p)"),
    (14, "Copyright (c)"),
    (9, "Distributed By"),
    (29, "Mastered At"),
];

type S = Cow<'static, str>;

fn name(rng: &mut Rng, syllables: usize) -> String {
    let mut s = String::new();
    for i in 0..syllables {
        let syl = if rng.chance(0.01) {
            rng.pick(ACCENTED)
        } else {
            rng.pick(SYLLABLES)
        };
        if i == 0 {
            let mut c = syl.chars();
            if let Some(first) = c.next() {
                s.extend(first.to_uppercase());
                s.push_str(c.as_str());
            }
        } else {
            s.push_str(syl);
        }
    }
    s
}

fn person(rng: &mut Rng) -> S {
    let first = 2 + rng.upto(2);
    let last = 2 + rng.upto(2);
    format!("{} {}", name(rng, first), name(rng, last)).into()
}

fn words(rng: &mut Rng, n: usize) -> S {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        if rng.chance(0.3) {
            s.push_str(&name(rng, 2));
        } else if rng.chance(0.004) {
            s.push_str(rng.pick(FOREIGN));
        } else {
            s.push_str(rng.pick(WORDS));
        }
    }
    s.into()
}

/// Long text of about `chars` characters, with paragraphs as CRLF (written `&#13;`).
fn prose(rng: &mut Rng, chars: usize) -> S {
    let mut s = String::new();
    while s.len() < chars {
        let n = 4 + rng.upto(10);
        s.push_str(&words(rng, n));
        s.push_str(if rng.chance(0.2) { ".\r\n\r\n" } else { ". " });
    }
    s.trim_end().to_owned().into()
}

fn title(rng: &mut Rng) -> S {
    let n = 1 + rng.upto(4);
    words(rng, n)
}

/// A reference to a record of `kind`, within the generator's [`IdSpace`].
fn id(rng: &mut Rng, kind: RecordKind) -> u64 {
    let max = rng.ids.max(kind);
    1 + rng.below(max)
}

/// The main release of master `master`: a release is the main release of at most one
/// master in the dumps (it belongs to that master), so masters with distinct ids get
/// distinct main releases, each within the block of release ids that falls to its id.
fn main_release(rng: &mut Rng, master: u64) -> u64 {
    let releases = rng.ids.max(RecordKind::Release);
    let block = (releases / rng.ids.max(RecordKind::Master)).max(1);
    1 + (master.saturating_sub(1) * block + rng.below(block)) % releases
}

/// `f(rng)` with probability `p`, else an empty list.
fn some<T>(rng: &mut Rng, p: f64, f: impl FnOnce(&mut Rng) -> Vec<T>) -> Vec<T> {
    if rng.chance(p) {
        f(rng)
    } else {
        Vec::new()
    }
}

fn maybe(rng: &mut Rng, p: f64, f: impl FnOnce(&mut Rng) -> S) -> Option<S> {
    rng.chance(p).then(|| f(rng))
}

fn credit(rng: &mut Rng, role: bool) -> Credit<'static> {
    Credit {
        id: rng.chance(0.95).then(|| id(rng, RecordKind::Artist)),
        name: person(rng),
        anv: maybe(rng, if role { 0.34 } else { 0.1 }, person),
        join: None,
        role: role.then(|| rng.pick(ROLES).into()),
        tracks: maybe(rng, if role { 0.09 } else { 0.0 }, |r| {
            format!("A{}, B{}", 1 + r.below(3), 1 + r.below(3)).into()
        }),
    }
}

/// `(mean, max)` credits, at least one.
fn credits(rng: &mut Rng, (mean, max): (f64, usize), role: bool) -> Vec<Credit<'static>> {
    let n = rng.count(mean, 1, max);
    let mut list: Vec<_> = (0..n).map(|_| credit(rng, role)).collect();
    let len = list.len();
    if !role {
        for c in list.iter_mut().take(len.saturating_sub(1)) {
            c.join = Some(rng.pick(&[",", "&", "Feat.", "/", "Vs"]).into());
        }
    }
    list
}

fn video(rng: &mut Rng) -> Video<'static> {
    Video {
        src: Some(
            format!(
                "https://www.youtube.com/watch?v={:011x}",
                rng.next_u64() >> 20
            )
            .into(),
        ),
        duration: Some(u32::try_from(rng.below(600)).unwrap_or(0)),
        embed: true,
        title: Some(words(rng, 4)),
        description: maybe(rng, 0.9, |r| prose(r, 120)),
    }
}

fn release(rng: &mut Rng, id_: u64) -> Release<'static> {
    let released = maybe(rng, 0.98, |r| {
        let y = 1950 + r.below(75);
        match r.below(3) {
            0 => format!("{y}"),
            1 => format!("{y}-{:02}-00", 1 + r.below(12)),
            _ => format!("{y}-{:02}-{:02}", 1 + r.below(12), 1 + r.below(28)),
        }
        .into()
    });
    let year = released
        .as_deref()
        .and_then(discogs_model::year_from_released);
    let n_tracks = rng.count(5.0, 1, 40);
    let tracklist = (0..n_tracks)
        .map(|i| Track {
            position: Some(
                format!("{}{}", if i < n_tracks / 2 { 'A' } else { 'B' }, 1 + i % 6).into(),
            ),
            title: title(rng),
            duration: maybe(rng, 0.69, |r| {
                format!("{}:{:02}", 2 + r.below(6), r.below(60)).into()
            }),
            artists: some(rng, 0.27, |rng| credits(rng, (1.0, 1), false)),
            extra_artists: some(rng, 0.3, |rng| credits(rng, (1.5, 6), true)),
            sub_tracks: Vec::new(),
        })
        .collect();
    let master_id = rng.chance(0.84).then(|| id(rng, RecordKind::Master));
    Release {
        id: id_,
        status: Some("Accepted".into()),
        title: title(rng),
        artists: credits(rng, (1.1, 5), false),
        labels: (0..rng.count(1.2, 1, 4))
            .map(|_| ReleaseLabel {
                id: Some(id(rng, RecordKind::Label)),
                name: words(rng, 2),
                catno: Some(
                    format!("{}{:03}", name(rng, 1).to_uppercase(), rng.below(1000)).into(),
                ),
            })
            .collect(),
        series: some(rng, 0.07, |rng| {
            vec![ReleaseLabel {
                id: Some(id(rng, RecordKind::Label)),
                name: words(rng, 2),
                catno: Some("Vol. 1".into()),
            }]
        }),
        extra_artists: some(rng, 0.82, |rng| credits(rng, (2.4, 60), true)),
        formats: vec![Format {
            name: rng.pick(FORMATS).into(),
            qty: Some(format!("{}", 1 + rng.below(2)).into()),
            text: maybe(rng, 0.2, |r| r.pick(&["Red", "180g", "Gatefold"]).into()),
            descriptions: (0..rng.count(2.0, 1, 5))
                .map(|_| S::from(rng.pick(DESCRIPTIONS)))
                .collect(),
        }],
        genres: (0..rng.count(1.05, 1, 3))
            .map(|_| S::from(rng.pick(GENRES)))
            .collect(),
        styles: (0..rng.count(2.0, 1, 5))
            .map(|_| S::from(rng.pick(STYLES)))
            .collect(),
        country: Some(rng.pick(COUNTRIES).into()),
        released,
        year,
        notes: maybe(rng, 0.76, |r| prose(r, 180)),
        data_quality: Some(rng.pick(QUALITY).into()),
        is_main_release: master_id.is_some() && rng.chance(0.3),
        master_id,
        tracklist,
        identifiers: some(rng, 0.8, |rng| {
            (0..rng.count(2.5, 1, 20))
                .map(|_| Identifier {
                    kind: Some(rng.pick(ID_TYPES).into()),
                    description: maybe(rng, 0.68, |r| words(r, 2)),
                    value: Some(
                        format!("{} {:04}", name(rng, 2).to_uppercase(), rng.below(10_000)).into(),
                    ),
                })
                .collect()
        }),
        videos: some(rng, 0.81, |rng| {
            (0..rng.count(2.2, 1, 20)).map(|_| video(rng)).collect()
        }),
        companies: some(rng, 0.76, |rng| {
            (0..rng.count(2.5, 1, 15))
                .map(|_| {
                    let (entity_type, role) = COMPANY_ROLES
                        [usize::try_from(rng.below(COMPANY_ROLES.len() as u64)).unwrap_or(0)];
                    let cid = id(rng, RecordKind::Label);
                    Company {
                        id: Some(cid),
                        name: words(rng, 2),
                        catno: maybe(rng, 0.06, |r| words(r, 1)),
                        entity_type: Some(entity_type),
                        entity_type_name: Some(role.into()),
                        resource_url: Some(format!("https://api.discogs.com/labels/{cid}").into()),
                    }
                })
                .collect()
        }),
        images: Vec::new(),
    }
}

/// `(mean, max)` references, at least one.
fn refs(rng: &mut Rng, (mean, max): (f64, usize)) -> Vec<EntityRef<'static>> {
    let n = rng.count(mean, 1, max);
    (0..n)
        .map(|_| EntityRef {
            id: Some(id(rng, RecordKind::Artist)),
            name: person(rng),
        })
        .collect()
}

fn artist(rng: &mut Rng, id_: u64) -> Artist<'static> {
    Artist {
        id: id_,
        name: person(rng),
        real_name: maybe(rng, 0.4, person),
        profile: maybe(rng, 0.5, |r| prose(r, 160)),
        data_quality: Some(rng.pick(QUALITY).into()),
        urls: some(rng, 0.3, |rng| {
            (0..rng.count(1.5, 1, 8))
                .map(|i| {
                    S::from(format!(
                        "https://www.{}.com/{i}",
                        name(rng, 3).to_lowercase()
                    ))
                })
                .collect()
        }),
        name_variations: some(rng, 0.4, |rng| {
            (0..rng.count(2.0, 1, 10)).map(|_| person(rng)).collect()
        }),
        aliases: some(rng, 0.2, |rng| refs(rng, (1.5, 10))),
        members: some(rng, 0.05, |rng| refs(rng, (3.0, 12))),
        groups: some(rng, 0.15, |rng| refs(rng, (1.5, 8))),
        images: Vec::new(),
    }
}

fn label(rng: &mut Rng, id_: u64) -> Label<'static> {
    Label {
        id: id_,
        name: words(rng, 2),
        contact_info: maybe(rng, 0.2, |r| prose(r, 80)),
        profile: maybe(rng, 0.4, |r| prose(r, 200)),
        data_quality: Some(rng.pick(QUALITY).into()),
        parent_label: rng.chance(0.15).then(|| EntityRef {
            id: Some(id(rng, RecordKind::Label)),
            name: words(rng, 2),
        }),
        urls: some(rng, 0.3, |rng| {
            vec![format!("https://{}.example", name(rng, 3).to_lowercase()).into()]
        }),
        sublabels: some(rng, 0.1, |rng| {
            (0..rng.count(2.0, 1, 20))
                .map(|_| EntityRef {
                    id: Some(id(rng, RecordKind::Label)),
                    name: words(rng, 2),
                })
                .collect()
        }),
        images: Vec::new(),
    }
}

fn master(rng: &mut Rng, id_: u64) -> Master<'static> {
    let mut artists = credits(rng, (1.1, 4), false);
    if let Some(first) = artists.first_mut() {
        first.join.get_or_insert_with(|| ",".into());
    }
    Master {
        id: id_,
        title: title(rng),
        main_release: Some(main_release(rng, id_)),
        year: rng
            .chance(0.99)
            .then(|| u16::try_from(1950 + rng.below(75)).unwrap_or(2000)),
        artists,
        genres: (0..rng.count(1.05, 1, 3))
            .map(|_| S::from(rng.pick(GENRES)))
            .collect(),
        styles: (0..rng.count(2.0, 1, 5))
            .map(|_| S::from(rng.pick(STYLES)))
            .collect(),
        notes: maybe(rng, 0.13, |r| prose(r, 120)),
        data_quality: Some(rng.pick(QUALITY).into()),
        videos: some(rng, 0.45, |rng| {
            (0..rng.count(2.5, 1, 30)).map(|_| video(rng)).collect()
        }),
        images: Vec::new(),
    }
}

/// Generates records of one kind, with ids counting up from 1.
#[derive(Debug, Clone)]
pub struct Generator {
    kind: RecordKind,
    rng: Rng,
    next_id: u64,
}

impl Generator {
    /// A generator of `kind` records from `seed`.
    #[must_use]
    pub fn new(kind: RecordKind, seed: u64) -> Self {
        Self::within(kind, seed, IdSpace::FULL_DUMP)
    }

    /// A generator of `kind` records from `seed` whose references stay within `ids`.
    #[must_use]
    pub fn within(kind: RecordKind, seed: u64, ids: IdSpace) -> Self {
        let mut rng = Rng::new(seed ^ u64::from(kind.code()));
        rng.ids = ids;
        Self {
            kind,
            rng,
            next_id: 1,
        }
    }

    /// The next record.
    pub fn record(&mut self) -> Record<'static> {
        let id = self.next_id;
        // Ids have gaps, as in the dumps (deleted and merged entries).
        self.next_id += 1 + self.rng.below(3);
        let rng = &mut self.rng;
        match self.kind {
            RecordKind::Artist => Record::Artist(artist(rng, id)),
            RecordKind::Label => Record::Label(label(rng, id)),
            RecordKind::Master => Record::Master(master(rng, id)),
            RecordKind::Release => Record::Release(release(rng, id)),
        }
    }
}

impl Iterator for Generator {
    type Item = Record<'static>;

    fn next(&mut self) -> Option<Record<'static>> {
        Some(self.record())
    }
}
