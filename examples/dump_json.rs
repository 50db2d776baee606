//! Prints the records of a Discogs dump as JSON lines, with each record's hash.
//!
//! Run with:
//!
//! ```text
//! cargo run --release -p examples --example dump_json -- FILE [ID...]
//! ```
//!
//! With ids, prints only those records. Malformed records are reported on stderr.

use std::io::{self, Write};
use std::process::ExitCode;

use discogs_parse::{DumpReader, Error};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: dump_json FILE [ID...]");
        return ExitCode::FAILURE;
    };
    let ids: Vec<u64> = args[1..].iter().filter_map(|a| a.parse().ok()).collect();
    match run(path, &ids) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &str, ids: &[u64]) -> Result<(), Error> {
    let mut reader = DumpReader::open(path)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    while let Some(item) = reader.next_record() {
        match item {
            Ok(parsed) => {
                if !ids.is_empty() && !ids.contains(&parsed.record.id()) {
                    continue;
                }
                let line = serde_json::json!({ "hash": parsed.hash, "offset": parsed.offset, "record": parsed.record });
                if writeln!(out, "{line}").is_err() {
                    return Ok(()); // stdout closed (e.g. piped into `head`)
                }
            }
            Err(Error::Record(e)) => eprintln!("{e}"),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
