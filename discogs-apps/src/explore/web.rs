//! The explorer's routes: the page, its libraries, and the JSON API.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` , `/explore.js`, `/explore.css` | the page (built into the binary) |
//! | `GET /vendor/d3.min.js`, `/vendor/plotly.min.js` | D3.js and Plotly.js, read from `node_modules` (installed by `npm ci`, never a CDN) |
//! | `GET /api/openapi.json` | the OpenAPI 3 description of every API route |
//! | `GET /api/autocomplete` | `q`, `type`, `limit` |
//! | `GET /api/explore` | `type`, `id` or `name` |
//! | `GET /api/expand` | `type`, `id` or `name`, `category`, `limit`, `offset`, `before_year` |
//! | `GET /api/node/{id}` | `type` (graph details and the stored record from PostgreSQL) |
//! | `GET /api/trends` | `type`, `id` or `name` |
//! | `GET /api/trends/compare` | `items=type:key;type:key…` (2 to 5) |
//! | `GET /api/path` | `from_type`, `from_id`/`from_name`, `to_type`, `to_id`/`to_name`, `max_depth` |
//! | `GET /api/graph/stats`, `/api/explore/year-range`, `/api/genre-tree` | – |
//! | `GET /api/search` | `q`, `types`, `genres`, `year_min`, `year_max`, `limit`, `offset` |
//! | `GET /api/collaborators/{artist_id}` | `limit` |
//!
//! Answers carry `X-Cache: hit|miss|off`, hits also `X-Cache-Tier: memory|redis`. `/api/*`
//! is rate-limited per client address.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde_json::Value;

use super::cache::{Cache, Tier};
use super::graph::GraphQueries;
use super::limit::RateLimiter;
use super::params::{parse_id, ApiError, EntityRef, EntityType, Params};
use super::search::{self, PgPool, SearchRequest, SEARCH_TYPES};
use crate::metrics::Metrics;

const INDEX: &str = include_str!("../../web/explore/index.html");
const SCRIPT: &str = include_str!("../../web/explore/explore.js");
const STYLE: &str = include_str!("../../web/explore/explore.css");
const OPENAPI: &str = include_str!("../../web/explore/openapi.json");

/// The explorer's shared parts; clones share them.
#[derive(Clone, Debug)]
pub struct Explore {
    /// Neo4j queries.
    pub graph: GraphQueries,
    /// PostgreSQL connections.
    pub pg: Arc<PgPool>,
    /// The PostgreSQL schema of the tables.
    pub schema: String,
    /// The cache (in-process tier, then Redis).
    pub cache: Cache,
    /// Per-client limits.
    pub limiter: Arc<RateLimiter>,
    /// `/metrics`.
    pub metrics: Metrics,
    /// Where `npm ci` put the page's libraries.
    pub node_modules: PathBuf,
}

/// Every route of the explorer's port (the page and the API).
pub fn router(explore: Explore) -> Router {
    let api = Router::new()
        .route("/api/autocomplete", get(autocomplete))
        .route("/api/explore", get(explore_center))
        .route("/api/expand", get(expand))
        .route("/api/node/{id}", get(node))
        .route("/api/trends", get(trends))
        .route("/api/trends/compare", get(trends_compare))
        .route("/api/path", get(path))
        .route("/api/graph/stats", get(stats))
        .route("/api/explore/year-range", get(year_range))
        .route("/api/genre-tree", get(genre_tree))
        .route("/api/search", get(search_handler))
        .route("/api/collaborators/{artist_id}", get(collaborators))
        .fallback(|| async { ApiError::NotFound("no such API route".into()) })
        .route_layer(axum::middleware::from_fn_with_state(
            explore.clone(),
            rate_limit,
        ))
        .with_state(explore.clone());
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/explore.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/explore.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/api/openapi.json",
            get(|| async { asset("application/json", OPENAPI) }),
        )
        .route("/vendor/{file}", get(vendor))
        .with_state(explore)
        .merge(api)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The page's libraries, from `node_modules`.
async fn vendor(State(e): State<Explore>, Path(file): Path<String>) -> Response {
    let relative = match file.as_str() {
        "d3.min.js" => "d3/dist/d3.min.js",
        "plotly.min.js" => "plotly.js-dist-min/plotly.min.js",
        _ => return ApiError::NotFound(format!("no library {file:?}")).into_response(),
    };
    let path = e.node_modules.join(relative);
    match tokio::fs::read(&path).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            body,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(path = %path.display(), error = %err, "Library missing: run `npm ci` in discogs-apps/web/explore (or set EXPLORE_NODE_MODULES).");
            ApiError::NotFound(format!("library {file} is not installed (npm ci)")).into_response()
        }
    }
}

async fn rate_limit(State(e): State<Explore>, request: Request, next: Next) -> Response {
    if let Some(ConnectInfo(addr)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        if let Err(wait) = e.limiter.check(addr.ip()) {
            e.metrics
                .counter(
                    "rate_limited_total",
                    "Requests refused by the per-client limit.",
                    &[],
                )
                .inc();
            return ApiError::TooManyRequests(wait).into_response();
        }
    }
    next.run(request).await
}

impl Explore {
    /// Answers from the cache, or computes, stores and answers; counts the request.
    async fn cached<F, Fut>(&self, endpoint: &'static str, params: &Params, compute: F) -> Response
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value, ApiError>>,
    {
        let key = self.cache.key(endpoint, &params.canonical());
        let (response, status) = if let Some((body, tier)) = self.cache.get(endpoint, &key).await {
            (json_response(body, "hit", Some(tier)), StatusCode::OK)
        } else {
            match compute().await {
                Ok(v) => {
                    let body = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
                    self.cache.put(endpoint, &key, &body).await;
                    let state = if self.cache.enabled() { "miss" } else { "off" };
                    (json_response(body, state, None), StatusCode::OK)
                }
                Err(err) => {
                    let status = err.status();
                    (err.into_response(), status)
                }
            }
        };
        self.metrics
            .counter(
                "requests_total",
                "API requests by endpoint and status.",
                &[("endpoint", endpoint), ("status", status.as_str())],
            )
            .inc();
        response
    }
}

fn json_response(body: Bytes, cache: &'static str, tier: Option<Tier>) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    let headers = r.headers_mut();
    headers.insert("x-cache", HeaderValue::from_static(cache));
    if let Some(tier) = tier {
        headers.insert("x-cache-tier", HeaderValue::from_static(tier.as_str()));
    }
    r
}

/// Parses, or answers the 400.
macro_rules! params {
    ($raw:expr, $allowed:expr) => {
        match Params::parse($raw.as_deref(), $allowed) {
            Ok(p) => p,
            Err(e) => return e.into_response(),
        }
    };
}

/// Runs a validation, or answers its 400.
macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => return ApiError::into_response(err),
        }
    };
}

const CENTER_TYPES: [EntityType; 4] = [
    EntityType::Artist,
    EntityType::Label,
    EntityType::Genre,
    EntityType::Style,
];

async fn autocomplete(State(e): State<Explore>, RawQuery(raw): RawQuery) -> Response {
    let p = params!(raw, &["q", "type", "limit"]);
    let q = check!(p.query_text("q", 2, 100)).to_owned();
    let kind = if p.text("type").is_some() {
        check!(p.entity_type("type", &EntityType::ALL))
    } else {
        EntityType::Artist
    };
    let limit = check!(p.int("limit", 1, 50, 10));
    e.cached("autocomplete", &p, || e.graph.autocomplete(kind, &q, limit))
        .await
}

async fn explore_center(State(e): State<Explore>, RawQuery(raw): RawQuery) -> Response {
    let p = params!(raw, &["type", "id", "name"]);
    let kind = check!(p.entity_type("type", &CENTER_TYPES));
    let r = check!(p.entity_ref("", kind));
    e.cached("explore", &p, || e.graph.explore(kind, &r)).await
}

async fn expand(State(e): State<Explore>, RawQuery(raw): RawQuery) -> Response {
    let p = params!(
        raw,
        &[
            "type",
            "id",
            "name",
            "category",
            "limit",
            "offset",
            "before_year"
        ]
    );
    let kind = check!(p.entity_type("type", &CENTER_TYPES));
    let r = check!(p.entity_ref("", kind));
    let category = check!(p.required("category")).to_owned();
    let limit = check!(p.int("limit", 1, 200, 50));
    let offset = check!(p.int("offset", 0, 1_000_000, 0));
    let before = check!(p.opt_int("before_year", 1800, 2100));
    // Refuse an unknown category before any query.
    if !super::graph::categories(kind)
        .iter()
        .any(|(c, _)| *c == category)
    {
        let names: Vec<&str> = super::graph::categories(kind)
            .iter()
            .map(|(c, _)| *c)
            .collect();
        return ApiError::BadRequest(format!(
            "category of a {} must be one of {}, not {category:?}",
            kind.as_str(),
            names.join(", ")
        ))
        .into_response();
    }
    e.cached("expand", &p, || {
        e.graph.expand(kind, &r, &category, before, limit, offset)
    })
    .await
}

async fn node(
    State(e): State<Explore>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut p = params!(raw, &["type"]);
    let kind = check!(p.entity_type("type", &EntityType::ALL));
    let r = if kind.keyed_by_name() {
        EntityRef::Name(id.clone())
    } else {
        EntityRef::Id(check!(parse_id(&id)))
    };
    p = check!(Params::parse(
        Some(&format!("type={}&id={}", kind.as_str(), utf8_percent(&id))),
        &["type", "id"]
    ));
    e.cached("node", &p, || async {
        let id = match r {
            EntityRef::Id(id) => Some(id),
            EntityRef::Name(_) => None,
        };
        let (graph, record) = tokio::join!(
            async {
                let center = e.graph.resolve(kind, &r).await?;
                e.graph.node(&center).await
            },
            async {
                match id {
                    Some(id) => search::record(&e.pg, &e.schema, kind, id).await,
                    None => Ok(None),
                }
            }
        );
        node_details(kind, graph, record?)
    })
    .await
}

/// The graph's details of a node with the tableinator's record under `record`; a node only
/// one database knows is answered from that one, one neither knows is a 404.
fn node_details(
    kind: EntityType,
    graph: Result<Value, ApiError>,
    record: Option<Value>,
) -> Result<Value, ApiError> {
    let mut out = match (graph, &record) {
        (Ok(v), _) => v,
        (Err(ApiError::NotFound(_)), Some(rec)) => {
            let name = rec.get("name").or_else(|| rec.get("title")).cloned();
            serde_json::json!({"type": kind.as_str(), "id": rec["id"], "name": name})
        }
        (Err(err), _) => return Err(err),
    };
    if let Value::Object(map) = &mut out {
        if !kind.keyed_by_name() {
            map.insert("record".into(), record.unwrap_or(Value::Null));
        }
    }
    Ok(out)
}

/// Percent-encodes a path segment for a canonical query.
fn utf8_percent(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn trends(State(e): State<Explore>, RawQuery(raw): RawQuery) -> Response {
    let p = params!(raw, &["type", "id", "name"]);
    let kind = check!(p.entity_type("type", &CENTER_TYPES));
    let r = check!(p.entity_ref("", kind));
    e.cached("trends", &p, || async {
        let center = e.graph.resolve(kind, &r).await?;
        e.graph.trends(&center).await
    })
    .await
}

/// `items=artist:123;genre:Rock`: artists and labels by id, genres and styles by name.
fn compare_items(v: &str) -> Result<Vec<(EntityType, EntityRef)>, ApiError> {
    let mut out = Vec::new();
    for item in v.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (t, key) = item
            .split_once(':')
            .ok_or_else(|| ApiError::BadRequest(format!("item {item:?} is not type:key")))?;
        let kind = EntityType::parse(t)
            .filter(|k| CENTER_TYPES.contains(k))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "item {item:?}: type must be artist, label, genre or style"
                ))
            })?;
        let r = if kind.keyed_by_name() {
            EntityRef::Name(key.to_owned())
        } else {
            EntityRef::Id(parse_id(key)?)
        };
        out.push((kind, r));
    }
    if !(2..=5).contains(&out.len()) {
        return Err(ApiError::BadRequest(format!(
            "give 2 to 5 items to compare, not {}",
            out.len()
        )));
    }
    Ok(out)
}

async fn trends_compare(State(e): State<Explore>, RawQuery(raw): RawQuery) -> Response {
    let p = params!(raw, &["items"]);
    let items = check!(p.required("items").and_then(compare_items));
    e.cached("trends", &p, || async {
        let series = futures_util::future::try_join_all(items.iter().map(|(kind, r)| async {
            let center = e.graph.resolve(*kind, r).await?;
            e.graph.trends(&center).await
        }))
        .await?;
        Ok(serde_json::json!({ "series": series }))
    })
    .await
}

async fn path(State(e): State<Explore>, RawQuery(raw): RawQuery) -> Response {
    let p = params!(
        raw,
        &[
            "from_type",
            "from_id",
            "from_name",
            "to_type",
            "to_id",
            "to_name",
            "max_depth"
        ]
    );
    let from_kind = check!(p.entity_type("from_type", &EntityType::ALL));
    let to_kind = check!(p.entity_type("to_type", &EntityType::ALL));
    let from = check!(p.entity_ref("from_", from_kind));
    let to = check!(p.entity_ref("to_", to_kind));
    let depth = check!(p.int("max_depth", 1, 10, 6));
    e.cached("path", &p, || async {
        let (a, b) = tokio::try_join!(
            e.graph.resolve(from_kind, &from),
            e.graph.resolve(to_kind, &to)
        )?;
        e.graph.path(&a, &b, depth).await
    })
    .await
}

async fn stats(State(e): State<Explore>, RawQuery(raw): RawQuery) -> Response {
    let p = params!(raw, &[]);
    e.cached("stats", &p, || e.graph.stats()).await
}

async fn year_range(State(e): State<Explore>, RawQuery(raw): RawQuery) -> Response {
    let p = params!(raw, &[]);
    e.cached("year-range", &p, || e.graph.year_range()).await
}

async fn genre_tree(State(e): State<Explore>, RawQuery(raw): RawQuery) -> Response {
    let p = params!(raw, &[]);
    e.cached("genre-tree", &p, || e.graph.genre_tree()).await
}

fn csv(v: Option<&str>) -> Vec<String> {
    v.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn search_handler(State(e): State<Explore>, RawQuery(raw): RawQuery) -> Response {
    let p = params!(
        raw,
        &["q", "types", "genres", "year_min", "year_max", "limit", "offset"]
    );
    let q = check!(p.query_text("q", 2, 200)).to_owned();
    let mut types = csv(p.text("types"));
    if types.is_empty() {
        types = SEARCH_TYPES.iter().map(|t| (*t).to_owned()).collect();
    }
    if let Some(bad) = types.iter().find(|t| !SEARCH_TYPES.contains(&t.as_str())) {
        return ApiError::BadRequest(format!(
            "types must be among {}, not {bad:?}",
            SEARCH_TYPES.join(", ")
        ))
        .into_response();
    }
    let genres = csv(p.text("genres"));
    if genres.len() > 20 {
        return ApiError::BadRequest("at most 20 genres".into()).into_response();
    }
    let year = |name| -> Result<Option<i32>, ApiError> {
        Ok(p.opt_int(name, 1800, 2100)?
            .map(|y| i32::try_from(y).unwrap_or(0)))
    };
    let year_min = check!(year("year_min"));
    let year_max = check!(year("year_max"));
    let request = SearchRequest {
        q,
        types,
        genres,
        year_min,
        year_max,
        limit: check!(p.int("limit", 1, 100, 20)),
        offset: check!(p.int("offset", 0, 10_000, 0)),
    };
    e.cached("search", &p, || search::search(&e.pg, &e.schema, &request))
        .await
}

async fn collaborators(
    State(e): State<Explore>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let p = params!(raw, &["limit"]);
    let id = check!(parse_id(&id));
    let limit = check!(p.int("limit", 1, 100, 20));
    let key = check!(Params::parse(
        Some(&format!("id={id}&limit={limit}")),
        &["id", "limit"]
    ));
    e.cached("collaborators", &key, || async {
        let center = e
            .graph
            .resolve(EntityType::Artist, &EntityRef::Id(id))
            .await?;
        e.graph.collaborators(&center, limit).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_items_are_parsed() {
        let items = compare_items("artist:12; genre:Folk, World, & Country").unwrap();
        assert_eq!(items[0], (EntityType::Artist, EntityRef::Id(12)));
        assert_eq!(
            items[1],
            (
                EntityType::Genre,
                EntityRef::Name("Folk, World, & Country".into())
            )
        );
        assert!(compare_items("artist:12").is_err(), "one item");
        assert!(compare_items("artist:x;genre:Rock").is_err());
        assert!(compare_items("release:1;genre:Rock").is_err());
    }
}
