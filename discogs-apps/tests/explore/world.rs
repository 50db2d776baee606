//! The data every explore test reads: real dump excerpts written through the real sinks
//! into a Neo4j namespace and a PostgreSQL schema of the test's own, and the graph model of
//! the same records ([`Model`]) that the tests compute their expectations from.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Parser as _;
use discogs_apps::dashboard::http::HttpClient;
use discogs_apps::explore::{self, ExploreArgs};
use discogs_apps::shutdown::Shutdown;
use discogs_model::{Record, RecordKind, SinkRecord};
use discogs_parse::{DumpReader, ReadOptions};
use discogs_sink_neo4j::{graph_form, Neo4jSink, Neo4jSinkConfig};
use discogs_sink_pg::{PgSink, PgSinkConfig};
use discogs_testkit::{load, require, shared_fixtures, Config, Scope, Service};
use serde_json::Value;

/// The excerpts loaded, with the most records taken from each (`None`: all).
const FILES: &[(&str, Option<usize>)] = &[
    ("tgmz__de.tgmz.discogs/discogs_20250101_artists_Depeche_Mode.xml", None),
    ("tgmz__de.tgmz.discogs/discogs_20250101_artists_Violator.xml", None),
    ("tgmz__de.tgmz.discogs/discogs_20250101_masters_Violator.xml", None),
    ("tgmz__de.tgmz.discogs/discogs_20250101_releases_Violator.xml", None),
    ("DylanBartels__discogs-load/artists.xml", None),
    ("DylanBartels__discogs-load/labels.xml", None),
    ("DylanBartels__discogs-load/masters.xml", None),
    ("DylanBartels__discogs-load/releases.xml", None),
    ("kiraririria__discogs-xml2json/artists.xml", None),
    ("kiraririria__discogs-xml2json/labels.xml", None),
    ("kiraririria__discogs-xml2json/masters.xml", None),
    ("kiraririria__discogs-xml2json/releases.xml", None),
    (
        "nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz",
        Some(3_000),
    ),
];

/// A node of the model: type and key (`artist:2725`, `genre:Electronic`).
pub(crate) type Node = (&'static str, String);

/// The graph the sinks should have written, built from the records' graph forms.
#[derive(Debug, Default)]
pub(crate) struct Model {
    /// The last record of each kind and id, in its graph form.
    pub(crate) records: BTreeMap<(u8, u64), Record<'static>>,
    /// Undirected adjacency over the relationship types paths follow.
    pub(crate) adjacency: HashMap<Node, BTreeSet<Node>>,
    /// The last record of each kind and id as parsed (what the tableinator stored).
    pub(crate) parsed: BTreeMap<(u8, u64), Record<'static>>,
}

fn node(kind: &'static str, key: impl ToString) -> Node {
    (kind, key.to_string())
}

impl Model {
    fn build(
        records: BTreeMap<(u8, u64), Record<'static>>,
        parsed: BTreeMap<(u8, u64), Record<'static>>,
    ) -> Self {
        let mut m = Model {
            records,
            adjacency: HashMap::new(),
            parsed,
        };
        let mut edges = Vec::new();
        for r in m.records.values() {
            match r {
                Record::Release(r) => {
                    let me = node("release", r.id);
                    for a in r.artists.iter().filter_map(|a| a.id) {
                        edges.push((me.clone(), node("artist", a)));
                    }
                    for l in r.labels.iter().filter_map(|l| l.id) {
                        edges.push((me.clone(), node("label", l)));
                    }
                    for g in &r.genres {
                        edges.push((me.clone(), node("genre", g)));
                    }
                    for s in &r.styles {
                        edges.push((me.clone(), node("style", s)));
                    }
                    if let Some(master) = r.master_id {
                        edges.push((me.clone(), node("master", master)));
                    }
                }
                Record::Master(x) => {
                    let me = node("master", x.id);
                    for a in x.artists.iter().filter_map(|a| a.id) {
                        edges.push((me.clone(), node("artist", a)));
                    }
                    for g in &x.genres {
                        edges.push((me.clone(), node("genre", g)));
                    }
                    for s in &x.styles {
                        edges.push((me.clone(), node("style", s)));
                    }
                }
                Record::Artist(a) => {
                    let me = node("artist", a.id);
                    for other in a.aliases.iter().chain(&a.members).chain(&a.groups) {
                        if let Some(id) = other.id {
                            edges.push((me.clone(), node("artist", id)));
                        }
                    }
                }
                Record::Label(_) => {}
            }
        }
        for (a, b) in edges {
            if a != b {
                m.adjacency.entry(a.clone()).or_default().insert(b.clone());
                m.adjacency.entry(b).or_default().insert(a);
            }
        }
        m
    }

    /// Every release in its graph form.
    pub(crate) fn releases(&self) -> impl Iterator<Item = &discogs_model::Release<'static>> {
        self.records.values().filter_map(|r| match r {
            Record::Release(r) => Some(r),
            _ => None,
        })
    }

    /// Every artist record.
    pub(crate) fn artists(&self) -> impl Iterator<Item = &discogs_model::Artist<'static>> {
        self.records.values().filter_map(|r| match r {
            Record::Artist(a) => Some(a),
            _ => None,
        })
    }

    /// Ids of the releases `BY` artist `id`.
    pub(crate) fn releases_by(&self, id: u64) -> BTreeSet<u64> {
        self.releases()
            .filter(|r| r.artists.iter().any(|a| a.id == Some(id)))
            .map(|r| r.id)
            .collect()
    }

    /// Distance of every node from `start` (breadth first).
    pub(crate) fn distances(&self, start: &Node) -> HashMap<Node, usize> {
        let mut dist = HashMap::from([(start.clone(), 0)]);
        let mut queue = VecDeque::from([start.clone()]);
        while let Some(n) = queue.pop_front() {
            let d = dist[&n];
            for next in self.adjacency.get(&n).into_iter().flatten() {
                if !dist.contains_key(next) {
                    dist.insert(next.clone(), d + 1);
                    queue.push_back(next.clone());
                }
            }
        }
        dist
    }
}

/// The loaded data and the servers holding it.
pub(crate) struct World {
    pub(crate) neo: Config,
    pub(crate) pg: Config,
    pub(crate) redis: Config,
    pub(crate) scope: Scope,
    pub(crate) namespace: String,
    pub(crate) schema: String,
    pub(crate) model: Model,
    cleaned: bool,
}

fn read_some(path: &Path, most: Option<usize>) -> (RecordKind, Vec<SinkRecord<'static>>) {
    let Some(most) = most else {
        return discogs_testkit::read_records(path);
    };
    let mut reader = DumpReader::open_with(path, ReadOptions::default().max_errors(None))
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let kind = reader.kind();
    let mut out = Vec::new();
    while out.len() < most {
        match reader.next_record() {
            Some(Ok(p)) => {
                let p = p.into_owned();
                out.push(SinkRecord {
                    record: p.record,
                    hash: p.hash,
                });
            }
            Some(Err(discogs_parse::Error::Record(_))) => {}
            _ => break,
        }
    }
    (kind, out)
}

impl World {
    /// Loads the excerpts; `None` (test skipped) without the fixtures or a service.
    pub(crate) async fn load(tag: &str) -> Option<World> {
        let dir = shared_fixtures()?;
        let neo = require(Service::Neo4j)?;
        let pg = require(Service::Postgres)?;
        let redis = require(Service::Redis)?;
        let scope = Scope::new(tag);
        let namespace = format!("{}_", scope.label());
        let schema = scope.schema();
        let mut world = World {
            neo,
            pg,
            redis,
            scope,
            namespace,
            schema,
            model: Model::default(),
            cleaned: false,
        };
        let mut graph = world.neo4j_sink();
        graph.ensure_schema().await.expect("Neo4j schema");
        let mut table =
            PgSink::new(PgSinkConfig::new(world.pg.url()).schema(&world.schema)).expect("pg sink");
        let (mut records, mut parsed) = (BTreeMap::new(), BTreeMap::new());
        for (file, most) in FILES {
            let (kind, recs) = read_some(&dir.join(file), *most);
            assert!(!recs.is_empty(), "{file}: no records");
            load(&mut graph, kind, &recs, 500).await;
            load(&mut table, kind, &recs, 500).await;
            for r in &recs {
                records.insert(
                    (kind.code(), r.record.id()),
                    graph_form(&r.record).into_owned(),
                );
                parsed.insert((kind.code(), r.record.id()), r.record.clone());
            }
        }
        graph.finish_extraction().await.expect("aggregates");
        world.model = Model::build(records, parsed);
        Some(world)
    }

    fn neo4j_sink(&self) -> Neo4jSink {
        Neo4jSink::new(
            Neo4jSinkConfig::new(
                self.neo.url(),
                self.neo.username().unwrap_or("neo4j"),
                self.neo.password().unwrap_or_default(),
            )
            .namespace(&self.namespace),
        )
        .expect("neo4j sink")
    }

    /// A direct Cypher count (`{ns}` stands for the namespace prefix), for comparisons.
    pub(crate) async fn cypher_rows(
        &self,
        cypher: &str,
        params: &[(&str, neo4rs::BoltType)],
    ) -> Vec<neo4rs::Row> {
        let text = cypher.replace("{ns}", &self.namespace);
        let sink = self.neo4j_sink();
        let mut q = neo4rs::query(&text);
        for (k, v) in params {
            q = q.param(k, v.clone());
        }
        let mut rows = sink
            .graph()
            .execute(q)
            .await
            .unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            out.push(row);
        }
        out
    }

    /// A direct SQL query (`{s}` stands for the schema).
    pub(crate) async fn sql(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Vec<tokio_postgres::Row> {
        let sql = sql.replace("{s}", &format!("\"{}\"", self.schema));
        let (client, connection) = tokio_postgres::connect(self.pg.url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .query(&sql, params)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    }

    /// The explorer's flags for this world; `redis` is the cache's URL.
    pub(crate) fn args(&self, redis: &str, extra: &[&str]) -> ExploreArgs {
        let mut argv: Vec<String> = vec!["explore".into()];
        let mut flag = |k: &str, v: &str| {
            argv.push(format!("--{k}"));
            argv.push(v.to_owned());
        };
        flag("neo4j-address", self.neo.url());
        flag("neo4j-username", self.neo.username().unwrap_or("neo4j"));
        flag("neo4j-password", self.neo.password().unwrap_or_default());
        flag("neo4j-namespace", &self.namespace);
        flag(
            "postgres-address",
            &format!("{}:{}", self.pg.host(), self.pg.port()),
        );
        flag(
            "postgres-username",
            self.pg.username().unwrap_or("postgres"),
        );
        flag("postgres-password", self.pg.password().unwrap_or_default());
        flag("postgres-database", self.pg.path().unwrap_or("postgres"));
        flag("postgres-schema", &self.schema);
        flag("redis-url", redis);
        flag("cache-prefix", &self.scope.key("explore:"));
        if !extra.contains(&"--rate-limit") {
            flag("rate-limit", "0");
        }
        flag("log-level", "WARNING");
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        ExploreArgs::parse_from(argv)
    }

    /// The cache URL of the test's Redis.
    pub(crate) fn redis_url(&self) -> String {
        self.redis.url().to_owned()
    }

    /// Removes the namespace, the schema and the cache keys.
    pub(crate) async fn clean(mut self) {
        self.cleaned = true;
        cleanup(
            &self.neo4j_sink(),
            &self.pg,
            &self.schema,
            &self.redis,
            &self.scope,
        )
        .await;
    }
}

async fn cleanup(sink: &Neo4jSink, pg: &Config, schema: &str, redis: &Config, scope: &Scope) {
    let sink = Neo4jSink::new(sink_config(sink)).expect("sink");
    sink.drop_namespace()
        .await
        .unwrap_or_else(|e| eprintln!("dropping the namespace: {e}"));
    if let Ok((client, connection)) = tokio_postgres::connect(pg.url(), tokio_postgres::NoTls).await
    {
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .unwrap_or_else(|e| eprintln!("dropping the schema: {e}"));
    }
    if let Ok(client) = redis::Client::open(redis.url()) {
        if let Ok(mut c) = client.get_multiplexed_async_connection().await {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", scope.key("explore:")))
                .query_async(&mut c)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(keys)
                    .query_async::<()>(&mut c)
                    .await
                    .unwrap_or_else(|e| eprintln!("deleting the cache keys: {e}"));
            }
        }
    }
}

fn sink_config(sink: &Neo4jSink) -> Neo4jSinkConfig {
    sink.config().clone()
}

impl Drop for World {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let (sink, pg, schema, redis, scope) = (
            self.neo4j_sink(),
            self.pg.clone(),
            self.schema.clone(),
            self.redis.clone(),
            self.scope.clone(),
        );
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(cleanup(&sink, &pg, &schema, &redis, &scope));
        });
        done.join().unwrap_or(());
    }
}

/// An explorer served by this process on free ports.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) health: SocketAddr,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    http: HttpClient,
}

impl Running {
    pub(crate) async fn start(args: ExploreArgs) -> Running {
        let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, health_addr) = (api.local_addr().unwrap(), health.local_addr().unwrap());
        let shutdown = Shutdown::new();
        let task = tokio::spawn(explore::serve_on(api, health, args, shutdown.clone()));
        Running {
            addr,
            health: health_addr,
            shutdown,
            task,
            http: HttpClient::new(),
        }
    }

    /// `GET path`: status, `X-Cache` is not visible through this client, so the body only.
    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let reply = self
            .http
            .get(&format!("http://{}{path}", self.addr), None)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let v = serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
            panic!(
                "GET {path}: {e}: {:?}",
                String::from_utf8_lossy(&reply.body)
            )
        });
        (reply.status, v)
    }

    /// `GET path`, which must answer 200.
    pub(crate) async fn ok(&self, path: &str) -> Value {
        let (status, v) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// The text of `/metrics`.
    pub(crate) async fn metrics(&self) -> String {
        let reply = self
            .http
            .get(&format!("http://{}/metrics", self.health), None)
            .await
            .expect("metrics");
        String::from_utf8_lossy(&reply.body).into_owned()
    }

    pub(crate) async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("explore stops")
            .expect("task")
            .expect("explore ran");
    }
}

/// The value of a counter line in Prometheus text (`0` when absent).
pub(crate) fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}
