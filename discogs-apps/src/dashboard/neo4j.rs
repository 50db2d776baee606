//! Reading Neo4j without plugins: nodes per label and relationships per type.
//!
//! `CALL db.labels()` and `CALL db.relationshipTypes()` name them, then
//! `MATCH (n:Label) RETURN count(n)` and `MATCH ()-[r:TYPE]->() RETURN count(r)`, one query
//! per name, count them. Neo4j answers exactly these shapes from its count store in
//! constant time, so the reading costs the same on an empty graph and on 34 million
//! records. (The original system needed APOC's `apoc.meta.stats()` for this.)

use neo4rs::{query, ConfigBuilder, Graph, Query};

use super::collect::Reader;
use super::snapshot::{Count, Neo4j};

/// Labels and relationship types listed at most (the largest).
const MAX_NAMES: usize = 100;

/// Labels and relationship types counted at most (a graph of this system has about 20).
const MAX_COUNTED: usize = 500;

/// The graph's own labels, always listed (with 0 when there are none yet).
const CORE_LABELS: [&str; 6] = ["Artist", "Label", "Master", "Release", "Genre", "Style"];

/// Where Neo4j is.
#[derive(Clone)]
pub struct NeoTarget {
    /// `bolt://host:7687` (or `neo4j://`).
    pub uri: String,
    /// User.
    pub user: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for NeoTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeoTarget")
            .field("uri", &self.uri)
            .field("user", &self.user)
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
        let mut labels = strings(
            &graph,
            query("CALL db.labels() YIELD label RETURN label AS name"),
        )
        .await?;
        for core in CORE_LABELS {
            if !labels.iter().any(|l| l == core) {
                labels.push(core.to_owned());
            }
        }
        let types = strings(
            &graph,
            query("CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType AS name"),
        )
        .await?;
        let mut label_counts = counts(&graph, &labels, |name| {
            format!("MATCH (n:{}) RETURN count(n) AS count", escape(name))
        })
        .await?;
        let mut type_counts = counts(&graph, &types, |name| {
            format!("MATCH ()-[r:{}]->() RETURN count(r) AS count", escape(name))
        })
        .await?;
        let total_nodes = count_one(&graph, "MATCH (n) RETURN count(n) AS count").await?;
        let total_relationships =
            count_one(&graph, "MATCH ()-[r]->() RETURN count(r) AS count").await?;
        // A label of a graph emptied since is no longer worth a line; the core ones are.
        label_counts.retain(|c| c.count > 0 || CORE_LABELS.contains(&c.name.as_str()));
        type_counts.retain(|c| c.count > 0);
        for list in [&mut label_counts, &mut type_counts] {
            list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
            list.truncate(MAX_NAMES);
        }
        let reading = Neo4j {
            version: self.version.clone(),
            total_nodes,
            total_relationships,
            labels: label_counts,
            relationship_types: type_counts,
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

/// Counts each name with its own query, `branch(name)`. Each query's text depends only on
/// its name, so Neo4j plans it once and answers it from its plan cache afterwards.
async fn counts(
    graph: &Graph,
    names: &[String],
    branch: impl Fn(&str) -> String,
) -> Result<Vec<Count>, String> {
    let mut out = Vec::with_capacity(names.len());
    for name in names.iter().take(MAX_COUNTED) {
        out.push(Count {
            name: name.clone(),
            count: count_one(graph, &branch(name)).await?,
        });
    }
    Ok(out)
}

/// The `count` of a query that returns one.
async fn count_one(graph: &Graph, text: &str) -> Result<u64, String> {
    let mut rows = graph
        .execute(query(text))
        .await
        .map_err(|e| e.to_string())?;
    let count: i64 = match rows.next().await.map_err(|e| e.to_string())? {
        Some(row) => row.get("count").map_err(|e| e.to_string())?,
        None => 0,
    };
    Ok(u64::try_from(count).unwrap_or(0))
}

/// A label or type as a Cypher identifier: in backticks, backticks doubled.
fn escape(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(escape("Artist"), "`Artist`");
        assert_eq!(escape("we`ird"), "`we``ird`");
    }
}
