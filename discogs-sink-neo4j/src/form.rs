//! What the graph keeps of a record ([`graph_form`]), and the rules shared by the
//! write path and the read-back: which references become relationships, in which order.

use std::borrow::Cow;

use discogs_model::{
    Artist, Credit, EntityRef, Format, Label, Master, Record, Release, ReleaseLabel,
};

/// The part of `record` that the graph holds, in the form [`crate::Neo4jSink::get`]
/// reads it back.
///
/// | kind | node properties | relationships (each one what the field below becomes) |
/// |---|---|---|
/// | artist | `id`, `name`, `real_name` | `aliases` → `(a)-[:ALIAS_OF]->(alias)`; `groups` → `(a)-[:MEMBER_OF]->(group)`; `members` → `(member)-[:MEMBER_OF]->(a)` |
/// | label | `id`, `name` | `parent_label` → `(l)-[:SUBLABEL_OF]->(parent)`; `sublabels` → `(sub)-[:SUBLABEL_OF]->(l)` |
/// | master | `id`, `title`, `year` | `main_release` → `(m)-[:MAIN_RELEASE]->(r)`; `artists` → `(m)-[:BY]->(a)`; `genres`, `styles` → `(m)-[:IS]->(g)` |
/// | release | `id`, `title`, `year`, `released`, `country`, `formats` (the format names, in order) | `artists` → `(r)-[:BY]->(a)`; `labels` → `(r)-[:ON {catno}]->(l)`; `master_id` → `(r)-[:DERIVED_FROM]->(m)`; `extra_artists` → `(a)-[:CREDITED_ON {role}]->(r)`; `genres`, `styles` → `(r)-[:IS]->(g)` |
///
/// Every node also has `sha256` (the record hash in hex). References without an id are
/// not in the graph; the others keep only their id (and `catno` or `role`), sorted and
/// without repeats, because relationships have no order. The rest of the record
/// (profiles, notes, track lists, identifiers, images...) lives in PostgreSQL.
#[must_use]
pub fn graph_form(record: &Record<'_>) -> Record<'static> {
    match record {
        Record::Artist(a) => Record::Artist(Artist {
            id: a.id,
            name: owned(&a.name),
            real_name: a.real_name.as_deref().map(owned),
            aliases: id_refs(entity_ids(&a.aliases)),
            members: id_refs(entity_ids(&a.members)),
            groups: id_refs(entity_ids(&a.groups)),
            ..Artist::default()
        }),
        Record::Label(l) => Record::Label(Label {
            id: l.id,
            name: owned(&l.name),
            parent_label: parent_id(l).map(|id| EntityRef {
                id: Some(id),
                name: Cow::Borrowed(""),
            }),
            sublabels: id_refs(entity_ids(&l.sublabels)),
            ..Label::default()
        }),
        Record::Master(m) => Record::Master(Master {
            id: m.id,
            title: owned(&m.title),
            year: m.year,
            main_release: m.main_release,
            artists: id_credits(credit_ids(&m.artists)),
            genres: names(&m.genres).into_iter().map(owned).collect(),
            styles: names(&m.styles).into_iter().map(owned).collect(),
            ..Master::default()
        }),
        Record::Release(r) => Record::Release(Release {
            id: r.id,
            title: owned(&r.title),
            year: r.year,
            released: r.released.as_deref().map(owned),
            country: r.country.as_deref().map(owned),
            formats: r
                .formats
                .iter()
                .map(|f| Format {
                    name: owned(&f.name),
                    ..Format::default()
                })
                .collect(),
            artists: id_credits(credit_ids(&r.artists)),
            labels: release_labels(r)
                .into_iter()
                .map(|(id, catno)| ReleaseLabel {
                    id: Some(id),
                    name: Cow::Borrowed(""),
                    catno: catno.map(owned),
                })
                .collect(),
            master_id: r.master_id,
            extra_artists: credited(r)
                .into_iter()
                .map(|(id, role)| Credit {
                    id: Some(id),
                    role: role.map(owned),
                    ..Credit::default()
                })
                .collect(),
            genres: names(&r.genres).into_iter().map(owned).collect(),
            styles: names(&r.styles).into_iter().map(owned).collect(),
            ..Release::default()
        }),
    }
}

fn owned(s: &str) -> Cow<'static, str> {
    Cow::Owned(s.to_owned())
}

fn id_refs(ids: Vec<(u64, &str)>) -> Vec<EntityRef<'static>> {
    ids.into_iter()
        .map(|(id, _)| EntityRef {
            id: Some(id),
            name: Cow::Borrowed(""),
        })
        .collect()
}

fn id_credits(ids: Vec<(u64, &str)>) -> Vec<Credit<'static>> {
    ids.into_iter()
        .map(|(id, _)| Credit {
            id: Some(id),
            ..Credit::default()
        })
        .collect()
}

/// `(id, name)` of the references that have an id, sorted by id, one per id (the first
/// occurrence's name).
pub(crate) fn entity_ids<'r>(refs: &'r [EntityRef<'_>]) -> Vec<(u64, &'r str)> {
    sorted_ids(refs.iter().filter_map(|r| Some((r.id?, r.name.as_ref()))))
}

/// As [`entity_ids`], for credits.
pub(crate) fn credit_ids<'r>(credits: &'r [Credit<'_>]) -> Vec<(u64, &'r str)> {
    sorted_ids(
        credits
            .iter()
            .filter_map(|c| Some((c.id?, c.name.as_ref()))),
    )
}

fn sorted_ids<'r>(items: impl Iterator<Item = (u64, &'r str)>) -> Vec<(u64, &'r str)> {
    let mut v: Vec<_> = items.collect();
    // Stable: among equal ids the first occurrence comes first and is kept.
    v.sort_by_key(|(id, _)| *id);
    v.dedup_by_key(|(id, _)| *id);
    v
}

/// The parent label's id, when it has one.
pub(crate) fn parent_id(l: &Label<'_>) -> Option<u64> {
    l.parent_label.as_ref().and_then(|p| p.id)
}

/// Genre or style names, sorted, without repeats.
pub(crate) fn names<'r>(list: &'r [Cow<'_, str>]) -> Vec<&'r str> {
    let mut v: Vec<&str> = list.iter().map(AsRef::as_ref).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// `(label id, catno)` of the release's labels with ids: one `ON` relationship each.
pub(crate) fn release_labels<'r>(r: &'r Release<'_>) -> Vec<(u64, Option<&'r str>)> {
    let mut v: Vec<_> = r
        .labels
        .iter()
        .filter_map(|l| Some((l.id?, l.catno.as_deref())))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// `(artist id, role)` of the release's extra artists with ids: one `CREDITED_ON` each.
pub(crate) fn credited<'r>(r: &'r Release<'_>) -> Vec<(u64, Option<&'r str>)> {
    let mut v: Vec<_> = r
        .extra_artists
        .iter()
        .filter_map(|c| Some((c.id?, c.role.as_deref())))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The `(style, genre)` pairs a record with exactly one genre makes unambiguous:
/// each of its styles is `PART_OF` that genre.
pub(crate) fn part_of<'r>(
    genres: &'r [Cow<'_, str>],
    styles: &'r [Cow<'_, str>],
) -> Vec<(&'r str, &'r str)> {
    match names(genres).as_slice() {
        [genre] => names(styles).into_iter().map(|s| (s, *genre)).collect(),
        _ => Vec::new(),
    }
}

/// Ids of the records of its own kind that `record` refers to: an artist's aliases,
/// groups and members, a label's parent and sublabels (masters and releases refer to
/// other kinds only).
pub(crate) fn same_kind_refs(record: &Record<'_>) -> Vec<u64> {
    match record {
        Record::Artist(a) => [&a.aliases, &a.groups, &a.members]
            .into_iter()
            .flat_map(|refs| refs.iter().filter_map(|r| r.id))
            .collect(),
        Record::Label(l) => parent_id(l)
            .into_iter()
            .chain(l.sublabels.iter().filter_map(|r| r.id))
            .collect(),
        Record::Master(_) | Record::Release(_) => Vec::new(),
    }
}

/// Splits `records` (one batch's, ids unique) into at most `parts` groups of about equal
/// size for concurrent write transactions, keeping records that refer to each other
/// ([`same_kind_refs`], followed through the batch) in one group: two transactions that
/// each write one end of a membership and merge the other as a stub take the same locks
/// in opposite orders and deadlock. Groups go largest first to the part with the fewest
/// records (records linked to nothing alternate between the parts); inside a part the
/// records keep the batch's order.
pub(crate) fn split_linked<T>(
    records: &[T],
    record: impl Fn(&T) -> &Record<'_>,
    parts: usize,
) -> Vec<Vec<&T>> {
    let n = records.len();
    let parts = parts.clamp(1, n.max(1));
    // Union-find over positions, joined by references inside the batch.
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let at: std::collections::HashMap<u64, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (record(r).id(), i))
        .collect();
    for (i, r) in records.iter().enumerate() {
        for id in same_kind_refs(record(r)) {
            if let Some(&j) = at.get(&id) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    // Groups by size, largest first, each to the part with the fewest records so far.
    let mut groups: std::collections::HashMap<usize, Vec<usize>> = std::collections::HashMap::new();
    for i in 0..n {
        groups.entry(root(&mut parent, i)).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); parts];
    for g in groups {
        let smallest = (0..parts).min_by_key(|&p| out[p].len()).unwrap_or(0);
        out[smallest].extend(g);
    }
    out.into_iter()
        .filter(|p| !p.is_empty())
        .map(|mut p| {
            p.sort_unstable();
            p.into_iter().map(|i| &records[i]).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_sorted_deduplicated_and_need_ids() {
        let r = Release {
            id: 1,
            title: "T".into(),
            artists: vec![
                Credit {
                    id: Some(5),
                    name: "B".into(),
                    ..Credit::default()
                },
                Credit {
                    id: None,
                    name: "Unlinked".into(),
                    ..Credit::default()
                },
                Credit {
                    id: Some(2),
                    name: "A".into(),
                    ..Credit::default()
                },
                Credit {
                    id: Some(5),
                    name: "B again".into(),
                    ..Credit::default()
                },
            ],
            labels: vec![
                ReleaseLabel {
                    id: Some(9),
                    name: "L".into(),
                    catno: Some("X2".into()),
                },
                ReleaseLabel {
                    id: Some(9),
                    name: "L".into(),
                    catno: Some("X1".into()),
                },
                ReleaseLabel {
                    id: Some(9),
                    name: "L".into(),
                    catno: Some("X1".into()),
                },
                ReleaseLabel {
                    id: None,
                    name: "No id".into(),
                    catno: None,
                },
            ],
            genres: vec!["Rock".into(), "Electronic".into(), "Rock".into()],
            styles: vec!["Techno".into()],
            ..Release::default()
        };
        let Record::Release(g) = graph_form(&Record::Release(r.clone())) else {
            unreachable!()
        };
        assert_eq!(
            g.artists.iter().map(|c| c.id).collect::<Vec<_>>(),
            [Some(2), Some(5)]
        );
        assert_eq!(
            g.labels
                .iter()
                .map(|l| (l.id, l.catno.as_deref()))
                .collect::<Vec<_>>(),
            [(Some(9), Some("X1")), (Some(9), Some("X2"))]
        );
        assert_eq!(g.genres, ["Electronic", "Rock"]);
        assert_eq!(credit_ids(&r.artists), [(2, "A"), (5, "B")]);
        // Two genres: no PART_OF; one genre: each style is part of it.
        assert!(part_of(&r.genres, &r.styles).is_empty());
        let one = [Cow::Borrowed("Electronic"), Cow::Borrowed("Electronic")];
        let styles = [Cow::Borrowed("Techno"), Cow::Borrowed("House")];
        assert_eq!(
            part_of(&one, &styles),
            [("House", "Electronic"), ("Techno", "Electronic")]
        );
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    fn artist(id: u64, refs: &[u64]) -> Record<'static> {
        Record::Artist(Artist {
            id,
            name: "A".into(),
            members: refs
                .iter()
                .map(|&r| EntityRef {
                    id: Some(r),
                    name: "M".into(),
                })
                .collect(),
            ..Artist::default()
        })
    }

    #[test]
    fn linked_records_share_a_part_and_parts_stay_balanced() {
        // 1-5-9 linked (through 5's members), 2-3 linked, 4, 6, 7, 8 alone; 100 is outside.
        let records = vec![
            artist(1, &[]),
            artist(2, &[3]),
            artist(3, &[]),
            artist(4, &[100]),
            artist(5, &[1, 9]),
            artist(6, &[]),
            artist(7, &[]),
            artist(8, &[]),
            artist(9, &[]),
        ];
        let parts = split_linked(&records, |r| r, 2);
        assert_eq!(parts.len(), 2);
        let ids: Vec<Vec<u64>> = parts
            .iter()
            .map(|p| p.iter().map(|r| r.id()).collect())
            .collect();
        let part_of = |id: u64| ids.iter().position(|p| p.contains(&id)).unwrap();
        assert_eq!(part_of(1), part_of(5));
        assert_eq!(part_of(5), part_of(9));
        assert_eq!(part_of(2), part_of(3));
        assert_eq!(ids[0].len() + ids[1].len(), 9);
        assert!(ids[0].len().abs_diff(ids[1].len()) <= 1, "{ids:?}");
        // The batch's order holds inside each part.
        for p in &ids {
            assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
        }
        assert_eq!(split_linked(&records, |r| r, 1).len(), 1);
        assert!(split_linked(&records[..0], |r| r, 2).is_empty());
    }
}
