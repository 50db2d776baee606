//! Input that is not a dump, or a damaged dump: a clear error naming the file and the
//! offset, records before the damage kept, no panic.

use std::io::Write;
use std::path::PathBuf;

use discogs_parse::{DumpReader, Error};

use crate::{collect, fixture};

/// A file in a fresh temporary folder (removed with it at the end of the test process).
fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("discogs-parse-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    path
}

fn open_err(name: &str, bytes: &[u8]) -> String {
    let path = temp_file(name, bytes);
    match DumpReader::open(&path) {
        Ok(reader) => match collect(reader).fatal {
            Some(e) => e.to_string(),
            None => panic!("{name}: no error"),
        },
        Err(e) => e.to_string(),
    }
}

#[test]
fn not_xml() {
    let e = open_err("notes.xml", b"Hello, this is plain text.\n");
    assert!(
        e.contains("notes.xml")
            && e.contains("not a Discogs dump at byte 0")
            && e.contains("not XML"),
        "{e}"
    );
}

#[test]
fn wrong_root_element() {
    let e = open_err(
        "feed.xml",
        b"<?xml version=\"1.0\"?>\n<rss><channel/></rss>",
    );
    assert!(
        e.contains("feed.xml") && e.contains("root element <rss>"),
        "{e}"
    );
}

#[test]
fn named_gz_but_not_gzip() {
    let e = open_err(
        "discogs_20260101_releases.xml.gz",
        b"PK\x03\x04 this is a zip file, not gzip",
    );
    assert!(
        e.contains("discogs_20260101_releases.xml.gz") && e.contains("not XML"),
        "{e}"
    );
    // Plain XML with a .gz name is read by content.
    let path = temp_file(
        "plain.xml.gz",
        b"<labels><label><id>1</id><name>L</name></label></labels>",
    );
    assert_eq!(collect(DumpReader::open(&path).unwrap()).records.len(), 1);
}

#[test]
fn empty_input_and_garbage_bytes() {
    assert!(open_err("empty.xml", b"").contains("empty"));
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect();
    let e = open_err("garbage.bin", &garbage);
    assert!(
        e.contains("garbage.bin") && e.contains("not a Discogs dump"),
        "{e}"
    );
}

#[test]
fn missing_file() {
    let e = DumpReader::open("/nonexistent/discogs_20260101_artists.xml.gz").unwrap_err();
    assert!(matches!(e, Error::Open { .. }));
    assert!(e
        .to_string()
        .contains("/nonexistent/discogs_20260101_artists.xml.gz"));
}

#[test]
fn truncated_gzip_keeps_the_records_before_the_cut() {
    let Some(path) = fixture("philipmat__discogs-xml2db/discogs_20200806_releases.xml.gz") else {
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    let cut = temp_file("cut_releases.xml.gz", &bytes[..bytes.len() / 2]);
    let all = collect(DumpReader::open(&cut).unwrap());
    assert!(all.record_errors.is_empty());
    assert!(
        all.records.len() > 300 && all.records.len() < 1000,
        "{}",
        all.records.len()
    );
    let e = all.fatal.expect("an error at the cut");
    assert!(matches!(e, Error::Io { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("cut_releases.xml.gz") && msg.contains("ends early"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("after {} records", all.records.len())),
        "{msg}"
    );
    assert!(!e.is_retriable());
}

#[test]
fn corrupt_gzip() {
    let Some(path) = fixture("philipmat__discogs-xml2db/discogs_20200806_labels.xml.gz") else {
        return;
    };
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let e = open_err("damaged_labels.xml.gz", &bytes);
    assert!(
        e.contains("damaged_labels.xml.gz") && e.contains("gzip stream is corrupt"),
        "{e}"
    );
}

#[test]
fn truncated_xml_inside_a_record() {
    let xml =
        b"<artists>\n<artist><id>1</id><name>A</name></artist>\n<artist><id>2</id><name>B</na";
    let all = collect(DumpReader::from_reader(&xml[..], "cut.xml", Default::default()).unwrap());
    assert_eq!(all.records.len(), 1);
    match all.fatal {
        Some(Error::Truncated {
            records: 1,
            offset,
            ref detail,
            ..
        }) => {
            assert_eq!(offset, xml.len() as u64);
            assert!(detail.contains("<artist> starting at byte 52"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_after_the_last_record() {
    let xml = b"<masters><master id=\"1\"><title>T</title></master>\n";
    let all = collect(DumpReader::from_reader(&xml[..], "m.xml", Default::default()).unwrap());
    assert_eq!(all.records.len(), 1);
    let e = all.fatal.expect("the root is not closed").to_string();
    assert!(
        e.contains("m.xml") && e.contains("<masters> is not closed"),
        "{e}"
    );
}

#[test]
fn multi_member_gzip_is_read_to_the_end() {
    use flate2::{write::GzEncoder, Compression};
    let mut bytes = Vec::new();
    for part in [
        "<labels><label><id>1</id><name>A</name></label>\n",
        "<label><id>2</id><name>B</name></label></labels>\n",
    ] {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(part.as_bytes()).unwrap();
        bytes.extend(gz.finish().unwrap());
    }
    let all = collect(
        DumpReader::from_reader(
            std::io::Cursor::new(bytes),
            "two-members.xml.gz",
            Default::default(),
        )
        .unwrap(),
    );
    assert!(all.fatal.is_none(), "{:?}", all.fatal);
    assert_eq!(all.records.len(), 2);
}
