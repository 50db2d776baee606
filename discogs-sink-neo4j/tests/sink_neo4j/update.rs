//! Changed records: the newer excerpt over the 2025-11 one, and records changed on
//! purpose, end with exactly the relationships of their new versions.

use discogs_model::{Credit, EntityRef, Record, RecordKind, ReleaseLabel, SinkRecord};
use discogs_sink_neo4j::graph_form;

use crate::fixtures::{last_by_id, relationship_ids};
use crate::model::{diff, Graph};
use crate::{load, read_records, shared_fixtures, TestGraph};

const EXCERPT_2025_11: &str =
    "nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz";

#[tokio::test]
async fn newer_excerpt_ends_with_exactly_the_new_edges() {
    let Some(dir) = shared_fixtures() else { return };
    let Some(tg) = TestGraph::new("neo4j_update") else {
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

    let mut sink = tg.sink();
    load(&mut sink, kind, &old, 1000).await;
    let before = relationship_ids(&sink).await;
    let outcome = load(&mut sink, kind, &new, 1000).await;
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (0, differing, 12 - differing)
    );

    // The graph is that of the new versions over the old ones, exactly.
    let mut current = last_by_id(&old);
    current.extend(last_by_id(&new));
    let past = old.iter().chain(&new).map(|r| &r.record);
    let expected = Graph::expected(current.values().map(|r| &r.record), past);
    let stored = Graph::stored(&sink).await;
    assert!(stored == expected, "{}", diff(&expected, &stored));
    for r in &new {
        let (record, hash) = sink.get(kind, r.record.id()).await.unwrap().unwrap();
        assert_eq!(record, graph_form(&r.record));
        assert_eq!(hash, Some(r.hash));
    }
    // Only the changed releases' relationships were replaced.
    let after = relationship_ids(&sink).await;
    let replaced = before
        .iter()
        .filter(|id| after.binary_search(id).is_err())
        .count();
    let changed_rels: usize = new
        .iter()
        .filter(|r| old_by_id[&r.record.id()].hash != r.hash)
        .map(|r| {
            expected
                .rels
                .keys()
                .filter(|(t, f, to, _)| {
                    let me = format!("Release:{}", r.record.id());
                    t != "PART_OF" && (*f == me || *to == me)
                })
                .count()
        })
        .sum();
    assert_eq!(
        replaced, changed_rels,
        "relationships deleted by the update"
    );
    eprintln!("kiraririria over 2025-11: {outcome:?}, {replaced} relationships replaced");
    tg.drop().await;
}

#[tokio::test]
async fn a_changed_record_replaces_every_relationship_it_owns() {
    let Some(dir) = shared_fixtures() else { return };
    let Some(tg) = TestGraph::new("neo4j_prune") else {
        return;
    };
    let dir = dir.join("tgmz__de.tgmz.discogs");
    let mut sink = tg.sink();
    let mut originals = Vec::new();
    let mut changed = Vec::new();
    for (file, kind) in [
        ("discogs_20250101_releases.xml.gz", RecordKind::Release),
        ("discogs_20250101_masters.xml.gz", RecordKind::Master),
        ("discogs_20250101_labels.xml.gz", RecordKind::Label),
        ("discogs_20250101_artists.xml.gz", RecordKind::Artist),
    ] {
        let (_, records) = read_records(&dir.join(file));
        load(&mut sink, kind, &records, 100).await;
        // Each record changed in every kind of relationship it has.
        let edited: Vec<SinkRecord<'static>> = records
            .iter()
            .map(|r| {
                let mut record = r.record.clone();
                match &mut record {
                    Record::Release(x) => {
                        x.labels.remove(0);
                        if let Some(l) = x.labels.first_mut() {
                            l.catno = Some("NEW 001".into());
                        }
                        x.labels.push(ReleaseLabel {
                            id: Some(9_000_001),
                            name: "New Label".into(),
                            catno: None,
                        });
                        x.artists = vec![Credit {
                            id: Some(9_000_002),
                            name: "Someone Else".into(),
                            ..Credit::default()
                        }];
                        x.extra_artists.truncate(2);
                        x.genres = vec!["Jazz".into()];
                        x.styles = vec!["Bop".into()];
                        x.master_id = x.master_id.map(|m| m + 1);
                    }
                    Record::Master(x) => {
                        x.main_release = Some(9_000_003);
                        x.styles.pop();
                        x.artists.clear();
                    }
                    Record::Label(x) => {
                        x.parent_label = Some(EntityRef {
                            id: Some(9_000_004),
                            name: "New Parent".into(),
                        });
                        x.sublabels.truncate(1);
                    }
                    Record::Artist(x) => {
                        x.members.pop();
                        x.groups.clear();
                        x.aliases.push(EntityRef {
                            id: Some(9_000_005),
                            name: "New Alias".into(),
                        });
                    }
                }
                SinkRecord::new(record)
            })
            .collect();
        let outcome = load(&mut sink, kind, &edited, 100).await;
        assert_eq!(outcome.updated, last_by_id(&records).len() as u64, "{kind}");
        originals.extend(records);
        changed.extend(edited);
    }
    let current = last_by_id(&changed);
    let past = originals.iter().chain(&changed).map(|r| &r.record);
    let expected = Graph::expected(current.values().map(|r| &r.record), past);
    let stored = Graph::stored(&sink).await;
    assert!(stored == expected, "{}", diff(&expected, &stored));
    tg.drop().await;
}
