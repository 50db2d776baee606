//! Text that would break string-built Cypher (quotes, backslashes, keywords, braces,
//! parameters, backticks) is stored and read back unchanged: all data goes in parameters.

use discogs_model::{
    Artist, Credit, EntityRef, Format, Label, Master, Record, RecordKind, Release, ReleaseLabel,
    Sink, SinkRecord,
};
use discogs_sink_neo4j::graph_form;
use neo4rs::query;

use crate::TestGraph;

const NASTY: [&str; N] = [
    "O'Brien",
    "\"Quoted\" \\\"twice\\\"",
    "back\\slash\\",
    "}) DETACH DELETE n //",
    "MATCH (n) DETACH DELETE n",
    "$rows",
    "{id: 1, name: 'x'}",
    "`tick` label:Artist",
    "CALL { RETURN 1 } IN TRANSACTIONS",
    "tab\tnew\nline\r",
    "ünïcødé 🎵 日本語",
    "' OR 1=1 --",
];

/// How many strings [`NASTY`] holds.
const N: usize = 12;
/// [`N`] as a Neo4j integer.
const N_I64: i64 = 12;

fn text(i: usize) -> std::borrow::Cow<'static, str> {
    NASTY[i % NASTY.len()].into()
}

#[tokio::test]
async fn quotes_backslashes_keywords_and_braces_round_trip() {
    let Some(tg) = TestGraph::new("neo4j_roundtrip") else {
        return;
    };
    let mut sink = tg.sink();
    let n = N;
    let artists: Vec<Record<'static>> = (0..n)
        .map(|i| {
            Record::Artist(Artist {
                id: 1 + i as u64,
                name: text(i),
                real_name: Some(text(i + 1)),
                aliases: vec![EntityRef {
                    id: Some(100 + i as u64),
                    name: text(i + 2),
                }],
                ..Artist::default()
            })
        })
        .collect();
    let labels: Vec<Record<'static>> = (0..n)
        .map(|i| {
            Record::Label(Label {
                id: 1 + i as u64,
                name: text(i + 3),
                ..Label::default()
            })
        })
        .collect();
    let masters: Vec<Record<'static>> = (0..n)
        .map(|i| {
            Record::Master(Master {
                id: 1 + i as u64,
                title: text(i + 4),
                genres: vec![text(i + 5)],
                styles: vec![text(i + 6), text(i + 7)],
                ..Master::default()
            })
        })
        .collect();
    let releases: Vec<Record<'static>> = (0..n)
        .map(|i| {
            Record::Release(Release {
                id: 1 + i as u64,
                title: text(i + 5),
                country: Some(text(i + 6)),
                released: Some(text(i + 7)),
                formats: vec![Format {
                    name: text(i + 8),
                    ..Format::default()
                }],
                labels: vec![ReleaseLabel {
                    id: Some(1 + i as u64),
                    name: text(i),
                    catno: Some(text(i + 9)),
                }],
                extra_artists: vec![Credit {
                    id: Some(1 + i as u64),
                    name: text(i),
                    role: Some(text(i + 10)),
                    ..Credit::default()
                }],
                genres: vec![text(i + 11)],
                styles: vec![text(i)],
                ..Release::default()
            })
        })
        .collect();
    for (kind, records) in [
        (RecordKind::Artist, &artists),
        (RecordKind::Label, &labels),
        (RecordKind::Master, &masters),
        (RecordKind::Release, &releases),
    ] {
        let batch: Vec<SinkRecord<'static>> =
            records.iter().cloned().map(SinkRecord::new).collect();
        let outcome = sink.write_batch(kind, &batch).await.expect("write");
        assert_eq!(outcome.inserted, n as u64, "{kind}");
        for r in &batch {
            let (record, hash) = sink
                .get(kind, r.record.id())
                .await
                .unwrap()
                .expect("stored");
            assert_eq!(
                record,
                graph_form(&r.record),
                "{kind} {} read back",
                r.record.id()
            );
            assert_eq!(hash, Some(r.hash));
        }
        let again = sink.write_batch(kind, &batch).await.expect("rewrite");
        assert_eq!(again.unchanged, n as u64, "{kind}: unchanged");
    }
    // Stub names from references, genre and style names: compared as parameters.
    for i in 0..n {
        let mut rows = sink
            .graph()
            .execute(
                query(&format!(
                    "MATCH (a:{}Artist {{id: $id}}) RETURN a.name = $name AS same, a.sha256 IS NULL AS stub",
                    tg.namespace
                ))
                .param("id", 100 + i64::try_from(i).unwrap())
                .param("name", NASTY[(i + 2) % n]),
            )
            .await
            .unwrap();
        let row = rows.next().await.unwrap().expect("alias stub");
        assert!(
            row.get::<bool>("same").unwrap() && row.get::<bool>("stub").unwrap(),
            "stub {i}"
        );
    }
    // Nothing but the records and their references was created: no statement was altered.
    let genres = tg
        .count(&sink, "MATCH (g:{ns}Genre) RETURN count(g) AS n")
        .await;
    let styles = tg
        .count(&sink, "MATCH (s:{ns}Style) RETURN count(s) AS n")
        .await;
    assert_eq!((genres, styles), (N_I64, N_I64));
    let artists_total = tg
        .count(&sink, "MATCH (a:{ns}Artist) RETURN count(a) AS n")
        .await;
    assert_eq!(artists_total, 2 * N_I64);
    tg.drop().await;
}
