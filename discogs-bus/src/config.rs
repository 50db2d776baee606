//! Settings: names of the topology, publisher batching and confirms, consumer prefetch and
//! idling, reconnection backoff.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use discogs_model::RecordKind;

use crate::BusError;

/// The prefix of every exchange and queue name unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "discogsography";

/// Names and shared arguments of the exchanges and queues (see [`crate::topology`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Prefix of every name: exchanges are `{prefix}-{kind}` (`discogsography-artists`...).
    pub prefix: String,
    /// `x-delivery-limit` of every consumer queue: how many times a message may be given
    /// back (nacked with requeue, or left unacked when a channel closes) before the broker
    /// dead-letters it. The original system used 20.
    pub delivery_limit: u32,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            delivery_limit: 20,
        }
    }
}

impl Topology {
    /// The default topology with another prefix.
    #[must_use]
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }

    /// The fanout exchange of `kind`: `{prefix}-{kinds}`, e.g. `discogsography-releases`.
    #[must_use]
    pub fn exchange(&self, kind: RecordKind) -> String {
        format!("{}-{}", self.prefix, kind.plural())
    }

    /// The queue of `consumer` for `kind`: `{prefix}-{consumer}-{kinds}`.
    #[must_use]
    pub fn queue(&self, consumer: &str, kind: RecordKind) -> String {
        format!("{}-{consumer}-{}", self.prefix, kind.plural())
    }

    /// The dead-letter exchange of a queue: `{queue}.dlx`.
    #[must_use]
    pub fn dead_letter_exchange(&self, consumer: &str, kind: RecordKind) -> String {
        format!("{}.dlx", self.queue(consumer, kind))
    }

    /// The dead-letter queue of a queue: `{queue}.dlq`.
    #[must_use]
    pub fn dead_letter_queue(&self, consumer: &str, kind: RecordKind) -> String {
        format!("{}.dlq", self.queue(consumer, kind))
    }

    /// Checks the prefix and a consumer name: letters, digits, `-`, `_`, `.`, and names
    /// that fit AMQP's 255-byte limit.
    ///
    /// # Errors
    ///
    /// [`BusError::Usage`] naming what is wrong.
    pub fn validate(&self, consumer: Option<&str>) -> Result<(), BusError> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if !ok(&self.prefix) {
            return Err(BusError::Usage(format!(
                "prefix {:?} must be non-empty letters, digits, '-', '_' or '.'",
                self.prefix
            )));
        }
        if let Some(c) = consumer {
            if !ok(c) {
                return Err(BusError::Usage(format!(
                    "consumer name {c:?} must be non-empty letters, digits, '-', '_' or '.'"
                )));
            }
            if self.dead_letter_queue(c, RecordKind::Release).len() > 255 {
                return Err(BusError::Usage(format!(
                    "prefix and consumer name {c:?} make queue names longer than 255 bytes"
                )));
            }
        }
        if self.delivery_limit == 0 {
            return Err(BusError::Usage("delivery_limit must be at least 1".into()));
        }
        Ok(())
    }
}

/// Exponential backoff with jitter between attempts, and how long to keep trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the second attempt.
    pub initial: Duration,
    /// Longest delay between attempts (the delay doubles up to this).
    pub max: Duration,
    /// Stop after this long without success; `None` keeps trying.
    pub give_up_after: Option<Duration>,
}

impl Backoff {
    /// 100 ms doubling to 5 s, giving up after `give_up_after`.
    #[must_use]
    pub fn new(give_up_after: Option<Duration>) -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            give_up_after,
        }
    }

    /// The delay before attempt `attempt + 1` (`attempt` counts from 0): `initial × 2^attempt`
    /// capped at `max`, less up to 20% of jitter so that many clients do not retry in step.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        // Jitter from the clock's nanoseconds: no need for a random number generator.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        base.mul_f64(1.0 - f64::from(nanos % 200) / 1000.0)
    }

    /// Whether attempts that started at `elapsed` ago should stop.
    #[must_use]
    pub fn exhausted(&self, elapsed: Duration) -> bool {
        self.give_up_after.is_some_and(|limit| elapsed >= limit)
    }
}

/// How a publisher batches and confirms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// Most records in one message (default 100).
    pub max_records: usize,
    /// Most bytes in one message body (default 1 MiB). A single record larger than this
    /// travels alone.
    pub max_bytes: usize,
    /// Most messages sent and not yet confirmed by the broker (default 128). The publisher
    /// waits for the oldest confirm when the window is full.
    pub confirm_window: usize,
    /// How long to wait for one confirm before treating the connection as broken
    /// (default 30 s, as the original system).
    pub confirm_timeout: Duration,
    /// Consumers whose queues the publisher declares and binds before its first message,
    /// so that nothing is published before the queues that must receive it exist
    /// (default none: the consumers declare their own).
    pub consumers: Vec<String>,
    /// Reconnection after a lost connection (default: give up after 5 minutes).
    pub reconnect: Backoff,
    /// Name shown in the broker's connection list.
    pub connection_name: String,
    /// How batch bodies are compressed (default [`Compression::Lz4`]). Control messages
    /// always travel as plain JSON.
    pub compression: Compression,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            max_records: 100,
            max_bytes: 1 << 20,
            confirm_window: 128,
            confirm_timeout: Duration::from_secs(30),
            consumers: Vec::new(),
            reconnect: Backoff::new(Some(Duration::from_secs(300))),
            connection_name: "discogs-bus publisher".to_owned(),
            compression: Compression::default(),
        }
    }
}

impl PublisherConfig {
    /// Checks the limits.
    ///
    /// # Errors
    ///
    /// [`BusError::Usage`] when a limit is zero.
    pub fn validate(&self) -> Result<(), BusError> {
        if self.max_records == 0 || self.max_bytes == 0 || self.confirm_window == 0 {
            return Err(BusError::Usage(
                "max_records, max_bytes and confirm_window must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// How a publisher compresses the JSON body of a batch. Consumers read every form (the
/// message's `content_encoding` says which), so publishers may differ.
///
/// LZ4 shrinks a batch of generated releases 2.5-fold (917 bytes a record instead of
/// 2,304), so a backlog (a consumer slower than the extractor keeps most of a dump in its
/// quorum queue) takes 40 % of the broker's disk and less of its CPU. It costs the clients
/// about 8 µs of CPU per record, so the bus alone is faster without it: 88,000-111,000
/// against 71,000-84,000 records/s end to end on the project machine at 100 records per
/// message (README, "Message bus").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// The JSON as it is (`content_encoding` `UTF-8`).
    None,
    /// The LZ4 block format with the JSON's length in front as a little-endian `u32`
    /// (`content_encoding` [`Compression::LZ4_ENCODING`]).
    #[default]
    Lz4,
}

impl Compression {
    /// The `content_encoding` of an LZ4-compressed body.
    pub const LZ4_ENCODING: &'static str = "lz4-block";

    /// `none` or `lz4`, as the environment variable `BUS_COMPRESSION` takes it.
    ///
    /// # Errors
    ///
    /// [`BusError::Usage`] for any other name.
    pub fn from_name(name: &str) -> Result<Self, BusError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(Self::None),
            "lz4" => Ok(Self::Lz4),
            other => Err(BusError::Usage(format!(
                "compression {other:?}: expected \"lz4\" or \"none\""
            ))),
        }
    }
}

/// How a consumer receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The consumer's name, part of its queue names (`graphinator`, `tableinator`).
    pub name: String,
    /// The kinds to consume (default all four): one queue each.
    pub kinds: Vec<RecordKind>,
    /// Unacknowledged messages the broker may send ahead, per queue (default 8); see
    /// [`ConsumerConfig::prefetch_for`].
    pub prefetch: u16,
    /// `CONSUMER_CANCEL_DELAY`: after this long without a message (and with no delivery
    /// in hand), the consumer cancels its subscriptions and closes its connection, then
    /// checks the queues every [`ConsumerConfig::idle_check_interval`] and resumes when one
    /// holds messages. `None` (the default) never idles.
    pub idle_after: Option<Duration>,
    /// How often an idle consumer looks at its queues (default 60 s).
    pub idle_check_interval: Duration,
    /// Reconnection after a lost connection (default: keep trying).
    pub reconnect: Backoff,
}

impl ConsumerConfig {
    /// A consumer of all four kinds with the defaults.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kinds: RecordKind::ALL.to_vec(),
            prefetch: 8,
            idle_after: None,
            idle_check_interval: Duration::from_secs(60),
            reconnect: Backoff::new(None),
        }
    }

    /// The prefetch that keeps a consumer busy: enough messages to fill two of its writes
    /// of `write_batch` records when each message carries `records_per_message`, and at
    /// least 2 so that the next message is on its way while one is processed.
    #[must_use]
    pub fn prefetch_for(write_batch: usize, records_per_message: usize) -> u16 {
        let per_write = write_batch.div_ceil(records_per_message.max(1));
        u16::try_from(per_write.saturating_mul(2).max(2)).unwrap_or(u16::MAX)
    }

    /// `CONSUMER_CANCEL_DELAY` in seconds as the original system read it: `0` disables.
    #[must_use]
    pub fn with_cancel_delay_secs(mut self, secs: u64) -> Self {
        self.idle_after = (secs > 0).then(|| Duration::from_secs(secs));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let t = Topology::default();
        assert_eq!(t.exchange(RecordKind::Artist), "discogsography-artists");
        assert_eq!(
            t.queue("graphinator", RecordKind::Release),
            "discogsography-graphinator-releases"
        );
        assert_eq!(
            t.dead_letter_exchange("tableinator", RecordKind::Label),
            "discogsography-tableinator-labels.dlx"
        );
        assert_eq!(
            t.dead_letter_queue("tableinator", RecordKind::Master),
            "discogsography-tableinator-masters.dlq"
        );
        assert!(t.validate(Some("graphinator")).is_ok());
        assert!(t.validate(Some("bad name")).is_err());
        assert!(t.validate(Some(&"x".repeat(250))).is_err());
        assert!(Topology::with_prefix("").validate(None).is_err());
    }

    #[test]
    fn prefetch_and_cancel_delay() {
        assert_eq!(ConsumerConfig::prefetch_for(500, 100), 10);
        assert_eq!(ConsumerConfig::prefetch_for(100, 100), 2);
        assert_eq!(ConsumerConfig::prefetch_for(1, 100), 2);
        assert_eq!(ConsumerConfig::prefetch_for(250, 100), 6);
        assert_eq!(ConsumerConfig::prefetch_for(usize::MAX, 1), u16::MAX);
        let c = ConsumerConfig::new("g").with_cancel_delay_secs(300);
        assert_eq!(c.idle_after, Some(Duration::from_secs(300)));
        assert_eq!(
            ConsumerConfig::new("g")
                .with_cancel_delay_secs(0)
                .idle_after,
            None
        );
    }

    #[test]
    fn backoff() {
        let b = Backoff::new(Some(Duration::from_secs(1)));
        assert!(b.delay(0) <= Duration::from_millis(100));
        assert!(b.delay(0) >= Duration::from_millis(80));
        assert!(b.delay(30) <= Duration::from_secs(5));
        assert!(b.delay(30) >= Duration::from_secs(4));
        assert!(!b.exhausted(Duration::from_millis(999)));
        assert!(b.exhausted(Duration::from_secs(1)));
        assert!(!Backoff::new(None).exhausted(Duration::MAX));
        assert!(PublisherConfig::default().validate().is_ok());
        let zero = PublisherConfig {
            confirm_window: 0,
            ..PublisherConfig::default()
        };
        assert!(zero.validate().is_err());
    }
}
