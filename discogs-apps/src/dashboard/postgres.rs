//! Reading PostgreSQL: size of the database, sessions, and rows per table of the watched
//! schemas, from the catalogs and the statistics views only (no `count(*)`, no lock on any
//! table, so a long load never blocks the dashboard and the dashboard never slows it).

use tokio_postgres::{Client, NoTls};

use super::collect::Reader;
use super::snapshot::{Postgres, TableStats};

const SUMMARY: &str = "SELECT current_setting('server_version'), current_database(), \
    pg_database_size(current_database())::int8, \
    (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database())::int8";

// Live rows from the statistics collector when it has seen the table, else the planner's
// estimate (`reltuples` is -1 for a table never analysed, since PostgreSQL 14).
const TABLES: &str = "SELECT n.nspname::text, c.relname::text, \
    s.n_live_tup::int8, c.reltuples::float8, \
    coalesce(s.n_tup_ins, 0)::int8, coalesce(s.n_tup_upd, 0)::int8, coalesce(s.n_tup_del, 0)::int8, \
    (c.relpages::int8 * current_setting('block_size')::int8) \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
    WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1) \
    ORDER BY n.nspname, c.relname LIMIT 500";

/// The PostgreSQL source: one connection, opened again after any failure.
pub(crate) struct PgSource {
    config: tokio_postgres::Config,
    schemas: Vec<String>,
    client: Option<Client>,
}

impl std::fmt::Debug for PgSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSource")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("schemas", &self.schemas)
            .finish_non_exhaustive()
    }
}

impl PgSource {
    pub(crate) fn new(mut config: tokio_postgres::Config, schemas: Vec<String>) -> Self {
        config
            .application_name("discogsography-dashboard")
            // A backend never works on for a reading the dashboard gave up on.
            .options("-c statement_timeout=5000 -c lock_timeout=1000");
        Self {
            config,
            schemas,
            client: None,
        }
    }

    async fn connect(&self) -> Result<Client, String> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(|e| describe(&e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "Dashboard's PostgreSQL connection ended.");
            }
        });
        Ok(client)
    }
}

impl Reader for PgSource {
    type Data = Postgres;

    /// One reading. The connection is kept only when the reading succeeds, so a failed or
    /// abandoned (timed out) reading starts the next one on a fresh connection.
    async fn read(&mut self) -> Result<Postgres, String> {
        let client = match self.client.take() {
            Some(c) if !c.is_closed() => c,
            _ => self.connect().await?,
        };
        let reading = read_with(&client, &self.schemas).await?;
        self.client = Some(client);
        Ok(reading)
    }
}

async fn read_with(client: &Client, schemas: &[String]) -> Result<Postgres, String> {
    let row = client
        .query_one(SUMMARY, &[])
        .await
        .map_err(|e| describe(&e))?;
    let version: String = row.get(0);
    let database: String = row.get(1);
    let size: i64 = row.get(2);
    let connections: i64 = row.get(3);
    let rows = client
        .query(TABLES, &[&schemas])
        .await
        .map_err(|e| describe(&e))?;
    let tables = rows
        .iter()
        .map(|r| {
            let live: Option<i64> = r.get(2);
            let estimate: f64 = r.get(3);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let planner = (estimate >= 0.0).then(|| estimate.round() as u64);
            TableStats {
                schema: r.get(0),
                name: r.get(1),
                rows_estimate: live
                    .and_then(|n| u64::try_from(n).ok())
                    .filter(|n| *n > 0 || planner.is_none_or(|p| p == 0))
                    .or(planner),
                inserted: unsigned(r.get(4)),
                updated: unsigned(r.get(5)),
                deleted: unsigned(r.get(6)),
                size_bytes: unsigned(r.get(7)),
            }
        })
        .collect();
    Ok(Postgres {
        version,
        database,
        size_bytes: unsigned(size),
        connections: unsigned(connections),
        tables,
    })
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The server's message when there is one ("password authentication failed..."), not
/// just "db error".
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}
