//! Known records of the tgmz "Violator" cluster (2025-01): the release arrives before its
//! artists, labels and master and leaves stubs, which the records complete; then the
//! graph has the shape the records describe.

use std::collections::BTreeSet;

use discogs_model::{Record, RecordKind, SinkRecord};
use discogs_sink_neo4j::Neo4jSink;
use neo4rs::query;

use crate::fixtures::last_by_id;
use crate::model::{diff, Graph};
use crate::{load, read_records, shared_fixtures, TestGraph};

const DIR: &str = "tgmz__de.tgmz.discogs";

/// One row of `cypher` (with `{ns}` for the namespace), its column `c` as `T`.
async fn one<T: for<'a> serde::Deserialize<'a>>(
    tg: &TestGraph,
    sink: &Neo4jSink,
    cypher: &str,
) -> T {
    let text = cypher.replace("{ns}", &tg.namespace);
    let mut rows = sink.graph().execute(query(&text)).await.expect(&text);
    let row = rows
        .next()
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no row: {text}"));
    row.get::<T>("c").unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn find<'r>(records: &'r [SinkRecord<'static>], id: u64) -> &'r Record<'static> {
    &records
        .iter()
        .rfind(|r| r.record.id() == id)
        .expect("record in fixture")
        .record
}

#[tokio::test]
async fn release_first_leaves_stubs_that_complete_and_the_graph_has_the_records_shape() {
    let Some(dir) = shared_fixtures() else { return };
    let Some(tg) = TestGraph::new("neo4j_shape") else {
        return;
    };
    let dir = dir.join(DIR);
    let mut sink = tg.sink();
    let (_, releases) = read_records(&dir.join("discogs_20250101_releases.xml.gz"));
    let (_, masters) = read_records(&dir.join("discogs_20250101_masters.xml.gz"));
    let (_, labels) = read_records(&dir.join("discogs_20250101_labels.xml.gz"));
    let (_, artists) = read_records(&dir.join("discogs_20250101_artists.xml.gz"));
    let Record::Release(violator) = find(&releases, 10222) else {
        unreachable!()
    };
    assert_eq!(violator.title, "Violator");
    let master_id = violator.master_id.expect("Violator has a master");

    // Releases first: their artists, labels and master are stubs with the names the
    // references carry, and no sha256.
    load(&mut sink, RecordKind::Release, &releases, 100).await;
    let stub: (Option<String>, Option<String>) = (
        one(
            &tg,
            &sink,
            "MATCH (a:{ns}Artist {id: 2725}) RETURN a.sha256 AS c",
        )
        .await,
        one(
            &tg,
            &sink,
            "MATCH (a:{ns}Artist {id: 2725}) RETURN a.name AS c",
        )
        .await,
    );
    assert_eq!(stub, (None, Some("Depeche Mode".to_owned())));
    let sire: (Option<String>, Option<String>) = (
        one(
            &tg,
            &sink,
            "MATCH (l:{ns}Label {id: 27031}) RETURN l.sha256 AS c",
        )
        .await,
        one(
            &tg,
            &sink,
            "MATCH (l:{ns}Label {id: 27031}) RETURN l.name AS c",
        )
        .await,
    );
    assert_eq!(sire, (None, Some("Sire".to_owned())));
    let master_stub: Option<String> = one(
        &tg,
        &sink,
        &format!("MATCH (m:{{ns}}Master {{id: {master_id}}}) RETURN m.sha256 AS c"),
    )
    .await;
    assert_eq!(master_stub, None);
    let stubs_before: Vec<i64> = one(
        &tg,
        &sink,
        "MATCH (a:{ns}Artist) WHERE a.sha256 IS NULL RETURN collect(a.id) AS c",
    )
    .await;

    // Then the rest: the stubs become complete nodes, and nothing is duplicated.
    load(&mut sink, RecordKind::Master, &masters, 100).await;
    load(&mut sink, RecordKind::Label, &labels, 100).await;
    load(&mut sink, RecordKind::Artist, &artists, 100).await;
    let depeche = artists.iter().rfind(|r| r.record.id() == 2725).unwrap();
    let stored: Option<String> = one(
        &tg,
        &sink,
        "MATCH (a:{ns}Artist {id: 2725}) RETURN a.sha256 AS c",
    )
    .await;
    assert_eq!(
        stored,
        Some(depeche.hash.to_hex()),
        "the stub was completed"
    );
    // Every stub the releases left whose artist record came is complete, with its hash.
    let artist_records = last_by_id(&artists);
    let mut completed = 0;
    for id in &stubs_before {
        if let Some(r) = artist_records.get(&id.unsigned_abs()) {
            let sha: Option<String> = one(
                &tg,
                &sink,
                &format!("MATCH (a:{{ns}}Artist {{id: {id}}}) RETURN a.sha256 AS c"),
            )
            .await;
            assert_eq!(sha, Some(r.hash.to_hex()), "artist {id} completed");
            completed += 1;
        }
    }
    assert!(
        completed >= 3,
        "only {completed} of the release's artists completed"
    );
    let stubs_after: i64 = one(
        &tg,
        &sink,
        "MATCH (a:{ns}Artist) WHERE a.sha256 IS NULL RETURN count(a) AS c",
    )
    .await;
    let complete_artists = i64::try_from(artist_records.len()).unwrap();

    // Nodes = distinct ids (records and references), relationships as the records say.
    let all: Vec<&Record<'static>> = [&releases, &masters, &labels, &artists]
        .into_iter()
        .flat_map(|rs| last_by_id(rs).into_values().map(|r| &r.record))
        .collect();
    let expected = Graph::expected(all.iter().copied(), []);
    let graph = Graph::stored(&sink).await;
    assert!(graph == expected, "{}", diff(&expected, &graph));
    let artist_nodes: i64 = one(&tg, &sink, "MATCH (a:{ns}Artist) RETURN count(a) AS c").await;
    assert_eq!(
        artist_nodes,
        i64::try_from(expected.nodes["Artist"].len()).unwrap()
    );
    assert_eq!(artist_nodes, complete_artists + stubs_after);

    // Violator is BY Depeche Mode, ON its three labels with the catalogue number,
    // DERIVED_FROM its master, IS its genres and styles.
    let by: Vec<String> = one(
        &tg,
        &sink,
        "MATCH (:{ns}Release {id: 10222})-[:BY]->(a) RETURN collect(a.name) AS c",
    )
    .await;
    assert_eq!(by, ["Depeche Mode"]);
    let on: Vec<(i64, String, String)> = one(
        &tg,
        &sink,
        "MATCH (:{ns}Release {id: 10222})-[o:ON]->(l) WITH l, o ORDER BY l.id \
         RETURN collect([l.id, l.name, o.catno]) AS c",
    )
    .await;
    assert_eq!(
        on,
        [
            (157, "Reprise Records".to_owned(), "9 26081-2".to_owned()),
            (26391, "Mute".to_owned(), "9 26081-2".to_owned()),
            (27031, "Sire".to_owned(), "9 26081-2".to_owned()),
        ]
    );
    let derived: Vec<i64> = one(&tg, &sink, "MATCH (:{ns}Release {id: 10222})-[:DERIVED_FROM]->(m:{ns}Master) RETURN collect(m.id) AS c").await;
    assert_eq!(derived, [i64::try_from(master_id).unwrap()]);
    let Record::Master(master) = find(&masters, master_id) else {
        unreachable!()
    };
    let main: Vec<i64> = one(
        &tg,
        &sink,
        &format!("MATCH (:{{ns}}Master {{id: {master_id}}})-[:MAIN_RELEASE]->(r:{{ns}}Release) RETURN collect(r.id) AS c"),
    )
    .await;
    assert_eq!(main, [i64::try_from(master.main_release.unwrap()).unwrap()]);
    let tags: BTreeSet<String> = one::<Vec<String>>(
        &tg,
        &sink,
        "MATCH (:{ns}Release {id: 10222})-[:IS]->(t) RETURN collect(t.name) AS c",
    )
    .await
    .into_iter()
    .collect();
    let want: BTreeSet<String> = violator
        .genres
        .iter()
        .chain(&violator.styles)
        .map(|s| s.to_string())
        .collect();
    assert!(want.contains("Electronic"), "{want:?}");
    assert_eq!(tags, want);

    // Depeche Mode has its members; Mute has its parent and its sublabels.
    let Record::Artist(dm) = &depeche.record else {
        unreachable!()
    };
    let members: BTreeSet<i64> = one::<Vec<i64>>(
        &tg,
        &sink,
        "MATCH (m:{ns}Artist)-[:MEMBER_OF]->(:{ns}Artist {id: 2725}) RETURN collect(m.id) AS c",
    )
    .await
    .into_iter()
    .collect();
    let want: BTreeSet<i64> = dm
        .members
        .iter()
        .filter_map(|m| m.id)
        .map(|i| i64::try_from(i).unwrap())
        .collect();
    assert!(want.contains(&27158), "Dave Gahan among {want:?}");
    assert_eq!(members, want);
    let Record::Label(mute) = find(&labels, 26391) else {
        unreachable!()
    };
    let parent: Vec<(i64, String)> = one(
        &tg,
        &sink,
        "MATCH (:{ns}Label {id: 26391})-[:SUBLABEL_OF]->(p) RETURN collect([p.id, p.name]) AS c",
    )
    .await;
    assert_eq!(parent, [(298_991, "Mute Artists Ltd.".to_owned())]);
    let subs: BTreeSet<i64> = one::<Vec<i64>>(
        &tg,
        &sink,
        "MATCH (s)-[:SUBLABEL_OF]->(:{ns}Label {id: 26391}) RETURN collect(s.id) AS c",
    )
    .await
    .into_iter()
    .collect();
    let want: BTreeSet<i64> = mute
        .sublabels
        .iter()
        .filter_map(|s| s.id)
        .map(|i| i64::try_from(i).unwrap())
        .collect();
    assert_eq!((subs.len(), &subs), (14, &want));
    tg.drop().await;
}
