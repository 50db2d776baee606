//! Reading a dump file with change detection: every record is parsed and hashed on the
//! parser's worker threads, which also compare the hash with the hash store's snapshot,
//! so only new and changed records leave the workers, already encoded for the bus. Records before
//! the resume point are only counted (their ids are still needed to find removed ids).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use discogs_model::wire::EncodedRecord;
use discogs_model::SinkRecord;
use discogs_parse::{DumpReader, ParallelReader, ReadOptions};

use super::hashstore::Snapshot;

/// What the workers make of one record.
#[derive(Debug)]
pub enum Item {
    /// New, or its hash differs from the stored one (or a full publish was asked for).
    Changed {
        /// The record with its hash, encoded for the bus on the worker thread (no owned
        /// copy of its text is made, and the publisher only appends bytes).
        record: EncodedRecord,
        /// Its byte offset in the XML stream.
        offset: u64,
    },
    /// Same hash as stored: nothing to publish.
    Unchanged {
        /// Its id.
        id: u64,
        /// Its byte offset.
        offset: u64,
    },
    /// At or before the resume point: published and confirmed in an earlier run.
    Done {
        /// Its id.
        id: u64,
        /// Its byte offset.
        offset: u64,
    },
}

impl Item {
    /// The record's id.
    #[must_use]
    pub fn id(&self) -> u64 {
        match self {
            Self::Changed { record, .. } => record.id(),
            Self::Unchanged { id, .. } | Self::Done { id, .. } => *id,
        }
    }

    /// The record's byte offset in the XML stream.
    #[must_use]
    pub fn offset(&self) -> u64 {
        match self {
            Self::Changed { offset, .. }
            | Self::Unchanged { offset, .. }
            | Self::Done { offset, .. } => *offset,
        }
    }
}

/// How to scan.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// Parser worker threads (at least 1).
    pub workers: usize,
    /// Treat every record as changed.
    pub force: bool,
    /// Records starting at or before this XML offset are [`Item::Done`].
    pub resume_after: Option<u64>,
}

/// A scan in progress: iterate it for items in file order.
pub type Scan = ParallelReader<Result<Item, String>>;

/// Opens `path` and starts the workers.
///
/// # Errors
///
/// When the file cannot be opened or is not a dump.
pub fn scan(path: &Path, snapshot: Snapshot, options: ScanOptions) -> anyhow::Result<Scan> {
    let reader = DumpReader::open_with(path, ReadOptions::default())
        .with_context(|| format!("opening {}", path.display()))?;
    let snapshot = Arc::new(snapshot);
    let ScanOptions {
        workers,
        force,
        resume_after,
    } = options;
    Ok(ParallelReader::new(reader, workers.max(1), move |parsed| {
        let id = parsed.record.id();
        let offset = parsed.offset;
        if resume_after.is_some_and(|r| offset <= r) {
            return Ok(Item::Done { id, offset });
        }
        if !force {
            let stored = snapshot
                .get(id)
                .map_err(|e| format!("hash store lookup of id {id}: {e}"))?;
            if stored == Some(parsed.hash) {
                return Ok(Item::Unchanged { id, offset });
            }
        }
        let record = SinkRecord {
            record: parsed.record,
            hash: parsed.hash,
        };
        let record =
            EncodedRecord::new(&record).map_err(|e| format!("encoding record {id}: {e}"))?;
        Ok(Item::Changed { record, offset })
    }))
}
