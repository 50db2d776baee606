//! Errors from the real server, classified by their status codes.

use std::time::Duration;

use discogs_sink_neo4j::Neo4jSinkError;
use neo4rs::query;

use crate::TestGraph;

/// Two transactions lock two nodes in opposite orders: the server detects the deadlock
/// and fails one of them with a transient status, which the sink reports as retriable.
#[tokio::test]
async fn a_deadlock_is_retriable_and_a_constraint_violation_is_not() {
    let Some(tg) = TestGraph::new("neo4j_errors") else {
        return;
    };
    let mut sink = tg.sink();
    sink.ensure_schema().await.unwrap();
    let label = sink.names().artist().to_owned();
    let graph = sink.graph().clone();
    graph
        .run(query(&format!(
            "CREATE (:{label} {{id: 1}}), (:{label} {{id: 2}})"
        )))
        .await
        .unwrap();
    let set = |id: i64| {
        query(&format!(
            "MATCH (n:{label} {{id: $id}}) SET n.touched = true"
        ))
        .param("id", id)
    };
    let mut t1 = graph.start_txn().await.unwrap();
    let mut t2 = graph.start_txn().await.unwrap();
    t1.run(set(1)).await.unwrap();
    t2.run(set(2)).await.unwrap();
    let second = set(2);
    let first = set(1);
    let (r1, r2) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(t1.run(second), async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            t2.run(first).await
        })
    })
    .await
    .expect("the server resolves the deadlock");
    let failure = match (r1, r2) {
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => e,
        other => panic!("expected exactly one transaction to fail: {other:?}"),
    };
    let error = Neo4jSinkError::Neo4j {
        context: "test",
        source: failure,
    };
    assert_eq!(
        error.code(),
        Some("Neo.TransientError.Transaction.DeadlockDetected")
    );
    assert!(error.is_retriable(), "{error:?}");
    drop((t1, t2));

    // A second node with an existing id breaks the uniqueness constraint: permanent.
    let failure = graph
        .run(query(&format!("CREATE (:{label} {{id: 1}})")))
        .await
        .expect_err("constraint");
    let error = Neo4jSinkError::Neo4j {
        context: "test",
        source: failure,
    };
    assert_eq!(
        error.code(),
        Some("Neo.ClientError.Schema.ConstraintValidationFailed")
    );
    assert!(!error.is_retriable(), "{error:?}");
    tg.drop().await;
}
