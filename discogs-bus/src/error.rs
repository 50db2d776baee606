//! What can go wrong on the bus, and whether trying again can help.

use std::time::Duration;

use discogs_model::wire::WireError;
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::ErrorKind;

/// An error from the bus. [`BusError::is_retriable`] says whether the same operation may
/// succeed later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The broker could not be reached or refused the login.
    #[error("cannot connect to RabbitMQ at {url}: {source}")]
    Connect {
        /// The broker's URL, password hidden.
        url: String,
        /// What lapin reported.
        #[source]
        source: lapin::Error,
    },
    /// An AMQP operation failed (connection or channel lost, broker error).
    #[error("RabbitMQ: {context}: {source}")]
    Amqp {
        /// What was being done.
        context: String,
        /// What lapin reported.
        #[source]
        source: lapin::Error,
    },
    /// Declaring an exchange or queue failed. A `PRECONDITION_FAILED` means it exists with
    /// other arguments (another delivery limit, a classic queue where a quorum queue is
    /// expected...): delete it or align the configuration.
    #[error("declaring {name}: {source}")]
    Topology {
        /// The exchange or queue.
        name: String,
        /// What lapin reported.
        #[source]
        source: lapin::Error,
    },
    /// A message published with `mandatory` reached no queue: nothing is bound to the
    /// exchange. It was not delivered anywhere; it stays queued in the publisher and is sent
    /// again by the next call.
    #[error("{what} on exchange {exchange} was returned as unroutable ({reply}): no queue is bound to the exchange")]
    Unroutable {
        /// The exchange.
        exchange: String,
        /// Which message (a batch id or a control message).
        what: String,
        /// The broker's reply text, e.g. `NO_ROUTE`.
        reply: String,
    },
    /// The broker refused to take a message (`basic.nack`). It stays queued in the
    /// publisher and is sent again by the next call.
    #[error("the broker refused (nack) {what} on exchange {exchange}")]
    Nacked {
        /// The exchange.
        exchange: String,
        /// Which message.
        what: String,
    },
    /// The broker did not confirm a message in time (a memory or disk alarm blocks
    /// publishers, or the connection hangs). The publisher reconnects and sends again
    /// everything unconfirmed on its next call.
    #[error("no confirm from the broker for {what} within {timeout:?}")]
    ConfirmTimeout {
        /// Which message.
        what: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// Reconnecting kept failing for longer than the configured budget.
    #[error("gave up reconnecting to RabbitMQ after {attempts} attempts over {elapsed:?}: {last}")]
    GaveUp {
        /// Connection attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last attempt's error.
        #[source]
        last: Box<BusError>,
    },
    /// A message could not be encoded.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A delivered message body is not a message of a schema this build reads.
    #[error("cannot decode a message from {queue}: {reason}")]
    Decode {
        /// The queue it came from.
        queue: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A delivery can no longer be settled: the channel it came on was closed. The broker
    /// has put it back in the queue and will deliver it again.
    #[error("a delivery from {queue} can no longer be settled (its channel closed; the broker delivers it again): {source}")]
    StaleDelivery {
        /// The queue it came from.
        queue: String,
        /// What lapin reported.
        #[source]
        source: lapin::Error,
    },
    /// The bus was used in a way it does not allow (publishing with no file begun, an
    /// invalid name...).
    #[error("invalid use of the bus: {0}")]
    Usage(String),
    /// The in-process bus was closed.
    #[error("the bus is closed")]
    Closed,
}

impl BusError {
    /// `true` when the same operation may succeed later: lost connections, a broker that is
    /// restarting or refusing messages for now, missing confirms. `false` for what needs a
    /// change first: bad credentials, topology that conflicts with what exists, unroutable
    /// messages, undecodable bodies, invalid use.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Connect { source, .. }
            | Self::Amqp { source, .. }
            | Self::Topology { source, .. } => lapin_is_retriable(source),
            Self::Nacked { .. }
            | Self::ConfirmTimeout { .. }
            | Self::GaveUp { .. }
            | Self::StaleDelivery { .. } => true,
            Self::Unroutable { .. }
            | Self::Wire(_)
            | Self::Decode { .. }
            | Self::Usage(_)
            | Self::Closed => false,
        }
    }

    pub(crate) fn amqp(context: impl Into<String>) -> impl FnOnce(lapin::Error) -> BusError {
        let context = context.into();
        move |source| BusError::Amqp { context, source }
    }

    pub(crate) fn topology(name: &str) -> impl FnOnce(lapin::Error) -> BusError + '_ {
        move |source| BusError::Topology {
            name: name.to_owned(),
            source,
        }
    }
}

/// Classifies lapin's errors by kind and AMQP reply code, never by message text.
pub(crate) fn lapin_is_retriable(e: &lapin::Error) -> bool {
    match e.kind() {
        ErrorKind::IOError(_)
        | ErrorKind::RuntimeShutdownError(_)
        | ErrorKind::MissingHeartbeatError
        | ErrorKind::InvalidChannel(_)
        | ErrorKind::InvalidChannelState(..)
        | ErrorKind::InvalidConnectionState(_) => true,
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            // 405: an exclusive queue held by a connection that is going away.
            AMQPErrorKind::Soft(soft) => matches!(soft, AMQPSoftError::RESOURCELOCKED),
            // 320: the broker is shutting down or an operator closed the connection;
            // 506: out of resources (alarms); 541: the broker's internal error.
            AMQPErrorKind::Hard(hard) => matches!(
                hard,
                AMQPHardError::CONNECTIONFORCED
                    | AMQPHardError::RESOURCEERROR
                    | AMQPHardError::INTERNALERROR
            ),
        },
        _ => false,
    }
}

/// `true` when the error concerns the channel or connection, so that a fresh connection
/// is the way on (rather than giving up or retrying on the same channel).
pub(crate) fn needs_reconnect(e: &BusError) -> bool {
    match e {
        BusError::Connect { source, .. } | BusError::Amqp { source, .. } => {
            lapin_is_retriable(source)
        }
        BusError::ConfirmTimeout { .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn classification() {
        let io: lapin::Error = ErrorKind::IOError(Arc::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )))
        .into();
        let lost = BusError::Amqp {
            context: "publishing".into(),
            source: io,
        };
        assert!(lost.is_retriable());
        assert!(needs_reconnect(&lost));
        assert!(!BusError::Usage("x".into()).is_retriable());
        assert!(!BusError::Unroutable {
            exchange: "e".into(),
            what: "batch".into(),
            reply: "NO_ROUTE".into()
        }
        .is_retriable());
        assert!(BusError::Nacked {
            exchange: "e".into(),
            what: "batch".into()
        }
        .is_retriable());
        let forced: lapin::Error = ErrorKind::ProtocolError(lapin::protocol::AMQPError::new(
            AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED),
            "shutdown".into(),
        ))
        .into();
        assert!(lapin_is_retriable(&forced));
        let refused: lapin::Error = ErrorKind::ProtocolError(lapin::protocol::AMQPError::new(
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED),
            "inequivalent arg".into(),
        ))
        .into();
        assert!(!lapin_is_retriable(&refused));
        let declare = BusError::Topology {
            name: "q".into(),
            source: refused,
        };
        assert!(!declare.is_retriable());
        assert!(!needs_reconnect(&declare));
    }
}
