//! Updates that change no indexed value are HOT updates (no new index entries); a change
//! of an indexed value still reaches every index.

use std::time::Duration;

use discogs_model::{Record, RecordKind, SinkRecord};

use crate::{load, read_records, shared_fixtures, TestDb};

/// `(n_tup_upd, n_tup_hot_upd)` of the schema's `releases`, once the counters settle (the
/// sink's backends flush them when they exit).
async fn updates(db: &TestDb) -> (i64, i64) {
    let sql = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables \
               WHERE schemaname = $1 AND relname = 'releases'";
    let mut last = (-1, -1);
    for _ in 0..50 {
        let row = db.client.query_one(sql, &[&db.schema]).await.unwrap();
        let now = (row.get(0), row.get(1));
        if now == last {
            return now;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    last
}

/// Every `step`-th of `records` with `change` applied (and its hash recomputed).
fn changed(
    records: &[SinkRecord<'static>],
    step: usize,
    change: impl Fn(&mut discogs_model::Release<'static>),
) -> Vec<SinkRecord<'static>> {
    records
        .iter()
        .step_by(step)
        .map(|r| {
            let mut record = r.record.clone();
            if let Record::Release(release) = &mut record {
                change(release);
            }
            SinkRecord::new(record)
        })
        .collect()
}

#[tokio::test]
async fn an_update_outside_indexed_values_writes_no_index_entry() {
    let Some(dir) = shared_fixtures() else { return };
    let Some(db) = TestDb::new("pg_hot").await else {
        return;
    };
    let (kind, mut records) = read_records(&dir.join(
        "nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz",
    ));
    assert_eq!(kind, RecordKind::Release);
    records.truncate(2000);
    let mut sink = db.sink();
    let first = load(&mut sink, kind, &records, 500).await;
    assert_eq!(first.inserted, 2000);
    drop(sink);
    let before = updates(&db).await;

    // New notes on a tenth of the records (a month's share): outside the extracted
    // columns and the facets, so HOT.
    let notes = changed(&records, 10, |r| {
        r.notes = Some(format!("{} (corrected)", r.notes.as_deref().unwrap_or("")).into());
    });
    let mut sink = db.sink();
    let outcome = load(&mut sink, kind, &notes, 500).await;
    assert_eq!(outcome.updated, 200);
    drop(sink);
    let after_notes = updates(&db).await;
    let (upd, hot) = (after_notes.0 - before.0, after_notes.1 - before.1);
    assert_eq!(upd, 200, "one row version per changed record");
    // Not all: a row whose small columns the server compressed (a large record), or a
    // page whose free quarter is taken (old versions are pruned only once no snapshot
    // can see them, and other tests hold snapshots), takes a normal update.
    assert!(hot >= 160, "{hot} of {upd} notes-only updates were HOT");

    // A new country: an extracted, indexed column (and part of the facets), so every
    // index gets the new entry.
    let country = changed(&records, 5, |r| {
        r.country = Some("Atlantis".into());
    });
    let mut sink = db.sink();
    let outcome = load(&mut sink, kind, &country, 500).await;
    assert_eq!(outcome.updated, 400);
    drop(sink);
    let after_country = updates(&db).await;
    assert_eq!(after_country.0 - after_notes.0, 400);
    assert_eq!(
        after_country.1 - after_notes.1,
        0,
        "no HOT update when an indexed value changes"
    );
    let found = db
        .count("SELECT count(*) FROM {s}.releases WHERE country = 'Atlantis' AND facets @> '{\"country\": \"Atlantis\"}'")
        .await;
    assert_eq!(found, 400, "the B-tree and facets see the new country");
    db.drop_schema().await;
}
