//! The dashboard following the real pipeline: `discogsography --serve-health` loads a
//! generated dump through RabbitMQ into PostgreSQL and Neo4j while the dashboard collects
//! from its three stages' `/health`, the broker, and the databases. The stages show as
//! healthy, the consumers' record counts rise between snapshots, the test's queues appear,
//! and at the end the counts equal what was written.

use std::time::{Duration, Instant};

use clap::Parser as _;
use discogs_apps::pipeline::{self, Ending, PipelineArgs};
use discogs_apps::shutdown::Shutdown;
use serde_json::Value;

use crate::stack::Env;
use crate::util::{next_snapshot, service, ws_connect, RunningDashboard, Services};

/// Three consecutive free ports (the pipeline's health servers: base, +1, +2).
async fn three_free_ports() -> u16 {
    for _ in 0..50 {
        let first = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = first.local_addr().expect("addr").port();
        if base > 65_000 {
            continue;
        }
        let mut rest = Vec::new();
        for port in [base + 1, base + 2] {
            if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                rest.push(l);
            }
        }
        if rest.len() == 2 {
            return base;
        }
    }
    panic!("no three consecutive free ports");
}

/// Whether the snapshot's queue list holds `name`.
fn lists_queue(snapshot: &Value, name: &str) -> bool {
    snapshot["rabbitmq"]["data"]["queues"]
        .as_array()
        .is_some_and(|queues| queues.iter().any(|q| q["name"] == name))
}

fn records(snapshot: &Value, name: &str) -> Option<u64> {
    service(snapshot, name)["records"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_rise_while_the_real_pipeline_runs() {
    let Some(services) = Services::require() else {
        return;
    };
    let Some(env) = Env::new("dash_pipeline") else {
        return;
    };
    let port = three_free_ports().await;
    let mut argv = vec!["discogsography".to_owned()];
    argv.extend(env.flags());
    argv.extend([
        "--sample-releases".into(),
        "20000".into(),
        "--serve-health".into(),
        "--health-port".into(),
        port.to_string(),
    ]);
    let args = PipelineArgs::try_parse_from(&argv).expect("flags");
    let shutdown = Shutdown::new();
    let run = tokio::spawn(pipeline::run(args, shutdown.clone()));

    let target =
        |name: &str, offset: u16| format!("{name}=http://127.0.0.1:{}/health", port + offset);
    let (extractor, graphinator, tableinator) = (
        target("extractor", 0),
        target("graphinator", 1),
        target("tableinator", 2),
    );
    let dashboard = RunningDashboard::start(services.dashboard_args(
        &env.scope,
        &[
            "--service",
            &extractor,
            "--service",
            &graphinator,
            "--service",
            &tableinator,
        ],
    ))
    .await;
    let mut ws = ws_connect(dashboard.addr).await;

    // While the pipeline runs: every stage healthy, and both consumers' counts rising
    // from one snapshot to a later one.
    let queue = format!("{}-tableinator-releases", env.prefix);
    let started = Instant::now();
    let mut first_seen: Option<(u64, u64)> = None;
    let mut rose = false;
    let mut queue_seen = false;
    let mut trace = Vec::new();
    while !rose {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the consumers' counts did not rise on the dashboard within 300 s"
        );
        if run.is_finished() {
            let ended = run.await.expect("pipeline task");
            panic!(
                "the pipeline ended before the counts rose twice: {ended:?}\nservices per snapshot: {}",
                Value::Array(trace)
            );
        }
        let snapshot = next_snapshot(&mut ws, Duration::from_secs(10)).await;
        queue_seen |= lists_queue(&snapshot, &queue);
        let last = Value::Array(
            ["extractor", "graphinator", "tableinator"]
                .iter()
                .map(|name| {
                    let s = service(&snapshot, name);
                    serde_json::json!([name, s["status"], s["records"], s["reason"]])
                })
                .collect(),
        );
        trace.push(last);
        let healthy = ["extractor", "graphinator", "tableinator"]
            .iter()
            .all(|name| service(&snapshot, name)["status"] == "healthy");
        let (Some(graph), Some(tables)) = (
            records(&snapshot, "graphinator"),
            records(&snapshot, "tableinator"),
        ) else {
            continue;
        };
        if !healthy || graph == 0 || tables == 0 {
            continue;
        }
        match first_seen {
            None => first_seen = Some((graph, tables)),
            Some((g, t)) => rose = graph > g && tables > t,
        }
    }
    // The broker's management API may lag on a loaded machine: the queue (declared before
    // publishing, kept until the clean-up) must show within 30 s more.
    let listed = Instant::now();
    while !queue_seen {
        assert!(
            listed.elapsed() < Duration::from_secs(30),
            "the dashboard lists the queue {queue}"
        );
        let snapshot = next_snapshot(&mut ws, Duration::from_secs(10)).await;
        queue_seen = lists_queue(&snapshot, &queue);
    }

    let summary = tokio::time::timeout(Duration::from_secs(900), run)
        .await
        .expect("the pipeline finishes within 15 minutes")
        .expect("pipeline task")
        .expect("the pipeline succeeds");
    assert_eq!(summary.ending, Ending::Completed);
    assert_eq!(summary.dead_letters(), 0);
    dashboard.stop().await;
    env.clean_up().await;
}
