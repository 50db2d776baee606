//! Property tests: generated records written in each era's layout parse back equal,
//! with equal hashes.

use std::borrow::Cow;

use discogs_model::{
    year_from_released, Artist, Company, Credit, EntityRef, Format, Identifier, Image, Label,
    Master, Record, Release, ReleaseLabel, Track, Video,
};
use discogs_parse::{write_record, DumpReader, DumpWriter, Era, Layout, ReadOptions};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

type S = Cow<'static, str>;

/// Text as the parser hands it out: no leading or trailing XML white space, no CR, and
/// markup characters, quotes, non-ASCII and emoji inside.
fn text() -> impl Strategy<Value = S> {
    "[a-zA-Z0-9 &<>\"'#;=/\\[\\]äöü€ß😀\t\n-]{0,12}"
        .prop_map(|s| Cow::Owned(s.trim_matches([' ', '\t', '\n']).to_owned()))
}

fn nonempty() -> impl Strategy<Value = S> {
    text().prop_filter("non-empty", |s| !s.is_empty())
}

fn opt_text() -> impl Strategy<Value = Option<S>> {
    option::of(nonempty())
}

fn id() -> impl Strategy<Value = Option<u64>> {
    option::of(1..u64::MAX)
}

fn list<T: std::fmt::Debug>(item: impl Strategy<Value = T>) -> impl Strategy<Value = Vec<T>> {
    vec(item, 0..3)
}

fn image() -> impl Strategy<Value = Image<'static>> {
    (
        opt_text(),
        opt_text(),
        opt_text(),
        option::of(any::<u32>()),
        option::of(any::<u32>()),
    )
        .prop_map(|(kind, uri, uri150, width, height)| Image {
            kind,
            uri,
            uri150,
            width,
            height,
        })
}

fn entity_ref() -> impl Strategy<Value = EntityRef<'static>> {
    (id(), text()).prop_filter_map("an id or a name", |(id, name)| {
        (id.is_some() || !name.is_empty()).then_some(EntityRef { id, name })
    })
}

fn credit() -> impl Strategy<Value = Credit<'static>> {
    (id(), text(), opt_text(), opt_text(), opt_text(), opt_text()).prop_map(
        |(id, name, anv, join, role, tracks)| Credit {
            id,
            name,
            anv,
            join,
            role,
            tracks,
        },
    )
}

fn video() -> impl Strategy<Value = Video<'static>> {
    (
        opt_text(),
        option::of(any::<u32>()),
        any::<bool>(),
        opt_text(),
        opt_text(),
    )
        .prop_map(|(src, duration, embed, title, description)| Video {
            src,
            duration,
            embed,
            title,
            description,
        })
}

fn artist() -> impl Strategy<Value = Record<'static>> {
    (
        any::<u64>(),
        text(),
        (opt_text(), opt_text(), opt_text()),
        (list(nonempty()), list(nonempty())),
        (list(entity_ref()), list(entity_ref()), list(entity_ref())),
        list(image()),
    )
        .prop_map(
            |(
                id,
                name,
                (real_name, profile, data_quality),
                (urls, name_variations),
                (aliases, members, groups),
                images,
            )| {
                Record::Artist(Artist {
                    id,
                    name,
                    real_name,
                    profile,
                    data_quality,
                    urls,
                    name_variations,
                    aliases,
                    members,
                    groups,
                    images,
                })
            },
        )
}

fn label() -> impl Strategy<Value = Record<'static>> {
    (
        any::<u64>(),
        text(),
        (opt_text(), opt_text(), opt_text()),
        option::of(entity_ref()),
        list(nonempty()),
        list(entity_ref()),
        list(image()),
    )
        .prop_map(
            |(
                id,
                name,
                (contact_info, profile, data_quality),
                parent_label,
                urls,
                sublabels,
                images,
            )| {
                Record::Label(Label {
                    id,
                    name,
                    contact_info,
                    profile,
                    data_quality,
                    parent_label,
                    urls,
                    sublabels,
                    images,
                })
            },
        )
}

fn master() -> impl Strategy<Value = Record<'static>> {
    (
        any::<u64>(),
        text(),
        (id(), option::of(1..=u16::MAX)),
        list(credit()),
        (list(nonempty()), list(nonempty())),
        (opt_text(), opt_text()),
        list(video()),
        list(image()),
    )
        .prop_map(
            |(
                id,
                title,
                (main_release, year),
                artists,
                (genres, styles),
                (notes, data_quality),
                videos,
                images,
            )| {
                Record::Master(Master {
                    id,
                    title,
                    main_release,
                    year,
                    artists,
                    genres,
                    styles,
                    notes,
                    data_quality,
                    videos,
                    images,
                })
            },
        )
}

fn release_label() -> impl Strategy<Value = ReleaseLabel<'static>> {
    (id(), text(), opt_text()).prop_map(|(id, name, catno)| ReleaseLabel { id, name, catno })
}

fn track() -> impl Strategy<Value = Track<'static>> {
    let leaf = (
        opt_text(),
        text(),
        opt_text(),
        list(credit()),
        list(credit()),
    )
        .prop_map(
            |(position, title, duration, artists, extra_artists)| Track {
                position,
                title,
                duration,
                artists,
                extra_artists,
                sub_tracks: Vec::new(),
            },
        );
    leaf.prop_recursive(2, 6, 3, |inner| {
        (opt_text(), text(), vec(inner, 0..3)).prop_map(|(position, title, sub_tracks)| Track {
            position,
            title,
            sub_tracks,
            ..Track::default()
        })
    })
}

fn release() -> impl Strategy<Value = Record<'static>> {
    let qty = prop_oneof![
        Just(None),
        (1u32..20).prop_map(|n| Some(Cow::Owned(n.to_string()))),
        Just(Some(Cow::Borrowed(
            "1000000000000000000000000000000000000000000000000000"
        ))),
    ];
    let format =
        (text(), qty, opt_text(), list(nonempty())).prop_map(|(name, qty, text, descriptions)| {
            Format {
                name,
                qty,
                text,
                descriptions,
            }
        });
    let released = prop_oneof![
        opt_text(),
        "[12][0-9]{3}(-[01][0-9]-[0-3][0-9])?".prop_map(|s| Some(Cow::Owned(s)))
    ];
    let identifier =
        (opt_text(), opt_text(), opt_text()).prop_map(|(kind, description, value)| Identifier {
            kind,
            description,
            value,
        });
    let company = (
        id(),
        text(),
        opt_text(),
        option::of(any::<u32>()),
        opt_text(),
        opt_text(),
    )
        .prop_map(
            |(id, name, catno, entity_type, entity_type_name, resource_url)| Company {
                id,
                name,
                catno,
                entity_type,
                entity_type_name,
                resource_url,
            },
        );
    (
        (any::<u64>(), opt_text(), text()),
        (
            list(credit()),
            list(release_label()),
            list(release_label()),
            list(credit()),
        ),
        (list(format), list(nonempty()), list(nonempty())),
        (opt_text(), released, opt_text(), opt_text()),
        (id(), any::<bool>()),
        (
            list(track()),
            list(identifier),
            list(video()),
            list(company),
            list(image()),
        ),
    )
        .prop_map(
            |(
                (id, status, title),
                (artists, labels, series, extra_artists),
                (formats, genres, styles),
                (country, released, notes, data_quality),
                (master_id, main),
                (tracklist, identifiers, videos, companies, images),
            )| {
                let year = released.as_deref().and_then(year_from_released);
                Record::Release(Release {
                    id,
                    status,
                    title,
                    artists,
                    labels,
                    series,
                    extra_artists,
                    formats,
                    genres,
                    styles,
                    country,
                    released,
                    year,
                    notes,
                    data_quality,
                    is_main_release: main && master_id.is_some(),
                    master_id,
                    tracklist,
                    identifiers,
                    videos,
                    companies,
                    images,
                })
            },
        )
}

fn any_record() -> impl Strategy<Value = Record<'static>> {
    prop_oneof![artist(), label(), master(), release()]
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        prop_oneof![Just(Era::E1), Just(Era::E2), Just(Era::E3)],
        any::<bool>(),
    )
        .prop_map(|(era, pretty)| Layout { era, pretty })
}

fn read_back(record: &Record<'_>, layout: Layout) -> Vec<discogs_parse::ParsedRecord<'static>> {
    let mut writer = DumpWriter::new(Vec::new(), record.kind(), layout).unwrap();
    writer.write(record).unwrap();
    writer.write(record).unwrap();
    let bytes = writer.finish().unwrap();
    let reader = DumpReader::from_reader(
        std::io::Cursor::new(bytes),
        "generated",
        ReadOptions::default(),
    )
    .unwrap();
    reader.map(|r| r.expect("generated XML parses")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_era_layout_reads_back_equal(record in any_record(), layout in layout()) {
        let parsed = read_back(&record, layout);
        prop_assert_eq!(parsed.len(), 2);
        prop_assert_eq!(&parsed[0].record, &record);
        prop_assert_eq!(parsed[0].hash, record.hash());
        prop_assert_eq!(parsed[1].hash, parsed[0].hash);
    }

    #[test]
    fn all_eras_give_the_same_hash(record in any_record()) {
        let hashes: Vec<_> = [Era::E1, Era::E2, Era::E3]
            .into_iter()
            .flat_map(|era| [Layout { era, pretty: false }, Layout { era, pretty: true }])
            .map(|layout| read_back(&record, layout)[0].hash)
            .collect();
        prop_assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{:?}", hashes);
    }

    #[test]
    fn json_round_trip_keeps_the_hash(record in any_record()) {
        let json = serde_json::to_string(&record).unwrap();
        let back: Record<'_> = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.hash(), record.hash());
        prop_assert_eq!(back, record);
    }
}

#[test]
fn write_record_writes_one_line() {
    let record = Record::Label(Label {
        id: 5,
        name: "A & B".into(),
        ..Label::default()
    });
    let mut out = Vec::new();
    write_record(&record, Layout::new(Era::E3), &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<label><id>5</id><name>A &amp; B</name></label>"
    );
}
