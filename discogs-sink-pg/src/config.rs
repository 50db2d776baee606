//! [`PgSinkConfig`]: where the tables live and how the sink writes.

use std::fmt;
use std::time::Duration;

use crate::PgSinkError;

/// Configuration of a [`crate::PgSink`], validated by [`crate::PgSink::new`].
///
/// `Debug` hides the password in [`PgSinkConfig::url`].
#[derive(Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgSinkConfig {
    /// Connection URL, `postgres://user:password@host:port/database`.
    pub url: String,
    /// Schema holding the tables, created when missing (`public` by default). Letters,
    /// digits and `_`, starting with a letter or `_`, at most 63 bytes.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Connections writing in parallel: the rows of a batch that need writing are split
    /// between them, each part in its own transaction (2 uses both cores of a small server).
    #[serde(default = "default_streams")]
    pub streams: usize,
    /// The largest fraction of a table a purge may delete (0.0–1.0); above it the purge
    /// is refused.
    #[serde(default = "default_max_purge_fraction")]
    pub max_purge_fraction: f64,
    /// Seconds to wait for a connection before giving up (a retriable error).
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// The `application_name` of the sink's connections, as `pg_stat_activity` shows it
    /// (`discogs-sink-pg` by default; a service sets its own name).
    #[serde(default = "default_application_name")]
    pub application_name: String,
}

/// `public`.
#[must_use]
pub fn default_schema() -> String {
    "public".to_owned()
}

/// 2.
#[must_use]
pub fn default_streams() -> usize {
    2
}

/// 0.1: a monthly dump never removes a tenth of a table.
#[must_use]
pub fn default_max_purge_fraction() -> f64 {
    0.1
}

/// 10 seconds.
#[must_use]
pub fn default_connect_timeout_secs() -> u64 {
    10
}

/// `discogs-sink-pg`.
#[must_use]
pub fn default_application_name() -> String {
    "discogs-sink-pg".to_owned()
}

impl PgSinkConfig {
    /// A configuration with defaults for everything but the URL.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: default_schema(),
            streams: default_streams(),
            max_purge_fraction: default_max_purge_fraction(),
            connect_timeout_secs: default_connect_timeout_secs(),
            application_name: default_application_name(),
        }
    }

    /// Sets [`PgSinkConfig::schema`].
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets [`PgSinkConfig::streams`].
    #[must_use]
    pub fn streams(mut self, streams: usize) -> Self {
        self.streams = streams;
        self
    }

    /// Sets [`PgSinkConfig::application_name`].
    #[must_use]
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Sets [`PgSinkConfig::max_purge_fraction`].
    #[must_use]
    pub fn max_purge_fraction(mut self, fraction: f64) -> Self {
        self.max_purge_fraction = fraction;
        self
    }

    /// The URL with its password replaced by `***`.
    #[must_use]
    pub fn redacted_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &self.url[scheme + 3..at];
                match userinfo.find(':') {
                    Some(colon) => format!(
                        "{}{}:***{}",
                        &self.url[..scheme + 3],
                        &userinfo[..colon],
                        &self.url[at..]
                    ),
                    None => self.url.clone(),
                }
            }
            _ => self.url.clone(),
        }
    }

    /// Checks the values and parses the URL into a driver configuration.
    pub(crate) fn validate(&self) -> Result<tokio_postgres::Config, PgSinkError> {
        let bad = |m: String| Err(PgSinkError::Config(m));
        if !is_identifier(&self.schema) {
            return bad(format!(
                "schema {:?} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)",
                self.schema
            ));
        }
        if !(1..=16).contains(&self.streams) {
            return bad(format!("streams must be 1 to 16, not {}", self.streams));
        }
        if !(0.0..=1.0).contains(&self.max_purge_fraction) {
            return bad(format!(
                "max_purge_fraction must be between 0 and 1, not {}",
                self.max_purge_fraction
            ));
        }
        let mut pg: tokio_postgres::Config = self
            .url
            .parse()
            .map_err(|e| PgSinkError::Config(format!("url {}: {e}", self.redacted_url())))?;
        pg.connect_timeout(Duration::from_secs(self.connect_timeout_secs.max(1)));
        pg.application_name(&self.application_name);
        Ok(pg)
    }
}

impl fmt::Debug for PgSinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSinkConfig")
            .field("url", &self.redacted_url())
            .field("schema", &self.schema)
            .field("streams", &self.streams)
            .field("max_purge_fraction", &self.max_purge_fraction)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("application_name", &self.application_name)
            .finish()
    }
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_config() {
        let c: PgSinkConfig = serde_json::from_str(
            r#"{"url": "postgres://u:secret@127.0.0.1:5432/db", "schema": "discogs"}"#,
        )
        .unwrap();
        assert_eq!(c.schema, "discogs");
        assert_eq!(c.streams, 2);
        assert!((c.max_purge_fraction - 0.1).abs() < f64::EPSILON);
        assert_eq!(c.connect_timeout_secs, 10);
        assert_eq!(c.application_name, "discogs-sink-pg");
        c.validate().unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("u:***@127.0.0.1"), "{debug}");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(
            serde_json::from_str::<PgSinkConfig>(r#"{"url": "postgres://x", "tabel": 1}"#).is_err()
        );
        for c in [
            PgSinkConfig::new("postgres://x/y").schema("a; DROP TABLE x"),
            PgSinkConfig::new("postgres://x/y").schema("1abc"),
            PgSinkConfig::new("postgres://x/y").streams(0),
            PgSinkConfig::new("postgres://x/y").max_purge_fraction(1.5),
            PgSinkConfig::new("not a url at all ://"),
        ] {
            assert!(matches!(c.validate(), Err(PgSinkError::Config(_))), "{c:?}");
        }
    }
}
