//! The graph's schema: uniqueness constraints, range and full-text indexes, created
//! idempotently at start-up; and the removal of a whole namespace (tests, benchmarks).

use std::time::{Duration, Instant};

use neo4rs::{query, Graph};

use crate::sink::get;

use crate::{GraphNames, Neo4jSinkError};

/// One schema object: its name and the statement creating it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaObject {
    /// The constraint's or index's name (with the namespace's prefix).
    pub name: String,
    /// `true` for a constraint, `false` for an index.
    pub constraint: bool,
    /// `CREATE … IF NOT EXISTS …`.
    pub create: String,
}

/// Every constraint and index of the graph in `names`' namespace:
///
/// * uniqueness constraints on `Artist.id`, `Label.id`, `Master.id`, `Release.id`
///   (`artist_id`...) and on `Genre.name`, `Style.name` (`genre_name`, `style_name`);
///   each is backed by a range index, which also serves id ranges;
/// * range indexes on `Release.year`, `Master.year` (`release_year`, `master_year`), on
///   `sha256` of the four kinds (`artist_sha256`...), on `Artist.name` and `Label.name`
///   (`artist_name`, `label_name`: the explorer's lookups by exact name);
/// * full-text indexes `artist_name_fulltext`, `label_name_fulltext`,
///   `master_title_fulltext`, `release_title_fulltext`, `genre_name_fulltext`,
///   `style_name_fulltext`.
#[must_use]
pub fn schema_objects(names: &GraphNames) -> Vec<SchemaObject> {
    let mut out = Vec::new();
    let constraint = |out: &mut Vec<SchemaObject>, base: &str, label: &str, prop: &str| {
        let name = names.schema_name(base);
        out.push(SchemaObject {
            create: format!(
                "CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.{prop} IS UNIQUE"
            ),
            name,
            constraint: true,
        });
    };
    constraint(&mut out, "artist_id", names.artist(), "id");
    constraint(&mut out, "label_id", names.label_label(), "id");
    constraint(&mut out, "master_id", names.master(), "id");
    constraint(&mut out, "release_id", names.release(), "id");
    constraint(&mut out, "genre_name", names.genre(), "name");
    constraint(&mut out, "style_name", names.style(), "name");
    let range = |out: &mut Vec<SchemaObject>, base: &str, label: &str, prop: &str| {
        let name = names.schema_name(base);
        out.push(SchemaObject {
            create: format!("CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})"),
            name,
            constraint: false,
        });
    };
    range(&mut out, "release_year", names.release(), "year");
    range(&mut out, "master_year", names.master(), "year");
    range(&mut out, "artist_sha256", names.artist(), "sha256");
    range(&mut out, "label_sha256", names.label_label(), "sha256");
    range(&mut out, "master_sha256", names.master(), "sha256");
    range(&mut out, "release_sha256", names.release(), "sha256");
    range(&mut out, "artist_name", names.artist(), "name");
    range(&mut out, "label_name", names.label_label(), "name");
    let fulltext = |out: &mut Vec<SchemaObject>, name: String, label: &str, prop: &str| {
        out.push(SchemaObject {
            create: format!(
                "CREATE FULLTEXT INDEX {name} IF NOT EXISTS FOR (n:{label}) ON EACH [n.{prop}]"
            ),
            name,
            constraint: false,
        });
    };
    fulltext(
        &mut out,
        names.fulltext_artist_name(),
        names.artist(),
        "name",
    );
    fulltext(
        &mut out,
        names.fulltext_label_name(),
        names.label_label(),
        "name",
    );
    fulltext(
        &mut out,
        names.fulltext_master_title(),
        names.master(),
        "title",
    );
    fulltext(
        &mut out,
        names.fulltext_release_title(),
        names.release(),
        "title",
    );
    fulltext(
        &mut out,
        names.schema_name("genre_name_fulltext"),
        names.genre(),
        "name",
    );
    fulltext(
        &mut out,
        names.schema_name("style_name_fulltext"),
        names.style(),
        "name",
    );
    out
}

/// Names of the constraints and indexes that exist in the database.
async fn existing(graph: &Graph) -> Result<Vec<String>, Neo4jSinkError> {
    let mut names = Vec::new();
    for show in ["SHOW CONSTRAINTS YIELD name", "SHOW INDEXES YIELD name"] {
        let mut rows = graph
            .execute(query(show))
            .await
            .map_err(Neo4jSinkError::neo4j("listing the schema"))?;
        while let Some(row) = rows
            .next()
            .await
            .map_err(Neo4jSinkError::neo4j("listing the schema"))?
        {
            let name: String = row
                .get("name")
                .map_err(|e| Neo4jSinkError::Decode(format!("schema name: {e}")))?;
            names.push(name);
        }
    }
    Ok(names)
}

/// Creates what is missing of [`schema_objects`] and waits until every index is online.
/// Each statement is idempotent (`IF NOT EXISTS`), so concurrent start-ups are safe.
pub(crate) async fn ensure(
    graph: &Graph,
    names: &GraphNames,
    timeout: Duration,
) -> Result<usize, Neo4jSinkError> {
    let have = existing(graph).await?;
    let mut created = 0;
    for object in schema_objects(names) {
        if have.contains(&object.name) {
            continue;
        }
        graph
            .run(query(&object.create))
            .await
            .map_err(Neo4jSinkError::neo4j("creating the schema"))?;
        created += 1;
    }
    if created > 0 {
        await_online(graph, names, timeout).await?;
        tracing::info!(
            namespace = names.namespace(),
            created,
            "Neo4j schema created."
        );
    }
    Ok(created)
}

/// Waits until every index of the namespace is online. Only its own: `db.awaitIndexes`
/// would also wait for other namespaces' indexes, and forever for one that never comes
/// online.
async fn await_online(
    graph: &Graph,
    names: &GraphNames,
    timeout: Duration,
) -> Result<(), Neo4jSinkError> {
    let wanted: Vec<String> = schema_objects(names).into_iter().map(|o| o.name).collect();
    let started = Instant::now();
    loop {
        let q = query(
            "SHOW INDEXES YIELD name, state WHERE name IN $names AND state <> 'ONLINE' \
             RETURN name, state",
        )
        .param("names", wanted.clone());
        let context = "waiting for the indexes";
        let mut rows = graph
            .execute(q)
            .await
            .map_err(Neo4jSinkError::neo4j(context))?;
        let mut pending = Vec::new();
        while let Some(row) = rows.next().await.map_err(Neo4jSinkError::neo4j(context))? {
            let name: String = get(&row, "name")?;
            let state: String = get(&row, "state")?;
            if state == "FAILED" {
                return Err(Neo4jSinkError::Schema(format!(
                    "index {name} failed to build"
                )));
            }
            pending.push(name);
        }
        if pending.is_empty() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(Neo4jSinkError::Schema(format!(
                "indexes not online after {timeout:?}: {pending:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes every node of the namespace's six labels (in transactions of 10,000 nodes)
/// and drops its constraints and indexes.
pub(crate) async fn drop_namespace(
    graph: &Graph,
    names: &GraphNames,
) -> Result<(), Neo4jSinkError> {
    for label in names.all_labels() {
        graph
            .run(query(&format!(
                "MATCH (n:{label}) CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF 10000 ROWS"
            )))
            .await
            .map_err(Neo4jSinkError::neo4j("deleting the namespace's nodes"))?;
    }
    for object in schema_objects(names) {
        let what = if object.constraint {
            "CONSTRAINT"
        } else {
            "INDEX"
        };
        graph
            .run(query(&format!("DROP {what} {} IF EXISTS", object.name)))
            .await
            .map_err(Neo4jSinkError::neo4j("dropping the namespace's schema"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_carry_the_namespace() {
        let objects = schema_objects(&GraphNames::new("T9_").unwrap());
        assert_eq!(objects.len(), 20);
        assert!(objects.iter().all(|o| o.name.starts_with("T9_")));
        assert!(objects.iter().all(|o| o.create.contains("IF NOT EXISTS")));
        assert_eq!(
            objects[0].create,
            "CREATE CONSTRAINT T9_artist_id IF NOT EXISTS FOR (n:T9_Artist) REQUIRE n.id IS UNIQUE"
        );
        let names: std::collections::HashSet<_> = objects.iter().map(|o| &o.name).collect();
        assert_eq!(names.len(), objects.len(), "names are unique");
    }
}
