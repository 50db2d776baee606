//! Field-by-field checks of specific real records, at least one per kind and era.

use discogs_model::{Credit, EntityRef, ReleaseLabel};
use discogs_parse::Record;

use crate::{fixture, read_all, record};

macro_rules! get {
    ($rel:expr, $id:expr, $variant:ident) => {{
        let Some(path) = fixture($rel) else { return };
        match record(&path, $id) {
            Record::$variant(r) => r,
            other => panic!("expected a {}, got {other:?}", stringify!($variant)),
        }
    }};
}

fn eref(id: Option<u64>, name: &str) -> EntityRef<'static> {
    EntityRef {
        id,
        name: name.to_owned().into(),
    }
}

#[test]
fn artist_e1_2017_aliases_without_ids() {
    let a = get!(
        "philipmat__discogs-xml2db/discogs_20170401_artists.xml.gz",
        1,
        Artist
    );
    assert_eq!(a.name, "The Persuader");
    assert_eq!(a.real_name.as_deref(), Some("Jesper Dahlbäck"));
    assert_eq!(a.data_quality.as_deref(), Some("Correct"));
    assert_eq!(a.name_variations, ["Persuader", "The Presuader"]);
    assert_eq!(a.aliases.len(), 7);
    assert_eq!(a.aliases[0], eref(None, "Dick Track"));
    assert_eq!(a.images.len(), 1);
    assert_eq!(
        (a.images[0].width, a.images[0].height),
        (Some(600), Some(450))
    );
    assert_eq!(a.images[0].kind.as_deref(), Some("secondary"));
    assert_eq!(a.images[0].uri, None, "uri=\"\" is empty, so absent");
}

#[test]
fn artist_e2_with_aliases_and_groups() {
    let a = get!("philipmat__discogs-xml2db/artist.xml", 27, Artist);
    assert_eq!(a.name, "Cari Lekebusch");
    assert_eq!(a.aliases.len(), 23);
    assert_eq!(a.aliases[0], eref(Some(89), "Mr. James Barth"));
    assert_eq!(a.aliases[22], eref(Some(7_154_757), "Swedish Peace"));
    assert_eq!(a.groups[0], eref(Some(2), "Mr. James Barth & A.D."));
    assert_eq!(a.data_quality.as_deref(), Some("Needs Vote"));
}

#[test]
fn artist_e3_group_members() {
    let a = get!(
        "tgmz__de.tgmz.discogs/discogs_20250101_artists_Depeche_Mode.xml",
        2725,
        Artist
    );
    assert_eq!(a.name, "Depeche Mode");
    assert_eq!(a.members.len(), 5);
    assert_eq!(a.members[2], eref(Some(27158), "Dave Gahan"));
    assert!(a.name_variations.iter().any(|n| n == "Депеш Мод"));
    assert_eq!(a.urls[0], "http://www.depechemode.com");
    assert!(a.images.is_empty(), "no images since Dec 2024");
    assert!(a
        .profile
        .as_deref()
        .unwrap()
        .starts_with("English electronic music band formed March 1980"));
}

#[test]
fn artist_11037_carriage_return_reference_in_realname() {
    let a = get!("philipmat__discogs-xml2db/artist_11037.xml", 11037, Artist);
    assert_eq!(a.name, "Soul Boy");
    assert_eq!(
        a.real_name.as_deref(),
        Some("M. Marsico, L. Macchiaizzano\nif  M. Marsico & L. M")
    );
    assert_eq!(a.profile, None, "<profile></profile> is absent");
    // The same artist wrapped in <artists> gives the same record and hash.
    let (Some(bare), Some(wrapped)) = (
        fixture("philipmat__discogs-xml2db/artist_11037.xml"),
        fixture("philipmat__discogs-xml2db/artist_problems.xml"),
    ) else {
        return;
    };
    assert_eq!(
        read_all(&bare).records[0].hash,
        read_all(&wrapped).records[0].hash
    );
}

#[test]
fn label_e2_sublabels_and_contact_info() {
    let l = get!("philipmat__discogs-xml2db/label.xml", 1, Label);
    assert_eq!(l.name, "Planet E");
    assert!(l
        .contact_info
        .as_deref()
        .unwrap()
        .starts_with("Planet E Communications\nP.O. Box 27218\n"));
    assert_eq!(l.sublabels.len(), 8);
    assert_eq!(l.sublabels[0], eref(Some(86537), "Antidote (4)"));
    assert_eq!(l.urls.len(), 13);
    assert_eq!(l.parent_label, None);
    assert_eq!(l.images.len(), 7);
}

#[test]
fn label_e3_parent_label_and_cr_lines() {
    let l = get!("tgmz__de.tgmz.discogs/discogs_labels.xml.gz", 157, Label);
    assert_eq!(l.name, "Reprise Records");
    assert_eq!(
        l.parent_label,
        Some(eref(Some(315_857), "Reprise Records Inc."))
    );
    let contact = l.contact_info.as_deref().unwrap();
    assert!(contact.starts_with(
        "8380 Melrose Avenue\nHollywood 46 California\nU.S.A.\n(obsolete)\n\n[1992]\n"
    ));
    assert!(!contact.contains('\r'));
    assert_eq!(l.sublabels[0], eref(Some(240), "Kinetic Records"));
}

#[test]
fn label_2012_without_id_and_pretty_printed_text() {
    let l = get!(
        "heinerbehrends__discogs_xml_to_database/one_label.xml",
        0,
        Label
    );
    assert_eq!(l.name, "Planet E");
    assert_eq!(
        l.sublabels,
        [
            eref(None, "Antidote (4)"),
            eref(None, "Community Projects"),
            eref(None, "I Ner Zon Sounds")
        ]
    );
    assert_eq!(
        l.urls,
        [
            "http://www.planet-e.net/",
            "http://www.myspace.com/planetecom"
        ],
        "trimmed, empty <url/> dropped"
    );
    assert_eq!(
        l.images[0].uri.as_deref(),
        Some("http://www.discogs.com/image/L-1-1111053865.png")
    );
}

#[test]
fn master_e1_out_of_order_file() {
    let m = get!(
        "philipmat__discogs-xml2db/discogs_20170401_masters.xml.gz",
        18500,
        Master
    );
    assert_eq!(m.title, "New Soil");
    assert_eq!(m.main_release, Some(155_102));
    assert_eq!(m.year, Some(2001));
    assert_eq!(
        m.artists,
        [Credit {
            id: Some(212_070),
            name: "Samuel L Session".into(),
            anv: Some("Samuel L".into()),
            ..Credit::default()
        }]
    );
    assert_eq!(m.videos.len(), 7);
    assert_eq!(m.videos[0].duration, Some(489));
    assert!(m.videos[0].embed);
}

#[test]
fn master_e2_styles_and_videos() {
    let m = get!("philipmat__discogs-xml2db/master.xml", 122, Master);
    assert_eq!(m.title, "Organized Chaos E.P.");
    assert_eq!((m.main_release, m.year), (Some(85912), Some(1993)));
    assert_eq!(m.styles, ["Breakbeat", "Hardcore", "Jungle"]);
    assert_eq!(
        m.videos[0].title.as_deref(),
        Some("Mix Race - Mixrace Outta Hand")
    );
}

#[test]
fn master_e3_join_on_single_artist() {
    let m = get!(
        "nicolascalo__discogs_lakehouse_graph_data_platform/derived_discogs_20260101_masters_sample_300000.wellformed.xml.gz",
        113,
        Master
    );
    assert_eq!(m.title, "Moments In Time");
    assert_eq!(m.artists[0].join.as_deref(), Some(","));
    assert_eq!(m.artists[0].anv, None);
    assert_eq!(m.styles, ["Techno", "Tech House"]);
    assert_eq!(m.videos.len(), 81);
    assert!(m.videos[0]
        .description
        .as_deref()
        .unwrap()
        .starts_with("Provided to YouTube by EPM Online\n\nBubbles"));
}

#[test]
fn release_e1_label_without_id_and_partial_date() {
    let r = get!(
        "philipmat__discogs-xml2db/discogs_20170401_releases.xml.gz",
        1,
        Release
    );
    assert_eq!(r.title, "Stockholm");
    assert_eq!(
        r.labels,
        [ReleaseLabel {
            id: None,
            name: "Svek".into(),
            catno: Some("SK032".into())
        }]
    );
    assert_eq!(r.released.as_deref(), Some("1999-03-00"));
    assert_eq!(r.year, Some(1999));
    assert_eq!(r.master_id, None, "2017-04 predates <master_id>");
    assert_eq!(r.artists[0].join.as_deref(), Some(","));
    assert_eq!(r.artists[0].anv, None, "<anv></anv> is absent");
    assert!(r
        .notes
        .as_deref()
        .unwrap()
        .contains("\n\nTitle on label: - Stockholm -\n"));
    assert_eq!(r.formats[0].descriptions, ["12\"", "33 ⅓ RPM"]);
    assert_eq!(r.formats[0].quantity(), Some(2));
    assert_eq!(r.formats[0].text, None);
}

#[test]
fn release_e2_companies_identifiers_and_track_credits() {
    let r = get!("philipmat__discogs-xml2db/release.xml", 3, Release);
    assert_eq!(r.title, "Profound Sounds Vol. 1");
    assert_eq!(r.status.as_deref(), Some("Accepted"));
    assert_eq!((r.master_id, r.is_main_release), (Some(66526), false));
    assert_eq!(r.released.as_deref(), Some("1999-07-13"));
    assert_eq!(r.companies[0].entity_type, Some(10));
    assert_eq!(
        r.companies[0].entity_type_name.as_deref(),
        Some("Manufactured By")
    );
    assert_eq!(r.identifiers[0].kind.as_deref(), Some("Barcode"));
    assert_eq!(r.identifiers[0].value.as_deref(), Some("074646362822"));
    assert_eq!(r.identifiers[0].description, None);
    let t = &r.tracklist[0];
    assert_eq!(t.artists[0].join.as_deref(), Some("&"));
    assert_eq!(t.extra_artists[0].role.as_deref(), Some("Producer"));
}

#[test]
fn release_e2_index_track_with_sub_tracks() {
    let r = get!(
        "philipmat__discogs-xml2db/release_4497890.xml",
        4_497_890,
        Release
    );
    let index = &r.tracklist[1];
    assert_eq!(index.title, "Piano Concerto No. 1");
    assert_eq!(index.position, None);
    assert_eq!(index.sub_tracks.len(), 1);
    assert_eq!(index.sub_tracks[0].position.as_deref(), Some("1-2"));
    assert_eq!(index.sub_tracks[0].title, "Third Movement");
    assert_eq!(index.extra_artists[1].anv.as_deref(), Some("Emerson"));
}

#[test]
fn release_e3_master_and_companies() {
    let r = get!(
        "nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz",
        1,
        Release
    );
    assert_eq!((r.master_id, r.is_main_release), (Some(1_660_109), true));
    assert_eq!(
        r.labels,
        [ReleaseLabel {
            id: Some(5),
            name: "Svek".into(),
            catno: Some("SK032".into())
        }]
    );
    assert_eq!(
        r.extra_artists[0].anv.as_deref(),
        Some("G Phrupmastergeneral")
    );
    assert_eq!(
        r.extra_artists[1].role.as_deref(),
        Some("Written-By [All Tracks By]")
    );
    assert_eq!(r.tracklist.len(), 6);
    assert_eq!(r.tracklist[0].title, "Östermalm");
    assert_eq!(
        r.companies[2].entity_type_name.as_deref(),
        Some("Lacquer Cut At")
    );
    let last_video = r
        .videos
        .iter()
        .find(|v| v.src.as_deref() == Some("https://www.youtube.com/watch?v=MpmbntGDyNE"))
        .unwrap();
    assert!(
        last_video
            .description
            .as_deref()
            .unwrap()
            .contains("Östermalm\n\n\n- video upload"),
        "&#13; + LF become one LF"
    );
    assert!(r.images.is_empty());
}

#[test]
fn release_e3b_without_status() {
    let r = get!(
        "tgmz__de.tgmz.discogs/discogs_releases.xml.gz",
        2323,
        Release
    );
    assert_eq!(r.status, None);
    assert_eq!(
        r.artists[0],
        Credit {
            id: Some(231_513),
            name: "GusGus".into(),
            ..Credit::default()
        }
    );
    let with_status = get!(
        "tgmz__de.tgmz.discogs/discogs_releases.xml.gz",
        10222,
        Release
    );
    assert_eq!(with_status.status.as_deref(), Some("Accepted"));
}

/// kiraririria's 2025 excerpt was re-indented with tabs; five of its twelve releases are
/// the same data as in the raw 2025-11 dump, and must hash the same.
#[test]
fn same_data_from_a_reformatted_file_hashes_the_same() {
    let (Some(tabbed), Some(raw)) = (
        fixture("kiraririria__discogs-xml2json/releases.xml"),
        fixture("nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz"),
    ) else {
        return;
    };
    let raw = read_all(&raw).records;
    let tabbed = read_all(&tabbed).records;
    let mut same = 0;
    for t in &tabbed {
        let r = raw
            .iter()
            .find(|r| r.record.id() == t.record.id())
            .expect("present in both");
        if r.record == t.record {
            assert_eq!(
                r.hash,
                t.hash,
                "equal records, equal hashes ({})",
                t.record.id()
            );
            same += 1;
        } else {
            assert_ne!(
                r.hash,
                t.hash,
                "different records, different hashes ({})",
                t.record.id()
            );
        }
    }
    assert_eq!(same, 5);
}
