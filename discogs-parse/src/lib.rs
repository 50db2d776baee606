//! Fast streaming reader for the Discogs data dumps.
//!
//! [`DumpReader`] opens a dump (plain XML or gzip, recognised by content), finds its kind
//! from the root element, and streams typed [`Record`]s, each with its SHA-256
//! [`RecordHash`] and byte offset. Text without escapes is borrowed from the reader's
//! buffer; [`DumpReader::next_record`] lends such records, while the [`Iterator`]
//! implementation hands out owned ones. [`ParallelReader`] parses on all cores and keeps
//! record order.
//!
//! It reads every format era from 2008 to 2026: files without a root element, control
//! characters, bare `&`, `&#13;`, empty versus absent elements, ids as `<id>0</id>` or
//! missing, nested same-name elements, a missing `status`. A malformed record is reported
//! with its byte offset and id ([`RecordError`]) and reading goes on; a truncated or
//! corrupt file ends with [`Error::Truncated`] or [`Error::Io`] after the records before it.
//!
//! [`DumpFileName`] and [`parse_checksums`] read the names and CHECKSUM files Discogs
//! publishes.
//!
//! ```
//! use discogs_parse::{DumpReader, ReadOptions, Record};
//!
//! let xml = r#"<releases><release id="1" status="Accepted"><title>Stockholm</title>
//!   <released>1999-03-00</released></release></releases>"#;
//! let mut reader = DumpReader::from_reader(xml.as_bytes(), "example", ReadOptions::default())?;
//! while let Some(item) = reader.next_record() {
//!     let parsed = item?;
//!     if let Record::Release(r) = &parsed.record {
//!         assert_eq!((r.id, r.title.as_ref(), r.year), (1, "Stockholm", Some(1999)));
//!         println!("{} {}", r.id, parsed.hash);
//!     }
//! }
//! # Ok::<(), discogs_parse::Error>(())
//! ```
//!
//! `examples/parse_dump.rs` in the repository counts the records of any dump and prints
//! the throughput.
#![deny(missing_docs)]

mod error;
mod names;
mod parallel;
mod reader;
mod records;
mod split;
mod write;
mod xml;

pub use discogs_model::{Record, RecordHash, RecordKind};
pub use error::{Error, RecordError};
pub use names::{parse_checksums, ChecksumEntry, DumpContent, DumpDate, DumpFileName, NameError};
pub use parallel::ParallelReader;
pub use reader::{DumpReader, ParsedRecord, Progress, ReadOptions};
pub use write::{write_record, DumpWriter, Era, Layout};

/// Parses one record of the given kind from its XML text (`<release …>…</release>`),
/// without hashing it. Text is borrowed from `xml` where possible.
///
/// # Errors
///
/// A [`RecordError`] (file `<record>`, offsets within `xml`) when the text is not a
/// well-formed record of that kind.
pub fn parse_record(kind: RecordKind, xml: &str) -> Result<Record<'_>, RecordError> {
    records::parse_record(kind, xml).map_err(|e| RecordError {
        file: "<record>".into(),
        kind,
        offset: e.offset as u64,
        record_offset: 0,
        id: None,
        message: e.message.into_owned(),
    })
}

/// The code in the repository's README, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
