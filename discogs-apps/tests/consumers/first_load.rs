//! The tableinator's first loads, through its [`PgTarget`] against the real PostgreSQL:
//! an empty table is loaded without its secondary indexes, which are built when the
//! kind's file is complete; a first load interrupted by a restart still ends with every
//! index, built by `extraction_complete`; with first loads off, the indexes stay.

use discogs_apps::consumer::{PgTarget, Target};
use discogs_model::{RecordKind, SinkRecord};
use discogs_sink_pg::PgSink;
use discogs_testkit::shared_fixtures;
use tokio_postgres::Client;

use crate::{distinct, dump, pg_client, Env, SHARED, VERSION};

/// The names of the indexes on `table`, sorted.
async fn indexes(client: &Client, schema: &str, table: &str) -> Vec<String> {
    client
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 \
             ORDER BY 1",
            &[&schema, &table],
        )
        .await
        .expect("pg_indexes")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn rows(client: &Client, schema: &str, table: &str) -> u64 {
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".{table}"), &[])
        .await
        .expect("count")
        .get(0);
    u64::try_from(n).expect("a count")
}

/// Writes `records` of `kind` into a table that had none of them: all are inserted.
async fn write_new(target: &mut PgTarget, kind: RecordKind, records: &[SinkRecord<'_>]) {
    let o = target
        .write(kind, VERSION, records)
        .await
        .unwrap_or_else(|e| panic!("writing {kind}: {e}"));
    assert_eq!(o.inserted, distinct(records) as u64, "{kind}: {o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_tables_are_loaded_first_and_indexed_at_the_end_even_after_a_restart() {
    let _shared = SHARED.read().await;
    let Some(dir) = shared_fixtures() else { return };
    let Some(env) = Env::new("consumers_first_load", false) else {
        return;
    };
    let files = dump(&dir);
    let records_of = |kind: RecordKind| {
        &files
            .iter()
            .find(|(k, _, _)| *k == kind)
            .expect("the four kinds")
            .2
    };
    let client = pg_client(&env.pg_url).await;
    let sink = || PgSink::new(env.pg_config()).expect("config");
    let mut target = PgTarget::new(sink());
    target.prepare().await.expect("prepare");
    let all = |table: &'static str| indexes(&client, &env.schema, table);
    let (all_labels, all_releases, all_artists) = (
        all("labels").await,
        all("releases").await,
        all("artists").await,
    );
    for set in [&all_labels, &all_releases, &all_artists] {
        assert!(
            set.len() > 2,
            "secondary indexes after the migrations: {set:?}"
        );
    }
    let pkey = |set: &[String]| -> Vec<String> {
        set.iter()
            .filter(|i| i.ends_with("_pkey"))
            .cloned()
            .collect()
    };

    // Labels, uninterrupted: only the primary key while loading, every index once the
    // file is complete; loading again goes through the upsert path and writes nothing.
    let labels = records_of(RecordKind::Label);
    write_new(&mut target, RecordKind::Label, labels).await;
    assert_eq!(
        indexes(&client, &env.schema, "labels").await,
        pkey(&all_labels),
        "a first load writes without the secondary indexes"
    );
    let summary = target
        .file_complete(RecordKind::Label)
        .await
        .expect("file complete");
    assert!(
        summary
            .as_deref()
            .is_some_and(|s| s.contains("indexes built")),
        "{summary:?}"
    );
    assert_eq!(indexes(&client, &env.schema, "labels").await, all_labels);
    assert_eq!(
        target
            .file_complete(RecordKind::Label)
            .await
            .expect("again"),
        None,
        "the first load is over"
    );
    let again = target
        .write(RecordKind::Label, VERSION, labels)
        .await
        .expect("write labels again");
    assert_eq!((again.inserted, again.updated), (0, 0), "{again:?}");
    assert_eq!(
        rows(&client, &env.schema, "labels").await,
        distinct(labels) as u64
    );

    // Releases, interrupted: the first half is written in first-load mode, then the
    // process goes away before the file is complete. The next process finds rows, so it
    // writes the rest through the upsert path, and its `file_complete` has nothing to
    // end; `extraction_complete` builds the missing indexes before the purge.
    let releases = records_of(RecordKind::Release);
    let (head, tail) = releases.split_at(releases.len() / 2);
    write_new(&mut target, RecordKind::Release, head).await;
    assert_eq!(
        indexes(&client, &env.schema, "releases").await,
        pkey(&all_releases)
    );
    drop(target);
    let mut target = PgTarget::new(sink());
    target.prepare().await.expect("prepare after the restart");
    target
        .write(RecordKind::Release, VERSION, tail)
        .await
        .expect("write the second half");
    assert_eq!(
        target
            .file_complete(RecordKind::Release)
            .await
            .expect("file complete"),
        None,
        "a table that held rows is not a first load"
    );
    assert_eq!(
        indexes(&client, &env.schema, "releases").await,
        pkey(&all_releases),
        "still missing after the restart"
    );
    target
        .kind_complete(VERSION, RecordKind::Release, releases.len() as u64, 0)
        .await
        .expect("extraction complete");
    assert_eq!(
        indexes(&client, &env.schema, "releases").await,
        all_releases
    );
    assert_eq!(
        rows(&client, &env.schema, "releases").await,
        distinct(releases) as u64
    );

    // First loads off: the indexes stay while an empty table is filled.
    let mut target = PgTarget::new(sink()).first_load(false);
    let artists = records_of(RecordKind::Artist);
    write_new(&mut target, RecordKind::Artist, artists).await;
    assert_eq!(indexes(&client, &env.schema, "artists").await, all_artists);

    env.clean_up().await;
}
