//! Writing records back as dump XML, in the layout of any format era.
//!
//! The eras differ in layout, not in data: attribute order, how empty elements look,
//! whether unlinked credits carry `<id>0</id>`, whether every release has a
//! `<master_id>`, how non-ASCII text is written. Reading any era's output gives back the
//! same records with the same hashes, which the test suite checks on generated records.
//! The benchmark generator uses this module to write dumps of any size.

use std::io::{self, Write};

use discogs_model::{
    Artist, Company, Credit, EntityRef, Format, Identifier, Image, Label, Master, Record,
    RecordKind, Release, ReleaseLabel, Track, Video,
};

/// A dump format era (see the dump format notes in the repository).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    /// Up to 2019: attributes in alphabetical order, empty elements as `<x></x>`,
    /// unlinked credits as `<id>0</id>`, `<master_id>` only when there is a master.
    E1,
    /// 2020 to mid-2024, as re-serialised by lxml: `type uri uri150 width height`
    /// attribute order, empty elements self-closed, non-ASCII as numeric references,
    /// bare `<id>` elements among group members.
    E2,
    /// Since December 2024: empty elements and attributes left out, unlinked credits
    /// without `<id>`, every release with a `<master_id>` (`0` for none).
    E3,
}

/// How to lay out the XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// The era whose conventions to follow.
    pub era: Era,
    /// Indent nested elements, one per line (as in hand-edited excerpts), instead of one
    /// record per line (as in the dumps).
    pub pretty: bool,
}

impl Layout {
    /// The era's layout, one record per line.
    #[must_use]
    pub fn new(era: Era) -> Self {
        Self { era, pretty: false }
    }
}

/// Writes a dump file: the root element, records, the closing root tag.
#[derive(Debug)]
pub struct DumpWriter<W: Write> {
    inner: W,
    kind: RecordKind,
    layout: Layout,
    buf: Vec<u8>,
}

impl<W: Write> DumpWriter<W> {
    /// Starts a dump of `kind` records (writes the root start tag).
    ///
    /// # Errors
    ///
    /// When writing fails.
    pub fn new(mut inner: W, kind: RecordKind, layout: Layout) -> io::Result<Self> {
        writeln!(inner, "<{}>", kind.plural())?;
        Ok(Self {
            inner,
            kind,
            layout,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Writes one record, followed by a newline.
    ///
    /// # Errors
    ///
    /// When writing fails, or `InvalidInput` when the record is not of the dump's kind.
    pub fn write(&mut self, record: &Record<'_>) -> io::Result<()> {
        if record.kind() != self.kind {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a {} record does not belong in a {} dump",
                    record.kind(),
                    self.kind
                ),
            ));
        }
        self.buf.clear();
        write_record(record, self.layout, &mut self.buf);
        self.buf.push(b'\n');
        self.inner.write_all(&self.buf)
    }

    /// Closes the root element and returns the writer.
    ///
    /// # Errors
    ///
    /// When writing fails.
    pub fn finish(mut self) -> io::Result<W> {
        writeln!(self.inner, "</{}>", self.kind.plural())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Appends `record` as XML in `layout` to `out`.
pub fn write_record(record: &Record<'_>, layout: Layout, out: &mut Vec<u8>) {
    let mut x = Xml {
        out,
        layout,
        depth: 0,
    };
    match record {
        Record::Artist(r) => x.artist(r),
        Record::Label(r) => x.label(r),
        Record::Master(r) => x.master(r),
        Record::Release(r) => x.release(r),
    }
}

struct Xml<'o> {
    out: &'o mut Vec<u8>,
    layout: Layout,
    depth: usize,
}

type Attr<'v> = (&'static str, Option<&'v str>);

impl Xml<'_> {
    fn newline(&mut self) {
        if self.layout.pretty {
            self.out.push(b'\n');
            self.out.extend(std::iter::repeat_n(b'\t', self.depth));
        }
    }

    fn escape(&mut self, text: &str, attr: bool) {
        let ascii_only = self.layout.era == Era::E2;
        let mut last = 0;
        for (i, c) in text.char_indices() {
            let rep: Option<String> = match c {
                '&' => Some("&amp;".into()),
                '<' => Some("&lt;".into()),
                '>' => Some("&gt;".into()),
                '"' if attr => Some("&quot;".into()),
                '\n' if attr => Some("&#10;".into()),
                '\t' if attr => Some("&#9;".into()),
                '\r' => Some("&#13;".into()),
                c if ascii_only && !c.is_ascii() => Some(format!("&#{};", u32::from(c))),
                _ => None,
            };
            if let Some(rep) = rep {
                self.out.extend_from_slice(&text.as_bytes()[last..i]);
                self.out.extend_from_slice(rep.as_bytes());
                last = i + c.len_utf8();
            }
        }
        self.out.extend_from_slice(&text.as_bytes()[last..]);
    }

    /// `<name a="v" …` with the era's attribute order and treatment of missing values.
    fn tag_open(&mut self, name: &str, attrs: &[Attr<'_>]) {
        self.newline();
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        let mut attrs: Vec<Attr<'_>> = attrs.to_vec();
        if self.layout.era == Era::E1 {
            attrs.sort_by_key(|(k, _)| *k);
        }
        for (k, v) in attrs {
            let v = match (v, self.layout.era) {
                (Some(v), _) if !v.is_empty() => v,
                (_, Era::E2) => "",
                _ => continue,
            };
            self.out.push(b' ');
            self.out.extend_from_slice(k.as_bytes());
            self.out.extend_from_slice(b"=\"");
            self.escape(v, true);
            self.out.push(b'"');
        }
    }

    fn empty(&mut self, name: &str, attrs: &[Attr<'_>]) {
        self.tag_open(name, attrs);
        if self.layout.era == Era::E1 {
            self.out.extend_from_slice(b"></");
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(b'>');
        } else {
            self.out.extend_from_slice(b"/>");
        }
    }

    /// A text element; `None` or empty text follows the era (`<x></x>`, `<x/>`, nothing).
    fn leaf_attrs(&mut self, name: &str, attrs: &[Attr<'_>], text: Option<&str>) {
        match text.filter(|t| !t.is_empty()) {
            Some(t) => {
                self.tag_open(name, attrs);
                self.out.push(b'>');
                self.escape(t, false);
                self.out.extend_from_slice(b"</");
                self.out.extend_from_slice(name.as_bytes());
                self.out.push(b'>');
            }
            None if self.layout.era == Era::E3 && attrs.iter().all(|(_, v)| v.is_none()) => {}
            None => self.empty(name, attrs),
        }
    }

    fn leaf(&mut self, name: &str, text: Option<&str>) {
        self.leaf_attrs(name, &[], text);
    }

    fn number(&mut self, name: &str, n: Option<u64>) {
        let text = n.map(|n| n.to_string());
        self.leaf(name, text.as_deref());
    }

    /// A container: nothing in E3 when empty, an empty element otherwise.
    fn list<T>(&mut self, name: &str, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        if items.is_empty() {
            if self.layout.era != Era::E3 {
                self.empty(name, &[]);
            }
            return;
        }
        self.tag_open(name, &[]);
        self.out.push(b'>');
        self.depth += 1;
        for i in items {
            item(self, i);
        }
        self.depth -= 1;
        self.close(name);
    }

    fn close(&mut self, name: &str) {
        self.newline();
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
    }

    fn start(&mut self, name: &str, attrs: &[Attr<'_>]) {
        self.tag_open(name, attrs);
        self.out.push(b'>');
        self.depth += 1;
    }

    fn end(&mut self, name: &str) {
        self.depth -= 1;
        self.close(name);
    }

    fn texts(&mut self, list: &str, item: &str, items: &[std::borrow::Cow<'_, str>]) {
        self.list(list, items, |x, t| x.leaf(item, Some(t)));
    }

    fn images(&mut self, images: &[Image<'_>]) {
        self.list("images", images, |x, i| {
            let (w, h) = (
                i.width.map(|n| n.to_string()),
                i.height.map(|n| n.to_string()),
            );
            x.empty(
                "image",
                &[
                    ("type", i.kind.as_deref()),
                    ("uri", i.uri.as_deref()),
                    ("uri150", i.uri150.as_deref()),
                    ("width", w.as_deref()),
                    ("height", h.as_deref()),
                ],
            );
        });
    }

    fn refs(&mut self, list: &str, item: &str, refs: &[EntityRef<'_>], bare_ids: bool) {
        if refs.is_empty() {
            if self.layout.era != Era::E3 {
                self.empty(list, &[]);
            }
            return;
        }
        self.start(list, &[]);
        for r in refs {
            // E2 member lists interleave bare `<id>` elements with the names.
            if bare_ids && self.layout.era == Era::E2 {
                self.number("id", r.id);
            }
            let id = r.id.map(|n| n.to_string());
            self.leaf_attrs(item, &[("id", id.as_deref())], Some(&r.name));
        }
        self.end(list);
    }

    fn credit(&mut self, c: &Credit<'_>) {
        self.start("artist", &[]);
        match (c.id, self.layout.era) {
            (Some(id), _) => self.number("id", Some(id)),
            (None, Era::E1 | Era::E2) => self.leaf("id", Some("0")),
            (None, Era::E3) => {}
        }
        self.leaf("name", Some(&c.name));
        self.leaf("anv", c.anv.as_deref());
        self.leaf("join", c.join.as_deref());
        self.leaf("role", c.role.as_deref());
        self.leaf("tracks", c.tracks.as_deref());
        self.end("artist");
    }

    fn credits(&mut self, list: &str, credits: &[Credit<'_>]) {
        self.list(list, credits, |x, c| x.credit(c));
    }

    fn videos(&mut self, videos: &[Video<'_>]) {
        self.list("videos", videos, |x, v| {
            let duration = v.duration.map(|d| d.to_string());
            let embed = if v.embed { "true" } else { "false" };
            x.start(
                "video",
                &[
                    ("src", v.src.as_deref()),
                    ("duration", duration.as_deref()),
                    ("embed", Some(embed)),
                ],
            );
            x.leaf("title", v.title.as_deref());
            x.leaf("description", v.description.as_deref());
            x.end("video");
        });
    }

    fn artist(&mut self, a: &Artist<'_>) {
        self.start("artist", &[]);
        self.images(&a.images);
        self.number("id", Some(a.id));
        self.leaf("name", Some(&a.name));
        self.leaf("realname", a.real_name.as_deref());
        self.leaf("profile", a.profile.as_deref());
        self.leaf("data_quality", a.data_quality.as_deref());
        self.texts("urls", "url", &a.urls);
        self.texts("namevariations", "name", &a.name_variations);
        self.refs("aliases", "name", &a.aliases, false);
        self.refs("members", "name", &a.members, true);
        self.refs("groups", "name", &a.groups, false);
        self.end("artist");
    }

    fn label(&mut self, l: &Label<'_>) {
        self.start("label", &[]);
        self.images(&l.images);
        self.number("id", Some(l.id));
        self.leaf("name", Some(&l.name));
        self.leaf("contactinfo", l.contact_info.as_deref());
        self.leaf("profile", l.profile.as_deref());
        self.leaf("data_quality", l.data_quality.as_deref());
        if let Some(p) = &l.parent_label {
            let id = p.id.map(|n| n.to_string());
            self.leaf_attrs("parentLabel", &[("id", id.as_deref())], Some(&p.name));
        }
        self.texts("urls", "url", &l.urls);
        self.refs("sublabels", "label", &l.sublabels, false);
        self.end("label");
    }

    fn master(&mut self, m: &Master<'_>) {
        let id = m.id.to_string();
        self.start("master", &[("id", Some(&id))]);
        self.number("main_release", m.main_release);
        self.images(&m.images);
        self.credits("artists", &m.artists);
        self.texts("genres", "genre", &m.genres);
        self.texts("styles", "style", &m.styles);
        self.leaf("year", Some(&m.year.unwrap_or(0).to_string()));
        self.leaf("title", Some(&m.title));
        self.leaf("notes", m.notes.as_deref());
        self.leaf("data_quality", m.data_quality.as_deref());
        self.videos(&m.videos);
        self.end("master");
    }

    fn release_labels(&mut self, list: &str, item: &str, labels: &[ReleaseLabel<'_>]) {
        self.list(list, labels, |x, l| {
            let id = l.id.map(|n| n.to_string());
            x.empty(
                item,
                &[
                    ("name", Some(&l.name)),
                    ("catno", l.catno.as_deref()),
                    ("id", id.as_deref()),
                ],
            );
        });
    }

    fn formats(&mut self, formats: &[Format<'_>]) {
        self.list("formats", formats, |x, f| {
            let attrs = [
                ("name", Some(f.name.as_ref())),
                ("qty", f.qty.as_deref()),
                ("text", f.text.as_deref()),
            ];
            if f.descriptions.is_empty() {
                x.empty("format", &attrs);
            } else {
                x.start("format", &attrs);
                x.texts("descriptions", "description", &f.descriptions);
                x.end("format");
            }
        });
    }

    fn track(&mut self, t: &Track<'_>) {
        self.start("track", &[]);
        self.leaf("position", t.position.as_deref());
        self.leaf("title", Some(&t.title));
        self.leaf("duration", t.duration.as_deref());
        if !t.artists.is_empty() {
            self.credits("artists", &t.artists);
        }
        if !t.extra_artists.is_empty() {
            self.credits("extraartists", &t.extra_artists);
        }
        if !t.sub_tracks.is_empty() {
            self.list("sub_tracks", &t.sub_tracks, |x, s| x.track(s));
        }
        self.end("track");
    }

    fn identifiers(&mut self, ids: &[Identifier<'_>]) {
        self.list("identifiers", ids, |x, i| {
            x.empty(
                "identifier",
                &[
                    ("type", i.kind.as_deref()),
                    ("description", i.description.as_deref()),
                    ("value", i.value.as_deref()),
                ],
            );
        });
    }

    fn companies(&mut self, companies: &[Company<'_>]) {
        self.list("companies", companies, |x, c| {
            x.start("company", &[]);
            x.number("id", c.id);
            x.leaf("name", Some(&c.name));
            x.leaf("catno", c.catno.as_deref());
            x.number("entity_type", c.entity_type.map(u64::from));
            x.leaf("entity_type_name", c.entity_type_name.as_deref());
            x.leaf("resource_url", c.resource_url.as_deref());
            x.end("company");
        });
    }

    fn release(&mut self, r: &Release<'_>) {
        let id = r.id.to_string();
        self.start(
            "release",
            &[("id", Some(&id)), ("status", r.status.as_deref())],
        );
        self.images(&r.images);
        self.credits("artists", &r.artists);
        self.leaf("title", Some(&r.title));
        self.release_labels("labels", "label", &r.labels);
        if !r.series.is_empty() {
            self.release_labels("series", "series", &r.series);
        }
        self.credits("extraartists", &r.extra_artists);
        self.formats(&r.formats);
        self.texts("genres", "genre", &r.genres);
        self.texts("styles", "style", &r.styles);
        self.leaf("country", r.country.as_deref());
        self.leaf("released", r.released.as_deref());
        self.leaf("notes", r.notes.as_deref());
        self.leaf("data_quality", r.data_quality.as_deref());
        match (r.master_id, self.layout.era) {
            (Some(m), _) => {
                let main = if r.is_main_release { "true" } else { "false" };
                self.leaf_attrs(
                    "master_id",
                    &[("is_main_release", Some(main))],
                    Some(&m.to_string()),
                );
            }
            (None, Era::E3) => self.leaf_attrs(
                "master_id",
                &[("is_main_release", Some("false"))],
                Some("0"),
            ),
            (None, _) => {}
        }
        self.list("tracklist", &r.tracklist, |x, t| x.track(t));
        self.identifiers(&r.identifiers);
        self.videos(&r.videos);
        self.companies(&r.companies);
        self.end("release");
    }
}
