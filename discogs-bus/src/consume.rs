//! The [`Consumer`] trait, the [`Handler`] of one delivery, and [`process`]: the
//! settle-after-commit loop with in-process retries.

use std::future::Future;
use std::time::{Duration, Instant};

use discogs_model::SinkError;

use crate::{Backoff, BusError, Delivery};

/// What a consumer is doing, for health endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumerState {
    /// Not connected yet (nothing asked for a delivery so far).
    Starting,
    /// Subscribed and receiving.
    Consuming,
    /// Lost the broker; trying again (`attempt` counts failures in a row).
    Reconnecting {
        /// Failed attempts so far.
        attempt: u32,
    },
    /// Nothing arrived for `idle_after`: unsubscribed, disconnected, looking at the queues
    /// now and then.
    Idle,
    /// Closed.
    Closed,
}

/// Receives deliveries from the queues of one consumer (one queue per kind).
///
/// [`next`](Self::next) is cancel-safe: it can be raced against a shutdown signal in
/// `tokio::select!` without losing a message (a message not yet handed out stays with
/// the broker). The graceful shutdown of a service is: stop calling `next`, finish and
/// settle the deliveries in hand, then [`close`](Self::close).
pub trait Consumer: Send {
    /// The next delivery, waiting as long as it takes; reconnects (with backoff) when the
    /// connection is lost.
    ///
    /// # Errors
    ///
    /// When reconnecting failed for longer than the configured budget, a permanent error
    /// (credentials, topology), or a closed bus.
    fn next(&mut self) -> impl Future<Output = Result<Delivery, BusError>> + Send;

    /// What the consumer is doing.
    fn state(&self) -> ConsumerState;

    /// Unsubscribes and disconnects. Deliveries not yet settled go back to their queues.
    ///
    /// # Errors
    ///
    /// When closing fails (the connection is gone either way).
    fn close(self) -> impl Future<Output = Result<(), BusError>> + Send
    where
        Self: Sized;
}

/// Does the work a delivery carries: writes a batch to a database, reacts to a control
/// message. Returns once the work is durable.
pub trait Handler: Send {
    /// What can go wrong; [`SinkError::is_retriable`] decides between retrying and
    /// dead-lettering.
    type Error: SinkError;

    /// Handles `delivery` (its [`Delivery::message`] is decoded).
    fn handle(
        &mut self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How [`process`] treats failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delays between in-process attempts after a retriable error.
    pub backoff: Backoff,
    /// How long to keep a delivery and retry in process before giving it back to the
    /// queue. Retrying in process does not count against the queue's delivery limit, so a
    /// database outage shorter than this costs no delivery attempt. Keep it below the
    /// broker's `consumer_timeout` (30 minutes by default), after which the broker closes
    /// the channel and takes the message back anyway.
    pub hold_for: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            backoff: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(30),
                give_up_after: None,
            },
            hold_for: Duration::from_secs(20 * 60),
        }
    }
}

/// What [`process`] did with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settled {
    /// Handled and acknowledged (`attempts` in this process).
    Acked {
        /// Calls of the handler.
        attempts: u32,
    },
    /// Kept failing with retriable errors for [`RetryPolicy::hold_for`]: given back to the
    /// queue.
    Requeued {
        /// The last error.
        reason: String,
    },
    /// Moved to the dead-letter queue.
    DeadLettered {
        /// Why: a permanent error, an undecodable body, or retriable errors on the last
        /// attempt the delivery limit allows.
        reason: String,
    },
}

/// Handles one delivery and settles it:
///
/// * undecodable body → dead-letter;
/// * success → ack;
/// * permanent error ([`SinkError::is_retriable`] false) → dead-letter with the error;
/// * retriable error → keep the delivery and retry with [`RetryPolicy::backoff`] for up to
///   [`RetryPolicy::hold_for`]; then requeue, or dead-letter when the delivery limit
///   would be reached ([`Delivery::is_last_attempt`]), so the reason is kept.
///
/// # Errors
///
/// Only when settling fails (see [`Delivery::ack`]); the handler's errors are turned into
/// the settlements above.
pub async fn process<H: Handler>(
    delivery: Delivery,
    handler: &mut H,
    policy: &RetryPolicy,
) -> Result<Settled, BusError> {
    if let Err(e) = delivery.message() {
        let reason = e.to_string();
        delivery.dead_letter(&reason).await?;
        return Ok(Settled::DeadLettered { reason });
    }
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let error = match handler.handle(&delivery).await {
            Ok(()) => {
                delivery.ack().await?;
                return Ok(Settled::Acked { attempts });
            }
            Err(e) => e,
        };
        let reason = error_chain(&error);
        if !error.is_retriable() {
            tracing::warn!(queue = delivery.queue(), %reason, "Dead-lettering a message that cannot succeed.");
            delivery.dead_letter(&reason).await?;
            return Ok(Settled::DeadLettered { reason });
        }
        if start.elapsed() >= policy.hold_for {
            if delivery.is_last_attempt() {
                let reason = format!(
                    "{reason} (still failing after {} deliveries)",
                    delivery.redelivery_count() + 1
                );
                tracing::warn!(queue = delivery.queue(), %reason, "Dead-lettering a message at its delivery limit.");
                delivery.dead_letter(&reason).await?;
                return Ok(Settled::DeadLettered { reason });
            }
            tracing::warn!(queue = delivery.queue(), %reason, "Giving a message back to its queue after retrying in process.");
            delivery.requeue().await?;
            return Ok(Settled::Requeued { reason });
        }
        let delay = policy.backoff.delay(attempts - 1);
        tracing::info!(queue = delivery.queue(), %reason, retry_in = ?delay, "Retriable failure; retrying in process.");
        tokio::time::sleep(delay).await;
    }
}

/// `error` and its sources, `outer: inner: innermost`, so a dead letter's reason and the
/// log say what the server answered, not only what the handler was doing.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        // Some errors repeat their source in their own message.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("writing a batch")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_reason_names_the_cause() {
        let e = Outer(std::io::Error::other(
            "Neo.TransientError.Transaction.DeadlockDetected",
        ));
        assert_eq!(
            error_chain(&e),
            "writing a batch: Neo.TransientError.Transaction.DeadlockDetected"
        );
    }
}
