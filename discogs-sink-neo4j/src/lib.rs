//! The Discogs knowledge graph in Neo4j, kept current with the dumps.
//!
//! [`Neo4jSink`] implements [`discogs_model::Sink`]: batches of records of one kind become
//! nodes and relationships (the model in [`graph_form`] and the crate's README):
//!
//! ```text
//! (Release)-[:BY]->(Artist)            (Master)-[:BY]->(Artist)
//! (Release)-[:ON {catno}]->(Label)     (Master)-[:MAIN_RELEASE]->(Release)
//! (Release)-[:DERIVED_FROM]->(Master)  (Release|Master)-[:IS]->(Genre|Style)
//! (Artist)-[:CREDITED_ON {role}]->(Release)
//! (Artist)-[:MEMBER_OF]->(Artist)      member → group
//! (Artist)-[:ALIAS_OF]->(Artist)       artist → its alias
//! (Label)-[:SUBLABEL_OF]->(Label)      child → parent
//! (Style)-[:PART_OF]->(Genre)          from records with exactly one genre
//! ```
//!
//! * **Schema** ([`schema_objects`]): uniqueness constraints on the ids and on genre and
//!   style names, range indexes on `year`, `sha256` and names, full-text indexes on names
//!   and titles; created at start-up when missing.
//! * **Writes**: parameterised `UNWIND` statements per kind with fixed text; integer ids;
//!   a hash gate (one read query per batch; unchanged records cost no write); a changed
//!   record replaces the relationships it owns; references to records not loaded yet
//!   create stub nodes (no `sha256`) that the records complete when they arrive.
//! * **Removed records** ([`Neo4jSink::remove_records`]): a record that a dump no longer
//!   has loses the relationships it owns and its node, or, while other records still
//!   refer to it, becomes a stub again.
//! * **After a complete extraction** ([`Neo4jSink::finish_extraction`]): isolated stubs
//!   are removed and the explorer's aggregates computed, in transactions bounded by id
//!   ranges.
//! * **Namespaces** ([`GraphNames`]): a prefix on every label and schema name, empty in
//!   production, unique per test.
//! * **Errors**: [`Neo4jSinkError`], `#[non_exhaustive]`, with
//!   [`is_retriable`](Neo4jSinkError::is_retriable) from Neo4j status codes.
//!
//! ```no_run
//! use discogs_model::{Artist, Record, RecordKind, Sink, SinkRecord};
//! use discogs_sink_neo4j::{Neo4jSink, Neo4jSinkConfig};
//!
//! # async fn example() -> Result<(), discogs_sink_neo4j::Neo4jSinkError> {
//! let config = Neo4jSinkConfig::new("bolt://127.0.0.1:7687", "neo4j", "discogsography");
//! let mut sink = Neo4jSink::new(config)?; // no I/O yet
//! let artist = Record::from(Artist { id: 1, name: "The Persuader".into(), ..Default::default() });
//! let outcome = sink.write_batch(RecordKind::Artist, &[SinkRecord::new(artist)]).await?;
//! println!("{outcome:?}"); // inserted: 1 the first time, unchanged: 1 after
//! # Ok(()) }
//! ```
//!
//! The benchmark is the example `neo4j_sink_bench` (see the README).
#![deny(missing_docs)]

mod config;
mod error;
mod form;
mod maintenance;
mod names;
mod nodelay;
mod plan;
mod removal;
mod schema;
mod sink;

pub use config::{
    default_maintenance_id_range, default_timeout_secs, default_transaction_records,
    default_username, default_write_transactions, Neo4jSinkConfig, MIN_RECORDS_PER_TRANSACTION,
};
pub use error::{status_retriable, Neo4jSinkError};
pub use form::graph_form;
pub use maintenance::{Aggregates, MaintenanceReport};
pub use names::{GraphNames, InvalidNamespace};
pub use removal::RemovalOutcome;
pub use schema::{schema_objects, SchemaObject};
pub use sink::{Neo4jSink, WriteStats, DEADLOCK_RETRIES};
