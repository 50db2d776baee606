//! Every real dump excerpt in `../shared/fixtures` parses with zero record errors, and
//! yields as many records as an independent count of record start tags.

use std::io::Read;
use std::path::{Path, PathBuf};

use discogs_parse::{DumpReader, Error, ParallelReader, ReadOptions, RecordKind};

use crate::{read_all, shared_fixtures};

/// S3 bucket listings kept beside the dumps: XML, but not dumps.
const LISTINGS: [&str; 2] = ["DiscogsDataDump.xml", "data.xml"];
/// The excerpt cut in the middle of a record.
const TRUNCATED: &str = "discogs_20260101_masters_sample_300000.xml.gz";

fn xml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            xml_files(&path, out);
        } else {
            let name = path.file_name().unwrap().to_string_lossy();
            if name.ends_with(".xml") || name.ends_with(".xml.gz") {
                out.push(path);
            }
        }
    }
}

fn decompressed(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        raw
    }
}

/// Counts start tags of `elem` at record depth with a naive walk over every tag, quite
/// unlike the reader's record splitter.
fn count_record_tags(xml: &[u8], elem: &str) -> usize {
    let find = |from: usize, pat: &[u8]| {
        xml[from..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|i| i + from)
    };
    let (mut depth, mut record_depth, mut count, mut i) = (0usize, None, 0, 0);
    let next_lt = |from: usize| {
        xml[from..]
            .iter()
            .position(|&b| b == b'<')
            .map(|i| i + from)
    };
    while let Some(lt) = next_lt(i) {
        if xml[lt..].starts_with(b"<!--") {
            i = find(lt, b"-->").expect("open comment") + 3;
            continue;
        }
        // Find the tag's end outside quotes.
        let (mut j, mut quote) = (lt + 1, None);
        while j < xml.len() {
            match (xml[j], quote) {
                (b'"' | b'\'', None) => quote = Some(xml[j]),
                (q, Some(open)) if q == open => quote = None,
                (b'>', None) => break,
                _ => {}
            }
            j += 1;
        }
        let tag = &xml[lt + 1..j.min(xml.len())];
        i = j + 1;
        if tag.starts_with(b"?") || tag.starts_with(b"!") {
            continue;
        }
        if tag.starts_with(b"/") {
            depth = depth.saturating_sub(1);
            continue;
        }
        let name_len = tag
            .iter()
            .position(|b| b" \t\r\n/".contains(b))
            .unwrap_or(tag.len());
        let name = &tag[..name_len];
        let record_depth = *record_depth.get_or_insert(usize::from(name != elem.as_bytes()));
        if name == elem.as_bytes() && depth == record_depth {
            count += 1;
        }
        if !tag.ends_with(b"/") {
            depth += 1;
        }
    }
    count
}

#[test]
fn every_fixture_parses_with_zero_record_errors() {
    let Some(dir) = shared_fixtures() else { return };
    let mut files = Vec::new();
    xml_files(&dir, &mut files);
    files.sort();
    assert!(
        files.len() >= 70,
        "expected the full fixture set, found {} files",
        files.len()
    );
    let mut total = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if LISTINGS.contains(&name.as_str()) {
            let err = DumpReader::open(path).expect_err("a bucket listing is not a dump");
            assert!(matches!(err, Error::NotADump { .. }), "{name}: {err}");
            assert!(err.to_string().contains("ListBucketResult"), "{err}");
            continue;
        }
        let all = read_all(path);
        assert!(
            all.record_errors.is_empty(),
            "{name}: {:?}",
            all.record_errors
        );
        let kind = all
            .records
            .first()
            .map(|r| r.record.kind())
            .expect("records");
        let tags = count_record_tags(&decompressed(path), kind.element());
        if name == TRUNCATED {
            match &all.fatal {
                Some(Error::Truncated { records, .. }) => {
                    assert_eq!(*records, all.records.len() as u64)
                }
                other => panic!("{name}: expected a truncation error, got {other:?}"),
            }
            assert_eq!(all.records.len(), 8_649);
            assert_eq!(
                all.records.len() + 1,
                tags,
                "{name}: the cut record is the only one missing"
            );
        } else {
            assert!(all.fatal.is_none(), "{name}: {:?}", all.fatal);
            assert_eq!(all.records.len(), tags, "{name}: records vs start tags");
            assert!(all.records.iter().all(|r| r.record.kind() == kind));
        }
        total += all.records.len();
    }
    assert!(total > 20_000, "{total}");
}

#[test]
fn parallel_reader_matches_sequential_on_real_excerpts() {
    let Some(dir) = shared_fixtures() else { return };
    for rel in [
        "nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz",
        "nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20260101_masters_sample_300000.xml.gz",
        "lukasaron__data-discogs/source_labels.xml",
        "philipmat__discogs-xml2db/discogs_20200806_artists.xml.gz",
    ] {
        let path = dir.join(rel);
        let sequential = read_all(&path);
        let reader = DumpReader::open_with(&path, ReadOptions::default()).unwrap();
        let mut parallel = Vec::new();
        let mut fatal = None;
        for item in ParallelReader::new(reader, 2, |p| (p.record.id(), p.hash, p.offset)) {
            match item {
                Ok(v) => parallel.push(v),
                Err(e) => fatal = Some(e.to_string()),
            }
        }
        let expected: Vec<_> = sequential.records.iter().map(|p| (p.record.id(), p.hash, p.offset)).collect();
        assert_eq!(parallel, expected, "{rel}");
        assert_eq!(fatal, sequential.fatal.map(|e| e.to_string()), "{rel}");
    }
}

#[test]
fn kind_comes_from_the_root_element() {
    let Some(dir) = shared_fixtures() else { return };
    for (rel, kind) in [
        ("elpassion__discogs_data/labels.xml", RecordKind::Label),
        (
            "echovisionlab__discogs-batch/release.xml.gz",
            RecordKind::Release,
        ),
        (
            "philipmat__discogs-xml2db/artist_11037.xml",
            RecordKind::Artist,
        ),
        ("jruaux__jdiscogs/masters.xml", RecordKind::Master),
    ] {
        assert_eq!(
            DumpReader::open(dir.join(rel)).unwrap().kind(),
            kind,
            "{rel}"
        );
    }
}
