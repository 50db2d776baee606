//! Smoke tests of the real services the workspace's tests use: connect, write, read back, clean up.
//!
//! Each test skips with a printed reason when its service is not reachable, and fails when `CI=true`.
//! Run them against the local services with `scripts/test`, or:
//!
//! ```text
//! scripts/services up && eval "$(scripts/services env)" && cargo test -p discogs-testkit --test services
//! ```

mod neo4j;
mod postgres;
mod rabbitmq;
mod redis;

use std::future::Future;
use std::time::Duration;

/// What every smoke test returns: `?` on any client error fails the test with that error.
type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Runs `f`, failing the test if it takes longer than a minute (a hung server must not hang CI).
async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(60), f).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: no answer within 60 s"),
    }
}
