//! What the graphinator and the tableinator share: consume the four kinds' queues
//! concurrently and keep a database ([`Target`]) current.
//!
//! [`run`] starts one task per kind, each with its own [`Consumer`] (its own queue, its own
//! connection to the broker) and its own [`Target`] (its own database connections), so a
//! slow kind does not hold up the others. Each delivery goes through
//! [`discogs_bus::process`]:
//!
//! * a **batch** is written through the target and acknowledged only after the commit;
//! * a **retriable** error (connection lost, deadlock, server restarting) is retried in
//!   process with backoff for [`RetryPolicy::hold_for`], without giving the message back to
//!   the queue, so an outage of minutes costs no delivery attempt;
//! * a **permanent** error dead-letters the message with the reason in a header;
//! * **`removed`** (ids of records the dump no longer has, sent before the file's
//!   `file_complete`) deletes them through [`Target::remove`] (idempotent) and is
//!   acknowledged after the commit, like a batch;
//! * **`file_complete`** runs the target's [`Target::file_complete`] (in PostgreSQL the
//!   end of a first load: the indexes are built) and is counted;
//! * **`extraction_complete`** (one on each kind's queue, after all of that kind's batches)
//!   runs the target's [`Target::kind_complete`] (the PostgreSQL purge), and, on the last
//!   of the four kinds, [`Target::all_complete`] (Neo4j's stub removal and aggregates).
//!   Each step is recorded in the database, so a redelivered message or a restart does not
//!   run it twice.
//!
//! The tasks report to [`ConsumerStats`], from which `/health` (per-kind counts, rates,
//! last message time, current task) and `/metrics` are served. Shutdown stops taking
//! deliveries, finishes and settles the one in hand, and closes the consumers.

mod target;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use discogs_bus::{
    process, Admin, AmqpConsumer, Consumer, ConsumerConfig, ConsumerState, Delivery, Handler,
    RetryPolicy, Settled, Topology,
};
use discogs_model::wire::{Batch, ExtractionComplete, Message};
use discogs_model::{RecordKind, SinkOutcome, SinkRecord};
use serde_json::{json, Map, Value};

use crate::health::{rfc3339, Status};
use crate::metrics::{Counter, Gauge, Metrics};
use crate::shutdown::Shutdown;

pub use crate::config::url_encode;
pub use target::{Neo4jTarget, PgTarget, Removal, Target};

/// `CONSUMER_CANCEL_DELAY` and the other consumer settings every consumer service reads.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsumerArgs {
    /// Seconds without a message after which the consumer unsubscribes and disconnects,
    /// then checks the queues now and then (`0` never idles).
    #[arg(long, env = "CONSUMER_CANCEL_DELAY", default_value_t = 300)]
    pub consumer_cancel_delay: u64,
    /// Seconds between an idle consumer's looks at its queues.
    #[arg(long, env = "QUEUE_CHECK_INTERVAL", default_value_t = 60)]
    pub queue_check_interval: u64,
    /// Unacknowledged messages the broker may send ahead, per queue (enough for two
    /// writes of `--write-records` at 100 records per message).
    #[arg(long, env = "CONSUMER_PREFETCH", default_value_t = 40)]
    pub prefetch: u16,
    /// Records written in one database write at most: batches already delivered (and not
    /// yet acknowledged) are gathered into one write, then acknowledged together after
    /// its commit. `1` writes each message on its own.
    #[arg(long, env = "CONSUMER_WRITE_RECORDS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub write_records: u64,
    /// Minutes to keep retrying a failing write in process before giving the message back
    /// to its queue (keep it below the broker's `consumer_timeout`, 30 minutes).
    #[arg(long, env = "CONSUMER_RETRY_MINUTES", default_value_t = 20)]
    pub retry_minutes: u64,
}

impl ConsumerArgs {
    /// The bus's configuration of consumer `name` for `kind`.
    #[must_use]
    pub fn consumer_config(&self, name: &str, kind: RecordKind) -> ConsumerConfig {
        let mut config =
            ConsumerConfig::new(name).with_cancel_delay_secs(self.consumer_cancel_delay);
        config.kinds = vec![kind];
        config.prefetch = self.prefetch.max(1);
        config.idle_check_interval = Duration::from_secs(self.queue_check_interval.max(1));
        config
    }

    /// [`Self::write_records`] as a count.
    #[must_use]
    pub fn write_records_usize(&self) -> usize {
        usize::try_from(self.write_records)
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// The retry policy.
    #[must_use]
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            hold_for: Duration::from_secs(self.retry_minutes * 60),
            ..RetryPolicy::default()
        }
    }
}

/// What one kind's task has done, for `/health`.
#[derive(Debug, Clone, Default)]
struct KindStats {
    messages: u64,
    batches: u64,
    records: u64,
    inserted: u64,
    updated: u64,
    unchanged: u64,
    removed: u64,
    stubbed: u64,
    dead_lettered: u64,
    requeued: u64,
    retries: u64,
    files_complete: u64,
    extractions_complete: u64,
    first_record: Option<Instant>,
    last_message: Option<SystemTime>,
    task: String,
    state: String,
}

/// What a consumer wrote of one kind (see [`ConsumerStats::counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Records written (inserted, updated or found unchanged).
    pub records: u64,
    /// New records.
    pub inserted: u64,
    /// Changed records rewritten.
    pub updated: u64,
    /// Records whose stored hash matched: no write.
    pub unchanged: u64,
    /// Messages dead-lettered.
    pub dead_lettered: u64,
    /// Records deleted (or, in Neo4j, turned back into stubs) because the dump no longer
    /// has them.
    pub removed: u64,
}

/// Counters per kind shared by the tasks, `/health` and `/metrics`. Clones share them.
#[derive(Debug, Clone)]
pub struct ConsumerStats {
    kinds: Arc<Mutex<BTreeMap<RecordKind, KindStats>>>,
    metrics: Metrics,
}

impl ConsumerStats {
    /// Empty counters registering their metrics in `metrics`.
    #[must_use]
    pub fn new(metrics: Metrics) -> Self {
        Self {
            kinds: Arc::default(),
            metrics,
        }
    }

    fn update<R>(&self, kind: RecordKind, f: impl FnOnce(&mut KindStats) -> R) -> R {
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        f(kinds.entry(kind).or_default())
    }

    fn counter(&self, name: &str, help: &str, kind: RecordKind, extra: &[(&str, &str)]) -> Counter {
        let mut labels = vec![("kind", kind.plural())];
        labels.extend_from_slice(extra);
        self.metrics.counter(name, help, &labels)
    }

    fn gauge(&self, name: &str, help: &str, kind: RecordKind) -> Gauge {
        self.metrics.gauge(name, help, &[("kind", kind.plural())])
    }

    /// Messages of `kind` dead-lettered by this process.
    #[must_use]
    pub fn dead_lettered(&self, kind: RecordKind) -> u64 {
        self.update(kind, |s| s.dead_lettered)
    }

    /// Records of `kind` written (inserted, updated or found unchanged) by this process.
    #[must_use]
    pub fn records(&self, kind: RecordKind) -> u64 {
        self.update(kind, |s| s.records)
    }

    /// Records of `kind` deleted (or, in Neo4j, turned back into stubs) after `removed`
    /// messages, by this process.
    #[must_use]
    pub fn removed(&self, kind: RecordKind) -> u64 {
        self.update(kind, |s| s.removed + s.stubbed)
    }

    /// What this process wrote of `kind`: records by result, and dead letters.
    #[must_use]
    pub fn counts(&self, kind: RecordKind) -> WriteCounts {
        self.update(kind, |s| WriteCounts {
            records: s.records,
            inserted: s.inserted,
            updated: s.updated,
            unchanged: s.unchanged,
            dead_lettered: s.dead_lettered,
            removed: s.removed + s.stubbed,
        })
    }

    /// `extraction_complete` messages of `kind` handled by this process.
    #[must_use]
    pub fn extractions_complete(&self, kind: RecordKind) -> u64 {
        self.update(kind, |s| s.extractions_complete)
    }

    /// The per-kind part of `/health`: counts, rate, last message time, current task.
    #[must_use]
    pub fn report(&self) -> Map<String, Value> {
        let kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        let mut per_kind = Map::new();
        for (kind, s) in kinds.iter() {
            let rate = s.first_record.map_or(0.0, |t| {
                let secs = t.elapsed().as_secs_f64();
                if secs > 0.0 {
                    (s.records as f64 / secs * 10.0).round() / 10.0
                } else {
                    0.0
                }
            });
            per_kind.insert(
                kind.plural().to_owned(),
                json!({
                    "messages": s.messages,
                    "batches": s.batches,
                    "records": s.records,
                    "inserted": s.inserted,
                    "updated": s.updated,
                    "unchanged": s.unchanged,
                    "removed": s.removed,
                    "stubbed": s.stubbed,
                    "dead_lettered": s.dead_lettered,
                    "requeued": s.requeued,
                    "retries": s.retries,
                    "files_complete": s.files_complete,
                    "records_per_second": rate,
                    "last_message_at": s.last_message.map(rfc3339),
                    "current_task": s.task,
                    "consumer": s.state,
                }),
            );
        }
        let mut out = Map::new();
        out.insert("kinds".into(), Value::Object(per_kind));
        out
    }
}

/// How far the completion steps of an extraction got; shared by the kind tasks so that
/// the last kind runs [`Target::all_complete`] once.
#[derive(Debug, Default)]
struct Completion {
    lock: tokio::sync::Mutex<()>,
}

/// Counts dead-lettered messages of a kind for the purge's guard: the broker's
/// dead-letter queue when there is one, else what this process dead-lettered.
#[derive(Debug, Clone)]
pub enum DeadLetterSource {
    /// What this process counted.
    Process,
    /// The depth of the consumer's dead-letter queue on the broker at `url` (at least what
    /// this process counted).
    Broker {
        /// AMQP URL.
        url: String,
        /// The names on the broker.
        topology: Topology,
    },
}

/// Dead letters of `kind` for the purge's guard: `own` (this process's count), or the
/// dead-letter queue's depth when that is larger.
async fn dead_letter_count(
    source: &DeadLetterSource,
    name: &str,
    kind: RecordKind,
    own: u64,
) -> u64 {
    let DeadLetterSource::Broker { url, topology } = source else {
        return own;
    };
    let depth = async {
        let admin = Admin::connect(url, topology.clone()).await?;
        let depth = admin.dead_letter_depth(name, kind).await;
        admin.close().await.ok();
        depth
    }
    .await;
    match depth {
        Ok(depth) => own.max(u64::from(depth.unwrap_or(0))),
        Err(error) => {
            tracing::warn!(%error, %kind, "Could not read the dead-letter queue's depth; using this process's count.");
            own
        }
    }
}

/// The [`Handler`] of one kind's deliveries.
struct KindHandler<T> {
    name: String,
    kind: RecordKind,
    target: T,
    stats: ConsumerStats,
    completion: Arc<Completion>,
    dead_letters: DeadLetterSource,
    metrics: KindMetrics,
}

struct KindMetrics {
    inserted: Counter,
    updated: Counter,
    unchanged: Counter,
    removed: Counter,
    batches: Counter,
    failures: Counter,
    last_message: Gauge,
}

impl KindMetrics {
    fn new(stats: &ConsumerStats, kind: RecordKind) -> Self {
        let records = |result| {
            stats.counter(
                "records_total",
                "Records handled, by result.",
                kind,
                &[("result", result)],
            )
        };
        Self {
            inserted: records("inserted"),
            updated: records("updated"),
            unchanged: records("unchanged"),
            removed: records("removed"),
            batches: stats.counter("batches_total", "Batches committed.", kind, &[]),
            failures: stats.counter(
                "write_failures_total",
                "Failed attempts to handle a message (each retry counts).",
                kind,
                &[],
            ),
            last_message: stats.gauge(
                "last_message_timestamp_seconds",
                "When the last message of this kind arrived (Unix time).",
                kind,
            ),
        }
    }
}

impl<T: Target> KindHandler<T> {
    fn set_task(&self, task: impl Into<String>) {
        let task = task.into();
        self.stats.update(self.kind, |s| s.task = task);
    }

    /// Counts a committed write of `batches` messages.
    fn count_written(&self, o: &SinkOutcome, batches: u64) {
        self.metrics.inserted.add(o.inserted);
        self.metrics.updated.add(o.updated);
        self.metrics.unchanged.add(o.unchanged);
        self.metrics.batches.add(batches);
        self.stats.update(self.kind, |s| {
            s.batches += batches;
            s.records += o.total();
            s.inserted += o.inserted;
            s.updated += o.updated;
            s.unchanged += o.unchanged;
            s.first_record.get_or_insert_with(Instant::now);
        });
    }

    /// Writes the batches of `group` (decoded batch messages of one version, see
    /// [`gather`]) in one write of the target. The sinks keep the last of repeated ids.
    async fn write_group(&mut self, group: &[Delivery]) -> Result<(), T::Error> {
        let batches: Vec<&Batch<'static>> = group.iter().filter_map(batch_of).collect();
        let (Some(first), Some(last)) = (batches.first(), batches.last()) else {
            return Ok(());
        };
        self.set_task(format!(
            "writing batches {}–{} of {} ({} messages)",
            first.seq,
            last.seq,
            first.file,
            batches.len()
        ));
        let records: Vec<SinkRecord<'static>> = batches
            .iter()
            .flat_map(|b| b.records.iter().cloned())
            .collect();
        let outcome = self
            .target
            .write(self.kind, &first.version, &records)
            .await?;
        self.count_written(&outcome, u64::try_from(batches.len()).unwrap_or(u64::MAX));
        Ok(())
    }

    async fn extraction_complete(&mut self, done: &ExtractionComplete<'_>) -> Result<(), T::Error> {
        let version = done.version.as_ref();
        let kind = self.kind;
        let step = format!("{}_complete", kind.plural());
        if self.target.is_done(version, &step).await? {
            tracing::info!(%kind, version, "Extraction already completed for this kind; nothing to do.");
        } else {
            self.set_task(format!("completing {} of {version}", kind.plural()));
            let own = self.stats.dead_lettered(kind);
            let dead_lettered = dead_letter_count(&self.dead_letters, &self.name, kind, own).await;
            let summary = self
                .target
                .kind_complete(version, kind, done.record_counts.get(kind), dead_lettered)
                .await?;
            self.target.mark_done(version, &step).await?;
            tracing::info!(%kind, version, %summary, "Extraction complete for this kind.");
        }
        // The last of the four kinds runs the final step, once.
        let _guard = self.completion.lock.lock().await;
        if self.target.is_done(version, "finished").await? {
            return Ok(());
        }
        for other in RecordKind::ALL {
            if !self
                .target
                .is_done(version, &format!("{}_complete", other.plural()))
                .await?
            {
                return Ok(());
            }
        }
        self.set_task(format!("finishing extraction {version}"));
        let summary = self.target.all_complete(version).await?;
        self.target.mark_done(version, "finished").await?;
        tracing::info!(version, %summary, "Extraction complete for all kinds.");
        Ok(())
    }
}

impl<T: Target> Handler for KindHandler<T> {
    type Error = T::Error;

    async fn handle(&mut self, delivery: &Delivery) -> Result<(), T::Error> {
        let Ok(message) = delivery.message() else {
            return Ok(()); // process() dead-letters undecodable bodies before calling us
        };
        let kind = self.kind;
        let result = match message {
            Message::Batch(batch) => {
                self.set_task(format!("writing batch {} of {}", batch.seq, batch.file));
                let outcome = self
                    .target
                    .write(kind, &batch.version, &batch.records)
                    .await;
                if let Ok(o) = &outcome {
                    self.count_written(o, 1);
                }
                outcome.map(drop)
            }
            Message::Removed(removed) => {
                self.set_task(format!(
                    "removing {} {} of {}",
                    removed.ids.len(),
                    kind.plural(),
                    removed.file
                ));
                let outcome = self
                    .target
                    .remove(kind, &removed.version, &removed.ids)
                    .await;
                if let Ok(o) = &outcome {
                    self.metrics.removed.add(o.deleted + o.stubbed);
                    self.stats.update(kind, |s| {
                        s.removed += o.deleted;
                        s.stubbed += o.stubbed;
                    });
                    tracing::info!(%kind, file = %removed.file, seq = removed.seq, ids = removed.ids.len(), deleted = o.deleted, stubbed = o.stubbed, "Removed records deleted.");
                }
                outcome.map(drop)
            }
            Message::FileComplete(file) => {
                tracing::info!(%kind, file = %file.file, records = file.records, batches = file.batches, removed = file.removed, "File complete.");
                self.set_task(format!("completing file {}", file.file));
                let result = self.target.file_complete(kind).await;
                if let Ok(Some(summary)) = &result {
                    tracing::info!(%kind, file = %file.file, %summary, "File complete: target work done.");
                }
                if result.is_ok() {
                    self.stats.update(kind, |s| s.files_complete += 1);
                }
                result.map(drop)
            }
            Message::ExtractionComplete(done) => {
                let result = self.extraction_complete(done).await;
                if result.is_ok() {
                    self.stats.update(kind, |s| s.extractions_complete += 1);
                }
                result
            }
        };
        if result.is_err() {
            self.metrics.failures.inc();
            self.stats.update(kind, |s| s.retries += 1);
        }
        result
    }
}

fn state_name(state: ConsumerState) -> String {
    match state {
        ConsumerState::Starting => "starting".into(),
        ConsumerState::Consuming => "consuming".into(),
        ConsumerState::Reconnecting { attempt } => format!("reconnecting (attempt {attempt})"),
        ConsumerState::Idle => "idle".into(),
        ConsumerState::Closed => "closed".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// How long [`gather`] waits for one more delivery: only messages already on their way
/// are gathered, so a quiet queue's last batch is written at once.
const GATHER_LINGER: Duration = Duration::from_millis(20);

/// How many batches one write gathers.
#[derive(Debug, Clone, Copy)]
struct Gather {
    /// Records per write at most.
    max_records: usize,
    /// Wait for each further delivery at most.
    linger: Duration,
}

/// The batch a delivery carries, if it decodes to one.
fn batch_of(delivery: &Delivery) -> Option<&Batch<'static>> {
    match delivery.message() {
        Ok(Message::Batch(b)) => Some(b),
        _ => None,
    }
}

/// What [`gather`] collected: deliveries to write together, the delivery that ended the
/// group (processed next, on its own or as the first of the next group), and an error of
/// the consumer met while gathering (returned after the group is settled).
struct Gathered {
    group: Vec<Delivery>,
    next: Option<Delivery>,
    error: Option<discogs_bus::BusError>,
}

/// Starting from `first`, takes further deliveries already on their way (each within
/// `gather.linger`) while they are batches of the same version and the records stay
/// within `gather.max_records`. Anything else (a control message, an undecodable body,
/// another version, a batch that would overflow) ends the group and is handed back, so the
/// order of the queue is kept.
async fn gather<C: Consumer>(consumer: &mut C, first: Delivery, gather: Gather) -> Gathered {
    let mut out = Gathered {
        group: Vec::new(),
        next: None,
        error: None,
    };
    let Some(head) = batch_of(&first) else {
        out.group.push(first);
        return out;
    };
    let version = head.version.to_string();
    let mut records = head.records.len();
    out.group.push(first);
    while records < gather.max_records {
        let delivery = match tokio::time::timeout(gather.linger, consumer.next()).await {
            Err(_) => break,
            Ok(Err(e)) => {
                out.error = Some(e);
                break;
            }
            Ok(Ok(d)) => d,
        };
        match batch_of(&delivery) {
            Some(b) if b.version == version && records + b.records.len() <= gather.max_records => {
                records += b.records.len();
                out.group.push(delivery);
            }
            _ => {
                out.next = Some(delivery);
                break;
            }
        }
    }
    out
}

/// Writes a gathered group in one write and acknowledges each delivery after the commit,
/// retrying retriable failures in process as [`process`] does. When the write fails for
/// good (a permanent error: one record may be poison) or retriable failures last
/// [`RetryPolicy::hold_for`], each delivery goes through [`process`] on its own, which
/// finds the poison message and dead-letters it alone (and requeues or dead-letters at
/// the limit, without holding each again for `hold_for`). The sinks' writes are
/// idempotent, so writing a batch again after a failed group costs nothing.
async fn process_group<T: Target>(
    group: Vec<Delivery>,
    handler: &mut KindHandler<T>,
    policy: &RetryPolicy,
) -> Vec<Result<Settled, discogs_bus::BusError>> {
    use discogs_model::SinkError as _;
    if group.len() == 1 {
        let mut group = group;
        let only = group.pop().expect("one delivery");
        return vec![process(only, handler, policy).await];
    }
    let start = Instant::now();
    let mut attempts = 0u32;
    let individual_policy = loop {
        attempts += 1;
        match handler.write_group(&group).await {
            Ok(()) => {
                let mut settled = Vec::with_capacity(group.len());
                for d in group {
                    settled.push(d.ack().await.map(|()| Settled::Acked { attempts }));
                }
                return settled;
            }
            Err(e) => {
                handler.metrics.failures.inc();
                handler.stats.update(handler.kind, |s| s.retries += 1);
                if !e.is_retriable() {
                    tracing::warn!(kind = %handler.kind, messages = group.len(), error = %e, "A gathered write failed for good; writing its messages one by one.");
                    break *policy;
                }
                if start.elapsed() >= policy.hold_for {
                    tracing::warn!(kind = %handler.kind, messages = group.len(), error = %e, "A gathered write kept failing; settling its messages one by one.");
                    break RetryPolicy {
                        hold_for: Duration::ZERO,
                        ..*policy
                    };
                }
                let delay = policy.backoff.delay(attempts - 1);
                tracing::info!(kind = %handler.kind, error = %e, retry_in = ?delay, "Retriable failure of a gathered write; retrying in process.");
                tokio::time::sleep(delay).await;
            }
        }
    };
    let mut settled = Vec::with_capacity(group.len());
    for d in group {
        settled.push(process(d, handler, &individual_policy).await);
    }
    settled
}

/// One kind's loop: take a delivery and the batches already on their way behind it,
/// write them, settle them, until shutdown.
async fn run_kind<C: Consumer, T: Target>(
    mut consumer: C,
    mut handler: KindHandler<T>,
    policy: RetryPolicy,
    gathering: Gather,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let kind = handler.kind;
    let stats = handler.stats.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut carried: Option<Delivery> = None;
    loop {
        let state = state_name(consumer.state());
        stats.update(kind, |s| s.state = state);
        if shutdown.is_requested() {
            break;
        }
        let delivery = match carried.take() {
            Some(d) => Ok(d),
            None => tokio::select! {
                biased;
                () = shutdown.requested() => break,
                _ = tick.tick() => continue,
                delivery = consumer.next() => delivery,
            },
        };
        let delivery = match delivery {
            Ok(d) => d,
            Err(e) => {
                consumer.close().await.ok();
                return Err(anyhow::Error::new(e).context(format!("consuming {}", kind.plural())));
            }
        };
        let Gathered { group, next, error } = gather(&mut consumer, delivery, gathering).await;
        carried = next;
        let messages = u64::try_from(group.len()).unwrap_or(u64::MAX);
        handler.stats.update(kind, |s| {
            s.messages += messages;
            s.last_message = Some(SystemTime::now());
        });
        handler.metrics.last_message.set(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        for settled in process_group(group, &mut handler, &policy).await {
            match settled {
                Ok(Settled::DeadLettered { reason }) => {
                    tracing::warn!(%kind, %reason, "Message dead-lettered.");
                    stats.update(kind, |s| s.dead_lettered += 1);
                }
                Ok(Settled::Requeued { reason }) => {
                    tracing::warn!(%kind, %reason, "Message given back to its queue.");
                    stats.update(kind, |s| s.requeued += 1);
                }
                Ok(_) => {}
                // A stale delivery (its channel closed) comes back: not fatal.
                Err(e) => {
                    tracing::warn!(%kind, error = %format!("{e:#}"), "Settling failed; the broker will deliver the message again.")
                }
            }
        }
        handler.set_task("waiting for messages");
        if let Some(e) = error {
            consumer.close().await.ok();
            return Err(anyhow::Error::new(e).context(format!("consuming {}", kind.plural())));
        }
    }
    // A delivery taken but not processed goes back to the queue when the consumer closes.
    drop(carried);
    handler.set_task("stopped");
    consumer
        .close()
        .await
        .with_context(|| format!("closing the consumer of {}", kind.plural()))
}

/// Prepares `target`, retrying while the database is unreachable (a service may start
/// before its database), until shutdown.
async fn prepare<T: Target>(
    target: &mut T,
    kind: RecordKind,
    policy: &RetryPolicy,
    status: &Status,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    use discogs_model::SinkError as _;
    let mut attempt = 0;
    loop {
        match target.prepare().await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_retriable() && !shutdown.is_requested() => {
                let delay = policy.backoff.delay(attempt);
                attempt += 1;
                tracing::warn!(%kind, error = %e, retry_in = ?delay, "The database is not ready; retrying.");
                status.set_unhealthy("waiting for the database", e.to_string());
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("preparing the database for {}", kind.plural())))
            }
        }
    }
}

/// What a consumer service needs besides its target.
#[derive(Debug, Clone)]
pub struct ServiceParts {
    /// The consumer's name in queue names (`graphinator`, `tableinator`).
    pub name: String,
    /// How failing writes are retried.
    pub policy: RetryPolicy,
    /// Where the purge's guard counts dead letters.
    pub dead_letters: DeadLetterSource,
    /// `/health`'s status, set unhealthy when a task fails.
    pub status: Status,
    /// The counters.
    pub stats: ConsumerStats,
    /// Stops the service.
    pub shutdown: Shutdown,
    /// Records gathered into one write at most ([`ConsumerArgs::write_records`]).
    pub write_records: usize,
}

/// Runs a consumer service until shutdown or a fatal error: one task per kind with the
/// consumer and target the factories make for it. Prepares every target first (so a bad
/// database configuration fails at start-up). When a task fails, the status turns
/// unhealthy, the others are stopped, and the error is returned.
///
/// # Errors
///
/// When a target cannot be prepared, a factory fails, or a kind's consumer fails for good
/// (the broker unreachable beyond the reconnection budget, bad credentials).
pub async fn run<C, T>(
    parts: ServiceParts,
    mut make_consumer: impl FnMut(RecordKind) -> anyhow::Result<C>,
    mut make_target: impl FnMut(RecordKind) -> anyhow::Result<T>,
) -> anyhow::Result<()>
where
    C: Consumer + 'static,
    T: Target,
{
    let ServiceParts {
        name,
        policy,
        dead_letters,
        status,
        stats,
        shutdown,
        write_records,
    } = parts;
    let report_stats = stats.clone();
    status.set_details(move || report_stats.report());
    status.set_state("starting");
    let completion = Arc::new(Completion::default());
    let mut tasks = tokio::task::JoinSet::new();
    for kind in RecordKind::ALL {
        let mut target = make_target(kind)?;
        prepare(&mut target, kind, &policy, &status, &shutdown).await?;
        let consumer = make_consumer(kind)?;
        let handler = KindHandler {
            name: name.clone(),
            kind,
            target,
            metrics: KindMetrics::new(&stats, kind),
            stats: stats.clone(),
            completion: completion.clone(),
            dead_letters: dead_letters.clone(),
        };
        handler.set_task("waiting for messages");
        let gather = Gather {
            max_records: write_records.max(1),
            linger: GATHER_LINGER,
        };
        tasks.spawn(run_kind(
            consumer,
            handler,
            policy,
            gather,
            shutdown.clone(),
        ));
    }
    status.set_state("running");
    tracing::info!(consumer = %name, "Consuming the four kinds.");
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.context("a consumer task panicked").and_then(|r| r);
        if let Err(e) = result {
            tracing::error!(error = %format!("{e:#}"), "A consumer task failed; stopping.");
            status.set_unhealthy("failed", format!("{e:#}"));
            shutdown.trigger();
            failure.get_or_insert(e);
        }
    }
    match failure {
        Some(e) => Err(e),
        None => {
            status.set_state("stopped");
            Ok(())
        }
    }
}

/// Declares the consumer's queues (bound to the exchanges) on the broker, so that nothing
/// the extractor publishes from now on is lost, and returns the four RabbitMQ consumers.
///
/// # Errors
///
/// When the broker cannot be reached or the names are invalid.
pub async fn declare_amqp(
    url: &str,
    topology: &Topology,
    name: &str,
    args: &ConsumerArgs,
) -> anyhow::Result<BTreeMap<RecordKind, AmqpConsumer>> {
    let admin = Admin::connect(url, topology.clone())
        .await
        .context("connecting to RabbitMQ")?;
    admin
        .declare_exchanges(&RecordKind::ALL)
        .await
        .context("declaring the exchanges")?;
    admin
        .declare_consumer(name, &RecordKind::ALL)
        .await
        .context("declaring the queues")?;
    admin.close().await.ok();
    let mut out = BTreeMap::new();
    for kind in RecordKind::ALL {
        let consumer = AmqpConsumer::new(url, topology.clone(), args.consumer_config(name, kind))
            .context("configuring the consumer")?;
        out.insert(kind, consumer);
    }
    Ok(out)
}

/// A consumer service from flags to exit: serves `/health` and `/metrics` on
/// `service.health_addr()`, declares the queues, and [`run`]s until `shutdown`.
///
/// # Errors
///
/// As [`declare_amqp`] and [`run`], or when the health server cannot bind.
pub async fn serve<T: Target>(
    name: &str,
    service: &crate::config::ServiceArgs,
    amqp: &crate::config::AmqpArgs,
    args: &ConsumerArgs,
    shutdown: Shutdown,
    make_target: impl FnMut(RecordKind) -> anyhow::Result<T>,
) -> anyhow::Result<()> {
    let metrics = Metrics::new(name);
    let status = Status::new(name);
    let app = crate::health::router(status.clone(), metrics.clone());
    let listener = crate::health::bind(service.health_addr()).await?;
    let health = tokio::spawn(crate::health::serve_on(listener, app, shutdown.clone()));
    let url = amqp.amqp_connection.expose().to_owned();
    let topology = Topology::with_prefix(&amqp.exchange_prefix);
    let result = async {
        let mut consumers = declare_amqp(&url, &topology, name, args).await?;
        let parts = ServiceParts {
            name: name.to_owned(),
            policy: args.retry_policy(),
            dead_letters: DeadLetterSource::Broker {
                url: url.clone(),
                topology: topology.clone(),
            },
            status: status.clone(),
            stats: ConsumerStats::new(metrics.clone()),
            shutdown: shutdown.clone(),
            write_records: args.write_records_usize(),
        };
        run(
            parts,
            |kind| consumers.remove(&kind).context("one consumer per kind"),
            make_target,
        )
        .await
    }
    .await;
    if let Err(e) = &result {
        status.set_unhealthy("failed", format!("{e:#}"));
    }
    shutdown.trigger();
    health.await.context("health server task")??;
    result
}

/// Parses the flags of a service whose health port defaults to `port` rather than 8000.
#[must_use]
pub fn parse_args<A: clap::Parser>(port: u16) -> A {
    // Called once per process: the leaked default is a few bytes.
    let default: &'static str = Box::leak(port.to_string().into_boxed_str());
    let command = A::command().mut_arg("health_port", |a| a.default_value(default));
    let matches = command.get_matches();
    A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
