//! The `discogsography` command against the real RabbitMQ, PostgreSQL and Neo4j
//! (`scripts/services up`):
//!
//! * the binary with no input flag writes the built-in sample, loads it through RabbitMQ
//!   into both databases (counts per kind equal the sample's records), prints the summary
//!   and where to look next; run again, it publishes nothing;
//! * through the in-process bus, the 2020-08 dump excerpt (four kinds) lands in both
//!   databases with counts equal to the distinct ids of its files;
//! * with `--serve-health`, a health port in use stops the run before any work.
//!
//! Each test has its own queue prefix, PostgreSQL schema, Neo4j namespace and data folder
//! ([`discogs_testkit::Scope`]) and removes them at the end. Without the services the tests
//! skip with a printed reason (and fail under `CI=true`).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser as _;
use discogs_apps::pipeline::{self, Ending, PipelineArgs};
use discogs_apps::shutdown::Shutdown;
use discogs_benches::sample::SampleSize;
use discogs_model::RecordKind;
use discogs_testkit::{read_records, shared_fixtures};

#[path = "../common/stack.rs"]
mod stack;

use stack::Env;

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

/// With `--serve-health`, a health port already in use stops the run before any work: no
/// database is contacted, no sample written, and the error names the address. (It needs no
/// services: the ports are bound first.)
#[test]
fn a_health_port_in_use_stops_the_run_before_any_work() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("address").port();
    let data = std::env::temp_dir().join(format!("discogsography-health-port-{port}"));
    std::fs::remove_dir_all(&data).ok();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_discogsography"))
        .args(["--serve-health", "--sample-releases", "10", "--quiet"])
        .arg("--health-port")
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(&data)
        // Unreachable databases: contacting them first would fail with another error.
        .env("NEO4J_ADDRESS", "bolt://127.0.0.1:1")
        .env("POSTGRES_ADDRESS", "127.0.0.1:1")
        .env("AMQP_CONNECTION", "amqp://guest:guest@127.0.0.1:1/%2f")
        .output()
        .expect("run discogsography");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("binding the health server to 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(!data.exists(), "no sample written at {}", data.display());
    drop(taken);
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
    let names: Vec<String> = RecordKind::ALL
        .iter()
        .map(|kind| format!("discogs_20200806_{}.xml.gz", kind.plural()))
        .collect();
    let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), n.as_str())).collect();
    let dir = env.link_input(&fixtures.join("philipmat__discogs-xml2db"), &files);
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
