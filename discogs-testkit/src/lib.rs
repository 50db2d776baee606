//! Test support for the discogsography workspace.
//!
//! Tests that need PostgreSQL, RabbitMQ, Redis or Neo4j talk to real servers. `scripts/services up`
//! starts all four on 127.0.0.1 and `scripts/services env` prints the variables read here; `scripts/test`
//! (the project's test command, also run by CI) does both before `cargo test`.
//!
//! | service | variable | default |
//! |---|---|---|
//! | PostgreSQL | `DISCOGS_TEST_PG_URL` | `postgres://discogsography:discogsography@127.0.0.1:5432/discogsography` |
//! | RabbitMQ | `AMQP_ADDR` | `amqp://discogsography:discogsography@127.0.0.1:5672/%2f` |
//! | Redis | `REDIS_TEST_URL` | `redis://127.0.0.1:6379/0` |
//! | Neo4j | `NEO4J_TEST_URI` (+ `NEO4J_USERNAME`, `NEO4J_PASSWORD`) | `bolt://127.0.0.1:7687` (`neo4j`, `discogsography`) |
//!
//! [`require`] resolves a service's [`Config`] and checks that its port answers. When it does not, the
//! test is skipped with a reason printed to stderr (visible even though libtest captures output), unless
//! `CI=true`, where a missing service is a failure: CI never skips silently.
//!
//! ```no_run
//! use discogs_testkit::{require, Scope, Service};
//!
//! #[test]
//! fn writes_rows() {
//!     let Some(pg) = require(Service::Postgres) else { return };
//!     let scope = Scope::new("writes_rows");
//!     // connect to pg.url(), CREATE SCHEMA scope.schema(), ... DROP SCHEMA ... CASCADE
//! #   let _ = (pg, scope);
//! }
//! ```
//!
//! Each test isolates itself with a [`Scope`]: a unique id from which schema, database, queue prefix,
//! Neo4j label and Redis key names are derived, so tests can run in parallel, and again, on the same servers.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long [`require`] waits for a service's TCP port to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// One of the servers the workspace's tests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// PostgreSQL, through `DISCOGS_TEST_PG_URL`.
    Postgres,
    /// RabbitMQ (AMQP 0-9-1), through `AMQP_ADDR`.
    RabbitMq,
    /// Redis, through `REDIS_TEST_URL`.
    Redis,
    /// Neo4j over Bolt, through `NEO4J_TEST_URI`, `NEO4J_USERNAME` and `NEO4J_PASSWORD`.
    Neo4j,
}

impl Service {
    /// Every service, in the order `scripts/services` starts them.
    pub const ALL: [Service; 4] = [
        Service::Postgres,
        Service::RabbitMq,
        Service::Redis,
        Service::Neo4j,
    ];

    /// Human-readable name, e.g. `PostgreSQL`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "PostgreSQL",
            Service::RabbitMq => "RabbitMQ",
            Service::Redis => "Redis",
            Service::Neo4j => "Neo4j",
        }
    }

    /// The environment variable holding the service's URL.
    pub fn url_var(self) -> &'static str {
        match self {
            Service::Postgres => "DISCOGS_TEST_PG_URL",
            Service::RabbitMq => "AMQP_ADDR",
            Service::Redis => "REDIS_TEST_URL",
            Service::Neo4j => "NEO4J_TEST_URI",
        }
    }

    /// The URL used when [`Service::url_var`] is unset: what `scripts/services up` starts by default.
    pub fn default_url(self) -> &'static str {
        match self {
            Service::Postgres => {
                "postgres://discogsography:discogsography@127.0.0.1:5432/discogsography"
            }
            Service::RabbitMq => "amqp://discogsography:discogsography@127.0.0.1:5672/%2f",
            Service::Redis => "redis://127.0.0.1:6379/0",
            Service::Neo4j => "bolt://127.0.0.1:7687",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Service::Postgres => 5432,
            Service::RabbitMq => 5672,
            Service::Redis => 6379,
            Service::Neo4j => 7687,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a service is and how to log in, resolved from the environment by [`Config::from_env`].
///
/// `Debug` and [`Config::redacted_url`] never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    service: Service,
    url: String,
    from_env: bool,
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
    path: Option<String>,
}

impl Config {
    /// Resolves `service` from its variable ([`Service::url_var`]) or its default URL. Does no I/O.
    ///
    /// For Neo4j the credentials come from `NEO4J_USERNAME` / `NEO4J_PASSWORD` (defaults `neo4j` /
    /// `discogsography`) unless the URI carries them.
    pub fn from_env(service: Service) -> Result<Config, ConfigError> {
        let (url, from_env) = match std::env::var(service.url_var()) {
            Ok(url) if !url.trim().is_empty() => (url.trim().to_owned(), true),
            _ => (service.default_url().to_owned(), false),
        };
        let mut config = Config::parse(service, &url)?;
        config.from_env = from_env;
        if service == Service::Neo4j {
            if config.username.is_none() {
                config.username = Some(env_or("NEO4J_USERNAME", "neo4j"));
            }
            if config.password.is_none() {
                config.password = Some(env_or("NEO4J_PASSWORD", "discogsography"));
            }
        }
        Ok(config)
    }

    /// Parses `url` (`scheme://[user[:password]@]host[:port][/path]`) as the address of `service`.
    pub fn parse(service: Service, url: &str) -> Result<Config, ConfigError> {
        let err = |reason: &str| ConfigError {
            service,
            url: redact(url),
            reason: reason.to_owned(),
        };
        let (_scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| err("missing `scheme://`"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
                None => (Some(percent_decode(info)), None),
            },
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| err("unclosed `[`"))?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(err("no host"));
        }
        let port = match port {
            None | Some("") => service.default_port(),
            Some(p) => p.parse().map_err(|_| err("port is not a number"))?,
        };
        let path = path.split('?').next().unwrap_or("").trim_start_matches('/');
        Ok(Config {
            service,
            url: url.to_owned(),
            from_env: false,
            host: host.to_owned(),
            port,
            username,
            password,
            path: (!path.is_empty()).then(|| percent_decode(path)),
        })
    }

    /// The service this configuration points at.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The URL exactly as configured, credentials included: hand it to the client library.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with the password replaced by `***`, for messages.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// Whether the URL came from the environment (`true`) or is the default (`false`).
    pub fn from_env_var(&self) -> bool {
        self.from_env
    }

    /// Host name or IP address (without brackets for IPv6).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port (the service's standard port when the URL has none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, the form of `POSTGRES_ADDRESS`.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// User name, if any.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Password, if any.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The URL's path without its leading `/`, percent-decoded: the PostgreSQL database, the AMQP
    /// virtual host (`/` for `%2f`) or the Redis database number.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Checks that the service's TCP port accepts a connection within [`CONNECT_TIMEOUT`].
    pub fn probe(&self) -> Result<(), String> {
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?;
        let mut last = format!("{} resolves to no address", self.host);
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("service", &self.service)
            .field("url", &self.redacted_url())
            .field("from_env", &self.from_env)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("path", &self.path)
            .finish()
    }
}

/// A service URL that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    service: Service,
    url: String,
    reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} URL `{}` (from {} or its default) is invalid: {}",
            self.service,
            self.url,
            self.service.url_var(),
            self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

/// Whether this is a CI run: `CI` is `true` or `1` (any case). Then a missing service fails the test.
pub fn is_ci() -> bool {
    std::env::var("CI")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1"))
        .unwrap_or(false)
}

/// The configuration of `service` if it is reachable; otherwise prints why the calling test is
/// skipped and returns `None`.
///
/// # Panics
///
/// When `CI=true` and the service is not reachable (CI never skips a test silently), and always when
/// the configured URL cannot be parsed.
pub fn require(service: Service) -> Option<Config> {
    let config = match Config::from_env(service) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    };
    match config.probe() {
        Ok(()) => Some(config),
        Err(reason) => {
            let origin = if config.from_env {
                format!("from {}", service.url_var())
            } else {
                format!("{} unset, default", service.url_var())
            };
            let message = format!(
                "{service} is not reachable at {} ({origin}): {reason}. \
                 Start the local services with `scripts/services up` and `eval \"$(scripts/services env)\"`, \
                 or point {} at a server.",
                config.address(),
                service.url_var()
            );
            if is_ci() {
                panic!("CI=true: {message}");
            }
            skip(&message);
            None
        }
    }
}

/// The real dump excerpts: `../shared/fixtures` beside the project (see its `PROVENANCE.md`),
/// or `None` after printing why the calling test is skipped.
///
/// # Panics
///
/// When `CI=true` and the folder is missing (CI never skips a test silently).
pub fn shared_fixtures() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    if dir.is_dir() {
        return Some(dir);
    }
    let message = format!("the real dump fixtures are missing at {}", dir.display());
    if is_ci() {
        panic!("CI=true: {message}");
    }
    skip(&message);
    None
}

/// S3 bucket listings kept beside the dumps in the fixtures: XML, but not dumps.
const LISTINGS: [&str; 2] = ["DiscogsDataDump.xml", "data.xml"];

/// Every dump file (`.xml`, `.xml.gz`) below `dir`, sorted, without the S3 listings that
/// sit beside the real fixtures.
pub fn dump_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if path.is_dir() {
                walk(&path, out);
            } else if (name.ends_with(".xml") || name.ends_with(".xml.gz"))
                && !LISTINGS.contains(&name.as_str())
            {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Every record of a dump file with its hash, skipping bad records and stopping at a fatal
/// error (as for the truncated excerpt), and the file's kind.
///
/// # Panics
///
/// When the file cannot be opened or is not a dump.
pub fn read_records(
    path: &std::path::Path,
) -> (
    discogs_model::RecordKind,
    Vec<discogs_model::SinkRecord<'static>>,
) {
    use discogs_parse::{DumpReader, Error, ReadOptions};
    let mut reader = DumpReader::open_with(path, ReadOptions::default().max_errors(None))
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let kind = reader.kind();
    let mut out = Vec::new();
    while let Some(item) = reader.next_record() {
        match item {
            Ok(p) => {
                let p = p.into_owned();
                out.push(discogs_model::SinkRecord {
                    record: p.record,
                    hash: p.hash,
                });
            }
            Err(Error::Record(_)) => {}
            Err(_) => break,
        }
    }
    (kind, out)
}

/// Writes `records` into `sink` in batches of `batch`, summing the outcomes.
///
/// # Panics
///
/// On the first error, with it.
pub async fn load<S: discogs_model::Sink>(
    sink: &mut S,
    kind: discogs_model::RecordKind,
    records: &[discogs_model::SinkRecord<'_>],
    batch: usize,
) -> discogs_model::SinkOutcome {
    let mut total = discogs_model::SinkOutcome::default();
    for chunk in records.chunks(batch.max(1)) {
        total += sink
            .write_batch(kind, chunk)
            .await
            .unwrap_or_else(|e| panic!("write_batch: {e:?}"));
    }
    total
}

/// Prints `skipped <test>: <reason>` to the process's stderr, past libtest's output capture, so the
/// reason shows in a plain `cargo test` run.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("test");
    // Written to the stream itself (`eprintln!` output of a passing test would be captured and lost),
    // in one write so the line does not interleave with libtest's own output.
    let line = format!("\nskipped {test}: {reason}\n");
    // A closed stderr leaves nothing better to do than to go on.
    std::io::stderr()
        .lock()
        .write_all(line.as_bytes())
        .unwrap_or(());
}

/// A suffix unique to this call, machine-wide: `[0-9a-z]`, at most 20 characters. Built from the
/// process id, a per-process counter and random bits, so parallel tests, parallel test binaries and
/// repeated runs never collide.
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(count);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(nanos);
    let random = hasher.finish() % 36u64.pow(7);
    format!(
        "{}{}{}",
        base36(u64::from(std::process::id())),
        base36(count),
        base36(random)
    )
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[usize::try_from(n % 36).unwrap_or(0)]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The isolation unit of one test: a unique id and the names derived from it.
///
/// Every name is made of `[a-z0-9_]` (the label also has capitals), starts with a letter and fits
/// PostgreSQL's 63-byte identifier limit, so it can be used unquoted in SQL and Cypher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    id: String,
}

impl Scope {
    /// A new scope for the test named `tag` (only its first 24 letters, digits and `_` are kept).
    pub fn new(tag: &str) -> Scope {
        let mut clean: String = tag
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(24)
            .collect();
        if clean.is_empty() {
            clean.push('t');
        }
        Scope {
            id: format!("{clean}_{}", unique_suffix()),
        }
    }

    /// The scope's id: `<tag>_<unique suffix>`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A PostgreSQL schema name: `test_<id>`. Create it, `SET search_path`, drop it with `CASCADE`.
    pub fn schema(&self) -> String {
        format!("test_{}", self.id)
    }

    /// A PostgreSQL database name, for tests that need a whole database: `testdb_<id>`.
    pub fn database(&self) -> String {
        format!("testdb_{}", self.id)
    }

    /// A prefix for exchanges and queues, in place of the default `discogsography`: `test_<id>`.
    pub fn queue_prefix(&self) -> String {
        format!("test_{}", self.id)
    }

    /// A Neo4j label to put on every node the test creates (besides `Artist` etc.), so it can match
    /// and `DETACH DELETE` exactly its own nodes: `Test_<id>`.
    pub fn label(&self) -> String {
        format!("Test_{}", self.id)
    }

    /// A Redis key in the scope's namespace: `test:<id>:<name>`.
    pub fn key(&self, name: &str) -> String {
        format!("test:{}:{name}", self.id)
    }
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults() {
        let pg = Config::parse(Service::Postgres, Service::Postgres.default_url()).unwrap();
        assert_eq!(pg.host(), "127.0.0.1");
        assert_eq!(pg.port(), 5432);
        assert_eq!(pg.username(), Some("discogsography"));
        assert_eq!(pg.password(), Some("discogsography"));
        assert_eq!(pg.path(), Some("discogsography"));
        assert_eq!(pg.address(), "127.0.0.1:5432");

        let amqp = Config::parse(Service::RabbitMq, Service::RabbitMq.default_url()).unwrap();
        assert_eq!(amqp.port(), 5672);
        assert_eq!(amqp.path(), Some("/"));

        let redis = Config::parse(Service::Redis, Service::Redis.default_url()).unwrap();
        assert_eq!(
            (redis.port(), redis.username(), redis.path()),
            (6379, None, Some("0"))
        );

        let neo = Config::parse(Service::Neo4j, Service::Neo4j.default_url()).unwrap();
        assert_eq!(
            (neo.host(), neo.port(), neo.path()),
            ("127.0.0.1", 7687, None)
        );
    }

    #[test]
    fn parses_odd_urls() {
        let c = Config::parse(Service::Redis, "redis://:p%40ss@[::1]/3?x=y").unwrap();
        assert_eq!(c.host(), "::1");
        assert_eq!(c.port(), 6379);
        assert_eq!(c.username(), Some(""));
        assert_eq!(c.password(), Some("p@ss"));
        assert_eq!(c.path(), Some("3"));
        assert_eq!(c.address(), "[::1]:6379");
        assert!(Config::parse(Service::Redis, "127.0.0.1:6379").is_err());
        assert!(Config::parse(Service::Redis, "redis://h:port/").is_err());
        assert!(Config::parse(Service::Redis, "redis:///0").is_err());
    }

    #[test]
    fn never_shows_the_password() {
        let c = Config::parse(Service::Postgres, "postgres://u:secret@h:1/db").unwrap();
        assert_eq!(c.redacted_url(), "postgres://u:***@h:1/db");
        assert!(!format!("{c:?}").contains("secret"));
        let e = Config::parse(Service::Postgres, "postgres://u:secret@h:x/db").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn scope_names_are_unique_and_valid_identifiers() {
        let a = Scope::new("My Test-Name::with stuff");
        let b = Scope::new("My Test-Name::with stuff");
        assert_ne!(a, b);
        for name in [a.schema(), a.database(), a.queue_prefix(), a.label()] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.starts_with(|c: char| c.is_ascii_alphabetic()),
                "{name}"
            );
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
        }
        assert!(a.id().starts_with("mytestnamewithstuff_"), "{}", a.id());
        assert!(a.key("k").starts_with("test:mytestnamewithstuff_"));
        assert!(Scope::new("").id().starts_with("t_"));
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert!(unique_suffix().len() <= 20);
    }
}
