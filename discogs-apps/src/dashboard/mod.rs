//! The dashboard service (port 8003): a live view of the whole pipeline.
//!
//! Every two seconds a [`collect::Collector`] reads, all at once and each within the same
//! time limit, every service's `/health`, RabbitMQ's management API, PostgreSQL, Neo4j and
//! Redis, and makes one [`snapshot::Snapshot`]. A [`hub::Hub`] hands it to every WebSocket
//! client (`/ws`) and to `/api/metrics`; the page (`web/dashboard/`, built into the
//! binary) draws it. A source that does not answer is shown as down with its error, never
//! as zeros.
//!
//! | module | job |
//! |---|---|
//! | [`snapshot`] | the JSON shape of a reading |
//! | [`collect`] | reading every source concurrently, rates, the activity log |
//! | [`services`] | reading one service's `/health` |
//! | [`rabbitmq`] | queues and dead-letter queues from the management API |
//! | [`mod@postgres`], [`neo4j`], [`mod@redis`] | the stores' figures |
//! | [`hub`] | fan-out to WebSocket clients; slow clients are dropped, never waited for |
//! | [`web`] | the routes |
//! | [`http`] | the small HTTP client the readings use |
//!
//! ```no_run
//! use clap::Parser as _;
//! use discogs_apps::dashboard::{self, DashboardArgs};
//! use discogs_apps::shutdown::Shutdown;
//!
//! # async fn example() -> anyhow::Result<()> {
//! let args = DashboardArgs::parse_from(["dashboard", "--health-port", "8003"]);
//! let shutdown = Shutdown::new();
//! shutdown.listen_for_signals();
//! dashboard::run(args, shutdown).await?;
//! # Ok(()) }
//! ```

pub mod collect;
pub mod http;
pub mod hub;
pub mod neo4j;
pub mod postgres;
pub mod rabbitmq;
pub mod redis;
pub mod services;
pub mod snapshot;
pub mod web;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Map, Value};

use crate::config::{AmqpArgs, Neo4jArgs, PgConnectionArgs, Secret, ServiceArgs};
use crate::health::{self, Status};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use collect::{Collector, CollectorConfig};
use hub::Hub;
use services::ServiceTarget;

/// The services watched by default: the ports of the pipeline on this machine.
pub const DEFAULT_SERVICES: &str = "extractor=http://127.0.0.1:8000/health,\
graphinator=http://127.0.0.1:8001/health,tableinator=http://127.0.0.1:8002/health,\
explore=http://127.0.0.1:8007/health";

/// The dashboard's flags and environment variables (the original system's names where it
/// had one).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "dashboard",
    version,
    about = "Live view of the pipeline: services' health, queues, databases, over WebSocket (port 8003).",
    mut_arg("health_port", |a| a.default_value("8003")
        .help("Port of the dashboard: the page, /ws, /api/*, /health and /metrics."))
)]
pub struct DashboardArgs {
    /// Port, bind address and logging.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The broker: its credentials and virtual host serve for the management API, its
    /// prefix names the queues watched.
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// RabbitMQ's management API.
    #[arg(
        long,
        env = "RABBITMQ_MANAGEMENT_URL",
        default_value = "http://127.0.0.1:15672"
    )]
    pub rabbitmq_management_url: String,
    /// User for the management API (default: the user of AMQP_CONNECTION).
    #[arg(long, env = "RABBITMQ_USERNAME")]
    pub rabbitmq_username: Option<String>,
    /// Password for the management API (default: the password of AMQP_CONNECTION).
    #[arg(long, env = "RABBITMQ_PASSWORD", hide_env_values = true)]
    pub rabbitmq_password: Option<Secret>,
    /// Read a few messages of non-empty dead-letter queues to show why they are there,
    /// when that cannot lose them (see `dashboard::rabbitmq`).
    #[arg(long, env = "DASHBOARD_DLQ_PEEK", default_value_t = true, action = clap::ArgAction::Set)]
    pub dlq_peek: bool,
    /// Where PostgreSQL is.
    #[command(flatten)]
    pub postgres: PgConnectionArgs,
    /// Schemas whose tables are listed (comma-separated).
    #[arg(
        long,
        env = "DASHBOARD_POSTGRES_SCHEMAS",
        value_delimiter = ',',
        default_value = "public"
    )]
    pub postgres_schemas: Vec<String>,
    /// Where Neo4j is, and the namespace of the graph shown (its six labels and the
    /// relationships that start at them).
    #[command(flatten)]
    pub neo4j: Neo4jArgs,
    /// Redis URL (may carry a password: never printed).
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379/0",
        hide_env_values = true
    )]
    pub redis_url: Secret,
    /// Services to watch, `name=url-of-its-/health`, comma-separated or repeated.
    #[arg(
        long = "service",
        env = "DASHBOARD_SERVICES",
        value_delimiter = ',',
        default_value = DEFAULT_SERVICES
    )]
    pub services: Vec<ServiceTarget>,
    /// Milliseconds between two collections.
    #[arg(long, env = "DASHBOARD_INTERVAL_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub interval_ms: u64,
    /// Milliseconds each source has to answer (less than the interval); a slower source is
    /// shown as down.
    #[arg(long, env = "DASHBOARD_SOURCE_TIMEOUT_MS", default_value_t = 1500,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub source_timeout_ms: u64,
    /// Milliseconds a WebSocket send may take before the client is dropped as too slow.
    #[arg(long, env = "DASHBOARD_WS_SEND_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub ws_send_timeout_ms: u64,
    /// Minutes of history kept for the charts.
    #[arg(long, env = "DASHBOARD_HISTORY_MINUTES", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub history_minutes: u64,
}

impl DashboardArgs {
    /// What the collector reads.
    ///
    /// # Errors
    ///
    /// When the timeout is not below the interval, or an address cannot be understood.
    pub fn collector_config(&self) -> anyhow::Result<CollectorConfig> {
        anyhow::ensure!(
            self.source_timeout_ms < self.interval_ms,
            "--source-timeout-ms ({}) must be below --interval-ms ({}): a collection must end before the next",
            self.source_timeout_ms,
            self.interval_ms
        );
        let amqp = AmqpUrl::parse(self.amqp.amqp_connection.expose());
        let user = self
            .rabbitmq_username
            .clone()
            .or(amqp.user)
            .unwrap_or_else(|| "guest".into());
        let password = self
            .rabbitmq_password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .or(amqp.password)
            .unwrap_or_else(|| "guest".into());
        let mut postgres = self.postgres.tokio_config()?;
        postgres.connect_timeout(Duration::from_millis(self.source_timeout_ms));
        Ok(CollectorConfig {
            services: self.services.clone(),
            rabbitmq: rabbitmq::RabbitTarget {
                base_url: self
                    .rabbitmq_management_url
                    .trim_end_matches('/')
                    .to_owned(),
                auth: http::BasicAuth::new(user, password),
                vhost: amqp.vhost,
                prefix: self.amqp.exchange_prefix.clone(),
                peek_dead_letters: self.dlq_peek,
            },
            postgres,
            postgres_schemas: self.postgres_schemas.clone(),
            neo4j: neo4j::NeoTarget {
                uri: self.neo4j.neo4j_address.clone(),
                user: self.neo4j.neo4j_username.clone(),
                password: self.neo4j.neo4j_password.expose().to_owned(),
                names: discogs_sink_neo4j::GraphNames::new(&self.neo4j.neo4j_namespace)
                    .with_context(|| format!("NEO4J_NAMESPACE {:?}", self.neo4j.neo4j_namespace))?,
            },
            redis_url: self.redis_url.expose().to_owned(),
            interval: Duration::from_millis(self.interval_ms),
            timeout: Duration::from_millis(self.source_timeout_ms),
        })
    }

    /// Points kept for the charts.
    #[must_use]
    pub fn history_len(&self) -> usize {
        usize::try_from(self.history_minutes * 60_000 / self.interval_ms.max(1)).unwrap_or(1)
    }
}

/// The parts of an AMQP URL the management API needs.
#[derive(Debug, PartialEq, Eq)]
struct AmqpUrl {
    user: Option<String>,
    password: Option<String>,
    /// Percent-encoded, ready for a URL path (`%2F` for the default `/`).
    vhost: String,
}

impl AmqpUrl {
    fn parse(url: &str) -> Self {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, password) = match authority.rfind('@') {
            Some(at) => match authority[..at].split_once(':') {
                Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
                None => (Some(percent_decode(&authority[..at])), None),
            },
            None => (None, None),
        };
        let vhost = path
            .strip_prefix('/')
            .map(|p| p.split('?').next().unwrap_or(""))
            .filter(|p| !p.is_empty())
            .unwrap_or("%2F")
            .to_owned();
        Self {
            user,
            password,
            vhost,
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `host:port`, `host` (default port) or `[v6]:port`.
pub(crate) fn split_host_port(address: &str, default_port: u16) -> anyhow::Result<(String, u16)> {
    let address = address.trim();
    if let Some(v6) = address.strip_prefix('[') {
        let (host, rest) = v6.split_once(']').context("unclosed `[`")?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().context("port is not a number")?,
            None => default_port,
        };
        return Ok((host.to_owned(), port));
    }
    match address.rsplit_once(':') {
        Some((host, port)) => Ok((
            host.to_owned(),
            port.parse().context("port is not a number")?,
        )),
        None => Ok((address.to_owned(), default_port)),
    }
}

/// A running dashboard's parts, shared by its routes and its collection loop.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Snapshots to clients.
    pub hub: Hub,
    /// Its own `/health`.
    pub status: Status,
    /// Its own `/metrics`.
    pub metrics: Metrics,
}

impl Dashboard {
    /// The parts, before anything runs.
    #[must_use]
    pub fn new(args: &DashboardArgs, shutdown: Shutdown) -> Self {
        let metrics = Metrics::new("dashboard");
        let status = Status::new("dashboard");
        let hub = Hub::new(
            &metrics,
            Duration::from_millis(args.ws_send_timeout_ms),
            args.history_len(),
            shutdown,
        );
        let details_hub = hub.clone();
        status.set_details(move || details(&details_hub));
        Self {
            hub,
            status,
            metrics,
        }
    }

    /// Every route: the page, `/ws`, `/api/*`, `/health`, `/metrics`.
    pub fn router(&self) -> axum::Router {
        web::router(self.hub.clone(), self.status.clone(), self.metrics.clone())
    }

    /// Collects every `interval` and publishes, until `shutdown`. The first collection
    /// starts at once.
    pub async fn collect_loop(
        self,
        mut collector: Collector,
        interval: Duration,
        shutdown: Shutdown,
    ) {
        let snapshots = self
            .metrics
            .counter("snapshots_total", "Snapshots collected.", &[]);
        let took = self
            .metrics
            .gauge("collect_seconds", "Time the last collection took.", &[]);
        let up = |source: &str| {
            self.metrics.gauge(
                "source_up",
                "1 when the source answered the last collection, else 0.",
                &[("source", source)],
            )
        };
        let gauges = [up("rabbitmq"), up("postgres"), up("neo4j"), up("redis")];
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.requested() => break,
            }
            let started = Instant::now();
            let snapshot = collector.collect().await;
            took.set(started.elapsed().as_secs_f64());
            snapshots.inc();
            let ups = [
                snapshot.rabbitmq.is_up(),
                snapshot.postgres.is_up(),
                snapshot.neo4j.is_up(),
                snapshot.redis.is_up(),
            ];
            for (gauge, is_up) in gauges.iter().zip(ups) {
                gauge.set(if is_up { 1.0 } else { 0.0 });
            }
            if let Err(e) = self.hub.publish(snapshot) {
                self.status
                    .set_unhealthy("failing", format!("serializing a snapshot: {e}"));
                continue;
            }
            self.status.set_state("collecting");
        }
        self.status.set_state("stopping");
    }
}

/// The dashboard's own `/health` details.
fn details(hub: &Hub) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("websocket_clients".into(), hub.clients().into());
    m.insert("slow_clients_dropped".into(), hub.dropped().into());
    if let Some(p) = hub.latest() {
        let s = &p.snapshot;
        m.insert("last_snapshot".into(), s.timestamp.clone().into());
        m.insert("snapshots".into(), s.seq.into());
        let mut sources = Map::new();
        for (name, up) in [
            ("rabbitmq", s.rabbitmq.is_up()),
            ("postgres", s.postgres.is_up()),
            ("neo4j", s.neo4j.is_up()),
            ("redis", s.redis.is_up()),
        ] {
            sources.insert(name.into(), if up { "up" } else { "down" }.into());
        }
        m.insert("sources".into(), sources.into());
    }
    m
}

/// Serves the dashboard on `listener` until `shutdown` (tests bind port 0).
///
/// # Errors
///
/// When the configuration is invalid or the server fails.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    args: DashboardArgs,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let config = args.collector_config()?;
    let interval = config.interval;
    tracing::info!(
        services = args.services.len(),
        management = %config.rabbitmq.base_url,
        prefix = %config.rabbitmq.prefix,
        postgres = %args.postgres.postgres_address,
        neo4j = %args.neo4j.neo4j_address,
        redis = %args.redis_url,
        interval_ms = args.interval_ms,
        "📊 Dashboard starting."
    );
    let dashboard = Dashboard::new(&args, shutdown.clone());
    let collecting = tokio::spawn(dashboard.clone().collect_loop(
        Collector::new(config),
        interval,
        shutdown.clone(),
    ));
    let served = health::serve_on(listener, dashboard.router(), shutdown.clone()).await;
    shutdown.trigger();
    collecting.await.context("the collection task")?;
    served
}

/// Binds the configured address and serves until `shutdown`.
///
/// # Errors
///
/// When the address cannot be bound, the configuration is invalid, or the server fails.
pub async fn run(args: DashboardArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let addr = args.service.health_addr();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the dashboard to {addr}"))?;
    serve_on(listener, args, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn parse_config() {
        let args = DashboardArgs::parse_from([
            "dashboard",
            "--amqp-connection",
            "amqp://mq%40user:p%3Ass@broker:5672/prod",
            "--exchange-prefix",
            "px",
            "--postgres-address",
            "db:5433",
            "--service",
            "a=http://h:1/health",
            "--service",
            "b=http://h:2/health",
            "--interval-ms",
            "1000",
            "--source-timeout-ms",
            "800",
            "--rabbitmq-username",
            "mq-admin",
        ]);
        assert_eq!(args.service.health_port, 8003);
        assert_eq!(args.services.len(), 2);
        let c = args.collector_config().unwrap();
        assert_eq!(
            c.rabbitmq.auth.user(),
            "mq-admin",
            "the flag wins over the URL"
        );
        assert_eq!(c.rabbitmq.vhost, "prod");
        assert_eq!(c.rabbitmq.prefix, "px");
        assert_eq!(c.postgres.get_ports(), [5433]);
        assert_eq!(args.history_len(), 15 * 60);
        assert!(!format!("{args:?}").contains("p:ss"));
        let defaults = DashboardArgs::parse_from(["dashboard"]);
        assert_eq!(defaults.services.len(), 4);
        assert!(
            DashboardArgs::parse_from(["d", "--source-timeout-ms", "3000"])
                .collector_config()
                .is_err()
        );
    }

    #[test]
    fn amqp_urls_and_addresses() {
        let u = AmqpUrl::parse("amqp://guest:guest@localhost:5672/%2f");
        assert_eq!(u.vhost, "%2f");
        assert_eq!(u.user.as_deref(), Some("guest"));
        let u = AmqpUrl::parse("amqp://mq%40user:p%3Ass@broker:5672/prod");
        assert_eq!(u.user.as_deref(), Some("mq@user"));
        assert_eq!(u.password.as_deref(), Some("p:ss"));
        assert_eq!(u.vhost, "prod");
        assert_eq!(AmqpUrl::parse("amqp://h").vhost, "%2F");
        assert_eq!(AmqpUrl::parse("amqp://h/").vhost, "%2F");
        assert_eq!(
            split_host_port("db", 5432).unwrap(),
            ("db".to_owned(), 5432)
        );
        assert_eq!(
            split_host_port("[::1]:6000", 5432).unwrap(),
            ("::1".to_owned(), 6000)
        );
        assert!(split_host_port("db:x", 5432).is_err());
        assert_eq!(percent_decode("a%2fb%zz"), "a/b%zz");
    }
}
