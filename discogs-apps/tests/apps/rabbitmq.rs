//! The extractor binary against the real RabbitMQ: killed (SIGKILL) mid-publish and
//! restarted, the queue ends with every record as a clean run gives and the restart did
//! not start over (its log shows the resume point); a second run publishes nothing; the
//! 2025 kiraririria releases over the 2025-11 excerpt publish exactly the changed records.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use discogs_apps::extractor::state::VersionState;
use discogs_bus::{Admin, AmqpConsumer, Consumer as _, ConsumerConfig, Topology};
use discogs_model::wire::Message;
use discogs_model::{RecordHash, RecordKind};
use discogs_testkit::{require, Scope, Service};

use crate::extract::{records_of, temp_root, EXCERPT_2025_11, KIRARIRIRIA_2025};

const CONSUMER: &str = "tests";

/// What the queue held: batches as (seq, records), and file_complete counts.
#[derive(Debug, Default)]
struct Drained {
    batches: Vec<(u64, Vec<(u64, RecordHash)>)>,
    file_complete: Vec<u64>,
}

impl Drained {
    fn records(&self) -> impl Iterator<Item = &(u64, RecordHash)> {
        self.batches.iter().flat_map(|b| b.1.iter())
    }
}

async fn drain(url: &str, topology: &Topology) -> Drained {
    let config = ConsumerConfig {
        kinds: vec![RecordKind::Release],
        prefetch: 64,
        ..ConsumerConfig::new(CONSUMER)
    };
    let mut consumer = AmqpConsumer::new(url, topology.clone(), config).unwrap();
    let mut out = Drained::default();
    while let Ok(delivery) = tokio::time::timeout(Duration::from_secs(3), consumer.next()).await {
        let delivery = delivery.unwrap();
        match delivery.message().unwrap() {
            Message::Batch(b) => out.batches.push((
                b.seq,
                b.records.iter().map(|r| (r.record.id(), r.hash)).collect(),
            )),
            Message::FileComplete(f) => out.file_complete.push(f.records),
            _ => {}
        }
        delivery.ack().await.unwrap();
    }
    consumer.close().await.unwrap();
    out
}

fn extractor(root: &Path, input: &Path, prefix: &str, url: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_extractor"));
    cmd.args(["--discogs-root", &root.display().to_string()])
        .args(["--input", &input.display().to_string()])
        .args([
            "--exchange-prefix",
            prefix,
            "--consumers",
            CONSUMER,
            "--health-port",
            "0",
        ])
        .args(["--max-workers", "2"])
        .args(extra)
        .env("AMQP_CONNECTION", url)
        .env("LOG_LEVEL", "INFO")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

fn run_to_end(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "extractor failed:\n{log}");
    log
}

async fn cleanup(url: &str, topology: &Topology) {
    let admin = Admin::connect(url, topology.clone()).await.unwrap();
    admin
        .delete_consumer(CONSUMER, &RecordKind::ALL)
        .await
        .unwrap();
    admin.delete_exchanges(&RecordKind::ALL).await.unwrap();
    admin.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_publish_resumes_from_the_last_confirmed_batch() {
    let Some(rabbit) = require(Service::RabbitMq) else {
        return;
    };
    let Some(fixtures) = discogs_testkit::shared_fixtures() else {
        return;
    };
    let scope = Scope::new("extractor_kill");
    let prefix = scope.queue_prefix();
    let topology = Topology::with_prefix(prefix.clone());
    let url = rabbit.url().to_owned();
    let root = temp_root("kill");
    let month = fixtures.join(EXCERPT_2025_11);
    let clean: Vec<(u64, RecordHash)> = records_of(&month);

    // Small batches and a checkpoint after every confirm: many resume points to hit.
    let extra = ["--batch-size", "5", "--checkpoint-secs", "0"];
    let mut child = extractor(&root, &month, &prefix, &url, &extra)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state_file = VersionState::path(&root, "20251101");
    let started = Instant::now();
    let point = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress within 60 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        let p = std::fs::read_to_string(&state_file)
            .ok()
            .and_then(|t| serde_json::from_str::<VersionState>(&t).ok())
            .and_then(|s| s.files.get(&RecordKind::Release).map(|f| f.resume));
        if p.is_some_and(|p| p.batches >= 100) {
            child.kill().unwrap(); // SIGKILL: no graceful anything
            child.wait().unwrap();
            break p.unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    // What the state says after the kill (it may have moved on between read and kill).
    let saved = VersionState::load(&root, "20251101")
        .unwrap()
        .unwrap()
        .files[&RecordKind::Release]
        .resume;
    assert!(saved.batches >= point.batches);

    let log = run_to_end(extractor(&root, &month, &prefix, &url, &extra));
    assert!(
        log.contains("Resuming after the last confirmed batch"),
        "{log}"
    );
    assert!(
        log.contains(&format!("batches={}", saved.batches)),
        "resume point in the log:\n{log}"
    );
    println!("resume point after SIGKILL: {saved:?}");

    let drained = drain(&url, &topology).await;
    // The restart numbered its batches on from the saved point and did not send record 0 again.
    let restart_first = drained
        .batches
        .iter()
        .position(|b| b.0 == saved.batches)
        .unwrap();
    let second_run = &drained.batches[restart_first..];
    assert!(second_run.iter().all(|b| b.0 >= saved.batches));
    assert!(
        !second_run
            .iter()
            .any(|b| b.1.iter().any(|r| r.0 == clean[0].0)),
        "record 0 not published again"
    );
    // Last hash per id = a clean run's, for every id.
    let mut last: BTreeMap<u64, RecordHash> = BTreeMap::new();
    for (id, hash) in drained.records() {
        last.insert(*id, *hash);
    }
    let want: BTreeMap<u64, RecordHash> = clean.iter().copied().collect();
    assert_eq!(last, want);
    // Duplicates only from batches sent after the saved resume point: the confirm window
    // (128 batches of 5), plus the few confirmed batches whose save the SIGKILL overtook
    // (the state is written after a confirm is handled; a loaded machine lags by a few).
    let delivered = drained.records().count();
    let window = 128 * 5;
    assert!(
        delivered >= clean.len() && delivered <= clean.len() + window + window / 2,
        "{delivered} records delivered for {} distinct",
        clean.len()
    );
    assert_eq!(drained.file_complete, vec![4_229]);

    cleanup(&url, &topology).await;
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_run_publishes_nothing_and_an_update_only_the_changes() {
    let Some(rabbit) = require(Service::RabbitMq) else {
        return;
    };
    let Some(fixtures) = discogs_testkit::shared_fixtures() else {
        return;
    };
    let scope = Scope::new("extractor_changes");
    let prefix = scope.queue_prefix();
    let topology = Topology::with_prefix(prefix.clone());
    let url = rabbit.url().to_owned();
    let root = temp_root("changes-amqp");
    let month = fixtures.join(EXCERPT_2025_11);
    let all = records_of(&month);

    run_to_end(extractor(&root, &month, &prefix, &url, &[]));
    let first = drain(&url, &topology).await;
    assert_eq!(first.records().copied().collect::<Vec<_>>(), all);

    let log = run_to_end(extractor(
        &root,
        &month,
        &prefix,
        &url,
        &["--force-reprocess"],
    ));
    let second = drain(&url, &topology).await;
    assert_eq!(
        second.records().count(),
        0,
        "nothing changed, nothing published:\n{log}"
    );
    assert_eq!(
        second.file_complete,
        vec![0],
        "file_complete still tells the consumers"
    );

    let later = fixtures.join(KIRARIRIRIA_2025);
    let old: BTreeMap<u64, RecordHash> = all.iter().copied().collect();
    let changed: Vec<(u64, RecordHash)> = records_of(&later)
        .into_iter()
        .filter(|(id, h)| old.get(id) != Some(h))
        .collect();
    assert_eq!(changed.len(), 7);
    run_to_end(extractor(&root, &later, &prefix, &url, &[]));
    let third = drain(&url, &topology).await;
    assert_eq!(third.records().copied().collect::<Vec<_>>(), changed);

    cleanup(&url, &topology).await;
    std::fs::remove_dir_all(&root).unwrap();
}
