use std::collections::HashMap;

use discogs_testkit::{require, Scope, Service};
use neo4rs::{query, BoltType, ConfigBuilder, Graph};

use crate::{within, TestResult};

async fn count(
    graph: &Graph,
    cypher: &str,
) -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
    let mut rows = graph.execute(query(cypher)).await?;
    let row = rows.next().await?.ok_or("no row")?;
    Ok(row.get::<i64>("n")?)
}

#[tokio::test]
async fn neo4j_unwind_merge_relationship_counts() -> TestResult {
    let Some(cfg) = require(Service::Neo4j) else {
        return Ok(());
    };
    // Every node the test creates also carries its own label, so it touches no one else's nodes.
    let label = Scope::new("neo4j_smoke").label();
    within("neo4j", async {
        let graph = Graph::connect(
            ConfigBuilder::default()
                .uri(cfg.url())
                .user(cfg.username().unwrap_or("neo4j"))
                .password(cfg.password().unwrap_or_default())
                .build()?,
        )?;

        let mut version = graph
            .execute(query("CALL dbms.components() YIELD versions RETURN versions[0] AS v"))
            .await?;
        let version: String = version.next().await?.ok_or("no version row")?.get("v")?;
        assert!(version.starts_with('5'), "expected Neo4j 5.x, got {version}");

        let rows: Vec<HashMap<String, BoltType>> = [(1_i64, "The Persuader"), (2, "Jesper Dahlbäck")]
            .into_iter()
            .map(|(id, name)| HashMap::from([("id".to_owned(), id.into()), ("name".to_owned(), name.into())]))
            .collect();
        let merge = format!("UNWIND $rows AS r MERGE (a:Artist:{label} {{id: r.id}}) SET a.name = r.name");
        // Twice: MERGE is idempotent, the second run creates nothing.
        for _ in 0..2 {
            graph.run(query(&merge).param("rows", rows.clone())).await?;
        }
        graph
            .run(query(&format!(
                "MATCH (m:Artist:{label} {{id: 1}}), (g:Artist:{label} {{id: 2}}) MERGE (m)-[:MEMBER_OF]->(g)"
            )))
            .await?;

        let nodes = count(&graph, &format!("MATCH (a:Artist:{label}) RETURN count(a) AS n")).await?;
        let rels = count(
            &graph,
            &format!("MATCH (:Artist:{label})-[r:MEMBER_OF]->(:Artist:{label}) RETURN count(r) AS n"),
        )
        .await?;
        let mut named = graph
            .execute(query(&format!("MATCH (a:Artist:{label} {{id: 2}}) RETURN a.name AS name")))
            .await?;
        let name: String = named.next().await?.ok_or("artist 2 missing")?.get("name")?;

        graph.run(query(&format!("MATCH (n:{label}) DETACH DELETE n"))).await?;
        let left = count(&graph, &format!("MATCH (n:{label}) RETURN count(n) AS n")).await?;

        assert_eq!((nodes, rels), (2, 1));
        assert_eq!(name, "Jesper Dahlbäck");
        assert_eq!(left, 0);
        Ok(())
    })
    .await
}
