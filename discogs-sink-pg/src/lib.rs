//! PostgreSQL tables kept current with the Discogs dumps.
//!
//! [`PgSink`] implements [`discogs_model::Sink`]: batches of records of one kind go into
//! the tables `artists`, `labels`, `masters` and `releases` of a configurable schema
//! ([`PgSinkConfig`]). Each row holds the id (`BIGINT` primary key), the record's
//! `sha256`, the whole record as `data JSONB` (lz4-compressed where the server supports
//! it), extracted columns for filtering and sorting, a generated `search tsvector`, and
//! `updated_at`.
//!
//! * **Schema**: versioned migrations applied at start-up under an advisory lock
//!   (`schema_migrations`); B-tree indexes on the extracted columns, GIN indexes on
//!   genres, styles, `search` and `data` (`jsonb_path_ops`; for releases over the stored
//!   generated column `facets` = `release_facets(data)`, the record without its track
//!   list, notes, credits, identifiers, companies, videos and images, at a fifth of the
//!   cost; query `WHERE facets @> '{"country": "UK"}'`). `releases` keeps a quarter of
//!   each page free, so an update that changes no indexed value (track list, notes,
//!   credits, images...) is a HOT update and writes no index entry; views `release_artists`,
//!   `release_credits`, `release_labels`, `release_genres`, `release_styles`,
//!   `release_tracks`, `master_artists`.
//! * **Writes**: unchanged records (same hash) are skipped after one indexed lookup per
//!   connection; the rest go by binary COPY into staging and one hash-gated upsert
//!   (see [`PgSink`]). A first-load mode copies straight into empty tables and builds the
//!   indexes afterwards ([`PgSink::begin_first_load`], [`PgSink::finish_first_load`]).
//! * **Purge** of rows an extraction did not carry, with guards ([`purge`]), and deletion
//!   of the records a dump no longer has by id ([`PgSink::delete_ids`]).
//! * **Errors**: [`PgSinkError`], `#[non_exhaustive]`, with
//!   [`is_retriable`](PgSinkError::is_retriable) from SQLSTATE classes.
//!
//! ```no_run
//! use discogs_model::{Artist, Record, RecordKind, Sink, SinkRecord};
//! use discogs_sink_pg::{PgSink, PgSinkConfig};
//!
//! # async fn example() -> Result<(), discogs_sink_pg::PgSinkError> {
//! let config = PgSinkConfig::new("postgres://discogsography:discogsography@127.0.0.1/discogsography")
//!     .schema("discogs");
//! let mut sink = PgSink::new(config)?; // no I/O yet
//! let artist = Record::from(Artist { id: 1, name: "The Persuader".into(), ..Default::default() });
//! let outcome = sink.write_batch(RecordKind::Artist, &[SinkRecord::new(artist)]).await?;
//! println!("{outcome:?}"); // inserted: 1 the first time, unchanged: 1 after
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod config;
mod copy;
mod error;
pub mod purge;
mod schema;
mod sink;

pub use config::{
    default_application_name, default_connect_timeout_secs, default_max_purge_fraction,
    default_schema, default_streams, PgSinkConfig,
};
pub use error::PgSinkError;
pub use purge::{PurgeOutcome, PurgeRefusal, PurgeRequest};
pub use sink::PgSink;
