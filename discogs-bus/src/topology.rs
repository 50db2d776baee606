//! The RabbitMQ topology, declared idempotently by whoever starts first.
//!
//! ```text
//!   publisher ──► {prefix}-{kind}            fanout, durable (one per kind)
//!                   ├──► {prefix}-{consumer}-{kind}      quorum, durable, one per consumer and kind
//!                   │        x-delivery-limit = Topology::delivery_limit
//!                   │        x-dead-letter-exchange = {queue}.dlx
//!                   │        x-dead-letter-strategy = at-least-once, x-overflow = reject-publish
//!                   │            └──► {queue}.dlx   fanout, durable ──► {queue}.dlq   quorum, durable
//!                   └──► (the next consumer's queue)
//! ```
//!
//! Declaring what exists with the same arguments changes nothing, so the publisher and
//! every consumer declare what they need at each (re)connection. Declaring a name that
//! exists with *other* arguments fails with `PRECONDITION_FAILED` ([`BusError::Topology`],
//! not retriable).
//!
//! Dead-lettering is at-least-once (RabbitMQ ≥ 3.10): a message the broker dead-letters
//! after the delivery limit is kept in the source queue until the dead-letter queue has
//! confirmed it, instead of being dropped if that fails. Consumers that dead-letter a
//! message themselves ([`crate::Delivery::dead_letter`]) publish a copy with the reason to
//! the dead-letter exchange, wait for the broker's confirm, then acknowledge the original.

use discogs_model::RecordKind;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ExchangeKind};

use crate::amqp::connect;
use crate::{BusError, Topology};

fn name(s: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(s)
        .map_err(|_| BusError::Usage(format!("name {s:?} is longer than AMQP's 255 bytes")))
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// The arguments of a consumer queue (see the [module documentation](self)).
#[must_use]
pub fn queue_arguments(topology: &Topology, dead_letter_exchange: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long("quorum"));
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(i64::from(topology.delivery_limit)),
    );
    args.insert("x-dead-letter-exchange".into(), long(dead_letter_exchange));
    args.insert("x-dead-letter-strategy".into(), long("at-least-once"));
    args.insert("x-overflow".into(), long("reject-publish"));
    args
}

/// The arguments of a dead-letter queue.
#[must_use]
pub fn dead_letter_queue_arguments() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long("quorum"));
    args
}

async fn declare_fanout(channel: &Channel, exchange: &str) -> Result<(), BusError> {
    channel
        .exchange_declare(
            name(exchange)?,
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(BusError::topology(exchange))
}

/// Declares the fanout exchange of each of `kinds`.
///
/// # Errors
///
/// [`BusError::Topology`] when the broker refuses.
pub async fn declare_exchanges(
    channel: &Channel,
    topology: &Topology,
    kinds: &[RecordKind],
) -> Result<(), BusError> {
    topology.validate(None)?;
    for &kind in kinds {
        declare_fanout(channel, &topology.exchange(kind)).await?;
    }
    Ok(())
}

/// Declares, for each of `kinds`: the kind's exchange, the consumer's dead-letter exchange
/// and queue, the consumer's queue, and the bindings.
///
/// # Errors
///
/// [`BusError::Topology`] when the broker refuses (e.g. a queue exists with other
/// arguments), [`BusError::Usage`] for an invalid consumer name.
pub async fn declare_consumer(
    channel: &Channel,
    topology: &Topology,
    consumer: &str,
    kinds: &[RecordKind],
) -> Result<(), BusError> {
    topology.validate(Some(consumer))?;
    for &kind in kinds {
        let exchange = topology.exchange(kind);
        let queue = topology.queue(consumer, kind);
        let dlx = topology.dead_letter_exchange(consumer, kind);
        let dlq = topology.dead_letter_queue(consumer, kind);
        declare_fanout(channel, &exchange).await?;
        declare_fanout(channel, &dlx).await?;
        channel
            .queue_declare(name(&dlq)?, durable_queue(), dead_letter_queue_arguments())
            .await
            .map_err(BusError::topology(&dlq))?;
        channel
            .queue_bind(
                name(&dlq)?,
                name(&dlx)?,
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(BusError::topology(&dlq))?;
        channel
            .queue_declare(
                name(&queue)?,
                durable_queue(),
                queue_arguments(topology, &dlx),
            )
            .await
            .map_err(BusError::topology(&queue))?;
        channel
            .queue_bind(
                name(&queue)?,
                name(&exchange)?,
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(BusError::topology(&queue))?;
    }
    Ok(())
}

/// What the broker says about a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages ready for delivery (not counting delivered, unacknowledged ones).
    pub messages: u32,
    /// Subscribed consumers.
    pub consumers: u32,
}

/// A connection for managing the topology: declaring, inspecting, deleting.
///
/// ```no_run
/// # async fn example() -> Result<(), discogs_bus::BusError> {
/// use discogs_bus::{Admin, Topology};
/// use discogs_model::RecordKind;
///
/// let admin = Admin::connect("amqp://127.0.0.1:5672/%2f", Topology::default()).await?;
/// admin.declare_consumer("graphinator", &RecordKind::ALL).await?;
/// let waiting = admin.queue_depth("graphinator", RecordKind::Release).await?;
/// println!("{waiting:?} messages wait for the graphinator");
/// admin.close().await
/// # }
/// ```
#[derive(Debug)]
pub struct Admin {
    connection: Connection,
    topology: Topology,
}

impl Admin {
    /// Connects to the broker at `url`.
    ///
    /// # Errors
    ///
    /// [`BusError::Connect`] when the broker cannot be reached.
    pub async fn connect(url: &str, topology: Topology) -> Result<Self, BusError> {
        topology.validate(None)?;
        let connection = connect(url, "discogs-bus admin").await?;
        Ok(Self {
            connection,
            topology,
        })
    }

    /// The names this admin uses.
    #[must_use]
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    async fn channel(&self) -> Result<Channel, BusError> {
        self.connection
            .create_channel()
            .await
            .map_err(BusError::amqp("opening a channel"))
    }

    /// Declares the exchanges of `kinds` ([`declare_exchanges`]).
    ///
    /// # Errors
    ///
    /// As [`declare_exchanges`].
    pub async fn declare_exchanges(&self, kinds: &[RecordKind]) -> Result<(), BusError> {
        let channel = self.channel().await?;
        declare_exchanges(&channel, &self.topology, kinds).await?;
        done(channel).await;
        Ok(())
    }

    /// Declares a consumer's queues ([`declare_consumer`]).
    ///
    /// # Errors
    ///
    /// As [`declare_consumer`].
    pub async fn declare_consumer(
        &self,
        consumer: &str,
        kinds: &[RecordKind],
    ) -> Result<(), BusError> {
        let channel = self.channel().await?;
        declare_consumer(&channel, &self.topology, consumer, kinds).await?;
        done(channel).await;
        Ok(())
    }

    /// Messages ready in a queue (not counting those delivered and not yet acknowledged),
    /// or `None` when the queue does not exist.
    ///
    /// # Errors
    ///
    /// When the broker cannot be asked.
    pub async fn queue_depth(
        &self,
        consumer: &str,
        kind: RecordKind,
    ) -> Result<Option<u32>, BusError> {
        self.named_queue_depth(&self.topology.queue(consumer, kind))
            .await
    }

    /// Messages in a consumer's dead-letter queue, or `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// When the broker cannot be asked.
    pub async fn dead_letter_depth(
        &self,
        consumer: &str,
        kind: RecordKind,
    ) -> Result<Option<u32>, BusError> {
        self.named_queue_depth(&self.topology.dead_letter_queue(consumer, kind))
            .await
    }

    /// Ready messages of the queue named `queue`, `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// When the broker cannot be asked.
    pub async fn named_queue_depth(&self, queue: &str) -> Result<Option<u32>, BusError> {
        Ok(self.queue_stats(queue).await?.map(|s| s.messages))
    }

    /// Ready messages and subscribed consumers of the queue named `queue`, `None` when it
    /// does not exist.
    ///
    /// # Errors
    ///
    /// When the broker cannot be asked.
    pub async fn queue_stats(&self, queue: &str) -> Result<Option<QueueStats>, BusError> {
        // A passive declare of a missing queue closes the channel: use one per question.
        let channel = self.channel().await?;
        let options = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        match channel
            .queue_declare(name(queue)?, options, FieldTable::default())
            .await
        {
            Ok(q) => {
                done(channel).await;
                Ok(Some(QueueStats {
                    messages: q.message_count(),
                    consumers: q.consumer_count(),
                }))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(BusError::amqp(format!("looking at queue {queue}"))(e)),
        }
    }

    /// Deletes a consumer's queues, dead-letter queues and dead-letter exchanges for
    /// `kinds`, whatever they hold. Returns the messages that were in them.
    ///
    /// # Errors
    ///
    /// When the broker refuses.
    pub async fn delete_consumer(
        &self,
        consumer: &str,
        kinds: &[RecordKind],
    ) -> Result<u64, BusError> {
        let channel = self.channel().await?;
        let mut dropped = 0;
        for &kind in kinds {
            for queue in [
                self.topology.queue(consumer, kind),
                self.topology.dead_letter_queue(consumer, kind),
            ] {
                dropped += u64::from(
                    channel
                        .queue_delete(name(&queue)?, QueueDeleteOptions::default())
                        .await
                        .map_err(BusError::topology(&queue))?,
                );
            }
            let dlx = self.topology.dead_letter_exchange(consumer, kind);
            channel
                .exchange_delete(name(&dlx)?, ExchangeDeleteOptions::default())
                .await
                .map_err(BusError::topology(&dlx))?;
        }
        done(channel).await;
        Ok(dropped)
    }

    /// Deletes the exchanges of `kinds`.
    ///
    /// # Errors
    ///
    /// When the broker refuses.
    pub async fn delete_exchanges(&self, kinds: &[RecordKind]) -> Result<(), BusError> {
        let channel = self.channel().await?;
        for &kind in kinds {
            let exchange = self.topology.exchange(kind);
            channel
                .exchange_delete(name(&exchange)?, ExchangeDeleteOptions::default())
                .await
                .map_err(BusError::topology(&exchange))?;
        }
        done(channel).await;
        Ok(())
    }

    /// Closes the connection.
    ///
    /// # Errors
    ///
    /// When the broker cannot be told (the connection is gone either way).
    pub async fn close(self) -> Result<(), BusError> {
        match self.connection.close(200, "done".into()).await {
            Err(e) if !e.is_io_error() => {
                // Already closing or closed: nothing left to do.
                tracing::debug!(error = %e, "Admin connection was already closing.");
                Ok(())
            }
            other => other.map_err(BusError::amqp("closing the admin connection")),
        }
    }
}

/// Closes a channel that did its job, so that it is not still closing when the
/// connection closes.
async fn done(channel: Channel) {
    channel.close(200, "done".into()).await.unwrap_or(());
}

fn is_not_found(e: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}
