//! The graphinator's and tableinator's consumer loop against the real RabbitMQ,
//! PostgreSQL and Neo4j (`scripts/services up`): the dump excerpts published with the
//! bus's publisher end up in both databases; a redelivered batch changes nothing; a
//! permanent failure ends in the dead-letter queue with its reason; a database outage is
//! retried without dead-lettering; the completion steps run once.
//!
//! Each test has its own queue prefix, PostgreSQL schema and Neo4j namespace
//! ([`discogs_testkit::Scope`]) and removes them at the end. Without the services the
//! tests skip with a printed reason (and fail under `CI=true`).

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use discogs_apps::consumer::{
    self, ConsumerArgs, ConsumerStats, DeadLetterSource, Neo4jTarget, PgTarget, ServiceParts,
};
use discogs_apps::health::Status;
use discogs_apps::metrics::Metrics;
use discogs_apps::shutdown::Shutdown;
use discogs_bus::lapin::options::BasicGetOptions;
use discogs_bus::lapin::{Connection, ConnectionProperties};
use discogs_bus::{
    dead_letter_reason, Admin, AmqpPublisher, Backoff, FileRef, Publisher, PublisherConfig, Resume,
    RetryPolicy, Topology,
};
use discogs_model::wire::{ExtractionComplete, RecordCounts};
use discogs_model::{Artist, Record, RecordKind, SinkRecord};
use discogs_sink_neo4j::{Neo4jSink, Neo4jSinkConfig};
use discogs_sink_pg::{PgSink, PgSinkConfig};
use discogs_testkit::{read_records, require, shared_fixtures, Scope, Service};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

mod first_load;
mod month;
mod outage;
#[path = "../common/stack.rs"]
mod stack;

/// Taken for reading by every test of this binary, for writing by the one that stops
/// PostgreSQL ([`outage`]): nothing else here runs while the server is down. (Test binaries
/// run one after the other under `cargo test`, so other binaries are not affected.)
static SHARED: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

const VERSION: &str = "20170401";

/// Names of one test on the three services.
struct Env {
    amqp: String,
    topology: Topology,
    pg_url: String,
    schema: String,
    app: String,
    neo4j: Option<Neo4jSinkConfig>,
}

impl Env {
    /// `None` (skipped) when RabbitMQ or PostgreSQL (or Neo4j, when `graph`) is missing.
    fn new(tag: &str, graph: bool) -> Option<Env> {
        let amqp = require(Service::RabbitMq)?;
        let pg = require(Service::Postgres)?;
        let neo4j = if graph {
            let server = require(Service::Neo4j)?;
            Some(
                Neo4jSinkConfig::new(
                    server.url(),
                    server.username().unwrap_or("neo4j"),
                    server.password().unwrap_or_default(),
                )
                .namespace(format!("{}_", Scope::new(tag).label())),
            )
        } else {
            None
        };
        let scope = Scope::new(tag);
        Some(Env {
            amqp: amqp.url().to_owned(),
            topology: Topology::with_prefix(scope.queue_prefix()),
            pg_url: pg.url().to_owned(),
            schema: scope.schema(),
            app: format!("tableinator-{}", scope.id()),
            neo4j,
        })
    }

    /// The same names (for a task of its own).
    fn clone_names(&self) -> Env {
        Env {
            amqp: self.amqp.clone(),
            topology: self.topology.clone(),
            pg_url: self.pg_url.clone(),
            schema: self.schema.clone(),
            app: self.app.clone(),
            neo4j: self.neo4j.clone(),
        }
    }

    fn pg_config(&self) -> PgSinkConfig {
        PgSinkConfig::new(&self.pg_url)
            .schema(&self.schema)
            .application_name(&self.app)
    }

    fn args() -> ConsumerArgs {
        ConsumerArgs {
            consumer_cancel_delay: 0,
            queue_check_interval: 5,
            prefetch: 4,
            retry_minutes: 5,
            write_records: 2000,
        }
    }

    /// Starts a consumer service in this process with the given targets.
    async fn start<T: consumer::Target>(
        &self,
        name: &str,
        make_target: impl FnMut(RecordKind) -> anyhow::Result<T> + Send + 'static,
    ) -> Running {
        let mut consumers = consumer::declare_amqp(&self.amqp, &self.topology, name, &Self::args())
            .await
            .expect("declare the queues");
        let shutdown = Shutdown::new();
        let stats = ConsumerStats::new(Metrics::new(name));
        let status = Status::new(name);
        let parts = ServiceParts {
            name: name.to_owned(),
            policy: RetryPolicy {
                backoff: Backoff::new(None),
                hold_for: Duration::from_secs(300),
            },
            dead_letters: DeadLetterSource::Broker {
                url: self.amqp.clone(),
                topology: self.topology.clone(),
            },
            status: status.clone(),
            stats: stats.clone(),
            shutdown: shutdown.clone(),
            write_records: Self::args().write_records_usize(),
        };
        let task = tokio::spawn(consumer::run(
            parts,
            move |kind| Ok(consumers.remove(&kind).expect("one per kind")),
            make_target,
        ));
        Running {
            shutdown,
            stats,
            status,
            task,
        }
    }

    async fn tableinator(&self) -> Running {
        let config = self.pg_config();
        self.start("tableinator", move |_| {
            Ok(PgTarget::new(PgSink::new(config.clone())?))
        })
        .await
    }

    async fn graphinator(&self) -> Running {
        let config = self.neo4j.clone().expect("a graph test");
        self.start("graphinator", move |_| {
            Ok(Neo4jTarget::new(Neo4jSink::new(config.clone())?))
        })
        .await
    }

    fn publisher(&self, max_records: usize) -> AmqpPublisher {
        let config = PublisherConfig {
            max_records,
            consumers: vec!["graphinator".into(), "tableinator".into()],
            ..PublisherConfig::default()
        };
        AmqpPublisher::new(&self.amqp, self.topology.clone(), config).expect("publisher")
    }

    async fn dead_letters(&self, name: &str, kind: RecordKind) -> u32 {
        let admin = Admin::connect(&self.amqp, self.topology.clone())
            .await
            .expect("admin");
        let depth = admin.dead_letter_depth(name, kind).await.expect("depth");
        admin.close().await.ok();
        depth.unwrap_or(0)
    }

    /// Removes the queues, exchanges, schema and namespace.
    async fn clean_up(self) {
        stack::remove_names(
            &self.amqp,
            self.topology.clone(),
            &pg_client(&self.pg_url).await,
            &self.schema,
            self.neo4j,
        )
        .await;
    }
}

/// A consumer service running in this process.
struct Running {
    shutdown: Shutdown,
    stats: ConsumerStats,
    status: Status,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Waits until `done` holds (checking every 200 ms), failing after `limit`.
    async fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&ConsumerStats) -> bool) {
        let start = Instant::now();
        while !done(&self.stats) {
            assert!(
                !self.task.is_finished(),
                "the service stopped while waiting for {what}"
            );
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}: {:#}",
                serde_json::Value::Object(self.stats.report())
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stop(self) {
        self.shutdown.trigger();
        self.task
            .await
            .expect("service task")
            .expect("service ended cleanly");
    }
}

async fn pg_client(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(async move {
        connection.await.ok();
    });
    client
}

async fn count(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

async fn graph_count(sink: &Neo4jSink, cypher: &str) -> i64 {
    let mut rows = sink
        .graph()
        .execute(neo4rs::query(cypher))
        .await
        .unwrap_or_else(|e| panic!("{cypher}: {e:?}"));
    let row = rows.next().await.expect("row").expect("one row");
    row.get::<i64>("n").expect("n")
}

/// The four files of the 2017-04 excerpt.
fn dump(dir: &Path) -> Vec<(RecordKind, String, Vec<SinkRecord<'static>>)> {
    RecordKind::ALL
        .iter()
        .map(|kind| {
            let file = format!("discogs_{VERSION}_{}.xml.gz", kind.plural());
            let (read, records) = read_records(&dir.join("philipmat__discogs-xml2db").join(&file));
            assert_eq!(read, *kind);
            assert!(!records.is_empty(), "{file} has records");
            (read, file, records)
        })
        .collect()
}

/// Publishes the files (batches of `max_records`) and `extraction_complete`.
async fn publish(
    env: &Env,
    files: &[(RecordKind, String, Vec<SinkRecord<'static>>)],
    max_records: usize,
) {
    let mut publisher = env.publisher(max_records);
    let mut counts = RecordCounts::default();
    for (kind, file, records) in files {
        publisher
            .begin_file(
                FileRef::new(*kind, VERSION, file.as_str()),
                Resume::default(),
            )
            .expect("begin");
        for r in records {
            publisher.publish(r).await.expect("publish");
        }
        let done = publisher.end_file().await.expect("end file");
        *counts.get_mut(*kind) = done.records;
    }
    publisher
        .extraction_complete(&ExtractionComplete {
            version: VERSION.into(),
            started_at: SystemTime::now(),
            record_counts: counts,
        })
        .await
        .expect("extraction complete");
    publisher.close().await.expect("close publisher");
}

/// The tableinator's tables hold the distinct ids of each file; nothing was dead-lettered.
async fn assert_rows_and_no_dead_letters(
    env: &Env,
    tableinator: &Running,
    files: &[(RecordKind, String, Vec<SinkRecord<'static>>)],
) {
    let client = pg_client(&env.pg_url).await;
    for (kind, file, records) in files {
        let rows = count(
            &client,
            &format!("SELECT count(*) FROM \"{}\".{}", env.schema, kind.plural()),
        )
        .await;
        assert_eq!(rows, i64::try_from(distinct(records)).unwrap(), "{file}");
        assert_eq!(
            env.dead_letters("tableinator", *kind).await,
            0,
            "{file}: no dead letter"
        );
        assert_eq!(tableinator.stats.dead_lettered(*kind), 0, "{file}");
    }
}

fn distinct(records: &[SinkRecord<'_>]) -> usize {
    records
        .iter()
        .map(|r| r.record.id())
        .collect::<HashSet<_>>()
        .len()
}

fn all_complete(times: u64) -> impl Fn(&ConsumerStats) -> bool {
    move |s| {
        RecordKind::ALL
            .iter()
            .all(|k| s.extractions_complete(*k) >= times)
    }
}

/// Both services over the four files: rows and nodes equal the distinct ids per kind; the
/// completion steps are recorded once; publishing everything again (a redelivery of every
/// batch and of `extraction_complete`) writes nothing and runs no step again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_into_both_databases_and_redelivery_changes_nothing() {
    let _shared = SHARED.read().await;
    let Some(dir) = shared_fixtures() else { return };
    let Some(env) = Env::new("consumers_e2e", true) else {
        return;
    };
    let files = dump(&dir);
    let tableinator = env.tableinator().await;
    let graphinator = env.graphinator().await;
    publish(&env, &files, 20).await;
    let limit = Duration::from_secs(300);
    tableinator
        .wait_for("tableinator's completion", limit, all_complete(1))
        .await;
    graphinator
        .wait_for("graphinator's completion", limit, all_complete(1))
        .await;

    let client = pg_client(&env.pg_url).await;
    let schema = format!("\"{}\"", env.schema);
    let graph = Neo4jSink::new(env.neo4j.clone().unwrap()).unwrap();
    let ns = graph.names().namespace().to_owned();
    let node_label = |kind: RecordKind| graph.names().label(kind).to_owned();
    for (kind, file, records) in &files {
        let expected = i64::try_from(distinct(records)).unwrap();
        let rows = count(
            &client,
            &format!("SELECT count(*) FROM {schema}.{}", kind.plural()),
        )
        .await;
        assert_eq!(rows, expected, "{file}: PostgreSQL rows = distinct ids");
        let nodes = graph_count(
            &graph,
            &format!(
                "MATCH (n:`{}`) WHERE n.sha256 IS NOT NULL RETURN count(n) AS n",
                node_label(*kind)
            ),
        )
        .await;
        assert_eq!(nodes, expected, "{file}: Neo4j nodes = distinct ids");
        assert_eq!(env.dead_letters("tableinator", *kind).await, 0);
        assert_eq!(env.dead_letters("graphinator", *kind).await, 0);
    }
    // Every step once: four kinds and the final one, in both databases.
    let steps_sql =
        format!("SELECT count(*) FROM {schema}.consumer_steps WHERE extraction = '{VERSION}'");
    assert_eq!(count(&client, &steps_sql).await, 5);
    let step_cypher =
        format!("MATCH (s:`{ns}ConsumerStep` {{extraction: '{VERSION}'}}) RETURN count(s) AS n");
    assert_eq!(graph_count(&graph, &step_cypher).await, 5);
    let stamps_sql = format!(
        "SELECT string_agg(step || done_at::text, ',' ORDER BY step) FROM {schema}.consumer_steps"
    );
    let stamps: String = client.query_one(&stamps_sql, &[]).await.unwrap().get(0);
    let graph_stamps_cypher = format!(
        "MATCH (s:`{ns}ConsumerStep`) WITH s ORDER BY s.step RETURN reduce(a = '', x IN collect(toString(s.done_at)) | a + x) AS n"
    );
    let graph_stamps = {
        let mut rows = graph
            .graph()
            .execute(neo4rs::query(&graph_stamps_cypher))
            .await
            .unwrap();
        rows.next()
            .await
            .unwrap()
            .unwrap()
            .get::<String>("n")
            .unwrap()
    };
    // The aggregates ran: no isolated stub is left.
    let stubs = graph_count(
        &graph,
        &format!(
            "MATCH (n) WHERE any(l IN labels(n) WHERE l STARTS WITH '{ns}') AND n.sha256 IS NULL \
             AND NOT n:`{ns}Genre` AND NOT n:`{ns}Style` AND NOT n:`{ns}ConsumerStep` AND NOT (n)--() RETURN count(n) AS n"
        ),
    )
    .await;
    assert_eq!(stubs, 0, "isolated stubs removed by the final step");

    // Everything again: the same batches, the same extraction_complete.
    let before_pg: Vec<u64> = RecordKind::ALL
        .iter()
        .map(|k| tableinator.stats.records(*k))
        .collect();
    let first = serde_json::Value::Object(tableinator.stats.report());
    let written_before: std::collections::HashMap<RecordKind, u64> = RecordKind::ALL
        .iter()
        .map(|k| {
            let k2 = &first["kinds"][k.plural()];
            (
                *k,
                k2["inserted"].as_u64().unwrap() + k2["updated"].as_u64().unwrap(),
            )
        })
        .collect();
    publish(&env, &files, 20).await;
    tableinator
        .wait_for("the second completion", limit, all_complete(2))
        .await;
    graphinator
        .wait_for("the second completion", limit, all_complete(2))
        .await;
    for (i, (kind, file, records)) in files.iter().enumerate() {
        let expected = i64::try_from(distinct(records)).unwrap();
        let rows = count(
            &client,
            &format!("SELECT count(*) FROM {schema}.{}", kind.plural()),
        )
        .await;
        assert_eq!(rows, expected, "{file}: rows after redelivery");
        assert_eq!(
            tableinator.stats.records(*kind) - before_pg[i],
            records.len() as u64,
            "{file}: every record handled again"
        );
    }
    let report = serde_json::Value::Object(tableinator.stats.report());
    for kind in RecordKind::ALL {
        let k = &report["kinds"][kind.plural()];
        let written = k["inserted"].as_u64().unwrap() + k["updated"].as_u64().unwrap();
        assert_eq!(
            written, written_before[&kind],
            "{kind}: the second pass wrote nothing ({k})"
        );
        assert!(k["last_message_at"].is_string());
    }
    assert_eq!(count(&client, &steps_sql).await, 5, "no step ran twice");
    let stamps_after: String = client.query_one(&stamps_sql, &[]).await.unwrap().get(0);
    assert_eq!(stamps, stamps_after, "the steps' times are unchanged");
    let graph_stamps_after = {
        let mut rows = graph
            .graph()
            .execute(neo4rs::query(&graph_stamps_cypher))
            .await
            .unwrap();
        rows.next()
            .await
            .unwrap()
            .unwrap()
            .get::<String>("n")
            .unwrap()
    };
    assert_eq!(graph_stamps, graph_stamps_after);
    assert!(tableinator.status.is_healthy() && graphinator.status.is_healthy());
    let health = tableinator.status.report();
    assert_eq!(health["kinds"]["releases"]["dead_lettered"], 0);

    tableinator.stop().await;
    graphinator.stop().await;
    env.clean_up().await;
}

/// An id that no database can store is a permanent error: the batch goes to the
/// dead-letter queue with the error as its reason, the good batches are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permanent_failure_is_dead_lettered_with_its_reason() {
    let _shared = SHARED.read().await;
    let Some(env) = Env::new("consumers_dlq", false) else {
        return;
    };
    let tableinator = env.tableinator().await;
    let mut publisher = env.publisher(1);
    let file = format!("discogs_{VERSION}_artists.xml.gz");
    publisher
        .begin_file(
            FileRef::new(RecordKind::Artist, VERSION, file.as_str()),
            Resume::default(),
        )
        .unwrap();
    for id in [1, u64::MAX, 2] {
        let artist = Artist {
            id,
            name: format!("artist {id}").into(),
            ..Default::default()
        };
        publisher
            .publish(&SinkRecord::new(Record::from(artist)))
            .await
            .unwrap();
    }
    publisher.end_file().await.unwrap();
    publisher.close().await.unwrap();
    tableinator
        .wait_for("the dead letter", Duration::from_secs(120), |s| {
            s.dead_lettered(RecordKind::Artist) == 1 && s.records(RecordKind::Artist) == 2
        })
        .await;
    assert_eq!(env.dead_letters("tableinator", RecordKind::Artist).await, 1);
    let client = pg_client(&env.pg_url).await;
    let ids: Vec<i64> = client
        .query(
            &format!("SELECT id FROM \"{}\".artists ORDER BY id", env.schema),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [1, 2]);
    // The reason travels in a header of the dead-lettered message.
    let connection = Connection::connect(&env.amqp, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let message = channel
        .basic_get(
            env.topology
                .dead_letter_queue("tableinator", RecordKind::Artist)
                .as_str()
                .into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("a dead letter");
    let reason = dead_letter_reason(message.properties.headers().as_ref()).expect("a reason");
    assert!(reason.contains("18446744073709551615"), "reason: {reason}");
    connection.close(0, "done".into()).await.ok();
    assert!(tableinator.status.is_healthy());
    tableinator.stop().await;
    env.clean_up().await;
}

/// The tableinator's PostgreSQL sessions are killed again and again while it writes: it
/// retries in process and ends with every record, nothing dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_is_retried_without_dead_letters() {
    let _shared = SHARED.read().await;
    let Some(dir) = shared_fixtures() else { return };
    let Some(env) = Env::new("consumers_outage", false) else {
        return;
    };
    let files = dump(&dir);
    let admin = pg_client(&env.pg_url).await;
    let tableinator = env.tableinator().await;
    let start = Instant::now();
    while tableinator.status.state() != "running" {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "tableinator did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A held lock keeps its writes waiting inside their transactions; then their sessions
    // are terminated, three times: each write fails with a retriable error in mid-flight.
    let tables: Vec<String> = RecordKind::ALL
        .iter()
        .map(|k| format!("\"{}\".{}", env.schema, k.plural()))
        .collect();
    admin
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            tables.join(", ")
        ))
        .await
        .expect("lock");
    let publishing = {
        let env = Env {
            neo4j: None,
            ..env.clone_names()
        };
        let files = files.clone();
        tokio::spawn(async move { publish(&env, &files, 5).await })
    };
    let mut killed = 0;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        killed += admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&env.app],
            )
            .await
            .unwrap()
            .len();
    }
    admin.batch_execute("COMMIT").await.expect("unlock");
    publishing.await.unwrap();
    assert!(killed > 0, "the outage hit the tableinator's sessions");
    tableinator
        .wait_for(
            "every kind complete",
            Duration::from_secs(300),
            all_complete(1),
        )
        .await;
    assert_rows_and_no_dead_letters(&env, &tableinator, &files).await;
    let report = serde_json::Value::Object(tableinator.stats.report());
    let retries: u64 = RecordKind::ALL
        .iter()
        .map(|k| report["kinds"][k.plural()]["retries"].as_u64().unwrap())
        .sum();
    eprintln!("sessions killed: {killed}, retried attempts: {retries}");
    assert!(retries > 0, "some writes failed and were retried: {report}");
    tableinator.stop().await;
    env.clean_up().await;
}

/// Node and relationship counts of a namespace, per label and per type.
async fn graph_shape(config: &Neo4jSinkConfig) -> Vec<(String, i64)> {
    let sink = Neo4jSink::new(config.clone()).unwrap();
    let ns = sink.names().namespace().to_owned();
    let mut out = Vec::new();
    for cypher in [
        format!("MATCH (n) WHERE any(l IN labels(n) WHERE l STARTS WITH '{ns}') AND NOT n:`{ns}ConsumerStep` UNWIND labels(n) AS l RETURN l AS k, count(*) AS n ORDER BY k"),
        format!("MATCH (a)-[r]->() WHERE any(l IN labels(a) WHERE l STARTS WITH '{ns}') RETURN type(r) AS k, count(*) AS n ORDER BY k"),
    ] {
        let mut rows = sink.graph().execute(neo4rs::query(&cypher)).await.unwrap();
        while let Some(row) = rows.next().await.unwrap() {
            let k: String = row.get("k").unwrap();
            out.push((k.replacen(&ns, "", 1), row.get::<i64>("n").unwrap()));
        }
    }
    out
}

/// The graphinator is killed (its tasks dropped, connections gone) in the middle and
/// started again: the graph ends the same as a clean run's, nothing dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graphinator_killed_and_restarted_ends_like_a_clean_run() {
    let _shared = SHARED.read().await;
    let Some(dir) = shared_fixtures() else { return };
    let Some(killed_env) = Env::new("consumers_kill", true) else {
        return;
    };
    let Some(clean_env) = Env::new("consumers_clean", true) else {
        return;
    };
    let files = dump(&dir);
    let limit = Duration::from_secs(300);

    let clean = clean_env.graphinator().await;
    publish(&clean_env, &files, 2).await;
    clean
        .wait_for("the clean run", limit, all_complete(1))
        .await;
    clean.stop().await;

    let first = killed_env.graphinator().await;
    publish(&killed_env, &files, 2).await;
    first
        .wait_for("some records", limit, |s| {
            RecordKind::ALL.iter().map(|k| s.records(*k)).sum::<u64>() >= 20
        })
        .await;
    first.task.abort();
    assert!(first.task.await.unwrap_err().is_cancelled());
    // A kind the first run finished before it was killed (its `extraction_complete`
    // handled and acked, on a fast run of a small file) never reaches the second run.
    let finished_first = first.stats;
    let second = killed_env.graphinator().await;
    second
        .wait_for("the restarted run", limit, |s| {
            RecordKind::ALL
                .iter()
                .all(|k| s.extractions_complete(*k) + finished_first.extractions_complete(*k) >= 1)
        })
        .await;
    for kind in RecordKind::ALL {
        assert_eq!(killed_env.dead_letters("graphinator", kind).await, 0);
    }
    let expected = graph_shape(clean_env.neo4j.as_ref().unwrap()).await;
    assert!(!expected.is_empty());
    assert_eq!(
        graph_shape(killed_env.neo4j.as_ref().unwrap()).await,
        expected
    );
    second.stop().await;
    killed_env.clean_up().await;
    clean_env.clean_up().await;
}
