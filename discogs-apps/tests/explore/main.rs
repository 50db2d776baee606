//! Integration tests of the explore service against the real Neo4j, PostgreSQL and Redis
//! (`scripts/services up`), loaded with real dump excerpts through the real sinks, each
//! test in a Neo4j namespace and PostgreSQL schema of its own. Expectations come from the
//! fixture records (their graph form), or from direct database queries.

mod api;
mod batched;
mod browser;
#[path = "../common/chromium.rs"]
mod chromium;
mod timeout;
mod world;

/// Runs a test body with a time limit, so that a hang fails instead of blocking CI.
pub(crate) async fn within<F: std::future::Future<Output = ()>>(secs: u64, body: F) {
    tokio::time::timeout(std::time::Duration::from_secs(secs), body)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {secs} s"));
}
