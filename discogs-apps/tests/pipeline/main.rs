//! The `discogsography` command against the real RabbitMQ, PostgreSQL and Neo4j
//! (`scripts/services up`):
//!
//! * the binary with no input flag writes the built-in sample, loads it through RabbitMQ
//!   into both databases (counts per kind equal the sample's records), prints the summary
//!   and where to look next; run again, it publishes nothing;
//! * through the in-process bus, the 2020-08 dump excerpt (four kinds) lands in both
//!   databases with counts equal to the distinct ids of its files.
//!
//! Each test has its own queue prefix, PostgreSQL schema, Neo4j namespace and data folder
//! ([`discogs_testkit::Scope`]) and removes them at the end. Without the services the tests
//! skip with a printed reason (and fail under `CI=true`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser as _;
use discogs_apps::consumer::Neo4jTarget;
use discogs_apps::pipeline::{self, Ending, PipelineArgs};
use discogs_apps::shutdown::Shutdown;
use discogs_benches::sample::SampleSize;
use discogs_bus::{Admin, Topology};
use discogs_model::RecordKind;
use discogs_sink_neo4j::{Neo4jSink, Neo4jSinkConfig};
use discogs_testkit::{read_records, require, shared_fixtures, Config, Scope, Service};

/// A test's names on the three services and its data folder.
struct Env {
    amqp: Config,
    pg: Config,
    neo4j: Config,
    prefix: String,
    schema: String,
    namespace: String,
    data_dir: PathBuf,
}

impl Env {
    /// `None` (skipped) when a service is missing.
    fn new(tag: &str) -> Option<Env> {
        let amqp = require(Service::RabbitMq)?;
        let pg = require(Service::Postgres)?;
        let neo4j = require(Service::Neo4j)?;
        let scope = Scope::new(tag);
        Some(Env {
            amqp,
            pg,
            neo4j,
            prefix: scope.queue_prefix(),
            schema: scope.schema(),
            namespace: format!("{}_", scope.label()),
            data_dir: std::env::temp_dir().join(format!("discogsography-test-{}", scope.id())),
        })
    }

    /// The command line's flags for this test's names (every setting explicit, so the
    /// environment of the machine does not matter).
    fn flags(&self) -> Vec<String> {
        let mut flags = vec![
            "--data-dir".to_owned(),
            self.data_dir.display().to_string(),
            "--amqp-connection".into(),
            self.amqp.url().to_owned(),
            "--exchange-prefix".into(),
            self.prefix.clone(),
            "--postgres-address".into(),
            self.pg.address(),
            "--postgres-username".into(),
            self.pg.username().unwrap_or("postgres").to_owned(),
            "--postgres-password".into(),
            self.pg.password().unwrap_or_default().to_owned(),
            "--postgres-database".into(),
            self.pg
                .path()
                .unwrap_or("postgres")
                .trim_start_matches('/')
                .to_owned(),
            "--postgres-schema".into(),
            self.schema.clone(),
            "--neo4j-address".into(),
            self.neo4j.url().to_owned(),
            "--neo4j-username".into(),
            self.neo4j.username().unwrap_or("neo4j").to_owned(),
            "--neo4j-password".into(),
            self.neo4j.password().unwrap_or_default().to_owned(),
            "--neo4j-namespace".into(),
            self.namespace.clone(),
        ];
        flags.push("--quiet".into());
        flags
    }

    fn neo4j_config(&self) -> Neo4jSinkConfig {
        Neo4jSinkConfig::new(
            self.neo4j.url(),
            self.neo4j.username().unwrap_or("neo4j"),
            self.neo4j.password().unwrap_or_default(),
        )
        .namespace(&self.namespace)
    }

    async fn pg_client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(self.pg.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(connection);
        client
    }

    /// Rows per table and complete (non-stub) nodes per label, by kind.
    async fn counts(&self) -> BTreeMap<RecordKind, (i64, i64)> {
        let client = self.pg_client().await;
        let sink = Neo4jSink::new(self.neo4j_config()).expect("Neo4j sink");
        let mut out = BTreeMap::new();
        for kind in RecordKind::ALL {
            let rows: i64 = client
                .query_one(
                    &format!("SELECT count(*) FROM \"{}\".{}", self.schema, kind.plural()),
                    &[],
                )
                .await
                .expect("count rows")
                .get(0);
            let cypher = format!(
                "MATCH (n:`{}`) WHERE n.sha256 IS NOT NULL RETURN count(n) AS n",
                sink.names().label(kind)
            );
            let mut result = sink
                .graph()
                .execute(neo4rs::query(&cypher))
                .await
                .expect("count nodes");
            let nodes: i64 = result
                .next()
                .await
                .expect("row")
                .expect("one row")
                .get("n")
                .expect("n");
            out.insert(kind, (rows, nodes));
        }
        out
    }

    /// Removes the queues, exchanges, schema, namespace and data folder.
    async fn clean_up(self) {
        let admin = Admin::connect(self.amqp.url(), Topology::with_prefix(&self.prefix))
            .await
            .expect("admin");
        for name in ["graphinator", "tableinator"] {
            admin
                .delete_consumer(name, &RecordKind::ALL)
                .await
                .expect("delete queues");
        }
        admin
            .delete_exchanges(&RecordKind::ALL)
            .await
            .expect("delete exchanges");
        admin.close().await.ok();
        self.pg_client()
            .await
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ))
            .await
            .expect("drop schema");
        let sink = Neo4jSink::new(self.neo4j_config()).expect("sink");
        let steps =
            Neo4jTarget::new(Neo4jSink::new(self.neo4j_config()).expect("sink")).step_label();
        sink.graph()
            .run(neo4rs::query(&format!("MATCH (s:`{steps}`) DELETE s")))
            .await
            .expect("delete step nodes");
        sink.drop_namespace().await.expect("drop namespace");
        std::fs::remove_dir_all(&self.data_dir).ok();
    }
}

/// Runs the `discogsography` binary with `flags`, killing it after `limit`; returns its
/// exit code and standard output (standard error goes to the test's).
fn run_binary(flags: &[String], limit: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_discogsography"))
        .args(flags)
        .env("LOG_LEVEL", "WARNING")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start discogsography");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("discogsography did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_loads_the_sample_through_rabbitmq_and_a_second_run_publishes_nothing() {
    let Some(env) = Env::new("pipeline_sample") else {
        return;
    };
    let releases = 300;
    let mut flags = env.flags();
    flags.extend(["--sample-releases".into(), releases.to_string()]);
    let limit = Duration::from_secs(600);

    let run = flags.clone();
    let (code, out) = tokio::task::spawn_blocking(move || run_binary(&run, limit))
        .await
        .expect("first run");
    assert_eq!(code, Some(0), "first run's output:\n{out}");
    let size = SampleSize::releases(releases);
    assert!(
        out.contains(&format!(
            "sample dump ({releases} releases, {} records) version {} via RabbitMQ: loaded",
            size.total(),
            pipeline::SAMPLE_VERSION
        )),
        "{out}"
    );
    for kind in RecordKind::ALL {
        let n = size.of(kind);
        let line = out
            .lines()
            .find(|l| l.starts_with(kind.plural()))
            .unwrap_or_else(|| panic!("no line for {kind} in\n{out}"));
        let fields: Vec<&str> = line.split_whitespace().collect();
        // kind, published, then "new / changed / unchanged" for Neo4j and PostgreSQL, dead.
        assert_eq!(fields[1], n.to_string(), "{line}");
        assert_eq!(&fields[2..5], [n.to_string().as_str(), "/", "0"], "{line}");
        assert_eq!(fields.last(), Some(&"0"), "no dead letters: {line}");
    }
    assert!(
        out.contains("Next:") && out.contains("http://127.0.0.1:8003"),
        "{out}"
    );
    let counts = env.counts().await;
    for kind in RecordKind::ALL {
        let n = i64::try_from(size.of(kind)).expect("small");
        assert_eq!(
            counts[&kind],
            (n, n),
            "{kind}: PostgreSQL rows and Neo4j nodes"
        );
    }

    let run = flags.clone();
    let (code, out) = tokio::task::spawn_blocking(move || run_binary(&run, limit))
        .await
        .expect("second run");
    assert_eq!(code, Some(0), "second run's output:\n{out}");
    assert!(
        out.contains("already loaded: nothing new to publish"),
        "{out}"
    );
    assert!(out.contains("0 records published"), "{out}");
    assert_eq!(env.counts().await, counts, "nothing changed");
    env.clean_up().await;
}

/// Distinct ids per kind of the four files of `version` in `dir`.
fn distinct_ids(dir: &Path, version: &str) -> BTreeMap<RecordKind, i64> {
    RecordKind::ALL
        .iter()
        .map(|kind| {
            let path = dir.join(format!("discogs_{version}_{}.xml.gz", kind.plural()));
            let (read, records) = read_records(&path);
            assert_eq!(read, *kind);
            let ids: HashSet<u64> = records.iter().map(|r| r.record.id()).collect();
            (*kind, i64::try_from(ids.len()).expect("small"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_folder_through_the_in_process_bus_lands_in_both_databases() {
    let Some(env) = Env::new("pipeline_memory") else {
        return;
    };
    let Some(fixtures) = shared_fixtures() else {
        return;
    };
    // The excerpt's folder also holds a 2017-04 dump and a 2026-02 masters file; a folder
    // of links to the 2020-08 files is the input (the newest date of a folder is taken).
    let source = fixtures.join("philipmat__discogs-xml2db");
    let dir = env.data_dir.join("input");
    std::fs::create_dir_all(&dir).expect("input folder");
    for kind in RecordKind::ALL {
        let name = format!("discogs_20200806_{}.xml.gz", kind.plural());
        std::os::unix::fs::symlink(source.join(&name), dir.join(&name)).expect("link");
    }
    let expected = distinct_ids(&dir, "20200806");
    let mut flags = vec!["discogsography".to_owned()];
    flags.extend(env.flags());
    flags.extend([
        "--bus".into(),
        "memory".into(),
        "--input".into(),
        dir.display().to_string(),
    ]);
    let args = PipelineArgs::try_parse_from(&flags).expect("flags");
    let summary = tokio::time::timeout(
        Duration::from_secs(600),
        pipeline::run(args, Shutdown::new()),
    )
    .await
    .expect("the pipeline finishes within 10 minutes")
    .expect("the pipeline succeeds");
    assert_eq!(summary.version.as_deref(), Some("20200806"));
    assert_eq!(summary.ending, Ending::Completed);
    assert_eq!(summary.dead_letters(), 0);
    let counts = env.counts().await;
    for kind in RecordKind::ALL {
        let k = summary.kinds[&kind];
        let n = u64::try_from(expected[&kind]).expect("positive");
        assert_eq!(
            k.published, n,
            "{kind}: every distinct record published once"
        );
        assert_eq!(
            k.graph.inserted + k.graph.updated + k.graph.unchanged,
            n,
            "{kind}"
        );
        assert_eq!(k.tables.inserted, n, "{kind}");
        assert_eq!(counts[&kind], (expected[&kind], expected[&kind]), "{kind}");
    }
    env.clean_up().await;
}
