//! Reading Neo4j without plugins: nodes per label and relationships per type, for one graph.
//!
//! One `CALL db.stats.retrieve('GRAPH COUNTS')` returns Neo4j's count store: nodes per
//! label and relationships per type and start label. Neo4j keeps these counts up to date
//! with every transaction, so the reading costs the same on an empty graph and on 34
//! million records. (The original system needed APOC's `apoc.meta.stats()` for this.)
//!
//! The figures are those of the graph of one namespace ([`GraphNames`]; the empty one in
//! production): its six labels, always listed (0 before the first record), and the
//! relationships that start at one of them. Other graphs sharing the database (tests,
//! benchmarks) neither show nor push the graph's own labels out of the list.

use discogs_sink_neo4j::GraphNames;
use neo4rs::{query, ConfigBuilder, Graph, Query};

use super::collect::Reader;
use super::snapshot::{Count, Neo4j};

/// The counts of the labels and of the relationships starting at them, one row per label
/// or type (`section` is `label` or `type`).
const GRAPH_COUNTS: &str = "CALL db.stats.retrieve('GRAPH COUNTS') YIELD data \
     UNWIND [n IN data.nodes WHERE n.label IN $labels \
               | {section: 'label', name: n.label, count: n.count}] \
          + [r IN data.relationships WHERE r.startLabel IN $labels AND r.endLabel IS NULL \
               | {section: 'type', name: r.relationshipType, count: r.count}] AS row \
     RETURN row.section AS section, row.name AS name, sum(row.count) AS count";

/// Where Neo4j is.
#[derive(Clone)]
pub struct NeoTarget {
    /// `bolt://host:7687` (or `neo4j://`).
    pub uri: String,
    /// User.
    pub user: String,
    /// Password.
    pub password: String,
    /// The graph shown: its namespace's labels.
    pub names: GraphNames,
}

impl std::fmt::Debug for NeoTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeoTarget")
            .field("uri", &self.uri)
            .field("user", &self.user)
            .field("namespace", &self.names.namespace())
            .finish_non_exhaustive()
    }
}

/// The Neo4j source: a small pool, replaced after any failure.
pub(crate) struct NeoSource {
    target: NeoTarget,
    graph: Option<Graph>,
    version: Option<String>,
}

impl std::fmt::Debug for NeoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeoSource")
            .field("target", &self.target)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl NeoSource {
    pub(crate) fn new(target: NeoTarget) -> Self {
        Self {
            target,
            graph: None,
            version: None,
        }
    }
}

impl Reader for NeoSource {
    type Data = Neo4j;

    /// One reading; the pool is kept only when it succeeds (a query abandoned half-way
    /// must not leave a connection in an unknown state in the pool).
    async fn read(&mut self) -> Result<Neo4j, String> {
        let graph = match self.graph.take() {
            Some(g) => g,
            None => {
                let config = ConfigBuilder::default()
                    .uri(self.target.uri.as_str())
                    .user(self.target.user.as_str())
                    .password(self.target.password.as_str())
                    .max_connections(2)
                    .build()
                    .map_err(|e| e.to_string())?;
                Graph::connect(config).map_err(|e| e.to_string())?
            }
        };
        if self.version.is_none() {
            let rows = strings(
                &graph,
                query("CALL dbms.components() YIELD versions, edition RETURN versions[0] + ' ' + edition AS name"),
            )
            .await?;
            self.version = rows.into_iter().next();
        }
        let (labels, relationship_types) = graph_counts(&graph, &self.target.names).await?;
        let reading = Neo4j {
            version: self.version.clone(),
            total_nodes: labels.iter().map(|c| c.count).sum(),
            total_relationships: relationship_types.iter().map(|c| c.count).sum(),
            labels,
            relationship_types,
        };
        self.graph = Some(graph);
        Ok(reading)
    }
}

async fn strings(graph: &Graph, q: Query) -> Result<Vec<String>, String> {
    let mut rows = graph.execute(q).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.map_err(|e| e.to_string())? {
        out.push(row.get::<String>("name").map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// The graph's labels (all six) and its relationship types, with their counts, largest
/// first.
async fn graph_counts(
    graph: &Graph,
    names: &GraphNames,
) -> Result<(Vec<Count>, Vec<Count>), String> {
    let wanted: Vec<String> = names.all_labels().to_vec();
    let mut rows = graph
        .execute(query(GRAPH_COUNTS).param("labels", wanted.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let mut labels: Vec<Count> = wanted
        .into_iter()
        .map(|name| Count { name, count: 0 })
        .collect();
    let mut types = Vec::new();
    while let Some(row) = rows.next().await.map_err(|e| e.to_string())? {
        let section: String = row.get("section").map_err(|e| e.to_string())?;
        let name: String = row.get("name").map_err(|e| e.to_string())?;
        let count: i64 = row.get("count").map_err(|e| e.to_string())?;
        let count = u64::try_from(count).unwrap_or(0);
        match section.as_str() {
            "label" => {
                if let Some(c) = labels.iter_mut().find(|c| c.name == name) {
                    c.count = count;
                }
            }
            _ => types.push(Count { name, count }),
        }
    }
    types.retain(|c| c.count > 0);
    for list in [&mut labels, &mut types] {
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    }
    Ok((labels, types))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_names_are_the_namespace_labels() {
        let target = NeoTarget {
            uri: "bolt://127.0.0.1:7687".into(),
            user: "neo4j".into(),
            password: "hunter22".into(),
            names: GraphNames::new("T7_").unwrap(),
        };
        assert_eq!(target.names.all_labels()[0], "T7_Artist");
        let debug = format!("{target:?}");
        assert!(
            debug.contains("T7_") && !debug.contains("hunter22"),
            "{debug}"
        );
    }
}
