//! One message received by a consumer, and how it is settled.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use discogs_model::wire::{Batch, Message, MessageType};
use discogs_model::{RecordKind, SinkRecord};
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};

use crate::amqp::{headers, long};
use crate::memory::MemorySettle;
use crate::BusError;

/// A message a consumer received: a batch of records or a control message, with what is
/// needed to settle it.
///
/// [`message`](Self::message) decodes it once into records that own their text, and keeps
/// the result; [`decode`](Self::decode) decodes it into records that borrow their text from
/// the body, about twice as fast, for consumers that do not need to keep the records;
/// [`json`](Self::json) gives the JSON itself, and [`declared_type`](Self::declared_type)
/// and [`declared_records`](Self::declared_records) what the message holds, from its
/// headers, for consumers that pass records on without decoding them.
///
/// Settle every delivery exactly once, after the work it carries is durable:
///
/// * [`ack`](Self::ack): done, remove it from the queue;
/// * [`requeue`](Self::requeue): put it back for a later attempt (this counts against the
///   queue's delivery limit, so for an outage prefer holding it and retrying in process,
///   as [`crate::process`] does);
/// * [`dead_letter`](Self::dead_letter): it can never succeed; move it to the dead-letter
///   queue with the reason.
///
/// A delivery dropped without being settled is put back in the queue (like a requeue).
pub struct Delivery {
    kind: RecordKind,
    queue: Arc<str>,
    payload: Payload,
    /// The JSON of an LZ4 body, decompressed on first use (on the in-process bus, the
    /// shared message encoded, on the first [`Delivery::json`]).
    inflated: OnceLock<Result<Vec<u8>, String>>,
    /// The body decoded into owned records, on the first [`Delivery::message`].
    decoded: OnceLock<Result<Message<'static>, String>>,
    /// What the publisher's headers say the message is, read when it arrived.
    declared: Declared,
    redelivery_count: u32,
    delivery_limit: u32,
    settle: Option<Settle>,
    _outstanding: Outstanding,
}

/// What a delivery carries.
pub(crate) enum Payload {
    /// A message body from RabbitMQ, decoded on demand.
    Body(Vec<u8>),
    /// An LZ4-compressed body from RabbitMQ ([`crate::Compression::Lz4`]), decompressed
    /// and decoded on demand.
    Lz4(Vec<u8>),
    /// A message shared by the in-process bus.
    Shared(Arc<Message<'static>>),
}

/// The `discogs-type` and `discogs-records` headers of a message from RabbitMQ.
#[derive(Debug, Clone, Copy, Default)]
struct Declared {
    message_type: Option<MessageType>,
    records: Option<u64>,
}

impl Declared {
    fn of(settle: &Settle) -> Self {
        let Settle::Amqp(amqp) = settle else {
            return Self::default();
        };
        let table = amqp.properties.headers().as_ref();
        Self {
            message_type: crate::amqp::header_str(table, headers::TYPE)
                .and_then(|t| t.parse().ok()),
            records: crate::amqp::header_u64(table, headers::RECORDS),
        }
    }
}

pub(crate) enum Settle {
    Amqp(Box<AmqpSettle>),
    Memory(MemorySettle),
}

pub(crate) struct AmqpSettle {
    pub(crate) acker: lapin::Acker,
    pub(crate) channel: Channel,
    pub(crate) dead_letter_exchange: ShortString,
    pub(crate) properties: BasicProperties,
}

/// The JSON of a message body as found in a queue (a dead-letter queue read with another
/// client, say): the body itself, or its decompression when `content_encoding` is
/// [`crate::Compression::LZ4_ENCODING`].
///
/// # Errors
///
/// [`BusError::Decode`] (naming no queue) when an LZ4 body does not decompress.
pub fn body_json<'a>(
    content_encoding: Option<&str>,
    body: &'a [u8],
) -> Result<Cow<'a, [u8]>, BusError> {
    if content_encoding == Some(crate::Compression::LZ4_ENCODING) {
        inflate(body)
            .map(Cow::Owned)
            .map_err(|reason| BusError::Decode {
                queue: String::new(),
                reason,
            })
    } else {
        Ok(Cow::Borrowed(body))
    }
}

fn inflate(body: &[u8]) -> Result<Vec<u8>, String> {
    lz4_flex::block::decompress_size_prepended(body)
        .map_err(|e| format!("the LZ4 body does not decompress: {e}"))
}

/// Counts the deliveries handed out and not yet dropped or settled, so that a consumer
/// does not go idle (and close its channels) under a delivery someone still holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutstandingCounter(Arc<AtomicUsize>);

impl OutstandingCounter {
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    fn track(&self) -> Outstanding {
        self.0.fetch_add(1, Ordering::AcqRel);
        Outstanding(Some(self.0.clone()))
    }
}

struct Outstanding(Option<Arc<AtomicUsize>>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        if let Some(n) = self.0.take() {
            n.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Delivery");
        d.field("queue", &self.queue)
            .field("kind", &self.kind)
            .field("redelivery_count", &self.redelivery_count);
        match &self.payload {
            Payload::Body(body) => d.field("body_bytes", &body.len()),
            Payload::Lz4(body) => d.field("lz4_body_bytes", &body.len()),
            Payload::Shared(m) => d
                .field("type", &m.message_type())
                .field("records", &m.record_count()),
        };
        d.finish_non_exhaustive()
    }
}

impl Delivery {
    pub(crate) fn new(
        kind: RecordKind,
        queue: Arc<str>,
        payload: Payload,
        redelivery_count: u32,
        delivery_limit: u32,
        settle: Settle,
        outstanding: &OutstandingCounter,
    ) -> Self {
        Self {
            kind,
            queue,
            payload,
            inflated: OnceLock::new(),
            decoded: OnceLock::new(),
            declared: Declared::of(&settle),
            redelivery_count,
            delivery_limit,
            settle: Some(settle),
            _outstanding: outstanding.track(),
        }
    }

    /// The kind of the queue it came from.
    #[must_use]
    pub fn kind(&self) -> RecordKind {
        self.kind
    }

    /// The queue it came from.
    #[must_use]
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The message, decoded on the first call (records owning their text) and kept.
    ///
    /// # Errors
    ///
    /// [`BusError::Decode`] when the body is not a message this build reads: such a
    /// delivery can only be dead-lettered.
    pub fn message(&self) -> Result<&Message<'static>, BusError> {
        let decoded = match &self.payload {
            Payload::Shared(m) => return Ok(m),
            Payload::Body(_) | Payload::Lz4(_) => self.decoded.get_or_init(|| {
                Message::from_json(self.body_json()?)
                    .map(Message::into_owned)
                    .map_err(|e| e.to_string())
            }),
        };
        decoded.as_ref().map_err(|reason| BusError::Decode {
            queue: self.queue.to_string(),
            reason: reason.clone(),
        })
    }

    /// The message decoded again, its text borrowed from the body where it has no
    /// escapes: about twice as fast as [`message`](Self::message) (fewer allocations), for
    /// a consumer that is done with the records before it settles the delivery. Each call
    /// decodes; on the in-process bus it is the shared message itself.
    ///
    /// # Errors
    ///
    /// As [`message`](Self::message).
    pub fn decode(&self) -> Result<Cow<'_, Message<'_>>, BusError> {
        match &self.payload {
            Payload::Shared(m) => Ok(Cow::Borrowed(m.as_ref())),
            Payload::Body(_) | Payload::Lz4(_) => {
                if let Some(Ok(m)) = self.decoded.get() {
                    return Ok(Cow::Borrowed(m));
                }
                let failed = |reason: String| BusError::Decode {
                    queue: self.queue.to_string(),
                    reason,
                };
                Message::from_json(self.body_json().map_err(failed)?)
                    .map(Cow::Owned)
                    .map_err(|e| failed(e.to_string()))
            }
        }
    }

    /// The message's JSON, as [`Message::to_json`] writes it: the body from RabbitMQ, or
    /// its LZ4 decompression, made once and kept; on the in-process bus the shared
    /// message encoded (once). For a consumer that passes records on as JSON (a store of
    /// raw records, a relay) and need not decode them; [`declared_type`](Self::declared_type)
    /// and [`declared_records`](Self::declared_records) say what it holds.
    ///
    /// # Errors
    ///
    /// [`BusError::Decode`] when an LZ4 body does not decompress (or, on the in-process
    /// bus, the message does not encode).
    pub fn json(&self) -> Result<&[u8], BusError> {
        self.body_json().map_err(|reason| BusError::Decode {
            queue: self.queue.to_string(),
            reason,
        })
    }

    fn body_json(&self) -> Result<&[u8], String> {
        match &self.payload {
            Payload::Body(body) => Ok(body),
            Payload::Lz4(body) => self
                .inflated
                .get_or_init(|| inflate(body))
                .as_deref()
                .map_err(Clone::clone),
            Payload::Shared(m) => self
                .inflated
                .get_or_init(|| m.to_json().map_err(|e| e.to_string()))
                .as_deref()
                .map_err(Clone::clone),
        }
    }

    /// The message's type as its publisher declared it in the `discogs-type` header,
    /// known without decoding the body; `None` when the header is missing or names no
    /// type this build knows. On the in-process bus, the shared message's type.
    #[must_use]
    pub fn declared_type(&self) -> Option<MessageType> {
        match &self.payload {
            Payload::Shared(m) => Some(m.message_type()),
            Payload::Body(_) | Payload::Lz4(_) => self.declared.message_type,
        }
    }

    /// The count its publisher declared in the `discogs-records` header, known without
    /// decoding the body: a batch's records, a `removed` message's ids, the records of the
    /// whole file for `file_complete` and of the whole dump for `extraction_complete`;
    /// `None` when the header is missing. On the in-process bus, the same count from the
    /// shared message.
    #[must_use]
    pub fn declared_records(&self) -> Option<u64> {
        match &self.payload {
            Payload::Shared(m) => crate::amqp::MessageInfo::of(m).records,
            Payload::Body(_) | Payload::Lz4(_) => self.declared.records,
        }
    }

    /// The batch, when the message is one.
    #[must_use]
    pub fn batch(&self) -> Option<&Batch<'static>> {
        match self.message() {
            Ok(Message::Batch(b)) => Some(b),
            _ => None,
        }
    }

    /// The records carried: a batch's, or none for control and undecodable messages.
    #[must_use]
    pub fn records(&self) -> &[SinkRecord<'static>] {
        self.batch().map_or(&[], |b| b.records.as_slice())
    }

    /// The message body as received from RabbitMQ: JSON, or LZ4-compressed JSON when its
    /// `content_encoding` is [`crate::Compression::LZ4_ENCODING`]; `None` on the in-process
    /// bus.
    #[must_use]
    pub fn body(&self) -> Option<&[u8]> {
        match &self.payload {
            Payload::Body(body) | Payload::Lz4(body) => Some(body),
            Payload::Shared(_) => None,
        }
    }

    /// How many times this message was given back before this delivery (0 on the first):
    /// the quorum queue's `x-delivery-count`.
    #[must_use]
    pub fn redelivery_count(&self) -> u32 {
        self.redelivery_count
    }

    /// Whether this message was delivered before.
    #[must_use]
    pub fn is_redelivered(&self) -> bool {
        self.redelivery_count > 0
    }

    /// Whether giving this delivery back once more makes the broker dead-letter it (the
    /// queue's delivery limit is reached): the last chance to dead-letter it with a reason.
    #[must_use]
    pub fn is_last_attempt(&self) -> bool {
        self.redelivery_count >= self.delivery_limit
    }

    fn take_settle(&mut self) -> Result<Settle, BusError> {
        self.settle
            .take()
            .ok_or_else(|| BusError::Usage("a delivery can be settled only once".into()))
    }

    /// Acknowledges: the work is done and durable, the broker forgets the message.
    ///
    /// # Errors
    ///
    /// [`BusError::StaleDelivery`] when the channel it came on has closed: the broker will
    /// deliver it again (harmless when writes are idempotent).
    pub async fn ack(mut self) -> Result<(), BusError> {
        match self.take_settle()? {
            Settle::Amqp(s) => {
                settle_bounded(&s.channel, &self.queue, "ack", async {
                    s.acker.ack(BasicAckOptions::default()).await
                })
                .await
            }
            Settle::Memory(s) => s.ack(),
        }
    }

    /// Gives the message back to the queue for another attempt. Counts against the
    /// queue's delivery limit.
    ///
    /// # Errors
    ///
    /// [`BusError::StaleDelivery`] when the channel has closed (the message is back in the
    /// queue anyway).
    pub async fn requeue(mut self) -> Result<(), BusError> {
        match self.take_settle()? {
            Settle::Amqp(s) => {
                settle_bounded(&s.channel, &self.queue, "requeue", async {
                    s.acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            multiple: false,
                        })
                        .await
                })
                .await
            }
            Settle::Memory(s) => s.requeue(),
        }
    }

    /// Moves the message to its queue's dead-letter queue with `reason` (in the header
    /// [`headers::DEAD_LETTER_REASON`]), for a person to look at: a copy is published to
    /// the dead-letter exchange and confirmed by the broker, then the original is
    /// acknowledged.
    ///
    /// # Errors
    ///
    /// When the copy cannot be published or confirmed; the original then stays unsettled
    /// on the broker (and is delivered again once this delivery's channel closes).
    pub async fn dead_letter(mut self, reason: &str) -> Result<(), BusError> {
        let redeliveries = self.redelivery_count;
        let queue = self.queue.clone();
        match self.take_settle()? {
            Settle::Amqp(s) => {
                let mut table = s.properties.headers().clone().unwrap_or_default();
                table.insert(headers::DEAD_LETTER_REASON.into(), long(reason));
                table.insert(headers::DEAD_LETTER_QUEUE.into(), long(&queue));
                table.insert(
                    headers::DEAD_LETTER_DELIVERIES.into(),
                    AMQPValue::LongLongInt(i64::from(redeliveries) + 1),
                );
                let properties = s.properties.clone().with_headers(table);
                let what = format!("dead-lettering a message from {queue}");
                let body: &[u8] = match &self.payload {
                    Payload::Body(body) | Payload::Lz4(body) => body,
                    Payload::Shared(_) => &[],
                };
                let publishing = async {
                    s.channel
                        .basic_publish(
                            s.dead_letter_exchange.clone(),
                            "".into(),
                            BasicPublishOptions {
                                mandatory: true,
                                ..BasicPublishOptions::default()
                            },
                            body,
                            properties,
                        )
                        .await?
                        .await
                };
                // A confirm lost with the connection must not hold the consumer up.
                let confirm = match tokio::time::timeout(SETTLE_TIMEOUT, publishing).await {
                    Ok(confirm) => confirm.map_err(BusError::amqp(what.clone()))?,
                    Err(_) => {
                        return Err(BusError::ConfirmTimeout {
                            what,
                            timeout: SETTLE_TIMEOUT,
                        })
                    }
                };
                if confirm.is_nack() {
                    return Err(BusError::Nacked {
                        exchange: s.dead_letter_exchange.to_string(),
                        what,
                    });
                }
                if let Some(returned) = confirm.take_message() {
                    return Err(BusError::Unroutable {
                        exchange: s.dead_letter_exchange.to_string(),
                        what,
                        reply: returned.reply_text.to_string(),
                    });
                }
                settle_bounded(&s.channel, &queue, "ack", async {
                    s.acker.ack(BasicAckOptions::default()).await
                })
                .await
            }
            Settle::Memory(s) => s.dead_letter(reason, redeliveries + 1),
        }
    }
}

/// How long settling a delivery (an ack, a requeue, the confirm of a dead-letter copy) may
/// take at most. lapin completes an ack once it is written to the socket, which takes
/// microseconds; but an ack issued while the connection is being lost can stay pending
/// forever (lapin 4.12 never completes it), and the consumer with it.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a pending settlement looks at its channel.
const SETTLE_POLL: Duration = Duration::from_millis(100);

/// How long a settlement may still complete after its channel is seen closed.
const SETTLE_GRACE: Duration = Duration::from_secs(1);

/// Runs `settle` (an ack or nack of `acker`) and turns every way it can fail into
/// [`BusError::StaleDelivery`]: an error, a refusal because the channel closed (lapin's
/// `Ok(false)`), a channel that is closed and the settlement still pending after
/// [`SETTLE_GRACE`], or no answer within [`SETTLE_TIMEOUT`]. In every case the broker
/// delivers the message again once the channel is gone.
async fn settle_bounded(
    channel: &Channel,
    queue: &str,
    what: &str,
    settle: impl Future<Output = lapin::Result<bool>>,
) -> Result<(), BusError> {
    let stale = |source: lapin::Error| BusError::StaleDelivery {
        queue: queue.to_owned(),
        source,
    };
    let lost = |why: String| {
        stale(
            std::io::Error::new(std::io::ErrorKind::NotConnected, format!("{what}: {why}")).into(),
        )
    };
    let start = tokio::time::Instant::now();
    let mut closed_at = None;
    let mut settle = std::pin::pin!(settle);
    loop {
        match tokio::time::timeout(SETTLE_POLL, settle.as_mut()).await {
            Ok(Ok(true)) => return Ok(()),
            Ok(Ok(false)) => return Err(lost("the channel closed before it was sent".into())),
            Ok(Err(e)) => return Err(stale(e)),
            Err(_) => {
                let now = tokio::time::Instant::now();
                if !channel.status().connected() {
                    let since = *closed_at.get_or_insert(now);
                    if now - since >= SETTLE_GRACE {
                        return Err(lost("the channel closed while it was pending".into()));
                    }
                }
                if now - start >= SETTLE_TIMEOUT {
                    return Err(lost(format!("not sent within {SETTLE_TIMEOUT:?}")));
                }
            }
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        match self.settle.take() {
            None => {}
            Some(Settle::Memory(s)) => {
                // Best effort: the bus may be closed already.
                s.requeue().unwrap_or(());
            }
            Some(Settle::Amqp(s)) => {
                // Give the message back now rather than when the channel closes, so that
                // it does not hold a prefetch slot meanwhile.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let queue = self.queue.clone();
                    runtime.spawn(async move {
                        let options = BasicNackOptions {
                            requeue: true,
                            multiple: false,
                        };
                        let nack = async { s.acker.nack(options).await };
                        if let Err(e) = settle_bounded(&s.channel, &queue, "requeue", nack).await {
                            tracing::debug!(%queue, error = %e, "Requeueing a dropped delivery failed; the broker requeues it when the channel closes.");
                        }
                    });
                }
            }
        }
    }
}

/// Reads the headers of a dead-lettered message: the reason a consumer gave, or, for a
/// message the broker dead-lettered itself, the reason in its `x-death` header (e.g.
/// `delivery_limit`).
#[must_use]
pub fn dead_letter_reason(headers_table: Option<&FieldTable>) -> Option<String> {
    if let Some(reason) = crate::amqp::header_str(headers_table, headers::DEAD_LETTER_REASON) {
        return Some(reason.to_owned());
    }
    let AMQPValue::FieldArray(deaths) = headers_table?.inner().get("x-death")? else {
        return None;
    };
    deaths.as_slice().iter().find_map(|death| match death {
        AMQPValue::FieldTable(t) => crate::amqp::header_str(Some(t), "reason").map(str::to_owned),
        _ => None,
    })
}
