//! Counts the records of one or more Discogs dumps and prints the throughput.
//!
//! Run with:
//!
//! ```text
//! cargo run --release -p examples --example parse_dump -- [--parallel N] FILE...
//! ```
//!
//! Each FILE may be plain XML or gzip. Prints, per file: kind, records, malformed
//! records, XML MB, seconds, MB/s of XML and records/s.

use std::process::ExitCode;
use std::time::Instant;

use discogs_parse::{DumpReader, Error, ParallelReader, ReadOptions};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut threads = None;
    if args.first().map(String::as_str) == Some("--parallel") {
        threads = args.get(1).and_then(|n| n.parse::<usize>().ok());
        if threads.is_none() {
            eprintln!("--parallel needs a number of worker threads");
            return ExitCode::FAILURE;
        }
        args.drain(..2);
    }
    if args.is_empty() {
        eprintln!("usage: parse_dump [--parallel N] FILE...");
        return ExitCode::FAILURE;
    }
    let mut ok = true;
    for path in &args {
        if let Err(e) = count(path, threads) {
            eprintln!("error: {e}");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn count(path: &str, threads: Option<usize>) -> Result<(), Error> {
    let started = Instant::now();
    let options = ReadOptions::default().max_errors(None);
    let reader = DumpReader::open_with(path, options)?;
    let kind = reader.kind();
    let (mut records, mut malformed) = (0u64, 0u64);
    let mut fatal = None;
    let xml_bytes = match threads {
        None => {
            let mut reader = reader;
            loop {
                match reader.next_record() {
                    None => break,
                    Some(Ok(_)) => records += 1,
                    Some(Err(Error::Record(e))) => {
                        malformed += 1;
                        eprintln!("{e}");
                    }
                    Some(Err(e)) => fatal = Some(e),
                }
            }
            reader.progress().xml_bytes
        }
        Some(n) => {
            let mut par = ParallelReader::new(reader, n, |parsed| parsed.hash);
            for item in &mut par {
                match item {
                    Ok(_) => records += 1,
                    Err(Error::Record(e)) => {
                        malformed += 1;
                        eprintln!("{e}");
                    }
                    Err(e) => fatal = Some(e),
                }
            }
            par.progress().xml_bytes
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let mb = xml_bytes as f64 / 1e6;
    println!(
        "{path}: {kind} {records} records, {malformed} malformed, {mb:.1} MB XML in {secs:.2} s: {:.0} MB/s, {:.0} records/s",
        mb / secs,
        records as f64 / secs
    );
    match fatal {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
