//! A query past its time limit stops in Neo4j too, not only in the explorer.

use std::time::{Duration, Instant};

use clap::Parser as _;
use discogs_apps::explore::params::ApiError;
use discogs_apps::explore::ExploreArgs;
use discogs_apps::metrics::Metrics;
use discogs_testkit::{require, Scope, Service};
use serde::Deserialize;

use crate::within;

#[derive(Debug, Deserialize)]
struct Count {
    #[allow(dead_code)]
    n: i64,
}

/// A query that runs for minutes (ten billion rows), tagged with `marker` (a literal in
/// its text) so that `SHOW TRANSACTIONS` finds it.
fn endless(marker: &str) -> neo4rs::Query {
    neo4rs::query(&format!(
        "UNWIND range(1, 10000000000) AS i WITH i WHERE i % 7 = 8 RETURN count(i) AS n, '{marker}' AS tag"
    ))
}

/// Ids of the running transactions whose query contains `marker`.
async fn running(graph: &neo4rs::Graph, marker: &str) -> Vec<String> {
    let mut rows = graph
        .execute(
            neo4rs::query(
                "SHOW TRANSACTIONS YIELD transactionId, currentQuery \
                 WHERE currentQuery CONTAINS $m AND NOT currentQuery CONTAINS 'SHOW TRANSACTIONS' \
                 RETURN transactionId",
            )
            .param("m", marker),
        )
        .await
        .expect("SHOW TRANSACTIONS");
    let mut ids = Vec::new();
    while let Some(row) = rows.next().await.expect("a transaction row") {
        ids.push(row.get::<String>("transactionId").expect("transactionId"));
    }
    ids
}

/// Waits up to `secs` for the marked query to leave `SHOW TRANSACTIONS`; whether it left.
async fn gone_within(graph: &neo4rs::Graph, marker: &str, secs: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if running(graph, marker).await.is_empty() {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_queries_stop_in_neo4j() {
    within(120, async {
        let Some(neo) = require(Service::Neo4j) else {
            return;
        };
        let scope = Scope::new("explore_timeout");
        let (user, password) = (
            neo.username().unwrap_or("neo4j"),
            neo.password().unwrap_or_default(),
        );
        let args = ExploreArgs::parse_from([
            "explore",
            "--neo4j-address",
            neo.url(),
            "--neo4j-username",
            user,
            "--neo4j-password",
            password,
            "--neo4j-namespace",
            &format!("{}_", scope.label()),
            "--redis-url",
            "",
        ]);
        let explore = args.build(Metrics::new("explore")).expect("explorer");
        let driver = || {
            neo4rs::Graph::connect(
                neo4rs::ConfigBuilder::default()
                    .uri(neo.url())
                    .user(user)
                    .password(password)
                    .build()
                    .expect("config"),
            )
            .expect("driver")
        };
        let direct = driver();
        // `SHOW TRANSACTIONS` and `TERMINATE` go through a driver of their own: checking out
        // the control query's connection again would make neo4rs drain and then close it,
        // which ends the query too.
        let observer = driver();

        // Control: the same query with only a client-side limit keeps running in Neo4j
        // after the client gave up (so the check below can tell the difference).
        let control = format!("{}-control", scope.label());
        let gave_up = tokio::time::timeout(Duration::from_millis(500), async {
            let mut s = direct
                .execute(endless(&control))
                .await
                .expect("control query");
            s.next().await
        })
        .await;
        assert!(gave_up.is_err(), "the control query ended within 500 ms");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let left = running(&observer, &control).await;
        assert!(
            !left.is_empty(),
            "the control query was expected to be still running in Neo4j"
        );
        for id in left {
            observer
                .run(neo4rs::query("TERMINATE TRANSACTION $id").param("id", id.as_str()))
                .await
                .expect("terminating the control query");
        }

        // The explorer's queries carry their limit to Neo4j: past it the caller gets a
        // timeout and Neo4j ends the transaction within a few seconds.
        let marker = format!("{}-limited", scope.label());
        let started = Instant::now();
        let result = explore
            .graph
            .rows_within::<Count>(endless(&marker), Duration::from_millis(500))
            .await;
        assert!(
            matches!(result, Err(ApiError::Timeout(_))),
            "expected a timeout, got {result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the timeout came after {:?}",
            started.elapsed()
        );
        if !gone_within(&observer, &marker, 5).await {
            let left = running(&observer, &marker).await;
            for id in &left {
                // Best effort: the test fails below whatever this answers.
                observer
                    .run(neo4rs::query("TERMINATE TRANSACTION $id").param("id", id.as_str()))
                    .await
                    .ok();
            }
            panic!("the timed-out query still ran in Neo4j 5 s later: {left:?}");
        }
    })
    .await;
}
