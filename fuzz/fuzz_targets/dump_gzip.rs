//! The gzip path of the dump reader: valid, multi-member, truncated and corrupt gzip.
//!
//! The input picks one of four modes (from a hash of its bytes, so plain XML seeds work):
//! 0. gzip-compress the input: must read exactly like the plain input;
//! 1. compress it as two gzip members (split at a point the input picks): the same;
//! 2. compress it, then cut the compressed stream short: no panic, every item before the
//!    final error is the one the plain input gives at that place;
//! 3. the gzip magic followed by the raw input (a corrupt stream): no panic, terminates.
#![no_main]

use std::io::Write;

use discogs_parse::ReadOptions;
use discogs_parse_fuzz::{read_sequential, selector, Item, Outcome};
use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).expect("writing to a Vec");
    encoder.finish().expect("writing to a Vec")
}

fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

fuzz_target!(|data: &[u8]| {
    let pick = selector(data);
    let split = (pick >> 8) as usize % (data.len() + 1);
    match pick % 4 {
        0 | 1 => {
            // A plain input that itself starts with the gzip magic would be decompressed
            // once more: no reference to compare with.
            if is_gzip(data) {
                read_sequential(data, ReadOptions::default());
                return;
            }
            let compressed = if pick % 4 == 0 {
                gzip(data)
            } else {
                let mut both = gzip(&data[..split]);
                both.extend_from_slice(&gzip(&data[split..]));
                both
            };
            let plain = read_sequential(data, ReadOptions::default());
            let unzipped = read_sequential(&compressed, ReadOptions::default());
            assert_eq!(
                unzipped, plain,
                "gzip input reads differently from the plain input"
            );
        }
        2 => {
            if is_gzip(data) {
                read_sequential(data, ReadOptions::default());
                return;
            }
            let compressed = gzip(data);
            // Keep the magic so the input is still taken as gzip.
            let cut = 2 + (pick >> 8) as usize % (compressed.len() - 2);
            let plain = read_sequential(data, ReadOptions::default());
            let truncated = read_sequential(&compressed[..cut], ReadOptions::default());
            if let (Outcome::Items(plain), Outcome::Items(truncated)) = (&plain, &truncated) {
                let Some((Item::End(_), before)) = truncated.split_last() else {
                    panic!("a truncated gzip stream ended without an error: {truncated:?}");
                };
                for (i, item) in before.iter().enumerate() {
                    // The last record before the cut may be read from a shorter prefix of
                    // the XML, so only complete records and record errors are compared.
                    assert_eq!(
                        Some(item),
                        plain.get(i),
                        "item {i} differs between the truncated and the plain input"
                    );
                }
            }
        }
        _ => {
            let mut corrupt = vec![0x1f, 0x8b];
            corrupt.extend_from_slice(data);
            read_sequential(&corrupt, ReadOptions::default());
        }
    }
});
