//! Cache-aside in two tiers, fail-open: a small in-process tier in front of Redis.
//!
//! A request's answer is stored under `{prefix}{endpoint}:{sha256 of its canonical
//! parameters}` with the endpoint's time to live ([`ttl`]) in Redis, and for a short time
//! (at most [`CacheConfig::memory_ttl`]) in the process itself ([`MemoryTier`]: bounded in
//! bytes, oldest generation dropped first). A lookup tries the process, then Redis (a Redis
//! hit is kept in the process too), then the databases answer and both tiers store it.
//!
//! Redis is an accelerator, never a dependency: every Redis operation has a short time
//! limit, and after a failure Redis is skipped for a moment ([`RETRY_AFTER`]) instead of
//! slowing every request down; the answer then comes from the databases. Hits and misses
//! are counted per tier in `/metrics` (`explore_cache_hits_total{endpoint,tier}`,
//! `explore_cache_misses_total{endpoint,tier}`), Redis failures in
//! `explore_cache_errors_total{endpoint}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use sha2::{Digest as _, Sha256};

use crate::metrics::Metrics;

/// How long Redis is skipped after it failed.
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

/// Where a cached answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tier {
    /// The in-process tier.
    Memory,
    /// Redis.
    Redis,
}

impl Tier {
    /// The tier's label in `/metrics` and `X-Cache-Tier`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
        }
    }
}

/// The cache's settings.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Redis URL; `None` or empty: no Redis tier.
    pub redis_url: Option<String>,
    /// Prefix of the Redis keys.
    pub prefix: String,
    /// Time limit of each Redis operation.
    pub op_timeout: Duration,
    /// Bytes the in-process tier may hold (answers and keys); 0: no in-process tier.
    pub memory_bytes: usize,
    /// How long an answer stays in the process (never longer than its [`ttl`]).
    pub memory_ttl: Duration,
}

/// The cache; clones share both tiers.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    client: Option<redis::Client>,
    prefix: String,
    op_timeout: Duration,
    /// The shared multiplexed connection: cloned under a read lock, so requests never queue
    /// behind each other here; `connecting` serialises (re)connecting only.
    connection: RwLock<Option<MultiplexedConnection>>,
    connecting: tokio::sync::Mutex<()>,
    down_until: Mutex<Option<Instant>>,
    memory: Option<MemoryTier>,
    metrics: Metrics,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("redis", &self.inner.client.is_some())
            .field("memory", &self.inner.memory.is_some())
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache with `config`'s tiers, counting in `metrics`.
    ///
    /// # Errors
    ///
    /// When the Redis URL cannot be understood.
    pub fn new(config: &CacheConfig, metrics: Metrics) -> anyhow::Result<Self> {
        let client = match config.redis_url.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => Some(
                redis::Client::open(u)
                    .map_err(|e| anyhow::anyhow!("REDIS_URL cannot be used: {e}"))?,
            ),
            None => None,
        };
        let memory = (config.memory_bytes > 0 && !config.memory_ttl.is_zero())
            .then(|| MemoryTier::new(config.memory_bytes, config.memory_ttl));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                prefix: config.prefix.clone(),
                op_timeout: config.op_timeout,
                connection: RwLock::new(None),
                connecting: tokio::sync::Mutex::new(()),
                down_until: Mutex::new(None),
                memory,
                metrics,
            }),
        })
    }

    /// Whether any tier is on.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.redis_enabled() || self.inner.memory.is_some()
    }

    /// Whether a Redis URL was given.
    #[must_use]
    pub fn redis_enabled(&self) -> bool {
        self.inner.client.is_some()
    }

    /// The key of an answer.
    #[must_use]
    pub fn key(&self, endpoint: &str, canonical: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = Sha256::digest(canonical.as_bytes());
        let prefix = &self.inner.prefix;
        let mut key = String::with_capacity(prefix.len() + endpoint.len() + 33);
        key.push_str(prefix);
        key.push_str(endpoint);
        key.push(':');
        for b in &digest[..16] {
            key.push(char::from(HEX[usize::from(b >> 4)]));
            key.push(char::from(HEX[usize::from(b & 15)]));
        }
        key
    }

    fn count(&self, name: &str, help: &str, labels: &[(&str, &str)]) {
        self.inner.metrics.counter(name, help, labels).inc();
    }

    fn count_lookup(&self, endpoint: &str, tier: Tier, hit: bool) {
        let labels = [("endpoint", endpoint), ("tier", tier.as_str())];
        if hit {
            self.count(
                "cache_hits_total",
                "Answers served from a cache tier.",
                &labels,
            );
        } else {
            self.count(
                "cache_misses_total",
                "Lookups a cache tier could not answer (the next tier or the databases did).",
                &labels,
            );
        }
    }

    fn is_down(&self) -> bool {
        let mut down = self
            .inner
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
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
            &[("endpoint", endpoint)],
        );
        let mut down = self
            .inner
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if down.is_none() {
            tracing::warn!(
                error,
                "Redis cache unavailable; answering from the databases."
            );
        }
        *down = Some(Instant::now() + RETRY_AFTER);
    }

    fn current_connection(&self) -> Option<MultiplexedConnection> {
        self.inner
            .connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn connection(&self) -> Result<MultiplexedConnection, String> {
        if let Some(c) = self.current_connection() {
            return Ok(c);
        }
        let _connecting = self.inner.connecting.lock().await;
        if let Some(c) = self.current_connection() {
            return Ok(c); // another request connected meanwhile
        }
        let client = self.inner.client.as_ref().ok_or("no cache")?;
        let c = tokio::time::timeout(
            self.inner.op_timeout * 4,
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| "connecting to Redis timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        *self
            .inner
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(c.clone());
        Ok(c)
    }

    fn forget_connection(&self) {
        *self
            .inner
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The stored answer under `key` and the tier it came from; `None` on a miss in every
    /// tier, when no tier is on, or when Redis fails.
    pub async fn get(&self, endpoint: &str, key: &str) -> Option<(Bytes, Tier)> {
        if let Some(memory) = &self.inner.memory {
            let found = memory.get(key);
            self.count_lookup(endpoint, Tier::Memory, found.is_some());
            if let Some(body) = found {
                return Some((body, Tier::Memory));
            }
        }
        if !self.redis_enabled() || self.is_down() {
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
            Ok(found) => {
                self.count_lookup(endpoint, Tier::Redis, found.is_some());
                let body = Bytes::from(found?);
                if let Some(memory) = &self.inner.memory {
                    memory.put(key, body.clone(), ttl(endpoint));
                }
                Some((body, Tier::Redis))
            }
            Err(e) => {
                self.forget_connection();
                self.mark_down(endpoint, &e);
                None
            }
        }
    }

    /// Stores `value` under `key` in every tier for the endpoint's [`ttl`] (the in-process
    /// tier for less); Redis failures only counted.
    pub async fn put(&self, endpoint: &str, key: &str, value: &Bytes) {
        if let Some(memory) = &self.inner.memory {
            memory.put(key, value.clone(), ttl(endpoint));
        }
        if !self.redis_enabled() || self.is_down() {
            return;
        }
        let secs = ttl(endpoint).as_secs();
        let result: Result<(), String> = async {
            let mut c = self.connection().await?;
            tokio::time::timeout(
                self.inner.op_timeout,
                redis::cmd("SET")
                    .arg(key)
                    .arg(value.as_ref())
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
            self.forget_connection();
            self.mark_down(endpoint, &e);
        }
    }
}

/// The in-process tier: answers for a short time, at most `limit` bytes.
///
/// Two generations of entries: new and refreshed entries go into the current one; when it
/// holds half the limit, it becomes the previous one and the previous is dropped. A hit in
/// the previous generation moves the entry to the current one, so what is asked for stays
/// and what is not goes within two generations (an approximate LRU with O(1) operations and
/// one short lock). Entries expire after `ttl` whatever their generation.
#[derive(Debug)]
pub struct MemoryTier {
    half: usize,
    ttl: Duration,
    generations: Mutex<Generations>,
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<String, Entry>,
    current_bytes: usize,
    previous: HashMap<String, Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    body: Bytes,
    expires: Instant,
}

/// What an entry counts against the limit: its key and answer and a map slot.
fn weight(key: &str, body: &Bytes) -> usize {
    key.len() + body.len() + 64
}

impl MemoryTier {
    /// A tier of at most `limit` bytes whose entries live at most `ttl`.
    #[must_use]
    pub fn new(limit: usize, ttl: Duration) -> Self {
        Self {
            half: (limit / 2).max(1),
            ttl,
            generations: Mutex::new(Generations::default()),
        }
    }

    /// The answer under `key` if it is there and fresh.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let now = Instant::now();
        let mut g = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = g.current.get(key) {
            if e.expires > now {
                return Some(e.body.clone());
            }
            let gone = g.current.remove(key).map(|e| weight(key, &e.body));
            g.current_bytes -= gone.unwrap_or(0);
            return None;
        }
        let e = g.previous.remove(key)?;
        if e.expires <= now {
            return None;
        }
        let body = e.body.clone();
        g.insert(key.to_owned(), e, self.half);
        Some(body)
    }

    /// Keeps `body` under `key` for the tier's time to live or `ttl`, the shorter; an
    /// answer larger than half the limit is not kept.
    pub fn put(&self, key: &str, body: Bytes, ttl: Duration) {
        if weight(key, &body) > self.half {
            return;
        }
        let expires = Instant::now() + self.ttl.min(ttl);
        let mut g = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.previous.remove(key);
        g.insert(key.to_owned(), Entry { body, expires }, self.half);
    }

    /// Bytes held (both generations; for tests and metrics).
    #[must_use]
    pub fn bytes(&self) -> usize {
        let g = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.current_bytes
            + g.previous
                .iter()
                .map(|(k, e)| weight(k, &e.body))
                .sum::<usize>()
    }
}

impl Generations {
    fn insert(&mut self, key: String, entry: Entry, half: usize) {
        let added = weight(&key, &entry.body);
        if let Some(old) = self.current.insert(key.clone(), entry) {
            self.current_bytes -= weight(&key, &old.body);
        }
        self.current_bytes += added;
        if self.current_bytes > half {
            // The current generation is full: it becomes the previous one, whose entries
            // are dropped.
            self.previous = std::mem::take(&mut self.current);
            self.current_bytes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn keys_are_prefix_endpoint_and_half_the_digest_in_hex() {
        let config = CacheConfig {
            redis_url: None,
            prefix: "explore:".into(),
            op_timeout: Duration::from_millis(100),
            memory_bytes: 0,
            memory_ttl: Duration::from_secs(1),
        };
        let cache = Cache::new(&config, crate::metrics::Metrics::new("t")).unwrap();
        let digest = Sha256::digest(b"q=abc");
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            cache.key("autocomplete", "q=abc"),
            format!("explore:autocomplete:{hex}")
        );
    }

    #[test]
    fn memory_tier_answers_until_expiry() {
        let m = MemoryTier::new(1 << 20, Duration::from_millis(50));
        assert_eq!(m.get("a"), None);
        m.put(
            "a",
            Bytes::from_static(b"{\"v\":1}"),
            Duration::from_secs(60),
        );
        assert_eq!(m.get("a"), Some(Bytes::from_static(b"{\"v\":1}")));
        // The endpoint's own time to live caps the tier's.
        m.put("b", body(10), Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(m.get("a"), None, "expired after the tier's time to live");
        assert_eq!(m.get("b"), None);
        assert_eq!(m.bytes(), 0, "expired entries are removed when met");
    }

    #[test]
    fn memory_tier_stays_within_its_limit_and_keeps_what_is_used() {
        let limit = 100 * (weight("k000", &body(100)));
        let m = MemoryTier::new(limit, Duration::from_secs(60));
        let long = Duration::from_secs(60);
        for i in 0..1_000 {
            m.put(&format!("k{i:03}"), body(100), long);
            // k000 is asked for all along: it moves to the current generation each time
            // its generation is retired, so it stays.
            assert!(m.get("k000").is_some(), "k000 kept after {i} puts");
            assert!(m.bytes() <= limit, "{} > {limit} after {i} puts", m.bytes());
        }
        // The newest entries stay (checked newest first: moving the older of them to the
        // current generation does not fill it).
        for i in (960..1_000).rev() {
            assert!(m.get(&format!("k{i:03}")).is_some(), "k{i:03} kept");
        }
        assert!(m.get("k000").is_some(), "the one in use stays");
        assert!(m.get("k001").is_none(), "an old unused one went");
        // Too large for the tier: not kept (Redis still has it).
        m.put("big", body(limit), long);
        assert_eq!(m.get("big"), None);
    }
}
