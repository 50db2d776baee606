//! Cache-aside in Redis, fail-open.
//!
//! A request's answer is stored under `{prefix}{endpoint}:{sha256 of its canonical
//! parameters}` with the endpoint's time to live ([`ttl`]). Redis is an accelerator, never
//! a dependency: every Redis operation has a short time limit, and after a failure the
//! cache is skipped for a moment ([`RETRY_AFTER`]) instead of slowing every request down;
//! the answer then comes from the databases. Hits, misses and errors are counted in
//! `/metrics` (`explore_cache_hits_total{endpoint}`, `…_misses_total`, `…_errors_total`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use sha2::{Digest as _, Sha256};

use crate::metrics::Metrics;

/// How long the cache is skipped after Redis failed.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Time to live of an endpoint's answers. The data changes when a monthly dump is loaded,
/// so answers live long; the cheap, changing ones (statistics) briefly.
#[must_use]
pub fn ttl(endpoint: &str) -> Duration {
    let secs = match endpoint {
        "stats" | "year-range" => 300,
        "autocomplete" | "search" => 3_600,
        "explore" | "expand" | "node" | "path" => 6 * 3_600,
        _ => 24 * 3_600, // trends, genre-tree, collaborators
    };
    Duration::from_secs(secs)
}

/// The cache; clones share the connection.
#[derive(Clone)]
pub struct Cache {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    client: Option<redis::Client>,
    prefix: String,
    op_timeout: Duration,
    state: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    down_until: Mutex<Option<Instant>>,
    metrics: Metrics,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("enabled", &self.inner.client.is_some())
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache on Redis at `url` (`None` or an empty URL: no cache), keys starting with
    /// `prefix`, each operation bounded by `op_timeout`.
    ///
    /// # Errors
    ///
    /// When the URL cannot be understood.
    pub fn new(
        url: Option<&str>,
        prefix: &str,
        op_timeout: Duration,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let client = match url.filter(|u| !u.is_empty()) {
            Some(u) => Some(
                redis::Client::open(u)
                    .map_err(|e| anyhow::anyhow!("REDIS_URL cannot be used: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            inner: std::sync::Arc::new(Inner {
                client,
                prefix: prefix.to_owned(),
                op_timeout,
                state: tokio::sync::Mutex::new(None),
                down_until: Mutex::new(None),
                metrics,
            }),
        })
    }

    /// Whether a Redis URL was given.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.inner.client.is_some()
    }

    /// The key of an answer.
    #[must_use]
    pub fn key(&self, endpoint: &str, canonical: &str) -> String {
        let digest = Sha256::digest(canonical.as_bytes());
        let mut hex = String::with_capacity(32);
        for b in &digest[..16] {
            hex.push_str(&format!("{b:02x}"));
        }
        format!("{}{endpoint}:{hex}", self.inner.prefix)
    }

    fn count(&self, name: &str, help: &str, endpoint: &str) {
        self.inner
            .metrics
            .counter(name, help, &[("endpoint", endpoint)])
            .inc();
    }

    fn is_down(&self) -> bool {
        let mut down = self
            .inner
            .down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match *down {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *down = None;
                false
            }
            None => false,
        }
    }

    fn mark_down(&self, endpoint: &str, error: &str) {
        self.count(
            "cache_errors_total",
            "Redis operations that failed (answered from the databases).",
            endpoint,
        );
        let mut down = self
            .inner
            .down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if down.is_none() {
            tracing::warn!(
                error,
                "Redis cache unavailable; answering from the databases."
            );
        }
        *down = Some(Instant::now() + RETRY_AFTER);
    }

    async fn connection(&self) -> Result<MultiplexedConnection, String> {
        let mut state = self.inner.state.lock().await;
        if let Some(c) = state.as_ref() {
            return Ok(c.clone());
        }
        let client = self.inner.client.as_ref().ok_or("no cache")?;
        let c = tokio::time::timeout(
            self.inner.op_timeout * 4,
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| "connecting to Redis timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        *state = Some(c.clone());
        Ok(c)
    }

    async fn forget_connection(&self) {
        *self.inner.state.lock().await = None;
    }

    /// The stored answer under `key`, `None` on a miss, when disabled, or when Redis fails.
    pub async fn get(&self, endpoint: &str, key: &str) -> Option<Bytes> {
        if !self.enabled() || self.is_down() {
            return None;
        }
        let result: Result<Option<Vec<u8>>, String> = async {
            let mut c = self.connection().await?;
            tokio::time::timeout(
                self.inner.op_timeout,
                redis::cmd("GET").arg(key).query_async(&mut c),
            )
            .await
            .map_err(|_| "Redis GET timed out".to_owned())?
            .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(Some(v)) => {
                self.count(
                    "cache_hits_total",
                    "Answers served from the Redis cache.",
                    endpoint,
                );
                Some(Bytes::from(v))
            }
            Ok(None) => {
                self.count(
                    "cache_misses_total",
                    "Answers not in the cache (computed, then stored).",
                    endpoint,
                );
                None
            }
            Err(e) => {
                self.forget_connection().await;
                self.mark_down(endpoint, &e);
                None
            }
        }
    }

    /// Stores `value` under `key` for the endpoint's [`ttl`]; failures only counted.
    pub async fn put(&self, endpoint: &str, key: &str, value: &[u8]) {
        if !self.enabled() || self.is_down() {
            return;
        }
        let secs = ttl(endpoint).as_secs();
        let result: Result<(), String> = async {
            let mut c = self.connection().await?;
            tokio::time::timeout(
                self.inner.op_timeout,
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("EX")
                    .arg(secs)
                    .query_async::<()>(&mut c),
            )
            .await
            .map_err(|_| "Redis SET timed out".to_owned())?
            .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = result {
            self.forget_connection().await;
            self.mark_down(endpoint, &e);
        }
    }
}
