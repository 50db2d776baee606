//! [`Neo4jSinkConfig`]: where the graph lives and how the sink writes.

use std::fmt;
use std::time::Duration;

use crate::{GraphNames, Neo4jSinkError};

/// Configuration of a [`crate::Neo4jSink`], validated by [`crate::Neo4jSink::new`].
///
/// `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neo4jSinkConfig {
    /// Bolt URI, `bolt://host:port` (`NEO4J_ADDRESS`).
    pub uri: String,
    /// User name (`NEO4J_USERNAME`).
    #[serde(default = "default_username")]
    pub username: String,
    /// Password (`NEO4J_PASSWORD`).
    #[serde(default)]
    pub password: String,
    /// Prefix of every label and schema name ([`GraphNames`]); empty in production, a
    /// unique one per test.
    #[serde(default)]
    pub namespace: String,
    /// The most records written in one transaction: a batch's changed records are split
    /// into transactions of at most this many (and into at least `write_transactions`
    /// while each gets [`MIN_RECORDS_PER_TRANSACTION`]), all committed before
    /// `write_batch` returns. A group of records that refer to each other stays in one
    /// transaction, which may then hold more.
    #[serde(default = "default_transaction_records")]
    pub transaction_records: usize,
    /// The most write transactions running their statements at once. A transaction that
    /// reaches its commit lets the next one of the batch start, so one transaction's commit
    /// overlaps others' statements and the server uses more than one core; at most twice
    /// this many are in flight. Deadlocks and other conflicts between them
    /// (`Transaction.Outdated`) are retried ([`crate::DEADLOCK_RETRIES`]).
    #[serde(default = "default_write_transactions")]
    pub write_transactions: usize,
    /// Width of the id ranges that the post-extraction work (stub removal, aggregates)
    /// processes per transaction.
    #[serde(default = "default_maintenance_id_range")]
    pub maintenance_id_range: u64,
    /// Seconds to wait for a connection, and for each answer of the server (neo4rs uses
    /// one value for both): longer than the slowest single statement.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// `neo4j`.
#[must_use]
pub fn default_username() -> String {
    "neo4j".to_owned()
}

/// 2,500 records: see the README's Neo4j section for the measurements behind it.
#[must_use]
pub fn default_transaction_records() -> usize {
    2_500
}

/// 2 transactions: see the README's Neo4j section for the measurements behind it.
#[must_use]
pub fn default_write_transactions() -> usize {
    2
}

/// To reach `write_transactions` parts, a batch is not cut into transactions smaller than
/// this: fewer than twice this many changed records make one transaction (unless
/// `transaction_records` is smaller).
pub const MIN_RECORDS_PER_TRANSACTION: usize = 250;

/// Upper bound of [`Neo4jSinkConfig::write_transactions`].
const MAX_WRITE_TRANSACTIONS: usize = 16;

/// 50,000 ids.
#[must_use]
pub fn default_maintenance_id_range() -> u64 {
    50_000
}

/// 120 seconds.
#[must_use]
pub fn default_timeout_secs() -> u64 {
    120
}

impl Neo4jSinkConfig {
    /// A configuration with defaults for everything but the server and its login.
    #[must_use]
    pub fn new(
        uri: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            uri: uri.into(),
            username: username.into(),
            password: password.into(),
            namespace: String::new(),
            transaction_records: default_transaction_records(),
            write_transactions: default_write_transactions(),
            maintenance_id_range: default_maintenance_id_range(),
            timeout_secs: default_timeout_secs(),
        }
    }

    /// Sets [`Neo4jSinkConfig::namespace`].
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets [`Neo4jSinkConfig::transaction_records`].
    #[must_use]
    pub fn transaction_records(mut self, records: usize) -> Self {
        self.transaction_records = records;
        self
    }

    /// Sets [`Neo4jSinkConfig::write_transactions`].
    #[must_use]
    pub fn write_transactions(mut self, transactions: usize) -> Self {
        self.write_transactions = transactions;
        self
    }

    /// Sets [`Neo4jSinkConfig::maintenance_id_range`].
    #[must_use]
    pub fn maintenance_id_range(mut self, ids: u64) -> Self {
        self.maintenance_id_range = ids;
        self
    }

    /// Sets [`Neo4jSinkConfig::timeout_secs`].
    #[must_use]
    pub fn timeout_secs(mut self, secs: u64) -> Self {
        self.timeout_secs = secs;
        self
    }

    /// Checks the values; returns the graph's names and the driver's configuration.
    pub(crate) fn validate(&self) -> Result<(GraphNames, neo4rs::Config), Neo4jSinkError> {
        let bad = |m: String| Err(Neo4jSinkError::Config(m));
        let names =
            GraphNames::new(&self.namespace).map_err(|e| Neo4jSinkError::Config(e.to_string()))?;
        if !(1..=100_000).contains(&self.transaction_records) {
            return bad(format!(
                "transaction_records must be 1 to 100000, not {}",
                self.transaction_records
            ));
        }
        if !(1..=MAX_WRITE_TRANSACTIONS).contains(&self.write_transactions) {
            return bad(format!(
                "write_transactions must be 1 to {MAX_WRITE_TRANSACTIONS}, not {}",
                self.write_transactions
            ));
        }
        if !(1..=10_000_000).contains(&self.maintenance_id_range) {
            return bad(format!(
                "maintenance_id_range must be 1 to 10000000, not {}",
                self.maintenance_id_range
            ));
        }
        if !self.uri.contains("://") {
            return bad(format!(
                "uri {:?} has no scheme (bolt://host:port)",
                self.uri
            ));
        }
        let config = neo4rs::ConfigBuilder::default()
            .uri(self.uri.as_str())
            .user(self.username.as_str())
            .password(self.password.as_str())
            // Hash lookups return one row per record of a batch: fetch them in one go.
            .fetch_size(default_transaction_records() * 2)
            // The concurrent write transactions, and the two halves of a hash lookup.
            .max_connections(self.write_transactions.max(2) + 2)
            .connection_timeout(Duration::from_secs(self.timeout_secs.max(1)))
            .build()
            .map_err(|e| Neo4jSinkError::Config(format!("uri {:?}: {e}", self.uri)))?;
        Ok((names, config))
    }
}

impl fmt::Debug for Neo4jSinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Neo4jSinkConfig")
            .field("uri", &self.uri)
            .field("username", &self.username)
            .field("password", &"***")
            .field("namespace", &self.namespace)
            .field("transaction_records", &self.transaction_records)
            .field("write_transactions", &self.write_transactions)
            .field("maintenance_id_range", &self.maintenance_id_range)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_config() {
        let c: Neo4jSinkConfig = serde_json::from_str(
            r#"{"uri": "bolt://127.0.0.1:7687", "password": "secret", "namespace": "T1_"}"#,
        )
        .unwrap();
        assert_eq!(c.username, "neo4j");
        assert_eq!(c.namespace, "T1_");
        assert_eq!(c.transaction_records, 2_500);
        assert_eq!(c.maintenance_id_range, 50_000);
        assert_eq!(c.timeout_secs, 120);
        assert_eq!(c.write_transactions, 2);
        let (names, _) = c.validate().unwrap();
        assert_eq!(names.artist(), "T1_Artist");
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(
            serde_json::from_str::<Neo4jSinkConfig>(r#"{"uri": "bolt://x", "nmespace": ""}"#)
                .is_err()
        );
        let base = || Neo4jSinkConfig::new("bolt://127.0.0.1:7687", "neo4j", "x");
        for c in [
            base().namespace("a`) DETACH DELETE n //"),
            base().namespace("9x"),
            base().transaction_records(0),
            base().maintenance_id_range(0),
            base().write_transactions(0),
            base().write_transactions(MAX_WRITE_TRANSACTIONS + 1),
            Neo4jSinkConfig::new("127.0.0.1:7687", "neo4j", "x"),
        ] {
            assert!(
                matches!(c.validate(), Err(Neo4jSinkError::Config(_))),
                "{c:?}"
            );
        }
    }
}
