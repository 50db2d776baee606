//! What the dashboard knows at one moment: the JSON that `/api/metrics` returns and `/ws`
//! pushes, one object per collection.
//!
//! Every source is a [`Source`]: `status` `up` with its `data`, or `down` with the `error`
//! and no data at all. A source that does not answer is never shown as zero.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One reading of every source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `snapshot`, so a WebSocket client can tell it from future message types.
    #[serde(rename = "type")]
    pub kind: String,
    /// Collection number since the dashboard started (1 for the first).
    pub seq: u64,
    /// When the collection started, RFC 3339 (UTC).
    pub timestamp: String,
    /// The same moment in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// How long the collection took, in milliseconds (at most the source timeout).
    pub collect_ms: u64,
    /// Milliseconds between two collections.
    pub interval_ms: u64,
    /// The pipeline's services, in the configured order.
    pub services: Vec<ServiceStatus>,
    /// RabbitMQ's queues, from its management API.
    pub rabbitmq: Source<RabbitMq>,
    /// PostgreSQL: connections, size, rows per table.
    pub postgres: Source<Postgres>,
    /// Neo4j: nodes per label, relationships per type.
    pub neo4j: Source<Neo4j>,
    /// Redis: memory, hit rate.
    pub redis: Source<Redis>,
    /// The most recent changes of state, oldest first (the activity log).
    pub events: Vec<Event>,
}

/// Whether a source answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// It answered; `data` holds what it said.
    Up,
    /// It did not answer in time or answered with an error; `error` says what happened.
    Down,
}

/// The reading of one source: its data, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source<T> {
    /// `up` or `down`.
    pub status: SourceState,
    /// Why it is down.
    pub error: Option<String>,
    /// How long it took to answer (or to fail), in milliseconds.
    pub latency_ms: u64,
    /// What it said, when up.
    pub data: Option<T>,
}

impl<T> Source<T> {
    /// An answer.
    pub fn up(data: T, latency_ms: u64) -> Self {
        Self {
            status: SourceState::Up,
            error: None,
            latency_ms,
            data: Some(data),
        }
    }

    /// No answer, and why.
    pub fn down(error: impl Into<String>, latency_ms: u64) -> Self {
        Self {
            status: SourceState::Down,
            error: Some(error.into()),
            latency_ms,
            data: None,
        }
    }

    /// Whether the source answered.
    pub fn is_up(&self) -> bool {
        self.status == SourceState::Up
    }
}

/// How a service's `/health` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// `200` (and a body that does not say otherwise).
    Healthy,
    /// It answered, but not healthy (`503`, another code, or a body saying so).
    Unhealthy,
    /// Still starting (its body says `starting`).
    Starting,
    /// No answer: not running, unreachable, or too slow.
    Down,
}

/// One service as its `/health` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// The configured name (`extractor`, `graphinator`...).
    pub name: String,
    /// The `/health` URL read.
    pub url: String,
    /// Healthy, unhealthy, starting or down.
    pub status: ServiceState,
    /// The HTTP status code, when it answered.
    pub http_status: Option<u16>,
    /// Its `state` (`running`, `idle`, `waiting`...).
    pub state: Option<String>,
    /// What it is doing: its `current_task`, else the step and file of its progress, else
    /// its state.
    pub current_task: Option<String>,
    /// Why it says it is unhealthy (its `reason`).
    pub reason: Option<String>,
    /// Why it is down (connection refused, timeout, a body that is not JSON...).
    pub error: Option<String>,
    /// Time to answer, in milliseconds.
    pub latency_ms: u64,
    /// Its uptime, as it reports it.
    pub uptime_seconds: Option<u64>,
    /// The last time it answered (RFC 3339), also while it is down.
    pub last_seen: Option<String>,
    /// Records it reports in all (published, written...).
    pub records: Option<u64>,
    /// Records per second: its own figure, else the change of `records` between the last
    /// two readings.
    pub records_per_second: Option<f64>,
    /// Progress by bytes of the step in hand (the extractor's download, verification or
    /// publishing).
    pub progress: Option<Progress>,
    /// The whole `/health` body, for what the dashboard does not interpret.
    pub details: Option<Value>,
}

/// Progress of a service's step over a file, by bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// `download`, `verify`, `publish`...
    pub step: Option<String>,
    /// The file.
    pub file: Option<String>,
    /// Bytes done.
    pub bytes_done: u64,
    /// Bytes in all, when known.
    pub bytes_total: Option<u64>,
    /// `bytes_done / bytes_total` in percent, when the total is known.
    pub percent: Option<f64>,
    /// Bytes per second.
    pub bytes_per_second: Option<f64>,
    /// Seconds left: the service's figure, else the bytes left at the current rate.
    pub eta_seconds: Option<u64>,
}

/// RabbitMQ, as its management API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RabbitMq {
    /// The broker's version.
    pub version: Option<String>,
    /// The pipeline's queues (`{prefix}-{consumer}-{kind}`), dead-letter queues excluded.
    pub queues: Vec<QueueStats>,
    /// The dead-letter queues (`{queue}.dlq`), with samples of why messages are there.
    pub dead_letters: Vec<DeadLetterQueue>,
    /// Messages in all the pipeline's queues.
    pub total_messages: u64,
    /// Messages in all dead-letter queues.
    pub total_dead_letters: u64,
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// The queue's name.
    pub name: String,
    /// The consumer part of `{prefix}-{consumer}-{kind}`.
    pub consumer: Option<String>,
    /// The kind part (`artists`, `labels`, `masters`, `releases`).
    pub kind: Option<String>,
    /// `quorum`, `classic`, `stream`.
    pub queue_type: Option<String>,
    /// The broker's state of the queue (`running`...).
    pub state: Option<String>,
    /// Messages in the queue (ready + unacknowledged). The figures are absent until the
    /// broker has computed them (a queue younger than its statistics interval).
    pub messages: Option<u64>,
    /// Messages ready for delivery.
    pub ready: Option<u64>,
    /// Messages delivered and not yet acknowledged.
    pub unacked: Option<u64>,
    /// Consumers attached.
    pub consumers: Option<u64>,
    /// Messages published into it per second.
    pub publish_rate: Option<f64>,
    /// Messages delivered per second.
    pub deliver_rate: Option<f64>,
    /// Messages acknowledged per second.
    pub ack_rate: Option<f64>,
    /// Messages in its dead-letter queue, when it has one.
    pub dead_letters: Option<u64>,
}

/// A dead-letter queue and what is in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterQueue {
    /// The dead-letter queue (`{queue}.dlq`).
    pub name: String,
    /// The queue whose messages end here.
    pub source: String,
    /// Messages in it.
    pub messages: u64,
    /// A few of its messages, oldest first, with the reason each was dead-lettered.
    pub samples: Vec<DeadLetter>,
    /// Why there are no samples although there are messages (e.g. reading them would
    /// count against a delivery limit).
    pub note: Option<String>,
}

/// One dead-lettered message, as far as its headers tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Why: the consumer's `discogs-dead-letter-reason`, else the broker's `x-death`
    /// reason (`rejected`, `delivery_limit`, `expired`...).
    pub reason: Option<String>,
    /// The queue it was dead-lettered from.
    pub from_queue: Option<String>,
    /// The dump file of the batch (`discogs-file`).
    pub file: Option<String>,
    /// The batch's sequence number in its file (`discogs-seq`).
    pub seq: Option<u64>,
    /// How many times it had been delivered before.
    pub deliveries: Option<u64>,
    /// The start of the body.
    pub preview: String,
}

/// PostgreSQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Postgres {
    /// `server_version`.
    pub version: String,
    /// The database.
    pub database: String,
    /// `pg_database_size` in bytes.
    pub size_bytes: u64,
    /// Sessions connected to the database (`pg_stat_activity`).
    pub connections: u64,
    /// Tables of the watched schemas.
    pub tables: Vec<TableStats>,
}

/// One table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Estimated rows: the statistics collector's live rows, else the planner's estimate
    /// (`reltuples`); absent for a table never analysed nor written.
    pub rows_estimate: Option<u64>,
    /// Rows inserted since statistics were reset.
    pub inserted: u64,
    /// Rows updated since statistics were reset.
    pub updated: u64,
    /// Rows deleted since statistics were reset.
    pub deleted: u64,
    /// Estimated size on disk of the table itself (`relpages` × block size), in bytes.
    pub size_bytes: u64,
}

/// Neo4j.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neo4j {
    /// The server's version and edition.
    pub version: Option<String>,
    /// Nodes of the graph (of its namespace's labels).
    pub total_nodes: u64,
    /// Relationships starting at the graph's nodes.
    pub total_relationships: u64,
    /// Nodes per label of the graph (all six, also when 0), largest first.
    pub labels: Vec<Count>,
    /// Relationships per type, largest first.
    pub relationship_types: Vec<Count>,
}

/// A name and how many of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// Label or relationship type.
    pub name: String,
    /// How many.
    pub count: u64,
}

/// Redis, from `INFO`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redis {
    /// `redis_version`.
    pub version: Option<String>,
    /// `used_memory`, bytes.
    pub used_memory: u64,
    /// `used_memory_peak`, bytes.
    pub used_memory_peak: Option<u64>,
    /// `maxmemory`, bytes (0: no limit).
    pub maxmemory: Option<u64>,
    /// `connected_clients`.
    pub connected_clients: Option<u64>,
    /// `keyspace_hits`.
    pub keyspace_hits: u64,
    /// `keyspace_misses`.
    pub keyspace_misses: u64,
    /// `hits / (hits + misses)`, absent before the first lookup.
    pub hit_rate: Option<f64>,
    /// `instantaneous_ops_per_sec`.
    pub ops_per_second: Option<f64>,
    /// `evicted_keys`.
    pub evicted_keys: Option<u64>,
    /// Keys in all databases.
    pub keys: u64,
}

/// One line of the activity log: something changed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it was seen, RFC 3339.
    pub at: String,
    /// The same moment in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What changed: a service name, `rabbitmq`, `postgres`, `neo4j`, `redis`, or a queue.
    pub source: String,
    /// `info`, `warn` or `error`.
    pub level: String,
    /// What happened.
    pub message: String,
}
