//! The wire envelope: what one message on the bus carries.
//!
//! Every message body is one JSON object. There are four types, named by `"type"`:
//!
//! * **`batch`** ([`Batch`]): records of one kind from one dump file, each with the hash the
//!   parser computed, so that consumers never hash again.
//!
//!   ```json
//!   {"type":"batch","schema":1,"kind":"artist","version":"20260101",
//!    "file":"discogs_20260101_artists.xml.gz","seq":0,
//!    "records":[{"sha256":"9f86d0…","record":{"id":1,"name":"The Persuader"}}]}
//!   ```
//!
//!   `seq` numbers the batches of one file from 0, without gaps. A batch that was sent
//!   twice (a publisher re-sends what the broker had not confirmed when the connection
//!   dropped) has the same `(version, file, seq)` ([`Batch::id`]) and the same records, so
//!   it is recognisable, and harmless to consumers whose writes are idempotent.
//!   `record` holds the record's own fields (the serde form of [`crate::Artist`],
//!   [`crate::Label`], [`crate::Master`] or [`crate::Release`]); the batch's `kind` says
//!   which.
//!
//! * **`removed`** ([`Removed`]): ids of records of the kind that the previous dump had and
//!   this file no longer has (deleted from Discogs), for the consumers to delete. Sent
//!   after the file's last batch is confirmed and before its `file_complete`, in chunks of
//!   at most [`REMOVED_CHUNK`] ids; `seq` numbers the chunks of one file from 0. A chunk
//!   may be sent again (a publisher resuming after a crash sends the whole list again);
//!   deleting is idempotent.
//!
//!   ```json
//!   {"type":"removed","schema":1,"kind":"artist","version":"20260101",
//!    "file":"discogs_20260101_artists.xml.gz","seq":0,"ids":[17,4242]}
//!   ```
//!
//! * **`file_complete`** ([`FileComplete`]): sent after the last batch of a file (and its
//!   `removed` chunks), once the broker had confirmed every one of them: how many batches
//!   and records the file gave, and how many ids were sent as removed (`removed`, absent
//!   in messages of older publishers, read as 0).
//!
//!   ```json
//!   {"type":"file_complete","schema":1,"kind":"artist","version":"20260101",
//!    "file":"discogs_20260101_artists.xml.gz","batches":91102,"records":9110128,"removed":2}
//!   ```
//!
//! * **`extraction_complete`** ([`ExtractionComplete`]): sent after all four files of a dump
//!   version, on every kind's exchange; `started_at` is when the extraction began (RFC 3339,
//!   UTC), `record_counts` the records per kind ([`RecordCounts`]).
//!
//!   ```json
//!   {"type":"extraction_complete","schema":1,"version":"20260101",
//!    "started_at":"2026-01-03T04:05:06Z",
//!    "record_counts":{"artists":9110128,"labels":2274406,"masters":2512180,"releases":19082101}}
//!   ```
//!
//! `schema` is [`SCHEMA_VERSION`]; a decoder refuses a message of a newer schema rather
//! than misread it. Keys may come in any order, with one exception: in a `batch`, `kind`
//! must come before `records` (records are decoded straight into their typed form as they
//! are read, which needs the kind). Encoders here write `type` first and `kind` before
//! `records`, and so does any encoder that sorts keys. Unknown keys are ignored, so a
//! later schema may add fields.
//!
//! [`Message::to_json`] and [`Message::from_json`] encode and decode; [`BatchEncoder`]
//! builds a batch's body incrementally, record by record, to the same bytes. Decoding
//! borrows every string without escapes from the body (names, titles, the envelope's
//! version and file), which makes it about twice as fast as copying them; use
//! [`Message::into_owned`] to keep a message beyond its body. (The record types' own
//! derived `Deserialize` always copies, so that `Record<'static>` can be read from any
//! buffer; the wire uses a second, borrowing decoder for the same JSON.)
//!
//! ```
//! use discogs_model::wire::{Batch, Message};
//! use discogs_model::{Artist, Record, RecordKind, SinkRecord};
//!
//! let artist = Artist { id: 1, name: "The Persuader".into(), ..Default::default() };
//! let batch = Batch {
//!     kind: RecordKind::Artist,
//!     version: "20260101".into(),
//!     file: "discogs_20260101_artists.xml.gz".into(),
//!     seq: 0,
//!     records: vec![SinkRecord::new(Record::from(artist))],
//! };
//! let body = Message::Batch(batch.clone()).to_json()?;
//! let Message::Batch(decoded) = Message::from_json(&body)? else { unreachable!() };
//! assert_eq!(decoded, batch);
//! # Ok::<(), discogs_model::wire::WireError>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::borrow::Borrowed;
use crate::{Artist, Label, Master, Record, RecordHash, RecordKind, Release, SinkRecord};

/// The version of the envelope written by this crate, in every message's `schema`.
pub const SCHEMA_VERSION: u32 = 1;

/// The MIME type of every message body.
pub const CONTENT_TYPE: &str = "application/json";

/// The most ids one `removed` message carries (about 100 kB of JSON).
pub const REMOVED_CHUNK: usize = 10_000;

/// A message body that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The body is not JSON, or not a message of a known type and shape.
    #[error("invalid message body: {0}")]
    Json(#[from] serde_json::Error),
    /// A batch held a record of another kind than its own.
    #[error("a {batch} batch cannot carry record {id}, which is a {record} record")]
    KindMismatch {
        /// The batch's kind.
        batch: RecordKind,
        /// The record's kind.
        record: RecordKind,
        /// The record's id.
        id: u64,
    },
}

/// The four types of message ([`Message`]'s variants), as named by `"type"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `batch`: records.
    Batch,
    /// `removed`: ids no longer in the dump.
    Removed,
    /// `file_complete`: a file's last batch was sent.
    FileComplete,
    /// `extraction_complete`: all four files of a dump version were sent.
    ExtractionComplete,
}

impl MessageType {
    /// `batch`, `removed`, `file_complete` or `extraction_complete`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::Removed => "removed",
            Self::FileComplete => "file_complete",
            Self::ExtractionComplete => "extraction_complete",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "batch" => Self::Batch,
            "removed" => Self::Removed,
            "file_complete" => Self::FileComplete,
            "extraction_complete" => Self::ExtractionComplete,
            other => return Err(format!("unknown message type {other:?}")),
        })
    }
}

/// Which batch of which file: what makes a re-sent batch recognisable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId<'a> {
    /// The dump version, e.g. `20260101`.
    pub version: Cow<'a, str>,
    /// The dump file's name.
    pub file: Cow<'a, str>,
    /// The batch's number within the file, from 0.
    pub seq: u64,
}

impl BatchId<'_> {
    /// Converts into a form that owns its text.
    #[must_use]
    pub fn into_owned(self) -> BatchId<'static> {
        BatchId {
            version: Cow::Owned(self.version.into_owned()),
            file: Cow::Owned(self.file.into_owned()),
            seq: self.seq,
        }
    }
}

impl fmt::Display for BatchId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}#{}", self.version, self.file, self.seq)
    }
}

/// Records of one kind from one dump file (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<'a> {
    /// The kind of every record in the batch.
    pub kind: RecordKind,
    /// The dump version, e.g. `20260101`.
    pub version: Cow<'a, str>,
    /// The dump file's name, e.g. `discogs_20260101_artists.xml.gz`.
    pub file: Cow<'a, str>,
    /// The batch's number within the file: 0, 1, 2... without gaps.
    pub seq: u64,
    /// The records, in the file's order, each with its hash.
    pub records: Vec<SinkRecord<'a>>,
}

impl Batch<'_> {
    /// `(version, file, seq)`: the same for every copy of a re-sent batch.
    #[must_use]
    pub fn id(&self) -> BatchId<'_> {
        BatchId {
            version: Cow::Borrowed(&self.version),
            file: Cow::Borrowed(&self.file),
            seq: self.seq,
        }
    }

    /// Converts into a form that owns all its text.
    #[must_use]
    pub fn into_owned(self) -> Batch<'static> {
        Batch {
            kind: self.kind,
            version: Cow::Owned(self.version.into_owned()),
            file: Cow::Owned(self.file.into_owned()),
            seq: self.seq,
            records: self
                .records
                .into_iter()
                .map(|r| SinkRecord {
                    record: r.record.into_owned(),
                    hash: r.hash,
                })
                .collect(),
        }
    }
}

/// Sent after the last batch of a file, once every batch of it was confirmed by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileComplete<'a> {
    /// The file's kind.
    pub kind: RecordKind,
    /// The dump version.
    pub version: Cow<'a, str>,
    /// The dump file's name.
    pub file: Cow<'a, str>,
    /// How many batches the file gave (their `seq` ran from 0 to `batches - 1`).
    pub batches: u64,
    /// How many records the file gave, over all its batches.
    pub records: u64,
    /// How many ids were sent in `removed` messages before this one (0 in messages of
    /// publishers that predate `removed`).
    pub removed: u64,
}

/// Ids of records that a dump file no longer has, to delete (see the
/// [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed<'a> {
    /// The kind of the removed records.
    pub kind: RecordKind,
    /// The dump version that no longer has them.
    pub version: Cow<'a, str>,
    /// The dump file's name.
    pub file: Cow<'a, str>,
    /// The chunk's number within the file: 0, 1, 2...
    pub seq: u64,
    /// The ids, at most [`REMOVED_CHUNK`] of them.
    pub ids: Vec<u64>,
}

impl Removed<'_> {
    /// Converts into a form that owns its text.
    #[must_use]
    pub fn into_owned(self) -> Removed<'static> {
        Removed {
            kind: self.kind,
            version: Cow::Owned(self.version.into_owned()),
            file: Cow::Owned(self.file.into_owned()),
            seq: self.seq,
            ids: self.ids,
        }
    }

    /// The messages that carry `ids` for `file`: chunks of at most [`REMOVED_CHUNK`],
    /// numbered from 0 (none for no ids).
    #[must_use]
    pub fn chunks<'b>(
        kind: RecordKind,
        version: &'b str,
        file: &'b str,
        ids: &[u64],
    ) -> Vec<Removed<'b>> {
        ids.chunks(REMOVED_CHUNK)
            .zip(0..)
            .map(|(chunk, seq)| Removed {
                kind,
                version: Cow::Borrowed(version),
                file: Cow::Borrowed(file),
                seq,
                ids: chunk.to_vec(),
            })
            .collect()
    }
}

impl FileComplete<'_> {
    /// Converts into a form that owns its text.
    #[must_use]
    pub fn into_owned(self) -> FileComplete<'static> {
        FileComplete {
            kind: self.kind,
            version: Cow::Owned(self.version.into_owned()),
            file: Cow::Owned(self.file.into_owned()),
            batches: self.batches,
            records: self.records,
            removed: self.removed,
        }
    }
}

/// Records per kind, as `{"artists":N,"labels":N,"masters":N,"releases":N}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordCounts {
    /// Artists.
    pub artists: u64,
    /// Labels.
    pub labels: u64,
    /// Masters.
    pub masters: u64,
    /// Releases.
    pub releases: u64,
}

impl RecordCounts {
    /// The count for `kind`.
    #[must_use]
    pub fn get(&self, kind: RecordKind) -> u64 {
        match kind {
            RecordKind::Artist => self.artists,
            RecordKind::Label => self.labels,
            RecordKind::Master => self.masters,
            RecordKind::Release => self.releases,
        }
    }

    /// The count for `kind`, to change it.
    pub fn get_mut(&mut self, kind: RecordKind) -> &mut u64 {
        match kind {
            RecordKind::Artist => &mut self.artists,
            RecordKind::Label => &mut self.labels,
            RecordKind::Master => &mut self.masters,
            RecordKind::Release => &mut self.releases,
        }
    }

    /// The sum over the four kinds.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.artists + self.labels + self.masters + self.releases
    }
}

/// Sent after all four files of a dump version, once on every kind's exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractionComplete<'a> {
    /// The dump version.
    pub version: Cow<'a, str>,
    /// When the extraction started; on the wire as RFC 3339 in UTC ([`format_rfc3339`]).
    pub started_at: SystemTime,
    /// Records per kind that the extraction published.
    pub record_counts: RecordCounts,
}

impl ExtractionComplete<'_> {
    /// Converts into a form that owns its text.
    #[must_use]
    pub fn into_owned(self) -> ExtractionComplete<'static> {
        ExtractionComplete {
            version: Cow::Owned(self.version.into_owned()),
            started_at: self.started_at,
            record_counts: self.record_counts,
        }
    }
}

/// One message on the bus (see the [module documentation](self) for the JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// Records.
    Batch(Batch<'a>),
    /// Ids of records no longer in the dump.
    Removed(Removed<'a>),
    /// A file was sent completely.
    FileComplete(FileComplete<'a>),
    /// A whole dump version was sent.
    ExtractionComplete(ExtractionComplete<'a>),
}

impl<'a> Message<'a> {
    /// Which type of message this is.
    #[must_use]
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Batch(_) => MessageType::Batch,
            Self::Removed(_) => MessageType::Removed,
            Self::FileComplete(_) => MessageType::FileComplete,
            Self::ExtractionComplete(_) => MessageType::ExtractionComplete,
        }
    }

    /// The kind of the records or of the file; `None` for `extraction_complete`, which
    /// concerns all kinds.
    #[must_use]
    pub fn kind(&self) -> Option<RecordKind> {
        match self {
            Self::Batch(b) => Some(b.kind),
            Self::Removed(r) => Some(r.kind),
            Self::FileComplete(f) => Some(f.kind),
            Self::ExtractionComplete(_) => None,
        }
    }

    /// The dump version the message belongs to.
    #[must_use]
    pub fn version(&self) -> &str {
        match self {
            Self::Batch(b) => &b.version,
            Self::Removed(r) => &r.version,
            Self::FileComplete(f) => &f.version,
            Self::ExtractionComplete(e) => &e.version,
        }
    }

    /// The number of records carried: a batch's length, `0` for control messages.
    #[must_use]
    pub fn record_count(&self) -> usize {
        match self {
            Self::Batch(b) => b.records.len(),
            _ => 0,
        }
    }

    /// Converts into a form that owns all its text.
    #[must_use]
    pub fn into_owned(self) -> Message<'static> {
        match self {
            Self::Batch(b) => Message::Batch(b.into_owned()),
            Self::Removed(r) => Message::Removed(r.into_owned()),
            Self::FileComplete(f) => Message::FileComplete(f.into_owned()),
            Self::ExtractionComplete(e) => Message::ExtractionComplete(e.into_owned()),
        }
    }

    /// The JSON body.
    ///
    /// # Errors
    ///
    /// [`WireError::KindMismatch`] when a batch holds a record of another kind.
    pub fn to_json(&self) -> Result<Vec<u8>, WireError> {
        if let Self::Batch(b) = self {
            check_kinds(b.kind, &b.records)?;
        }
        Ok(serde_json::to_vec(self)?)
    }

    /// Decodes a JSON body, borrowing `version` and `file` from it.
    ///
    /// # Errors
    ///
    /// [`WireError::Json`] when the body is not a message of this schema or an older one.
    pub fn from_json(body: &'a [u8]) -> Result<Self, WireError> {
        // One UTF-8 check of the whole body rather than one per string.
        let text = std::str::from_utf8(body).map_err(|e| {
            WireError::Json(<serde_json::Error as de::Error>::custom(format!(
                "the body is not UTF-8: {e}"
            )))
        })?;
        Ok(serde_json::from_str(text)?)
    }
}

fn check_kinds(kind: RecordKind, records: &[SinkRecord<'_>]) -> Result<(), WireError> {
    match records.iter().find(|r| r.record.kind() != kind) {
        Some(r) => Err(WireError::KindMismatch {
            batch: kind,
            record: r.record.kind(),
            id: r.record.id(),
        }),
        None => Ok(()),
    }
}

impl From<Batch<'_>> for BatchId<'static> {
    fn from(b: Batch<'_>) -> Self {
        b.id().into_owned()
    }
}

// ----------------------------------------------------------------------------- encoding

/// A record's own fields, without `Record`'s `kind` tag.
struct Inner<'r, 'a>(&'r Record<'a>);

impl Serialize for Inner<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Record::Artist(r) => r.serialize(s),
            Record::Label(r) => r.serialize(s),
            Record::Master(r) => r.serialize(s),
            Record::Release(r) => r.serialize(s),
        }
    }
}

/// `{"sha256":…,"record":{…}}`.
struct WireRecord<'r, 'a>(&'r SinkRecord<'a>);

impl Serialize for WireRecord<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("sha256", &self.0.hash)?;
        map.serialize_entry("record", &Inner(&self.0.record))?;
        map.end()
    }
}

struct Records<'r, 'a>(RecordKind, &'r [SinkRecord<'a>]);

impl Serialize for Records<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.1.len()))?;
        for r in self.1 {
            if r.record.kind() != self.0 {
                return Err(ser::Error::custom(format!(
                    "a {} batch cannot carry record {}, which is a {} record",
                    self.0,
                    r.record.id(),
                    r.record.kind()
                )));
            }
            seq.serialize_element(&WireRecord(r))?;
        }
        seq.end()
    }
}

struct Rfc3339(SystemTime);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(self.0))
    }
}

impl Serialize for Message<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("type", self.message_type().as_str())?;
        map.serialize_entry("schema", &SCHEMA_VERSION)?;
        match self {
            Self::Batch(b) => {
                map.serialize_entry("kind", &b.kind)?;
                map.serialize_entry("version", &b.version)?;
                map.serialize_entry("file", &b.file)?;
                map.serialize_entry("seq", &b.seq)?;
                map.serialize_entry("records", &Records(b.kind, &b.records))?;
            }
            Self::Removed(r) => {
                map.serialize_entry("kind", &r.kind)?;
                map.serialize_entry("version", &r.version)?;
                map.serialize_entry("file", &r.file)?;
                map.serialize_entry("seq", &r.seq)?;
                map.serialize_entry("ids", &r.ids)?;
            }
            Self::FileComplete(f) => {
                map.serialize_entry("kind", &f.kind)?;
                map.serialize_entry("version", &f.version)?;
                map.serialize_entry("file", &f.file)?;
                map.serialize_entry("batches", &f.batches)?;
                map.serialize_entry("records", &f.records)?;
                map.serialize_entry("removed", &f.removed)?;
            }
            Self::ExtractionComplete(e) => {
                map.serialize_entry("version", &e.version)?;
                map.serialize_entry("started_at", &Rfc3339(e.started_at))?;
                map.serialize_entry("record_counts", &e.record_counts)?;
            }
        }
        map.end()
    }
}

/// Builds the JSON body of a batch record by record, to exactly the bytes
/// [`Message::to_json`] gives for the same batch, without keeping the records.
///
/// A publisher that limits batches by size stages each record first ([`stage`]), looks at
/// the size the batch would then have ([`len_with_staged`]), sends the batch if that is too
/// large ([`finish`], then [`start`] the next), and finally [`commit`]s the staged record.
///
/// [`stage`]: BatchEncoder::stage
/// [`len_with_staged`]: BatchEncoder::len_with_staged
/// [`finish`]: BatchEncoder::finish
/// [`start`]: BatchEncoder::start
/// [`commit`]: BatchEncoder::commit
///
/// ```
/// use discogs_model::wire::{Batch, BatchEncoder, Message};
/// use discogs_model::{Label, Record, RecordKind, SinkRecord};
///
/// let records: Vec<SinkRecord> = (1..=3)
///     .map(|id| SinkRecord::new(Record::from(Label { id, name: "Planet E".into(), ..Default::default() })))
///     .collect();
/// let mut encoder = BatchEncoder::new();
/// encoder.start(RecordKind::Label, "20260101", "discogs_20260101_labels.xml.gz", 7);
/// for r in &records {
///     encoder.stage(r)?;
///     encoder.commit();
/// }
/// let body = encoder.finish();
/// let batch = Batch {
///     kind: RecordKind::Label,
///     version: "20260101".into(),
///     file: "discogs_20260101_labels.xml.gz".into(),
///     seq: 7,
///     records,
/// };
/// assert_eq!(body, Message::Batch(batch).to_json()?);
/// # Ok::<(), discogs_model::wire::WireError>(())
/// ```
#[derive(Debug, Default)]
pub struct BatchEncoder {
    kind: Option<RecordKind>,
    /// The body so far; a staged record is encoded in place at its end.
    body: Vec<u8>,
    /// Where the staged record starts in `body` (after its separating comma).
    staged: Option<usize>,
    /// A staged record waiting for the next [`start`](Self::start).
    carry: Vec<u8>,
    records: usize,
}

impl BatchEncoder {
    /// An encoder with no batch started.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a new batch (dropping any unfinished one, but not a staged record).
    pub fn start(&mut self, kind: RecordKind, version: &str, file: &str, seq: u64) {
        #[derive(Serialize)]
        struct Header<'h> {
            #[serde(rename = "type")]
            ty: &'static str,
            schema: u32,
            kind: RecordKind,
            version: &'h str,
            file: &'h str,
            seq: u64,
        }
        if let Some(at) = self.staged.take() {
            self.carry.clear();
            self.carry.extend_from_slice(&self.body[at..]);
        }
        self.body.clear();
        // Serialising a struct of strings and integers into a Vec cannot fail.
        serde_json::to_writer(
            &mut self.body,
            &Header {
                ty: MessageType::Batch.as_str(),
                schema: SCHEMA_VERSION,
                kind,
                version,
                file,
                seq,
            },
        )
        .unwrap_or(());
        // Reopen the object: `{…,"seq":N}` becomes `{…,"seq":N,"records":[`.
        self.body.pop();
        self.body.extend_from_slice(b",\"records\":[");
        self.kind = Some(kind);
        self.records = 0;
        if !self.carry.is_empty() {
            self.staged = Some(self.body.len());
            self.body.extend_from_slice(&self.carry);
            self.carry.clear();
        }
    }

    /// The end of the committed records (before a staged record's comma).
    fn committed_end(&self) -> usize {
        match self.staged {
            Some(at) => at - usize::from(self.records > 0),
            None => self.body.len(),
        }
    }

    /// Encodes `record` at the end of the batch, ready to [`commit`](Self::commit);
    /// replaces any record staged before. Returns the staged record's size in bytes.
    /// Start a batch first: a record staged before [`start`](Self::start) waits for it.
    ///
    /// # Errors
    ///
    /// [`WireError::KindMismatch`] when the record is not of the started batch's kind.
    pub fn stage(&mut self, record: &SinkRecord<'_>) -> Result<usize, WireError> {
        self.stage_with(record.record.kind(), record.record.id(), |out| {
            Ok(serde_json::to_writer(out, &WireRecord(record))?)
        })
    }

    /// [`stage`](Self::stage) for a record encoded before: appends its bytes.
    ///
    /// # Errors
    ///
    /// [`WireError::KindMismatch`] when the record is not of the started batch's kind.
    pub fn stage_encoded(&mut self, record: &EncodedRecord) -> Result<usize, WireError> {
        self.stage_with(record.kind, record.id, |out| {
            out.extend_from_slice(&record.json);
            Ok(())
        })
    }

    /// Stages the record of `kind` and `id` that `write` appends to a buffer.
    fn stage_with(
        &mut self,
        kind: RecordKind,
        id: u64,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), WireError>,
    ) -> Result<usize, WireError> {
        let batch = self.kind.unwrap_or(kind);
        if kind != batch {
            return Err(WireError::KindMismatch {
                batch,
                record: kind,
                id,
            });
        }
        if self.kind.is_none() {
            self.carry.clear();
            write(&mut self.carry)?;
            return Ok(self.carry.len());
        }
        let end = self.committed_end();
        self.body.truncate(end);
        if self.records > 0 {
            self.body.push(b',');
        }
        let at = self.body.len();
        if let Err(e) = write(&mut self.body) {
            self.body.truncate(end);
            self.staged = None;
            return Err(e);
        }
        self.staged = Some(at);
        Ok(self.body.len() - at)
    }

    /// Adds the staged record to the batch.
    pub fn commit(&mut self) {
        if self.staged.take().is_some() {
            self.records += 1;
        }
    }

    /// The records in the batch so far.
    #[must_use]
    pub fn records(&self) -> usize {
        self.records
    }

    /// The size of the finished body as it stands (without a staged record).
    #[must_use]
    pub fn len(&self) -> usize {
        self.committed_end() + 2
    }

    /// Whether no record was committed since [`start`](Self::start).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The size the finished body would have with the staged record committed.
    #[must_use]
    pub fn len_with_staged(&self) -> usize {
        self.body.len() + 2
    }

    /// The batch's body, without a staged record (which waits for the next
    /// [`start`](Self::start)); the encoder is left without a started batch.
    pub fn finish(&mut self) -> Vec<u8> {
        if let Some(at) = self.staged.take() {
            self.carry.clear();
            self.carry.extend_from_slice(&self.body[at..]);
            let end = at - usize::from(self.records > 0);
            self.body.truncate(end);
        }
        self.body.extend_from_slice(b"]}");
        self.kind = None;
        self.records = 0;
        std::mem::take(&mut self.body)
    }
}

/// One record already in its wire form, `{"sha256":…,"record":{…}}`, as it goes into a
/// batch body.
///
/// Encoding is most of a publisher's work. An `EncodedRecord` is made where the record is
/// (on a parser's worker thread, borrowing the parser's buffer), so the record need not be
/// copied into owned text to cross threads, and the publisher only appends bytes
/// ([`BatchEncoder::stage_encoded`]). The bytes are those [`BatchEncoder::stage`] writes
/// for the same record.
///
/// ```
/// use discogs_model::wire::{BatchEncoder, EncodedRecord};
/// use discogs_model::{Label, Record, RecordKind, SinkRecord};
///
/// let record = SinkRecord::new(Record::from(Label { id: 1, name: "Planet E".into(), ..Default::default() }));
/// let encoded = EncodedRecord::new(&record)?;
/// assert_eq!((encoded.kind(), encoded.id()), (RecordKind::Label, 1));
/// assert_eq!(encoded.decode()?, record);
///
/// let (mut a, mut b) = (BatchEncoder::new(), BatchEncoder::new());
/// a.start(RecordKind::Label, "20260101", "discogs_20260101_labels.xml.gz", 0);
/// b.start(RecordKind::Label, "20260101", "discogs_20260101_labels.xml.gz", 0);
/// a.stage(&record)?;
/// b.stage_encoded(&encoded)?;
/// a.commit();
/// b.commit();
/// assert_eq!(a.finish(), b.finish());
/// # Ok::<(), discogs_model::wire::WireError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRecord {
    kind: RecordKind,
    id: u64,
    hash: RecordHash,
    json: Vec<u8>,
}

impl EncodedRecord {
    /// Encodes `record` with its hash.
    ///
    /// # Errors
    ///
    /// [`WireError::Json`] if serialisation fails (it does not for records the parser
    /// makes).
    pub fn new(record: &SinkRecord<'_>) -> Result<Self, WireError> {
        let mut json = Vec::with_capacity(512);
        serde_json::to_writer(&mut json, &WireRecord(record))?;
        Ok(Self {
            kind: record.record.kind(),
            id: record.record.id(),
            hash: record.hash,
            json,
        })
    }

    /// The record's kind.
    #[must_use]
    pub fn kind(&self) -> RecordKind {
        self.kind
    }

    /// The record's id.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The record's hash.
    #[must_use]
    pub fn hash(&self) -> RecordHash {
        self.hash
    }

    /// The JSON bytes.
    #[must_use]
    pub fn as_json(&self) -> &[u8] {
        &self.json
    }

    /// Decodes the record again, borrowing its text from `self`.
    ///
    /// # Errors
    ///
    /// [`WireError::Json`] if the bytes are not a record of this kind (they are, when
    /// made by [`EncodedRecord::new`]).
    pub fn decode(&self) -> Result<SinkRecord<'_>, WireError> {
        let mut de = serde_json::Deserializer::from_slice(&self.json);
        let record = RecordSeed(self.kind).deserialize(&mut de)?;
        de.end()?;
        Ok(record)
    }
}

// ----------------------------------------------------------------------------- decoding

/// A string that borrows from the input when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// Decodes one `{"sha256":…,"record":{…}}` of a known kind, borrowing its text.
struct RecordSeed(RecordKind);

impl<'de> DeserializeSeed<'de> for RecordSeed {
    type Value = SinkRecord<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed {
    type Value = SinkRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} record with its sha256", self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut hash: Option<RecordHash> = None;
        let mut record: Option<Record<'de>> = None;
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            match &*key.0 {
                "sha256" => hash = Some(map.next_value()?),
                "record" => {
                    record = Some(match self.0 {
                        RecordKind::Artist => {
                            Record::Artist(map.next_value::<Borrowed<Artist<'de>>>()?.0)
                        }
                        RecordKind::Label => {
                            Record::Label(map.next_value::<Borrowed<Label<'de>>>()?.0)
                        }
                        RecordKind::Master => {
                            Record::Master(map.next_value::<Borrowed<Master<'de>>>()?.0)
                        }
                        RecordKind::Release => {
                            Record::Release(map.next_value::<Borrowed<Release<'de>>>()?.0)
                        }
                    });
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(SinkRecord {
            record: record.ok_or_else(|| de::Error::missing_field("record"))?,
            hash: hash.ok_or_else(|| de::Error::missing_field("sha256"))?,
        })
    }
}

/// `"records"`: a list of records (batch, needs the kind) or a count (file_complete).
enum RecordsField<'de> {
    List(Vec<SinkRecord<'de>>),
    Count(u64),
}

struct RecordsSeed(Option<RecordKind>);

impl<'de> DeserializeSeed<'de> for RecordsSeed {
    type Value = RecordsField<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed {
    type Value = RecordsField<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of records or a count of records")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(RecordsField::Count(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(RecordsField::Count)
            .map_err(|_| E::custom("a negative count of records"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let kind = self
            .0
            .ok_or_else(|| de::Error::custom("\"kind\" must come before \"records\" in a batch"))?;
        let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(r) = seq.next_element_seed(RecordSeed(kind))? {
            records.push(r);
        }
        Ok(RecordsField::List(records))
    }
}

struct TimeField(SystemTime);

impl<'de> Deserialize<'de> for TimeField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = CowStr::deserialize(d)?;
        parse_rfc3339(&s.0)
            .map(TimeField)
            .map_err(de::Error::custom)
    }
}

struct MessageVisitor<'a>(std::marker::PhantomData<&'a ()>);

fn set_once<T, E: de::Error>(slot: &mut Option<T>, value: T, key: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(key));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de: 'a, 'a> Visitor<'de> for MessageVisitor<'a> {
    type Value = Message<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a batch, removed, file_complete or extraction_complete message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ty: Option<MessageType> = None;
        let mut schema: Option<u32> = None;
        let mut kind: Option<RecordKind> = None;
        let mut version: Option<Cow<'a, str>> = None;
        let mut file: Option<Cow<'a, str>> = None;
        let mut seq: Option<u64> = None;
        let mut batches: Option<u64> = None;
        let mut removed: Option<u64> = None;
        let mut ids: Option<Vec<u64>> = None;
        let mut records: Option<RecordsField<'de>> = None;
        let mut started_at: Option<SystemTime> = None;
        let mut record_counts: Option<RecordCounts> = None;
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            match &*key.0 {
                "type" => {
                    let name = map.next_value::<CowStr<'de>>()?;
                    let t = name.0.parse().map_err(de::Error::custom)?;
                    set_once(&mut ty, t, "type")?;
                }
                "schema" => {
                    let v: u32 = map.next_value()?;
                    if v > SCHEMA_VERSION {
                        return Err(de::Error::custom(format!(
                            "message schema {v} is newer than this build understands \
                             ({SCHEMA_VERSION})"
                        )));
                    }
                    set_once(&mut schema, v, "schema")?;
                }
                "kind" => set_once(&mut kind, map.next_value()?, "kind")?,
                "version" => set_once(&mut version, map.next_value::<CowStr<'a>>()?.0, "version")?,
                "file" => set_once(&mut file, map.next_value::<CowStr<'a>>()?.0, "file")?,
                "seq" => set_once(&mut seq, map.next_value()?, "seq")?,
                "batches" => set_once(&mut batches, map.next_value()?, "batches")?,
                "removed" => set_once(&mut removed, map.next_value()?, "removed")?,
                "ids" => set_once(&mut ids, map.next_value()?, "ids")?,
                "records" => {
                    let v = map.next_value_seed(RecordsSeed(kind))?;
                    set_once(&mut records, v, "records")?;
                }
                "started_at" => {
                    set_once(
                        &mut started_at,
                        map.next_value::<TimeField>()?.0,
                        "started_at",
                    )?;
                }
                "record_counts" => {
                    set_once(&mut record_counts, map.next_value()?, "record_counts")?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        fn need<T, E: de::Error>(v: Option<T>, key: &'static str) -> Result<T, E> {
            v.ok_or_else(|| E::missing_field(key))
        }
        need::<u32, A::Error>(schema, "schema")?;
        Ok(match need(ty, "type")? {
            MessageType::Batch => Message::Batch(Batch {
                kind: need(kind, "kind")?,
                version: need(version, "version")?,
                file: need(file, "file")?,
                seq: need(seq, "seq")?,
                records: match need(records, "records")? {
                    RecordsField::List(list) => list,
                    RecordsField::Count(_) => {
                        return Err(de::Error::custom("a batch's \"records\" must be a list"))
                    }
                },
            }),
            MessageType::Removed => Message::Removed(Removed {
                kind: need(kind, "kind")?,
                version: need(version, "version")?,
                file: need(file, "file")?,
                seq: need(seq, "seq")?,
                ids: need(ids, "ids")?,
            }),
            MessageType::FileComplete => Message::FileComplete(FileComplete {
                kind: need(kind, "kind")?,
                version: need(version, "version")?,
                file: need(file, "file")?,
                batches: need(batches, "batches")?,
                removed: removed.unwrap_or(0),
                records: match need(records, "records")? {
                    RecordsField::Count(n) => n,
                    RecordsField::List(_) => {
                        return Err(de::Error::custom(
                            "file_complete's \"records\" must be a count",
                        ))
                    }
                },
            }),
            MessageType::ExtractionComplete => Message::ExtractionComplete(ExtractionComplete {
                version: need(version, "version")?,
                started_at: need(started_at, "started_at")?,
                record_counts: need(record_counts, "record_counts")?,
            }),
        })
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Message<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MessageVisitor(std::marker::PhantomData))
    }
}

// ----------------------------------------------------------------------------- time

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // d is 1..=31 and m 1..=12 by construction.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// `time` as RFC 3339 in UTC: `2026-01-03T04:05:06Z`, with a fraction of a second only
/// when there is one (`…06.250Z`, milliseconds). Times before 1970 are written as 1970.
#[must_use]
pub fn format_rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX / 2);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let millis = since.subsec_millis();
    if millis == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{millis:03}Z")
    }
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `T` or a space).
///
/// # Errors
///
/// A message saying what is wrong with `s`.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    let bad = |why: &str| format!("{s:?} is not an RFC 3339 time: {why}");
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<u32, String> {
        let part = s.get(range).ok_or_else(|| bad("too short"))?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("expected digits"));
        }
        part.parse().map_err(|_| bad("expected digits"))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad("expected YYYY-MM-DDTHH:MM:SS"));
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad("expected HH:MM:SS"));
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad("a field is out of range"));
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(bad("empty fraction"));
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(bad("expected Z or an offset ±HH:MM at the end")),
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset;
    let secs = u64::try_from(secs).map_err(|_| bad("before 1970"))?;
    Ok(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Credit, Track};

    fn artist(id: u64, name: &str) -> SinkRecord<'static> {
        SinkRecord::new(Record::from(Artist {
            id,
            name: Cow::Owned(name.to_owned()),
            name_variations: vec!["Persuader, The".into(), "\"Quoted\"\n\\Esc".into()],
            ..Default::default()
        }))
    }

    fn release(id: u64) -> SinkRecord<'static> {
        SinkRecord::new(Record::from(Release {
            id,
            title: "Stockholm".into(),
            artists: vec![Credit {
                id: Some(1),
                name: "The Persuader".into(),
                ..Default::default()
            }],
            genres: vec!["Electronic".into()],
            released: Some("1999-03-00".into()),
            year: Some(1999),
            master_id: Some(5427),
            is_main_release: true,
            tracklist: vec![Track {
                position: Some("A".into()),
                title: "Östermalm".into(),
                duration: Some("4:45".into()),
                ..Default::default()
            }],
            ..Default::default()
        }))
    }

    fn batch(kind: RecordKind, records: Vec<SinkRecord<'static>>) -> Batch<'static> {
        Batch {
            kind,
            version: "20260101".into(),
            file: format!("discogs_20260101_{}.xml.gz", kind.plural()).into(),
            seq: 42,
            records,
        }
    }

    #[test]
    fn batch_round_trip() {
        for b in [
            batch(
                RecordKind::Artist,
                vec![
                    artist(1, "The Persuader"),
                    artist(2, "Mr. James Barth & A.D."),
                ],
            ),
            batch(RecordKind::Release, vec![release(1), release(2)]),
            batch(RecordKind::Label, vec![]),
        ] {
            let msg = Message::Batch(b);
            let body = msg.to_json().unwrap();
            let back = Message::from_json(&body).unwrap();
            assert_eq!(back, msg);
            assert_eq!(back.record_count(), msg.record_count());
            assert_eq!(back.message_type(), MessageType::Batch);
            // The hash travels; it is not recomputed (it still matches here).
            if let Message::Batch(b) = &back {
                for r in &b.records {
                    assert_eq!(r.hash, r.record.hash());
                }
            }
        }
    }

    #[test]
    fn control_round_trip() {
        let file = Message::FileComplete(FileComplete {
            kind: RecordKind::Master,
            version: "20260101".into(),
            file: "discogs_20260101_masters.xml.gz".into(),
            batches: 25_122,
            records: 2_512_180,
            removed: 3,
        });
        let counts = RecordCounts {
            artists: 9_110_128,
            labels: 2_274_406,
            masters: 2_512_180,
            releases: 19_082_101,
        };
        let done = Message::ExtractionComplete(ExtractionComplete {
            version: "20260101".into(),
            started_at: UNIX_EPOCH + Duration::from_millis(1_767_409_506_250),
            record_counts: counts,
        });
        let removed = Message::Removed(Removed {
            kind: RecordKind::Master,
            version: "20260101".into(),
            file: "discogs_20260101_masters.xml.gz".into(),
            seq: 1,
            ids: vec![5427, 18_446_744_073_709_551_615, 1],
        });
        for msg in [file, removed, done] {
            let body = msg.to_json().unwrap();
            assert_eq!(Message::from_json(&body).unwrap(), msg);
        }
        assert_eq!(counts.total(), 32_978_815);
        assert_eq!(counts.get(RecordKind::Label), 2_274_406);
    }

    #[test]
    fn documented_json_shapes() {
        let done = Message::ExtractionComplete(ExtractionComplete {
            version: "20260101".into(),
            started_at: UNIX_EPOCH + Duration::from_secs(1_767_413_106),
            record_counts: RecordCounts {
                artists: 1,
                labels: 2,
                masters: 3,
                releases: 4,
            },
        });
        assert_eq!(
            String::from_utf8(done.to_json().unwrap()).unwrap(),
            r#"{"type":"extraction_complete","schema":1,"version":"20260101","started_at":"2026-01-03T04:05:06Z","record_counts":{"artists":1,"labels":2,"masters":3,"releases":4}}"#
        );
        let file = Message::FileComplete(FileComplete {
            kind: RecordKind::Artist,
            version: "20260101".into(),
            file: "a.xml.gz".into(),
            batches: 2,
            records: 150,
            removed: 2,
        });
        assert_eq!(
            String::from_utf8(file.to_json().unwrap()).unwrap(),
            r#"{"type":"file_complete","schema":1,"kind":"artist","version":"20260101","file":"a.xml.gz","batches":2,"records":150,"removed":2}"#
        );
        let removed = Message::Removed(Removed {
            kind: RecordKind::Artist,
            version: "20260101".into(),
            file: "a.xml.gz".into(),
            seq: 0,
            ids: vec![17, 4242],
        });
        assert_eq!(
            String::from_utf8(removed.to_json().unwrap()).unwrap(),
            r#"{"type":"removed","schema":1,"kind":"artist","version":"20260101","file":"a.xml.gz","seq":0,"ids":[17,4242]}"#
        );
        let one = Message::Batch(Batch {
            kind: RecordKind::Artist,
            version: "20260101".into(),
            file: "a.xml.gz".into(),
            seq: 0,
            records: vec![SinkRecord::new(Record::from(Artist {
                id: 1,
                name: "The Persuader".into(),
                ..Default::default()
            }))],
        });
        let json = String::from_utf8(one.to_json().unwrap()).unwrap();
        let hash = one_hash(&one);
        assert_eq!(
            json,
            format!(
                r#"{{"type":"batch","schema":1,"kind":"artist","version":"20260101","file":"a.xml.gz","seq":0,"records":[{{"sha256":"{hash}","record":{{"id":1,"name":"The Persuader"}}}}]}}"#
            )
        );
    }

    fn one_hash(m: &Message<'_>) -> String {
        match m {
            Message::Batch(b) => b.records[0].hash.to_hex(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn decoding_borrows_text() {
        let msg = Message::Batch(batch(RecordKind::Artist, vec![artist(7, "X")]));
        let body = msg.to_json().unwrap();
        let Message::Batch(b) = Message::from_json(&body).unwrap() else {
            panic!("not a batch")
        };
        assert!(matches!(b.version, Cow::Borrowed(_)));
        assert!(matches!(b.file, Cow::Borrowed(_)));
        let Record::Artist(a) = &b.records[0].record else {
            panic!("not an artist")
        };
        assert!(
            matches!(a.name, Cow::Borrowed(_)),
            "text without escapes is borrowed"
        );
        assert!(
            matches!(a.name_variations[1], Cow::Owned(_)),
            "text with escapes is copied"
        );
        let owned: Message<'static> = Message::Batch(b).into_owned();
        drop(body);
        assert_eq!(owned, msg);
    }

    #[test]
    fn removed_messages() {
        // A file_complete of a publisher that predates `removed` still decodes (0 removed).
        let old = br#"{"type":"file_complete","schema":1,"kind":"label","version":"v","file":"f","batches":1,"records":9}"#;
        let Message::FileComplete(f) = Message::from_json(old).unwrap() else {
            panic!("not a file_complete")
        };
        assert_eq!((f.batches, f.records, f.removed), (1, 9, 0));

        // Borrowing decode, any key order.
        let body = br#"{"ids":[3,1,2],"file":"discogs_20260101_labels.xml.gz","seq":4,"version":"20260101","kind":"label","schema":1,"type":"removed"}"#;
        let msg = Message::from_json(body).unwrap();
        assert_eq!(msg.message_type(), MessageType::Removed);
        assert_eq!(msg.kind(), Some(RecordKind::Label));
        assert_eq!(msg.version(), "20260101");
        assert_eq!(msg.record_count(), 0);
        let Message::Removed(r) = &msg else {
            panic!("not removed")
        };
        assert!(matches!(r.version, Cow::Borrowed(_)));
        assert!(matches!(r.file, Cow::Borrowed(_)));
        assert_eq!((r.seq, r.ids.as_slice()), (4, &[3, 1, 2][..]));
        let owned = msg.clone().into_owned();
        assert_eq!(owned, msg);

        // Chunks of at most REMOVED_CHUNK ids, numbered from 0.
        let ids: Vec<u64> = (1..=(2 * REMOVED_CHUNK as u64 + 5)).collect();
        let chunks = Removed::chunks(RecordKind::Artist, "v", "f", &ids);
        assert_eq!(
            chunks
                .iter()
                .map(|c| (c.seq, c.ids.len()))
                .collect::<Vec<_>>(),
            vec![(0, REMOVED_CHUNK), (1, REMOVED_CHUNK), (2, 5)]
        );
        assert_eq!(
            chunks
                .iter()
                .flat_map(|c| c.ids.clone())
                .collect::<Vec<_>>(),
            ids
        );
        assert!(Removed::chunks(RecordKind::Artist, "v", "f", &[]).is_empty());
        let big = Message::Removed(chunks[0].clone()).to_json().unwrap();
        assert!(big.len() < 120_000, "{} bytes", big.len());

        for (body, expect) in [
            (
                r#"{"type":"removed","schema":1,"kind":"artist","version":"v","file":"f","seq":0}"#,
                "ids",
            ),
            (
                r#"{"type":"removed","schema":1,"kind":"artist","version":"v","file":"f","seq":0,"ids":[-1]}"#,
                "invalid value",
            ),
            (
                r#"{"type":"removed","schema":1,"kind":"artist","version":"v","file":"f","ids":[]}"#,
                "seq",
            ),
        ] {
            let err = Message::from_json(body.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(expect), "{body}: {err}");
        }
    }

    #[test]
    fn keys_in_any_order_except_kind_before_records() {
        let msg = Message::Batch(batch(RecordKind::Artist, vec![artist(1, "A")]));
        let body = msg.to_json().unwrap();
        // Sorted keys (what a generic JSON tool writes back) decode the same.
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let sorted = serde_json::to_vec(&value).unwrap();
        assert_ne!(sorted, body);
        assert_eq!(Message::from_json(&sorted).unwrap(), msg);
        // Unknown keys are ignored.
        let mut extra = value.clone();
        extra["added_later"] = serde_json::json!({"x": [1, 2]});
        extra["records"][0]["note"] = serde_json::json!("ignored");
        let extra = serde_json::to_vec(&extra).unwrap();
        assert_eq!(Message::from_json(&extra).unwrap(), msg);
        // `records` before `kind` is refused with a clear message.
        let hash = one_hash(&msg);
        let reordered = format!(
            r#"{{"type":"batch","schema":1,"records":[{{"sha256":"{hash}","record":{{"id":1,"name":"A"}}}}],"kind":"artist","version":"v","file":"f","seq":0}}"#
        );
        let err = Message::from_json(reordered.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("\"kind\" must come before"),
            "{err}"
        );
    }

    #[test]
    fn refuses_bad_messages() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"type":"batch","kind":"artist","version":"v","file":"f","seq":0,"records":[]}"#,
                "schema",
            ),
            (
                r#"{"type":"batch","schema":2,"kind":"artist","version":"v","file":"f","seq":0,"records":[]}"#,
                "newer",
            ),
            (r#"{"type":"nope","schema":1}"#, "unknown message type"),
            (r#"{"schema":1,"version":"v"}"#, "type"),
            (
                r#"{"type":"batch","schema":1,"kind":"artist","version":"v","file":"f","records":[]}"#,
                "seq",
            ),
            (
                r#"{"type":"batch","schema":1,"kind":"artist","version":"v","file":"f","seq":0,"records":3}"#,
                "must be a list",
            ),
            (
                r#"{"type":"file_complete","schema":1,"kind":"artist","version":"v","file":"f","batches":1,"records":[]}"#,
                "must be a count",
            ),
            (
                r#"{"type":"batch","schema":1,"kind":"artist","version":"v","file":"f","seq":0,"records":[{"record":{"id":1}}]}"#,
                "sha256",
            ),
            (
                r#"{"type":"batch","schema":1,"kind":"artist","version":"v","file":"f","seq":0,"records":[{"sha256":"zz","record":{"id":1}}]}"#,
                "64",
            ),
            (
                r#"{"type":"extraction_complete","schema":1,"version":"v","started_at":"yesterday","record_counts":{}}"#,
                "RFC 3339",
            ),
            (r#"{"type":"batch","type":"batch","schema":1}"#, "duplicate"),
            (r#"[1,2]"#, "message"),
            (r#"{"type":"batch""#, "EOF"),
        ];
        for (body, expect) in cases {
            let err = Message::from_json(body.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(expect), "{body}: {err}");
        }
    }

    #[test]
    fn mixed_kinds_are_refused() {
        let msg = Message::Batch(batch(RecordKind::Artist, vec![artist(1, "A"), release(9)]));
        assert!(matches!(
            msg.to_json(),
            Err(WireError::KindMismatch {
                batch: RecordKind::Artist,
                record: RecordKind::Release,
                id: 9
            })
        ));
        let mut enc = BatchEncoder::new();
        enc.start(RecordKind::Artist, "v", "f", 0);
        assert!(enc.stage(&release(9)).is_err());
    }

    #[test]
    fn encoder_matches_to_json() {
        let records: Vec<_> = (1..=5).map(release).collect();
        let mut enc = BatchEncoder::new();
        for seq in 0..2 {
            enc.start(
                RecordKind::Release,
                "20260101",
                "discogs_20260101_releases.xml.gz",
                seq,
            );
            assert!(enc.is_empty());
            for r in &records {
                let size = enc.stage(r).unwrap();
                let expected = enc.len_with_staged();
                assert!(expected >= enc.len() + size);
                enc.commit();
                assert_eq!(enc.len(), expected);
            }
            assert_eq!(enc.records(), 5);
            let len = enc.len();
            let body = enc.finish();
            assert_eq!(body.len(), len);
            let mut b = batch(RecordKind::Release, records.clone());
            b.seq = seq;
            assert_eq!(body, Message::Batch(b).to_json().unwrap());
        }
        enc.start(RecordKind::Release, "v", "f", 0);
        let empty = enc.finish();
        assert_eq!(Message::from_json(&empty).unwrap().record_count(), 0);

        // Closing a batch by size: the staged record moves to the next batch.
        enc.start(RecordKind::Release, "v", "f", 0);
        enc.stage(&records[0]).unwrap();
        enc.commit();
        enc.stage(&records[1]).unwrap();
        enc.stage(&records[2]).unwrap(); // replaces records[1]
        let first = enc.finish();
        enc.start(RecordKind::Release, "v", "f", 1);
        assert!(enc.is_empty());
        enc.commit();
        let second = enc.finish();
        let count = |body: &[u8]| match Message::from_json(body).unwrap() {
            Message::Batch(b) => b.records.iter().map(|r| r.record.id()).collect::<Vec<_>>(),
            _ => unreachable!(),
        };
        assert_eq!(count(&first), vec![1]);
        assert_eq!(count(&second), vec![3]);
    }

    #[test]
    fn rfc3339() {
        for (text, secs, nanos) in [
            ("1970-01-01T00:00:00Z", 0, 0),
            ("2026-01-03T04:05:06Z", 1_767_413_106, 0),
            ("2000-02-29T23:59:59.5Z", 951_868_799, 500_000_000),
            ("2026-01-03T05:05:06+01:00", 1_767_413_106, 0),
            ("2026-01-02 23:05:06-05:00", 1_767_413_106, 0),
            (
                "2024-12-31T23:59:59.123456789123Z",
                1_735_689_599,
                123_456_789,
            ),
        ] {
            let t = parse_rfc3339(text).unwrap();
            assert_eq!(t, UNIX_EPOCH + Duration::new(secs, nanos), "{text}");
        }
        assert_eq!(
            format_rfc3339(UNIX_EPOCH + Duration::new(951_868_799, 500_000_000)),
            "2000-02-29T23:59:59.500Z"
        );
        for days in [-1_000_000_i64, -1, 0, 59, 365, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        for bad in [
            "",
            "2026-01-03",
            "2026-13-03T04:05:06Z",
            "2026-01-03T04:05:06",
            "2026-01-03T04:05:06.Z",
            "1969-12-31T23:59:59Z",
            "2026-01-03T04:05:06+0100",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
