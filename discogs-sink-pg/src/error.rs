//! [`PgSinkError`]: what can go wrong, and whether a retry can help.

use discogs_model::{RecordKind, SinkError};

/// An error from [`crate::PgSink`].
///
/// [`PgSinkError::is_retriable`] decides from SQLSTATE classes and transport failures,
/// never from message text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgSinkError {
    /// The configuration is invalid (checked by [`crate::PgSink::new`], before any I/O).
    #[error("invalid PostgreSQL sink configuration: {0}")]
    Config(String),
    /// Connecting failed (refused, timed out, authentication...).
    #[error("could not connect to PostgreSQL")]
    Connect(#[source] tokio_postgres::Error),
    /// A statement failed.
    #[error("PostgreSQL error while {context}")]
    Postgres {
        /// What the sink was doing.
        context: &'static str,
        /// The driver's error, with its SQLSTATE when the server sent one.
        #[source]
        source: tokio_postgres::Error,
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
    /// An id above `i64::MAX` cannot be stored in a `BIGINT`.
    #[error("id {0} does not fit in a BIGINT")]
    IdOutOfRange(u64),
    /// A record could not be encoded as JSON.
    #[error("encoding record {id} as JSON")]
    Encode {
        /// The record's id.
        id: u64,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// A column value of a record could not be encoded for COPY.
    #[error("encoding a column of record {id} for COPY")]
    Field {
        /// The record's id.
        id: u64,
        /// The encoder's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored record could not be decoded into the model.
    #[error("decoding stored record {id}")]
    Decode {
        /// The record's id.
        id: u64,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
}

impl PgSinkError {
    pub(crate) fn pg(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Self {
        move |source| Self::Postgres { context, source }
    }

    /// The SQLSTATE code the server sent, when there is one (e.g. `23505`).
    #[must_use]
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Connect(e) | Self::Postgres { source: e, .. } => e.code().map(|c| c.code()),
            _ => None,
        }
    }

    /// Whether the same operation may succeed if tried again.
    ///
    /// Retriable: SQLSTATE classes `08` (connection exception), `40` (transaction
    /// rollback: serialization failure, deadlock), `53` (insufficient resources), `57`
    /// (operator intervention: shutdown, cancel), `58` (system error), and `55P03`
    /// (lock not available); errors without a SQLSTATE that come from the transport
    /// (I/O, closed connection, connect timeout: an `io::Error` underneath). Everything else is permanent: data or
    /// constraint errors (`22`, `23`), authentication (`28`), missing objects, bad
    /// configuration, records that cannot be encoded.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Connect(e) | Self::Postgres { source: e, .. } => pg_retriable(e),
            Self::Config(_)
            | Self::KindMismatch { .. }
            | Self::IdOutOfRange(_)
            | Self::Encode { .. }
            | Self::Field { .. }
            | Self::Decode { .. } => false,
        }
    }
}

impl SinkError for PgSinkError {
    fn is_retriable(&self) -> bool {
        PgSinkError::is_retriable(self)
    }
}

/// Classifies a driver error by SQLSTATE, or as a transport failure when it has none.
pub(crate) fn pg_retriable(e: &tokio_postgres::Error) -> bool {
    if let Some(code) = e.code() {
        return sqlstate_retriable(code.code());
    }
    if e.is_closed() {
        return true;
    }
    // No SQLSTATE: an I/O error (refused, reset, timed out) is transient; a conversion
    // error (a value the driver could not encode or decode) is not.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Whether a SQLSTATE code names a condition that may pass.
pub(crate) fn sqlstate_retriable(code: &str) -> bool {
    matches!(code.get(..2), Some("08" | "40" | "53" | "57" | "58")) || code == "55P03"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_classes() {
        for code in [
            "08006", "08001", "40001", "40P01", "53100", "53300", "57P01", "57014", "58030",
            "55P03",
        ] {
            assert!(sqlstate_retriable(code), "{code}");
        }
        for code in [
            "23505", "23503", "22P02", "22021", "28P01", "3D000", "42P01", "42703", "XX000",
        ] {
            assert!(!sqlstate_retriable(code), "{code}");
        }
    }

    #[test]
    fn own_errors_are_permanent() {
        let e = PgSinkError::KindMismatch {
            expected: RecordKind::Artist,
            found: RecordKind::Label,
            id: 1,
        };
        assert!(!e.is_retriable());
        assert!(!PgSinkError::IdOutOfRange(u64::MAX).is_retriable());
        assert!(!PgSinkError::Config("x".into()).is_retriable());
    }
}
