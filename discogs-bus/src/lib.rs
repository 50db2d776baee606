//! The message bus between the extractor and the consumers: RabbitMQ, or in process.
//!
//! * [`Publisher`]: one dump file at a time, records are batched into messages (by count
//!   and by size) of the [wire envelope](discogs_model::wire), sent with many confirms in
//!   flight, and followed by `file_complete`; `extraction_complete` after the four files.
//!   [`Publisher::progress`] tells which batches the broker has confirmed: the point to
//!   resume from after a crash. [`AmqpPublisher`] for RabbitMQ, [`MemoryPublisher`] in
//!   process.
//! * [`Consumer`]: a stream of [`Delivery`]s (a batch of records with their hashes, or a
//!   control message), each settled after the work is durable: [`Delivery::ack`],
//!   [`Delivery::requeue`], [`Delivery::dead_letter`] with a reason. [`process`] runs a
//!   [`Handler`] on a delivery with in-process retries for transient failures, so that a
//!   database outage does not use up the queue's delivery limit. [`AmqpConsumer`] for
//!   RabbitMQ (prefetch, reconnection, idling after `CONSUMER_CANCEL_DELAY`),
//!   [`MemoryConsumer`] in process.
//! * [`topology`]: the durable fanout exchange per kind, the quorum queue per consumer and
//!   kind with its delivery limit, dead-letter exchange and dead-letter queue, declared
//!   idempotently by whoever starts first; [`Admin`] to declare, inspect and delete them.
//! * [`MemoryBus`]: the same traits in one process, bounded, for the one-process pipeline
//!   and for tests of the code above the bus.
//! * Errors are [`BusError`]s, which say whether a retry can help
//!   ([`BusError::is_retriable`]).
//!
//! ```no_run
//! use discogs_bus::{
//!     process, AmqpConsumer, AmqpPublisher, Consumer, ConsumerConfig, Delivery, FileRef,
//!     Handler, Publisher, PublisherConfig, Resume, RetryPolicy, Topology,
//! };
//! use discogs_model::{Artist, Record, RecordKind, SinkError, SinkRecord};
//!
//! # #[derive(Debug, thiserror::Error)] #[error("never")] struct Never;
//! # impl SinkError for Never { fn is_retriable(&self) -> bool { false } }
//! struct Count(usize);
//! impl Handler for Count {
//!     type Error = Never;
//!     async fn handle(&mut self, delivery: &Delivery) -> Result<(), Never> {
//!         self.0 += delivery.records().len(); // write to a database here
//!         Ok(())
//!     }
//! }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let url = "amqp://discogsography:discogsography@127.0.0.1:5672/%2f";
//! // The extractor: the consumers' queues are declared first, so nothing is lost.
//! let config = PublisherConfig { consumers: vec!["tableinator".into()], ..Default::default() };
//! let mut publisher = AmqpPublisher::new(url, Topology::default(), config)?;
//! let file = FileRef::new(RecordKind::Artist, "20260101", "discogs_20260101_artists.xml.gz");
//! publisher.begin_file(file, Resume::default())?;
//! let artist = Artist { id: 1, name: "The Persuader".into(), ..Default::default() };
//! publisher.publish(&SinkRecord::new(Record::from(artist))).await?;
//! let done = publisher.end_file().await?; // all batches confirmed, file_complete sent
//! assert_eq!(done.records, 1);
//!
//! // A consumer service.
//! let mut consumer = AmqpConsumer::new(url, Topology::default(), ConsumerConfig::new("tableinator"))?;
//! let mut handler = Count(0);
//! let delivery = consumer.next().await?;
//! process(delivery, &mut handler, &RetryPolicy::default()).await?;
//! consumer.close().await?;
//! # Ok(()) }
//! ```
//!
//! The example `publish_dump` in the workspace's `examples/` publishes a dump file, and
//! `examples/throughput.rs` here is the benchmark (see the README).
#![deny(missing_docs)]

mod amqp;
mod config;
mod consume;
mod consumer;
mod delivery;
mod error;
mod memory;
mod publish;
mod publisher;
pub mod topology;

pub use amqp::headers;
pub use config::{Backoff, Compression, ConsumerConfig, PublisherConfig, Topology, DEFAULT_PREFIX};
pub use consume::{process, Consumer, ConsumerState, Handler, RetryPolicy, Settled};
pub use consumer::AmqpConsumer;
pub use delivery::{body_json, dead_letter_reason, Delivery};
pub use error::BusError;
pub use memory::{DeadLetter, MemoryBus, MemoryConsumer, MemoryPublisher};
pub use publish::{FileProgress, FileRef, Publisher, Resume};
pub use publisher::AmqpPublisher;
pub use topology::{Admin, QueueStats};

/// The AMQP client in use, for the types that appear in this crate's API (`FieldTable`
/// in [`dead_letter_reason`]).
pub use lapin;

/// A short string unique to this process and call, for consumer tags.
pub(crate) fn unique_tag() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
