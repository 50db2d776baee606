//! The [`Sink`] trait: where batches of records end up (PostgreSQL, Neo4j, a file...).
//!
//! A sink receives finished batches of records of one kind, each with its [`RecordHash`]
//! (computed once, by whoever parsed the record), and reports what happened to them in a
//! [`SinkOutcome`]: how many rows were inserted, updated, or left alone because the stored
//! hash was already the same. The contract every implementation keeps:
//!
//! * **Idempotent**: writing the same batch twice changes nothing the second time
//!   (`unchanged == records.len()`), so a redelivered message is harmless.
//! * **Hash-gated**: a record whose hash equals the stored one costs no write.
//! * **Last write wins** within a batch: when an id appears twice, the later record is kept.
//! * **No ordering between kinds**: a release may arrive before the artists, labels and
//!   master it refers to; dangling references are kept, never an error.
//! * **Errors say whether a retry can help** ([`SinkError::is_retriable`]): a consumer
//!   requeues a batch on a retriable error and dead-letters it otherwise.
//! * **Durable on return**: when `write_batch` returns `Ok`, the batch is committed, so
//!   the consumer may acknowledge the messages that carried it.
//!
//! The methods return `impl Future + Send` rather than being `async fn`, so that callers
//! on a multi-threaded runtime may rely on the futures being `Send`. Nothing here depends
//! on an async runtime.
//!
//! ```
//! use std::convert::Infallible;
//! use std::future::Future;
//! use discogs_model::{Record, RecordKind, Sink, SinkError, SinkOutcome, SinkRecord};
//!
//! /// Counts records and remembers nothing.
//! #[derive(Debug, Default)]
//! struct Counter(u64);
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("never happens")]
//! struct Never;
//! impl SinkError for Never {
//!     fn is_retriable(&self) -> bool { false }
//! }
//!
//! impl Sink for Counter {
//!     type Error = Never;
//!     fn write_batch(
//!         &mut self,
//!         _kind: RecordKind,
//!         records: &[SinkRecord<'_>],
//!     ) -> impl Future<Output = Result<SinkOutcome, Never>> + Send {
//!         self.0 += records.len() as u64;
//!         let n = records.len() as u64;
//!         async move { Ok(SinkOutcome { inserted: n, ..SinkOutcome::default() }) }
//!     }
//! }
//! ```

use std::future::Future;

use crate::{Record, RecordHash, RecordKind};

/// An error from a [`Sink`], which knows whether trying again can succeed.
pub trait SinkError: std::error::Error + Send + Sync + 'static {
    /// `true` when the same batch may succeed later (connection lost, server restarting,
    /// deadlock, lock timeout, out of resources); `false` when it never will (bad data,
    /// constraint violated, wrong configuration), so the batch should be dead-lettered.
    fn is_retriable(&self) -> bool;
}

/// One record handed to a sink, with its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRecord<'a> {
    /// The record.
    pub record: Record<'a>,
    /// [`RecordHash::of`] the record, as computed by the parser.
    pub hash: RecordHash,
}

impl<'a> SinkRecord<'a> {
    /// Wraps `record`, hashing it.
    #[must_use]
    pub fn new(record: Record<'a>) -> Self {
        let hash = record.hash();
        Self { record, hash }
    }
}

impl<'a> From<Record<'a>> for SinkRecord<'a> {
    fn from(record: Record<'a>) -> Self {
        Self::new(record)
    }
}

/// A record of another kind than its batch's, found by [`latest_by_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a record of kind {found} (id {id}) in a batch of {expected}")]
pub struct KindMismatch {
    /// The batch's kind.
    pub expected: RecordKind,
    /// The record's kind.
    pub found: RecordKind,
    /// The record's id.
    pub id: u64,
}

/// The records of a batch that a sink writes, as the contract says: every record must be
/// of `kind`, and of the records sharing an id only the last one counts. Returns them in
/// batch order (by the position of each id's last occurrence).
///
/// # Errors
///
/// [`KindMismatch`] for the first record of another kind.
pub fn latest_by_id<'b, 'r>(
    kind: RecordKind,
    records: &'b [SinkRecord<'r>],
) -> Result<Vec<&'b SinkRecord<'r>>, KindMismatch> {
    let mut last = std::collections::HashMap::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        if r.record.kind() != kind {
            return Err(KindMismatch {
                expected: kind,
                found: r.record.kind(),
                id: r.record.id(),
            });
        }
        last.insert(r.record.id(), i);
    }
    Ok(records
        .iter()
        .enumerate()
        .filter(|(i, r)| last.get(&r.record.id()) == Some(i))
        .map(|(_, r)| r)
        .collect())
}

/// What a [`Sink::write_batch`] did with a batch.
///
/// `inserted + updated + unchanged` equals the number of records in the batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SinkOutcome {
    /// Records whose id was not stored before.
    pub inserted: u64,
    /// Records that replaced a stored record with a different hash.
    pub updated: u64,
    /// Records whose hash equalled the stored one (nothing written), and repeats of an
    /// id within the batch.
    pub unchanged: u64,
}

impl SinkOutcome {
    /// `inserted + updated + unchanged`.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.unchanged
    }

    /// Records that caused a write (`inserted + updated`).
    #[must_use]
    pub fn written(&self) -> u64 {
        self.inserted + self.updated
    }
}

impl std::ops::AddAssign for SinkOutcome {
    fn add_assign(&mut self, rhs: Self) {
        self.inserted += rhs.inserted;
        self.updated += rhs.updated;
        self.unchanged += rhs.unchanged;
    }
}

impl std::ops::Add for SinkOutcome {
    type Output = Self;
    fn add(mut self, rhs: Self) -> Self {
        self += rhs;
        self
    }
}

/// A destination for batches of records. See the [module documentation](self) for the
/// contract.
pub trait Sink: Send {
    /// What can go wrong, and whether a retry can help.
    type Error: SinkError;

    /// Writes `records`, all of kind `kind`, and returns once they are durable.
    ///
    /// # Errors
    ///
    /// A record of another kind than `kind` is a permanent error; so is data the store
    /// refuses. Lost connections and other transient failures are retriable errors, after
    /// which nothing or all of the batch may have been written: writing it again is safe.
    fn write_batch(
        &mut self,
        kind: RecordKind,
        records: &[SinkRecord<'_>],
    ) -> impl Future<Output = Result<SinkOutcome, Self::Error>> + Send;

    /// Makes everything written so far durable. The default does nothing, for sinks whose
    /// `write_batch` commits before it returns.
    ///
    /// # Errors
    ///
    /// As for [`Sink::write_batch`].
    fn flush(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        std::future::ready(Ok(()))
    }

    /// Checks that the store can be reached (for a service's `/health`). The default
    /// reports healthy.
    ///
    /// # Errors
    ///
    /// When the store cannot be reached or refuses the sink's queries.
    fn health_check(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        std::future::ready(Ok(()))
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    type Error = S::Error;

    fn write_batch(
        &mut self,
        kind: RecordKind,
        records: &[SinkRecord<'_>],
    ) -> impl Future<Output = Result<SinkOutcome, Self::Error>> + Send {
        (**self).write_batch(kind, records)
    }

    fn flush(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).flush()
    }

    fn health_check(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).health_check()
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    type Error = S::Error;

    fn write_batch(
        &mut self,
        kind: RecordKind,
        records: &[SinkRecord<'_>],
    ) -> impl Future<Output = Result<SinkOutcome, Self::Error>> + Send {
        (**self).write_batch(kind, records)
    }

    fn flush(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).flush()
    }

    fn health_check(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).health_check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Artist, Label};

    #[test]
    fn latest_by_id_keeps_the_last_occurrence_and_refuses_other_kinds() {
        let artist = |id, name: &str| {
            SinkRecord::new(Record::Artist(Artist {
                id,
                name: name.to_owned().into(),
                ..Artist::default()
            }))
        };
        let batch = [artist(1, "a"), artist(2, "b"), artist(1, "c")];
        let kept = latest_by_id(RecordKind::Artist, &batch).unwrap();
        let names: Vec<&str> = kept.iter().map(|r| r.record.name()).collect();
        assert_eq!(names, ["b", "c"]);
        let label = SinkRecord::new(Record::Label(Label {
            id: 5,
            ..Label::default()
        }));
        let mixed = [artist(1, "a"), label];
        assert_eq!(
            latest_by_id(RecordKind::Artist, &mixed),
            Err(KindMismatch {
                expected: RecordKind::Artist,
                found: RecordKind::Label,
                id: 5
            })
        );
    }
}
