//! Real dump excerpts: every file loads, rows equal distinct ids, records read back equal;
//! reloading writes nothing; a newer excerpt updates exactly the records that differ.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use discogs_model::{RecordKind, SinkRecord};

use crate::{load, read_records, shared_fixtures, TestDb};

/// S3 bucket listings kept beside the dumps: XML, but not dumps.
const LISTINGS: [&str; 2] = ["DiscogsDataDump.xml", "data.xml"];
const EXCERPT_2025_11: &str =
    "nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz";

fn dump_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            dump_files(&path, out);
        } else if (name.ends_with(".xml") || name.ends_with(".xml.gz"))
            && !LISTINGS.contains(&name.as_str())
        {
            out.push(path);
        }
    }
    out.sort();
}

/// The last record of each id, as a sink keeps it.
fn last_by_id<'r>(records: &'r [SinkRecord<'static>]) -> HashMap<u64, &'r SinkRecord<'static>> {
    records.iter().map(|r| (r.record.id(), r)).collect()
}

#[tokio::test]
async fn every_fixture_loads_and_reads_back_field_by_field() {
    let Some(dir) = shared_fixtures() else { return };
    let Some(db) = TestDb::new("pg_fixtures").await else {
        return;
    };
    let mut sink = db.sink();
    sink.migrate().await.expect("migrate");
    let mut files = Vec::new();
    dump_files(&dir, &mut files);
    assert!(files.len() > 30, "found only {} fixture files", files.len());
    let mut total_rows = 0;
    for path in &files {
        let (kind, records) = read_records(path);
        let name = path.strip_prefix(&dir).unwrap().display().to_string();
        db.client
            .batch_execute(&format!("TRUNCATE \"{}\".{}", db.schema, kind.plural()))
            .await
            .expect("truncate");
        let outcome = load(&mut sink, kind, &records, 500).await;
        let by_id = last_by_id(&records);
        assert_eq!(outcome.inserted, by_id.len() as u64, "{name}: inserted");
        assert_eq!(outcome.total(), records.len() as u64, "{name}: total");
        let rows = db
            .count(&format!("SELECT count(*) FROM {{s}}.{}", kind.plural()))
            .await;
        assert_eq!(
            rows,
            i64::try_from(by_id.len()).unwrap(),
            "{name}: rows = distinct ids"
        );
        for (id, expected) in &by_id {
            let (record, hash) = sink
                .get(kind, *id)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: {id} missing"));
            assert_eq!(&record, &expected.record, "{name}: record {id} read back");
            assert_eq!(hash, expected.hash, "{name}: hash {id}");
            assert_eq!(
                record.hash(),
                expected.hash,
                "{name}: rehash of {id} read back"
            );
        }
        let again = load(&mut sink, kind, &records, 500).await;
        assert_eq!(again.written(), 0, "{name}: reload wrote {again:?}");
        total_rows += rows;
        eprintln!(
            "{name}: {kind} {} records, {rows} rows, read back equal",
            records.len()
        );
    }
    eprintln!("{} files, {total_rows} rows", files.len());
    db.drop_schema().await;
}

/// Inserted + updated + deleted tuples of the four tables, once the counters settle.
async fn tuples_written(db: &TestDb) -> i64 {
    let sql = "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint \
               FROM pg_stat_user_tables WHERE schemaname = $1 \
               AND relname IN ('artists', 'labels', 'masters', 'releases')";
    let mut last = -1;
    for _ in 0..50 {
        let now: i64 = db
            .client
            .query_one(sql, &[&db.schema])
            .await
            .unwrap()
            .get(0);
        if now == last {
            return now;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    last
}

async fn load_files(db: &TestDb, dir: &Path, files: &[&str]) -> u64 {
    // A sink per pass, dropped after it: its backends exit and flush their statistics.
    let mut sink = db.sink();
    let mut written = 0;
    for f in files {
        let (kind, records) = read_records(&dir.join(f));
        written += load(&mut sink, kind, &records, 1000).await.written();
    }
    written
}

#[tokio::test]
async fn reloading_the_same_files_writes_nothing() {
    let Some(dir) = shared_fixtures() else { return };
    let Some(db) = TestDb::new("pg_reload").await else {
        return;
    };
    let files = [
        EXCERPT_2025_11,
        "tgmz__de.tgmz.discogs/discogs_20250101_artists.xml.gz",
        "tgmz__de.tgmz.discogs/discogs_20250101_labels.xml.gz",
        "tgmz__de.tgmz.discogs/discogs_20250101_masters.xml.gz",
    ];
    let written = load_files(&db, &dir, &files).await;
    let after_first = tuples_written(&db).await;
    assert!(written > 4000, "first load wrote {written}");
    assert_eq!(
        after_first,
        i64::try_from(written).unwrap(),
        "statistics count the first load's inserts"
    );
    let rewritten = load_files(&db, &dir, &files).await;
    let after_second = tuples_written(&db).await;
    eprintln!("pg_stat_user_tables n_tup_ins+n_tup_upd+n_tup_del: {after_first} after the load, {after_second} after the reload");
    assert_eq!(rewritten, 0);
    assert_eq!(after_second - after_first, 0, "the reload wrote tuples");
    db.drop_schema().await;
}

#[tokio::test]
async fn newer_excerpt_updates_exactly_the_changed_releases() {
    let Some(dir) = shared_fixtures() else { return };
    let Some(db) = TestDb::new("pg_update").await else {
        return;
    };
    let (_, old) = read_records(&dir.join(EXCERPT_2025_11));
    let (kind, new) = read_records(&dir.join("kiraririria__discogs-xml2json/releases.xml"));
    assert_eq!(kind, RecordKind::Release);
    let old_by_id = last_by_id(&old);
    let differing = new
        .iter()
        .filter(|r| old_by_id[&r.record.id()].hash != r.hash)
        .count() as u64;
    assert_eq!(
        (new.len(), differing),
        (12, 7),
        "the fixture pair as described"
    );

    let mut sink = db.sink();
    load(&mut sink, kind, &old, 1000).await;
    drop(sink);
    let before = tuples_written(&db).await;
    let mut sink = db.sink();
    let outcome = load(&mut sink, kind, &new, 1000).await;
    drop(sink);
    let after = tuples_written(&db).await;
    assert_eq!(outcome.updated, differing);
    assert_eq!(outcome.unchanged, 12 - differing);
    assert_eq!(outcome.inserted, 0);
    assert_eq!(
        after - before,
        i64::try_from(differing).unwrap(),
        "tuples written by the update"
    );
    eprintln!(
        "kiraririria releases after the 2025-11 excerpt: {outcome:?}, {} tuples written",
        after - before
    );
    db.drop_schema().await;
}
