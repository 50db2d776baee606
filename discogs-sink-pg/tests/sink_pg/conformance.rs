//! The shared Sink conformance suite, run against PostgreSQL.

use discogs_model::conformance::{self, Harness};
use discogs_model::{Record, RecordHash, RecordKind};
use discogs_sink_pg::{PgSink, PgSinkConfig};

use crate::TestDb;

struct PgHarness {
    tag: &'static str,
    dbs: Vec<TestDb>,
    reader: Option<PgSink>,
}

impl PgHarness {
    async fn new(tag: &'static str) -> Option<PgHarness> {
        // Only to skip early when PostgreSQL is absent.
        let db = TestDb::new(tag).await?;
        Some(PgHarness {
            tag,
            dbs: vec![db],
            reader: None,
        })
    }

    async fn cleanup(self) {
        for db in self.dbs {
            db.drop_schema().await;
        }
    }
}

impl Harness for PgHarness {
    type Sink = PgSink;

    async fn sink(&mut self) -> PgSink {
        let db = TestDb::new(self.tag).await.expect("PostgreSQL went away");
        let mut reader = db.sink();
        reader.migrate().await.expect("migrate");
        let sink = db.sink();
        self.reader = Some(reader);
        self.dbs.push(db);
        sink
    }

    async fn unreachable_sink(&mut self) -> PgSink {
        let config = PgSinkConfig {
            connect_timeout_secs: 2,
            ..PgSinkConfig::new("postgres://discogsography:x@127.0.0.1:1/discogsography")
        };
        PgSink::new(config).expect("valid config")
    }

    async fn stored_hash(&mut self, kind: RecordKind, id: u64) -> Option<RecordHash> {
        let reader = self.reader.as_mut().expect("sink() first");
        reader
            .get(kind, id)
            .await
            .expect("read back")
            .map(|(_, h)| h)
    }

    async fn stored_record(&mut self, kind: RecordKind, id: u64) -> Option<Record<'static>> {
        let reader = self.reader.as_mut().expect("sink() first");
        reader
            .get(kind, id)
            .await
            .expect("read back")
            .map(|(r, _)| r)
    }
}

macro_rules! conformance_tests {
    ($($name:ident),*) => {$(
        #[tokio::test]
        async fn $name() {
            let Some(mut h) = PgHarness::new(stringify!($name)).await else { return };
            conformance::$name(&mut h).await;
            h.cleanup().await;
        }
    )*};
}

conformance_tests!(
    write_batch,
    idempotent_rewrite,
    changed_record,
    dangling_references,
    retry_classification
);

/// Data the server refuses (a NUL character in text) is a permanent error, classified from
/// the SQLSTATE (class 22, data exception), and the batch writes nothing.
#[tokio::test]
async fn data_the_server_refuses_is_a_permanent_error() {
    use discogs_model::{Artist, Sink, SinkRecord};
    let Some(db) = TestDb::new("pg_refused").await else {
        return;
    };
    let mut sink = db.sink();
    let bad = SinkRecord::new(Record::Artist(Artist {
        id: 1,
        name: "Nul\0Name".into(),
        ..Artist::default()
    }));
    let err = sink
        .write_batch(RecordKind::Artist, &[bad])
        .await
        .expect_err("NUL in text refused");
    let code = err.sqlstate().map(str::to_owned);
    assert!(
        code.as_deref().is_some_and(|c| c.starts_with("22")),
        "SQLSTATE {code:?}: {err:?}"
    );
    assert!(!err.is_retriable(), "{err:?}");
    assert_eq!(db.count("SELECT count(*) FROM {s}.artists").await, 0);
    // The sink is still usable after the refused batch.
    let good = SinkRecord::new(Record::Artist(Artist {
        id: 2,
        name: "Fine".into(),
        ..Artist::default()
    }));
    assert_eq!(
        sink.write_batch(RecordKind::Artist, &[good])
            .await
            .unwrap()
            .inserted,
        1
    );
    db.drop_schema().await;
}
