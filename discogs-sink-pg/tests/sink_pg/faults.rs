//! Errors the real server raises: those that can pass are retriable, and the sink goes on
//! after them without losing or doubling anything.

use std::time::Duration;

use discogs_model::conformance::sample_release;
use discogs_model::{RecordKind, Sink, SinkOutcome, SinkRecord};

use crate::{connect, TestDb};

fn releases(ids: std::ops::RangeInclusive<u64>, title: &str) -> Vec<SinkRecord<'static>> {
    ids.map(|id| SinkRecord::new(sample_release(id, &format!("{title} {id}"))))
        .collect()
}

/// A table locked by someone else: the server gives up waiting (`55P03`, lock not
/// available), the error says a retry can help, and the retry once the lock is gone writes
/// the batch exactly once.
#[tokio::test]
async fn a_lock_timeout_is_retriable_and_the_retry_writes_the_batch() {
    let Some(db) = TestDb::new("pg_fault_lock").await else {
        return;
    };
    // Every connection of the sink gives up on a lock after half a second.
    let sep = if db.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}options=-c%20lock_timeout%3D500", db.url);
    let mut sink =
        discogs_sink_pg::PgSink::new(discogs_sink_pg::PgSinkConfig::new(url).schema(&db.schema))
            .expect("valid config");
    sink.migrate().await.unwrap();
    let first = releases(1..=300, "Release");
    let outcome = sink.write_batch(RecordKind::Release, &first).await.unwrap();
    assert_eq!(outcome.inserted, 300);

    // Another session holds the table.
    let mut locker = connect(&db.url).await;
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute(&format!(
        "LOCK TABLE \"{}\".releases IN ACCESS EXCLUSIVE MODE",
        db.schema
    ))
    .await
    .unwrap();

    let changed = releases(201..=500, "Changed");
    let error = sink
        .write_batch(RecordKind::Release, &changed)
        .await
        .expect_err("the table is locked");
    assert_eq!(error.sqlstate(), Some("55P03"), "{error:?}");
    assert!(error.is_retriable(), "{error:?}");

    tx.rollback().await.unwrap();
    let outcome = sink
        .write_batch(RecordKind::Release, &changed)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        SinkOutcome {
            inserted: 200,
            updated: 100,
            unchanged: 0
        }
    );
    assert_eq!(db.count("SELECT count(*) FROM {s}.releases").await, 500);
    assert_eq!(
        db.count("SELECT count(*) FROM {s}.releases WHERE title LIKE 'Changed %'")
            .await,
        300
    );
    db.drop_schema().await;
}

/// The server ends the sink's sessions (`pg_terminate_backend`, as a restart or a failover
/// does): whatever error surfaces is retriable, the sink reconnects by itself, and the
/// data ends exactly as if nothing had happened.
#[tokio::test]
async fn terminated_sessions_are_retriable_and_the_sink_reconnects() {
    let Some(db) = TestDb::new("pg_fault_terminate").await else {
        return;
    };
    let app = format!("test-{}", db.schema);
    let mut sink =
        discogs_sink_pg::PgSink::new(db.config().application_name(&app)).expect("valid config");
    sink.migrate().await.unwrap();
    let first = releases(1..=300, "Release");
    sink.write_batch(RecordKind::Release, &first).await.unwrap();

    let terminated = db
        .count(&format!(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = '{app}') t"
        ))
        .await;
    assert_eq!(terminated, 2, "both streams' sessions");

    let second = releases(301..=600, "Release");
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        match sink.write_batch(RecordKind::Release, &second).await {
            Ok(outcome) => break outcome,
            Err(e) => {
                assert!(e.is_retriable(), "attempt {attempts}: {e:?}");
                assert!(
                    attempts < 3,
                    "still failing after {attempts} attempts: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // A retry after a failure may find part of the batch committed: inserted + unchanged
    // always covers the batch, and nothing was updated.
    assert_eq!(outcome.inserted + outcome.unchanged, 300, "{outcome:?}");
    assert_eq!(outcome.updated, 0, "{outcome:?}");
    assert_eq!(db.count("SELECT count(*) FROM {s}.releases").await, 600);
    db.drop_schema().await;
}
