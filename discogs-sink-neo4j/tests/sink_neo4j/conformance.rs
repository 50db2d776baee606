//! The shared Sink conformance suite, run against Neo4j.

use discogs_model::conformance::{self, Harness};
use discogs_model::{Record, RecordHash, RecordKind};
use discogs_sink_neo4j::{graph_form, Neo4jSink, Neo4jSinkConfig};

use crate::TestGraph;

struct Neo4jHarness {
    tag: &'static str,
    graphs: Vec<TestGraph>,
    reader: Option<Neo4jSink>,
}

impl Neo4jHarness {
    fn new(tag: &'static str) -> Option<Neo4jHarness> {
        // Only to skip early when Neo4j is absent.
        discogs_testkit::require(discogs_testkit::Service::Neo4j)?;
        Some(Neo4jHarness {
            tag,
            graphs: Vec::new(),
            reader: None,
        })
    }

    async fn cleanup(self) {
        for graph in self.graphs {
            graph.drop().await;
        }
    }

    async fn read(&mut self, kind: RecordKind, id: u64) -> Option<(Record<'static>, RecordHash)> {
        let reader = self.reader.as_mut().expect("sink() first");
        let (record, hash) = reader.get(kind, id).await.expect("read back")?;
        // A stub (no hash) is a node that references created, not a stored record.
        Some((record, hash?))
    }
}

impl Harness for Neo4jHarness {
    type Sink = Neo4jSink;

    async fn sink(&mut self) -> Neo4jSink {
        let graph = TestGraph::new(self.tag).expect("Neo4j went away");
        let mut reader = graph.sink();
        reader.ensure_schema().await.expect("schema");
        let sink = graph.sink();
        self.reader = Some(reader);
        self.graphs.push(graph);
        sink
    }

    async fn unreachable_sink(&mut self) -> Neo4jSink {
        let config = Neo4jSinkConfig::new("bolt://127.0.0.1:1", "neo4j", "x").timeout_secs(2);
        Neo4jSink::new(config).expect("valid config")
    }

    async fn stored_hash(&mut self, kind: RecordKind, id: u64) -> Option<RecordHash> {
        self.read(kind, id).await.map(|(_, h)| h)
    }

    async fn stored_record(&mut self, kind: RecordKind, id: u64) -> Option<Record<'static>> {
        self.read(kind, id).await.map(|(r, _)| r)
    }

    fn stored_form(&self, record: &Record<'static>) -> Record<'static> {
        graph_form(record)
    }
}

macro_rules! conformance_tests {
    ($($name:ident),*) => {$(
        #[tokio::test]
        async fn $name() {
            let Some(mut h) = Neo4jHarness::new(stringify!($name)) else { return };
            conformance::$name(&mut h).await;
            h.cleanup().await;
        }
    )*};
}

conformance_tests!(
    write_batch,
    idempotent_rewrite,
    changed_record,
    dangling_references,
    retry_classification
);
