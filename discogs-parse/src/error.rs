//! Errors: per-record problems the stream recovers from, and problems that end it.

use std::io;
use std::sync::Arc;

use discogs_model::RecordKind;

/// A record that could not be parsed. The stream goes on with the next record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: malformed {kind} record at byte {offset}{}: {message}", id_note(*.id))]
#[non_exhaustive]
pub struct RecordError {
    /// The input's name (a path, or `<input>`).
    pub file: Arc<str>,
    /// The record's kind.
    pub kind: RecordKind,
    /// Byte offset of the problem in the (decompressed) XML stream.
    pub offset: u64,
    /// Byte offset where the record starts in the (decompressed) XML stream.
    pub record_offset: u64,
    /// The record's id, when it could be read.
    pub id: Option<u64>,
    /// What is wrong.
    pub message: String,
}

fn id_note(id: Option<u64>) -> String {
    id.map_or_else(String::new, |id| format!(" (id {id})"))
}

/// Why reading a dump failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// One malformed record; reading can continue.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Reading or decompressing failed (a corrupt or truncated gzip stream is reported here).
    #[error(
        "{file}: {what} at byte {offset} of the XML stream, after {records} records: {source}"
    )]
    Io {
        /// The input's name.
        file: Arc<str>,
        /// What the reader was doing (`reading`, `decompressing`).
        what: &'static str,
        /// Bytes of XML read successfully before the failure.
        offset: u64,
        /// Records returned before the failure.
        records: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The input ended inside a record, or before the root element was closed.
    #[error(
        "{file}: input is truncated at byte {offset}, after {records} complete records ({detail})"
    )]
    Truncated {
        /// The input's name.
        file: Arc<str>,
        /// Bytes of XML read.
        offset: u64,
        /// Complete records returned before the truncation.
        records: u64,
        /// What was left open.
        detail: String,
    },
    /// The input is not a Discogs dump: not XML, or XML with another root element.
    #[error("{file}: not a Discogs dump at byte {offset}: {detail}")]
    NotADump {
        /// The input's name.
        file: Arc<str>,
        /// Where the problem was found.
        offset: u64,
        /// What was found instead.
        detail: String,
    },
    /// More malformed records than the configured limit.
    #[error("{file}: stopped after {errors} malformed records (limit {limit})")]
    TooManyErrors {
        /// The input's name.
        file: Arc<str>,
        /// Malformed records seen.
        errors: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The input could not be opened.
    #[error("cannot open {file}: {source}")]
    Open {
        /// The path.
        file: Arc<str>,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// `true` for a per-record error, after which the stream goes on.
    #[must_use]
    pub fn is_record_error(&self) -> bool {
        matches!(self, Self::Record(_))
    }

    /// Whether trying again may succeed: only for I/O errors that are transient by nature
    /// (interrupted, timed out, would block). A corrupt or truncated file needs a new
    /// download, not a retry.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Io { source, .. } | Self::Open { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }
}
