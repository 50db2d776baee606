//! Reading Neo4j without plugins: nodes per label and relationships per type.
//!
//! `CALL db.labels()` and `CALL db.relationshipTypes()` name them, then one query of
//! `MATCH (n:Label) WITH count(n) ...` / `MATCH ()-[r:TYPE]->() WITH count(r) ...` branches
//! (joined with `UNION ALL`) counts them. Neo4j answers these shapes from its count store
//! in constant time, so the reading costs the same on an empty graph and on 34 million
//! records. (The original system needed APOC's `apoc.meta.stats()` for this.)

use neo4rs::{query, ConfigBuilder, Graph, Query};

use super::snapshot::{Count, Neo4j};

/// Labels and relationship types counted at most (largest first are kept).
const MAX_NAMES: usize = 100;

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

    /// One reading; the pool is kept only when it succeeds (a query abandoned half-way
    /// must not leave a connection in an unknown state in the pool).
    pub(crate) async fn read(&mut self) -> Result<Neo4j, String> {
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
        let mut label_counts = counts(&graph, &labels, |i, name| {
            format!(
                "MATCH (n:{}) WITH count(n) AS c RETURN $n{i} AS name, c AS count",
                escape(name)
            )
        })
        .await?;
        let mut type_counts = counts(&graph, &types, |i, name| {
            format!(
                "MATCH ()-[r:{}]->() WITH count(r) AS c RETURN $n{i} AS name, c AS count",
                escape(name)
            )
        })
        .await?;
        let totals = counts(
            &graph,
            &["nodes".to_owned(), "relationships".to_owned()],
            |i, _| {
                if i == 0 {
                    "MATCH (n) WITH count(n) AS c RETURN $n0 AS name, c AS count".to_owned()
                } else {
                    "MATCH ()-[r]->() WITH count(r) AS c RETURN $n1 AS name, c AS count".to_owned()
                }
            },
        )
        .await?;
        let total = |name: &str| {
            totals
                .iter()
                .find(|c| c.name == name)
                .map_or(0, |c| c.count)
        };
        // A label of a graph emptied since is no longer worth a line; the core ones are.
        label_counts.retain(|c| c.count > 0 || CORE_LABELS.contains(&c.name.as_str()));
        type_counts.retain(|c| c.count > 0);
        for list in [&mut label_counts, &mut type_counts] {
            list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
            list.truncate(MAX_NAMES);
        }
        let reading = Neo4j {
            version: self.version.clone(),
            total_nodes: total("nodes"),
            total_relationships: total("relationships"),
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

/// Runs one branch per name, joined by `UNION ALL`, names passed as parameters `$n{i}`.
async fn counts(
    graph: &Graph,
    names: &[String],
    branch: impl Fn(usize, &str) -> String,
) -> Result<Vec<Count>, String> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let names = &names[..names.len().min(MAX_NAMES * 2)];
    let text = names
        .iter()
        .enumerate()
        .map(|(i, n)| branch(i, n))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let mut q = query(&text);
    for (i, name) in names.iter().enumerate() {
        q = q.param(&format!("n{i}"), name.as_str());
    }
    let mut rows = graph.execute(q).await.map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(names.len());
    while let Some(row) = rows.next().await.map_err(|e| e.to_string())? {
        let name: String = row.get("name").map_err(|e| e.to_string())?;
        let count: i64 = row.get("count").map_err(|e| e.to_string())?;
        out.push(Count {
            name,
            count: u64::try_from(count).unwrap_or(0),
        });
    }
    Ok(out)
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
