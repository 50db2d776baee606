//! Integration tests for discogs-sink-pg against the real PostgreSQL (`scripts/services up`).
//!
//! Each test works in its own schema (from [`discogs_testkit::Scope`]) and drops it at the
//! end; without a server the tests skip with a printed reason (and fail under `CI=true`).

mod conformance;
mod faults;
mod first_load;
mod fixtures;
mod hot;
mod purge;
mod search;

use discogs_model::{RecordKind, Sink, SinkOutcome, SinkRecord};
use discogs_sink_pg::{PgSink, PgSinkConfig};
use discogs_testkit::{require, Scope, Service};
use tokio_postgres::{Client, NoTls};

/// A schema of its own, a sink writing into it and a plain client to inspect it.
pub(crate) struct TestDb {
    pub(crate) url: String,
    pub(crate) schema: String,
    pub(crate) client: Client,
}

impl TestDb {
    /// `None` (test skipped) when PostgreSQL is not reachable.
    pub(crate) async fn new(tag: &str) -> Option<TestDb> {
        let pg = require(Service::Postgres)?;
        let schema = Scope::new(tag).schema();
        let client = connect(pg.url()).await;
        Some(TestDb {
            url: pg.url().to_owned(),
            schema,
            client,
        })
    }

    pub(crate) fn config(&self) -> PgSinkConfig {
        PgSinkConfig::new(&self.url).schema(&self.schema)
    }

    pub(crate) fn sink(&self) -> PgSink {
        PgSink::new(self.config()).expect("valid config")
    }

    pub(crate) async fn count(&self, sql: &str) -> i64 {
        let sql = sql.replace("{s}", &format!("\"{}\"", self.schema));
        self.client
            .query_one(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }

    pub(crate) async fn drop_schema(self) {
        self.client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ))
            .await
            .expect("drop schema");
    }
}

pub(crate) async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("postgres connection ended: {e}");
        }
    });
    client
}

pub(crate) use discogs_testkit::shared_fixtures;

pub(crate) use discogs_testkit::read_records;

/// Writes `records` in batches of `batch`, summing the outcomes.
pub(crate) async fn load(
    sink: &mut PgSink,
    kind: RecordKind,
    records: &[SinkRecord<'_>],
    batch: usize,
) -> SinkOutcome {
    let mut total = SinkOutcome::default();
    for chunk in records.chunks(batch) {
        total += sink
            .write_batch(kind, chunk)
            .await
            .unwrap_or_else(|e| panic!("write_batch: {e:?}"));
    }
    total
}
