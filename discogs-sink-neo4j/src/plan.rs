//! The Cypher of the write path (fixed text per namespace, data only in parameters) and
//! the parameters of one transaction ([`Plan`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use discogs_model::{Record, RecordKind, SinkRecord};
use neo4rs::{BoltInteger, BoltList, BoltMap, BoltNull, BoltString, BoltType};

use crate::form::{credit_ids, credited, entity_ids, names, parent_id, part_of, release_labels};
use crate::{GraphNames, Neo4jSinkError};

/// Index of a node label in [`GraphNames::all_labels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    Artist = 0,
    Label = 1,
    Master = 2,
    Release = 3,
    Genre = 4,
    Style = 5,
}

/// The four kinds' nodes, in [`Node`] order.
const NODES: [Node; 4] = [Node::Artist, Node::Label, Node::Master, Node::Release];

impl Node {
    /// The property a relationship statement finds the node by, in the key form.
    fn key(self) -> &'static str {
        match self {
            Node::Genre | Node::Style => "name",
            _ => "id",
        }
    }

    /// The node of a record of `kind`.
    fn of(kind: RecordKind) -> Node {
        NODES[slot(kind)]
    }
}

/// One statement of a write transaction, with its one parameter.
#[derive(Debug)]
pub(crate) struct Step<'s> {
    pub(crate) text: &'s str,
    pub(crate) param: &'static str,
    pub(crate) value: BoltType,
    /// The label of the nodes whose `[key, elementId]` pairs the statement returns in
    /// its one row's `nodes` column; `None` when it returns nothing.
    pub(crate) returns: Option<Node>,
}

/// The element ids of the nodes a transaction wrote or referred to, by label and key:
/// the relationship statements find both ends by element id (a direct record lookup)
/// instead of seeking the `id` or `name` index for each end of each relationship.
#[derive(Debug, Default)]
pub(crate) struct ElementIds {
    by_id: [HashMap<i64, String>; 4],
    by_name: [HashMap<String, String>; 2],
}

impl ElementIds {
    /// Records the `nodes` column of a [`Step`] that returns nodes of `node`.
    pub(crate) fn add(&mut self, node: Node, row: &neo4rs::Row) -> Result<(), Neo4jSinkError> {
        match node {
            Node::Genre | Node::Style => {
                let pairs: Vec<(String, String)> = crate::sink::get(row, "nodes")?;
                self.by_name[node as usize - 4].extend(pairs);
            }
            _ => {
                let pairs: Vec<(i64, String)> = crate::sink::get(row, "nodes")?;
                self.by_id[node as usize].extend(pairs);
            }
        }
        Ok(())
    }

    fn get(&self, node: Node, key: Key<'_>) -> Option<&str> {
        match key {
            Key::Id(id) => self.by_id.get(node as usize)?.get(&id),
            Key::Name(name) => self.by_name.get((node as usize).checked_sub(4)?)?.get(name),
        }
        .map(String::as_str)
    }
}

/// Every relationship type the sink writes, one entry per (type, endpoint labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rel {
    AliasOf,
    MemberOf,
    SublabelOf,
    MasterBy,
    MasterGenre,
    MasterStyle,
    MainRelease,
    ReleaseBy,
    On,
    DerivedFrom,
    ReleaseGenre,
    ReleaseStyle,
    CreditedOn,
    PartOf,
}

const RELS: usize = 14;

/// `(type, from, to, MERGE rather than CREATE, relationship property)`.
///
/// MERGE where two records may assert the same relationship (a group lists its members,
/// each member lists its groups; a label its sublabels, each sublabel its parent) or
/// where no record owns it (PART_OF); CREATE where exactly one record owns it and the
/// write path has removed that record's previous relationships first.
const SPECS: [(&str, Node, Node, bool, Option<&str>); RELS] = [
    ("ALIAS_OF", Node::Artist, Node::Artist, false, None),
    ("MEMBER_OF", Node::Artist, Node::Artist, true, None),
    ("SUBLABEL_OF", Node::Label, Node::Label, true, None),
    ("BY", Node::Master, Node::Artist, false, None),
    ("IS", Node::Master, Node::Genre, false, None),
    ("IS", Node::Master, Node::Style, false, None),
    ("MAIN_RELEASE", Node::Master, Node::Release, false, None),
    ("BY", Node::Release, Node::Artist, false, None),
    ("ON", Node::Release, Node::Label, false, Some("catno")),
    ("DERIVED_FROM", Node::Release, Node::Master, false, None),
    ("IS", Node::Release, Node::Genre, false, None),
    ("IS", Node::Release, Node::Style, false, None),
    (
        "CREDITED_ON",
        Node::Artist,
        Node::Release,
        false,
        Some("role"),
    ),
    ("PART_OF", Node::Style, Node::Genre, true, None),
];

/// Node properties written per kind, besides `id` and `sha256`.
const PROPS: [&[&str]; 4] = [
    &["name", "real_name"],
    &["name"],
    &["title", "year"],
    &["title", "year", "released", "country", "formats"],
];

/// The relationships a record of each kind owns, which a changed record replaces:
/// `(pattern from n, condition)`.
const OWNED: [(&str, &str); 4] = [
    // An artist asserts its aliases, its groups and its members.
    (
        "(n)-[r:ALIAS_OF|MEMBER_OF]-()",
        "WHERE type(r) = 'MEMBER_OF' OR startNode(r) = n ",
    ),
    // A label asserts its parent and its sublabels.
    ("(n)-[r:SUBLABEL_OF]-()", ""),
    // A master: its artists, genres, styles, main release (not the releases DERIVED_FROM it).
    ("(n)-[r:BY|IS|MAIN_RELEASE]->()", ""),
    // A release: its artists, labels, master, genres, styles, and the credits pointing at it
    // (not its master's MAIN_RELEASE).
    ("(n)-[r:BY|ON|DERIVED_FROM|IS|CREDITED_ON]-()", ""),
];

fn slot(kind: RecordKind) -> usize {
    usize::from(kind.code() - 1)
}

/// The statements of one graph, built once from its [`GraphNames`].
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) lookup: [String; 4],
    pub(crate) delete_owned: [String; 4],
    pub(crate) upsert: [String; 4],
    pub(crate) stub: [String; 6],
    /// Finds referenced nodes by id without creating them, in [`NODES`] order: a read,
    /// so the index seek takes no lock (`MERGE`'s seek locks the index entry until the
    /// commit, and Neo4j then releases each lock one by one).
    pub(crate) find: [String; 4],
    /// Relationship statements finding both ends by element id.
    pub(crate) edges: [String; RELS],
    /// The same, finding both ends by `id` or `name` (for parts that replace records).
    pub(crate) edges_by_key: [String; RELS],
}

impl Statements {
    /// The statement deleting the relationships owned by the records of `kind` in `$ids`.
    pub(crate) fn delete_owned(&self, kind: RecordKind) -> &str {
        &self.delete_owned[slot(kind)]
    }

    pub(crate) fn new(names: &GraphNames) -> Self {
        let l = names.all_labels();
        let label = |n: Node| l[n as usize].as_str();
        let kind_label = |k: RecordKind| names.label(k);
        Self {
            lookup: RecordKind::ALL.map(|k| {
                format!(
                    "UNWIND $ids AS id MATCH (n:{} {{id: id}}) RETURN n.id AS id, n.sha256 AS sha",
                    kind_label(k)
                )
            }),
            delete_owned: RecordKind::ALL.map(|k| {
                let (pattern, condition) = OWNED[slot(k)];
                format!(
                    "UNWIND $ids AS id MATCH (n:{} {{id: id}}) MATCH {pattern} {condition}DELETE r",
                    kind_label(k)
                )
            }),
            upsert: RecordKind::ALL.map(|k| {
                let set: String = PROPS[slot(k)]
                    .iter()
                    .map(|p| format!("n.{p} = row.{p}, "))
                    .collect();
                format!(
                    "UNWIND $rows AS row MERGE (n:{} {{id: row.id}}) SET {set}n.sha256 = row.sha256 \
                     RETURN collect([row.id, elementId(n)]) AS nodes",
                    kind_label(k)
                )
            }),
            stub: [
                Node::Artist,
                Node::Label,
                Node::Master,
                Node::Release,
                Node::Genre,
                Node::Style,
            ]
            .map(|n| match n {
                Node::Genre | Node::Style => format!(
                    "UNWIND $refs AS r MERGE (x:{} {{name: r}}) RETURN collect([r, elementId(x)]) AS nodes",
                    label(n)
                ),
                _ => format!(
                    "UNWIND $refs AS r MERGE (x:{} {{id: r[0]}}) ON CREATE SET x.name = r[1] \
                     RETURN collect([r[0], elementId(x)]) AS nodes",
                    label(n)
                ),
            }),
            find: NODES.map(|n| {
                format!(
                    "UNWIND $ids AS id MATCH (x:{} {{id: id}}) \
                     RETURN collect([id, elementId(x)]) AS nodes",
                    label(n)
                )
            }),
            edges: SPECS.map(|(rel, from, to, merge, prop)| {
                let prop = prop.map_or(String::new(), |p| format!(" {{{p}: e[2]}}"));
                format!(
                    "UNWIND $edges AS e MATCH (a:{}) WHERE elementId(a) = e[0] \
                     MATCH (b:{}) WHERE elementId(b) = e[1]{}",
                    label(from),
                    label(to),
                    write_clause(rel, &prop, merge, "AND"),
                )
            }),
            edges_by_key: SPECS.map(|(rel, from, to, merge, prop)| {
                let prop = prop.map_or(String::new(), |p| format!(" {{{p}: e[2]}}"));
                format!(
                    "UNWIND $edges AS e MATCH (a:{} {{{}: e[0]}}) MATCH (b:{} {{{}: e[1]}}){}",
                    label(from),
                    from.key(),
                    label(to),
                    to.key(),
                    write_clause(rel, &prop, merge, "WHERE"),
                )
            }),
        }
    }
}

/// The end of a relationship statement, after both ends are matched: `CREATE`, or for a
/// relationship several records assert, `MERGE` only where it is missing. The existence
/// check is a read and takes no lock, while `MERGE` locks both nodes until the commit:
/// without the check, every chunk's `PART_OF` rows locked the same few styles and genres
/// and the concurrent transactions waited on each other. `join` continues the statement's
/// last `MATCH` (`WHERE`, or `AND` after one that has a `WHERE`).
fn write_clause(rel: &str, prop: &str, merge: bool, join: &str) -> String {
    if merge {
        format!(" {join} NOT EXISTS {{ (a)-[:{rel}{prop}]->(b) }} MERGE (a)-[:{rel}{prop}]->(b)")
    } else {
        format!(" CREATE (a)-[:{rel}{prop}]->(b)")
    }
}

/// An end of a relationship: a node id or a genre/style name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key<'r> {
    Id(i64),
    Name(&'r str),
}

/// One relationship to write. Sorted by target first: the targets (artists, labels,
/// genres...) are the nodes that concurrent transactions share, so taking their locks in
/// one order keeps two writers from deadlocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Edge<'r> {
    to: Key<'r>,
    from: Key<'r>,
    prop: Option<&'r str>,
}

pub(crate) fn int(id: u64) -> Result<i64, Neo4jSinkError> {
    i64::try_from(id).map_err(|_| Neo4jSinkError::IdOutOfRange(id))
}

fn bolt_int(v: i64) -> BoltType {
    BoltType::Integer(BoltInteger::new(v))
}

fn bolt_str(s: &str) -> BoltType {
    BoltType::String(BoltString::new(s))
}

fn bolt_opt(s: Option<&str>) -> BoltType {
    s.map_or(BoltType::Null(BoltNull), bolt_str)
}

fn bolt_key(k: Key<'_>) -> BoltType {
    match k {
        Key::Id(id) => bolt_int(id),
        Key::Name(name) => bolt_str(name),
    }
}

fn bolt_year(year: Option<u16>) -> BoltType {
    year.map_or(BoltType::Null(BoltNull), |y| bolt_int(i64::from(y)))
}

/// Genre and style names and `(style, genre)` `PART_OF` pairs (owned, sorted).
#[derive(Debug, Default)]
pub(crate) struct Tags {
    genres: BTreeSet<String>,
    styles: BTreeSet<String>,
    part_of: BTreeSet<(String, String)>,
}

impl Tags {
    /// The genres, styles and `PART_OF` pairs of `records` (masters and releases) that are
    /// not in `self`.
    pub(crate) fn missing<'a>(&self, records: impl Iterator<Item = &'a Record<'a>>) -> Tags {
        let mut new = Tags::default();
        // The chunk's pairs borrowed first: only the few distinct ones are copied.
        let mut pairs: BTreeSet<(&str, &str)> = BTreeSet::new();
        for record in records {
            let (genres, styles) = match record {
                Record::Master(m) => (&m.genres, &m.styles),
                Record::Release(r) => (&r.genres, &r.styles),
                Record::Artist(_) | Record::Label(_) => continue,
            };
            for (list, known, out) in [
                (genres, &self.genres, &mut new.genres),
                (styles, &self.styles, &mut new.styles),
            ] {
                for name in names(list) {
                    if !known.contains(name) && !out.contains(name) {
                        out.insert(name.to_owned());
                    }
                }
            }
            pairs.extend(part_of(genres, styles));
        }
        for (style, genre) in pairs {
            let pair = (style.to_owned(), genre.to_owned());
            if !self.part_of.contains(&pair) {
                new.part_of.insert(pair);
            }
        }
        new
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.genres.is_empty() && self.styles.is_empty() && self.part_of.is_empty()
    }

    /// The statements that `MERGE` these genres, styles and pairs (in that order), each
    /// with its parameter's name and value.
    pub(crate) fn steps<'s>(&self, st: &'s Statements) -> Vec<(&'s str, &'static str, BoltType)> {
        let list = |v: Vec<BoltType>| BoltType::List(BoltList::from(v));
        let mut out: Vec<_> = [(Node::Genre, &self.genres), (Node::Style, &self.styles)]
            .into_iter()
            .filter(|(_, set)| !set.is_empty())
            .map(|(node, set)| {
                let refs = set.iter().map(|n| bolt_str(n)).collect();
                (st.stub[node as usize].as_str(), "refs", list(refs))
            })
            .collect();
        if !self.part_of.is_empty() {
            let edges = self
                .part_of
                .iter()
                .map(|(s, g)| list(vec![bolt_str(s), bolt_str(g)]))
                .collect();
            out.push((
                st.edges_by_key[Rel::PartOf as usize].as_str(),
                "edges",
                list(edges),
            ));
        }
        out
    }

    pub(crate) fn extend(&mut self, other: Tags) {
        self.genres.extend(other.genres);
        self.styles.extend(other.styles);
        self.part_of.extend(other.part_of);
    }

    pub(crate) fn clear(&mut self) {
        self.genres.clear();
        self.styles.clear();
        self.part_of.clear();
    }
}

/// The parameters of one write transaction: node rows, stub references, relationships.
#[derive(Debug, Default)]
pub(crate) struct Plan<'r> {
    /// Ids of records whose previous relationships must go (they were stored complete).
    replace: Vec<i64>,
    rows: Vec<BoltType>,
    /// Referenced nodes by label: id → a name to give a node created here (`""`: none).
    stubs: [BTreeMap<i64, &'r str>; 4],
    genres: BTreeSet<&'r str>,
    styles: BTreeSet<&'r str>,
    edges: [Vec<Edge<'r>>; RELS],
}

impl<'r> Plan<'r> {
    /// Plans the write of `records` (all of one kind, ids unique); `replace` lists those
    /// stored complete before, whose owned relationships are deleted first.
    pub(crate) fn new(
        records: &[&'r SinkRecord<'r>],
        replace: Vec<i64>,
    ) -> Result<Self, Neo4jSinkError> {
        let mut plan = Plan {
            replace,
            rows: Vec::with_capacity(records.len()),
            ..Plan::default()
        };
        for r in records {
            plan.add(r)?;
        }
        // A record's own kind is written as a full node: no stub for it.
        if let Some(first) = records.first() {
            let own = &mut plan.stubs[slot(first.record.kind())];
            for r in records {
                own.remove(&int(r.record.id())?);
            }
        }
        for edges in &mut plan.edges {
            edges.sort_unstable();
            edges.dedup();
        }
        Ok(plan)
    }

    fn stub(&mut self, node: Node, id: u64, name: &'r str) -> Result<Key<'r>, Neo4jSinkError> {
        let id = int(id)?;
        let entry = self.stubs[node as usize].entry(id).or_insert(name);
        if entry.is_empty() {
            *entry = name;
        }
        Ok(Key::Id(id))
    }

    fn edge(&mut self, rel: Rel, from: Key<'r>, to: Key<'r>, prop: Option<&'r str>) {
        self.edges[rel as usize].push(Edge { to, from, prop });
    }

    fn row<const N: usize>(&mut self, id: i64, hash: String, props: [(&str, BoltType); N]) {
        let mut map = BoltMap::with_capacity(N + 2);
        map.put(BoltString::new("id"), bolt_int(id));
        map.put(
            BoltString::new("sha256"),
            BoltType::String(BoltString::from(hash)),
        );
        for (k, v) in props {
            map.put(BoltString::new(k), v);
        }
        self.rows.push(BoltType::Map(map));
    }

    fn add(&mut self, sr: &'r SinkRecord<'r>) -> Result<(), Neo4jSinkError> {
        let id = int(sr.record.id())?;
        let me = Key::Id(id);
        let hash = sr.hash.to_hex();
        match &sr.record {
            Record::Artist(a) => {
                let props = [
                    ("name", bolt_str(&a.name)),
                    ("real_name", bolt_opt(a.real_name.as_deref())),
                ];
                self.row(id, hash, props);
                for (alias, name) in entity_ids(&a.aliases) {
                    let to = self.stub(Node::Artist, alias, name)?;
                    self.edge(Rel::AliasOf, me, to, None);
                }
                for (group, name) in entity_ids(&a.groups) {
                    let to = self.stub(Node::Artist, group, name)?;
                    self.edge(Rel::MemberOf, me, to, None);
                }
                for (member, name) in entity_ids(&a.members) {
                    let from = self.stub(Node::Artist, member, name)?;
                    self.edge(Rel::MemberOf, from, me, None);
                }
            }
            Record::Label(l) => {
                self.row(id, hash, [("name", bolt_str(&l.name))]);
                if let (Some(parent), Some(p)) = (parent_id(l), &l.parent_label) {
                    let to = self.stub(Node::Label, parent, &p.name)?;
                    self.edge(Rel::SublabelOf, me, to, None);
                }
                for (sub, name) in entity_ids(&l.sublabels) {
                    let from = self.stub(Node::Label, sub, name)?;
                    self.edge(Rel::SublabelOf, from, me, None);
                }
            }
            Record::Master(m) => {
                let props = [("title", bolt_str(&m.title)), ("year", bolt_year(m.year))];
                self.row(id, hash, props);
                if let Some(main) = m.main_release {
                    let to = self.stub(Node::Release, main, "")?;
                    self.edge(Rel::MainRelease, me, to, None);
                }
                for (artist, name) in credit_ids(&m.artists) {
                    let to = self.stub(Node::Artist, artist, name)?;
                    self.edge(Rel::MasterBy, me, to, None);
                }
                self.tags(me, &m.genres, &m.styles, Rel::MasterGenre, Rel::MasterStyle);
            }
            Record::Release(r) => {
                let formats: Vec<BoltType> = r.formats.iter().map(|f| bolt_str(&f.name)).collect();
                let props = [
                    ("title", bolt_str(&r.title)),
                    ("year", bolt_year(r.year)),
                    ("released", bolt_opt(r.released.as_deref())),
                    ("country", bolt_opt(r.country.as_deref())),
                    (
                        "formats",
                        if formats.is_empty() {
                            BoltType::Null(BoltNull)
                        } else {
                            BoltType::List(BoltList::from(formats))
                        },
                    ),
                ];
                self.row(id, hash, props);
                for (artist, name) in credit_ids(&r.artists) {
                    let to = self.stub(Node::Artist, artist, name)?;
                    self.edge(Rel::ReleaseBy, me, to, None);
                }
                for label in &r.labels {
                    if let Some(l) = label.id {
                        self.stub(Node::Label, l, &label.name)?;
                    }
                }
                for (label, catno) in release_labels(r) {
                    self.edge(Rel::On, me, Key::Id(int(label)?), catno);
                }
                if let Some(master) = r.master_id {
                    let to = self.stub(Node::Master, master, "")?;
                    self.edge(Rel::DerivedFrom, me, to, None);
                }
                for c in &r.extra_artists {
                    if let Some(a) = c.id {
                        self.stub(Node::Artist, a, &c.name)?;
                    }
                }
                for (artist, role) in credited(r) {
                    self.edge(Rel::CreditedOn, Key::Id(int(artist)?), me, role);
                }
                self.tags(
                    me,
                    &r.genres,
                    &r.styles,
                    Rel::ReleaseGenre,
                    Rel::ReleaseStyle,
                );
            }
        }
        Ok(())
    }

    /// Genres and styles: nodes, `IS` relationships and, for a single genre, `PART_OF`.
    fn tags(
        &mut self,
        me: Key<'r>,
        genres: &'r [std::borrow::Cow<'r, str>],
        styles: &'r [std::borrow::Cow<'r, str>],
        genre_rel: Rel,
        style_rel: Rel,
    ) {
        for g in names(genres) {
            self.genres.insert(g);
            self.edge(genre_rel, me, Key::Name(g), None);
        }
        for s in names(styles) {
            self.styles.insert(s);
            self.edge(style_rel, me, Key::Name(s), None);
        }
        for (s, g) in part_of(genres, styles) {
            self.edge(Rel::PartOf, Key::Name(s), Key::Name(g), None);
        }
    }

    /// Whether the relationship statements find their ends by key rather than by element
    /// id: in a part that replaces stored records (an update), where the element-id form
    /// measured slower (ARCHITECTURE.md).
    fn by_key(&self) -> bool {
        !self.replace.is_empty()
    }

    /// The first statements of the transaction, in order: the deletion of replaced
    /// relationships, the records' nodes, the referenced nodes. Unless the part finds
    /// relationship ends by key, each but the deletion returns the element ids of its
    /// nodes, which [`Plan::edge_steps`] needs, and the referenced artists, labels,
    /// masters and releases are only looked up here (no lock); [`Plan::stub_steps`] then
    /// creates those not found. A part that finds ends by key merges them here (sorted).
    /// Moves the rows out of the plan.
    pub(crate) fn node_steps<'s>(&mut self, kind: RecordKind, st: &'s Statements) -> Vec<Step<'s>> {
        // The statements return element ids either way; a part that does not use them
        // discards them on the server instead of receiving and decoding them.
        let by_key = self.by_key();
        let returns = |node: Node| (!by_key).then_some(node);
        let mut out = Vec::with_capacity(8);
        if !self.replace.is_empty() {
            let ids = self
                .replace
                .iter()
                .map(|id| bolt_int(*id))
                .collect::<Vec<_>>();
            out.push(Step {
                text: st.delete_owned[slot(kind)].as_str(),
                param: "ids",
                value: BoltType::List(BoltList::from(ids)),
                returns: None,
            });
        }
        out.push(Step {
            text: st.upsert[slot(kind)].as_str(),
            param: "rows",
            value: BoltType::List(BoltList::from(std::mem::take(&mut self.rows))),
            returns: returns(Node::of(kind)),
        });
        for (node, stubs) in NODES.iter().zip(&self.stubs) {
            if stubs.is_empty() {
                continue;
            }
            out.push(if by_key {
                Self::stub_step(*node, stubs.iter(), st, None)
            } else {
                let ids: Vec<BoltType> = stubs.keys().map(|id| bolt_int(*id)).collect();
                Step {
                    text: st.find[*node as usize].as_str(),
                    param: "ids",
                    value: BoltType::List(BoltList::from(ids)),
                    returns: Some(*node),
                }
            });
        }
        for (node, set) in [(Node::Genre, &self.genres), (Node::Style, &self.styles)] {
            if !set.is_empty() {
                let refs: Vec<BoltType> = set.iter().map(|n| bolt_str(n)).collect();
                out.push(Step {
                    text: st.stub[node as usize].as_str(),
                    param: "refs",
                    value: BoltType::List(BoltList::from(refs)),
                    returns: returns(node),
                });
            }
        }
        out
    }

    /// After [`Plan::node_steps`] of a part that finds ends by element id: the `MERGE` of
    /// the referenced nodes those steps did not find (sorted by id; new ones are stubs).
    /// One was created since by another transaction: `MERGE` finds it, after that
    /// transaction commits. None in a part that finds ends by key (merged before).
    pub(crate) fn stub_steps<'s>(&self, st: &'s Statements, found: &ElementIds) -> Vec<Step<'s>> {
        if self.by_key() {
            return Vec::new();
        }
        NODES
            .iter()
            .zip(&self.stubs)
            .filter_map(|(node, stubs)| {
                let mut missing = stubs
                    .iter()
                    .filter(|(id, _)| found.get(*node, Key::Id(**id)).is_none())
                    .peekable();
                missing.peek()?;
                Some(Self::stub_step(*node, missing, st, Some(*node)))
            })
            .collect()
    }

    /// The `MERGE` of the referenced `node`s in `stubs` (id, name for a new node).
    fn stub_step<'s, 'a>(
        node: Node,
        stubs: impl Iterator<Item = (&'a i64, &'a &'r str)>,
        st: &'s Statements,
        returns: Option<Node>,
    ) -> Step<'s>
    where
        'r: 'a,
    {
        let refs: Vec<BoltType> = stubs
            .map(|(id, name)| {
                let name = if name.is_empty() { None } else { Some(*name) };
                BoltType::List(BoltList::from(vec![bolt_int(*id), bolt_opt(name)]))
            })
            .collect();
        Step {
            text: st.stub[node as usize].as_str(),
            param: "refs",
            value: BoltType::List(BoltList::from(refs)),
            returns,
        }
    }

    /// The relationship statements, one per type, each list sorted by target node, with
    /// both ends given by the element ids that the [`Plan::node_steps`] returned.
    ///
    /// # Errors
    ///
    /// [`Neo4jSinkError::Decode`] when an end has no element id (the server returned
    /// fewer nodes than asked for).
    pub(crate) fn edge_steps<'s>(
        &self,
        st: &'s Statements,
        nodes: &ElementIds,
    ) -> Result<Vec<Step<'s>>, Neo4jSinkError> {
        let mut out = Vec::with_capacity(RELS);
        let by_key = self.by_key();
        for (i, edges) in self.edges.iter().enumerate() {
            if edges.is_empty() {
                continue;
            }
            let (rel, from, to, _, prop) = SPECS[i];
            let end = |node: Node, key: Key<'_>| {
                if by_key {
                    return Ok(bolt_key(key));
                }
                nodes.get(node, key).map(bolt_str).ok_or_else(|| {
                    Neo4jSinkError::Decode(format!(
                        "no element id returned for the {rel} end {key:?} ({node:?})"
                    ))
                })
            };
            let rows = edges
                .iter()
                .map(|e| {
                    let mut v = vec![end(from, e.from)?, end(to, e.to)?];
                    if prop.is_some() {
                        v.push(bolt_opt(e.prop));
                    }
                    Ok(BoltType::List(BoltList::from(v)))
                })
                .collect::<Result<Vec<_>, Neo4jSinkError>>()?;
            out.push(Step {
                text: if by_key {
                    &st.edges_by_key[i]
                } else {
                    &st.edges[i]
                },
                param: "edges",
                value: BoltType::List(BoltList::from(rows)),
                returns: None,
            });
        }
        Ok(out)
    }

    /// Records planned.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_put_data_in_parameters_only() {
        let names = GraphNames::new("T1_").unwrap();
        let st = Statements::new(&names);
        assert_eq!(
            st.edges[Rel::On as usize],
            "UNWIND $edges AS e MATCH (a:T1_Release) WHERE elementId(a) = e[0] \
             MATCH (b:T1_Label) WHERE elementId(b) = e[1] CREATE (a)-[:ON {catno: e[2]}]->(b)"
        );
        assert_eq!(
            st.edges[Rel::PartOf as usize],
            "UNWIND $edges AS e MATCH (a:T1_Style) WHERE elementId(a) = e[0] \
             MATCH (b:T1_Genre) WHERE elementId(b) = e[1] \
             AND NOT EXISTS { (a)-[:PART_OF]->(b) } MERGE (a)-[:PART_OF]->(b)"
        );
        assert_eq!(
            st.edges_by_key[Rel::PartOf as usize],
            "UNWIND $edges AS e MATCH (a:T1_Style {name: e[0]}) MATCH (b:T1_Genre {name: e[1]}) \
             WHERE NOT EXISTS { (a)-[:PART_OF]->(b) } MERGE (a)-[:PART_OF]->(b)"
        );
        assert_eq!(
            st.upsert[slot(RecordKind::Master)],
            "UNWIND $rows AS row MERGE (n:T1_Master {id: row.id}) \
             SET n.title = row.title, n.year = row.year, n.sha256 = row.sha256 \
             RETURN collect([row.id, elementId(n)]) AS nodes"
        );
        assert_eq!(
            st.delete_owned[slot(RecordKind::Artist)],
            "UNWIND $ids AS id MATCH (n:T1_Artist {id: id}) MATCH (n)-[r:ALIAS_OF|MEMBER_OF]-() WHERE type(r) = 'MEMBER_OF' OR startNode(r) = n DELETE r"
        );
        assert_eq!(
            st.stub[Node::Genre as usize],
            "UNWIND $refs AS r MERGE (x:T1_Genre {name: r}) RETURN collect([r, elementId(x)]) AS nodes"
        );
    }

    #[test]
    fn tags_missing_are_the_unseen_names_and_pairs() {
        use discogs_model::Master;
        let master = |genres: &[&str], styles: &[&str]| {
            Record::Master(Master {
                id: 1,
                genres: genres.iter().map(|g| (*g).to_owned().into()).collect(),
                styles: styles.iter().map(|s| (*s).to_owned().into()).collect(),
                ..Master::default()
            })
        };
        let names = GraphNames::new("T1_").unwrap();
        let st = Statements::new(&names);
        let mut known = Tags::default();
        let records = [
            master(&["Jazz"], &["Bop", "Bop"]),
            master(&["Jazz", "Rock"], &["Punk"]),
        ];
        let new = known.missing(records.iter());
        let steps = new.steps(&st);
        let texts: Vec<&str> = steps.iter().map(|(text, _, _)| *text).collect();
        assert_eq!(
            texts,
            [
                st.stub[Node::Genre as usize].as_str(),
                st.stub[Node::Style as usize].as_str(),
                st.edges_by_key[Rel::PartOf as usize].as_str(),
            ]
        );
        let count = |v: &BoltType| match v {
            BoltType::List(l) => l.len(),
            _ => 0,
        };
        // Jazz and Rock; Bop and Punk; only Bop PART_OF Jazz (Punk's record has two genres).
        let counts: Vec<usize> = steps.iter().map(|(_, _, v)| count(v)).collect();
        assert_eq!(counts, [2, 2, 1]);
        known.extend(new);
        assert!(known.missing(records.iter()).is_empty());
        let more = [master(&["Jazz"], &["Cool Jazz"])];
        let new = known.missing(more.iter());
        let counts: Vec<usize> = new.steps(&st).iter().map(|(_, _, v)| count(v)).collect();
        assert_eq!(counts, [1, 1], "the style Cool Jazz and its pair");
        known.clear();
        assert!(!known.missing(more.iter()).is_empty());
    }

    #[test]
    fn plan_of_a_release() {
        use discogs_model::{Credit, Release, ReleaseLabel};
        let release = SinkRecord::new(Record::Release(Release {
            id: 7,
            title: "T".into(),
            artists: vec![Credit {
                id: Some(3),
                name: "A".into(),
                ..Credit::default()
            }],
            extra_artists: vec![
                Credit {
                    id: Some(3),
                    name: "A".into(),
                    role: Some("Producer".into()),
                    ..Credit::default()
                },
                Credit {
                    id: Some(2),
                    name: "B".into(),
                    role: None,
                    ..Credit::default()
                },
            ],
            labels: vec![ReleaseLabel {
                id: Some(5),
                name: "L".into(),
                catno: Some("C1".into()),
            }],
            master_id: Some(11),
            genres: vec!["Rock".into()],
            styles: vec!["Punk".into(), "Ska".into()],
            ..Release::default()
        }));
        let plan = Plan::new(&[&release], vec![]).unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(
            plan.stubs[Node::Artist as usize]
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect::<Vec<_>>(),
            [(2, "B"), (3, "A")]
        );
        assert_eq!(plan.stubs[Node::Label as usize].get(&5), Some(&"L"));
        assert_eq!(plan.stubs[Node::Master as usize].get(&11), Some(&""));
        assert!(plan.stubs[Node::Release as usize].is_empty());
        assert_eq!(plan.edges[Rel::CreditedOn as usize].len(), 2);
        assert_eq!(plan.edges[Rel::PartOf as usize].len(), 2);
        assert_eq!(plan.edges[Rel::ReleaseStyle as usize].len(), 2);
        let st = Statements::new(&GraphNames::new("").unwrap());
        let mut plan = plan;
        let steps = plan.node_steps(RecordKind::Release, &st);
        // Upsert; lookups of artists, labels, masters; genres, styles: each returns its nodes.
        assert_eq!(steps.len(), 1 + 3 + 2);
        assert!(steps.iter().all(|s| s.returns.is_some()));
        let finds: Vec<&str> = steps[1..4].iter().map(|s| s.text).collect();
        assert_eq!(
            finds,
            [Node::Artist, Node::Label, Node::Master].map(|n| st.find[n as usize].as_str())
        );
        assert_eq!(
            steps[1].value,
            BoltType::List(BoltList::from(vec![bolt_int(2), bolt_int(3)]))
        );
        let mut nodes = ElementIds::default();
        for (node, id) in [(Node::Release, 7), (Node::Artist, 2), (Node::Artist, 3)] {
            nodes.by_id[node as usize].insert(id, format!("e{node:?}{id}"));
        }
        nodes.by_id[Node::Label as usize].insert(5, "eL5".into());
        // The master was not found: only it is merged (a stub, no name), and returns its node.
        let stubs = plan.stub_steps(&st, &nodes);
        assert_eq!(stubs.len(), 1);
        assert_eq!(stubs[0].text, st.stub[Node::Master as usize]);
        assert_eq!(stubs[0].returns, Some(Node::Master));
        assert_eq!(
            stubs[0].value,
            BoltType::List(BoltList::from(vec![BoltType::List(BoltList::from(vec![
                bolt_int(11),
                BoltType::Null(BoltNull),
            ]))]))
        );
        nodes.by_id[Node::Master as usize].insert(11, "eM11".into());
        assert!(plan.stub_steps(&st, &nodes).is_empty());
        nodes.by_name[0].insert("Rock".into(), "eRock".into());
        for style in ["Punk", "Ska"] {
            nodes.by_name[1].insert(style.into(), format!("e{style}"));
        }
        // BY, ON, DERIVED_FROM, IS (genres), IS (styles), CREDITED_ON, PART_OF.
        let edges = plan.edge_steps(&st, &nodes).unwrap();
        assert_eq!(edges.len(), 7);
        assert!(edges
            .iter()
            .all(|s| s.param == "edges" && s.returns.is_none()));
        let on = &edges[1].value;
        assert_eq!(
            on,
            &BoltType::List(BoltList::from(vec![BoltType::List(BoltList::from(vec![
                bolt_str("eRelease7"),
                bolt_str("eL5"),
                bolt_str("C1"),
            ]))]))
        );
        // An end the server returned no element id for is an error, not a lost edge.
        nodes.by_name[1].remove("Ska");
        assert!(matches!(
            plan.edge_steps(&st, &nodes),
            Err(Neo4jSinkError::Decode(_))
        ));
        // A part that replaces stored records finds the ends by key instead.
        let mut replacing = Plan::new(&[&release], vec![7]).unwrap();
        let steps = replacing.node_steps(RecordKind::Release, &st);
        assert!(steps.iter().all(|s| s.returns.is_none()));
        // Deletion, upsert, then the referenced nodes merged (sorted), and none after.
        assert_eq!(steps[0].text, st.delete_owned(RecordKind::Release));
        assert_eq!(steps[2].text, st.stub[Node::Artist as usize]);
        assert_eq!(
            steps[2].value,
            BoltType::List(BoltList::from(vec![
                BoltType::List(BoltList::from(vec![bolt_int(2), bolt_str("B")])),
                BoltType::List(BoltList::from(vec![bolt_int(3), bolt_str("A")])),
            ]))
        );
        assert!(replacing.stub_steps(&st, &ElementIds::default()).is_empty());
        let edges = replacing.edge_steps(&st, &ElementIds::default()).unwrap();
        assert_eq!(edges[1].text, st.edges_by_key[Rel::On as usize]);
        assert_eq!(
            edges[1].value,
            BoltType::List(BoltList::from(vec![BoltType::List(BoltList::from(vec![
                bolt_int(7),
                bolt_int(5),
                bolt_str("C1"),
            ]))]))
        );
    }
}
