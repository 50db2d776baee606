//! One test per quirk of the dumps, on the hand-written inputs in `tests/data`.

use discogs_model::{Credit, EntityRef, Track};
use discogs_parse::{Error, Record, RecordKind};

use crate::{data, read_all, ReadAll};

fn clean(name: &str) -> ReadAll {
    let all = read_all(&data(name));
    assert!(
        all.record_errors.is_empty(),
        "{name}: {:?}",
        all.record_errors
    );
    assert!(all.fatal.is_none(), "{name}: {:?}", all.fatal);
    all
}

macro_rules! only {
    ($all:expr, $variant:ident) => {
        $all.records
            .iter()
            .map(|p| match &p.record {
                Record::$variant(r) => r.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect::<Vec<_>>()
    };
}

#[test]
fn bare_ampersand_is_kept_literally() {
    let a = only!(clean("quirk_bare_ampersand.xml"), Artist);
    assert_eq!(a[0].name, "Simon & Garfunkel");
    assert_eq!(
        a[0].profile.as_deref(),
        Some("R&B & Soul &co; AT&T & & done &")
    );
    assert_eq!(a[0].urls, ["http://example.com/?a=1&b=2"]);
}

#[test]
fn control_characters_are_dropped_and_counted() {
    let path = data("quirk_control_chars.xml");
    let mut reader = discogs_parse::DumpReader::open(&path).unwrap();
    let mut releases = Vec::new();
    while let Some(item) = reader.next_record() {
        match item.unwrap().record {
            Record::Release(r) => releases.push(r.into_owned()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(releases[0].title, "Bell Song");
    assert_eq!(releases[0].notes.as_deref(), Some("abc\td"));
    assert_eq!(releases[1].title, "Clean");
    assert_eq!(reader.progress().repaired, 1);
}

#[test]
fn carriage_return_references_become_line_feeds() {
    let l = only!(clean("quirk_cr_reference.xml"), Label);
    assert_eq!(
        l[0].contact_info.as_deref(),
        Some("8380 Melrose Avenue\nHollywood\n\nU.S.A.")
    );
    assert_eq!(
        l[0].profile.as_deref(),
        Some("line one\nline two\nline three")
    );
}

#[test]
fn partial_dates_keep_the_text_and_parse_the_year() {
    let r = only!(clean("quirk_partial_dates.xml"), Release);
    let got: Vec<_> = r.iter().map(|r| (r.released.as_deref(), r.year)).collect();
    assert_eq!(
        got,
        [
            (Some("1999-03-00"), Some(1999)),
            (Some("2001-00-00"), Some(2001)),
            (Some("Unknown"), None),
            (Some("0000"), None),
            (Some("1987"), Some(1987)),
            (None, None),
        ]
    );
}

#[test]
fn a_52_digit_quantity_is_kept_as_text() {
    let r = only!(clean("quirk_huge_qty.xml"), Release);
    let f = &r[0].formats;
    assert_eq!(
        f[0].qty.as_deref(),
        Some("1000000000000000000000000000000000000000000000000000")
    );
    assert_eq!(f[0].quantity(), None);
    assert_eq!(f[0].descriptions, ["Album"]);
    assert_eq!(
        (f[1].quantity(), f[1].text.as_deref()),
        (Some(2), Some("Red"))
    );
}

#[test]
fn missing_status_and_master_zero() {
    let r = only!(clean("quirk_no_status.xml"), Release);
    assert_eq!(
        (r[0].status.as_deref(), r[0].master_id, r[0].is_main_release),
        (None, None, false)
    );
    assert_eq!(
        (r[1].status.as_deref(), r[1].master_id, r[1].is_main_release),
        (Some("Accepted"), Some(77), true)
    );
}

#[test]
fn labels_nested_in_labels() {
    let l = only!(clean("quirk_nested_labels.xml"), Label);
    assert_eq!(l.len(), 2, "sublabels are not records");
    let sub = |id, name: &str| EntityRef {
        id: Some(id),
        name: name.to_owned().into(),
    };
    assert_eq!(
        l[0].sublabels,
        [
            sub(86537, "Antidote (4)"),
            sub(41841, "Community Projects"),
            sub(5, "")
        ]
    );
    assert_eq!(l[0].parent_label, Some(sub(212, "")));
    assert_eq!(l[1].name, "Second");
}

#[test]
fn series_in_series_and_tracks_in_sub_tracks() {
    let r = only!(clean("quirk_same_name_nesting.xml"), Release);
    assert_eq!(r[0].series[0].name, "Greatest");
    assert_eq!(r[0].series[0].catno.as_deref(), Some("Vol. 1"));
    assert_eq!(r[0].labels.len(), 1);
    let index = &r[0].tracklist[0];
    assert_eq!(r[0].tracklist.len(), 1);
    assert_eq!(index.sub_tracks.len(), 2);
    assert_eq!(
        index.sub_tracks[1].sub_tracks,
        [Track {
            title: "Deeper".into(),
            ..Track::default()
        }]
    );
}

#[test]
fn empty_and_absent_elements_are_the_same() {
    let eras: Vec<_> = [
        "quirk_empty_e1.xml",
        "quirk_empty_e2.xml",
        "quirk_empty_e3.xml",
    ]
    .into_iter()
    .map(|f| clean(f).records.remove(0))
    .collect();
    assert_eq!(eras[0].record, eras[1].record);
    assert_eq!(eras[1].record, eras[2].record);
    assert_eq!(eras[0].hash, eras[1].hash);
    assert_eq!(eras[1].hash, eras[2].hash);
    let Record::Release(r) = &eras[0].record else {
        panic!()
    };
    assert_eq!(
        r.artists,
        [Credit {
            name: "Unlinked".into(),
            ..Credit::default()
        }],
        "<id>0</id> is no id"
    );
    assert_eq!(r.country, None);
    assert_eq!(r.tracklist[0].position, None);
    assert!(r.styles.is_empty() && r.companies.is_empty() && r.images.is_empty());
}

#[test]
fn files_without_a_root_element() {
    let all = clean("quirk_no_root.xml");
    assert_eq!(all.records.len(), 3);
    let r = only!(all, Release);
    assert_eq!(
        r[1].title, "No Root Two",
        "vertical tab dropped, then trimmed"
    );
}

#[test]
fn prologue_comments_and_crlf() {
    let m = only!(clean("quirk_prologue_crlf.xml"), Master);
    assert_eq!(
        (m[0].id, m[0].title.as_ref(), m[0].year),
        (12, "Crlf & Comments", Some(1994))
    );
}

#[test]
fn invalid_utf8_is_replaced() {
    let a = only!(clean("quirk_invalid_utf8.xml"), Artist);
    assert_eq!(a[0].name, "Bad \u{FFFD}\u{FFFD} UTF-8");
    assert_eq!(a[1].name, "Fine");
}

#[test]
fn malformed_records_are_reported_and_skipped() {
    let all = read_all(&data("malformed_records.xml"));
    let ids: Vec<_> = all.records.iter().map(|r| r.record.id()).collect();
    assert_eq!(ids, [1, 4]);
    assert!(all.fatal.is_none());
    let e = &all.record_errors;
    assert_eq!(e.len(), 2);
    assert!(e[0].message.contains("invalid id \"x2\""), "{}", e[0]);
    assert_eq!(e[0].kind, RecordKind::Artist);
    assert_eq!(e[1].id, Some(3));
    assert!(
        e[1].to_string().contains("malformed_records.xml"),
        "{}",
        e[1]
    );
    assert!(
        e[1].to_string().contains("(id 3)") && e[1].message.contains("</wrong>"),
        "{}",
        e[1]
    );
    assert!(e[1].offset > e[1].record_offset);
}

#[test]
fn the_error_limit_stops_reading() {
    let options = discogs_parse::ReadOptions::default().max_errors(Some(1));
    let reader =
        discogs_parse::DumpReader::open_with(data("malformed_records.xml"), options).unwrap();
    let items: Vec<_> = reader.collect();
    assert!(
        matches!(
            items.last(),
            Some(Err(Error::TooManyErrors {
                errors: 2,
                limit: 1,
                ..
            }))
        ),
        "{items:?}"
    );
    assert_eq!(items.iter().filter(|i| i.is_ok()).count(), 1);
}
