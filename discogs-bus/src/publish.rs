//! The [`Publisher`] trait and what it reports.

use std::future::Future;

use discogs_model::wire::{EncodedRecord, ExtractionComplete, FileComplete};
use discogs_model::{RecordKind, SinkRecord};

use crate::BusError;

/// The dump file whose records are being published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileRef {
    /// The kind of its records.
    pub kind: RecordKind,
    /// The dump version, e.g. `20260101`.
    pub version: String,
    /// The file's name, e.g. `discogs_20260101_artists.xml.gz`.
    pub file: String,
}

impl FileRef {
    /// A file of `kind` from dump `version`.
    #[must_use]
    pub fn new(kind: RecordKind, version: impl Into<String>, file: impl Into<String>) -> Self {
        Self {
            kind,
            version: version.into(),
            file: file.into(),
        }
    }
}

/// Where to take a file up again: the batches (and the records in them) that the broker
/// confirmed in an earlier run. The caller skips the first `records` records of the file
/// and the next batch gets the number `batches`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Resume {
    /// Batches confirmed (numbers `0..batches`).
    pub batches: u64,
    /// Records in those batches.
    pub records: u64,
}

/// How far the publishing of the open file has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProgress {
    /// The file.
    pub file: FileRef,
    /// Records accepted by [`Publisher::publish`] (counting those of a [`Resume`]).
    pub accepted_records: u64,
    /// Batches closed so far: the next batch's number.
    pub batches: u64,
    /// Batches `0..confirmed_batches` are all confirmed by the broker: safe to resume
    /// after, whatever happens to this process ([`FileProgress::resume_point`]).
    pub confirmed_batches: u64,
    /// Records in the confirmed batches.
    pub confirmed_records: u64,
    /// Ids sent and confirmed in `removed` messages ([`Publisher::removed`]).
    pub removed: u64,
}

impl FileProgress {
    /// The progress of `file` as [`Publisher::begin_file`] starts it: everything up to
    /// `resume` accepted and confirmed, nothing removed yet.
    pub(crate) fn starting(file: FileRef, resume: Resume) -> Self {
        Self {
            file,
            accepted_records: resume.records,
            batches: resume.batches,
            confirmed_batches: resume.batches,
            confirmed_records: resume.records,
            removed: 0,
        }
    }

    /// What to hand to [`Publisher::begin_file`] in a later run to continue after the
    /// confirmed batches.
    #[must_use]
    pub fn resume_point(&self) -> Resume {
        Resume {
            batches: self.confirmed_batches,
            records: self.confirmed_records,
        }
    }
}

/// Publishes the records of dump files in batches, and the control messages.
///
/// One file at a time: [`begin_file`](Self::begin_file), [`publish`](Self::publish) each
/// record, [`end_file`](Self::end_file) (which sends `file_complete` once every batch of
/// the file is confirmed); after the four files,
/// [`extraction_complete`](Self::extraction_complete).
///
/// Records are accepted when `publish` returns `Ok`; an error means the record was not
/// taken (call again with the same record to retry). Batches already accepted are never
/// dropped by an error: they wait in the publisher and are sent again by the next call.
/// [`progress`](Self::progress) tells which batches the broker has confirmed, the point
/// from which a later run can resume.
pub trait Publisher: Send {
    /// Starts publishing `file`, numbering its batches from `resume.batches` and counting
    /// its records from `resume.records` (use [`Resume::default`] for a fresh start).
    ///
    /// # Errors
    ///
    /// [`BusError::Usage`] when another file is still open.
    fn begin_file(&mut self, file: FileRef, resume: Resume) -> Result<(), BusError>;

    /// Adds `record` (of the open file's kind) to the current batch. Sends batches as they
    /// fill up (by count or by size) and waits when the window of unconfirmed messages is
    /// full, so memory stays bounded.
    ///
    /// # Errors
    ///
    /// [`BusError::Usage`] without an open file, [`BusError::Wire`] for a record of
    /// another kind, or a sending error (see [`BusError::is_retriable`]); in every case the
    /// record was not accepted.
    fn publish(
        &mut self,
        record: &SinkRecord<'_>,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// [`publish`](Self::publish) for a record encoded beforehand, e.g. on the thread that
    /// parsed it ([`EncodedRecord`]); a broker publisher only appends its bytes.
    ///
    /// # Errors
    ///
    /// As [`Publisher::publish`].
    fn publish_encoded(
        &mut self,
        record: &EncodedRecord,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Sends the last, partial batch, waits until the broker confirmed every batch of the
    /// file, then sends `file_complete` and waits for its confirm. Returns that message.
    ///
    /// # Errors
    ///
    /// As [`Publisher::flush`]; calling `end_file` again carries on where it stopped.
    fn end_file(&mut self) -> impl Future<Output = Result<FileComplete<'static>, BusError>> + Send;

    /// Sends the partial batch, then `ids` (records of the open file's kind that the dump
    /// no longer has) as `removed` messages of at most
    /// [`discogs_model::wire::REMOVED_CHUNK`] ids, and waits until the broker confirmed
    /// them all; the count goes into the file's `file_complete`. Call it after the file's
    /// last record and before [`end_file`](Self::end_file).
    ///
    /// # Errors
    ///
    /// [`BusError::Usage`] without an open file, else as [`Publisher::flush`]. Calling it
    /// again after an error may send some ids twice, which consumers absorb (deleting is
    /// idempotent); they are counted once.
    fn removed(&mut self, ids: &[u64]) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Sends `extraction_complete` on every kind's exchange and waits for the confirms.
    ///
    /// # Errors
    ///
    /// As [`Publisher::flush`].
    fn extraction_complete(
        &mut self,
        message: &ExtractionComplete<'_>,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Sends the partial batch and waits until everything sent is confirmed.
    ///
    /// # Errors
    ///
    /// A nack or a returned (unroutable) message, a missing confirm, or a connection that
    /// could not be re-established in time.
    fn flush(&mut self) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Progress of the open file, `None` when no file is open.
    fn progress(&self) -> Option<&FileProgress>;
}

/// The `file_complete` message for a file's progress.
pub(crate) fn complete_message(progress: &FileProgress) -> FileComplete<'static> {
    FileComplete {
        kind: progress.file.kind,
        version: progress.file.version.clone().into(),
        file: progress.file.file.clone().into(),
        batches: progress.batches,
        records: progress.accepted_records,
        removed: progress.removed,
    }
}
