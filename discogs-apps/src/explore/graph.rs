//! The explorer's Neo4j queries: autocomplete, explore, expand, node details, trends,
//! shortest paths, statistics, the genre tree and collaborators.
//!
//! Labels come from the graph's namespace ([`GraphNames`]: validated identifiers, so they
//! can stand in the query text); every value a client sends is a query parameter. Every
//! query runs under a time limit; past it the request gets a 504.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use neo4rs::{query, BoltType, Graph, Query};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use discogs_sink_neo4j::GraphNames;

use super::batch::{self, Batches, Hit, Lookup, Pending, Place};
use super::params::{ApiError, EntityRef, EntityType};
use crate::metrics::Metrics;

/// Relationship types a path may follow: what links artists, releases, masters, labels,
/// genres and styles in meaning (not `CREDITED_ON`, `SUBLABEL_OF`, `PART_OF`, which make
/// paths shorter but say little).
pub const PATH_RELATIONSHIPS: &str = "BY|ON|IS|ALIAS_OF|MEMBER_OF|DERIVED_FROM";

/// The graph and its names, with the time limits of its queries.
#[derive(Clone)]
pub struct GraphQueries {
    graph: Graph,
    names: GraphNames,
    timeout: Duration,
    path_timeout: Duration,
    autocomplete: Arc<Batches<EntityType, Lookup, Vec<Hit>>>,
    explores: Arc<Batches<String, BoltType, ExploreRow>>,
    expands: Arc<Batches<ExpandShape, ExpandInput, ExpandRow>>,
}

/// Autocomplete statements of one type running at once, unless configured
/// ([`GraphQueries::with_autocomplete_statements`]).
pub const AUTOCOMPLETE_STATEMENTS: usize = 2;

/// Explore statements of one shape (centre type, by id or by name) running at once,
/// unless configured ([`GraphQueries::with_explore_statements`]).
pub const EXPLORE_STATEMENTS: usize = 2;

/// Expand statements of one shape (centre type, by id or by name, category, with or
/// without a year cut-off, offset and limit) running at once, unless configured
/// ([`GraphQueries::with_expand_statements`]).
pub const EXPAND_STATEMENTS: usize = 2;

/// An expand statement's shape: its text, offset and limit (`SKIP` and `LIMIT` take
/// parameters of the whole statement, not of a row).
type ExpandShape = (String, i64, i64);

/// An expand lookup's row: the centre's key and the year cut-off.
#[derive(Debug)]
struct ExpandInput {
    key: BoltType,
    before: Option<i64>,
}

/// A row of a batched explore statement: the lookup's position, its centre and counts.
#[derive(Debug, Deserialize)]
struct ExploreRow {
    i: i64,
    id: Option<i64>,
    name: Option<String>,
    counts: Vec<i64>,
}

/// A row of a batched expand statement: the lookup's position, its centre, total and page.
#[derive(Debug, Deserialize)]
struct ExpandRow {
    i: i64,
    id: Option<i64>,
    name: Option<String>,
    total: i64,
    children: Vec<Child>,
}

impl std::fmt::Debug for GraphQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphQueries")
            .field("namespace", &self.names.namespace())
            .field("timeout", &self.timeout)
            .field("path_timeout", &self.path_timeout)
            .field("autocomplete", &self.autocomplete)
            .field("explores", &self.explores)
            .field("expands", &self.expands)
            .finish_non_exhaustive()
    }
}

/// A centre node, resolved: its type, key and display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Center {
    /// Its type.
    pub kind: EntityType,
    /// Its id, or for genres and styles its name.
    pub key: Key,
    /// Its display name.
    pub name: String,
}

/// A node's key in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// `id` of an artist, label, master or release.
    Id(i64),
    /// `name` of a genre or style.
    Name(String),
}

impl Key {
    fn bolt(&self) -> BoltType {
        match self {
            Key::Id(id) => BoltType::from(*id),
            Key::Name(n) => BoltType::from(n.as_str()),
        }
    }

    /// The key as JSON (a number or a string).
    #[must_use]
    pub fn json(&self) -> Value {
        match self {
            Key::Id(id) => json!(id),
            Key::Name(n) => json!(n),
        }
    }
}

/// The categories of each centre type, in display order: `(category, label, target)`.
#[must_use]
pub fn categories(kind: EntityType) -> &'static [(&'static str, &'static str)] {
    match kind {
        EntityType::Artist => &[
            ("releases", "Releases"),
            ("labels", "Labels"),
            ("aliases", "Aliases & Members"),
        ],
        EntityType::Label => &[
            ("releases", "Releases"),
            ("artists", "Artists"),
            ("genres", "Genres"),
        ],
        EntityType::Genre => &[
            ("releases", "Releases"),
            ("artists", "Artists"),
            ("labels", "Labels"),
            ("styles", "Styles"),
        ],
        EntityType::Style => &[
            ("releases", "Releases"),
            ("artists", "Artists"),
            ("labels", "Labels"),
            ("genres", "Genres"),
        ],
        EntityType::Master | EntityType::Release => &[],
    }
}

/// One neighbour in an expansion.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Child {
    /// Its id (`null` for genres and styles, whose key is the name).
    pub id: Option<i64>,
    /// Its name or title.
    pub name: Option<String>,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// A release's year.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year: Option<i64>,
    /// Releases shared with the centre (second-hop categories).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_count: Option<i64>,
    /// For aliases: `alias`, `group` or `member`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Count {
    n: i64,
}

#[derive(Debug, Deserialize)]
struct Named {
    id: Option<i64>,
    name: Option<String>,
}

/// The 404 of an unknown entity.
fn not_found(kind: EntityType, r: &EntityRef) -> ApiError {
    let what = match r {
        EntityRef::Id(id) => format!("id {id}"),
        EntityRef::Name(n) => format!("name {n:?}"),
    };
    ApiError::NotFound(format!("no {} with {what}", kind.as_str()))
}

/// A category's query parts (see `GraphQueries::category_parts`).
struct CategoryParts {
    body: String,
    count: &'static str,
    page: String,
}

impl GraphQueries {
    /// Queries over `graph` in the namespace of `names`.
    #[must_use]
    pub fn new(graph: Graph, names: GraphNames, timeout: Duration, path_timeout: Duration) -> Self {
        Self {
            graph,
            names,
            timeout,
            path_timeout,
            autocomplete: Arc::new(Batches::new(AUTOCOMPLETE_STATEMENTS, None)),
            explores: Arc::new(Batches::new(EXPLORE_STATEMENTS, None)),
            expands: Arc::new(Batches::new(EXPAND_STATEMENTS, None)),
        }
    }

    /// At most `n` autocomplete statements of one type running at once (at least 1); the
    /// lookups that arrive meanwhile share the next statement ([`super::batch`]). Counts
    /// statements and lookups in `metrics` (`autocomplete_statements_total`,
    /// `autocomplete_lookups_total`).
    #[must_use]
    pub fn with_autocomplete_statements(mut self, n: usize, metrics: &Metrics) -> Self {
        self.autocomplete = Arc::new(Batches::new(n, Some((metrics, "autocomplete"))));
        self
    }

    /// At most `n` explore statements of one shape running at once (at least 1); the
    /// explores that arrive meanwhile share the next statement, one subquery each. Counts
    /// them in `metrics` (`explore_statements_total`, `explore_lookups_total`).
    #[must_use]
    pub fn with_explore_statements(mut self, n: usize, metrics: &Metrics) -> Self {
        self.explores = Arc::new(Batches::new(n, Some((metrics, "explore"))));
        self
    }

    /// At most `n` expand statements of one shape running at once (at least 1); the
    /// expands that arrive meanwhile share the next statement, one subquery each. Counts
    /// them in `metrics` (`expand_statements_total`, `expand_lookups_total`).
    #[must_use]
    pub fn with_expand_statements(mut self, n: usize, metrics: &Metrics) -> Self {
        self.expands = Arc::new(Batches::new(n, Some((metrics, "expand"))));
        self
    }

    /// The names of the graph.
    #[must_use]
    pub fn names(&self) -> &GraphNames {
        &self.names
    }

    fn label(&self, kind: EntityType) -> &str {
        &self.names.all_labels()[kind.label_index()]
    }

    /// The type of a node from its label (namespace prefix removed).
    fn type_of_label(&self, label: &str) -> String {
        label
            .strip_prefix(self.names.namespace())
            .unwrap_or(label)
            .to_lowercase()
    }

    /// Runs `q` within `limit`, deserialising every row as `T`.
    ///
    /// The limit holds on both sides: the client stops waiting after `limit`, and the query
    /// is sent with Bolt's `tx_timeout` (its auto-commit transaction's timeout), so Neo4j
    /// terminates it too instead of finishing work nobody waits for.
    ///
    /// # Errors
    ///
    /// [`ApiError::Timeout`] past `limit` (either side's), [`ApiError::Unavailable`] when
    /// Neo4j fails or a row does not fit `T`.
    pub async fn rows_within<T: DeserializeOwned>(
        &self,
        q: Query,
        limit: Duration,
    ) -> Result<Vec<T>, ApiError> {
        let late = || ApiError::late("graph", limit);
        // 0 would mean "no timeout" to Neo4j: a millisecond is the least.
        let q = q.extra(
            "tx_timeout",
            i64::try_from(limit.as_millis()).unwrap_or(i64::MAX).max(1),
        );
        let failed = |what: &str, e: neo4rs::Error| match &e {
            neo4rs::Error::Neo4j(n) if n.code().contains("TransactionTimedOut") => late(),
            _ => ApiError::database(what, &e),
        };
        let work = async {
            let mut stream = self
                .graph
                .execute(q)
                .await
                .map_err(|e| failed("a graph query", e))?;
            let mut out = Vec::new();
            while let Some(row) = stream
                .next()
                .await
                .map_err(|e| failed("a graph query", e))?
            {
                out.push(
                    row.to::<T>()
                        .map_err(|e| ApiError::database("reading a graph row", &e))?,
                );
            }
            Ok(out)
        };
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(limit, work)
            .await
            .map_err(|_| late())?;
        // The timer's granularity is a millisecond: an answer that came late anyway is late.
        if started.elapsed() > limit {
            return Err(late());
        }
        result
    }

    async fn rows<T: DeserializeOwned>(&self, q: Query) -> Result<Vec<T>, ApiError> {
        self.rows_within(q, self.timeout).await
    }

    async fn count(&self, q: Query) -> Result<i64, ApiError> {
        Ok(self
            .rows::<Count>(q)
            .await?
            .into_iter()
            .next()
            .map_or(0, |c| c.n))
    }

    /// `MATCH (x:Label {id|name: $key})`.
    fn match_center(&self, center: &Center) -> String {
        let prop = if center.kind.keyed_by_name() {
            "name"
        } else {
            "id"
        };
        format!("MATCH (x:{} {{{prop}: $key}})", self.label(center.kind))
    }

    /// Finds the node named by `r`: by id, or by exact name (the lowest id of complete
    /// records first when several share it).
    ///
    /// # Errors
    ///
    /// [`ApiError::NotFound`] when there is none.
    pub async fn resolve(&self, kind: EntityType, r: &EntityRef) -> Result<Center, ApiError> {
        let label = self.label(kind);
        let name_prop = kind.name_property();
        let q = match (r, kind.keyed_by_name()) {
            (EntityRef::Id(id), false) => query(&format!(
                "MATCH (x:{label} {{id: $v}}) RETURN x.id AS id, x.{name_prop} AS name"
            ))
            .param("v", *id),
            (EntityRef::Name(n), false) => query(&format!(
                "MATCH (x:{label} {{{name_prop}: $v}}) RETURN x.id AS id, x.{name_prop} AS name \
                 ORDER BY x.sha256 IS NULL, x.id LIMIT 1"
            ))
            .param("v", n.as_str()),
            (EntityRef::Name(n), true) => query(&format!(
                "MATCH (x:{label} {{name: $v}}) RETURN null AS id, x.name AS name"
            ))
            .param("v", n.as_str()),
            (EntityRef::Id(_), true) => {
                unreachable!("Params::entity_ref reads a genre's id as its name")
            }
        };
        let found = self.rows::<Named>(q).await?.into_iter().next();
        let Some(found) = found else {
            return Err(not_found(kind, r));
        };
        let name = found.name.unwrap_or_default();
        let key = match found.id {
            Some(id) if !kind.keyed_by_name() => Key::Id(id),
            _ => Key::Name(name.clone()),
        };
        Ok(Center { kind, key, name })
    }

    /// Autocomplete over the full-text index of `kind`: each word of `text` as a prefix,
    /// all words required; best first (the score, constant for prefix queries, then the
    /// shortest name, then the lowest id). Lookups that arrive while others of the same
    /// type run share a statement ([`super::batch`]), each with its own full-text call.
    ///
    /// # Errors
    ///
    /// As every query; [`ApiError::Timeout`] past the query limit, waiting included.
    pub async fn autocomplete(
        &self,
        kind: EntityType,
        text: &str,
        limit: i64,
    ) -> Result<Value, ApiError> {
        let lucene = lucene_prefix_query(text);
        if lucene.is_empty() {
            return Ok(json!({"results": []}));
        }
        let hits = self
            .shared(
                &self.autocomplete,
                kind,
                Lookup { lucene, limit },
                |g, kind, lookups| async move { g.autocomplete_batch(kind, lookups).await },
            )
            .await?
            .ok_or_else(|| ApiError::database("an autocomplete query", &"a lookup got no row"))?;
        let results: Vec<Value> = hits
            .into_iter()
            .map(|h| {
                let name = h.name.unwrap_or_default();
                let id = match h.id {
                    Some(id) if !kind.keyed_by_name() => json!(id),
                    _ => json!(name),
                };
                json!({"id": id, "name": name, "type": kind.as_str(), "score": h.score})
            })
            .collect();
        Ok(json!({ "results": results }))
    }

    /// Sends `input` to Neo4j in a statement of `shape` shared with the lookups of that
    /// shape that arrive while others run ([`super::batch`]), and waits for its answer
    /// (`None`: its statement gave it no row). When fewer than the configured statements
    /// of `shape` are running, this lookup starts one: a task runs `run` for its batch,
    /// then for each batch that queued meanwhile, until none is waiting. `run` answers a
    /// batch's inputs by position.
    ///
    /// # Errors
    ///
    /// [`ApiError::Timeout`] past the query limit, waiting included; the statement's
    /// error, shared by every lookup of the statement.
    async fn shared<K, I, A, F, Fut>(
        &self,
        batches: &Arc<Batches<K, I, A>>,
        shape: K,
        input: I,
        run: F,
    ) -> Result<Option<A>, ApiError>
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        I: Send + 'static,
        A: Send + 'static,
        F: Fn(GraphQueries, K, Vec<I>) -> Fut + Send + Copy + 'static,
        Fut: Future<Output = Result<Vec<Option<A>>, ApiError>> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if let Some(first) = batches.push(&shape, Pending { input, reply }) {
            let (this, batches) = (self.clone(), Arc::clone(batches));
            tokio::spawn(async move {
                let mut place = Place::new(&batches, shape.clone());
                let mut batch = first;
                loop {
                    let (inputs, replies): (Vec<I>, Vec<_>) =
                        batch.into_iter().map(|p| (p.input, p.reply)).unzip();
                    batches.sent(inputs.len());
                    let mut answers = run(this.clone(), shape.clone(), inputs).await;
                    for (i, reply) in replies.into_iter().enumerate() {
                        let answer = match &mut answers {
                            Ok(rows) => Ok(rows.get_mut(i).and_then(Option::take)),
                            Err(e) => Err(e.clone()),
                        };
                        if reply.send(answer).is_err() {
                            tracing::debug!("a graph requester gave up before its answer");
                        }
                    }
                    match place.take_next() {
                        Some(next) => batch = next,
                        None => return,
                    }
                }
            });
        }
        tokio::time::timeout(self.timeout, answer)
            .await
            .map_err(|_| ApiError::late("graph", self.timeout))?
            .map_err(|_| ApiError::Unavailable("the graph query was lost".into()))?
    }

    /// One statement for a batch of autocomplete lookups: the suggestions of each, by its
    /// position, cut at its own limit.
    async fn autocomplete_batch(
        &self,
        kind: EntityType,
        batch: Vec<Lookup>,
    ) -> Result<Vec<Option<Vec<Hit>>>, ApiError> {
        let index = match kind {
            EntityType::Artist => self.names.fulltext_artist_name(),
            EntityType::Label => self.names.fulltext_label_name(),
            EntityType::Master => self.names.fulltext_master_title(),
            EntityType::Release => self.names.fulltext_release_title(),
            EntityType::Genre => self.names.schema_name("genre_name_fulltext"),
            EntityType::Style => self.names.schema_name("style_name_fulltext"),
        };
        let qs: Vec<&str> = batch.iter().map(|l| l.lucene.as_str()).collect();
        let limit = batch.iter().map(|l| l.limit).max().unwrap_or(0);
        let q = query(&batch::statement(kind))
            .param("index", index)
            .param("qs", qs)
            .param("limit", limit);
        #[derive(Deserialize)]
        struct Row {
            i: i64,
            hits: Vec<Hit>,
        }
        let rows = self.rows::<Row>(q).await?;
        let mut out = by_position(batch.len(), rows, |r| r.i);
        for (slot, lookup) in out.iter_mut().zip(&batch) {
            if let Some(row) = slot {
                row.hits
                    .truncate(usize::try_from(lookup.limit).unwrap_or(0));
            }
        }
        Ok(out.into_iter().map(|r| r.map(|r| r.hits)).collect())
    }

    /// `MATCH (x:Label …)`: the node `r` names, one row at most (by exact name: the lowest
    /// id of complete records first, as [`Self::resolve`]); the key is the
    /// lookup's `$keys[i]` in a batched statement.
    fn match_ref(&self, kind: EntityType, r: &EntityRef) -> (String, BoltType) {
        let label = self.label(kind);
        match r {
            EntityRef::Id(id) if !kind.keyed_by_name() => (
                format!("MATCH (x:{label} {{id: $keys[i]}}) WITH x LIMIT 1"),
                BoltType::from(*id),
            ),
            EntityRef::Id(id) => (
                format!("MATCH (x:{label} {{name: $keys[i]}}) WITH x LIMIT 1"),
                BoltType::from(id.to_string()),
            ),
            EntityRef::Name(n) if kind.keyed_by_name() => (
                format!("MATCH (x:{label} {{name: $keys[i]}}) WITH x LIMIT 1"),
                BoltType::from(n.as_str()),
            ),
            EntityRef::Name(n) => (
                format!(
                    "MATCH (x:{label} {{{}: $keys[i]}}) WITH x ORDER BY x.sha256 IS NULL, x.id LIMIT 1",
                    kind.name_property()
                ),
                BoltType::from(n.as_str()),
            ),
        }
    }

    /// The centre of a combined query's row: its id (artists, labels) or name.
    fn center_of(kind: EntityType, id: Option<i64>, name: Option<String>) -> Center {
        let name = name.unwrap_or_default();
        let key = match id {
            Some(id) if !kind.keyed_by_name() => Key::Id(id),
            _ => Key::Name(name.clone()),
        };
        Center { kind, key, name }
    }

    /// The aggregate the sink keeps on a centre for a category, if any (artists have none).
    fn precomputed_property(kind: EntityType, category: &str) -> Option<&'static str> {
        if kind == EntityType::Artist {
            return None;
        }
        match category {
            "releases" => Some("release_count"),
            "artists" => Some("artist_count"),
            "labels" => Some("label_count"),
            "genres" => Some("genre_count"),
            _ => None,
        }
    }

    /// The centre named by `r` and its categories with their counts, in one query: the
    /// sink's aggregates where the centre has them (label and genre/style `release_count`,
    /// `artist_count`, …), the others counted live, each in a subquery that skips its
    /// traversal when the aggregate is there.
    ///
    /// # Errors
    ///
    /// [`ApiError::BadRequest`] for a type without categories, [`ApiError::NotFound`] for
    /// an unknown centre; as every query.
    pub async fn explore(&self, kind: EntityType, r: &EntityRef) -> Result<Value, ApiError> {
        let cats = categories(kind);
        if cats.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "a {} has no categories to explore",
                kind.as_str()
            )));
        }
        let (head, key) = self.match_ref(kind, r);
        let mut text = format!("UNWIND range(0, size($keys) - 1) AS i CALL (i) {{ {head}");
        let mut counts = Vec::new();
        for (i, (cat, _)) in cats.iter().enumerate() {
            let part = self.category_parts(kind, cat, false)?;
            let (guard, total) = match Self::precomputed_property(kind, cat) {
                Some(p) => (
                    format!("WITH x WHERE x.{p} IS NULL "),
                    format!("coalesce(x.{p}, c{i})"),
                ),
                None => (String::new(), format!("c{i}")),
            };
            text.push_str(&format!(
                " CALL (x) {{ {guard}{} RETURN {} AS c{i} }}",
                part.body, part.count
            ));
            counts.push(total);
        }
        text.push_str(&format!(
            " RETURN x.id AS id, x.{} AS name, [{}] AS counts }} RETURN i, id, name, counts",
            kind.name_property(),
            counts.join(", ")
        ));
        let row = self
            .shared(&self.explores, text, key, |g, text, keys| async move {
                g.explore_batch(&text, keys).await
            })
            .await?
            .ok_or_else(|| not_found(kind, r))?;
        let center = Self::center_of(kind, row.id, row.name);
        let categories: Vec<Value> = cats
            .iter()
            .zip(row.counts)
            .map(|((cat, label), n)| {
                json!({"id": format!("cat-{cat}"), "name": label, "category": cat, "count": n})
            })
            .collect();
        Ok(json!({
            "center": {"id": center.key.json(), "name": center.name, "type": kind.as_str()},
            "categories": categories,
        }))
    }

    /// The parts of a category's query from the centre `x`: the pattern, the count of its
    /// distinct neighbours, and the page (`$offset`, `$limit`) collected as `children`.
    /// With `before_year`, the pattern keeps releases up to the lookup's `$befores[i]`
    /// (the subquery must import `i`).
    fn category_parts(
        &self,
        kind: EntityType,
        category: &str,
        before_year: bool,
    ) -> Result<CategoryParts, ApiError> {
        let release = self.names.release();
        let to_center = match kind {
            EntityType::Artist => "BY",
            EntityType::Label => "ON",
            EntityType::Genre | EntityType::Style => "IS",
            EntityType::Master | EntityType::Release => {
                return Err(ApiError::BadRequest(format!(
                    "a {} has no categories",
                    kind.as_str()
                )))
            }
        };
        if !categories(kind).iter().any(|(c, _)| *c == category) {
            let names: Vec<&str> = categories(kind).iter().map(|(c, _)| *c).collect();
            return Err(ApiError::BadRequest(format!(
                "category of a {} must be one of {}, not {category:?}",
                kind.as_str(),
                names.join(", ")
            )));
        }
        let year = if before_year {
            "WHERE r.year > 0 AND r.year <= $befores[i]"
        } else {
            ""
        };
        Ok(match category {
            "releases" => CategoryParts {
                body: format!("MATCH (r:{release})-[:{to_center}]->(x) {year}"),
                count: "count(DISTINCT r)",
                page: "WITH DISTINCT r ORDER BY r.year IS NULL, r.year DESC, r.id \
                       SKIP $offset LIMIT $limit \
                       RETURN collect({id: r.id, name: r.title, `type`: 'release', year: r.year}) AS children"
                    .to_owned(),
            },
            "aliases" => {
                let artist = self.names.artist();
                CategoryParts {
                    body: format!(
                        "CALL (x) {{ \
                           MATCH (x)-[:ALIAS_OF]-(y:{artist}) RETURN y, 'alias' AS relation \
                           UNION MATCH (x)-[:MEMBER_OF]->(y:{artist}) RETURN y, 'group' AS relation \
                           UNION MATCH (y:{artist})-[:MEMBER_OF]->(x) RETURN y, 'member' AS relation }} \
                         WITH y, min(relation) AS relation"
                    ),
                    count: "count(y)",
                    page: "WITH y, relation ORDER BY y.id SKIP $offset LIMIT $limit \
                           RETURN collect({id: y.id, name: y.name, `type`: 'artist', relation: relation}) AS children"
                        .to_owned(),
                }
            }
            other => {
                let (rel, target, target_kind) = match other {
                    "labels" => ("ON", self.names.label_label(), EntityType::Label),
                    "artists" => ("BY", self.names.artist(), EntityType::Artist),
                    "genres" => ("IS", self.names.genre(), EntityType::Genre),
                    _ => ("IS", self.names.style(), EntityType::Style),
                };
                let (id, order) = if target_kind.keyed_by_name() {
                    ("null", "y.name")
                } else {
                    ("y.id", "y.id")
                };
                CategoryParts {
                    body: format!(
                        "MATCH (x)<-[:{to_center}]-(r:{release}) {year} \
                         MATCH (r)-[:{rel}]->(y:{target}) WHERE y <> x"
                    ),
                    count: "count(DISTINCT y)",
                    page: format!(
                        "WITH y, count(DISTINCT r) AS release_count \
                         ORDER BY release_count DESC, {order} SKIP $offset LIMIT $limit \
                         RETURN collect({{id: {id}, name: y.name, `type`: '{}', release_count: release_count}}) AS children",
                        target_kind.as_str()
                    ),
                }
            }
        })
    }

    /// One page of a category's neighbours of the centre named by `r`, and its total, in one
    /// query.
    ///
    /// # Errors
    ///
    /// [`ApiError::BadRequest`] for a category the type does not have,
    /// [`ApiError::NotFound`] for an unknown centre; as every query.
    pub async fn expand(
        &self,
        kind: EntityType,
        r: &EntityRef,
        category: &str,
        before_year: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<Value, ApiError> {
        let part = self.category_parts(kind, category, before_year.is_some())?;
        let (head, key) = self.match_ref(kind, r);
        let import = if before_year.is_some() { "x, i" } else { "x" };
        let text = format!(
            "UNWIND range(0, size($keys) - 1) AS i CALL (i) {{ \
             {head} CALL ({import}) {{ {body} RETURN {count} AS total }} \
             CALL ({import}) {{ {body} {page} }} \
             RETURN x.id AS id, x.{name} AS name, total, children }} \
             RETURN i, id, name, total, children",
            body = part.body,
            count = part.count,
            page = part.page,
            name = kind.name_property(),
        );
        let input = ExpandInput {
            key,
            before: before_year,
        };
        let row = self
            .shared(
                &self.expands,
                (text, offset, limit),
                input,
                |g, shape, inputs| async move { g.expand_batch(&shape, inputs).await },
            )
            .await?
            .ok_or_else(|| not_found(kind, r))?;
        let center = Self::center_of(kind, row.id, row.name);
        let n = i64::try_from(row.children.len()).unwrap_or(i64::MAX);
        Ok(json!({
            "center": {"id": center.key.json(), "name": center.name, "type": kind.as_str()},
            "category": category,
            "children": row.children,
            "total": row.total,
            "offset": offset,
            "limit": limit,
            "has_more": offset + n < row.total,
        }))
    }

    /// One statement for a batch of explores of one shape: each lookup's row, by its
    /// position (none for an unknown centre).
    async fn explore_batch(
        &self,
        text: &str,
        keys: Vec<BoltType>,
    ) -> Result<Vec<Option<ExploreRow>>, ApiError> {
        let n = keys.len();
        let rows = self
            .rows::<ExploreRow>(query(text).param("keys", keys))
            .await?;
        Ok(by_position(n, rows, |r| r.i))
    }

    /// One statement for a batch of expands of one shape (`(text, offset, limit)`): each
    /// lookup's row, by its position (none for an unknown centre).
    async fn expand_batch(
        &self,
        (text, offset, limit): &ExpandShape,
        inputs: Vec<ExpandInput>,
    ) -> Result<Vec<Option<ExpandRow>>, ApiError> {
        let n = inputs.len();
        let (keys, befores): (Vec<BoltType>, Vec<i64>) = inputs
            .into_iter()
            .map(|l| (l.key, l.before.unwrap_or(0)))
            .unzip();
        let q = query(text)
            .param("keys", keys)
            .param("befores", befores)
            .param("offset", *offset)
            .param("limit", *limit);
        let rows = self.rows::<ExpandRow>(q).await?;
        Ok(by_position(n, rows, |r| r.i))
    }

    /// Releases per year (years > 0) of an artist (`BY`), label (`ON`), genre or style
    /// (`IS`).
    ///
    /// # Errors
    ///
    /// [`ApiError::BadRequest`] for masters and releases; as every query.
    pub async fn trends(&self, center: &Center) -> Result<Value, ApiError> {
        let rel = match center.kind {
            EntityType::Artist => "BY",
            EntityType::Label => "ON",
            EntityType::Genre | EntityType::Style => "IS",
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "trends are for artists, labels, genres and styles, not a {}",
                    center.kind.as_str()
                )))
            }
        };
        // The CALL barrier keeps the planner from scanning the year index for a genre
        // (the original's measurement: 150 M index hits down to 16 M).
        let text = format!(
            "{} CALL (x) {{ MATCH (x)<-[:{rel}]-(r:{}) RETURN DISTINCT r }} \
             WITH r WHERE r.year > 0 RETURN r.year AS year, count(r) AS count ORDER BY year",
            self.match_center(center),
            self.names.release()
        );
        #[derive(Deserialize, Serialize)]
        struct Point {
            year: i64,
            count: i64,
        }
        let points = self
            .rows::<Point>(query(&text).param("key", center.key.bolt()))
            .await?;
        let total: i64 = points.iter().map(|p| p.count).sum();
        Ok(json!({
            "id": center.key.json(), "name": center.name, "type": center.kind.as_str(),
            "data": points, "total": total,
        }))
    }

    /// A shortest path between two nodes over [`PATH_RELATIONSHIPS`], at most `max_depth`
    /// relationships long.
    ///
    /// # Errors
    ///
    /// [`ApiError::Timeout`] past the path time limit; as every query.
    pub async fn path(
        &self,
        from: &Center,
        to: &Center,
        max_depth: i64,
    ) -> Result<Value, ApiError> {
        let node = |c: &Center| json!({"id": c.key.json(), "name": c.name, "type": c.kind.as_str(), "rel": null});
        if from.kind == to.kind && from.key == to.key {
            return Ok(json!({"found": true, "length": 0, "path": [node(from)]}));
        }
        let pa = if from.kind.keyed_by_name() {
            "name"
        } else {
            "id"
        };
        let pb = if to.kind.keyed_by_name() {
            "name"
        } else {
            "id"
        };
        let text = format!(
            "MATCH (a:{la} {{{pa}: $a}}) MATCH (b:{lb} {{{pb}: $b}}) \
             MATCH p = shortestPath((a)-[:{PATH_RELATIONSHIPS}*..{max_depth}]-(b)) \
             RETURN [n IN nodes(p) | n.id] AS ids, \
                    [n IN nodes(p) | coalesce(n.name, n.title, '')] AS names, \
                    [n IN nodes(p) | labels(n)[0]] AS labels, \
                    [r IN relationships(p) | type(r)] AS rels",
            la = self.label(from.kind),
            lb = self.label(to.kind),
        );
        #[derive(Deserialize)]
        struct Found {
            ids: Vec<Option<i64>>,
            names: Vec<String>,
            labels: Vec<String>,
            rels: Vec<String>,
        }
        let q = query(&text)
            .param("a", from.key.bolt())
            .param("b", to.key.bolt());
        let found = self
            .rows_within::<Found>(q, self.path_timeout)
            .await?
            .into_iter()
            .next();
        let Some(f) = found else {
            return Ok(json!({"found": false, "length": null, "path": []}));
        };
        let path: Vec<Value> = f
            .ids
            .iter()
            .zip(&f.names)
            .zip(&f.labels)
            .enumerate()
            .map(|(i, ((id, name), label))| {
                let kind = self.type_of_label(label);
                let id = match (id, EntityType::parse(&kind)) {
                    (Some(id), Some(t)) if !t.keyed_by_name() => json!(id),
                    _ => json!(name),
                };
                let rel = if i == 0 {
                    Value::Null
                } else {
                    json!(f.rels.get(i - 1))
                };
                json!({"id": id, "name": name, "type": kind, "rel": rel})
            })
            .collect();
        Ok(json!({"found": true, "length": f.rels.len(), "path": path}))
    }

    /// Nodes per label (from Neo4j's count store: constant time).
    ///
    /// # Errors
    ///
    /// As every query.
    pub async fn stats(&self) -> Result<Value, ApiError> {
        let counts = futures_util::future::try_join_all(EntityType::ALL.iter().map(|t| {
            self.count(query(&format!(
                "MATCH (n:{}) RETURN count(n) AS n",
                self.label(*t)
            )))
        }))
        .await?;
        let mut map = serde_json::Map::new();
        for (t, n) in EntityType::ALL.iter().zip(&counts) {
            map.insert(format!("{}s", t.as_str()), json!(n));
        }
        Ok(json!({"total_entities": counts.iter().sum::<i64>(), "counts": map}))
    }

    /// Details of one node: its properties and nearest neighbours by type.
    ///
    /// # Errors
    ///
    /// [`ApiError::NotFound`] for an unknown node; as every query.
    pub async fn node(&self, center: &Center) -> Result<Value, ApiError> {
        let head = self.match_center(center);
        let n = &self.names;
        let (release, artist, label, master, genre, style) = (
            n.release(),
            n.artist(),
            n.label_label(),
            n.master(),
            n.genre(),
            n.style(),
        );
        let text = match center.kind {
            EntityType::Artist => format!(
                "{head} RETURN x.id AS id, x.name AS name, \
                 COUNT {{ (x)<-[:BY]-(:{release}) }} AS release_count, \
                 [(x)-[:MEMBER_OF]->(g:{artist}) | {{id: g.id, name: g.name}}] AS groups, \
                 [(m:{artist})-[:MEMBER_OF]->(x) | {{id: m.id, name: m.name}}] AS members, \
                 [(x)-[:ALIAS_OF]-(a:{artist}) | {{id: a.id, name: a.name}}] AS aliases, \
                 COLLECT {{ MATCH (x)<-[:BY]-(:{release})-[:IS]->(g:{genre}) RETURN DISTINCT g.name ORDER BY g.name }} AS genres, \
                 COLLECT {{ MATCH (x)<-[:BY]-(:{release})-[:IS]->(s:{style}) RETURN DISTINCT s.name ORDER BY s.name }} AS styles"
            ),
            EntityType::Label => format!(
                "{head} RETURN x.id AS id, x.name AS name, \
                 COUNT {{ (x)<-[:ON]-(:{release}) }} AS release_count, \
                 [(x)-[:SUBLABEL_OF]->(p:{label}) | {{id: p.id, name: p.name}}] AS parents, \
                 [(s:{label})-[:SUBLABEL_OF]->(x) | {{id: s.id, name: s.name}}] AS sublabels, \
                 x.first_year AS first_year"
            ),
            EntityType::Release => format!(
                "{head} RETURN x.id AS id, x.title AS name, x.year AS year, x.country AS country, \
                 x.released AS released, x.formats AS formats, \
                 [(x)-[:BY]->(a:{artist}) | {{id: a.id, name: a.name}}] AS artists, \
                 [(x)-[o:ON]->(l:{label}) | {{id: l.id, name: l.name, catno: o.catno}}] AS labels, \
                 [(x)-[:IS]->(g:{genre}) | g.name] AS genres, \
                 [(x)-[:IS]->(s:{style}) | s.name] AS styles, \
                 [(x)-[:DERIVED_FROM]->(m:{master}) | {{id: m.id, name: m.title}}] AS masters"
            ),
            EntityType::Master => format!(
                "{head} RETURN x.id AS id, x.title AS name, x.year AS year, \
                 [(x)-[:BY]->(a:{artist}) | {{id: a.id, name: a.name}}] AS artists, \
                 [(x)-[:IS]->(g:{genre}) | g.name] AS genres, \
                 [(x)-[:IS]->(s:{style}) | s.name] AS styles, \
                 [(x)-[:MAIN_RELEASE]->(r:{release}) | {{id: r.id, name: r.title}}] AS main_release, \
                 COUNT {{ (x)<-[:DERIVED_FROM]-(:{release}) }} AS release_count"
            ),
            EntityType::Genre | EntityType::Style => {
                let other = if center.kind == EntityType::Genre {
                    format!("[(s:{style})-[:PART_OF]->(x) | s.name] AS styles")
                } else {
                    format!("[(x)-[:PART_OF]->(g:{genre}) | g.name] AS genres")
                };
                format!(
                    "{head} RETURN x.name AS name, x.release_count AS release_count, \
                     x.artist_count AS artist_count, x.label_count AS label_count, \
                     x.first_year AS first_year, {other}"
                )
            }
        };
        #[derive(Deserialize, Serialize)]
        struct Ref {
            id: Option<i64>,
            name: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            catno: Option<String>,
        }
        #[derive(Deserialize)]
        struct Details {
            id: Option<i64>,
            name: Option<String>,
            release_count: Option<i64>,
            artist_count: Option<i64>,
            label_count: Option<i64>,
            first_year: Option<i64>,
            year: Option<i64>,
            country: Option<String>,
            released: Option<String>,
            formats: Option<Vec<String>>,
            groups: Option<Vec<Ref>>,
            members: Option<Vec<Ref>>,
            aliases: Option<Vec<Ref>>,
            parents: Option<Vec<Ref>>,
            sublabels: Option<Vec<Ref>>,
            artists: Option<Vec<Ref>>,
            labels: Option<Vec<Ref>>,
            masters: Option<Vec<Ref>>,
            main_release: Option<Vec<Ref>>,
            genres: Option<Vec<String>>,
            styles: Option<Vec<String>>,
        }
        let d = self
            .rows::<Details>(query(&text).param("key", center.key.bolt()))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ApiError::NotFound(format!("no {} {:?}", center.kind.as_str(), center.name))
            })?;
        let mut out = serde_json::Map::new();
        out.insert("type".into(), json!(center.kind.as_str()));
        out.insert(
            "id".into(),
            match d.id {
                Some(id) => json!(id),
                None => json!(d.name),
            },
        );
        out.insert("name".into(), json!(d.name));
        macro_rules! put {
            ($($f:ident),*) => { $( if let Some(v) = d.$f { out.insert(stringify!($f).into(), json!(v)); } )* };
        }
        put!(
            release_count,
            artist_count,
            label_count,
            first_year,
            year,
            country,
            released,
            formats
        );
        put!(groups, members, aliases, parents, sublabels, artists, labels, genres, styles);
        if let Some(m) = d.masters {
            out.insert("master".into(), json!(m.into_iter().next()));
        }
        if let Some(m) = d.main_release {
            out.insert("main_release".into(), json!(m.into_iter().next()));
        }
        Ok(Value::Object(out))
    }

    /// Genres by release count, each with the styles seen with it (`PART_OF`) and their
    /// release counts (the aggregates, counted live where missing).
    ///
    /// # Errors
    ///
    /// As every query.
    pub async fn genre_tree(&self) -> Result<Value, ApiError> {
        let (genre, style, release) =
            (self.names.genre(), self.names.style(), self.names.release());
        let text = format!(
            "MATCH (g:{genre}) \
             WITH g, CASE WHEN g.release_count IS NULL THEN COUNT {{ (g)<-[:IS]-(:{release}) }} ELSE g.release_count END AS release_count \
             CALL (g) {{ OPTIONAL MATCH (s:{style})-[:PART_OF]->(g) \
               WITH s, CASE WHEN s IS NULL THEN null WHEN s.release_count IS NULL THEN COUNT {{ (s)<-[:IS]-(:{release}) }} ELSE s.release_count END AS n \
               ORDER BY n DESC, s.name \
               RETURN collect(CASE WHEN s IS NULL THEN null ELSE {{name: s.name, release_count: n}} END) AS styles }} \
             RETURN g.name AS name, release_count, styles ORDER BY release_count DESC, name"
        );
        #[derive(Deserialize, Serialize)]
        struct StyleCount {
            name: String,
            release_count: i64,
        }
        #[derive(Deserialize, Serialize)]
        struct GenreRow {
            name: String,
            release_count: i64,
            styles: Vec<StyleCount>,
        }
        let genres = self.rows::<GenreRow>(query(&text)).await?;
        Ok(json!({ "genres": genres }))
    }

    /// The artists sharing releases with an artist, most shared first, with their releases
    /// per year.
    ///
    /// # Errors
    ///
    /// As every query.
    pub async fn collaborators(&self, center: &Center, limit: i64) -> Result<Value, ApiError> {
        let (artist, release) = (self.names.artist(), self.names.release());
        let text = format!(
            "{} MATCH (x)<-[:BY]-(r:{release})-[:BY]->(o:{artist}) WHERE o <> x \
             WITH o, r.year AS year, count(DISTINCT r) AS n \
             WITH o, sum(n) AS release_count, \
                  collect(CASE WHEN year > 0 THEN {{year: year, count: n}} END) AS yearly \
             ORDER BY release_count DESC, o.id \
             WITH collect({{id: o.id, name: o.name, release_count: release_count, yearly: yearly}}) AS everyone \
             RETURN size(everyone) AS total, everyone[0..$limit] AS top",
            self.match_center(center)
        );
        #[derive(Deserialize, Serialize, Clone, Copy)]
        struct Year {
            year: i64,
            count: i64,
        }
        #[derive(Deserialize)]
        struct Co {
            id: Option<i64>,
            name: Option<String>,
            release_count: i64,
            yearly: Vec<Year>,
        }
        #[derive(Deserialize)]
        struct Out {
            total: i64,
            top: Vec<Co>,
        }
        let out = self
            .rows::<Out>(
                query(&text)
                    .param("key", center.key.bolt())
                    .param("limit", limit),
            )
            .await?
            .into_iter()
            .next()
            .unwrap_or(Out {
                total: 0,
                top: Vec::new(),
            });
        let collaborators: Vec<Value> = out
            .top
            .into_iter()
            .map(|mut c| {
                c.yearly.sort_by_key(|y| y.year);
                json!({
                    "artist_id": c.id, "artist_name": c.name, "release_count": c.release_count,
                    "first_year": c.yearly.first().map(|y| y.year),
                    "last_year": c.yearly.last().map(|y| y.year),
                    "yearly_counts": c.yearly,
                })
            })
            .collect();
        Ok(json!({
            "artist_id": center.key.json(), "artist_name": center.name,
            "collaborators": collaborators, "total": out.total,
        }))
    }

    /// The earliest and latest release year (years > 0), from the year index.
    ///
    /// # Errors
    ///
    /// As every query.
    pub async fn year_range(&self) -> Result<Value, ApiError> {
        let release = self.names.release();
        #[derive(Deserialize)]
        struct Range {
            min_year: Option<i64>,
            max_year: Option<i64>,
        }
        let text = format!(
            "CALL () {{ MATCH (r:{release}) WHERE r.year > 0 RETURN r.year AS min_year ORDER BY r.year ASC LIMIT 1 }} \
             CALL () {{ MATCH (r:{release}) WHERE r.year > 0 RETURN r.year AS max_year ORDER BY r.year DESC LIMIT 1 }} \
             RETURN min_year, max_year"
        );
        let r = self.rows::<Range>(query(&text)).await?.into_iter().next();
        Ok(match r {
            Some(r) => json!({"min_year": r.min_year, "max_year": r.max_year}),
            None => json!({"min_year": null, "max_year": null}),
        })
    }
}

/// The rows of a batched statement of `n` lookups in the lookups' order (`position` of a
/// row: its `i`); `None` for a lookup without a row.
fn by_position<T>(n: usize, rows: Vec<T>, position: impl Fn(&T) -> i64) -> Vec<Option<T>> {
    let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(n).collect();
    for row in rows {
        if let Some(slot) = usize::try_from(position(&row))
            .ok()
            .and_then(|i| out.get_mut(i))
        {
            *slot = Some(row);
        }
    }
    out
}

/// A Lucene query requiring every word of `text` as a prefix: special characters escaped,
/// words lower-cased, `*` appended, joined with `AND`.
#[must_use]
pub fn lucene_prefix_query(text: &str) -> String {
    let mut terms = Vec::new();
    for word in text.split_whitespace().take(8) {
        let mut t = String::new();
        // Lower case: the index's analyser lowers, prefix terms are not analysed (and
        // `and`/`or` in lower case are words, not operators).
        for c in word.to_lowercase().chars() {
            if "+-&|!(){}[]^\"~*?:\\/".contains(c) {
                t.push('\\');
            }
            t.push(c);
        }
        terms.push(format!("{t}*"));
    }
    terms.join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lucene_queries_are_escaped_prefixes() {
        assert_eq!(lucene_prefix_query("Depeche Mo"), "depeche* AND mo*");
        assert_eq!(lucene_prefix_query("AC/DC"), "ac\\/dc*");
        assert_eq!(lucene_prefix_query("a:b (c)"), "a\\:b* AND \\(c\\)*");
        assert_eq!(lucene_prefix_query("  "), "");
        assert_eq!(
            lucene_prefix_query("rock and roll"),
            "rock* AND and* AND roll*"
        );
    }
}
