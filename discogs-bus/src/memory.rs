//! [`MemoryBus`]: the same [`Publisher`] and [`Consumer`] in one process, bounded.
//!
//! For the one-process pipeline (`discogsography`) and for tests of the code above the bus.
//! It behaves like the RabbitMQ topology: a message of a kind goes to the queue of every
//! consumer of that kind (fanout), publishing when no consumer has a queue for the kind is
//! an error ([`BusError::Unroutable`]), each queue holds at most `capacity` ready messages
//! (a publisher waits for room: backpressure), consumers get at most `prefetch`
//! unsettled deliveries per queue, a requeued message comes back with its redelivery
//! count raised, and one given back more than `delivery_limit` times goes to the queue's
//! dead-letter list, as does one a consumer dead-letters with a reason.
//!
//! Differences: messages are shared, not encoded ([`PublisherConfig::max_bytes`] and the
//! confirm settings do not apply: a batch is "confirmed" once it is in every queue);
//! nothing survives the process; consumers never idle or reconnect.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use discogs_model::wire::{
    Batch, EncodedRecord, ExtractionComplete, FileComplete, Message, Removed,
};
use discogs_model::{RecordKind, SinkRecord};
use tokio::sync::Notify;

use crate::consume::{Consumer, ConsumerState};
use crate::delivery::{OutstandingCounter, Payload, Settle};
use crate::publish::{complete_message, FileProgress, FileRef, Publisher, Resume};
use crate::{BusError, ConsumerConfig, Delivery, PublisherConfig};

/// The in-process bus. Cheap to clone; every clone is the same bus.
#[derive(Clone)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
    capacity: usize,
    delivery_limit: u32,
}

#[derive(Default)]
struct State {
    /// Queues by kind, then by consumer name.
    queues: BTreeMap<RecordKind, BTreeMap<String, Queue>>,
    next_tag: u64,
    closed: bool,
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<Entry>,
    unacked: HashMap<u64, Entry>,
    dead: Vec<DeadLetter>,
}

struct Entry {
    message: Arc<Message<'static>>,
    redeliveries: u32,
}

/// A message in a dead-letter list of the [`MemoryBus`].
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The message.
    pub message: Arc<Message<'static>>,
    /// Why: the consumer's reason, or `delivery limit exceeded`.
    pub reason: String,
    /// How many times it had been delivered.
    pub deliveries: u32,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("MemoryBus")
            .field("capacity", &self.shared.capacity)
            .field("delivery_limit", &self.shared.delivery_limit)
            .field(
                "queues",
                &state
                    .queues
                    .iter()
                    .flat_map(|(k, qs)| qs.iter().map(move |(c, q)| (*k, c, q.ready.len())))
                    .collect::<Vec<_>>(),
            )
            .field("closed", &state.closed)
            .finish()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn queue<'s>(state: &'s mut State, consumer: &str, kind: RecordKind) -> Option<&'s mut Queue> {
        state.queues.get_mut(&kind)?.get_mut(consumer)
    }
}

impl MemoryBus {
    /// A bus whose queues hold at most `capacity` ready messages each, and dead-letter a
    /// message given back more than `delivery_limit` times.
    #[must_use]
    pub fn new(capacity: usize, delivery_limit: u32) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Notify::new(),
                capacity: capacity.max(1),
                delivery_limit,
            }),
        }
    }

    /// Creates the queues of `consumer` for `kinds` (idempotent). Do it before publishing,
    /// as with RabbitMQ.
    pub fn declare_consumer(&self, consumer: &str, kinds: &[RecordKind]) {
        let mut state = self.shared.lock();
        for &kind in kinds {
            state
                .queues
                .entry(kind)
                .or_default()
                .entry(consumer.to_owned())
                .or_default();
        }
    }

    /// A publisher (no I/O; the configuration's batch count applies).
    ///
    /// # Errors
    ///
    /// [`BusError::Usage`] for an invalid configuration.
    pub fn publisher(&self, config: PublisherConfig) -> Result<MemoryPublisher, BusError> {
        config.validate()?;
        for consumer in &config.consumers {
            self.declare_consumer(consumer, &RecordKind::ALL);
        }
        Ok(MemoryPublisher {
            bus: self.clone(),
            config,
            open: None,
            records: Vec::new(),
            pending: None,
        })
    }

    /// A consumer; declares its queues.
    ///
    /// # Errors
    ///
    /// [`BusError::Usage`] for an invalid configuration.
    pub fn consumer(&self, config: ConsumerConfig) -> Result<MemoryConsumer, BusError> {
        if config.kinds.is_empty() || config.prefetch == 0 {
            return Err(BusError::Usage(
                "a consumer needs at least one kind and a prefetch of at least 1".into(),
            ));
        }
        self.declare_consumer(&config.name, &config.kinds);
        Ok(MemoryConsumer {
            bus: self.clone(),
            config,
            next_kind: 0,
            outstanding: OutstandingCounter::default(),
            closed: false,
        })
    }

    /// Ready messages in a queue, `None` when it does not exist.
    #[must_use]
    pub fn queue_depth(&self, consumer: &str, kind: RecordKind) -> Option<usize> {
        let mut state = self.shared.lock();
        Shared::queue(&mut state, consumer, kind).map(|q| q.ready.len())
    }

    /// The dead-letter list of a queue.
    #[must_use]
    pub fn dead_letters(&self, consumer: &str, kind: RecordKind) -> Vec<DeadLetter> {
        let mut state = self.shared.lock();
        Shared::queue(&mut state, consumer, kind)
            .map(|q| q.dead.clone())
            .unwrap_or_default()
    }

    /// Closes the bus: waiting publishers and consumers get [`BusError::Closed`].
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_waiters();
    }

    /// Puts `message` in every queue of `kind`, waiting for room.
    async fn route(
        &self,
        kind: RecordKind,
        message: Arc<Message<'static>>,
    ) -> Result<(), BusError> {
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.shared.lock();
                if state.closed {
                    return Err(BusError::Closed);
                }
                let queues = state.queues.entry(kind).or_default();
                if queues.is_empty() {
                    return Err(BusError::Unroutable {
                        exchange: format!("memory-{}", kind.plural()),
                        what: format!("{} of {}", message.message_type(), message.version()),
                        reply: "NO_ROUTE".into(),
                    });
                }
                if queues
                    .values()
                    .all(|q| q.ready.len() < self.shared.capacity)
                {
                    for q in queues.values_mut() {
                        q.ready.push_back(Entry {
                            message: message.clone(),
                            redeliveries: 0,
                        });
                    }
                    drop(state);
                    self.shared.changed.notify_waiters();
                    return Ok(());
                }
            }
            notified.await;
        }
    }
}

/// Settles a delivery of the [`MemoryBus`].
pub(crate) struct MemorySettle {
    bus: MemoryBus,
    consumer: String,
    kind: RecordKind,
    tag: u64,
}

impl MemorySettle {
    fn take(&self) -> Result<(MutexGuard<'_, State>, Entry), BusError> {
        let mut state = self.bus.shared.lock();
        let entry = Shared::queue(&mut state, &self.consumer, self.kind)
            .and_then(|q| q.unacked.remove(&self.tag))
            .ok_or_else(|| BusError::Usage("delivery is not pending on the bus".into()))?;
        Ok((state, entry))
    }

    fn finish(&self, state: MutexGuard<'_, State>) -> Result<(), BusError> {
        drop(state);
        self.bus.shared.changed.notify_waiters();
        Ok(())
    }

    pub(crate) fn ack(self) -> Result<(), BusError> {
        let (state, _) = self.take()?;
        self.finish(state)
    }

    pub(crate) fn requeue(self) -> Result<(), BusError> {
        let (mut state, mut entry) = self.take()?;
        entry.redeliveries += 1;
        let limit = self.bus.shared.delivery_limit;
        if let Some(q) = Shared::queue(&mut state, &self.consumer, self.kind) {
            if entry.redeliveries > limit {
                q.dead.push(DeadLetter {
                    message: entry.message,
                    reason: "delivery limit exceeded".into(),
                    deliveries: entry.redeliveries,
                });
            } else {
                q.ready.push_front(entry);
            }
        }
        self.finish(state)
    }

    pub(crate) fn dead_letter(self, reason: &str, deliveries: u32) -> Result<(), BusError> {
        let (mut state, entry) = self.take()?;
        if let Some(q) = Shared::queue(&mut state, &self.consumer, self.kind) {
            q.dead.push(DeadLetter {
                message: entry.message,
                reason: reason.to_owned(),
                deliveries,
            });
        }
        self.finish(state)
    }
}

/// Publishes to the [`MemoryBus`] (see [`Publisher`]).
pub struct MemoryPublisher {
    bus: MemoryBus,
    config: PublisherConfig,
    open: Option<FileProgress>,
    records: Vec<SinkRecord<'static>>,
    /// A closed batch on its way into the queues.
    pending: Option<Arc<Message<'static>>>,
}

impl std::fmt::Debug for MemoryPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryPublisher")
            .field("progress", &self.open)
            .field("batched", &self.records.len())
            .finish_non_exhaustive()
    }
}

impl MemoryPublisher {
    fn open(&mut self) -> Result<&mut FileProgress, BusError> {
        self.open
            .as_mut()
            .ok_or_else(|| BusError::Usage("no file is open: call begin_file first".into()))
    }

    /// Routes the pending batch and the current one.
    async fn drain(&mut self) -> Result<(), BusError> {
        while self.pending.is_some() || !self.records.is_empty() {
            self.send_batch().await?;
        }
        Ok(())
    }

    /// Routes the current batch. Cancel-safe: the batch waits in `pending` until it is in
    /// every queue.
    async fn send_batch(&mut self) -> Result<(), BusError> {
        if self.pending.is_none() && !self.records.is_empty() {
            let progress = self
                .open
                .as_ref()
                .ok_or_else(|| BusError::Usage("no file is open: call begin_file first".into()))?;
            let batch = Batch {
                kind: progress.file.kind,
                version: progress.file.version.clone().into(),
                file: progress.file.file.clone().into(),
                seq: progress.batches,
                records: std::mem::take(&mut self.records),
            };
            self.pending = Some(Arc::new(Message::Batch(batch)));
        }
        let Some(message) = self.pending.clone() else {
            return Ok(());
        };
        let kind = message.kind().unwrap_or(RecordKind::Artist);
        self.bus.route(kind, message.clone()).await?;
        self.pending = None;
        let progress = self.open()?;
        progress.batches += 1;
        progress.confirmed_batches = progress.batches;
        progress.confirmed_records += message.record_count() as u64;
        Ok(())
    }
}

impl Publisher for MemoryPublisher {
    fn begin_file(&mut self, file: FileRef, resume: Resume) -> Result<(), BusError> {
        if let Some(open) = &self.open {
            return Err(BusError::Usage(format!(
                "file {} is still open: end_file before beginning {}",
                open.file.file, file.file
            )));
        }
        self.open = Some(FileProgress::starting(file, resume));
        Ok(())
    }

    async fn publish(&mut self, record: &SinkRecord<'_>) -> Result<(), BusError> {
        let kind = self.open()?.file.kind;
        if record.record.kind() != kind {
            return Err(discogs_model::wire::WireError::KindMismatch {
                batch: kind,
                record: record.record.kind(),
                id: record.record.id(),
            }
            .into());
        }
        if self.records.len() >= self.config.max_records || self.pending.is_some() {
            // Not accepted yet: on error the caller publishes the same record again.
            self.send_batch().await?;
        }
        self.records.push(SinkRecord {
            record: record.record.clone().into_owned(),
            hash: record.hash,
        });
        self.open()?.accepted_records += 1;
        Ok(())
    }

    async fn publish_encoded(&mut self, record: &EncodedRecord) -> Result<(), BusError> {
        // The in-process bus carries typed records: decode what was encoded.
        let decoded = record.decode()?;
        self.publish(&decoded).await
    }

    async fn end_file(&mut self) -> Result<FileComplete<'static>, BusError> {
        self.drain().await?;
        let complete = complete_message(self.open()?);
        let message = Arc::new(Message::FileComplete(complete.clone()));
        self.bus.route(complete.kind, message).await?;
        self.open = None;
        Ok(complete)
    }

    async fn removed(&mut self, ids: &[u64]) -> Result<(), BusError> {
        self.drain().await?;
        let file = self.open()?.file.clone();
        for chunk in Removed::chunks(file.kind, &file.version, &file.file, ids) {
            let message = Arc::new(Message::Removed(chunk.into_owned()));
            self.bus.route(file.kind, message).await?;
        }
        self.open()?.removed += ids.len() as u64;
        Ok(())
    }

    async fn extraction_complete(
        &mut self,
        message: &ExtractionComplete<'_>,
    ) -> Result<(), BusError> {
        self.drain().await?;
        let message = Arc::new(Message::ExtractionComplete(message.clone().into_owned()));
        for kind in RecordKind::ALL {
            self.bus.route(kind, message.clone()).await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), BusError> {
        self.drain().await
    }

    fn progress(&self) -> Option<&FileProgress> {
        self.open.as_ref()
    }
}

/// Consumes from the [`MemoryBus`] (see [`Consumer`]).
pub struct MemoryConsumer {
    bus: MemoryBus,
    config: ConsumerConfig,
    next_kind: usize,
    outstanding: OutstandingCounter,
    closed: bool,
}

impl std::fmt::Debug for MemoryConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryConsumer")
            .field("config", &self.config)
            .field("outstanding", &self.outstanding.get())
            .finish_non_exhaustive()
    }
}

impl MemoryConsumer {
    /// Takes a ready message from one of the consumer's queues, round-robin over kinds.
    fn take(&mut self) -> Result<Option<Delivery>, BusError> {
        let shared = &self.bus.shared;
        let mut state = shared.lock();
        if state.closed || self.closed {
            return Err(BusError::Closed);
        }
        let kinds = &self.config.kinds;
        for i in 0..kinds.len() {
            let kind = kinds[(self.next_kind + i) % kinds.len()];
            let tag = state.next_tag;
            let Some(q) = Shared::queue(&mut state, &self.config.name, kind) else {
                continue;
            };
            if q.unacked.len() >= usize::from(self.config.prefetch) {
                continue;
            }
            let Some(entry) = q.ready.pop_front() else {
                continue;
            };
            let message = entry.message.clone();
            let redeliveries = entry.redeliveries;
            q.unacked.insert(tag, entry);
            state.next_tag += 1;
            self.next_kind = (self.next_kind + i + 1) % kinds.len();
            drop(state);
            shared.changed.notify_waiters();
            let queue: Arc<str> = format!("memory-{}-{}", self.config.name, kind.plural()).into();
            return Ok(Some(Delivery::new(
                kind,
                queue,
                Payload::Shared(message),
                redeliveries,
                shared.delivery_limit,
                Settle::Memory(MemorySettle {
                    bus: self.bus.clone(),
                    consumer: self.config.name.clone(),
                    kind,
                    tag,
                }),
                &self.outstanding,
            )));
        }
        Ok(None)
    }
}

impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        let shared = self.bus.shared.clone();
        loop {
            let notified = shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(delivery) = self.take()? {
                return Ok(delivery);
            }
            notified.await;
        }
    }

    fn state(&self) -> ConsumerState {
        if self.closed || self.bus.shared.lock().closed {
            ConsumerState::Closed
        } else {
            ConsumerState::Consuming
        }
    }

    async fn close(mut self) -> Result<(), BusError> {
        self.closed = true;
        Ok(())
    }
}
