//! Writes a Discogs-shaped dump of a given size, deterministically.
//!
//! ```text
//! cargo run --release -p discogs-benches --bin generate_dump -- KIND SIZE OUT [--seed N] [--era e1|e2|e3]
//! ```
//!
//! KIND is artists, labels, masters or releases; SIZE is the amount of XML, e.g. `200MB`
//! or `2GB` (decimal units); OUT ending in `.gz` is gzip-compressed (level 6, like the
//! dumps). Prints the records written and their average size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use discogs_benches::generate::Generator;
use discogs_parse::{write_record, DumpWriter, Era, Layout, RecordKind};

fn parse_size(s: &str) -> Option<u64> {
    let s = s.to_ascii_uppercase();
    let (num, mult) = if let Some(n) = s.strip_suffix("GB") {
        (n, 1_000_000_000)
    } else if let Some(n) = s.strip_suffix("MB") {
        (n, 1_000_000)
    } else if let Some(n) = s.strip_suffix("KB") {
        (n, 1_000)
    } else {
        (s.as_str(), 1)
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: generate_dump KIND SIZE OUT [--seed N] [--era e1|e2|e3]";
    if args.len() < 3 {
        eprintln!("{usage}");
        return ExitCode::FAILURE;
    }
    let (Ok(kind), Some(size)) = (args[0].parse::<RecordKind>(), parse_size(&args[1])) else {
        eprintln!("{usage}");
        return ExitCode::FAILURE;
    };
    let mut seed = 42;
    let mut era = Era::E3;
    let mut rest = args[3..].iter();
    while let Some(flag) = rest.next() {
        match (flag.as_str(), rest.next().map(String::as_str)) {
            ("--seed", Some(n)) if n.parse::<u64>().is_ok() => seed = n.parse().unwrap_or(42),
            ("--era", Some("e1")) => era = Era::E1,
            ("--era", Some("e2")) => era = Era::E2,
            ("--era", Some("e3")) => era = Era::E3,
            _ => {
                eprintln!("{usage}");
                return ExitCode::FAILURE;
            }
        }
    }
    match write(kind, size, &args[2], seed, era) {
        Ok((records, bytes)) => {
            println!(
                "{}: {records} {kind}, {bytes} bytes of XML, {} bytes per record",
                args[2],
                bytes / records.max(1)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error writing {}: {e}", args[2]);
            ExitCode::FAILURE
        }
    }
}

fn write(
    kind: RecordKind,
    size: u64,
    out: &str,
    seed: u64,
    era: Era,
) -> std::io::Result<(u64, u64)> {
    let file = BufWriter::with_capacity(1 << 20, File::create(out)?);
    let sink: Box<dyn Write> = if out.ends_with(".gz") {
        Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::new(6),
        ))
    } else {
        Box::new(file)
    };
    let layout = Layout::new(era);
    let mut writer = DumpWriter::new(sink, kind, layout)?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut scratch = Vec::new();
    for record in Generator::new(kind, seed) {
        if bytes >= size {
            break;
        }
        scratch.clear();
        write_record(&record, layout, &mut scratch);
        bytes += scratch.len() as u64 + 1;
        records += 1;
        writer.write(&record)?;
    }
    let mut inner = writer.finish()?;
    inner.flush()?;
    drop(inner);
    Ok((records, bytes))
}
