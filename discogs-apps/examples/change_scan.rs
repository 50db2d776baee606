//! The extractor's change detection alone, without a broker: reads a dump with the hash
//! store lookup on the parser's workers and reports records/s and peak memory.
//!
//! Run with `cargo run --release -p discogs-apps --example change_scan -- STORE_DIR FILE [--fill] [--workers N]`.
//! `--fill` records every record's hash (as confirmed publishing would) in batches of
//! 5,000; without it the file is only compared with the store (an unchanged second run
//! reads at this speed, minus the broker).

use std::path::PathBuf;
use std::time::Instant;

use discogs_apps::extractor::hashstore::HashStore;
use discogs_apps::extractor::scan::{scan, Item, ScanOptions};
use discogs_parse::DumpReader;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let store_dir = PathBuf::from(args.next().expect("STORE_DIR"));
    let file = PathBuf::from(args.next().expect("FILE"));
    let rest: Vec<String> = args.collect();
    let fill = rest.iter().any(|a| a == "--fill");
    let workers = rest
        .iter()
        .position(|a| a == "--workers")
        .and_then(|i| rest.get(i + 1))
        .map_or(2, |w| w.parse().expect("workers"));
    std::fs::create_dir_all(&store_dir)?;
    let store = HashStore::open(&store_dir.join(".record_hashes.redb"), 32 << 20)?;
    let kind = DumpReader::open(&file)?.kind();
    let started = Instant::now();
    let reader = scan(
        &file,
        store.snapshot(kind)?,
        ScanOptions {
            workers,
            ..ScanOptions::default()
        },
    )?;
    let (mut changed, mut unchanged) = (0u64, 0u64);
    let mut batch = Vec::with_capacity(5_000);
    for item in reader {
        match item?.map_err(anyhow::Error::msg)? {
            Item::Changed { record, .. } => {
                changed += 1;
                if fill {
                    batch.push((record.id(), record.hash()));
                    if batch.len() == 5_000 {
                        store.record(kind, &batch)?;
                        batch.clear();
                    }
                }
            }
            Item::Unchanged { .. } | Item::Done { .. } => unchanged += 1,
        }
    }
    if fill && !batch.is_empty() {
        store.record(kind, &batch)?;
    }
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = (changed + unchanged) as f64 / secs;
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    println!("{kind}: {changed} changed, {unchanged} unchanged in {secs:.2} s = {rate:.0} records/s; peak {rss}");
    Ok(())
}
