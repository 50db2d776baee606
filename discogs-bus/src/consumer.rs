//! [`AmqpConsumer`]: manual acknowledgement, prefetch, reconnection, idling.

use std::sync::Arc;
use std::time::Instant;

use discogs_model::RecordKind;
use futures_util::stream::{self, SelectAll};
use futures_util::{Stream, StreamExt};
use lapin::options::{BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection};
use tokio::time::sleep_until;

use crate::amqp::{close_quietly, connect, header_u64, headers, within_session_timeout};
use crate::consume::{Consumer, ConsumerState};
use crate::delivery::{AmqpSettle, OutstandingCounter, Payload, Settle};
use crate::topology::declare_consumer;
use crate::{BusError, Compression, ConsumerConfig, Delivery, Topology};

/// Consumes the queues of one consumer from RabbitMQ (see [`Consumer`]).
///
/// * One channel per kind, each with [`ConsumerConfig::prefetch`]; the consumer's queues
///   (and the exchanges, dead-letter exchanges and queues) are declared at every
///   connection.
/// * Deliveries carry the message body, decoded by [`Delivery::message`], and the quorum
///   queue's redelivery count.
/// * A lost connection (broker restart, network) is repaired with backoff
///   ([`ConsumerConfig::reconnect`]); deliveries of the old connection can no longer be
///   settled ([`BusError::StaleDelivery`]) and the broker delivers them again.
/// * With [`ConsumerConfig::idle_after`] (`CONSUMER_CANCEL_DELAY`), a consumer that
///   received nothing for that long and holds no delivery cancels its subscriptions and
///   disconnects, then looks at its queues every
///   [`ConsumerConfig::idle_check_interval`] and subscribes again when one has messages.
///
/// Nothing is done before the first [`Consumer::next`].
pub struct AmqpConsumer {
    url: String,
    topology: Topology,
    config: ConsumerConfig,
    state: State,
    outstanding: OutstandingCounter,
    last_activity: Instant,
    reconnects: u64,
}

enum State {
    Starting,
    Reconnecting { since: Instant, attempt: u32 },
    Consuming(Box<Session>),
    Idle { next_check: Instant },
    Closed,
}

/// What a delivery needs to know about the channel it came on.
struct Source {
    kind: RecordKind,
    queue: Arc<str>,
    channel: Channel,
    dead_letter_exchange: ShortString,
}

type Item = (Arc<Source>, Option<lapin::Result<lapin::message::Delivery>>);

/// The subscriptions' streams; `Sync` so that `&AmqpConsumer` may cross awaits.
type Subscription = std::pin::Pin<Box<dyn Stream<Item = Item> + Send + Sync>>;

struct Session {
    connection: Connection,
    streams: SelectAll<Subscription>,
    sources: Vec<(Arc<Source>, ShortString)>,
}

impl std::fmt::Debug for AmqpConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConsumer")
            .field("url", &crate::amqp::redact(&self.url))
            .field("topology", &self.topology)
            .field("config", &self.config)
            .field("state", &self.state())
            .field("outstanding", &self.outstanding.get())
            .finish_non_exhaustive()
    }
}

impl AmqpConsumer {
    /// A consumer of the broker at `url`. Does no I/O.
    ///
    /// # Errors
    ///
    /// [`BusError::Usage`] for an invalid name or configuration.
    pub fn new(
        url: impl Into<String>,
        topology: Topology,
        config: ConsumerConfig,
    ) -> Result<Self, BusError> {
        topology.validate(Some(&config.name))?;
        if config.kinds.is_empty() || config.prefetch == 0 {
            return Err(BusError::Usage(
                "a consumer needs at least one kind and a prefetch of at least 1".into(),
            ));
        }
        Ok(Self {
            url: url.into(),
            topology,
            config,
            state: State::Starting,
            outstanding: OutstandingCounter::default(),
            last_activity: Instant::now(),
            reconnects: 0,
        })
    }

    /// How many times the consumer connected again after losing its connection or a
    /// channel: for metrics.
    #[must_use]
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    async fn open_session(&self) -> Result<Session, BusError> {
        let name = format!("discogs-bus consumer {}", self.config.name);
        let connection = connect(&self.url, &name).await?;
        let mut streams = SelectAll::new();
        let mut sources = Vec::new();
        for &kind in &self.config.kinds {
            let channel = connection
                .create_channel()
                .await
                .map_err(BusError::amqp("opening a channel"))?;
            declare_consumer(&channel, &self.topology, &self.config.name, &[kind]).await?;
            channel
                .basic_qos(self.config.prefetch, BasicQosOptions::default())
                .await
                .map_err(BusError::amqp("setting the prefetch"))?;
            // Dead-lettering publishes on this channel and waits for the broker's confirm.
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(BusError::amqp("enabling publisher confirms"))?;
            let queue = self.topology.queue(&self.config.name, kind);
            let tag: ShortString = format!(
                "{}-{}-{}",
                self.config.name,
                kind.plural(),
                crate::unique_tag()
            )
            .into();
            let consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    tag.clone(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(BusError::amqp(format!("subscribing to {queue}")))?;
            let source = Arc::new(Source {
                kind,
                queue: queue.as_str().into(),
                channel,
                dead_letter_exchange: self
                    .topology
                    .dead_letter_exchange(&self.config.name, kind)
                    .into(),
            });
            let tail = source.clone();
            let head = source.clone();
            // Each item names its source; the end of a subscription is an item too, so that
            // one lost channel makes the whole consumer reconnect.
            let subscription: Subscription = Box::pin(
                consumer
                    .map(move |d| (head.clone(), Some(d)))
                    .chain(stream::once(async move { (tail, None) })),
            );
            streams.push(subscription);
            sources.push((source, tag));
        }
        Ok(Session {
            connection,
            streams,
            sources,
        })
    }

    fn wrap(&self, source: &Arc<Source>, d: lapin::message::Delivery) -> Delivery {
        let table = d.properties.headers().as_ref();
        let redeliveries = header_u64(table, headers::DELIVERY_COUNT)
            .map_or(u32::from(d.redelivered), |n| {
                u32::try_from(n).unwrap_or(u32::MAX)
            });
        Delivery::new(
            source.kind,
            source.queue.clone(),
            match d.properties.content_encoding() {
                Some(e) if e.as_str() == Compression::LZ4_ENCODING => Payload::Lz4(d.data),
                _ => Payload::Body(d.data),
            },
            redeliveries,
            self.topology.delivery_limit,
            Settle::Amqp(Box::new(AmqpSettle {
                acker: d.acker,
                channel: source.channel.clone(),
                dead_letter_exchange: source.dead_letter_exchange.clone(),
                properties: d.properties,
            })),
            &self.outstanding,
        )
    }

    /// Whether any of the consumer's queues has messages waiting (used while idle).
    async fn queues_have_messages(&self) -> Result<bool, BusError> {
        let admin = crate::Admin::connect(&self.url, self.topology.clone()).await?;
        let mut waiting = false;
        for &kind in &self.config.kinds {
            if admin.queue_depth(&self.config.name, kind).await? != Some(0) {
                // A missing queue counts as work: subscribing declares it.
                waiting = true;
                break;
            }
        }
        admin.close().await.unwrap_or(());
        Ok(waiting)
    }

    async fn close_session(session: Session) {
        if session.connection.status().connected() {
            for (source, tag) in &session.sources {
                let cancel = source
                    .channel
                    .basic_cancel(tag.clone(), lapin::options::BasicCancelOptions::default());
                // A broker that does not answer must not hold the consumer up.
                tokio::time::timeout(std::time::Duration::from_secs(5), cancel)
                    .await
                    .map_or(Ok(()), |r| r.map(drop))
                    .unwrap_or(());
            }
        }
        close_quietly(&session.connection, 200, "consumer closed").await;
    }
}

impl Consumer for AmqpConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            match &mut self.state {
                State::Closed => return Err(BusError::Closed),
                State::Starting | State::Reconnecting { .. } => {
                    let (since, attempt) = match self.state {
                        State::Reconnecting { since, attempt } => (since, attempt),
                        _ => (Instant::now(), 0),
                    };
                    let opening = self.open_session();
                    match within_session_timeout("opening the consumer's session", opening).await {
                        Ok(session) => {
                            if matches!(self.state, State::Reconnecting { .. }) {
                                self.reconnects += 1;
                            }
                            if attempt > 0 {
                                tracing::info!(consumer = %self.config.name, attempts = attempt + 1, "Consumer reconnected to RabbitMQ.");
                            }
                            self.state = State::Consuming(Box::new(session));
                            self.last_activity = Instant::now();
                        }
                        Err(e) if !e.is_retriable() => return Err(e),
                        Err(e) => {
                            if self.config.reconnect.exhausted(since.elapsed()) {
                                return Err(BusError::GaveUp {
                                    attempts: attempt + 1,
                                    elapsed: since.elapsed(),
                                    last: Box::new(e),
                                });
                            }
                            let delay = self.config.reconnect.delay(attempt);
                            tracing::warn!(consumer = %self.config.name, error = %e, retry_in = ?delay, "Consumer cannot reach RabbitMQ; retrying.");
                            self.state = State::Reconnecting {
                                since,
                                attempt: attempt + 1,
                            };
                            tokio::time::sleep(delay).await;
                        }
                    }
                }
                State::Consuming(session) => {
                    let item = match self.config.idle_after {
                        Some(idle) => {
                            let deadline = self.last_activity + idle;
                            tokio::select! {
                                item = session.streams.next() => Some(item),
                                () = sleep_until(deadline.into()) => None,
                            }
                        }
                        None => Some(session.streams.next().await),
                    };
                    match item {
                        Some(Some((source, Some(Ok(d))))) => {
                            self.last_activity = Instant::now();
                            return Ok(self.wrap(&source, d));
                        }
                        Some(Some((source, Some(Err(e))))) => {
                            tracing::warn!(consumer = %self.config.name, queue = %source.queue, error = %e, "Consumer lost its channel; reconnecting.");
                            self.reset_session(true).await;
                        }
                        Some(Some((source, None))) => {
                            tracing::warn!(consumer = %self.config.name, queue = %source.queue, "Subscription ended (queue deleted or consumer cancelled by the broker); reconnecting.");
                            self.reset_session(true).await;
                        }
                        Some(None) => self.reset_session(true).await,
                        None if self.outstanding.get() > 0 => {
                            // Someone still holds a delivery of this connection: not idle.
                            self.last_activity = Instant::now();
                        }
                        None => {
                            tracing::info!(consumer = %self.config.name, idle_after = ?self.config.idle_after, "Consumer idle: unsubscribing and disconnecting.");
                            self.reset_session(false).await;
                            self.state = State::Idle {
                                next_check: Instant::now() + self.config.idle_check_interval,
                            };
                        }
                    }
                }
                State::Idle { next_check } => {
                    sleep_until((*next_check).into()).await;
                    let next = Instant::now() + self.config.idle_check_interval;
                    match self.queues_have_messages().await {
                        Ok(true) => {
                            tracing::info!(consumer = %self.config.name, "Messages are waiting: subscribing again.");
                            self.state = State::Starting;
                        }
                        Ok(false) => self.state = State::Idle { next_check: next },
                        Err(e) => {
                            tracing::debug!(consumer = %self.config.name, error = %e, "Idle consumer could not look at its queues.");
                            self.state = State::Idle { next_check: next };
                        }
                    }
                }
            }
        }
    }

    fn state(&self) -> ConsumerState {
        match &self.state {
            State::Starting => ConsumerState::Starting,
            State::Reconnecting { attempt, .. } => {
                ConsumerState::Reconnecting { attempt: *attempt }
            }
            State::Consuming(_) => ConsumerState::Consuming,
            State::Idle { .. } => ConsumerState::Idle,
            State::Closed => ConsumerState::Closed,
        }
    }

    async fn close(mut self) -> Result<(), BusError> {
        if let State::Consuming(session) = std::mem::replace(&mut self.state, State::Closed) {
            Self::close_session(*session).await;
        }
        Ok(())
    }
}

impl AmqpConsumer {
    /// Drops the current session; with `reconnect`, the next step connects again.
    async fn reset_session(&mut self, reconnect: bool) {
        let old = std::mem::replace(
            &mut self.state,
            if reconnect {
                State::Reconnecting {
                    since: Instant::now(),
                    attempt: 0,
                }
            } else {
                State::Closed
            },
        );
        if let State::Consuming(session) = old {
            Self::close_session(*session).await;
        }
    }
}
