//! Full-text search in PostgreSQL, with facets and highlights, over the tables the
//! tableinator writes (`artists`, `labels`, `masters`, `releases`, each with its generated
//! `search` tsvector and GIN index).
//!
//! One statement answers a search: a materialised CTE of the matches (ranked with
//! `ts_rank`), then, from it, the page (with `ts_headline` highlights, computed for the
//! page's rows only), the total, and the facets (type, genre, decade), returned as one
//! JSON document. One round trip, the matching done once.
//!
//! [`record`] reads one stored record (the node details' `record`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use super::params::{ApiError, EntityType};

/// The kinds a search covers, as the `types` parameter names them.
pub const SEARCH_TYPES: [&str; 4] = ["artist", "label", "master", "release"];

/// A small pool of PostgreSQL connections, opened on demand and replaced when closed.
pub struct PgPool {
    config: tokio_postgres::Config,
    slots: Vec<Mutex<Option<Arc<Client>>>>,
    next: AtomicUsize,
    timeout: Duration,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("size", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl PgPool {
    /// A pool of `size` connections to `config` (a statement may run `timeout` at most,
    /// server-side too).
    #[must_use]
    pub fn new(mut config: tokio_postgres::Config, size: usize, timeout: Duration) -> Self {
        let ms = timeout.as_millis();
        config
            .application_name("discogsography-explore")
            .options(format!("-c statement_timeout={ms}"))
            .connect_timeout(timeout.min(Duration::from_secs(10)));
        Self {
            config,
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            timeout,
        }
    }

    /// A connection (round robin; several requests share one, pipelined).
    async fn client(&self) -> Result<Arc<Client>, ApiError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| ApiError::database("connecting to PostgreSQL", &e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection ended.");
            }
        });
        let client = Arc::new(client);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Runs a statement returning one `text` column holding JSON.
    async fn json(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Value, ApiError> {
        self.json_opt(sql, params)
            .await?
            .ok_or_else(|| ApiError::database("a search", &"no row"))
    }

    /// Runs a statement returning at most one row of one `text` column holding JSON.
    async fn json_opt(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Value>, ApiError> {
        let work = async {
            let client = self.client().await?;
            let row = client.query_opt(sql, params).await.map_err(|e| {
                if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
                    ApiError::Timeout("the PostgreSQL query took too long".into())
                } else {
                    ApiError::database("a PostgreSQL query", &e)
                }
            })?;
            let Some(row) = row else { return Ok(None) };
            let text: String = row.get(0);
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ApiError::database("reading a PostgreSQL answer", &e))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| ApiError::late("PostgreSQL", self.timeout))?
    }
}

/// The record of `kind` with `id` as the tableinator stored it (the whole parsed record:
/// profile, real name, urls, tracklist, formats, contact info…), `None` when the table has
/// no such row; genres and styles have no table (`None`).
///
/// # Errors
///
/// [`ApiError::Unavailable`] when PostgreSQL fails, [`ApiError::Timeout`] past the limit.
pub async fn record(
    pool: &PgPool,
    schema: &str,
    kind: EntityType,
    id: i64,
) -> Result<Option<Value>, ApiError> {
    let table = match kind {
        EntityType::Artist => "artists",
        EntityType::Label => "labels",
        EntityType::Master => "masters",
        EntityType::Release => "releases",
        EntityType::Genre | EntityType::Style => return Ok(None),
    };
    let s = quote(schema);
    pool.json_opt(
        &format!("SELECT data::text FROM {s}.{table} WHERE id = $1"),
        &[&id],
    )
    .await
}

/// `schema` as a quoted SQL identifier.
fn quote(schema: &str) -> String {
    format!("\"{}\"", schema.replace('"', "\"\""))
}

/// A validated search request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// The words (all required, `plainto_tsquery('simple', …)`).
    pub q: String,
    /// The kinds listed (a subset of [`SEARCH_TYPES`]).
    pub types: Vec<String>,
    /// Only masters and releases with one of these genres (artists and labels have none).
    pub genres: Vec<String>,
    /// Only masters and releases from this year on.
    pub year_min: Option<i32>,
    /// Only masters and releases up to this year.
    pub year_max: Option<i32>,
    /// Page size.
    pub limit: i64,
    /// Page start.
    pub offset: i64,
}

/// The search statement for tables in `schema` (a validated identifier).
fn search_sql(schema: &str) -> String {
    let s = quote(schema);
    // $1 q, $2 types, $3 genres (NULL: any), $4 year_min, $5 year_max, $6 limit, $7 offset.
    let filters = "($3::text[] IS NULL OR t.genres && $3) \
                   AND ($4::int IS NULL OR t.year >= $4) AND ($5::int IS NULL OR t.year <= $5)";
    let plain = "$3::text[] IS NULL AND $4::int IS NULL AND $5::int IS NULL";
    format!(
        "WITH q AS (SELECT plainto_tsquery('simple', $1) AS tsq), \
         hits AS MATERIALIZED ( \
           SELECT 'artist' AS kind, t.id, t.name AS name, NULL::int AS year, NULL::text[] AS genres, ts_rank(t.search, q.tsq) AS rank \
             FROM {s}.artists t, q WHERE t.search @@ q.tsq AND {plain} \
           UNION ALL \
           SELECT 'label', t.id, t.name, NULL::int, NULL::text[], ts_rank(t.search, q.tsq) \
             FROM {s}.labels t, q WHERE t.search @@ q.tsq AND {plain} \
           UNION ALL \
           SELECT 'master', t.id, t.title, t.year, t.genres, ts_rank(t.search, q.tsq) \
             FROM {s}.masters t, q WHERE t.search @@ q.tsq AND {filters} \
           UNION ALL \
           SELECT 'release', t.id, t.title, t.year, t.genres, ts_rank(t.search, q.tsq) \
             FROM {s}.releases t, q WHERE t.search @@ q.tsq AND {filters} \
         ), \
         listed AS (SELECT * FROM hits WHERE kind = ANY($2)), \
         page AS (SELECT * FROM listed ORDER BY rank DESC, kind, id LIMIT $6 OFFSET $7) \
         SELECT jsonb_build_object( \
           'total', (SELECT count(*) FROM listed), \
           'results', coalesce((SELECT jsonb_agg(jsonb_build_object( \
               'type', p.kind, 'id', p.id, 'name', p.name, \
               'highlight', ts_headline('simple', p.name, (SELECT tsq FROM q), \
                    'StartSel=<mark>, StopSel=</mark>, HighlightAll=true'), \
               'relevance', round(p.rank::numeric, 6), \
               'metadata', jsonb_build_object('year', p.year, 'genres', p.genres)) \
               ORDER BY p.rank DESC, p.kind, p.id) FROM page p), '[]'::jsonb), \
           'type_facets', (SELECT coalesce(jsonb_object_agg(kind, n), '{{}}'::jsonb) \
               FROM (SELECT kind, count(*) AS n FROM hits GROUP BY kind) k), \
           'genre_facets', coalesce((SELECT jsonb_agg(jsonb_build_object('name', g, 'count', n) ORDER BY n DESC, g) \
               FROM (SELECT g, count(*) AS n FROM listed, unnest(listed.genres) AS g \
                     GROUP BY g ORDER BY n DESC, g LIMIT 20) gs), '[]'::jsonb), \
           'decade_facets', coalesce((SELECT jsonb_agg(jsonb_build_object('decade', d, 'count', n) ORDER BY d) \
               FROM (SELECT (year / 10) * 10 AS d, count(*) AS n FROM listed \
                     WHERE year > 0 GROUP BY 1) ds), '[]'::jsonb) \
         )::text"
    )
}

/// Searches the tables of `schema`.
///
/// # Errors
///
/// [`ApiError::Unavailable`] when PostgreSQL fails, [`ApiError::Timeout`] past the limit.
pub async fn search(pool: &PgPool, schema: &str, r: &SearchRequest) -> Result<Value, ApiError> {
    let genres: Option<Vec<String>> = (!r.genres.is_empty()).then(|| r.genres.clone());
    let v = pool
        .json(
            &search_sql(schema),
            &[
                &r.q,
                &r.types,
                &genres,
                &r.year_min,
                &r.year_max,
                &r.limit,
                &r.offset,
            ],
        )
        .await?;
    let mut type_counts = serde_json::Map::new();
    for t in SEARCH_TYPES {
        type_counts.insert(
            t.into(),
            v["type_facets"].get(t).cloned().unwrap_or(Value::from(0)),
        );
    }
    let total = v["total"].as_i64().unwrap_or(0);
    let shown = v["results"].as_array().map_or(0, Vec::len);
    Ok(serde_json::json!({
        "query": r.q,
        "total": total,
        "facets": {"type": type_counts, "genre": v["genre_facets"], "decade": v["decade_facets"]},
        "results": v["results"],
        "pagination": {"limit": r.limit, "offset": r.offset,
                       "has_more": r.offset + i64::try_from(shown).unwrap_or(0) < total},
    }))
}
