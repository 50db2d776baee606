//! [`PgSink`]: the write path (hash lookup, binary COPY into staging, one upsert).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use discogs_model::{Record, RecordHash, RecordKind, Sink, SinkOutcome, SinkRecord};
use futures_util::future::join_all;
use tokio_postgres::{Client, NoTls};

use crate::copy::CopyWriter;
use crate::schema::{self, column_list, columns, table};
use crate::{PgSinkConfig, PgSinkError};

/// Below this many rows to write, a batch uses one connection.
const PARALLEL_MIN_ROWS: usize = 128;

/// SQL text prepared once per kind.
#[derive(Debug)]
struct KindSql {
    lookup: String,
    copy_stage: String,
    copy_direct: String,
    upsert: String,
    record_ids: String,
    select_one: String,
}

impl KindSql {
    fn new(schema: &str, kind: RecordKind) -> Self {
        let t = table(kind);
        let cols = column_list(kind);
        let set: Vec<String> = columns(kind)
            .iter()
            .skip(1)
            .map(|(c, _)| format!("{c} = EXCLUDED.{c}"))
            .collect();
        Self {
            lookup: format!("SELECT id, sha256 FROM \"{schema}\".{t} WHERE id = ANY($1)"),
            copy_stage: format!("COPY stage_{t} ({cols}) FROM STDIN (FORMAT binary)"),
            copy_direct: format!("COPY \"{schema}\".{t} ({cols}) FROM STDIN (FORMAT binary)"),
            upsert: format!(
                "WITH w AS (
                    INSERT INTO \"{schema}\".{t} AS t ({cols}) SELECT {cols} FROM stage_{t}
                    ON CONFLICT (id) DO UPDATE SET {set}, updated_at = now()
                    WHERE t.sha256 IS DISTINCT FROM EXCLUDED.sha256
                    RETURNING (xmax = 0) AS inserted
                 ) SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM w",
                set = set.join(", ")
            ),
            record_ids: format!(
                "INSERT INTO \"{schema}\".extraction_ids (extraction, kind, ids) VALUES ($1, $2, $3)"
            ),
            select_one: format!("SELECT sha256, data::text FROM \"{schema}\".{t} WHERE id = $1"),
        }
    }
}

/// A [`Sink`] writing the four kinds into PostgreSQL tables.
///
/// Built by [`PgSink::new`] without any I/O; the first call that needs the server connects
/// [`PgSinkConfig::streams`] connections and applies the schema migrations.
///
/// # The write path
///
/// For each batch: drop repeated ids (the last occurrence wins) and split the batch between
/// the connections (one part below 128 records). Each part, on its own connection and in
/// parallel with the others: look up the stored hashes of its ids (one indexed query) and
/// stop there for records whose hash is unchanged; encode the rest (JSON with keys in
/// JSONB order, see `copy.rs`) into binary COPY chunks for a temporary staging table, and
/// move them by one `INSERT … SELECT … ON CONFLICT (id) DO UPDATE … WHERE t.sha256 IS
/// DISTINCT FROM EXCLUDED.sha256`, which also keeps a concurrent replica's unchanged rows
/// from being rewritten. Each part is its own transaction; all are committed before
/// `write_batch` returns.
///
/// In first-load mode ([`PgSink::begin_first_load`]) rows are copied straight into the
/// table, whose secondary indexes are built afterwards by [`PgSink::finish_first_load`].
#[derive(Debug)]
pub struct PgSink {
    pub(crate) config: PgSinkConfig,
    pg: tokio_postgres::Config,
    pub(crate) clients: Vec<Client>,
    migrated: bool,
    sql: [KindSql; 4],
    first_load: [bool; 4],
    pub(crate) extraction: Option<String>,
}

fn slot(kind: RecordKind) -> usize {
    usize::from(kind.code() - 1)
}

pub(crate) fn big(id: u64) -> Result<i64, PgSinkError> {
    i64::try_from(id).map_err(|_| PgSinkError::IdOutOfRange(id))
}

pub(crate) fn big_opt(id: Option<u64>) -> Result<Option<i64>, PgSinkError> {
    id.map(big).transpose()
}

impl PgSink {
    /// Checks `config` and builds the sink. Does no I/O.
    ///
    /// # Errors
    ///
    /// [`PgSinkError::Config`] when a value is out of range or the URL does not parse.
    pub fn new(config: PgSinkConfig) -> Result<Self, PgSinkError> {
        let pg = config.validate()?;
        let sql = RecordKind::ALL.map(|k| KindSql::new(&config.schema, k));
        Ok(Self {
            config,
            pg,
            clients: Vec::new(),
            migrated: false,
            sql,
            first_load: [false; 4],
            extraction: None,
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &PgSinkConfig {
        &self.config
    }

    /// Records the ids of every batch written from now on under `extraction` (the dump
    /// version, e.g. `20251101`), for [`PgSink::purge`]; `None` stops recording.
    pub fn set_extraction(&mut self, extraction: Option<String>) {
        self.extraction = extraction;
    }

    /// Connects (when not connected, or when a connection was lost) and migrates.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (the connections are spawned on it).
    pub(crate) async fn connect(&mut self) -> Result<(), PgSinkError> {
        if self.clients.iter().any(Client::is_closed) {
            self.clients.clear();
        }
        if !self.clients.is_empty() {
            return Ok(());
        }
        let mut clients = Vec::with_capacity(self.config.streams);
        for _ in 0..self.config.streams {
            let (client, connection) =
                self.pg.connect(NoTls).await.map_err(PgSinkError::Connect)?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(%error, "PostgreSQL connection ended.");
                }
            });
            clients.push(client);
        }
        let schema = self.config.schema.clone();
        if !self.migrated {
            schema::migrate(&mut clients[0], &schema).await?;
            self.migrated = true;
        }
        let mut session = String::from(
            "DO $$ BEGIN SET default_toast_compression = 'lz4'; \
             EXCEPTION WHEN OTHERS THEN NULL; END $$;\n",
        );
        for kind in RecordKind::ALL {
            session.push_str(&schema::staging_sql(&schema, kind));
        }
        for client in &clients {
            client
                .batch_execute(&session)
                .await
                .map_err(PgSinkError::pg("preparing the session"))?;
        }
        self.clients = clients;
        Ok(())
    }

    /// Connects and applies the migrations now rather than at the first write.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or a migration fails.
    pub async fn migrate(&mut self) -> Result<(), PgSinkError> {
        self.connect().await
    }

    /// Starts a first load of `kind` when its table is empty: drops its secondary indexes
    /// and from then on copies rows straight into the table. Returns whether the mode
    /// started (`false`: the table holds rows, writes stay on the upsert path).
    ///
    /// A replayed batch during a first load hits the primary key; that batch then falls
    /// back to the upsert path, so writes stay idempotent.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses the statements.
    pub async fn begin_first_load(&mut self, kind: RecordKind) -> Result<bool, PgSinkError> {
        self.connect().await?;
        let schema = &self.config.schema;
        let t = table(kind);
        let client = &self.clients[0];
        let empty: bool = client
            .query_one(
                &format!("SELECT NOT EXISTS (SELECT 1 FROM \"{schema}\".{t})"),
                &[],
            )
            .await
            .map_err(PgSinkError::pg("checking the table is empty"))?
            .get(0);
        if !empty {
            tracing::info!(kind = %kind, "Table holds rows; no first-load mode.");
            return Ok(false);
        }
        client
            .batch_execute(&schema::drop_indexes_sql(schema, kind))
            .await
            .map_err(PgSinkError::pg("dropping indexes for a first load"))?;
        self.first_load[slot(kind)] = true;
        tracing::info!(kind = %kind, "First load started; secondary indexes dropped.");
        Ok(true)
    }

    /// Whether `kind` is in first-load mode ([`PgSink::begin_first_load`] started it and
    /// [`PgSink::finish_first_load`] has not ended it yet).
    #[must_use]
    pub fn in_first_load(&self, kind: RecordKind) -> bool {
        self.first_load[slot(kind)]
    }

    /// Ends a first load of `kind`: builds the secondary indexes that are missing (on every
    /// connection at once) and analyzes the table. Safe to call at any time, e.g. after a
    /// crashed first load; when every index exists and no first load is under way it costs
    /// one query and does nothing else.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or an index cannot be built.
    pub async fn finish_first_load(&mut self, kind: RecordKind) -> Result<(), PgSinkError> {
        self.connect().await?;
        let schema = &self.config.schema;
        let existing: Vec<String> = self.clients[0]
            .query(
                "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
                &[schema, &table(kind)],
            )
            .await
            .map_err(PgSinkError::pg("listing the indexes"))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        // Every connection builds indexes at once (CREATE INDEX takes a SHARE lock, which
        // does not conflict with itself), each taking the next from a queue that starts
        // with the GIN indexes, the costliest (PostgreSQL 15 builds GIN on one core).
        let mut statements: Vec<String> = schema::create_index_statements(schema, kind)
            .into_iter()
            .zip(schema::indexes(kind))
            .filter(|(_, (name, _))| !existing.iter().any(|e| e == name))
            .map(|(sql, _)| sql)
            .collect();
        if statements.is_empty() && !self.first_load[slot(kind)] {
            return Ok(());
        }
        statements.reverse();
        let next = AtomicUsize::new(0);
        let builders = self.clients.iter().map(|client| {
            let (statements, next) = (&statements, &next);
            async move {
                client
                    .batch_execute("SET maintenance_work_mem = '256MB'")
                    .await?;
                while let Some(sql) = statements.get(next.fetch_add(1, Ordering::Relaxed)) {
                    client.batch_execute(sql).await?;
                }
                client.batch_execute("RESET maintenance_work_mem").await
            }
        });
        for result in join_all(builders).await {
            result.map_err(PgSinkError::pg("building indexes after a first load"))?;
        }
        self.clients[0]
            .batch_execute(&format!("ANALYZE \"{schema}\".{}", table(kind)))
            .await
            .map_err(PgSinkError::pg("analyzing after a first load"))?;
        self.first_load[slot(kind)] = false;
        tracing::info!(kind = %kind, "First load finished; indexes built.");
        Ok(())
    }

    /// The record stored for `id` of `kind`, decoded from its JSONB, with its stored hash.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached, or the stored JSON does not decode.
    pub async fn get(
        &mut self,
        kind: RecordKind,
        id: u64,
    ) -> Result<Option<(Record<'static>, RecordHash)>, PgSinkError> {
        self.connect().await?;
        let row = self.clients[0]
            .query_opt(&self.sql[slot(kind)].select_one, &[&big(id)?])
            .await
            .map_err(PgSinkError::pg("reading a record"))?;
        let Some(row) = row else { return Ok(None) };
        let sha: &[u8] = row.get(0);
        let text: &str = row.get(1);
        let decode = |source| PgSinkError::Decode { id, source };
        let record = match kind {
            RecordKind::Artist => Record::Artist(serde_json::from_str(text).map_err(decode)?),
            RecordKind::Label => Record::Label(serde_json::from_str(text).map_err(decode)?),
            RecordKind::Master => Record::Master(serde_json::from_str(text).map_err(decode)?),
            RecordKind::Release => Record::Release(serde_json::from_str(text).map_err(decode)?),
        };
        let hash = RecordHash(sha.try_into().unwrap_or([0; 32]));
        Ok(Some((record, hash)))
    }

    async fn write(
        &mut self,
        kind: RecordKind,
        records: &[SinkRecord<'_>],
    ) -> Result<SinkOutcome, PgSinkError> {
        // Checks that need no server first: a bad batch is refused before any I/O.
        let mut last: HashMap<i64, usize> = HashMap::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            if r.record.kind() != kind {
                return Err(PgSinkError::KindMismatch {
                    expected: kind,
                    found: r.record.kind(),
                    id: r.record.id(),
                });
            }
            last.insert(big(r.record.id())?, i);
        }
        let total = records.len() as u64;
        if records.is_empty() {
            return Ok(SinkOutcome::default());
        }
        // Keep the last occurrence of each id, in batch order.
        let unique: Vec<(i64, &SinkRecord<'_>)> = records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let id = i64::try_from(r.record.id()).ok()?;
                (last.get(&id) == Some(&i)).then_some((id, r))
            })
            .collect();
        self.connect().await?;

        let mut committed = 0;
        if self.first_load[slot(kind)] {
            match self.write_parts(kind, &unique, true).await {
                Ok((inserted, _)) => {
                    self.record_ids(kind, &unique).await?;
                    return Ok(SinkOutcome {
                        inserted,
                        updated: 0,
                        unchanged: total - inserted,
                    });
                }
                Err((done, e)) if e.sqlstate() == Some("23505") => {
                    tracing::debug!(kind = %kind, "Batch already (partly) loaded; using the upsert path.");
                    committed = done;
                }
                Err((_, e)) => return Err(e),
            }
        }
        let (inserted, updated) = self
            .write_parts(kind, &unique, false)
            .await
            .map_err(|(_, e)| e)?;
        self.record_ids(kind, &unique).await?;
        let inserted = inserted + committed;
        tracing::debug!(
            kind = %kind,
            records = total,
            inserted,
            updated,
            unchanged = total - inserted - updated,
            "Batch written."
        );
        Ok(SinkOutcome {
            inserted,
            updated,
            unchanged: total - inserted - updated,
        })
    }

    async fn record_ids(
        &mut self,
        kind: RecordKind,
        rows: &[(i64, &SinkRecord<'_>)],
    ) -> Result<(), PgSinkError> {
        if let Some(extraction) = &self.extraction {
            let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
            self.clients[0]
                .execute(
                    &self.sql[slot(kind)].record_ids,
                    &[extraction, &kind.plural(), &ids],
                )
                .await
                .map_err(PgSinkError::pg("recording the batch's ids"))?;
        }
        Ok(())
    }

    /// Splits `rows` between the connections and writes the parts in parallel (see
    /// [`write_part`]). Returns `(inserted, updated)`, or the first error with the rows that
    /// parts which did commit inserted.
    async fn write_parts(
        &mut self,
        kind: RecordKind,
        rows: &[(i64, &SinkRecord<'_>)],
        direct: bool,
    ) -> Result<(u64, u64), (u64, PgSinkError)> {
        let streams = if rows.len() < PARALLEL_MIN_ROWS {
            1
        } else {
            self.clients.len()
        };
        let per = rows.len().div_ceil(streams).max(1);
        let sql = &self.sql[slot(kind)];
        let parts = self
            .clients
            .iter_mut()
            .zip(rows.chunks(per))
            .map(|(client, rows)| write_part(client, sql, rows, direct));
        let results = join_all(parts).await;
        let (mut inserted, mut updated, mut error) = (0, 0, None);
        for result in results {
            match result {
                Ok((i, u)) => {
                    inserted += i;
                    updated += u;
                }
                Err(e) => error = error.or(Some(e)),
            }
        }
        match error {
            None => Ok((inserted, updated)),
            Some(e) => Err((inserted, e)),
        }
    }

    async fn health(&mut self) -> Result<(), PgSinkError> {
        self.connect().await?;
        for client in &self.clients {
            client
                .simple_query("SELECT 1")
                .await
                .map_err(PgSinkError::pg("health check"))?;
        }
        Ok(())
    }
}

/// One part of a batch on one connection. `direct` (first load): COPY the rows straight
/// into the table, in one transaction. Otherwise: look up the stored hashes of the part's
/// ids, stop there for unchanged records, and COPY the rest into staging followed by the
/// upsert, in one transaction. Returns `(inserted, updated)`.
async fn write_part(
    client: &mut Client,
    sql: &KindSql,
    rows: &[(i64, &SinkRecord<'_>)],
    direct: bool,
) -> Result<(u64, u64), PgSinkError> {
    let t0 = Instant::now();
    let to_write: Vec<&SinkRecord<'_>> = if direct {
        rows.iter().map(|(_, r)| *r).collect()
    } else {
        let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        let stored: HashMap<i64, Vec<u8>> = client
            .query(&sql.lookup, &[&ids])
            .await
            .map_err(PgSinkError::pg("looking up stored hashes"))?
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        rows.iter()
            .filter(|(id, r)| {
                stored.get(id).map(Vec::as_slice) != Some(r.hash.as_bytes().as_slice())
            })
            .map(|(_, r)| *r)
            .collect()
    };
    if to_write.is_empty() {
        return Ok((0, 0));
    }
    let t1 = Instant::now();
    let tx = client
        .transaction()
        .await
        .map_err(PgSinkError::pg("starting a transaction"))?;
    let copy = if direct {
        &sql.copy_direct
    } else {
        &sql.copy_stage
    };
    let mut writer = CopyWriter::start(&tx, copy).await?;
    for r in &to_write {
        writer.row(r).await?;
    }
    let copied = writer.finish().await?;
    let t2 = Instant::now();
    let counts = if direct {
        (copied, 0)
    } else {
        let row = tx
            .query_one(&sql.upsert, &[])
            .await
            .map_err(PgSinkError::pg("upserting from staging"))?;
        let (i, u): (i64, i64) = (row.get(0), row.get(1));
        (i.unsigned_abs(), u.unsigned_abs())
    };
    let t3 = Instant::now();
    tx.commit()
        .await
        .map_err(PgSinkError::pg("committing a batch"))?;
    tracing::trace!(
        rows = rows.len(),
        written = to_write.len(),
        lookup = ?(t1 - t0),
        copy = ?(t2 - t1),
        upsert = ?(t3 - t2),
        commit = ?t3.elapsed(),
        "Part written."
    );
    Ok(counts)
}

impl Sink for PgSink {
    type Error = PgSinkError;

    fn write_batch(
        &mut self,
        kind: RecordKind,
        records: &[SinkRecord<'_>],
    ) -> impl std::future::Future<Output = Result<SinkOutcome, PgSinkError>> + Send {
        self.write(kind, records)
    }

    fn health_check(
        &mut self,
    ) -> impl std::future::Future<Output = Result<(), PgSinkError>> + Send {
        self.health()
    }
}
