//! Integration tests for discogs-sink-neo4j against the real Neo4j (`scripts/services up`).
//!
//! Neo4j community has one user database, so each test writes in a namespace of its own
//! (labels and schema names prefixed with a [`discogs_testkit::Scope`] label) and drops it
//! at the end; without a server the tests skip with a printed reason (and fail under
//! `CI=true`).

mod conformance;
mod errors;
mod fixtures;
mod maintenance;
mod model;
mod roundtrip;
mod shape;
mod update;

use discogs_sink_neo4j::{Neo4jSink, Neo4jSinkConfig};
use discogs_testkit::{require, Config, Scope, Service};
use neo4rs::query;

pub(crate) use discogs_testkit::{load, read_records, shared_fixtures};

/// A namespace of its own and the server's settings. Dropped without [`TestGraph::drop`]
/// (a failed assertion), it still removes its namespace, from a thread of its own.
pub(crate) struct TestGraph {
    pub(crate) server: Config,
    pub(crate) namespace: String,
    dropped: bool,
}

impl TestGraph {
    /// `None` (test skipped) when Neo4j is not reachable.
    pub(crate) fn new(tag: &str) -> Option<TestGraph> {
        let server = require(Service::Neo4j)?;
        let namespace = format!("{}_", Scope::new(tag).label());
        Some(TestGraph {
            server,
            namespace,
            dropped: false,
        })
    }

    pub(crate) fn config(&self) -> Neo4jSinkConfig {
        Neo4jSinkConfig::new(
            self.server.url(),
            self.server.username().unwrap_or("neo4j"),
            self.server.password().unwrap_or_default(),
        )
        .namespace(&self.namespace)
    }

    pub(crate) fn sink(&self) -> Neo4jSink {
        Neo4jSink::new(self.config()).expect("valid config")
    }

    /// Runs a query returning one integer column `n`; `{ns}` in the text becomes the
    /// namespace prefix.
    pub(crate) async fn count(&self, sink: &Neo4jSink, cypher: &str) -> i64 {
        let text = cypher.replace("{ns}", &self.namespace);
        let mut rows = sink
            .graph()
            .execute(query(&text))
            .await
            .unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let row = rows.next().await.unwrap().expect("one row");
        row.get::<i64>("n").unwrap()
    }

    pub(crate) async fn drop(mut self) {
        self.dropped = true;
        self.sink().drop_namespace().await.expect("drop namespace");
    }
}

impl Drop for TestGraph {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let sink = self.sink();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(sink.drop_namespace())
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("cleaning up a failed test's namespace: {e}");
        }
    }
}
