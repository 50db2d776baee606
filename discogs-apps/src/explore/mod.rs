//! The explore service (port 8006, health on 8007): search Discogs, walk the graph, chart
//! trends, find how two entities connect.
//!
//! A JSON API over Neo4j (the graphinator's graph) and PostgreSQL (the tableinator's
//! tables), with a Redis cache in front ([`cache`]: cache-aside, fail-open), per-client
//! rate limits ([`limit`]), and the page (`web/explore/`: D3.js force graph, Plotly.js
//! trends, path finder, search with facets) served by the same binary; the page's
//! libraries come from npm (`web/explore/package.json`, `npm ci`) and are read from
//! `node_modules`. The routes are listed in [`web`]; their OpenAPI description is served
//! at `/api/openapi.json`.
//!
//! | module | job |
//! |---|---|
//! | [`params`] | query parameters, validation, the JSON errors |
//! | [`graph`] | the Neo4j queries |
//! | [`batch`] | autocomplete, explore and expand lookups that arrive together share a Neo4j statement |
//! | [`search`] | full-text search in PostgreSQL, with facets and highlights |
//! | [`cache`] | Redis cache-aside, fail-open, hits and misses in `/metrics` |
//! | [`limit`] | token bucket per client address |
//! | [`web`] | the routes |
//!
//! ```no_run
//! use clap::Parser as _;
//! use discogs_apps::explore::{self, ExploreArgs};
//! use discogs_apps::shutdown::Shutdown;
//!
//! # async fn example() -> anyhow::Result<()> {
//! let args = ExploreArgs::parse_from(["explore", "--port", "8006"]);
//! let shutdown = Shutdown::new();
//! shutdown.listen_for_signals();
//! explore::run(args, shutdown).await?;
//! # Ok(()) }
//! ```

pub mod batch;
pub mod cache;
pub mod graph;
pub mod limit;
pub mod params;
pub mod search;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{Neo4jArgs, PgConnectionArgs, Secret, ServiceArgs};
use crate::health::{self, Status};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// Where `npm ci` puts the page's libraries in a source checkout.
pub const DEFAULT_NODE_MODULES: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/web/explore/node_modules");

/// The explorer's flags and environment variables (the original system's names where it
/// had one).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "explore",
    version,
    about = "Graph explorer: the page and its JSON API (port 8006), health and metrics (port 8007).",
    mut_arg("health_port", |a| a.default_value("8007"))
)]
pub struct ExploreArgs {
    /// Health port, bind address and logging.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Port of the page and the API.
    #[arg(long, env = "EXPLORE_PORT", default_value_t = 8006)]
    pub port: u16,
    /// The graph database (the graphinator's flags; `NEO4J_NAMESPACE` is the graph's
    /// label prefix, empty in production).
    #[command(flatten)]
    pub neo4j: Neo4jArgs,
    /// Neo4j connections.
    #[arg(long, env = "EXPLORE_NEO4J_CONNECTIONS", default_value_t = 16)]
    pub neo4j_connections: usize,
    /// Autocomplete statements of one type running at once; lookups arriving meanwhile
    /// share the next statement (each with its own full-text call).
    #[arg(long, env = "EXPLORE_AUTOCOMPLETE_STATEMENTS", default_value_t = graph::AUTOCOMPLETE_STATEMENTS)]
    pub autocomplete_statements: usize,
    /// Explore statements of one shape (centre type, by id or by name) running at once;
    /// explores arriving meanwhile share the next statement (each with its own subquery).
    #[arg(long, env = "EXPLORE_EXPLORE_STATEMENTS", default_value_t = graph::EXPLORE_STATEMENTS)]
    pub explore_statements: usize,
    /// Expand statements of one shape (centre type, by id or by name, category, year
    /// cut-off or none, offset, limit) running at once; expands arriving meanwhile share
    /// the next statement (each with its own subquery).
    #[arg(long, env = "EXPLORE_EXPAND_STATEMENTS", default_value_t = graph::EXPAND_STATEMENTS)]
    pub expand_statements: usize,
    /// The relational database (server, user, password, database).
    #[command(flatten)]
    pub postgres: PgConnectionArgs,
    /// Schema of the tables (the tableinator's `POSTGRES_SCHEMA`).
    #[arg(long, env = "POSTGRES_SCHEMA", default_value = "public")]
    pub postgres_schema: String,
    /// PostgreSQL connections (each carries many requests, pipelined).
    #[arg(long, env = "EXPLORE_POSTGRES_CONNECTIONS", default_value_t = 4)]
    pub postgres_connections: usize,
    /// Redis URL for the cache; empty: no cache.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379/0",
        hide_env_values = true
    )]
    pub redis_url: Secret,
    /// Prefix of the cache's keys.
    #[arg(long, env = "EXPLORE_CACHE_PREFIX", default_value = "explore:")]
    pub cache_prefix: String,
    /// Milliseconds a Redis operation may take before the answer comes from the databases.
    #[arg(long, env = "EXPLORE_CACHE_TIMEOUT_MS", default_value_t = 100)]
    pub cache_timeout_ms: u64,
    /// Megabytes of answers kept in the process, in front of Redis; 0: none.
    #[arg(long, env = "EXPLORE_MEMORY_CACHE_MB", default_value_t = 64)]
    pub memory_cache_mb: u64,
    /// Milliseconds an answer stays in the process (Redis keeps it for the endpoint's time
    /// to live); 0: no in-process cache.
    #[arg(long, env = "EXPLORE_MEMORY_CACHE_MS", default_value_t = 10_000)]
    pub memory_cache_ms: u64,
    /// Seconds a query may take (504 past it).
    #[arg(long, env = "EXPLORE_QUERY_TIMEOUT_SECS", default_value_t = 30)]
    pub query_timeout_secs: u64,
    /// Milliseconds a shortest-path query may take (504 past it; 0 makes every path query
    /// time out, which only tests want).
    #[arg(long, env = "EXPLORE_PATH_TIMEOUT_MS", default_value_t = 20_000)]
    pub path_timeout_ms: u64,
    /// Requests per second each client address may send on average; 0: no limit.
    #[arg(long, env = "EXPLORE_RATE_LIMIT", default_value_t = 20.0)]
    pub rate_limit: f64,
    /// Requests a client may send at once.
    #[arg(long, env = "EXPLORE_RATE_BURST", default_value_t = 60)]
    pub rate_burst: u32,
    /// Where the page's libraries are (`npm ci` in `discogs-apps/web/explore`).
    #[arg(long, env = "EXPLORE_NODE_MODULES", default_value = DEFAULT_NODE_MODULES)]
    pub node_modules: PathBuf,
}

impl ExploreArgs {
    /// The service's parts, connected lazily (nothing is contacted here).
    ///
    /// # Errors
    ///
    /// When an address or the namespace cannot be used.
    pub fn build(&self, metrics: Metrics) -> anyhow::Result<web::Explore> {
        let names = discogs_sink_neo4j::GraphNames::new(&self.neo4j.neo4j_namespace)?;
        let config = neo4rs::ConfigBuilder::default()
            .uri(self.neo4j.neo4j_address.as_str())
            .user(self.neo4j.neo4j_username.as_str())
            .password(self.neo4j.neo4j_password.expose())
            .max_connections(self.neo4j_connections.max(1))
            .fetch_size(500)
            .build()
            .with_context(|| format!("NEO4J_ADDRESS {:?}", self.neo4j.neo4j_address))?;
        let graph = neo4rs::Graph::connect(config).context("the Neo4j driver")?;
        let timeout = Duration::from_secs(self.query_timeout_secs.max(1));
        let queries = graph::GraphQueries::new(
            graph,
            names,
            timeout,
            Duration::from_millis(self.path_timeout_ms),
        )
        .with_autocomplete_statements(self.autocomplete_statements, &metrics)
        .with_explore_statements(self.explore_statements, &metrics)
        .with_expand_statements(self.expand_statements, &metrics);
        let pg = self.postgres.tokio_config()?;
        let cache = cache::Cache::new(
            &cache::CacheConfig {
                redis_url: Some(self.redis_url.expose().to_owned()),
                prefix: self.cache_prefix.clone(),
                op_timeout: Duration::from_millis(self.cache_timeout_ms.max(1)),
                memory_bytes: usize::try_from(self.memory_cache_mb)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(1 << 20),
                memory_ttl: Duration::from_millis(self.memory_cache_ms),
            },
            metrics.clone(),
        )?;
        Ok(web::Explore {
            graph: queries,
            pg: Arc::new(search::PgPool::new(pg, self.postgres_connections, timeout)),
            schema: self.postgres_schema.clone(),
            cache,
            limiter: Arc::new(limit::RateLimiter::new(self.rate_limit, self.rate_burst)),
            metrics,
            node_modules: self.node_modules.clone(),
        })
    }
}

/// Serves the page and API on `api` and `/health` + `/metrics` on `health`, until
/// `shutdown`.
///
/// # Errors
///
/// When the configuration cannot be used or a server fails.
pub async fn serve_on(
    api: tokio::net::TcpListener,
    health_listener: tokio::net::TcpListener,
    args: ExploreArgs,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let metrics = Metrics::new("explore");
    let explore = args.build(metrics.clone())?;
    let status = Status::new("explore");
    status.set_state("serving");
    {
        let (namespace, schema) = (
            args.neo4j.neo4j_namespace.clone(),
            args.postgres_schema.clone(),
        );
        let cache = explore.cache.enabled();
        status.set_details(move || {
            let mut m = serde_json::Map::new();
            m.insert("neo4j_namespace".into(), namespace.clone().into());
            m.insert("postgres_schema".into(), schema.clone().into());
            m.insert("cache".into(), cache.into());
            m
        });
    }
    let app = web::router(explore).merge(health::router(status.clone(), metrics.clone()));
    tracing::info!(addr = ?api.local_addr().ok(), "🔎 Explore listening (page and /api).");
    let page = {
        let shutdown = shutdown.clone();
        async move {
            axum::serve(api, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move { shutdown.requested().await })
                .await
                .context("explore server")
        }
    };
    let health_app = health::router(status, metrics);
    tokio::try_join!(
        page,
        health::serve_on(health_listener, health_app, shutdown)
    )?;
    Ok(())
}

/// Binds both ports from `args` and serves until `shutdown`.
///
/// # Errors
///
/// When a port cannot be bound or a server fails.
pub async fn run(args: ExploreArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let api_addr = SocketAddr::from((args.service.health_bind, args.port));
    let api = tokio::net::TcpListener::bind(api_addr)
        .await
        .with_context(|| format!("binding explore to {api_addr}"))?;
    let health_addr = args.service.health_addr();
    let health_listener = tokio::net::TcpListener::bind(health_addr)
        .await
        .with_context(|| format!("binding the health server to {health_addr}"))?;
    serve_on(api, health_listener, args, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn defaults_and_secrets() {
        let args = ExploreArgs::parse_from(["explore", "--neo4j-password", "s3cret"]);
        assert_eq!(args.port, 8006);
        assert_eq!(args.service.health_port, 8007);
        assert!(!format!("{args:?}").contains("s3cret"));
    }
}
