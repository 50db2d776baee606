//! [`Neo4jSinkError`]: what can go wrong, and whether a retry can help.

use discogs_model::{RecordKind, SinkError};

/// An error from [`crate::Neo4jSink`].
///
/// [`Neo4jSinkError::is_retriable`] decides from Neo4j's status codes and the driver's
/// transport errors, never from message text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Neo4jSinkError {
    /// The configuration is invalid (checked by [`crate::Neo4jSink::new`], before any I/O).
    #[error("invalid Neo4j sink configuration: {0}")]
    Config(String),
    /// A statement, a transaction or the connection failed.
    #[error("Neo4j error while {context}")]
    Neo4j {
        /// What the sink was doing.
        context: &'static str,
        /// The driver's error, with the server's status code when it sent one.
        #[source]
        source: neo4rs::Error,
    },
    /// A batch of one kind held a record of another kind.
    #[error("a record of kind {found} (id {id}) in a batch of {expected}")]
    KindMismatch {
        /// The batch's kind.
        expected: RecordKind,
        /// The record's kind.
        found: RecordKind,
        /// The record's id.
        id: u64,
    },
    /// An id above `i64::MAX` cannot be stored as a Neo4j integer.
    #[error("id {0} does not fit in a Neo4j integer")]
    IdOutOfRange(u64),
    /// The schema could not be brought online (an index failed, or took too long).
    #[error("Neo4j schema: {0}")]
    Schema(String),
    /// A value read from the graph did not have the expected type or form.
    #[error("unexpected value in the graph: {0}")]
    Decode(String),
}

impl Neo4jSinkError {
    pub(crate) fn neo4j(context: &'static str) -> impl FnOnce(neo4rs::Error) -> Self {
        move |source| Self::Neo4j { context, source }
    }

    /// The status code the server sent, when there is one (e.g.
    /// `Neo.TransientError.Transaction.DeadlockDetected`).
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Neo4j {
                source: neo4rs::Error::Neo4j(e),
                ..
            } => Some(e.code()),
            _ => None,
        }
    }

    /// Whether Neo4j reported a deadlock between this transaction and another
    /// (`Neo.TransientError.Transaction.DeadlockDetected`): trying again at once usually
    /// succeeds.
    #[must_use]
    pub fn is_deadlock(&self) -> bool {
        self.code() == Some(DEADLOCK_STATUS)
    }

    /// Whether Neo4j refused this transaction because of a concurrent one: a deadlock
    /// ([`Neo4jSinkError::is_deadlock`]), or `Neo.TransientError.Transaction.Outdated`
    /// ("the transaction read outdated data and cannot be recovered due to concurrent
    /// data modification", which Neo4j 5.26 raises when another transaction changed what
    /// this one read). Writing the same data again at once usually succeeds.
    #[must_use]
    pub fn is_transaction_conflict(&self) -> bool {
        self.code().is_some_and(conflict_status)
    }

    /// Whether the same operation may succeed if tried again.
    ///
    /// Retriable: every `Neo.TransientError.*` status (deadlocks, lock timeouts, memory
    /// pool exhausted, database unavailable), the statuses Neo4j's drivers also retry or
    /// that a restart or failover causes (`Neo.ClientError.Transaction.Terminated` and
    /// `LockClientStopped`, which the server reports as transient,
    /// `Cluster.NotALeader`, `General.ForbiddenOnReadOnlyDatabase`,
    /// `Security.AuthorizationExpired`), and transport failures: I/O errors, lost or
    /// refused connections, timeouts, requests the server ignored. Everything else is
    /// permanent: syntax and semantic errors, constraint violations, wrong credentials,
    /// bad configuration, records that cannot be stored.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Neo4j { source, .. } => driver_error_retriable(source),
            Self::Config(_)
            | Self::KindMismatch { .. }
            | Self::IdOutOfRange(_)
            | Self::Schema(_)
            | Self::Decode(_) => false,
        }
    }
}

impl SinkError for Neo4jSinkError {
    fn is_retriable(&self) -> bool {
        Neo4jSinkError::is_retriable(self)
    }
}

/// Classifies a driver error: by status code when the server sent one, else by kind.
pub(crate) fn driver_error_retriable(e: &neo4rs::Error) -> bool {
    use neo4rs::Error as E;
    match e {
        E::Neo4j(e) => status_retriable(e.code()),
        E::IOError { .. }
        | E::ConnectionError
        | E::ConnectionTimedOut
        | E::IncompleteBoltExchange
        | E::ServerUnavailableError(_)
        | E::RequestIgnoredError
        | E::Ignored(_)
        | E::RoutingTableError(_)
        | E::RoutingTableRefreshFailed(_) => true,
        _ => false,
    }
}

/// Whether a Neo4j status code (`Neo.<Classification>.<Category>.<Title>`) names a
/// condition that may pass.
#[must_use]
pub fn status_retriable(code: &str) -> bool {
    code.starts_with("Neo.TransientError.")
        || matches!(
            code,
            "Neo.ClientError.Transaction.Terminated"
                | "Neo.ClientError.Transaction.LockClientStopped"
                | "Neo.ClientError.Cluster.NotALeader"
                | "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase"
                | "Neo.ClientError.Security.AuthorizationExpired"
        )
}

/// The status of [`Neo4jSinkError::is_deadlock`].
const DEADLOCK_STATUS: &str = "Neo.TransientError.Transaction.DeadlockDetected";

/// The statuses of [`Neo4jSinkError::is_transaction_conflict`].
fn conflict_status(code: &str) -> bool {
    code == DEADLOCK_STATUS || code == "Neo.TransientError.Transaction.Outdated"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_with_concurrent_transactions() {
        assert!(conflict_status(
            "Neo.TransientError.Transaction.DeadlockDetected"
        ));
        assert!(conflict_status("Neo.TransientError.Transaction.Outdated"));
        for code in [
            "Neo.TransientError.Transaction.LockAcquisitionTimeout",
            "Neo.TransientError.General.DatabaseUnavailable",
            "Neo.ClientError.Schema.ConstraintValidationFailed",
        ] {
            assert!(!conflict_status(code), "{code}");
        }
    }

    #[test]
    fn status_codes() {
        for code in [
            "Neo.TransientError.Transaction.DeadlockDetected",
            "Neo.TransientError.Transaction.LockAcquisitionTimeout",
            "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
            "Neo.TransientError.General.DatabaseUnavailable",
            "Neo.TransientError.Transaction.Outdated",
            "Neo.ClientError.Transaction.Terminated",
            "Neo.ClientError.Transaction.LockClientStopped",
            "Neo.ClientError.Cluster.NotALeader",
        ] {
            assert!(status_retriable(code), "{code}");
        }
        for code in [
            "Neo.ClientError.Statement.SyntaxError",
            "Neo.ClientError.Statement.TypeError",
            "Neo.ClientError.Schema.ConstraintValidationFailed",
            "Neo.ClientError.Security.Unauthorized",
            "Neo.ClientError.Statement.ParameterMissing",
            "Neo.DatabaseError.General.UnknownError",
        ] {
            assert!(!status_retriable(code), "{code}");
        }
    }

    #[test]
    fn transport_and_own_errors() {
        let io = neo4rs::Error::IOError {
            detail: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert!(driver_error_retriable(&io));
        assert!(driver_error_retriable(&neo4rs::Error::ConnectionTimedOut));
        assert!(!driver_error_retriable(&neo4rs::Error::ConversionError));
        assert!(!driver_error_retriable(
            &neo4rs::Error::AuthenticationError("bad password".into())
        ));
        let e = Neo4jSinkError::KindMismatch {
            expected: RecordKind::Artist,
            found: RecordKind::Label,
            id: 1,
        };
        assert!(!e.is_retriable());
        assert!(!Neo4jSinkError::IdOutOfRange(u64::MAX).is_retriable());
        assert!(!Neo4jSinkError::Config("x".into()).is_retriable());
        assert!(Neo4jSinkError::Neo4j {
            context: "test",
            source: neo4rs::Error::ConnectionError
        }
        .is_retriable());
    }
}
