//! Typed records for the Discogs data dumps.
//!
//! The monthly dumps hold four kinds of records ([`RecordKind`]): [`Artist`], [`Label`],
//! [`Master`] and [`Release`], gathered in the enum [`Record`]. Every field the dumps
//! carry, in every format era from 2008 to 2026, has a place here: images, urls, name
//! variations, aliases, members, groups, sublabels, parent label, credits with roles,
//! labels with catalogue numbers, series, formats, genres, styles, the track list with
//! sub-tracks and per-track credits, identifiers, videos, companies.
//!
//! Conventions that hold for every type:
//!
//! * Ids are `u64`. A reference without an id (an unlinked credit) is `None`, whether the
//!   dump wrote `<id>0</id>` or no `<id>` at all.
//! * Text is `Cow<'a, str>`: a parser can lend slices of its input, and
//!   [`Record::into_owned`] (or `into_owned` on each type) detaches a record from it.
//! * Lists are always `Vec`s; an empty element and an absent one both give an empty list,
//!   and empty text gives `None`.
//! * [`RecordHash`] is SHA-256 over a documented canonical encoding ([`hash`]), the same
//!   for the same data whichever era's XML it came from. [`RecordHasher`] hashes in a
//!   loop without allocating.
//!
//! All types implement serde's `Serialize` and `Deserialize`; empty fields are left out
//! of the output.
//!
//! The [`Sink`] trait ([`sink`]) is what every database writer implements: batches of
//! [`SinkRecord`]s of one kind in, a [`SinkOutcome`] (inserted, updated, unchanged) out,
//! errors that say whether a retry can help ([`SinkError`]). With the feature
//! `conformance`, the module `conformance` holds the test suite every sink must pass.
//!
//! The [`wire`] module is the envelope of messages on the bus: a [`wire::Batch`] of
//! records with their hashes, and the control messages [`wire::FileComplete`] and
//! [`wire::ExtractionComplete`], as JSON.
//!
//! ```
//! use discogs_model::{Artist, Record, RecordKind};
//!
//! let artist = Artist { id: 1, name: "The Persuader".into(), ..Default::default() };
//! let record = Record::from(artist);
//! assert_eq!(record.kind(), RecordKind::Artist);
//! assert_eq!(record.hash(), record.clone().into_owned().hash());
//! println!("{} {} {}", record.kind(), record.id(), record.hash());
//! ```
#![deny(missing_docs)]

mod borrow;
mod owned;

mod artist;
pub mod hash;
mod kind;
mod label;
mod master;
mod parts;
mod record;
mod release;
pub mod sink;
pub mod wire;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use artist::Artist;
pub use hash::{Canonical, InvalidRecordHash, RecordHash, RecordHasher};
pub use kind::{RecordKind, UnknownKind};
pub use label::Label;
pub use master::Master;
pub use parts::{Credit, EntityRef, Image, Video};
pub use record::Record;
pub use release::{year_from_released, Company, Format, Identifier, Release, ReleaseLabel, Track};
pub use sink::{latest_by_id, KindMismatch, Sink, SinkError, SinkOutcome, SinkRecord};
