//! Real dump excerpts: every file loads; the stored graph equals the model of its records
//! (every node, every relationship, no repeats); records read back in their graph form;
//! loading again writes nothing.

use std::collections::{BTreeSet, HashMap};

use discogs_model::{EntityRef, Record, SinkRecord};
use discogs_sink_neo4j::{graph_form, Neo4jSink};
use neo4rs::query;

use crate::model::{diff, Graph};
use crate::{load, read_records, shared_fixtures, TestGraph};

/// The last record of each id, as the sink keeps it.
pub(crate) fn last_by_id<'r>(
    records: &'r [SinkRecord<'static>],
) -> HashMap<u64, &'r SinkRecord<'static>> {
    records.iter().map(|r| (r.record.id(), r)).collect()
}

/// The model of `records`' graph and the graph stored in `sink`'s namespace, checked
/// equal (`name` says which file, in the message).
async fn assert_graph_is_records(
    sink: &Neo4jSink,
    records: &HashMap<u64, &SinkRecord<'static>>,
    name: &str,
) -> (Graph, Graph) {
    let expected = Graph::expected(records.values().map(|r| &r.record), []);
    let stored = Graph::stored(sink).await;
    assert!(
        stored == expected,
        "{name}: stored graph differs:\n{}",
        diff(&expected, &stored)
    );
    (expected, stored)
}

/// Deletes the namespace's nodes, keeping its schema.
pub(crate) async fn clear(sink: &Neo4jSink) {
    for label in sink.names().all_labels() {
        sink.graph()
            .run(query(&format!(
                "MATCH (n:{label}) CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF 10000 ROWS"
            )))
            .await
            .expect("clear");
    }
}

/// Element ids of every relationship of the namespace, sorted.
pub(crate) async fn relationship_ids(sink: &Neo4jSink) -> Vec<String> {
    let mut ids = Vec::new();
    for label in sink.names().all_labels() {
        let mut rows = sink
            .graph()
            .execute(query(&format!(
                "MATCH (:{label})-[r]->() RETURN elementId(r) AS id"
            )))
            .await
            .unwrap();
        while let Some(row) = rows.next().await.unwrap() {
            ids.push(row.get::<String>("id").unwrap());
        }
    }
    ids.sort();
    ids
}

/// The graph form of `record` as read back, given the whole stored graph: an artist's
/// members and groups, a label's parent and sublabels, are asserted by both ends, so they
/// come from the graph model rather than from the record alone.
pub(crate) fn expected_read_back(record: &Record<'static>, g: &Graph) -> Record<'static> {
    let ends =
        |t: &str, from: Option<&str>, to: Option<&str>, base: &str| -> Vec<EntityRef<'static>> {
            let ids: BTreeSet<u64> = g
                .rels
                .keys()
                .filter(|(rt, f, tt, _)| {
                    rt == t && from.is_none_or(|x| x == f) && to.is_none_or(|x| x == tt)
                })
                .map(|(_, f, tt, _)| if from.is_some() { tt } else { f })
                .filter_map(|k| k.strip_prefix(base)?.parse().ok())
                .collect();
            ids.into_iter()
                .map(|id| EntityRef {
                    id: Some(id),
                    name: "".into(),
                })
                .collect()
        };
    let mut form = graph_form(record);
    match &mut form {
        Record::Artist(a) => {
            let me = format!("Artist:{}", a.id);
            a.members = ends("MEMBER_OF", None, Some(&me), "Artist:");
            a.groups = ends("MEMBER_OF", Some(&me), None, "Artist:");
        }
        Record::Label(l) => {
            let me = format!("Label:{}", l.id);
            l.sublabels = ends("SUBLABEL_OF", None, Some(&me), "Label:");
            l.parent_label = ends("SUBLABEL_OF", Some(&me), None, "Label:")
                .into_iter()
                .next();
        }
        _ => {}
    }
    form
}

#[tokio::test]
async fn every_fixture_loads_and_the_graph_equals_its_records() {
    let Some(dir) = shared_fixtures() else { return };
    let Some(tg) = TestGraph::new("neo4j_fixtures") else {
        return;
    };
    let mut sink = tg.sink();
    sink.ensure_schema().await.expect("schema");
    let files = discogs_testkit::dump_files(&dir);
    assert!(files.len() > 30, "found only {} fixture files", files.len());
    let (mut total_nodes, mut total_rels) = (0, 0);
    for path in &files {
        let (kind, records) = read_records(path);
        let name = path.strip_prefix(&dir).unwrap().display().to_string();
        clear(&sink).await;
        let outcome = load(&mut sink, kind, &records, 500).await;
        let by_id = last_by_id(&records);
        assert_eq!(outcome.inserted, by_id.len() as u64, "{name}: inserted");
        assert_eq!(outcome.total(), records.len() as u64, "{name}: total");
        let complete = tg
            .count(
                &sink,
                &format!(
                    "MATCH (n:{}) WHERE n.sha256 IS NOT NULL RETURN count(n) AS n",
                    sink.names().label(kind)
                ),
            )
            .await;
        assert_eq!(
            complete,
            i64::try_from(by_id.len()).unwrap(),
            "{name}: complete nodes = distinct ids"
        );

        let (expected, stored) = assert_graph_is_records(&sink, &by_id, &name).await;

        // Every record of the small files, one in ten of the large ones (the graph
        // comparison above already covers all of them).
        let step = if by_id.len() > 500 { 10 } else { 1 };
        for (id, r) in by_id.iter().step_by(step) {
            let (record, hash) = sink
                .get(kind, *id)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: {id} missing"));
            assert_eq!(hash, Some(r.hash), "{name}: hash of {id}");
            assert_eq!(
                record,
                expected_read_back(&r.record, &expected),
                "{name}: {id} read back"
            );
        }

        let before = sink.stats();
        let rel_ids = relationship_ids(&sink).await;
        let again = load(&mut sink, kind, &records, 500).await;
        assert_eq!(again.written(), 0, "{name}: reload wrote {again:?}");
        assert_eq!(
            sink.stats().write_transactions,
            before.write_transactions,
            "{name}: reload opened write transactions"
        );
        assert!(
            Graph::stored(&sink).await == stored,
            "{name}: reload changed the graph"
        );
        assert_eq!(
            relationship_ids(&sink).await,
            rel_ids,
            "{name}: relationships re-created"
        );

        let nodes: usize = stored.nodes.values().map(BTreeSet::len).sum();
        let rels: usize = stored.rels.values().sum();
        total_nodes += nodes;
        total_rels += rels;
        eprintln!(
            "{name}: {kind} {} records, {nodes} nodes, {rels} relationships",
            records.len()
        );
    }
    eprintln!(
        "{} files, {total_nodes} nodes, {total_rels} relationships",
        files.len()
    );
    tg.drop().await;
}

/// A batch written as many small transactions, two in their statements at a time and the
/// next ones starting as those commit, gives the same graph as the records: artists that
/// name each other as members, groups and aliases (linked records stay in one
/// transaction), and releases that share artists, labels and masters.
#[tokio::test]
async fn a_batch_in_many_transactions_gives_the_records_graph() {
    let Some(dir) = shared_fixtures() else { return };
    let Some(tg) = TestGraph::new("neo4j_many_tx") else {
        return;
    };
    let mut sink = Neo4jSink::new(tg.config().transaction_records(40).write_transactions(2))
        .expect("valid config");
    sink.ensure_schema().await.expect("schema");
    for file in [
        "lukasaron__data-discogs/source_artists.xml",
        "philipmat__discogs-xml2db/discogs_20200806_releases.xml.gz",
    ] {
        let (kind, records) = read_records(&dir.join(file));
        let by_id = last_by_id(&records);
        clear(&sink).await;
        let before = sink.stats();
        // The whole file in one batch.
        let outcome = load(&mut sink, kind, &records, records.len()).await;
        assert_eq!(outcome.inserted, by_id.len() as u64, "{file}: inserted");
        let transactions = sink.stats().write_transactions - before.write_transactions;
        // More than the gate lets run at once, and than are in flight at once.
        assert!(
            transactions > 4,
            "{file}: {transactions} write transactions for {} records",
            by_id.len()
        );
        assert_graph_is_records(&sink, &by_id, file).await;
        eprintln!(
            "{file}: {} records in {transactions} write transactions, {} retried after a conflict",
            by_id.len(),
            sink.stats().deadlock_retries - before.deadlock_retries
        );
    }
    tg.drop().await;
}
