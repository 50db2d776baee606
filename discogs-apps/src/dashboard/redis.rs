//! Reading Redis: memory and hit rate from `INFO`.

use redis::aio::MultiplexedConnection;

use super::collect::Reader;
use super::snapshot::Redis;

/// The Redis source: one multiplexed connection, opened again after any failure.
pub(crate) struct RedisSource {
    client: Result<redis::Client, String>,
    connection: Option<MultiplexedConnection>,
}

impl std::fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSource")
            .field("connected", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisSource {
    /// A source for `url` (`redis://[:password@]host:port/db`); a bad URL makes every
    /// reading fail with the reason.
    pub(crate) fn new(url: &str) -> Self {
        Self {
            client: redis::Client::open(url).map_err(|e| format!("bad REDIS_URL: {e}")),
            connection: None,
        }
    }
}

impl Reader for RedisSource {
    type Data = Redis;

    /// One reading; the connection is kept only when it succeeds.
    async fn read(&mut self) -> Result<Redis, String> {
        let mut connection = match self.connection.take() {
            Some(c) => c,
            None => self
                .client
                .as_ref()
                .map_err(Clone::clone)?
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?,
        };
        let info: String = redis::cmd("INFO")
            .query_async(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        self.connection = Some(connection);
        Ok(parse_info(&info))
    }
}

/// The fields of `INFO` the dashboard shows.
pub(crate) fn parse_info(info: &str) -> Redis {
    let field = |key: &str| {
        info.lines().find_map(|line| {
            let (k, v) = line.trim_end_matches('\r').split_once(':')?;
            (k == key).then(|| v.to_owned())
        })
    };
    let number = |key: &str| field(key).and_then(|v| v.parse::<u64>().ok());
    let hits = number("keyspace_hits").unwrap_or(0);
    let misses = number("keyspace_misses").unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let hit_rate = (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64);
    // `db0:keys=12,expires=0,avg_ttl=0` per database.
    let keys = info
        .lines()
        .filter(|line| line.starts_with("db"))
        .filter_map(|line| {
            let (_, rest) = line.split_once(":keys=")?;
            rest.split(',').next()?.trim().parse::<u64>().ok()
        })
        .sum();
    Redis {
        version: field("redis_version"),
        used_memory: number("used_memory").unwrap_or(0),
        used_memory_peak: number("used_memory_peak"),
        maxmemory: number("maxmemory"),
        connected_clients: number("connected_clients"),
        keyspace_hits: hits,
        keyspace_misses: misses,
        hit_rate,
        ops_per_second: field("instantaneous_ops_per_sec").and_then(|v| v.parse().ok()),
        evicted_keys: number("evicted_keys"),
        keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info() {
        let info = "# Server\r\nredis_version:7.0.15\r\n# Memory\r\nused_memory:1048576\r\n\
                    maxmemory:0\r\n# Stats\r\nkeyspace_hits:30\r\nkeyspace_misses:10\r\n\
                    instantaneous_ops_per_sec:4\r\n# Keyspace\r\ndb0:keys=12,expires=0,avg_ttl=0\r\n\
                    db3:keys=3,expires=1,avg_ttl=5\r\n";
        let r = parse_info(info);
        assert_eq!(r.version.as_deref(), Some("7.0.15"));
        assert_eq!(r.used_memory, 1_048_576);
        assert_eq!(r.hit_rate, Some(0.75));
        assert_eq!(r.keys, 15);
        assert_eq!(r.ops_per_second, Some(4.0));
        assert_eq!(
            parse_info("keyspace_hits:0\nkeyspace_misses:0\n").hit_rate,
            None,
            "no lookups yet: no rate, not 0 %"
        );
    }
}
