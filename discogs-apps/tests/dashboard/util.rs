//! What the dashboard tests share: the real services, a scope of names in them that a test
//! writes into, a service's health server (the shared `health` module), a running
//! dashboard, and a WebSocket client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser as _;
use discogs_apps::dashboard::{self, DashboardArgs};
use discogs_apps::health::{self, Status};
use discogs_apps::metrics::Metrics;
use discogs_apps::shutdown::Shutdown;
use discogs_testkit::{require, Config, Scope, Service};
use futures_util::StreamExt as _;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The four real services, or `None` (test skipped) when one is missing outside CI.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    pub(crate) pg: Config,
    pub(crate) amqp: Config,
    pub(crate) neo: Config,
    pub(crate) redis: Config,
}

impl Services {
    pub(crate) fn require() -> Option<Self> {
        Some(Self {
            pg: require(Service::Postgres)?,
            amqp: require(Service::RabbitMq)?,
            neo: require(Service::Neo4j)?,
            redis: require(Service::Redis)?,
        })
    }

    /// Dashboard flags pointing at these services and at `scope`'s names; `extra` holds
    /// flag/value pairs that add to them (`--service`) or replace them.
    pub(crate) fn dashboard_args(&self, scope: &Scope, extra: &[&str]) -> DashboardArgs {
        DashboardArgs::parse_from(self.dashboard_argv(scope, extra))
    }

    /// The same as command-line arguments (the first is the program name).
    pub(crate) fn dashboard_argv(&self, scope: &Scope, extra: &[&str]) -> Vec<String> {
        let management = std::env::var("RABBITMQ_MANAGEMENT_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:15672".into());
        let base = [
            ("--health-bind", "127.0.0.1".to_owned()),
            ("--amqp-connection", self.amqp.url().to_owned()),
            ("--exchange-prefix", scope.queue_prefix()),
            ("--rabbitmq-management-url", management),
            ("--postgres-address", self.pg.address()),
            (
                "--postgres-username",
                self.pg.username().unwrap_or("discogsography").to_owned(),
            ),
            (
                "--postgres-password",
                self.pg.password().unwrap_or_default().to_owned(),
            ),
            (
                "--postgres-database",
                self.pg.path().unwrap_or("discogsography").to_owned(),
            ),
            ("--postgres-schemas", scope.schema()),
            ("--neo4j-address", self.neo.url().to_owned()),
            (
                "--neo4j-username",
                self.neo.username().unwrap_or("neo4j").to_owned(),
            ),
            (
                "--neo4j-password",
                self.neo.password().unwrap_or_default().to_owned(),
            ),
            ("--neo4j-namespace", namespace(scope)),
            ("--redis-url", self.redis.url().to_owned()),
        ];
        let mut argv = vec!["dashboard".to_owned()];
        for (flag, value) in base {
            if !extra.contains(&flag) {
                argv.extend([flag.to_owned(), value]);
            }
        }
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        argv
    }
}

/// The Neo4j namespace of `scope`'s graph (`Test_<id>_`).
pub(crate) fn namespace(scope: &Scope) -> String {
    format!("{}_", scope.label())
}

/// The names a test writes into: a queue and its dead-letter queue, a table, a Neo4j label
/// and a Redis key; and the connections to write.
pub(crate) struct Playground {
    pub(crate) scope: Scope,
    /// `{prefix}-tester-artists`.
    pub(crate) queue: String,
    /// `{queue}.dlq`.
    pub(crate) dlq: String,
    /// `{schema}.writes`.
    pub(crate) table: String,
    channel: Channel,
    _connection: Connection,
    pg: tokio_postgres::Client,
    graph: neo4rs::Graph,
    redis: redis::aio::MultiplexedConnection,
    written: AtomicU64,
}

impl std::fmt::Debug for Playground {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playground")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

impl Playground {
    /// Declares the queues (quorum, as the pipeline's), creates the schema and table.
    pub(crate) async fn new(services: &Services, tag: &str) -> Self {
        let scope = Scope::new(tag);
        let queue = format!("{}-tester-artists", scope.queue_prefix());
        let dlq = format!("{queue}.dlq");
        let connection = Connection::connect(services.amqp.url(), ConnectionProperties::default())
            .await
            .expect("AMQP connection");
        let channel = connection.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        for name in [&queue, &dlq] {
            let mut args = FieldTable::default();
            args.insert("x-queue-type".into(), long("quorum"));
            channel
                .queue_declare(
                    name.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    args,
                )
                .await
                .expect("queue_declare");
        }

        let (pg, conn) = tokio_postgres::connect(services.pg.url(), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL connection");
        tokio::spawn(conn);
        let table = format!("{}.writes", scope.schema());
        pg.batch_execute(&format!(
            "CREATE SCHEMA {}; CREATE TABLE {table} (id bigserial PRIMARY KEY, note text)",
            scope.schema()
        ))
        .await
        .expect("schema");

        let graph = neo4rs::Graph::connect(
            neo4rs::ConfigBuilder::default()
                .uri(services.neo.url())
                .user(services.neo.username().unwrap_or("neo4j"))
                .password(services.neo.password().unwrap_or_default())
                .build()
                .expect("Neo4j config"),
        )
        .expect("Neo4j");
        let redis = redis::Client::open(services.redis.url())
            .expect("Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("Redis connection");
        let mut me = Self {
            scope,
            queue,
            dlq,
            table,
            channel,
            _connection: connection,
            pg,
            graph,
            redis,
            written: AtomicU64::new(0),
        };
        redis::cmd("SET")
            .arg(me.scope.key("hit"))
            .arg("1")
            .arg("EX")
            .arg(600)
            .query_async::<()>(&mut me.redis)
            .await
            .expect("SET");
        me
    }

    /// Runs `test` with a new playground and cleans the playground up afterwards, also
    /// when `test` panics (the panic goes on afterwards).
    pub(crate) async fn run<F, Fut>(services: &Services, tag: &str, test: F)
    where
        F: FnOnce(Arc<Playground>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let play = Arc::new(Playground::new(services, tag).await);
        let outcome = tokio::spawn(test(Arc::clone(&play))).await;
        play.clean_up().await;
        if let Err(e) = outcome {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("test task: {e}");
        }
    }

    /// The Neo4j label of this test's nodes: the `Artist` label of the test's namespace,
    /// the graph the dashboard is told to show.
    pub(crate) fn label(&self) -> String {
        format!("{}Artist", namespace(&self.scope))
    }

    /// Writes `n` of everything: messages into the queue, rows, Redis lookups, and in Neo4j
    /// `n` artists each with an `ON_LABEL` relationship to a label of its own.
    pub(crate) async fn write(&self, n: u64) {
        for _ in 0..n {
            let seq = self.written.fetch_add(1, Ordering::Relaxed);
            let body =
                json!({"kind": "artists", "records": [{"id": seq + 1, "name": "The Persuader"}]});
            let confirm = self
                .channel
                .basic_publish(
                    "".into(),
                    self.queue.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    body.to_string().as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
            assert!(confirm.is_ack(), "{confirm:?}");
        }
        #[allow(clippy::cast_possible_wrap)]
        let n_i = n as i64;
        self.pg
            .execute(
                &format!(
                    "INSERT INTO {} (note) SELECT 'row ' || g FROM generate_series(1, $1::int8) g",
                    self.table
                ),
                &[&n_i],
            )
            .await
            .expect("insert");
        self.graph
            .run(
                neo4rs::query(&format!(
                    "UNWIND range(1, $n) AS i CREATE (:{}Artist {{i: i}})-[:ON_LABEL]->(:{}Label {{i: i}})",
                    namespace(&self.scope),
                    namespace(&self.scope),
                ))
                .param("n", n_i),
            )
            .await
            .expect("create nodes");
        let mut redis = self.redis.clone();
        for _ in 0..n {
            let _: Option<String> = redis::cmd("GET")
                .arg(self.scope.key("hit"))
                .query_async(&mut redis)
                .await
                .expect("GET");
        }
    }

    /// Dead-letters one message the way a consumer does: a copy with the reason in
    /// `discogs-dead-letter-reason`, into the dead-letter queue.
    pub(crate) async fn dead_letter(&self, reason: &str) {
        let mut headers = FieldTable::default();
        headers.insert("discogs-dead-letter-reason".into(), long(reason));
        headers.insert("discogs-dead-letter-queue".into(), long(&self.queue));
        headers.insert(
            "discogs-file".into(),
            long("discogs_20260101_artists.xml.gz"),
        );
        headers.insert("discogs-seq".into(), AMQPValue::LongLongInt(7));
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                self.dlq.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                br#"{"kind":"artists","records":[{"id":"not a number"}]}"#,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_headers(headers),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "{confirm:?}");
    }

    /// Removes everything the test made.
    async fn clean_up(&self) {
        for name in [&self.queue, &self.dlq] {
            self.channel
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await
                .expect("queue_delete");
        }
        self.pg
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.scope.schema()))
            .await
            .expect("drop schema");
        self.graph
            .run(neo4rs::query(&format!(
                "MATCH (n) WHERE n:{ns}Artist OR n:{ns}Label DETACH DELETE n",
                ns = namespace(&self.scope)
            )))
            .await
            .expect("delete nodes");
        let mut redis = self.redis.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(self.scope.key("hit"))
            .query_async(&mut redis)
            .await
            .expect("DEL");
    }
}

/// A service's health server, made with the shared `health` module as every service of
/// the pipeline makes it; its details look like the extractor's and move while it runs.
#[derive(Debug)]
pub(crate) struct FakeService {
    pub(crate) addr: SocketAddr,
    pub(crate) status: Status,
    shutdown: Shutdown,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    ticker: tokio::task::JoinHandle<()>,
}

impl FakeService {
    /// Starts `name`'s health server on a free port; it reads 500 records and 1 MB per
    /// 100 ms of a 1 GB file.
    pub(crate) async fn start(name: &str) -> Self {
        let status = Status::new(name);
        let done = Arc::new(AtomicU64::new(0));
        let details_done = Arc::clone(&done);
        status.set_details(move || {
            let bytes = details_done.load(Ordering::Relaxed);
            let mut m = serde_json::Map::new();
            // The shape `extractor::run` gives its `/health`.
            m.insert(
                "extraction_progress".into(),
                json!({"step": "publish", "file": "discogs_20260101_releases.xml.gz",
                       "bytes_done": bytes, "bytes_total": 1_000_000_000u64,
                       "bytes_per_second": 10_000_000.0}),
            );
            m.insert(
                "records".into(),
                json!({"releases": {"read": bytes / 2000, "published": bytes / 4000}}),
            );
            m.insert(
                "current".into(),
                json!({"version": "20260101", "step": "publish",
                       "file": "discogs_20260101_releases.xml.gz"}),
            );
            m
        });
        status.set_state("running");
        let shutdown = Shutdown::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(health::serve_on(
            listener,
            health::router(status.clone(), Metrics::new(name)),
            shutdown.clone(),
        ));
        let stop = shutdown.clone();
        let ticker = tokio::spawn(async move {
            while !stop.is_requested() {
                done.fetch_add(1_000_000, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self {
            addr,
            status,
            shutdown,
            server,
            ticker,
        }
    }

    /// `name=http://addr/health`, the dashboard's `--service` value.
    pub(crate) fn target(&self, name: &str) -> String {
        format!("{name}=http://{}/health", self.addr)
    }

    /// Stops the server: its port refuses connections from now on.
    pub(crate) async fn stop(self) {
        self.shutdown.trigger();
        self.server
            .await
            .expect("server task")
            .expect("server stops cleanly");
        self.ticker.await.expect("ticker task");
    }
}

/// A dashboard served by this process on a free port.
#[derive(Debug)]
pub(crate) struct RunningDashboard {
    pub(crate) addr: SocketAddr,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningDashboard {
    pub(crate) async fn start(args: DashboardArgs) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(dashboard::serve_on(listener, args, shutdown.clone()));
        Self {
            addr,
            shutdown,
            task,
        }
    }

    /// `/api/metrics`, once there is a snapshot.
    pub(crate) async fn api_metrics(&self) -> Value {
        let http = dashboard::http::HttpClient::new();
        let url = format!("http://{}/api/metrics", self.addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let reply = http.get(&url, None).await.expect("GET /api/metrics");
            if reply.status == 200 {
                return serde_json::from_slice(&reply.body).expect("JSON");
            }
            assert_eq!(reply.status, 503, "before the first snapshot only");
            assert!(Instant::now() < deadline, "no snapshot after 10 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET path` as JSON, which must answer 200.
    pub(crate) async fn get_json(&self, path: &str) -> Value {
        let reply = dashboard::http::HttpClient::new()
            .get(&format!("http://{}{path}", self.addr), None)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(reply.status, 200, "GET {path}");
        serde_json::from_slice(&reply.body).expect("JSON")
    }

    pub(crate) async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the dashboard stops within 10 s")
            .expect("task")
            .expect("dashboard ran without error");
    }
}

/// A WebSocket client of `/ws`.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) async fn ws_connect(addr: SocketAddr) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("WebSocket handshake");
    ws
}

/// The next snapshot, within `limit`.
pub(crate) async fn next_snapshot(ws: &mut Ws, limit: Duration) -> Value {
    loop {
        let message = tokio::time::timeout(limit, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no snapshot within {limit:?}"))
            .expect("the server closed the WebSocket")
            .expect("WebSocket error");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            let v: Value = serde_json::from_str(text.as_str()).expect("snapshot JSON");
            assert_eq!(v["type"], "snapshot");
            return v;
        }
    }
}

/// Reads snapshots until `want` holds, for at most `limit`; returns the snapshot and when
/// it arrived.
pub(crate) async fn wait_for(
    ws: &mut Ws,
    limit: Duration,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> (Value, Instant) {
    let deadline = Instant::now() + limit;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(message))) = tokio::time::timeout(left, ws.next()).await else {
            break;
        };
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            last = serde_json::from_str(text.as_str()).expect("snapshot JSON");
            if want(&last) {
                return (last, Instant::now());
            }
        }
    }
    panic!("{what}: not seen within {limit:?}; last snapshot: {last:#}");
}

/// The service `name` in a snapshot.
pub(crate) fn service<'a>(snapshot: &'a Value, name: &str) -> &'a Value {
    snapshot["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service {name} in {snapshot:#}"))
}

/// The queue `name`'s figure `field`, when the broker has computed it.
pub(crate) fn queue_figure(snapshot: &Value, name: &str, field: &str) -> Option<u64> {
    snapshot["rabbitmq"]["data"]["queues"]
        .as_array()?
        .iter()
        .find(|q| q["name"] == name)?[field]
        .as_u64()
}

/// Rows of `schema.writes` in a snapshot.
pub(crate) fn table_rows(snapshot: &Value, schema: &str) -> Option<u64> {
    table_rows_of(snapshot, schema, "writes")
}

/// Rows of `schema.table` in a snapshot.
pub(crate) fn table_rows_of(snapshot: &Value, schema: &str, table: &str) -> Option<u64> {
    snapshot["postgres"]["data"]["tables"]
        .as_array()?
        .iter()
        .find(|t| t["schema"] == schema && t["name"] == table)?["rows_estimate"]
        .as_u64()
}

/// Nodes of `label` in a snapshot.
pub(crate) fn label_count(snapshot: &Value, label: &str) -> Option<u64> {
    snapshot["neo4j"]["data"]["labels"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == label)?["count"]
        .as_u64()
}

/// Relationships of `rel_type` in a snapshot.
pub(crate) fn type_count(snapshot: &Value, rel_type: &str) -> Option<u64> {
    snapshot["neo4j"]["data"]["relationship_types"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == rel_type)?["count"]
        .as_u64()
}

/// Redis keyspace hits in a snapshot.
pub(crate) fn redis_hits(snapshot: &Value) -> Option<u64> {
    snapshot["redis"]["data"]["keyspace_hits"].as_u64()
}

/// A port nothing listens on (bound, then released).
pub(crate) async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr").port()
}
