//! A second month through the real pipeline: the extractor (as a library, with change
//! detection) publishes to RabbitMQ, the graphinator and the tableinator write Neo4j and
//! PostgreSQL. The second month is the first with a few records edited in the test: two
//! changed, two removed (a release, and an artist that releases still credit), one added.
//! Only those are rewritten, the removed ones leave both databases (the artist stays in
//! the graph as a stub while releases credit it), the added one arrives.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use clap::Parser as _;
use discogs_apps::extractor::bus::BusOutlet;
use discogs_apps::extractor::run::{CycleOutcome, Extractor};
use discogs_apps::extractor::ExtractorArgs;
use discogs_apps::shutdown::Shutdown;
use discogs_model::RecordKind;
use discogs_sink_neo4j::Neo4jSink;
use discogs_testkit::{read_records, shared_fixtures};

use crate::{all_complete, graph_count, pg_client, Env, SHARED, VERSION};

const MONTH_2: &str = "20170501";
const CHANGED_ARTIST: i64 = 2;
const CHANGED_RELEASE: i64 = 1;
const REMOVED_ARTIST: i64 = 1; // credited on release 1, which stays
const ADDED_LABEL: i64 = 990_001;

/// The text of a dump file (gzip or plain).
fn read_text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// How every top-level record element of `tag` starts (nested elements of the same name,
/// such as a label's sublabels, start otherwise).
fn top_level(tag: &str) -> String {
    match tag {
        "artist" | "label" => format!("<{tag}><"),
        _ => format!("<{tag} id=\""),
    }
}

/// The byte range of the top-level element of `tag` that starts with `start`: up to the
/// next top-level element or the root's end.
fn element(text: &str, start: &str, tag: &str) -> std::ops::Range<usize> {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in the file"));
    let after = from + start.len();
    let next = text[after..]
        .find(&top_level(tag))
        .or_else(|| text[after..].find(&format!("</{tag}s>")))
        .expect("the root's end");
    from..after + next
}

/// The ids of the records of the first top-level `<release ` elements, for choosing one.
fn release_ids(text: &str) -> Vec<i64> {
    text.match_indices("<release id=\"")
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

/// Writes the second month's four files into `dir`; returns the id of the removed release.
fn second_month(first: &Path, dir: &Path) -> i64 {
    let file = |kind: RecordKind| format!("discogs_{VERSION}_{}.xml.gz", kind.plural());
    let out = |kind: RecordKind| dir.join(format!("discogs_{MONTH_2}_{}.xml", kind.plural()));

    // Artists: one renamed, one removed.
    let mut artists = read_text(&first.join(file(RecordKind::Artist)));
    let r = element(
        &artists,
        &format!("<artist><id>{CHANGED_ARTIST}</id>"),
        "artist",
    );
    let edited = artists[r.clone()].replacen("</name>", " (renamed)</name>", 1);
    artists.replace_range(r, &edited);
    let r = element(&artists, "<artist><images>", "artist");
    assert!(
        artists[r.clone()].contains(&format!("<id>{REMOVED_ARTIST}</id>")),
        "the first artist is {REMOVED_ARTIST}"
    );
    artists.replace_range(r, "");
    std::fs::write(out(RecordKind::Artist), artists).unwrap();

    // Labels: one added (a copy of the first with another id and name).
    let mut labels = read_text(&first.join(file(RecordKind::Label)));
    let r = element(&labels, "<label>", "label");
    let copy = labels[r.clone()]
        .replacen("<id>1</id>", &format!("<id>{ADDED_LABEL}</id>"), 1)
        .replacen("<name>Planet E</name>", "<name>Planet F</name>", 1);
    assert!(copy.contains(&format!("<id>{ADDED_LABEL}</id>")));
    labels.insert_str(r.end, &copy);
    std::fs::write(out(RecordKind::Label), labels).unwrap();

    // Masters: unchanged.
    let masters = read_text(&first.join(file(RecordKind::Master)));
    std::fs::write(out(RecordKind::Master), masters).unwrap();

    // Releases: one retitled, the last one removed.
    let mut releases = read_text(&first.join(file(RecordKind::Release)));
    let r = element(
        &releases,
        &format!("<release id=\"{CHANGED_RELEASE}\" "),
        "release",
    );
    let edited = releases[r.clone()].replacen(
        "<title>Stockholm</title>",
        "<title>Stockholm (remastered)</title>",
        1,
    );
    assert_ne!(edited, releases[r.clone()], "release 1 is Stockholm");
    releases.replace_range(r, &edited);
    let removed_release = *release_ids(&releases).last().unwrap();
    assert_ne!(removed_release, CHANGED_RELEASE);
    let r = element(
        &releases,
        &format!("<release id=\"{removed_release}\" "),
        "release",
    );
    releases.replace_range(r, "");
    std::fs::write(out(RecordKind::Release), releases).unwrap();
    removed_release
}

fn extractor_args(root: &Path, input: &Path) -> ExtractorArgs {
    ExtractorArgs::parse_from([
        "extractor",
        "--discogs-root",
        &root.display().to_string(),
        "--input",
        &input.display().to_string(),
        "--max-workers",
        "2",
    ])
}

/// Runs the extractor once over `input`; returns the records it published per kind.
async fn extract(env: &Env, root: &Path, input: &Path) -> BTreeMap<RecordKind, u64> {
    let mut outlet = BusOutlet(env.publisher(3));
    let outcome = Extractor::new(extractor_args(root, input))
        .cycle(&mut outlet, &Shutdown::new(), false)
        .await
        .expect("extraction");
    outlet.0.close().await.expect("close publisher");
    match outcome {
        CycleOutcome::Completed { published, .. } => published,
        other => panic!("{other:?}"),
    }
}

/// `(id, xmin, updated_at)` of every row of a kind's table.
async fn row_versions(
    client: &tokio_postgres::Client,
    schema: &str,
    kind: RecordKind,
) -> BTreeMap<i64, (String, String)> {
    client
        .query(
            &format!(
                "SELECT id, xmin::text, updated_at::text FROM \"{schema}\".{}",
                kind.plural()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

/// Records written (inserted + updated) per kind, from a service's `/health` counts.
fn written(report: &serde_json::Map<String, serde_json::Value>) -> BTreeMap<RecordKind, u64> {
    RecordKind::ALL
        .iter()
        .map(|k| {
            let s = &report["kinds"][k.plural()];
            (
                *k,
                s["inserted"].as_u64().unwrap_or(0) + s["updated"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Ids with a complete node (`sha256`) of a kind.
async fn graph_ids(graph: &Neo4jSink, kind: RecordKind) -> BTreeSet<i64> {
    let cypher = format!(
        "MATCH (n:`{}`) WHERE n.sha256 IS NOT NULL RETURN n.id AS id",
        graph.names().label(kind)
    );
    let mut rows = graph.graph().execute(neo4rs::query(&cypher)).await.unwrap();
    let mut out = BTreeSet::new();
    while let Some(row) = rows.next().await.unwrap() {
        out.insert(row.get::<i64>("id").unwrap());
    }
    out
}

/// A second month with changed records rewrites only those, in both databases; removed
/// records leave both, the added one arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_month_rewrites_only_the_changed_records_in_both_databases() {
    let _shared = SHARED.read().await;
    let Some(fixtures) = shared_fixtures() else {
        return;
    };
    let Some(env) = Env::new("consumers_month", true) else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(600), second_month_body(&env, &fixtures))
        .await
        .expect("the test finished within 10 minutes");
    env.clean_up().await;
}

async fn second_month_body(env: &Env, fixtures: &Path) {
    let first = fixtures.join("philipmat__discogs-xml2db");
    let root = std::env::temp_dir().join(format!(
        "consumers-month-{}",
        discogs_testkit::unique_suffix()
    ));
    let (month1, month2) = (root.join("in1"), root.join("in2"));
    std::fs::create_dir_all(&month1).unwrap();
    std::fs::create_dir_all(&month2).unwrap();
    for kind in RecordKind::ALL {
        let name = format!("discogs_{VERSION}_{}.xml.gz", kind.plural());
        std::os::unix::fs::symlink(first.join(&name), month1.join(&name)).unwrap();
    }
    let removed_release = second_month(&first, &month2);

    let tableinator = env.tableinator().await;
    let graphinator = env.graphinator().await;
    let limit = Duration::from_secs(300);

    // Month 1: everything is new.
    let published = extract(env, &root, &month1).await;
    tableinator
        .wait_for("month 1 in PostgreSQL", limit, all_complete(1))
        .await;
    graphinator
        .wait_for("month 1 in Neo4j", limit, all_complete(1))
        .await;
    let client = pg_client(&env.pg_url).await;
    let graph = Neo4jSink::new(env.neo4j.clone().unwrap()).unwrap();
    let mut before = BTreeMap::new();
    for kind in RecordKind::ALL {
        let (_, records) =
            read_records(&first.join(format!("discogs_{VERSION}_{}.xml.gz", kind.plural())));
        assert_eq!(published[&kind], records.len() as u64, "{kind}: month 1");
        before.insert(kind, row_versions(&client, &env.schema, kind).await);
    }
    let pg_written = written(&tableinator.stats.report());
    let graph_written = written(&graphinator.stats.report());

    // Month 2: two changed, two removed, one added.
    let published = extract(env, &root, &month2).await;
    let expected_published: BTreeMap<RecordKind, u64> = [
        (RecordKind::Artist, 1),
        (RecordKind::Label, 1),
        (RecordKind::Master, 0),
        (RecordKind::Release, 1),
    ]
    .into();
    assert_eq!(
        published, expected_published,
        "only changed and new records"
    );
    for kind in [RecordKind::Artist, RecordKind::Release] {
        let list = root.join(format!("removed_{MONTH_2}_{}.ids", kind.plural()));
        let want = if kind == RecordKind::Artist {
            REMOVED_ARTIST
        } else {
            removed_release
        };
        assert_eq!(
            std::fs::read_to_string(&list).unwrap(),
            format!("{want}\n"),
            "{}",
            list.display()
        );
    }
    tableinator
        .wait_for("month 2 in PostgreSQL", limit, all_complete(2))
        .await;
    graphinator
        .wait_for("month 2 in Neo4j", limit, all_complete(2))
        .await;

    // Both services wrote exactly the published records, and deleted the removed ones.
    let pg_written_2 = written(&tableinator.stats.report());
    let graph_written_2 = written(&graphinator.stats.report());
    for kind in RecordKind::ALL {
        assert_eq!(
            pg_written_2[&kind] - pg_written[&kind],
            expected_published[&kind],
            "{kind}: PostgreSQL rows written in month 2"
        );
        assert_eq!(
            graph_written_2[&kind] - graph_written[&kind],
            expected_published[&kind],
            "{kind}: Neo4j nodes written in month 2"
        );
    }
    assert_eq!(tableinator.stats.removed(RecordKind::Artist), 1);
    assert_eq!(tableinator.stats.removed(RecordKind::Release), 1);
    assert_eq!(graphinator.stats.removed(RecordKind::Artist), 1);
    assert_eq!(graphinator.stats.removed(RecordKind::Release), 1);

    let (changed, added, removed): (BTreeMap<RecordKind, Vec<i64>>, _, _) = (
        [
            (RecordKind::Artist, vec![CHANGED_ARTIST]),
            (RecordKind::Release, vec![CHANGED_RELEASE]),
        ]
        .into(),
        BTreeMap::from([(RecordKind::Label, ADDED_LABEL)]),
        BTreeMap::from([
            (RecordKind::Artist, REMOVED_ARTIST),
            (RecordKind::Release, removed_release),
        ]),
    );
    for kind in RecordKind::ALL {
        let file = month2.join(format!("discogs_{MONTH_2}_{}.xml", kind.plural()));
        let (_, records) = read_records(&file);
        let ids: BTreeSet<i64> = records
            .iter()
            .map(|r| i64::try_from(r.record.id()).unwrap())
            .collect();
        // PostgreSQL: rows = distinct ids of the month; untouched rows kept their version.
        let after = row_versions(&client, &env.schema, kind).await;
        assert_eq!(
            after.keys().copied().collect::<BTreeSet<_>>(),
            ids,
            "{kind}: PostgreSQL rows are the month's ids"
        );
        let rewritten: Vec<i64> = after
            .iter()
            .filter(|(id, v)| before[&kind].get(id) != Some(v))
            .map(|(id, _)| *id)
            .collect();
        let mut want: Vec<i64> = changed.get(&kind).cloned().unwrap_or_default();
        want.extend(added.get(&kind));
        want.sort_unstable();
        assert_eq!(rewritten, want, "{kind}: only these rows were rewritten");
        if let Some(id) = removed.get(&kind) {
            assert!(before[&kind].contains_key(id) && !after.contains_key(id));
        }
        // Neo4j: complete nodes = the month's ids.
        assert_eq!(
            graph_ids(&graph, kind).await,
            ids,
            "{kind}: Neo4j records are the month's ids"
        );
    }
    let schema = &env.schema;
    let title: String = client
        .query_one(
            &format!("SELECT title FROM \"{schema}\".releases WHERE id = {CHANGED_RELEASE}"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(title, "Stockholm (remastered)");
    let release = graph.names().release().to_owned();
    let artist = graph.names().artist().to_owned();
    assert_eq!(
        graph_count(
            &graph,
            &format!("MATCH (n:`{release}` {{id: {CHANGED_RELEASE}, title: 'Stockholm (remastered)'}}) RETURN count(n) AS n")
        )
        .await,
        1
    );
    // The removed release is gone from the graph; the removed artist, still credited on
    // release 1, is a stub: id and name only, no relationship of its own record.
    assert_eq!(
        graph_count(
            &graph,
            &format!("MATCH (n:`{release}` {{id: {removed_release}}}) WHERE n.sha256 IS NOT NULL OR NOT (n)--() RETURN count(n) AS n")
        )
        .await,
        0
    );
    assert_eq!(
        graph_count(
            &graph,
            &format!(
                "MATCH (n:`{artist}` {{id: {REMOVED_ARTIST}}}) WHERE n.sha256 IS NULL \
                 AND all(k IN keys(n) WHERE k IN ['id', 'name']) AND (n)<-[:BY]-(:`{release}` {{id: {CHANGED_RELEASE}}}) \
                 AND NOT (n)-[:ALIAS_OF|MEMBER_OF]-() RETURN count(n) AS n"
            )
        )
        .await,
        1,
        "the removed artist is a stub still credited on release {CHANGED_RELEASE}"
    );
    for kind in RecordKind::ALL {
        assert_eq!(env.dead_letters("tableinator", kind).await, 0);
        assert_eq!(env.dead_letters("graphinator", kind).await, 0);
    }
    tableinator.stop().await;
    graphinator.stop().await;
    std::fs::remove_dir_all(&root).ok();
}
