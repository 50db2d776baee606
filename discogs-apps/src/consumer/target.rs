//! What the consumer services write to: [`Target`], and its two implementations over the
//! sinks, [`PgTarget`] (tableinator) and [`Neo4jTarget`] (graphinator).
//!
//! Besides writing batches, a target remembers which completion steps of an extraction it
//! has run (a row in `{schema}.consumer_steps` in PostgreSQL, a `{ns}ConsumerStep` node in
//! Neo4j), so that a redelivered or repeated `extraction_complete` does not run a purge or
//! the aggregates twice.

use std::future::Future;

use discogs_model::{RecordKind, Sink, SinkError, SinkOutcome, SinkRecord};
use discogs_sink_neo4j::{Neo4jSink, Neo4jSinkError};
use discogs_sink_pg::{PgSink, PgSinkError, PurgeOutcome, PurgeRefusal, PurgeRequest};
use tokio_postgres::{Client, NoTls};

/// A database a consumer service keeps current.
pub trait Target: Send + 'static {
    /// What can go wrong; [`SinkError::is_retriable`] decides between retry and DLQ.
    type Error: SinkError;

    /// Connects and creates the schema, so that a misconfiguration shows at start-up.
    fn prepare(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Writes one batch of `kind` from the extraction `version`; returns once committed.
    fn write(
        &mut self,
        kind: RecordKind,
        version: &str,
        records: &[SinkRecord<'_>],
    ) -> impl Future<Output = Result<SinkOutcome, Self::Error>> + Send;

    /// Deletes the records of `kind` with these ids (a `removed` message of extraction
    /// `version`); idempotent. Returns once committed.
    fn remove(
        &mut self,
        kind: RecordKind,
        version: &str,
        ids: &[u64],
    ) -> impl Future<Output = Result<Removal, Self::Error>> + Send;

    /// Whether the step `step` of extraction `version` is recorded as done.
    fn is_done(
        &mut self,
        version: &str,
        step: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Records the step `step` of extraction `version` as done (idempotent).
    fn mark_done(
        &mut self,
        version: &str,
        step: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The work once a file of `kind` has been delivered whole (`file_complete`, after
    /// the file's last batch); returns a line for the log when there was some. In
    /// PostgreSQL this ends a first load: the secondary indexes are built.
    fn file_complete(
        &mut self,
        kind: RecordKind,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send {
        let _ = kind;
        async { Ok(None) }
    }

    /// The work once the extraction of `kind` is complete (the purge in PostgreSQL);
    /// returns a line for the log.
    fn kind_complete(
        &mut self,
        version: &str,
        kind: RecordKind,
        reported_records: u64,
        dead_lettered: u64,
    ) -> impl Future<Output = Result<String, Self::Error>> + Send;

    /// The work once all four kinds are complete (aggregates and stub removal in Neo4j);
    /// returns a line for the log.
    fn all_complete(
        &mut self,
        version: &str,
    ) -> impl Future<Output = Result<String, Self::Error>> + Send;
}

/// What [`Target::remove`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removal {
    /// Rows or nodes deleted.
    pub deleted: u64,
    /// Nodes kept as stubs because other records still refer to them (Neo4j only).
    pub stubbed: u64,
}

/// The tableinator's target: a [`PgSink`] and a client of its own for the step table.
///
/// **First loads.** The first batch of a kind that this target writes finds out whether
/// the kind's table is empty; if it is, the sink's first-load mode starts
/// ([`PgSink::begin_first_load`]: secondary indexes dropped, rows copied straight in),
/// and the kind's `file_complete` ends it by building the indexes. The purge at
/// `extraction_complete` first builds any index still missing, so a first load that was
/// interrupted (a crash, a restart: the table then holds rows and the new process writes
/// through the upsert path) still ends with every index. [`PgTarget::first_load`] turns
/// this off.
#[derive(Debug)]
pub struct PgTarget {
    sink: PgSink,
    steps: Option<Client>,
    /// Whether an empty table starts a first load.
    first_load: bool,
    /// Kinds whose table this target has checked for a first load.
    checked: [bool; 4],
}

impl PgTarget {
    /// A target writing through `sink`, with first loads on. Does no I/O.
    #[must_use]
    pub fn new(sink: PgSink) -> Self {
        Self {
            sink,
            steps: None,
            first_load: true,
            checked: [false; 4],
        }
    }

    /// Whether a kind whose table is empty is loaded in first-load mode (the default):
    /// faster, but the table has no secondary index (search, filters) until the kind's
    /// file is complete.
    #[must_use]
    pub fn first_load(mut self, on: bool) -> Self {
        self.first_load = on;
        self
    }

    /// The sink.
    #[must_use]
    pub fn sink(&self) -> &PgSink {
        &self.sink
    }

    fn table(&self) -> String {
        format!(
            "\"{}\".consumer_steps",
            self.sink.config().schema.replace('"', "\"\"")
        )
    }

    async fn steps(&mut self) -> Result<&Client, PgSinkError> {
        if self.steps.as_ref().is_some_and(Client::is_closed) {
            self.steps = None;
        }
        if self.steps.is_none() {
            self.sink.migrate().await?;
            let mut config: tokio_postgres::Config = self
                .sink
                .config()
                .url
                .parse()
                .map_err(|e| PgSinkError::Config(format!("{e}")))?;
            config.application_name(&self.sink.config().application_name);
            let (client, connection) = config.connect(NoTls).await.map_err(PgSinkError::Connect)?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "PostgreSQL connection of the step table ended.");
                }
            });
            client
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {} (extraction TEXT NOT NULL, step TEXT NOT NULL, \
                     done_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (extraction, step))",
                    self.table()
                ))
                .await
                .map_err(pg("creating the consumer step table"))?;
            self.steps = Some(client);
        }
        Ok(self.steps.as_ref().expect("connected above"))
    }
}

fn pg(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> PgSinkError {
    move |source| PgSinkError::Postgres { context, source }
}

impl Target for PgTarget {
    type Error = PgSinkError;

    async fn prepare(&mut self) -> Result<(), PgSinkError> {
        self.steps().await.map(drop)
    }

    async fn write(
        &mut self,
        kind: RecordKind,
        version: &str,
        records: &[SinkRecord<'_>],
    ) -> Result<SinkOutcome, PgSinkError> {
        // Every batch's ids are remembered under its extraction, for the purge.
        self.sink.set_extraction(Some(version.to_owned()));
        let slot = usize::from(kind.code() - 1);
        if self.first_load && !self.checked[slot] && !records.is_empty() {
            if self.sink.begin_first_load(kind).await? {
                tracing::info!(%kind, "Empty table: first load, indexes built when the file is complete.");
            }
            self.checked[slot] = true;
        }
        self.sink.write_batch(kind, records).await
    }

    async fn file_complete(&mut self, kind: RecordKind) -> Result<Option<String>, PgSinkError> {
        if !self.sink.in_first_load(kind) {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        self.sink.finish_first_load(kind).await?;
        Ok(Some(format!(
            "first load finished: indexes built in {:.1} s",
            started.elapsed().as_secs_f64()
        )))
    }

    async fn remove(
        &mut self,
        kind: RecordKind,
        _version: &str,
        ids: &[u64],
    ) -> Result<Removal, PgSinkError> {
        let deleted = self.sink.delete_ids(kind, ids).await?;
        Ok(Removal {
            deleted,
            stubbed: 0,
        })
    }

    async fn is_done(&mut self, version: &str, step: &str) -> Result<bool, PgSinkError> {
        let sql = format!(
            "SELECT 1 FROM {} WHERE extraction = $1 AND step = $2",
            self.table()
        );
        let client = self.steps().await?;
        let rows = client
            .query(&sql, &[&version, &step])
            .await
            .map_err(pg("reading the consumer step table"))?;
        Ok(!rows.is_empty())
    }

    async fn mark_done(&mut self, version: &str, step: &str) -> Result<(), PgSinkError> {
        let sql = format!(
            "INSERT INTO {} (extraction, step) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            self.table()
        );
        let client = self.steps().await?;
        client
            .execute(&sql, &[&version, &step])
            .await
            .map_err(pg("writing the consumer step table"))?;
        Ok(())
    }

    async fn kind_complete(
        &mut self,
        version: &str,
        kind: RecordKind,
        reported_records: u64,
        dead_lettered: u64,
    ) -> Result<String, PgSinkError> {
        // Any index a first load left unbuilt (an interrupted one) is built first.
        self.sink.finish_first_load(kind).await?;
        let outcome = self
            .sink
            .purge(PurgeRequest {
                extraction: version,
                kind,
                reported_records,
                dead_lettered,
            })
            .await?;
        Ok(match outcome {
            PurgeOutcome::Purged { deleted } => format!("purged {deleted} rows"),
            // The normal case with change detection: only changed records were sent, and
            // the records removed from the dump came as `removed` messages.
            PurgeOutcome::Refused(reason @ PurgeRefusal::Incomplete { .. }) => format!(
                "no purge by ids seen ({reason}: an extraction with change detection; \
                 removed records came as `removed` messages)"
            ),
            PurgeOutcome::Refused(reason) => format!("purge refused: {reason}"),
            other => format!("{other:?}"),
        })
    }

    async fn all_complete(&mut self, _version: &str) -> Result<String, PgSinkError> {
        Ok("nothing more to do".to_owned())
    }
}

/// The graphinator's target: a [`Neo4jSink`].
#[derive(Debug)]
pub struct Neo4jTarget {
    sink: Neo4jSink,
    schema_ready: bool,
}

impl Neo4jTarget {
    /// A target writing through `sink`. Does no I/O.
    #[must_use]
    pub fn new(sink: Neo4jSink) -> Self {
        Self {
            sink,
            schema_ready: false,
        }
    }

    /// The sink.
    #[must_use]
    pub fn sink(&self) -> &Neo4jSink {
        &self.sink
    }

    /// The label of the step nodes: `{namespace}ConsumerStep`.
    #[must_use]
    pub fn step_label(&self) -> String {
        format!("{}ConsumerStep", self.sink.names().namespace())
    }
}

fn neo(context: &'static str) -> impl FnOnce(neo4rs::Error) -> Neo4jSinkError {
    move |source| Neo4jSinkError::Neo4j { context, source }
}

impl Target for Neo4jTarget {
    type Error = Neo4jSinkError;

    async fn prepare(&mut self) -> Result<(), Neo4jSinkError> {
        if !self.schema_ready {
            self.sink.ensure_schema().await?;
            self.schema_ready = true;
        }
        Ok(())
    }

    async fn write(
        &mut self,
        kind: RecordKind,
        _version: &str,
        records: &[SinkRecord<'_>],
    ) -> Result<SinkOutcome, Neo4jSinkError> {
        self.prepare().await?;
        self.sink.write_batch(kind, records).await
    }

    async fn remove(
        &mut self,
        kind: RecordKind,
        _version: &str,
        ids: &[u64],
    ) -> Result<Removal, Neo4jSinkError> {
        self.prepare().await?;
        let outcome = self.sink.remove_records(kind, ids).await?;
        Ok(Removal {
            deleted: outcome.deleted,
            stubbed: outcome.stubbed,
        })
    }

    async fn is_done(&mut self, version: &str, step: &str) -> Result<bool, Neo4jSinkError> {
        let text = format!(
            "MATCH (s:`{}` {{extraction: $extraction, step: $step}}) RETURN count(s) AS n",
            self.step_label()
        );
        let q = neo4rs::query(&text)
            .param("extraction", version)
            .param("step", step);
        let mut rows = self
            .sink
            .graph()
            .execute(q)
            .await
            .map_err(neo("reading the consumer steps"))?;
        let n = match rows
            .next()
            .await
            .map_err(neo("reading the consumer steps"))?
        {
            Some(row) => row
                .get::<i64>("n")
                .map_err(|e| Neo4jSinkError::Decode(e.to_string()))?,
            None => 0,
        };
        Ok(n > 0)
    }

    async fn mark_done(&mut self, version: &str, step: &str) -> Result<(), Neo4jSinkError> {
        let text = format!(
            "MERGE (s:`{}` {{extraction: $extraction, step: $step}}) \
             ON CREATE SET s.done_at = datetime()",
            self.step_label()
        );
        let q = neo4rs::query(&text)
            .param("extraction", version)
            .param("step", step);
        self.sink
            .graph()
            .run(q)
            .await
            .map_err(neo("recording a consumer step"))?;
        Ok(())
    }

    async fn kind_complete(
        &mut self,
        _version: &str,
        _kind: RecordKind,
        _reported_records: u64,
        _dead_lettered: u64,
    ) -> Result<String, Neo4jSinkError> {
        Ok("waiting for the other kinds".to_owned())
    }

    async fn all_complete(&mut self, _version: &str) -> Result<String, Neo4jSinkError> {
        let report = self.sink.finish_extraction().await?;
        Ok(format!(
            "removed {} isolated stubs and {} unused genres/styles; aggregates: {} genres, {} styles, {} labels",
            report.stubs_removed,
            report.tags_removed,
            report.aggregates.genres,
            report.aggregates.styles,
            report.aggregates.labels_updated
        ))
    }
}
