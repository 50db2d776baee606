//! [`Neo4jSink`]: the write path (hash lookup, pipelined write transactions per batch) and the
//! read-back of records.

use std::collections::HashMap;
use std::time::Duration;

use discogs_model::{
    latest_by_id, Artist, Credit, EntityRef, Format, Label, Master, Record, RecordHash, RecordKind,
    Release, ReleaseLabel, Sink, SinkOutcome, SinkRecord,
};
use futures_util::future::try_join_all;
use futures_util::{StreamExt, TryStreamExt};
use neo4rs::{query, BoltInteger, BoltList, BoltType, Graph, Row};
use tokio::sync::Semaphore;

use crate::nodelay::NoDelay;
use crate::plan::{int, ElementIds, Plan, Statements, Step};
use crate::{schema, GraphNames, Neo4jSinkConfig, Neo4jSinkError, MIN_RECORDS_PER_TRANSACTION};

/// Counters of what a [`Neo4jSink`] sent to the server since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Hash lookups (read queries, one per 5,000 ids of a batch).
    pub hash_lookups: u64,
    /// Write transactions committed.
    pub write_transactions: u64,
    /// Statements run inside those transactions.
    pub statements: u64,
    /// Parts written again after Neo4j reported a deadlock or another conflict with a
    /// concurrent transaction (`Transaction.Outdated`).
    pub deadlock_retries: u64,
}

/// How many times a part is written again at once after a deadlock, or another conflict
/// with a concurrent transaction, before the error goes to the caller.
pub const DEADLOCK_RETRIES: u32 = 8;

/// A [`Sink`] writing the four kinds into the Neo4j graph.
///
/// Built by [`Neo4jSink::new`] without any I/O; the first call that needs the server
/// connects and creates the schema that is missing ([`crate::schema_objects`]).
///
/// # The write path
///
/// For each batch: refuse records of another kind, drop repeated ids (the last occurrence
/// wins), then:
///
/// 1. read queries look up the stored `sha256` of the batch's ids (5,000 at a time);
///    records whose hash is unchanged stop here (no write at all);
/// 2. the genres, styles and `PART_OF` pairs of the changed records that this sink has
///    not written before are merged in one small transaction of their own, so that the
///    parts below do not queue on the ones they would all create;
/// 3. the records that changed are split into parts of at most
///    [`Neo4jSinkConfig::transaction_records`], and into at least
///    [`Neo4jSinkConfig::write_transactions`] while each gets
///    [`crate::MIN_RECORDS_PER_TRANSACTION`] records; records that refer to each other go
///    into one part. Each part is one write transaction; up to `write_transactions` of them
///    run their statements at a time, and one that reaches its commit lets the next one
///    start (Neo4j largely serializes commits, so this keeps both cores busy). A part
///    that meets a deadlock is written again. Each transaction's statements have fixed
///    text and take the data as a list parameter (`UNWIND`):
///    * delete the relationships owned by the records that were stored complete before
///      (a changed record replaces all of them: no stale edges);
///    * `MERGE` the records' nodes by id and `SET` their properties;
///    * find the nodes they refer to, and `MERGE` the genres and styles. In a part of
///      records new to the graph (a first load) the referenced nodes are first looked up
///      by id with `MATCH`, which takes no lock, and only those not found are merged;
///      a part that replaces stored records merges them all. Either way the merges are
///      sorted by id, and a node they create is a stub (an id, a name when the reference
///      carries one, no `sha256`);
///    * create the relationships, one statement per type, each list sorted by target node.
///      The node statements return the element id of every node they wrote or found; in
///      a part of records new to the graph (a first load) the relationship statements
///      find both ends by element id (a direct record lookup) rather than by two more
///      seeks in the `id` or `name` indexes; a part that replaces stored records finds
///      them by key, which measured faster there.
///
/// Every transaction commits before `write_batch` returns.
///
/// On Linux the sink sets `TCP_NODELAY` on the process's TCP connections to the Bolt port
/// of its URI (the driver leaves Nagle's algorithm on, which made large requests wait up
/// to 40 ms for the server's delayed acknowledgement). It finds them in `/proc/self/fd`,
/// so connections of another `Graph` in the same process to that port get it too.
pub struct Neo4jSink {
    pub(crate) config: Neo4jSinkConfig,
    pub(crate) names: GraphNames,
    pub(crate) graph: Graph,
    schema_ready: bool,
    pub(crate) statements: Statements,
    stats: WriteStats,
    /// Genres, styles and `PART_OF` pairs this sink has seen committed (see
    /// [`Neo4jSink::create_tags`]).
    pub(crate) known_tags: crate::plan::Tags,
    /// `TCP_NODELAY` for the driver's sockets, set before each transaction.
    pub(crate) nodelay: NoDelay,
}

impl std::fmt::Debug for Neo4jSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jSink")
            .field("config", &self.config)
            .field("schema_ready", &self.schema_ready)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Neo4jSink {
    /// Checks `config` and builds the sink. Does no I/O.
    ///
    /// # Errors
    ///
    /// [`Neo4jSinkError::Config`] when a value is out of range, the namespace is not a
    /// label prefix, or the URI does not parse.
    pub fn new(config: Neo4jSinkConfig) -> Result<Self, Neo4jSinkError> {
        let (names, driver) = config.validate()?;
        let graph = Graph::connect(driver)
            .map_err(|e| Neo4jSinkError::Config(format!("uri {:?}: {e}", config.uri)))?;
        let statements = Statements::new(&names);
        let nodelay = NoDelay::for_uri(&config.uri);
        Ok(Self {
            config,
            names,
            graph,
            schema_ready: false,
            statements,
            stats: WriteStats::default(),
            known_tags: crate::plan::Tags::default(),
            nodelay,
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Neo4jSinkConfig {
        &self.config
    }

    /// The labels and schema names of the sink's graph.
    #[must_use]
    pub fn names(&self) -> &GraphNames {
        &self.names
    }

    /// The driver's handle on the database (cheap to clone), for queries of one's own.
    #[must_use]
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// What the sink sent to the server so far.
    #[must_use]
    pub fn stats(&self) -> WriteStats {
        self.stats
    }

    /// Creates the missing constraints and indexes now rather than at the first write,
    /// and waits until they are online. Returns how many were created.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses a statement.
    pub async fn ensure_schema(&mut self) -> Result<usize, Neo4jSinkError> {
        let timeout = Duration::from_secs(self.config.timeout_secs.max(1));
        let created = schema::ensure(&self.graph, &self.names, timeout).await?;
        self.schema_ready = true;
        Ok(created)
    }

    /// Deletes every node of the sink's namespace and drops its constraints and indexes:
    /// for tests and benchmarks, which each write in a namespace of their own.
    ///
    /// # Errors
    ///
    /// [`Neo4jSinkError::Config`] for the empty (production) namespace, which this never
    /// deletes; otherwise when the server cannot be reached or refuses a statement.
    pub async fn drop_namespace(self) -> Result<(), Neo4jSinkError> {
        if self.names.namespace().is_empty() {
            return Err(Neo4jSinkError::Config(
                "drop_namespace refuses the empty (production) namespace".into(),
            ));
        }
        schema::drop_namespace(&self.graph, &self.names).await
    }

    async fn write(
        &mut self,
        kind: RecordKind,
        records: &[SinkRecord<'_>],
    ) -> Result<SinkOutcome, Neo4jSinkError> {
        // Checks that need no server first: a bad batch is refused before any I/O.
        let unique: Vec<(i64, &SinkRecord<'_>)> = latest_by_id(kind, records)
            .map_err(|e| Neo4jSinkError::KindMismatch {
                expected: e.expected,
                found: e.found,
                id: e.id,
            })?
            .into_iter()
            .map(|r| Ok((int(r.record.id())?, r)))
            .collect::<Result<_, Neo4jSinkError>>()?;
        let total = records.len() as u64;
        if records.is_empty() {
            return Ok(SinkOutcome::default());
        }
        if !self.schema_ready {
            self.ensure_schema().await?;
        }
        let changed = self.changed(kind, &unique).await?;
        let (inserted, updated) = self.write_changed(kind, &changed).await?;
        let outcome = SinkOutcome {
            inserted,
            updated,
            unchanged: total - inserted - updated,
        };
        tracing::debug!(kind = %kind, records = total, ?outcome, "Batch written.");
        Ok(outcome)
    }

    /// The hash lookup of a batch's ids, [`LOOKUP_IDS`] at a time: the records that changed,
    /// each with whether it was stored complete before (its owned relationships are then
    /// replaced). A record stored with the same hash is left out: it costs no write.
    async fn changed<'a, 'r>(
        &mut self,
        kind: RecordKind,
        unique: &'a [(i64, &'a SinkRecord<'r>)],
    ) -> Result<Vec<(i64, &'a SinkRecord<'r>, bool)>, Neo4jSinkError> {
        let mut changed = Vec::new();
        for chunk in unique.chunks(LOOKUP_IDS) {
            // The lookup's connections (a hash lookup of 5,000 ids is a 45 KB request).
            self.nodelay.apply();
            let stored = self.lookup(kind, chunk.iter().map(|(id, _)| *id)).await?;
            for (id, r) in chunk {
                match stored.get(id) {
                    // Stored complete with the same hash: nothing to do.
                    Some(Some(hash)) if *hash == r.hash.to_hex() => {}
                    Some(Some(_)) => changed.push((*id, *r, true)),
                    // A stub or no node: the record is new to the graph.
                    Some(None) | None => changed.push((*id, *r, false)),
                }
            }
        }
        Ok(changed)
    }

    /// Writes the records that changed: their new genres and styles first
    /// ([`Neo4jSink::create_tags`]), then the records in [`transactions_for`] parts (records
    /// that refer to each other in one: [`crate::form::split_linked`]), each its own write
    /// transaction. At most [`Neo4jSinkConfig::write_transactions`] of them run their
    /// statements at a time; one that reaches its commit makes room for the next, so the
    /// commits, which Neo4j largely serializes, overlap the next parts' statements. At
    /// most twice that many are in flight. Returns `(inserted, updated)`.
    ///
    /// Each part is its own transaction: when one fails, the parts already committed
    /// stay, and the caller's retry of the batch finds them unchanged by the hash lookup.
    async fn write_changed(
        &mut self,
        kind: RecordKind,
        changed: &[(i64, &SinkRecord<'_>, bool)],
    ) -> Result<(u64, u64), Neo4jSinkError> {
        if changed.is_empty() {
            return Ok((0, 0));
        }
        self.create_tags(kind, changed).await?;
        let updated = changed.iter().filter(|(_, _, old)| *old).count() as u64;
        let inserted = changed.len() as u64 - updated;
        let running = self.config.write_transactions;
        let parts = transactions_for(changed.len(), self.config.transaction_records, running);
        let split = crate::form::split_linked(changed, |(_, r, _)| &r.record, parts);
        let gate = Semaphore::new(running);
        // Collected first: a stream over a closure that borrows `self` would not be `Send`.
        let writes: Vec<_> = split
            .iter()
            .map(|part| {
                write_part(
                    &self.graph,
                    &self.nodelay,
                    &self.statements,
                    kind,
                    part,
                    &gate,
                )
            })
            .collect();
        let done: Vec<(u64, u32)> = futures_util::stream::iter(writes)
            .buffer_unordered(2 * running)
            .try_collect()
            .await?;
        for (statements, retries) in done {
            self.stats.write_transactions += 1;
            self.stats.statements += statements;
            self.stats.deadlock_retries += u64::from(retries);
        }
        Ok((inserted, updated))
    }

    /// Creates the genres, styles and `PART_OF` pairs of `records` that this sink has not
    /// seen before, in a transaction of their own committed before the parts start.
    ///
    /// The parts still `MERGE` every genre, style and pair they use, so one seen here that
    /// has since been deleted (by [`Neo4jSink::finish_extraction`], which removes isolated
    /// tags, perhaps run by another sink) is created again there. What this saves: a node
    /// or relationship is locked by the transaction that creates it until that commits, so
    /// without it the concurrent parts of a batch that shared a new genre or pair waited
    /// for each other in turn (~0.5 s of the first 5,000 masters, measured with 4 parts).
    async fn create_tags(
        &mut self,
        kind: RecordKind,
        records: &[(i64, &SinkRecord<'_>, bool)],
    ) -> Result<(), Neo4jSinkError> {
        let new = self
            .known_tags
            .missing(records.iter().map(|(_, r, _)| &r.record));
        if new.is_empty() {
            return Ok(());
        }
        let statements = new.steps(&self.statements);
        let (_, retries) = retry_conflicts(kind, || async {
            let mut txn = self
                .graph
                .start_txn()
                .await
                .map_err(Neo4jSinkError::neo4j("starting a write transaction"))?;
            self.nodelay.apply();
            for (text, param, value) in &statements {
                let q = query(text).param(param, value.clone());
                txn.run(q)
                    .await
                    .map_err(Neo4jSinkError::neo4j("creating genres and styles"))?;
            }
            txn.commit()
                .await
                .map_err(Neo4jSinkError::neo4j("creating genres and styles"))?;
            Ok(statements.len() as u64)
        })
        .await?;
        self.stats.write_transactions += 1;
        self.stats.statements += statements.len() as u64;
        self.stats.deadlock_retries += u64::from(retries);
        self.known_tags.extend(new);
        Ok(())
    }

    /// The stored `sha256` of each id that has a node (`None` for a stub).
    async fn lookup(
        &mut self,
        kind: RecordKind,
        ids: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, Option<String>>, Neo4jSinkError> {
        let ids: Vec<BoltType> = ids
            .map(|id| BoltType::Integer(BoltInteger::new(id)))
            .collect();
        let n = ids.len();
        // Reads cannot deadlock: a large lookup is split over two concurrent queries,
        // so that the server can use two cores.
        let parts = if n >= LOOKUP_SPLIT_MIN { 2 } else { 1 };
        let text = &self.statements.lookup[usize::from(kind.code() - 1)];
        let lookups = ids.chunks(n.div_ceil(parts).max(1)).map(|part| {
            let q = query(text).param("ids", BoltType::List(BoltList::from(part.to_vec())));
            lookup_part(&self.graph, q)
        });
        let mut stored = HashMap::with_capacity(n);
        for part in try_join_all(lookups).await? {
            stored.extend(part);
        }
        self.stats.hash_lookups += 1;
        Ok(stored)
    }

    /// The record stored for `id` of `kind`, in its graph form ([`crate::graph_form`]),
    /// with its stored hash (`None` for a stub: a node that only references created).
    /// `None` when there is no such node.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached, or a stored value has an unexpected type.
    pub async fn get(
        &mut self,
        kind: RecordKind,
        id: u64,
    ) -> Result<Option<(Record<'static>, Option<RecordHash>)>, Neo4jSinkError> {
        let label = self.names.label(kind);
        let tail = match kind {
            RecordKind::Artist => {
                "n.name AS name, n.real_name AS real_name, \
                 [(n)-[:ALIAS_OF]->(x) | x.id] AS aliases, \
                 [(x)-[:MEMBER_OF]->(n) | x.id] AS members, \
                 [(n)-[:MEMBER_OF]->(x) | x.id] AS groups"
            }
            RecordKind::Label => {
                "n.name AS name, [(n)-[:SUBLABEL_OF]->(x) | x.id] AS parents, \
                 [(x)-[:SUBLABEL_OF]->(n) | x.id] AS sublabels"
            }
            RecordKind::Master => {
                "n.title AS title, n.year AS year, [(n)-[:MAIN_RELEASE]->(x) | x.id] AS main, \
                 [(n)-[:BY]->(x) | x.id] AS artists, [(n)-[:IS]->(x) | [labels(x), x.name]] AS tags"
            }
            RecordKind::Release => {
                "n.title AS title, n.year AS year, n.released AS released, n.country AS country, \
                 n.formats AS formats, [(n)-[:BY]->(x) | x.id] AS artists, \
                 [(n)-[r:ON]->(x) | [x.id, r.catno]] AS labels, \
                 [(n)-[:DERIVED_FROM]->(x) | x.id] AS masters, \
                 [(x)-[r:CREDITED_ON]->(n) | [x.id, r.role]] AS credits, \
                 [(n)-[:IS]->(x) | [labels(x), x.name]] AS tags"
            }
        };
        let text = format!("MATCH (n:{label} {{id: $id}}) RETURN n.sha256 AS sha, {tail}");
        let q = query(&text).param("id", int(id)?);
        let context = "reading a record back";
        let mut rows = self
            .graph
            .execute_read(q)
            .await
            .map_err(Neo4jSinkError::neo4j(context))?;
        let Some(row) = rows.next().await.map_err(Neo4jSinkError::neo4j(context))? else {
            return Ok(None);
        };
        let sha: Option<String> = get(&row, "sha")?;
        let hash = sha
            .map(|s| {
                s.parse::<RecordHash>()
                    .map_err(|e| Neo4jSinkError::Decode(format!("sha256 of {kind} {id}: {e}")))
            })
            .transpose()?;
        let record = self.decode(kind, id, &row)?;
        Ok(Some((record, hash)))
    }

    fn decode(
        &self,
        kind: RecordKind,
        id: u64,
        row: &Row,
    ) -> Result<Record<'static>, Neo4jSinkError> {
        let ids = |key: &str| -> Result<Vec<u64>, Neo4jSinkError> {
            let mut v: Vec<i64> = get(row, key)?;
            v.sort_unstable();
            v.dedup();
            Ok(v.into_iter()
                .filter_map(|i| u64::try_from(i).ok())
                .collect())
        };
        let refs = |key: &str| -> Result<Vec<EntityRef<'static>>, Neo4jSinkError> {
            Ok(ids(key)?
                .into_iter()
                .map(|id| EntityRef {
                    id: Some(id),
                    name: "".into(),
                })
                .collect())
        };
        let credits = |key: &str| -> Result<Vec<Credit<'static>>, Neo4jSinkError> {
            Ok(ids(key)?
                .into_iter()
                .map(|id| Credit {
                    id: Some(id),
                    ..Credit::default()
                })
                .collect())
        };
        let year = |row: &Row| -> Result<Option<u16>, Neo4jSinkError> {
            let y: Option<i64> = get(row, "year")?;
            Ok(y.and_then(|y| u16::try_from(y).ok()))
        };
        let text = |key: &str| -> Result<String, Neo4jSinkError> {
            let s: Option<String> = get(row, key)?;
            Ok(s.unwrap_or_default())
        };
        let opt = |key: &str| -> Result<Option<std::borrow::Cow<'static, str>>, Neo4jSinkError> {
            let s: Option<String> = get(row, key)?;
            Ok(s.map(Into::into))
        };
        let tags = |row: &Row| -> Result<(Names, Names), Neo4jSinkError> {
            let pairs: Vec<(Vec<String>, String)> = get(row, "tags")?;
            let (mut genres, mut styles) = (Vec::new(), Vec::new());
            for (labels, name) in pairs {
                if labels.iter().any(|l| l == self.names.genre()) {
                    genres.push(name.into());
                } else if labels.iter().any(|l| l == self.names.style()) {
                    styles.push(name.into());
                }
            }
            genres.sort_unstable();
            genres.dedup();
            styles.sort_unstable();
            styles.dedup();
            Ok((genres, styles))
        };
        Ok(match kind {
            RecordKind::Artist => Record::Artist(Artist {
                id,
                name: text("name")?.into(),
                real_name: opt("real_name")?,
                aliases: refs("aliases")?,
                members: refs("members")?,
                groups: refs("groups")?,
                ..Artist::default()
            }),
            RecordKind::Label => {
                let parents = ids("parents")?;
                Record::Label(Label {
                    id,
                    name: text("name")?.into(),
                    parent_label: parents.first().map(|p| EntityRef {
                        id: Some(*p),
                        name: "".into(),
                    }),
                    sublabels: refs("sublabels")?,
                    ..Label::default()
                })
            }
            RecordKind::Master => {
                let (genres, styles) = tags(row)?;
                Record::Master(Master {
                    id,
                    title: text("title")?.into(),
                    year: year(row)?,
                    main_release: ids("main")?.first().copied(),
                    artists: credits("artists")?,
                    genres,
                    styles,
                    ..Master::default()
                })
            }
            RecordKind::Release => {
                let (genres, styles) = tags(row)?;
                let formats: Option<Vec<String>> = get(row, "formats")?;
                let mut labels: Vec<(i64, Option<String>)> = get(row, "labels")?;
                labels.sort_unstable();
                labels.dedup();
                let mut extra: Vec<(i64, Option<String>)> = get(row, "credits")?;
                extra.sort_unstable();
                extra.dedup();
                Record::Release(Release {
                    id,
                    title: text("title")?.into(),
                    year: year(row)?,
                    released: opt("released")?,
                    country: opt("country")?,
                    formats: formats
                        .unwrap_or_default()
                        .into_iter()
                        .map(|name| Format {
                            name: name.into(),
                            ..Format::default()
                        })
                        .collect(),
                    artists: credits("artists")?,
                    labels: labels
                        .into_iter()
                        .filter_map(|(id, catno)| {
                            Some(ReleaseLabel {
                                id: Some(u64::try_from(id).ok()?),
                                name: "".into(),
                                catno: catno.map(Into::into),
                            })
                        })
                        .collect(),
                    master_id: ids("masters")?.first().copied(),
                    extra_artists: extra
                        .into_iter()
                        .filter_map(|(id, role)| {
                            Some(Credit {
                                id: Some(u64::try_from(id).ok()?),
                                role: role.map(Into::into),
                                ..Credit::default()
                            })
                        })
                        .collect(),
                    genres,
                    styles,
                    ..Release::default()
                })
            }
        })
    }

    async fn health(&mut self) -> Result<(), Neo4jSinkError> {
        let context = "health check";
        let mut rows = self
            .graph
            .execute_read(query("RETURN 1 AS one"))
            .await
            .map_err(Neo4jSinkError::neo4j(context))?;
        while rows
            .next()
            .await
            .map_err(Neo4jSinkError::neo4j(context))?
            .is_some()
        {}
        Ok(())
    }
}

/// From this many ids on, a hash lookup runs as two concurrent queries.
const LOOKUP_SPLIT_MIN: usize = 1_000;

/// The most ids one hash lookup reads (a batch's ids are looked up this many at a time).
const LOOKUP_IDS: usize = 5_000;

/// How many write transactions `n` changed records go into: enough that none has more
/// than `per_transaction` records, and at least `running` (the transactions that run their
/// statements at once) while each of those still gets [`MIN_RECORDS_PER_TRANSACTION`].
fn transactions_for(n: usize, per_transaction: usize, running: usize) -> usize {
    n.div_ceil(per_transaction.max(1))
        .max((n / MIN_RECORDS_PER_TRANSACTION).clamp(1, running))
}

/// [`write_transaction`] of one part of a batch, tried again (after a pause of a few tens
/// of milliseconds, longer each time) when Neo4j reports a deadlock or another conflict
/// with a concurrent transaction, up to
/// [`DEADLOCK_RETRIES`] times. The four kinds are written concurrently, and the parts of a
/// batch too; they meet on shared nodes (a release and an artist both completing or
/// referencing the same stub, two releases by the same artist), so deadlocks are expected
/// and cheap to resolve here; other errors, and a deadlock that persists, go to the
/// caller, whose retry policy is slower. Returns the statements run and the retries.
async fn write_part(
    graph: &Graph,
    nodelay: &NoDelay,
    statements: &Statements,
    kind: RecordKind,
    part: &[&(i64, &SinkRecord<'_>, bool)],
    gate: &Semaphore,
) -> Result<(u64, u32), Neo4jSinkError> {
    retry_conflicts(kind, || {
        write_transaction(graph, nodelay, statements, kind, part, gate)
    })
    .await
}

/// Runs `write` (one transaction), and again when Neo4j reports a deadlock or another
/// conflict with a concurrent transaction ([`Neo4jSinkError::is_transaction_conflict`]),
/// as [`write_part`] describes. Returns what `write` returned and the retries.
async fn retry_conflicts<T, F, Fut>(
    kind: RecordKind,
    mut write: F,
) -> Result<(T, u32), Neo4jSinkError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Neo4jSinkError>>,
{
    let mut attempt: u32 = 0;
    loop {
        match write().await {
            Err(e) if attempt < DEADLOCK_RETRIES && e.is_transaction_conflict() => {
                attempt += 1;
                // A pause that differs between the writers, so they do not meet again.
                let spread = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::from(d.subsec_nanos()) % 50);
                let pause = Duration::from_millis((20 + spread) * u64::from(attempt));
                let code = e.code().unwrap_or_default();
                tracing::debug!(%kind, attempt, ?pause, code, "Conflict with a concurrent transaction; writing the part again.");
                tokio::time::sleep(pause).await;
            }
            Err(e) => return Err(e),
            Ok(n) => return Ok((n, attempt)),
        }
    }
}

/// One write transaction for `part` (records with whether each was stored complete
/// before). Returns the statements run.
async fn write_transaction(
    graph: &Graph,
    nodelay: &NoDelay,
    statements: &Statements,
    kind: RecordKind,
    part: &[&(i64, &SinkRecord<'_>, bool)],
    gate: &Semaphore,
) -> Result<u64, Neo4jSinkError> {
    // Held through the statements, given up at the commit (see `Neo4jSink::write_changed`).
    // (`acquire` fails only on a closed semaphore, and this one is never closed.)
    let statements_turn = gate.acquire().await.ok();
    let records: Vec<&SinkRecord<'_>> = part.iter().map(|(_, r, _)| *r).collect();
    let replace = part
        .iter()
        .filter(|(_, _, old)| *old)
        .map(|(id, _, _)| *id)
        .collect();
    let mut plan = Plan::new(&records, replace)?;
    let mut txn = graph
        .start_txn()
        .await
        .map_err(Neo4jSinkError::neo4j("starting a write transaction"))?;
    // A connection the pool opened for this transaction has Nagle on until now.
    nodelay.apply();
    let steps = async {
        let mut nodes = ElementIds::default();
        let mut n = 0;
        for step in plan.node_steps(kind, statements) {
            n += 1;
            run_step(&mut txn, step, &mut nodes).await?;
        }
        for step in plan.stub_steps(statements, &nodes) {
            n += 1;
            run_step(&mut txn, step, &mut nodes).await?;
        }
        for step in plan.edge_steps(statements, &nodes)? {
            n += 1;
            run_step(&mut txn, step, &mut nodes).await?;
        }
        Ok::<_, Neo4jSinkError>(n)
    }
    .await;
    let n = match steps {
        Ok(n) => n,
        Err(e) => {
            // The server has already failed the transaction; this only frees it early.
            let _rolled_back = txn.rollback().await.is_ok();
            return Err(e);
        }
    };
    drop(statements_turn);
    txn.commit()
        .await
        .map_err(Neo4jSinkError::neo4j("committing a batch"))?;
    Ok(n)
}

/// Runs one statement of a write transaction, recording the element ids it returns in
/// `nodes`.
async fn run_step(
    txn: &mut neo4rs::Txn,
    step: Step<'_>,
    nodes: &mut ElementIds,
) -> Result<(), Neo4jSinkError> {
    let q = query(step.text).param(step.param, step.value);
    let written = match step.returns {
        None => txn.run(q).await.map(drop),
        Some(node) => match txn.execute(q).await {
            Ok(mut rows) => match rows.single(txn.handle()).await {
                Ok(row) => return nodes.add(node, &row),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
    };
    written.map_err(Neo4jSinkError::neo4j("writing a batch"))
}

/// One hash lookup query: `(id, sha256)` of the nodes found.
async fn lookup_part(
    graph: &Graph,
    q: neo4rs::Query,
) -> Result<Vec<(i64, Option<String>)>, Neo4jSinkError> {
    let context = "looking up stored hashes";
    let mut rows = graph
        .execute_read(q)
        .await
        .map_err(Neo4jSinkError::neo4j(context))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.map_err(Neo4jSinkError::neo4j(context))? {
        out.push((get(&row, "id")?, get(&row, "sha")?));
    }
    Ok(out)
}

/// Genre or style names read back.
type Names = Vec<std::borrow::Cow<'static, str>>;

/// A column of `row`, decoded.
pub(crate) fn get<'r, T: serde::Deserialize<'r>>(
    row: &'r Row,
    key: &str,
) -> Result<T, Neo4jSinkError> {
    row.get(key)
        .map_err(|e| Neo4jSinkError::Decode(format!("column {key}: {e}")))
}

impl Sink for Neo4jSink {
    type Error = Neo4jSinkError;

    fn write_batch(
        &mut self,
        kind: RecordKind,
        records: &[SinkRecord<'_>],
    ) -> impl std::future::Future<Output = Result<SinkOutcome, Neo4jSinkError>> + Send {
        self.write(kind, records)
    }

    fn health_check(
        &mut self,
    ) -> impl std::future::Future<Output = Result<(), Neo4jSinkError>> + Send {
        self.health()
    }
}

#[cfg(test)]
mod tests {
    use super::transactions_for;

    #[test]
    fn a_batch_fills_the_running_transactions_then_caps_their_size() {
        // Too few records to give two transactions 250 each: one.
        assert_eq!(transactions_for(1, 2_500, 2), 1);
        assert_eq!(transactions_for(499, 2_500, 2), 1);
        // Enough for two (the consumers' writes of 2,000 records).
        assert_eq!(transactions_for(500, 2_500, 2), 2);
        assert_eq!(transactions_for(2_000, 2_500, 2), 2);
        assert_eq!(transactions_for(2_000, 2_500, 3), 3);
        // Then as many as the size cap needs.
        assert_eq!(transactions_for(5_000, 2_500, 2), 2);
        assert_eq!(transactions_for(5_001, 2_500, 2), 3);
        assert_eq!(transactions_for(20_000, 2_500, 2), 8);
        // A cap below the minimum size wins over it.
        assert_eq!(transactions_for(1_000, 100, 2), 10);
    }
}
