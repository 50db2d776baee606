//! PostgreSQL really stopped for 30 seconds while the tableinator consumes: it waits,
//! retries, and finishes with every record, nothing dead-lettered.
//!
//! The server is stopped and started with `scripts/services stop postgres` /
//! `start postgres` (the script of this checkout, or `DISCOGS_SERVICES_SCRIPT`; its data in
//! `.services/` or `DISCOGS_SERVICES_DIR`). Everything else that uses this PostgreSQL fails
//! meanwhile, so the test holds [`SHARED`] for writing (no other test of this binary
//! runs) and should not run while other people's tests use the same server. It skips when
//! the services are not this script's (`DISCOGS_EXTERNAL_SERVICES=1`) or the script cannot
//! stop the server, except under `CI=true`, where that fails.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use discogs_model::RecordKind;
use discogs_testkit::{read_records, shared_fixtures};

use crate::{all_complete, assert_rows_and_no_dead_letters, publish, Env, SHARED};

/// The 2020-08 excerpt: enough batches that the consumer is mid-way when the server stops.
const BIG: &str = "20200806";

fn services_script() -> PathBuf {
    std::env::var_os("DISCOGS_SERVICES_SCRIPT").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services"),
        PathBuf::from,
    )
}

/// Runs `scripts/services <what> postgres`; `Err` with its output when it fails.
fn services(what: &str) -> Result<(), String> {
    let out = Command::new(services_script())
        .args([what, "postgres"])
        .output()
        .map_err(|e| format!("running {}: {e}", services_script().display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "scripts/services {what} postgres: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether a new session can be opened.
async fn pg_reachable(url: &str) -> bool {
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await
    .is_ok_and(|r| r.is_ok())
}

/// Skips (returns `false`) or, under `CI=true`, fails with `why`.
fn cannot(why: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the PostgreSQL outage test cannot run: {why}"
    );
    eprintln!("skipped: the PostgreSQL outage test cannot run: {why}");
    false
}

/// Stops PostgreSQL; `false` (skipped) when this checkout's script cannot.
async fn stop_postgres(url: &str) -> bool {
    if std::env::var("DISCOGS_EXTERNAL_SERVICES").as_deref() == Ok("1") {
        return cannot("DISCOGS_EXTERNAL_SERVICES=1: the server is not scripts/services'");
    }
    if let Err(e) = services("stop") {
        return cannot(&e);
    }
    if pg_reachable(url).await {
        return cannot(
            "PostgreSQL still answers after `scripts/services stop postgres` \
             (a server this checkout's script did not start; set DISCOGS_SERVICES_DIR)",
        );
    }
    true
}

/// PostgreSQL stopped for 30 seconds in the middle: the tableinator waits, retries and
/// finishes with the right counts, nothing dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_for_30_seconds_mid_run_costs_nothing() {
    let _exclusive = SHARED.write().await;
    let Some(dir) = shared_fixtures() else { return };
    let Some(env) = Env::new("consumers_pg_stop", false) else {
        return;
    };
    let result = tokio::time::timeout(Duration::from_secs(600), async {
        outage_body(&env, &dir).await;
    })
    .await;
    // Whatever happened, the server is started again for everyone else.
    if !pg_reachable(&env.pg_url).await {
        services("start").expect("start PostgreSQL again");
    }
    result.expect("the test finished within 10 minutes");
    env.clean_up().await;
}

async fn outage_body(env: &Env, dir: &std::path::Path) {
    let files: Vec<_> = RecordKind::ALL
        .iter()
        .map(|kind| {
            let file = format!("discogs_{BIG}_{}.xml.gz", kind.plural());
            let (read, records) = read_records(&dir.join("philipmat__discogs-xml2db").join(&file));
            assert_eq!(read, *kind);
            (read, file, records)
        })
        .collect();
    let total: usize = files.iter().map(|f| f.2.len()).sum();
    let tableinator = env.tableinator().await;
    publish(env, &files, 5).await;
    tableinator
        .wait_for("the first records", Duration::from_secs(120), |s| {
            RecordKind::ALL.iter().map(|k| s.records(*k)).sum::<u64>() >= 200
        })
        .await;
    if !stop_postgres(&env.pg_url).await {
        tableinator.stop().await;
        return;
    }
    let stopped = Instant::now();
    let written_at_stop: u64 = RecordKind::ALL
        .iter()
        .map(|k| tableinator.stats.records(*k))
        .sum();
    assert!(
        written_at_stop < total as u64,
        "the outage starts in the middle ({written_at_stop} of {total} records written)"
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    let report = serde_json::Value::Object(tableinator.stats.report());
    let retries: u64 = RecordKind::ALL
        .iter()
        .map(|k| report["kinds"][k.plural()]["retries"].as_u64().unwrap())
        .sum();
    assert!(retries > 0, "writes failed and were retried: {report}");
    assert!(
        tableinator.status.is_healthy(),
        "waiting for the database is not a failure"
    );
    services("start").expect("start PostgreSQL again");
    eprintln!(
        "PostgreSQL down for {:.1} s; {written_at_stop} of {total} records written before; {retries} retried attempts",
        stopped.elapsed().as_secs_f64()
    );
    tableinator
        .wait_for(
            "every kind complete after the outage",
            Duration::from_secs(400),
            all_complete(1),
        )
        .await;
    assert_rows_and_no_dead_letters(env, &tableinator, &files).await;
    tableinator.stop().await;
}
