//! First-load mode: straight COPY into an empty table, indexes dropped and rebuilt,
//! replays still idempotent.

use discogs_model::conformance::sample_release;
use discogs_model::{RecordKind, Sink, SinkOutcome, SinkRecord};

use crate::TestDb;

#[tokio::test]
async fn first_load_copies_straight_in_and_builds_indexes_after() {
    let Some(db) = TestDb::new("pg_first_load").await else {
        return;
    };
    let mut sink = db.sink();
    sink.migrate().await.unwrap();
    let all = count_indexes(&db).await;
    assert_eq!(all, 11, "primary key + 10 secondary indexes");

    assert!(
        sink.begin_first_load(RecordKind::Release).await.unwrap(),
        "empty table: first load"
    );
    assert_eq!(
        count_indexes(&db).await,
        1,
        "only the primary key during the load"
    );
    let batch: Vec<SinkRecord<'static>> = (1..=1000)
        .map(|id| SinkRecord::new(sample_release(id, &format!("Release {id}"))))
        .collect();
    let outcome = sink.write_batch(RecordKind::Release, &batch).await.unwrap();
    assert_eq!(
        outcome,
        SinkOutcome {
            inserted: 1000,
            ..SinkOutcome::default()
        }
    );
    // A replay (redelivered message) hits the primary key and falls back to the upsert.
    let again = sink.write_batch(RecordKind::Release, &batch).await.unwrap();
    assert_eq!(
        again,
        SinkOutcome {
            unchanged: 1000,
            ..SinkOutcome::default()
        }
    );
    // A batch overlapping loaded rows: the new rows are inserted, the old ones unchanged.
    let overlap: Vec<SinkRecord<'static>> = (901..=1100)
        .map(|id| SinkRecord::new(sample_release(id, &format!("Release {id}"))))
        .collect();
    let outcome = sink
        .write_batch(RecordKind::Release, &overlap)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        SinkOutcome {
            inserted: 100,
            unchanged: 100,
            updated: 0
        }
    );
    assert_eq!(db.count("SELECT count(*) FROM {s}.releases").await, 1100);

    sink.finish_first_load(RecordKind::Release).await.unwrap();
    assert_eq!(count_indexes(&db).await, all, "indexes rebuilt");
    // Not empty any more: no first-load mode, indexes stay.
    assert!(!sink.begin_first_load(RecordKind::Release).await.unwrap());
    assert_eq!(count_indexes(&db).await, all);
    db.drop_schema().await;
}

async fn count_indexes(db: &TestDb) -> i64 {
    db.count(&format!(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = '{}' AND tablename = 'releases'",
        db.schema
    ))
    .await
}
