//! Configuration shared by the services: flags that also read the environment variables
//! of the original system (`AMQP_CONNECTION`, `LOG_LEVEL`, ...), and secrets that are never
//! printed.
//!
//! Each service flattens the groups it needs into its own `clap` parser:
//!
//! ```
//! use clap::Parser;
//! use discogs_apps::config::{AmqpArgs, ServiceArgs};
//!
//! #[derive(Debug, Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     service: ServiceArgs,
//!     #[command(flatten)]
//!     amqp: AmqpArgs,
//! }
//!
//! let args = Args::parse_from(["svc", "--health-port", "9000",
//!     "--amqp-connection", "amqp://user:hunter2@127.0.0.1:5672/%2f"]);
//! assert_eq!(args.service.health_port, 9000);
//! assert!(!format!("{args:?}").contains("hunter2"));
//! ```

use std::fmt;
use std::str::FromStr;

/// A value that must not appear in logs: `Debug` and `Display` print `***`, or, for a URL,
/// the URL with its password replaced by `***`. [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (a connection).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value with any password hidden: URLs keep scheme, user, host and path.
    #[must_use]
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?})", self.redacted())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Parses `BUS_COMPRESSION` (`none` or `lz4`) for clap.
///
/// # Errors
///
/// The message of [`discogs_bus::Compression::from_name`].
pub fn parse_compression(value: &str) -> Result<discogs_bus::Compression, String> {
    discogs_bus::Compression::from_name(value).map_err(|e| e.to_string())
}

/// `scheme://user:password@host/...` → `scheme://user:***@host/...`; anything that is not
/// such a URL becomes `***` entirely (it may be a bare password).
#[must_use]
pub fn redact_url(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else {
        return if value.is_empty() {
            String::new()
        } else {
            "***".into()
        };
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***{host}{tail}")
            } else {
                format!("{scheme}://{user}{host}{tail}")
            }
        }
        None => value.to_owned(),
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per event (for log collectors).
    Json,
}

/// Flags every service has: its health/metrics port and logging.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// Port of the health and metrics server (`GET /health`, `GET /metrics`).
    #[arg(long, env = "HEALTH_PORT", default_value_t = 8000)]
    pub health_port: u16,
    /// Address the health server (and a web service's pages) binds to: loopback by
    /// default, so nothing is reachable from other machines unless asked for; set
    /// `0.0.0.0` in a container or to serve the network.
    #[arg(long, env = "HEALTH_BIND", default_value = "127.0.0.1")]
    pub health_bind: std::net::IpAddr,
    /// Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL (as the original system), or a
    /// `tracing` filter such as `info,discogs_apps=debug`. `RUST_LOG`, when set, wins.
    #[arg(long, env = "LOG_LEVEL", default_value = "INFO")]
    pub log_level: String,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl ServiceArgs {
    /// The socket address of the health server.
    #[must_use]
    pub fn health_addr(&self) -> std::net::SocketAddr {
        (self.health_bind, self.health_port).into()
    }
}

/// Where the message broker is, and the names on it.
#[derive(Debug, Clone, clap::Args)]
pub struct AmqpArgs {
    /// AMQP URL of RabbitMQ, e.g. `amqp://user:password@host:5672/%2f`. Never logged with
    /// its password.
    #[arg(
        long,
        env = "AMQP_CONNECTION",
        default_value = "amqp://discogsography:discogsography@127.0.0.1:5672/%2f",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub amqp_connection: Secret,
    /// Prefix of the exchanges and queues (`{prefix}-releases`, ...).
    #[arg(
        long,
        env = "DISCOGS_EXCHANGE_PREFIX",
        default_value = "discogsography"
    )]
    pub exchange_prefix: String,
}

/// Where the graph database is (the graphinator's and the one-process pipeline's flags).
#[derive(Debug, Clone, clap::Args)]
pub struct Neo4jArgs {
    /// Neo4j Bolt URI.
    #[arg(long, env = "NEO4J_ADDRESS", default_value = "bolt://127.0.0.1:7687")]
    pub neo4j_address: String,
    /// Neo4j user.
    #[arg(long, env = "NEO4J_USERNAME", default_value = "neo4j")]
    pub neo4j_username: String,
    /// Neo4j password (never logged).
    #[arg(
        long,
        env = "NEO4J_PASSWORD",
        default_value = "discogsography",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub neo4j_password: Secret,
    /// Prefix of every label and schema name (empty in production; tests use their own).
    #[arg(long, env = "NEO4J_NAMESPACE", default_value = "")]
    pub neo4j_namespace: String,
}

impl Neo4jArgs {
    /// The sink's configuration.
    #[must_use]
    pub fn sink_config(&self) -> discogs_sink_neo4j::Neo4jSinkConfig {
        discogs_sink_neo4j::Neo4jSinkConfig::new(
            &self.neo4j_address,
            &self.neo4j_username,
            self.neo4j_password.expose(),
        )
        .namespace(&self.neo4j_namespace)
    }
}

/// How to reach the relational database (server, user, password, database): every
/// service that reads or writes PostgreSQL takes these flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PgConnectionArgs {
    /// PostgreSQL `host:port`.
    #[arg(long, env = "POSTGRES_ADDRESS", default_value = "127.0.0.1:5432")]
    pub postgres_address: String,
    /// PostgreSQL user.
    #[arg(long, env = "POSTGRES_USERNAME", default_value = "discogsography")]
    pub postgres_username: String,
    /// PostgreSQL password (never logged).
    #[arg(
        long,
        env = "POSTGRES_PASSWORD",
        default_value = "discogsography",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub postgres_password: Secret,
    /// PostgreSQL database.
    #[arg(long, env = "POSTGRES_DATABASE", default_value = "discogsography")]
    pub postgres_database: String,
}

impl PgConnectionArgs {
    /// The connection URL (with the password: never log it, log
    /// `PgSinkConfig::redacted_url`).
    #[must_use]
    pub fn url(&self) -> String {
        format!(
            "postgres://{}:{}@{}/{}",
            url_encode(&self.postgres_username),
            url_encode(self.postgres_password.expose()),
            self.postgres_address,
            url_encode(&self.postgres_database),
        )
    }

    /// A `tokio_postgres` configuration of these flags (`host[:port]`, `[v6]:port`).
    ///
    /// # Errors
    ///
    /// When the address's port is not a number.
    pub fn tokio_config(&self) -> anyhow::Result<tokio_postgres::Config> {
        let (host, port) = crate::dashboard::split_host_port(&self.postgres_address, 5432)
            .map_err(|e| anyhow::anyhow!("POSTGRES_ADDRESS {:?}: {e:#}", self.postgres_address))?;
        let mut config = tokio_postgres::Config::new();
        config
            .host(&host)
            .port(port)
            .user(&self.postgres_username)
            .password(self.postgres_password.expose())
            .dbname(&self.postgres_database);
        Ok(config)
    }

    /// The host part of the address (for messages).
    #[must_use]
    pub fn host(&self) -> &str {
        self.postgres_address
            .rsplit_once(':')
            .map_or(self.postgres_address.as_str(), |(host, _)| host)
    }
}

/// Where the tables are written (the tableinator's and the one-process pipeline's flags):
/// the connection, the schema and the connections per kind.
#[derive(Debug, Clone, clap::Args)]
pub struct PostgresArgs {
    /// Server, user, password, database.
    #[command(flatten)]
    pub connection: PgConnectionArgs,
    /// Schema of the tables.
    #[arg(long, env = "POSTGRES_SCHEMA", default_value_t = discogs_sink_pg::default_schema())]
    pub postgres_schema: String,
    /// Connections per kind (each kind has its own sink).
    #[arg(long, env = "POSTGRES_STREAMS", default_value_t = 1)]
    pub postgres_streams: usize,
    /// Load a kind whose table is empty in first-load mode: rows copied straight in,
    /// secondary indexes built when the kind's file is complete (`false`: always upsert
    /// into the indexed table).
    #[arg(long, env = "POSTGRES_FIRST_LOAD", default_value_t = true, action = clap::ArgAction::Set)]
    pub postgres_first_load: bool,
}

impl PostgresArgs {
    /// The connection URL (see [`PgConnectionArgs::url`]).
    #[must_use]
    pub fn url(&self) -> String {
        self.connection.url()
    }

    /// The sink's configuration, connecting as `application_name`.
    #[must_use]
    pub fn sink_config(&self, application_name: &str) -> discogs_sink_pg::PgSinkConfig {
        discogs_sink_pg::PgSinkConfig::new(self.url())
            .schema(&self.postgres_schema)
            .streams(self.postgres_streams.max(1))
            .application_name(application_name)
    }
}

/// `%`-encodes a URL user or password.
#[must_use]
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Both {
        #[command(flatten)]
        service: ServiceArgs,
        #[command(flatten)]
        amqp: AmqpArgs,
    }

    #[test]
    fn parse_config() {
        let args = Both::parse_from([
            "x",
            "--log-level",
            "DEBUG",
            "--log-format",
            "json",
            "--exchange-prefix",
            "p",
        ]);
        assert_eq!(args.service.log_level, "DEBUG");
        assert_eq!(args.service.log_format, LogFormat::Json);
        assert_eq!(args.amqp.exchange_prefix, "p");
        assert_eq!(args.service.health_addr().port(), 8000);
    }

    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("amqp://guest:s3cr%40t@host:5672/%2f");
        assert_eq!(s.to_string(), "amqp://guest:***@host:5672/%2f");
        assert!(!format!("{s:?}").contains("s3cr"));
        assert_eq!(s.expose(), "amqp://guest:s3cr%40t@host:5672/%2f");
        assert_eq!(Secret::new("hunter2").to_string(), "***");
        assert_eq!(
            redact_url("amqp://user@host/vh"),
            "amqp://user@host/vh",
            "no password, nothing to hide"
        );
        assert_eq!(redact_url("http://a:b@c@d/x"), "http://a:***@d/x");
    }
}
