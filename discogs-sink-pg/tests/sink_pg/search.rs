//! Full-text search and the relational views, on real excerpts.

use discogs_model::RecordKind;

use crate::{load, read_records, shared_fixtures, TestDb};

#[tokio::test]
async fn full_text_search_and_views_answer() {
    let Some(dir) = shared_fixtures() else { return };
    let Some(db) = TestDb::new("pg_search").await else {
        return;
    };
    let mut sink = db.sink();
    for f in [
        "nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz",
        "tgmz__de.tgmz.discogs/discogs_20250101_artists_Depeche_Mode.xml",
        "tgmz__de.tgmz.discogs/discogs_20250101_masters_Violator.xml",
        "coolov__discogs-parser/labels.xml",
    ] {
        let (kind, records) = read_records(&dir.join(f));
        load(&mut sink, kind, &records, 1000).await;
    }
    sink.finish_first_load(RecordKind::Release)
        .await
        .expect("indexes");
    let q = |sql: &str| sql.replace("{s}", &format!("\"{}\"", db.schema));

    // Artists by name.
    let rows = db
        .client
        .query(
            &q("SELECT id, name FROM {s}.artists WHERE search @@ plainto_tsquery('simple', $1)"),
            &[&"depeche mode"],
        )
        .await
        .unwrap();
    assert!(
        rows.iter()
            .any(|r| r.get::<_, i64>(0) == 2725 && r.get::<_, &str>(1) == "Depeche Mode"),
        "artist search"
    );
    // Release titles.
    let rows = db
        .client
        .query(&q("SELECT id FROM {s}.releases WHERE search @@ plainto_tsquery('simple', $1) ORDER BY id"), &[&"stockholm"])
        .await
        .unwrap();
    assert!(
        rows.iter().any(|r| r.get::<_, i64>(0) == 1),
        "release 1 (Stockholm) found: {rows:?}"
    );
    // Master titles.
    let n: i64 = db
        .client
        .query_one(&q("SELECT count(*) FROM {s}.masters WHERE search @@ plainto_tsquery('simple', 'violator')"), &[])
        .await
        .unwrap()
        .get(0);
    assert!(n >= 1, "master Violator found");
    // Labels.
    let n: i64 = db
        .client
        .query_one(&q("SELECT count(*) FROM {s}.labels WHERE search @@ plainto_tsquery('simple', 'planet e')"), &[])
        .await
        .unwrap()
        .get(0);
    assert!(n >= 1, "label Planet E found");

    // The views answer release 1's artists and labels (The Persuader, Svek SK032).
    let artists = db
        .client
        .query(&q("SELECT artist_id, name FROM {s}.release_artists WHERE release_id = 1 ORDER BY position"), &[])
        .await
        .unwrap();
    let artists: Vec<(Option<i64>, String)> =
        artists.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(artists, vec![(Some(1), "The Persuader".to_owned())]);
    let labels = db
        .client
        .query(
            &q("SELECT label_id, name, catno FROM {s}.release_labels WHERE release_id = 1"),
            &[],
        )
        .await
        .unwrap();
    let labels: Vec<(Option<i64>, String, Option<String>)> = labels
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        labels,
        vec![(Some(5), "Svek".to_owned(), Some("SK032".to_owned()))]
    );
    let credits: i64 = db
        .client
        .query_one(&q("SELECT count(*) FROM {s}.release_credits WHERE release_id = 1 AND role = 'Lacquer Cut By'"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(credits, 1);
    let tracks = db
        .client
        .query(&q("SELECT position, title FROM {s}.release_tracks WHERE release_id = 1 ORDER BY track_index"), &[])
        .await
        .unwrap();
    let tracks: Vec<(String, String)> = tracks.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        tracks.first(),
        Some(&("A".to_owned(), "Östermalm".to_owned()))
    );
    assert_eq!(tracks.len(), 6);
    let genre: String = db
        .client
        .query_one(
            &q("SELECT genre FROM {s}.release_genres WHERE release_id = 1"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(genre, "Electronic");
    // Containment: styles on the extracted array, the record's facets on their GIN index.
    let n: i64 = db
        .client
        .query_one(
            &q(
                "SELECT count(*) FROM {s}.releases WHERE styles @> ARRAY['Deep House'] \
                AND facets @> '{\"country\": \"Sweden\", \"labels\": [{\"name\": \"Svek\"}]}'",
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(n >= 1, "containment query finds release 1");
    db.client
        .batch_execute("SET enable_seqscan = off")
        .await
        .unwrap();
    let plan: Vec<String> = db
        .client
        .query(
            &q("EXPLAIN SELECT id FROM {s}.releases WHERE facets @> '{\"country\": \"Sweden\"}'"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("releases_facets_idx")),
        "facets index used: {plan:?}"
    );
    db.drop_schema().await;
}

#[tokio::test]
async fn migrations_are_versioned_and_idempotent() {
    let Some(db) = TestDb::new("pg_migrate").await else {
        return;
    };
    // Two sinks migrating at once: the advisory lock lets one apply, the other sees them applied.
    let (mut a, mut b) = (db.sink(), db.sink());
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.expect("first migrate");
    rb.expect("second migrate");
    let versions = db.count("SELECT count(*) FROM {s}.schema_migrations").await;
    assert_eq!(versions, 5);
    let mut c = db.sink();
    c.migrate().await.expect("third migrate");
    assert_eq!(
        db.count("SELECT count(*) FROM {s}.schema_migrations").await,
        5
    );
    let lz4: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND a.attname = 'data' AND a.attcompression = 'l'",
            &[&db.schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(lz4, 4, "data columns use lz4");
    db.drop_schema().await;
}
