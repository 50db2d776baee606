//! The pipeline's names on the three services for one test: flags for `discogsography`,
//! counts per kind in both databases, and the clean-up (queues, exchanges, schema,
//! namespace, data folder). Shared by the `pipeline` and `dashboard` test binaries.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use discogs_apps::consumer::Neo4jTarget;
use discogs_bus::{Admin, Topology};
use discogs_model::RecordKind;
use discogs_sink_neo4j::{Neo4jSink, Neo4jSinkConfig};
use discogs_testkit::{require, Config, Scope, Service};

/// A test's names on the three services and its data folder.
pub(crate) struct Env {
    pub(crate) amqp: Config,
    pub(crate) pg: Config,
    pub(crate) neo4j: Config,
    pub(crate) prefix: String,
    pub(crate) schema: String,
    pub(crate) namespace: String,
    pub(crate) data_dir: PathBuf,
    /// The names' source.
    pub(crate) scope: Scope,
}

impl Env {
    /// `None` (skipped) when a service is missing.
    pub(crate) fn new(tag: &str) -> Option<Env> {
        let amqp = require(Service::RabbitMq)?;
        let pg = require(Service::Postgres)?;
        let neo4j = require(Service::Neo4j)?;
        let scope = Scope::new(tag);
        Some(Env {
            amqp,
            pg,
            neo4j,
            prefix: scope.queue_prefix(),
            schema: scope.schema(),
            namespace: format!("{}_", scope.label()),
            data_dir: std::env::temp_dir().join(format!("discogsography-test-{}", scope.id())),
            scope,
        })
    }

    /// The command line's flags for this test's names (every setting explicit, so the
    /// environment of the machine does not matter).
    pub(crate) fn flags(&self) -> Vec<String> {
        let mut flags = vec![
            "--data-dir".to_owned(),
            self.data_dir.display().to_string(),
            "--amqp-connection".into(),
            self.amqp.url().to_owned(),
            "--exchange-prefix".into(),
            self.prefix.clone(),
            "--postgres-address".into(),
            self.pg.address(),
            "--postgres-username".into(),
            self.pg.username().unwrap_or("postgres").to_owned(),
            "--postgres-password".into(),
            self.pg.password().unwrap_or_default().to_owned(),
            "--postgres-database".into(),
            self.pg
                .path()
                .unwrap_or("postgres")
                .trim_start_matches('/')
                .to_owned(),
            "--postgres-schema".into(),
            self.schema.clone(),
            "--neo4j-address".into(),
            self.neo4j.url().to_owned(),
            "--neo4j-username".into(),
            self.neo4j.username().unwrap_or("neo4j").to_owned(),
            "--neo4j-password".into(),
            self.neo4j.password().unwrap_or_default().to_owned(),
            "--neo4j-namespace".into(),
            self.namespace.clone(),
        ];
        flags.push("--quiet".into());
        flags
    }

    pub(crate) fn neo4j_config(&self) -> Neo4jSinkConfig {
        Neo4jSinkConfig::new(
            self.neo4j.url(),
            self.neo4j.username().unwrap_or("neo4j"),
            self.neo4j.password().unwrap_or_default(),
        )
        .namespace(&self.namespace)
    }

    pub(crate) async fn pg_client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(self.pg.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(connection);
        client
    }

    /// A folder of links under the data folder (`input`), named as dump files: each
    /// `(file in source, link name)` pair. Fixture folders hold several months and
    /// excerpts under their own names; the pipeline reads a folder's newest month.
    pub(crate) fn link_input(&self, source: &std::path::Path, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.data_dir.join("input");
        std::fs::create_dir_all(&dir).expect("input folder");
        for (file, link) in files {
            let target = source.join(file);
            assert!(target.exists(), "fixture {}", target.display());
            std::os::unix::fs::symlink(&target, dir.join(link)).expect("link");
        }
        dir
    }

    /// Rows per table and complete (non-stub) nodes per label, by kind.
    pub(crate) async fn counts(&self) -> BTreeMap<RecordKind, (i64, i64)> {
        let client = self.pg_client().await;
        let sink = Neo4jSink::new(self.neo4j_config()).expect("Neo4j sink");
        let mut out = BTreeMap::new();
        for kind in RecordKind::ALL {
            let rows: i64 = client
                .query_one(
                    &format!("SELECT count(*) FROM \"{}\".{}", self.schema, kind.plural()),
                    &[],
                )
                .await
                .expect("count rows")
                .get(0);
            let cypher = format!(
                "MATCH (n:`{}`) WHERE n.sha256 IS NOT NULL RETURN count(n) AS n",
                sink.names().label(kind)
            );
            let mut result = sink
                .graph()
                .execute(neo4rs::query(&cypher))
                .await
                .expect("count nodes");
            let nodes: i64 = result
                .next()
                .await
                .expect("row")
                .expect("one row")
                .get("n")
                .expect("n");
            out.insert(kind, (rows, nodes));
        }
        out
    }

    /// Removes the queues, exchanges, schema, namespace and data folder.
    pub(crate) async fn clean_up(self) {
        remove_names(
            self.amqp.url(),
            Topology::with_prefix(&self.prefix),
            &self.pg_client().await,
            &self.schema,
            Some(self.neo4j_config()),
        )
        .await;
        std::fs::remove_dir_all(&self.data_dir).ok();
    }
}

/// Removes one test's names from the three services: the graphinator's and tableinator's
/// queues and the exchanges of `topology`, the PostgreSQL `schema`, and with `neo4j` its
/// namespace and the consumers' step nodes.
pub(crate) async fn remove_names(
    amqp: &str,
    topology: Topology,
    pg: &tokio_postgres::Client,
    schema: &str,
    neo4j: Option<Neo4jSinkConfig>,
) {
    let admin = Admin::connect(amqp, topology).await.expect("admin");
    for name in ["graphinator", "tableinator"] {
        admin
            .delete_consumer(name, &RecordKind::ALL)
            .await
            .expect("delete queues");
    }
    admin
        .delete_exchanges(&RecordKind::ALL)
        .await
        .expect("delete exchanges");
    admin.close().await.ok();
    pg.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("drop schema");
    if let Some(config) = neo4j {
        let sink = Neo4jSink::new(config.clone()).expect("sink");
        let steps = Neo4jTarget::new(Neo4jSink::new(config).expect("sink")).step_label();
        sink.graph()
            .run(neo4rs::query(&format!("MATCH (s:`{steps}`) DELETE s")))
            .await
            .expect("delete step nodes");
        sink.drop_namespace().await.expect("drop namespace");
    }
}
