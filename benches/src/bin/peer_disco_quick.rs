//! Counts the records of a dump with disco-quick 0.2.0, the fastest other Rust parser of
//! the Discogs dumps we know, so that the benchmark script can run it side by side with
//! ours on the same machine at the same time.
//!
//! ```text
//! cargo run --release -p discogs-benches --bin peer_disco_quick -- FILE
//! ```
//!
//! Prints the same line format as `examples/parse_dump` (MB/s of XML: for `.gz` input
//! the XML size is taken from a first pass with our reader, passed as a second argument).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use disco_quick::DiscogsReader;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: peer_disco_quick FILE [XML_BYTES]");
        return ExitCode::FAILURE;
    };
    let xml_bytes = match args.get(1).and_then(|b| b.parse::<u64>().ok()) {
        Some(b) => b,
        None => match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) => {
                eprintln!("error: {path}: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let started = Instant::now();
    let (kind, records) = match DiscogsReader::from_path(Path::new(path)) {
        Ok(DiscogsReader::Artists(r)) => ("artists", r.count()),
        Ok(DiscogsReader::Labels(r)) => ("labels", r.count()),
        Ok(DiscogsReader::Masters(r)) => ("masters", r.count()),
        Ok(DiscogsReader::Releases(r)) => ("releases", r.count()),
        Err(e) => {
            eprintln!("error: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let mb = xml_bytes as f64 / 1e6;
    println!(
        "{path}: {kind} {records} records, 0 malformed, {mb:.1} MB XML in {secs:.2} s: {:.0} MB/s, {:.0} records/s",
        mb / secs,
        records as f64 / secs
    );
    ExitCode::SUCCESS
}
