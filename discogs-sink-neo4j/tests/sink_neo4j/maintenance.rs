//! After a complete extraction: isolated stubs go (referenced ones stay), and the
//! aggregates equal what the records say, computed over many small id ranges.

use std::collections::{BTreeMap, BTreeSet};

use discogs_model::{
    Artist, Credit, Label, Record, RecordKind, Release, ReleaseLabel, Sink, SinkRecord,
};
use neo4rs::query;

use crate::TestGraph;

fn release(
    id: u64,
    year: Option<u16>,
    artists: &[u64],
    labels: &[u64],
    genres: &[&str],
    styles: &[&str],
) -> SinkRecord<'static> {
    SinkRecord::new(Record::Release(Release {
        id,
        title: format!("Release {id}").into(),
        year,
        artists: artists
            .iter()
            .map(|a| Credit {
                id: Some(*a),
                name: format!("Artist {a}").into(),
                ..Credit::default()
            })
            .collect(),
        labels: labels
            .iter()
            .map(|l| ReleaseLabel {
                id: Some(*l),
                name: format!("Label {l}").into(),
                catno: Some(format!("CAT{id}").into()),
            })
            .collect(),
        genres: genres.iter().map(|g| (*g).to_owned().into()).collect(),
        styles: styles.iter().map(|s| (*s).to_owned().into()).collect(),
        ..Release::default()
    }))
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    releases: i64,
    artists: i64,
    labels: i64,
    first_year: Option<i64>,
}

/// Releases, artists, labels (or genres), first year, as sets while counting.
type Sets<T> = (BTreeSet<u64>, BTreeSet<u64>, BTreeSet<T>, Option<i64>);

/// The aggregates computed from the records, as the sink must store them.
fn expected(releases: &[SinkRecord<'static>]) -> (BTreeMap<String, Counts>, BTreeMap<u64, Counts>) {
    let mut tags: BTreeMap<String, Sets<u64>> = BTreeMap::new();
    let mut labels: BTreeMap<u64, Sets<String>> = BTreeMap::new();
    let min = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    for r in releases {
        let Record::Release(r) = &r.record else {
            unreachable!()
        };
        let year = r.year.map(i64::from);
        let artists: BTreeSet<u64> = r.artists.iter().filter_map(|a| a.id).collect();
        let label_ids: BTreeSet<u64> = r.labels.iter().filter_map(|l| l.id).collect();
        for t in r
            .genres
            .iter()
            .map(|g| format!("Genre:{g}"))
            .chain(r.styles.iter().map(|s| format!("Style:{s}")))
        {
            let e = tags.entry(t).or_default();
            e.0.insert(r.id);
            e.1.extend(&artists);
            e.2.extend(&label_ids);
            e.3 = min(e.3, year);
        }
        for l in &label_ids {
            let e = labels.entry(*l).or_default();
            e.0.insert(r.id);
            e.1.extend(&artists);
            e.2.extend(r.genres.iter().map(|g| g.to_string()));
            e.3 = min(e.3, year);
        }
    }
    let count = |s: usize| i64::try_from(s).unwrap();
    (
        tags.into_iter()
            .map(|(k, (r, a, l, y))| {
                (
                    k,
                    Counts {
                        releases: count(r.len()),
                        artists: count(a.len()),
                        labels: count(l.len()),
                        first_year: y,
                    },
                )
            })
            .collect(),
        labels
            .into_iter()
            .map(|(k, (r, a, g, y))| {
                (
                    k,
                    Counts {
                        releases: count(r.len()),
                        artists: count(a.len()),
                        labels: count(g.len()),
                        first_year: y,
                    },
                )
            })
            .collect(),
    )
}

#[tokio::test]
async fn isolated_stubs_go_and_aggregates_equal_the_records() {
    let Some(tg) = TestGraph::new("neo4j_maintenance") else {
        return;
    };
    // Ranges of 3 ids: every pass takes several transactions.
    let mut sink = discogs_sink_neo4j::Neo4jSink::new(tg.config().maintenance_id_range(3)).unwrap();
    let mut releases = vec![
        release(
            1,
            Some(1999),
            &[10, 11],
            &[20],
            &["Electronic"],
            &["Techno", "House"],
        ),
        release(
            2,
            Some(1995),
            &[10],
            &[20, 21],
            &["Electronic", "Rock"],
            &["Techno"],
        ),
        release(5, None, &[12], &[21], &["Rock"], &["Punk"]),
        release(9, Some(2001), &[13, 99], &[22, 77], &["Jazz"], &["Bop"]),
    ];
    let artists: Vec<SinkRecord<'static>> = [10, 11, 12]
        .iter()
        .map(|id| {
            SinkRecord::new(Record::Artist(Artist {
                id: *id,
                name: format!("Artist {id}").into(),
                ..Artist::default()
            }))
        })
        .collect();
    let labels: Vec<SinkRecord<'static>> = [20, 21]
        .iter()
        .map(|id| {
            SinkRecord::new(Record::Label(Label {
                id: *id,
                name: format!("Label {id}").into(),
                ..Label::default()
            }))
        })
        .collect();
    sink.write_batch(RecordKind::Artist, &artists)
        .await
        .unwrap();
    sink.write_batch(RecordKind::Label, &labels).await.unwrap();
    sink.write_batch(RecordKind::Release, &releases)
        .await
        .unwrap();
    // Release 9 changes: artist 99 and label 77 (stubs only it referred to) end isolated,
    // and so does the style Bop; artist 13 and label 22 are still referenced.
    releases[3] = release(9, Some(2001), &[13], &[22], &["Jazz"], &["Cool Jazz"]);
    let outcome = sink
        .write_batch(RecordKind::Release, &releases[3..])
        .await
        .unwrap();
    assert_eq!(outcome.updated, 1);

    let report = sink.finish_extraction().await.expect("maintenance");
    assert_eq!(
        (report.stubs_removed, report.tags_removed),
        (2, 1),
        "{report:?}"
    );
    for (label, id) in [("Artist", 99), ("Label", 77)] {
        let n = tg
            .count(
                &sink,
                &format!("MATCH (n:{{ns}}{label} {{id: {id}}}) RETURN count(n) AS n"),
            )
            .await;
        assert_eq!(n, 0, "{label} {id} removed");
    }
    for (label, id) in [("Artist", 13), ("Label", 22), ("Master", 0)] {
        if id == 0 {
            continue;
        }
        let n = tg.count(&sink, &format!("MATCH (n:{{ns}}{label} {{id: {id}}}) WHERE n.sha256 IS NULL RETURN count(n) AS n")).await;
        assert_eq!(n, 1, "referenced stub {label} {id} kept");
    }

    let (tags, labels_expected) = expected(&releases);
    for (key, want) in &tags {
        let (label, name) = key.split_once(':').unwrap();
        let mut rows = sink
            .graph()
            .execute(
                query(&format!(
                    "MATCH (x:{}{label} {{name: $name}}) RETURN x.release_count AS r, x.artist_count AS a, \
                     x.label_count AS l, x.first_year AS y",
                    tg.namespace
                ))
                .param("name", name),
            )
            .await
            .unwrap();
        let row = rows
            .next()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} missing"));
        let got = Counts {
            releases: row.get("r").unwrap(),
            artists: row.get("a").unwrap(),
            labels: row.get("l").unwrap(),
            first_year: row.get("y").unwrap(),
        };
        assert_eq!(&got, want, "{key}");
    }
    assert_eq!(
        report.aggregates.genres + report.aggregates.styles,
        tags.len() as u64
    );
    let techno_genres = tg
        .count(
            &sink,
            "MATCH (s:{ns}Style {name: 'Techno'}) RETURN s.genre_count AS n",
        )
        .await;
    assert_eq!(
        techno_genres, 1,
        "Techno is PART_OF Electronic only (release 1 has one genre)"
    );
    for (id, want) in &labels_expected {
        let mut rows = sink
            .graph()
            .execute(query(&format!(
                "MATCH (l:{}Label {{id: {id}}}) RETURN l.release_count AS r, l.artist_count AS a, \
                 l.genre_count AS g, l.first_year AS y",
                tg.namespace
            )))
            .await
            .unwrap();
        let row = rows.next().await.unwrap().unwrap();
        let got = Counts {
            releases: row.get("r").unwrap(),
            artists: row.get("a").unwrap(),
            labels: row.get("g").unwrap(),
            first_year: row.get("y").unwrap(),
        };
        assert_eq!(&got, want, "label {id}");
    }

    // Again: nothing left to remove, no label value changed.
    let again = sink.finish_extraction().await.unwrap();
    assert_eq!(
        (
            again.stubs_removed,
            again.tags_removed,
            again.aggregates.labels_updated
        ),
        (0, 0, 0)
    );
    tg.drop().await;
}

/// The sink remembers the genres, styles and `PART_OF` pairs it has created (it creates
/// new ones in a transaction of their own before a chunk's parts start). When another
/// sink's `finish_extraction` deletes them as isolated, a later record that uses them
/// again still gets them, with its `IS` and `PART_OF` relationships.
#[tokio::test]
async fn tags_removed_by_another_sink_come_back_when_used_again() {
    let Some(tg) = TestGraph::new("neo4j_tags_again") else {
        return;
    };
    let mut writer = tg.sink();
    let mut maintainer = tg.sink();
    let first = [release(1, None, &[], &[], &["Jazz"], &["Bop"])];
    writer
        .write_batch(RecordKind::Release, &first)
        .await
        .unwrap();
    // The release moves to other tags: Jazz, Bop and their pair end isolated, and the
    // other sink removes them.
    let moved = [release(1, None, &[], &[], &["Rock"], &["Punk"])];
    writer
        .write_batch(RecordKind::Release, &moved)
        .await
        .unwrap();
    let report = maintainer.finish_extraction().await.unwrap();
    assert_eq!(report.tags_removed, 2, "{report:?}");
    // The writer still remembers Jazz, Bop and Bop PART_OF Jazz.
    let again = [release(2, None, &[], &[], &["Jazz"], &["Bop"])];
    writer
        .write_batch(RecordKind::Release, &again)
        .await
        .unwrap();
    let n = tg
        .count(
            &writer,
            "MATCH (r:{ns}Release {id: 2})-[:IS]->(s:{ns}Style {name: 'Bop'})\
             -[:PART_OF]->(g:{ns}Genre {name: 'Jazz'})<-[:IS]-(r) RETURN count(*) AS n",
        )
        .await;
    assert_eq!(n, 1, "release 2 IS Bop and Jazz, Bop PART_OF Jazz");
    for (label, name) in [("Genre", "Jazz"), ("Style", "Bop")] {
        let n = tg
            .count(
                &writer,
                &format!("MATCH (n:{{ns}}{label} {{name: '{name}'}}) RETURN count(n) AS n"),
            )
            .await;
        assert_eq!(n, 1, "one {label} {name}");
    }
    drop(maintainer);
    tg.drop().await;
}
