//! Integration tests for discogs-parse: real fixtures, hand-written quirks, bad input,
//! and round trips of generated records through every era's layout.

mod bad_input;
mod fixtures;
mod fuzzing;
mod names;
mod quirks;
mod records;
mod roundtrip;

use std::path::{Path, PathBuf};

use discogs_parse::{DumpReader, Error, ParsedRecord, ReadOptions, Record};

pub use discogs_testkit::shared_fixtures;

/// A file in the shared fixtures (`None` when the folder is absent).
pub fn fixture(rel: &str) -> Option<PathBuf> {
    shared_fixtures().map(|d| d.join(rel))
}

/// A hand-written test input in `tests/data`.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Everything a reader yields: the records, the record errors, and the final error.
#[derive(Debug)]
pub struct ReadAll {
    /// Records, in order.
    pub records: Vec<ParsedRecord<'static>>,
    /// Malformed records.
    pub record_errors: Vec<discogs_parse::RecordError>,
    /// The error that ended the stream.
    pub fatal: Option<Error>,
}

/// Reads the whole dump at `path`, without a limit on record errors.
pub fn read_all(path: &Path) -> ReadAll {
    let reader = DumpReader::open_with(path, ReadOptions::default().max_errors(None))
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    collect(reader)
}

/// Drains `reader`.
pub fn collect(reader: DumpReader) -> ReadAll {
    let mut out = ReadAll {
        records: Vec::new(),
        record_errors: Vec::new(),
        fatal: None,
    };
    for item in reader {
        match item {
            Ok(r) => out.records.push(r),
            Err(Error::Record(e)) => out.record_errors.push(e),
            Err(e) => {
                assert!(out.fatal.is_none(), "two fatal errors");
                out.fatal = Some(e);
            }
        }
    }
    out
}

/// The only record with `id` in `path`.
pub fn record(path: &Path, id: u64) -> Record<'static> {
    let all = read_all(path);
    assert!(all.record_errors.is_empty(), "{:?}", all.record_errors);
    let mut found = all.records.into_iter().filter(|r| r.record.id() == id);
    let first = found
        .next()
        .unwrap_or_else(|| panic!("no record {id} in {}", path.display()));
    assert!(
        found.next().is_none(),
        "record {id} twice in {}",
        path.display()
    );
    first.record
}
