//! Dump file names and CHECKSUM files, on the real bucket listings and CHECKSUM files.

use std::path::Path;

use discogs_parse::{parse_checksums, DumpContent, DumpFileName, RecordKind};
use sha2::{Digest, Sha256};

use crate::{fixture, shared_fixtures};

/// The `<Key>` values of an S3 bucket listing.
fn keys(listing: &Path) -> Vec<String> {
    let xml = std::fs::read_to_string(listing).unwrap();
    xml.split("<Key>")
        .skip(1)
        .map(|k| k.split("</Key>").next().unwrap().to_owned())
        .collect()
}

#[test]
fn every_dump_key_in_the_2008_2022_listing_parses() {
    let Some(listing) = fixture("dsub-io__go-open-discogs-batch/data.xml") else {
        return;
    };
    let keys = keys(&listing);
    assert_eq!(keys.len(), 777);
    let names: Vec<DumpFileName> = keys
        .iter()
        .map(|k| DumpFileName::parse(k).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    // The year folder always equals the date's year, and names print back as written.
    for (key, name) in keys.iter().zip(&names) {
        assert!(
            key.starts_with(&format!("data/{}/", name.date.year)),
            "{key}"
        );
        assert!(key.ends_with(&name.to_string()), "{key}");
    }
    let dates: std::collections::BTreeSet<_> = names.iter().map(|n| n.date).collect();
    assert_eq!(dates.len(), 166);
    assert_eq!(dates.first().unwrap().to_string(), "20080309");
    assert_eq!(dates.last().unwrap().to_string(), "20221101");
    let masters = names
        .iter()
        .filter(|n| n.kind() == Some(RecordKind::Master))
        .count();
    let checksums = names
        .iter()
        .filter(|n| n.content == DumpContent::Checksum)
        .count();
    assert!(masters > 100 && checksums > 150, "{masters} {checksums}");
}

#[test]
fn other_keys_in_the_old_bucket_are_rejected() {
    let Some(listing) = fixture("echovisionlab__discogs-batch/DiscogsDataDump.xml") else {
        return;
    };
    let keys = keys(&listing);
    assert_eq!(keys.len(), 710);
    let (dumps, others): (Vec<_>, Vec<_>) =
        keys.iter().partition(|k| DumpFileName::parse(k).is_ok());
    assert!(others.iter().any(|k| k.as_str() == "index.html"));
    assert!(
        others
            .iter()
            .all(|k| !k.contains("discogs_") || k.ends_with('/')),
        "{others:?}"
    );
    assert!(dumps.len() > 680, "{}", dumps.len());
}

/// The CHECKSUM fixtures list SHA-256s that match the data files beside them.
#[test]
fn checksum_files_match_their_data_files() {
    let Some(dir) = shared_fixtures() else { return };
    let mut verified = 0;
    for (checksum, folder) in [
        ("tgmz__de.tgmz.discogs/discogs_CHECKSUM.txt", "tgmz__de.tgmz.discogs"),
        ("nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_CHECKSUM.txt", "nicolascalo__discogs_lakehouse_graph_data_platform"),
        ("nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20260101_sample_300000_CHECKSUM.txt", "nicolascalo__discogs_lakehouse_graph_data_platform"),
    ] {
        let text = std::fs::read_to_string(dir.join(checksum)).unwrap();
        let entries = parse_checksums(&text).unwrap();
        assert!(entries.len() >= 2, "{checksum}");
        for e in entries {
            let path = dir.join(folder).join(&e.file);
            if let Ok(bytes) = std::fs::read(&path) {
                let actual: [u8; 32] = Sha256::digest(&bytes).into();
                assert_eq!(actual, e.sha256, "{}", path.display());
                verified += 1;
            }
        }
    }
    // tgmz: 4 files; nicolascalo: the 2025-11 releases and the 2026-01 masters samples.
    assert_eq!(verified, 6);
    // The 20250101 file lists names of another date; it still parses.
    let other =
        std::fs::read_to_string(dir.join("tgmz__de.tgmz.discogs/discogs_20250101_CHECKSUM.txt"))
            .unwrap();
    let entries = parse_checksums(&other).unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(
        DumpFileName::parse(&entries[0].file).unwrap().to_string(),
        "discogs_20250201_labels.xml.gz"
    );
}
