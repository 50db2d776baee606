//! Shared checks for the fuzz targets in `fuzz_targets/`.
//!
//! Every function here panics (which libFuzzer reports as a crash) when the parser
//! breaks one of its promises: it must never panic, must terminate, and every record it
//! returns must carry the hash of its own canonical encoding, borrowed or owned.

use std::io::Cursor;

use discogs_model::{Record, RecordHash, RecordHasher, RecordKind};
use discogs_parse::{DumpReader, Error, ParallelReader, ParsedRecord, ReadOptions};

/// What one item of a dump stream came out as, in a form two runs can be compared by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A record, with its hash and offset.
    Ok {
        offset: u64,
        hash: RecordHash,
        record: Record<'static>,
    },
    /// A malformed record (the stream goes on); its message.
    RecordError { record_offset: u64, message: String },
    /// The error that ended the stream; its message.
    End(String),
}

/// How a whole dump read came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `DumpReader::from_reader` refused the input.
    Refused(String),
    /// The items, in order (an `Item::End` is always the last).
    Items(Vec<Item>),
}

/// Checks one successfully parsed record: the hash the reader computed is the record's
/// own hash, computed again, with a fresh hasher, and after `into_owned`.
pub fn check_parsed(parsed: &ParsedRecord<'_>) -> Item {
    let recomputed = parsed.record.hash();
    assert_eq!(
        parsed.hash, recomputed,
        "ParsedRecord::hash differs from Record::hash() at offset {}",
        parsed.offset
    );
    assert_eq!(
        RecordHasher::new().hash(&parsed.record),
        recomputed,
        "RecordHasher and RecordHash::of disagree"
    );
    let owned = parsed.record.clone().into_owned();
    assert_eq!(
        owned.hash(),
        recomputed,
        "hash changes after into_owned() at offset {}",
        parsed.offset
    );
    assert_eq!(
        owned, parsed.record,
        "into_owned() changed the record at offset {}",
        parsed.offset
    );
    let owned_parsed = parsed.clone().into_owned();
    assert_eq!(owned_parsed.hash, parsed.hash);
    assert_eq!(owned_parsed.offset, parsed.offset);
    Item::Ok {
        offset: parsed.offset,
        hash: parsed.hash,
        record: owned,
    }
}

fn open(bytes: Vec<u8>, options: ReadOptions) -> Result<DumpReader, String> {
    match DumpReader::from_reader(Cursor::new(bytes), "<fuzz>", options) {
        Ok(reader) => Ok(reader),
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::NotADump { .. }
                        | Error::Truncated { .. }
                        | Error::Io { .. }
                        | Error::Open { .. }
                ),
                "from_reader failed with an unexpected error kind: {e:?}"
            );
            Err(e.to_string())
        }
    }
}

fn item_of_error(e: &Error) -> Item {
    match e {
        Error::Record(r) => {
            assert!(
                r.offset >= r.record_offset,
                "RecordError offset {} before its record {}",
                r.offset,
                r.record_offset
            );
            Item::RecordError {
                record_offset: r.record_offset,
                message: e.to_string(),
            }
        }
        other => Item::End(other.to_string()),
    }
}

/// Reads `bytes` as a dump with [`DumpReader::next_record`], checking every record and
/// that the stream terminates, keeps offsets increasing, and stays ended after its
/// final error.
pub fn read_sequential(bytes: &[u8], options: ReadOptions) -> Outcome {
    // Every record or error consumes at least one byte of XML; decompression can expand
    // the input, so the bound is generous but finite.
    read_sequential_bounded(bytes, options, bytes.len().saturating_mul(1100) + 16)
}

/// [`read_sequential`] with an explicit bound on the number of items.
pub fn read_sequential_bounded(bytes: &[u8], options: ReadOptions, max_items: usize) -> Outcome {
    let mut reader = match open(bytes.to_vec(), options) {
        Ok(r) => r,
        Err(message) => return Outcome::Refused(message),
    };
    let kind = reader.kind();
    let mut items = Vec::new();
    let mut last_offset: Option<u64> = None;
    while let Some(result) = reader.next_record() {
        assert!(
            items.len() <= max_items,
            "DumpReader does not terminate: more than {max_items} items"
        );
        let item = match &result {
            Ok(parsed) => {
                assert_eq!(parsed.record.kind(), kind, "record of the wrong kind");
                check_parsed(parsed)
            }
            Err(e) => item_of_error(e),
        };
        let offset = match &item {
            Item::Ok { offset, .. } => Some(*offset),
            Item::RecordError { record_offset, .. } => Some(*record_offset),
            Item::End(_) => None,
        };
        if let Some(offset) = offset {
            if let Some(last) = last_offset {
                assert!(
                    offset > last,
                    "record offsets do not increase: {offset} after {last}"
                );
            }
            last_offset = Some(offset);
        }
        let end = matches!(item, Item::End(_));
        items.push(item);
        if end {
            break;
        }
    }
    // Once ended (cleanly or by an error), the reader stays ended.
    for _ in 0..2 {
        assert!(
            reader.next_record().is_none(),
            "DumpReader yields items after its end"
        );
    }
    let progress = reader.progress();
    assert!(
        progress.errors <= progress.records,
        "more errors than records: {progress:?}"
    );
    Outcome::Items(items)
}

/// Reads `bytes` with a [`ParallelReader`] of `workers` threads, checking every record
/// on the worker threads.
pub fn read_parallel(bytes: &[u8], options: ReadOptions, workers: usize) -> Outcome {
    let reader = match open(bytes.to_vec(), options) {
        Ok(r) => r,
        Err(message) => return Outcome::Refused(message),
    };
    let parallel = ParallelReader::new(reader, workers, |parsed| check_parsed(&parsed));
    let mut items = Vec::new();
    for result in parallel {
        match result {
            Ok(item) => items.push(item),
            Err(e) => items.push(item_of_error(&e)),
        }
    }
    Outcome::Items(items)
}

/// A cheap, mutation-sensitive selector derived from the input (no bytes are consumed,
/// so seed files stay meaningful as they are).
pub fn selector(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Parses `xml` as a record of `kind` and checks a successful result: parsing is
/// deterministic, the hash is stable across `into_owned` and hashers.
pub fn check_record(kind: RecordKind, xml: &str) {
    match discogs_parse::parse_record(kind, xml) {
        Ok(record) => {
            assert_eq!(
                record.kind(),
                kind,
                "parse_record returned a record of another kind"
            );
            let hash = record.hash();
            assert_eq!(
                RecordHasher::new().hash(&record),
                hash,
                "RecordHasher and RecordHash::of disagree"
            );
            let again = discogs_parse::parse_record(kind, xml)
                .expect("second parse of the same text failed");
            assert_eq!(again, record, "parse_record is not deterministic");
            let owned = record.clone().into_owned();
            assert_eq!(owned, record, "into_owned() changed the record");
            assert_eq!(owned.hash(), hash, "hash changes after into_owned()");
            let _ = (record.id(), record.name());
        }
        Err(e) => {
            assert_eq!(e.kind, kind);
            assert!(
                e.offset <= xml.len() as u64,
                "error offset {} past the end of the {}-byte input",
                e.offset,
                xml.len()
            );
            let _ = e.to_string();
        }
    }
}
