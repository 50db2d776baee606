//! An independent model of the graph the sink must build from a set of records (the rules
//! of the crate's README, written again here), and the graph actually stored, in the same
//! form, so that tests compare them whole.

use std::collections::{BTreeMap, BTreeSet};

use discogs_model::Record;
use discogs_sink_neo4j::Neo4jSink;
use neo4rs::query;

/// `(type, from, to, property)`, nodes written `Label:key` with the label without namespace.
pub(crate) type Rel = (String, String, String, Option<String>);

/// Relationships (with how many times each is stored) and nodes per label.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Graph {
    pub(crate) rels: BTreeMap<Rel, usize>,
    pub(crate) nodes: BTreeMap<String, BTreeSet<String>>,
}

const BASES: [&str; 6] = ["Artist", "Label", "Master", "Release", "Genre", "Style"];

fn key(base: &str, id: impl std::fmt::Display) -> String {
    format!("{base}:{id}")
}

impl Graph {
    fn node(&mut self, base: &str, k: impl std::fmt::Display) -> String {
        let k = k.to_string();
        self.nodes
            .entry(base.to_owned())
            .or_default()
            .insert(k.clone());
        key(base, k)
    }

    fn rel(&mut self, t: &str, from: String, to: String, prop: Option<&str>) {
        self.rels
            .insert((t.to_owned(), from, to, prop.map(str::to_owned)), 1);
    }

    /// The graph of `current` (one record per id, the stored version); PART_OF and nodes
    /// also come from `past` versions, since neither is removed when a record changes.
    pub(crate) fn expected<'r>(
        current: impl IntoIterator<Item = &'r Record<'static>>,
        past: impl IntoIterator<Item = &'r Record<'static>>,
    ) -> Graph {
        let mut g = Graph::default();
        for r in current {
            g.add(r, true);
        }
        for r in past {
            g.add(r, false);
        }
        g
    }

    fn add(&mut self, record: &Record<'_>, current: bool) {
        let mut rels: Vec<(&str, String, String, Option<&str>)> = Vec::new();
        match record {
            Record::Artist(a) => {
                let me = self.node("Artist", a.id);
                for x in a.aliases.iter().filter_map(|x| x.id) {
                    rels.push(("ALIAS_OF", me.clone(), self.node("Artist", x), None));
                }
                for x in a.groups.iter().filter_map(|x| x.id) {
                    rels.push(("MEMBER_OF", me.clone(), self.node("Artist", x), None));
                }
                for x in a.members.iter().filter_map(|x| x.id) {
                    rels.push(("MEMBER_OF", self.node("Artist", x), me.clone(), None));
                }
            }
            Record::Label(l) => {
                let me = self.node("Label", l.id);
                if let Some(p) = l.parent_label.as_ref().and_then(|p| p.id) {
                    rels.push(("SUBLABEL_OF", me.clone(), self.node("Label", p), None));
                }
                for x in l.sublabels.iter().filter_map(|x| x.id) {
                    rels.push(("SUBLABEL_OF", self.node("Label", x), me.clone(), None));
                }
            }
            Record::Master(m) => {
                let me = self.node("Master", m.id);
                if let Some(r) = m.main_release {
                    rels.push(("MAIN_RELEASE", me.clone(), self.node("Release", r), None));
                }
                for x in m.artists.iter().filter_map(|x| x.id) {
                    rels.push(("BY", me.clone(), self.node("Artist", x), None));
                }
                self.tags(&me, &m.genres, &m.styles, current);
            }
            Record::Release(r) => {
                let me = self.node("Release", r.id);
                for x in r.artists.iter().filter_map(|x| x.id) {
                    rels.push(("BY", me.clone(), self.node("Artist", x), None));
                }
                for l in &r.labels {
                    if let Some(id) = l.id {
                        rels.push(("ON", me.clone(), self.node("Label", id), l.catno.as_deref()));
                    }
                }
                if let Some(m) = r.master_id {
                    rels.push(("DERIVED_FROM", me.clone(), self.node("Master", m), None));
                }
                for c in &r.extra_artists {
                    if let Some(id) = c.id {
                        rels.push((
                            "CREDITED_ON",
                            self.node("Artist", id),
                            me.clone(),
                            c.role.as_deref(),
                        ));
                    }
                }
                self.tags(&me, &r.genres, &r.styles, current);
            }
        }
        if current {
            for (t, from, to, prop) in rels {
                self.rel(t, from, to, prop);
            }
        }
    }

    fn tags(
        &mut self,
        me: &str,
        genres: &[std::borrow::Cow<'_, str>],
        styles: &[std::borrow::Cow<'_, str>],
        current: bool,
    ) {
        let distinct: BTreeSet<&str> = genres.iter().map(AsRef::as_ref).collect();
        for g in &distinct {
            let to = self.node("Genre", g);
            if current {
                self.rel("IS", me.to_owned(), to, None);
            }
        }
        for s in styles {
            let to = self.node("Style", s);
            if current {
                self.rel("IS", me.to_owned(), to.clone(), None);
            }
            if let [g] = distinct.iter().collect::<Vec<_>>().as_slice() {
                let genre = key("Genre", g);
                self.rel("PART_OF", to, genre, None);
            }
        }
    }

    /// What the namespace of `sink` holds.
    pub(crate) async fn stored(sink: &Neo4jSink) -> Graph {
        let ns = sink.names().namespace().to_owned();
        let mut g = Graph::default();
        let node_key = |labels: &[String], id: Option<i64>, name: Option<String>| -> String {
            let base = labels
                .iter()
                .find_map(|l| l.strip_prefix(&ns))
                .unwrap_or("?")
                .to_owned();
            match base.as_str() {
                "Genre" | "Style" => key(&base, name.unwrap_or_default()),
                _ => key(&base, id.map_or("none".to_owned(), |i| i.to_string())),
            }
        };
        for base in BASES {
            let label = format!("{ns}{base}");
            let text = format!(
                "MATCH (a:{label}) RETURN labels(a) AS al, a.id AS aid, a.name AS aname, \
                 [(a)-[r]->(b) | [type(r), labels(b), b.id, b.name, coalesce(r.catno, r.role)]] AS out"
            );
            let mut rows = sink.graph().execute(query(&text)).await.expect(&text);
            while let Some(row) = rows.next().await.expect("row") {
                let al: Vec<String> = row.get("al").unwrap();
                let aid: Option<i64> = row.get("aid").unwrap();
                let aname: Option<String> = row.get("aname").unwrap();
                let from = node_key(&al, aid, aname);
                let (_, k) = from.split_once(':').unwrap();
                g.nodes
                    .entry(base.to_owned())
                    .or_default()
                    .insert(k.to_owned());
                type Out = (
                    String,
                    Vec<String>,
                    Option<i64>,
                    Option<String>,
                    Option<String>,
                );
                let out: Vec<Out> = row.get("out").unwrap();
                for (t, bl, bid, bname, prop) in out {
                    let to = node_key(&bl, bid, bname);
                    *g.rels.entry((t, from.clone(), to, prop)).or_default() += 1;
                }
            }
        }
        g
    }
}

/// Prints the differences of two graphs (for a failing assertion).
pub(crate) fn diff(expected: &Graph, stored: &Graph) -> String {
    let mut out = String::new();
    for (r, n) in &expected.rels {
        if stored.rels.get(r) != Some(n) {
            out += &format!("expected {r:?} ×{n}, stored ×{:?}\n", stored.rels.get(r));
        }
    }
    for (r, n) in &stored.rels {
        if !expected.rels.contains_key(r) {
            out += &format!("unexpected {r:?} ×{n}\n");
        }
    }
    for base in BASES {
        let e = expected.nodes.get(base).cloned().unwrap_or_default();
        let s = stored.nodes.get(base).cloned().unwrap_or_default();
        let missing: Vec<_> = e.difference(&s).take(5).collect();
        let extra: Vec<_> = s.difference(&e).take(5).collect();
        if !missing.is_empty() || !extra.is_empty() {
            out += &format!(
                "{base}: {} expected, {} stored; missing {missing:?}, extra {extra:?}\n",
                e.len(),
                s.len()
            );
        }
    }
    out.truncate(4000);
    out
}
