//! `discogsography`: the whole pipeline in one process, the README's main job.
//!
//! One command runs what the five services do between a dump and the two databases: the
//! extractor (parse, change detection, publish), and the graphinator and the tableinator
//! (consume, write through the sinks, ack after commit), joined by RabbitMQ or, with
//! `--bus memory`, by the in-process bus. The same library code as the services runs here;
//! only the wiring differs.
//!
//! * **Input**: with no flag, a sample dump of the four kinds written by the project
//!   ([`discogs_benches::sample`], `--sample-releases` releases plus matching artists,
//!   labels and masters, deterministic); `--input` a folder or file of dumps on disk;
//!   `--download` the newest complete dump from Discogs (about 11 GB).
//! * **Progress**: a line on the terminal every second (a log line every 10 s otherwise):
//!   the extractor's step, file, bytes and ETA, and the records each database has taken.
//! * **End**: when both consumers have handled the extraction (every kind's
//!   `extraction_complete`, which also runs the purge and the graph's aggregates), the
//!   consumers stop and [`run`] returns a [`Summary`]: records per kind published and
//!   written (new, changed, unchanged, removed) in each database, time, rate, dead letters.
//! * **Again**: a second run finds the version done and publishes nothing; a new month
//!   publishes only what changed (the extractor's hash store lives in the data folder).
//!
//! Ctrl-C stops at the next batch: the extractor saves its resume point, the consumers
//! settle what they hold, and the next run goes on from there.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use discogs_benches::sample::{self, SampleSize};
use discogs_bus::{
    Admin, AmqpPublisher, Consumer, MemoryBus, Publisher, PublisherConfig, Topology,
};
use discogs_model::{RecordKind, Sink as _};
use discogs_sink_neo4j::Neo4jSink;
use discogs_sink_pg::PgSink;

use crate::config::{AmqpArgs, Neo4jArgs, PostgresArgs, ServiceArgs};
use crate::consumer::{
    self, ConsumerArgs, ConsumerStats, DeadLetterSource, Neo4jTarget, PgTarget, ServiceParts,
    WriteCounts,
};
use crate::extractor::bus::BusOutlet;
use crate::extractor::publish::Outlet as _;
use crate::extractor::run::{CycleOutcome, Extractor};
use crate::extractor::state::VersionState;
use crate::extractor::ExtractorArgs;
use crate::health::{self, Status};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// The version (date) of the built-in sample dump.
pub const SAMPLE_VERSION: &str = "20260101";

/// The consumers the pipeline runs, in the order of the summary's columns.
const CONSUMERS: [&str; 2] = ["graphinator", "tableinator"];

/// Which message bus joins the stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BusChoice {
    /// RabbitMQ at `AMQP_CONNECTION` (durable queues: an interrupted run loses nothing).
    Rabbitmq,
    /// A bounded queue per consumer and kind inside this process (no broker needed;
    /// undelivered messages are lost with the process, the extractor's resume point is not).
    Memory,
}

impl fmt::Display for BusChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rabbitmq => "RabbitMQ",
            Self::Memory => "the in-process bus",
        })
    }
}

/// The flags and environment variables of `discogsography`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "discogsography",
    version,
    about = "Runs the whole pipeline once: a Discogs dump (a built-in sample by default) into Neo4j and PostgreSQL.",
    after_help = "Without flags: writes a small sample dump into the data folder and loads it through RabbitMQ into both databases (start them with scripts/services up)."
)]
pub struct PipelineArgs {
    /// Dumps on disk: a folder of `discogs_YYYYMMDD_<kind>.xml[.gz]` files (the newest date
    /// is taken) or one such file, instead of the sample.
    #[arg(long, env = "DISCOGS_INPUT", conflicts_with = "download")]
    pub input: Option<PathBuf>,
    /// Fetch the newest complete dump from Discogs (about 11 GB, verified against its
    /// CHECKSUM) instead of the sample.
    #[arg(long)]
    pub download: bool,
    /// Releases in the built-in sample (plus artists, labels and masters in a real dump's
    /// proportions, all referencing each other).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub sample_releases: u64,
    /// The bus between the stages.
    #[arg(long, value_enum, default_value_t = BusChoice::Rabbitmq)]
    pub bus: BusChoice,
    /// Folder for downloads, the sample, the extractor's state and hash store.
    #[arg(long, env = "DISCOGS_ROOT", default_value = "discogsography-data")]
    pub data_dir: PathBuf,
    /// Where `--download` looks for dumps.
    #[arg(
        long,
        env = "DISCOGS_BASE_URL",
        default_value = "https://data.discogs.com/"
    )]
    pub base_url: String,
    /// Process the version again even if it was finished (changed records only, unless
    /// `--full-publish`).
    #[arg(short = 'f', long, env = "FORCE_REPROCESS")]
    pub force_reprocess: bool,
    /// Publish every record, changed or not.
    #[arg(long, env = "FULL_PUBLISH")]
    pub full_publish: bool,
    /// Accept a dump without a usable CHECKSUM.
    #[arg(long, env = "ALLOW_UNVERIFIED")]
    pub allow_unverified: bool,
    /// Parser worker threads (default: the number of cores).
    #[arg(long, env = "MAX_WORKERS")]
    pub max_workers: Option<usize>,
    /// Records per message on the bus.
    #[arg(long, env = "BATCH_SIZE", default_value_t = 100)]
    pub batch_size: usize,
    /// How batch bodies travel on RabbitMQ: `lz4` (JSON compressed: 40 % of the bytes on
    /// the broker's disk and network, for a few µs of CPU per record) or `none` (JSON).
    #[arg(long, env = "BUS_COMPRESSION", default_value = "lz4", value_parser = crate::config::parse_compression)]
    pub bus_compression: discogs_bus::Compression,
    /// Serve `/health` and `/metrics` of the three stages on `HEALTH_PORT` (extractor),
    /// +1 (graphinator) and +2 (tableinator), where the dashboard looks for them.
    #[arg(long)]
    pub serve_health: bool,
    /// No progress display.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Health port (with `--serve-health`) and logging.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The broker (with `--bus rabbitmq`).
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// The graph database.
    #[command(flatten)]
    pub neo4j: Neo4jArgs,
    /// The relational database.
    #[command(flatten)]
    pub postgres: PostgresArgs,
    /// The consumers' settings.
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The version was published and both databases took all of it.
    Completed,
    /// The version had been processed before: nothing published.
    UpToDate,
    /// Stopped by Ctrl-C or SIGTERM; the next run resumes.
    Interrupted,
}

/// One kind's line of the [`Summary`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindSummary {
    /// Records the extractor published (new or changed).
    pub published: u64,
    /// What the graphinator wrote into Neo4j.
    pub graph: WriteCounts,
    /// What the tableinator wrote into PostgreSQL.
    pub tables: WriteCounts,
    /// Messages in the two consumers' dead-letter queues.
    pub dead_letters: u64,
}

/// What a run did, printed at the end.
#[derive(Debug, Clone)]
pub struct Summary {
    /// What was read, for people (`sample dump (2000 releases)`, a path, `Discogs`).
    pub input: String,
    /// The dump version, when one was found.
    pub version: Option<String>,
    /// The bus used.
    pub bus: BusChoice,
    /// How it ended.
    pub ending: Ending,
    /// Per kind.
    pub kinds: BTreeMap<RecordKind, KindSummary>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// When each stage was done, from the start of publishing: `extractor` (last batch
    /// confirmed), `graphinator` and `tableinator` (everything written); empty when
    /// nothing was published.
    pub stages: Vec<(String, Duration)>,
}

impl Summary {
    /// Records published, all kinds.
    #[must_use]
    pub fn published(&self) -> u64 {
        self.kinds.values().map(|k| k.published).sum()
    }

    /// Dead-lettered messages, all kinds.
    #[must_use]
    pub fn dead_letters(&self) -> u64 {
        self.kinds.values().map(|k| k.dead_letters).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.version.as_deref().unwrap_or("?");
        let ending = match self.ending {
            Ending::Completed => "loaded",
            Ending::UpToDate => "already loaded: nothing new to publish",
            Ending::Interrupted => "interrupted: run the same command again to resume",
        };
        writeln!(
            f,
            "discogsography: {} version {version} via {}: {ending}",
            self.input, self.bus
        )?;
        writeln!(
            f,
            "{:<9} {:>10}  {:>30}  {:>30}  {:>5}",
            "kind",
            "published",
            "Neo4j new/changed/same/removed",
            "PostgreSQL new/changed/same/removed",
            "dead"
        )?;
        let triple = |w: &WriteCounts| {
            format!(
                "{} / {} / {} / {}",
                w.inserted, w.updated, w.unchanged, w.removed
            )
        };
        for (kind, k) in &self.kinds {
            writeln!(
                f,
                "{:<9} {:>10}  {:>30}  {:>30}  {:>5}",
                kind.plural(),
                k.published,
                triple(&k.graph),
                triple(&k.tables),
                k.dead_letters
            )?;
        }
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        #[allow(clippy::cast_precision_loss)]
        let rate = self.published() as f64 / secs;
        writeln!(
            f,
            "{} records published in {secs:.1} s ({rate:.0} records/s end to end)",
            self.published()
        )?;
        for (stage, at) in &self.stages {
            let secs = at.as_secs_f64().max(1e-3);
            #[allow(clippy::cast_precision_loss)]
            let rate = self.published() as f64 / secs;
            writeln!(
                f,
                "  {stage:<12} done after {secs:>7.1} s ({rate:.0} records/s)"
            )?;
        }
        if self.dead_letters() > 0 {
            writeln!(
                f,
                "⚠ {} messages dead-lettered: see the *-dlq queues (RabbitMQ management UI, http://127.0.0.1:15672) and the log",
                self.dead_letters()
            )?;
        }
        Ok(())
    }
}

/// Where to look once the data is in, for the end of the command's output.
#[must_use]
pub fn next_steps(args: &PipelineArgs) -> String {
    format!(
        "Next:\n  \
         PostgreSQL   psql -h {pg} -U {user} {db} -c 'SELECT count(*) FROM {schema}.releases'\n  \
         Neo4j        {neo4j} (Bolt, user {nuser}; e.g. cypher-shell, or the explorer below)\n  \
         dashboard    cargo run --release -p discogs-apps --bin dashboard   → http://127.0.0.1:8003\n  \
         explorer     cargo run --release -p discogs-apps --bin explore     → http://127.0.0.1:8006\n",
        pg = args.postgres.connection.host(),
        user = args.postgres.connection.postgres_username,
        db = args.postgres.connection.postgres_database,
        schema = args.postgres.postgres_schema,
        neo4j = args.neo4j.neo4j_address,
        nuser = args.neo4j.neo4j_username,
    )
}

/// The input resolved: the extractor's root and `--input`, and the summary's description.
struct Source {
    root: PathBuf,
    input: Option<PathBuf>,
    description: String,
}

/// Writes the sample (once per size) or takes the user's choice.
async fn source(args: &PipelineArgs) -> anyhow::Result<Source> {
    if let Some(input) = &args.input {
        anyhow::ensure!(
            input.exists(),
            "--input {}: no such file or folder",
            input.display()
        );
        return Ok(Source {
            root: args.data_dir.clone(),
            input: Some(input.clone()),
            description: input.display().to_string(),
        });
    }
    if args.download {
        return Ok(Source {
            root: args.data_dir.clone(),
            input: None,
            description: format!("newest dump at {}", args.base_url),
        });
    }
    // The sample has its own root: its hash store and state never mix with a real dump's.
    let root = args
        .data_dir
        .join(format!("sample-{}", args.sample_releases));
    let dir = root.join("dump");
    let size = SampleSize::releases(args.sample_releases);
    let present = RecordKind::ALL
        .iter()
        .all(|k| dir.join(sample::file_name(SAMPLE_VERSION, *k)).is_file());
    if !present {
        tracing::info!(dir = %dir.display(), records = size.total(), "Writing the sample dump.");
        let out = dir.clone();
        tokio::task::spawn_blocking(move || sample::write_dump(&out, SAMPLE_VERSION, size, 42))
            .await
            .context("the sample writer panicked")?
            .with_context(|| format!("writing the sample dump into {}", dir.display()))?;
    }
    Ok(Source {
        root,
        input: Some(dir),
        description: format!(
            "sample dump ({} releases, {} records)",
            size.releases,
            size.total()
        ),
    })
}

/// The extractor's flags for this run.
fn extractor_args(args: &PipelineArgs, source: &Source) -> ExtractorArgs {
    ExtractorArgs {
        service: args.service.clone(),
        amqp: args.amqp.clone(),
        discogs_root: source.root.clone(),
        base_url: args.base_url.clone(),
        input: source.input.clone(),
        periodic_check_days: 1,
        force_reprocess: args.force_reprocess,
        full_publish: args.full_publish,
        allow_unverified: args.allow_unverified,
        once: true,
        max_workers: args.max_workers,
        batch_size: args.batch_size.max(1),
        bus_compression: args.bus_compression,
        request_gap_secs: 5.0,
        checkpoint_secs: 1.0,
        hash_cache_mb: 32,
        consumers: CONSUMERS.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// Fails early, with the address, when a database does not answer.
async fn check_databases(args: &PipelineArgs) -> anyhow::Result<()> {
    let limit = Duration::from_secs(15);
    let mut graph = Neo4jSink::new(args.neo4j.sink_config()).context("Neo4j configuration")?;
    tokio::time::timeout(limit, graph.health_check())
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {limit:?}"))
        .and_then(|r| r.map_err(anyhow::Error::new))
        .with_context(|| {
            format!(
                "Neo4j at {} is not reachable (scripts/services up starts it)",
                args.neo4j.neo4j_address
            )
        })?;
    let config = args.postgres.sink_config("discogsography");
    let redacted = config.redacted_url();
    let mut tables = PgSink::new(config).context("PostgreSQL configuration")?;
    tokio::time::timeout(limit, tables.health_check())
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {limit:?}"))
        .and_then(|r| r.map_err(anyhow::Error::new))
        .with_context(|| {
            format!("PostgreSQL at {redacted} is not reachable (scripts/services up starts it)")
        })?;
    Ok(())
}

/// Runs the pipeline once and returns what it did. `shutdown` (Ctrl-C) interrupts it
/// cleanly.
///
/// # Errors
///
/// When a database or the broker cannot be reached, the input cannot be read, or a stage
/// fails for good (the summary of what was done is then in the log).
pub async fn run(args: PipelineArgs, shutdown: Shutdown) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let health_listeners = bind_health(&args).await?;
    check_databases(&args).await?;
    let source = source(&args).await?;
    let stages = Stages::new(&args, &source);
    let summary = match args.bus {
        BusChoice::Rabbitmq => {
            let url = args.amqp.amqp_connection.expose().to_owned();
            let topology = Topology::with_prefix(&args.amqp.exchange_prefix);
            let mut consumers = Vec::new();
            for name in CONSUMERS {
                consumers.push(
                    consumer::declare_amqp(&url, &topology, name, &args.consumer)
                        .await
                        .with_context(|| {
                            format!(
                                "RabbitMQ at {} (scripts/services up starts it; --bus memory needs none)",
                                args.amqp.amqp_connection
                            )
                        })?,
                );
            }
            let config = publisher_config(&args);
            let publisher = AmqpPublisher::new(&url, topology.clone(), config)
                .context("setting up the publisher")?;
            let dead = DeadLetterSource::Broker {
                url: url.clone(),
                topology: topology.clone(),
            };
            let (summary, outlet) = stages
                .run(consumers, publisher, dead, health_listeners, shutdown)
                .await?;
            if let Err(e) = outlet.0.close().await {
                tracing::warn!(error = %e, "Closing the broker connection failed.");
            }
            let mut summary = summary;
            if let Ok(admin) = Admin::connect(&url, topology).await {
                for (kind, k) in &mut summary.kinds {
                    for name in CONSUMERS {
                        let depth = admin.dead_letter_depth(name, *kind).await;
                        k.dead_letters += u64::from(depth.ok().flatten().unwrap_or(0));
                    }
                }
                admin.close().await.ok();
            }
            summary
        }
        BusChoice::Memory => {
            let bus = MemoryBus::new(64, Topology::default().delivery_limit);
            let mut consumers = Vec::new();
            for name in CONSUMERS {
                let mut per_kind = BTreeMap::new();
                for kind in RecordKind::ALL {
                    per_kind.insert(
                        kind,
                        bus.consumer(args.consumer.consumer_config(name, kind))?,
                    );
                }
                consumers.push(per_kind);
            }
            let publisher = bus.publisher(publisher_config(&args))?;
            let (mut summary, _outlet) = stages
                .run(
                    consumers,
                    publisher,
                    DeadLetterSource::Process,
                    health_listeners,
                    shutdown,
                )
                .await?;
            for (kind, k) in &mut summary.kinds {
                for name in CONSUMERS {
                    k.dead_letters += bus.dead_letters(name, *kind).len() as u64;
                }
            }
            bus.close();
            summary
        }
    };
    Ok(Summary {
        elapsed: started.elapsed(),
        ..summary
    })
}

/// The health servers' listeners with `--serve-health` (none without): the extractor's on
/// `HEALTH_PORT`, then one per consumer in [`CONSUMERS`] order on the ports after it.
/// Bound before any work starts, so that a port in use stops the run at once, naming the
/// address, instead of leaving a stage without `/health` (the dashboard would show it
/// down for the whole run).
async fn bind_health(args: &PipelineArgs) -> anyhow::Result<Vec<tokio::net::TcpListener>> {
    if !args.serve_health {
        return Ok(Vec::new());
    }
    let mut listeners = Vec::new();
    for offset in 0..=CONSUMERS.len() {
        let port = u16::try_from(offset)
            .ok()
            .and_then(|o| args.service.health_port.checked_add(o))
            .context("HEALTH_PORT leaves no room for the consumers' ports after it")?;
        listeners.push(health::bind((args.service.health_bind, port).into()).await?);
    }
    Ok(listeners)
}

fn publisher_config(args: &PipelineArgs) -> PublisherConfig {
    PublisherConfig {
        max_records: args.batch_size.max(1),
        consumers: CONSUMERS.iter().map(|c| (*c).to_owned()).collect(),
        connection_name: "discogsography pipeline".into(),
        compression: args.bus_compression,
        ..PublisherConfig::default()
    }
}

/// The three stages of one run, before the bus is chosen.
struct Stages<'a> {
    args: &'a PipelineArgs,
    extractor: Extractor,
    description: String,
    root: PathBuf,
}

impl<'a> Stages<'a> {
    fn new(args: &'a PipelineArgs, source: &Source) -> Self {
        Self {
            args,
            extractor: Extractor::new(extractor_args(args, source)),
            description: source.description.clone(),
            root: source.root.clone(),
        }
    }

    /// Runs the consumers (`consumers`: the graphinator's and the tableinator's, per kind)
    /// and the extractor publishing through `publisher`, until the consumers have taken
    /// everything; returns the summary (dead letters not yet counted) and the outlet.
    /// `health_listeners` holds the bound health listeners ([`bind_health`]), or none.
    async fn run<C, P>(
        self,
        consumers: Vec<BTreeMap<RecordKind, C>>,
        publisher: P,
        dead_letters: DeadLetterSource,
        health_listeners: Vec<tokio::net::TcpListener>,
        shutdown: Shutdown,
    ) -> anyhow::Result<(Summary, BusOutlet<P>)>
    where
        C: Consumer + 'static,
        P: Publisher,
    {
        let args = self.args;
        // The consumers stop when the work is done, or when the user stops everything.
        let stop = Shutdown::new();
        {
            let (outer, stop) = (shutdown.clone(), stop.clone());
            tokio::spawn(async move {
                outer.requested().await;
                stop.trigger();
            });
        }
        let mut stats = Vec::new();
        let mut tasks = Vec::new();
        let mut servers = Vec::new();
        let mut listeners = health_listeners.into_iter();
        // The extractor's listener comes first, the consumers' after it.
        let extractor_listener = listeners.next();
        for (name, mut per_kind) in CONSUMERS.into_iter().zip(consumers) {
            let metrics = Metrics::new(name);
            let status = Status::new(name);
            let parts = ServiceParts {
                name: name.to_owned(),
                policy: args.consumer.retry_policy(),
                dead_letters: dead_letters.clone(),
                status: status.clone(),
                stats: ConsumerStats::new(metrics.clone()),
                shutdown: stop.clone(),
                write_records: args.consumer.write_records_usize(),
            };
            stats.push(parts.stats.clone());
            if let Some(listener) = listeners.next() {
                servers.push(tokio::spawn(health::serve_on(
                    listener,
                    health::router(status, metrics),
                    stop.clone(),
                )));
            }
            let make_consumer = move |kind| per_kind.remove(&kind).context("one consumer per kind");
            let task = if name == "graphinator" {
                let config = args.neo4j.sink_config();
                tokio::spawn(consumer::run(parts, make_consumer, move |_kind| {
                    Ok(Neo4jTarget::new(
                        Neo4jSink::new(config.clone()).context("Neo4j configuration")?,
                    ))
                }))
            } else {
                let config = args.postgres.sink_config(name);
                let first_load = args.postgres.postgres_first_load;
                tokio::spawn(consumer::run(parts, make_consumer, move |_kind| {
                    Ok(PgTarget::new(
                        PgSink::new(config.clone()).context("PostgreSQL configuration")?,
                    )
                    .first_load(first_load))
                }))
            };
            tasks.push(task);
        }
        if let Some(listener) = extractor_listener {
            servers.push(tokio::spawn(health::serve_on(
                listener,
                self.extractor.router(),
                stop.clone(),
            )));
        }
        let display = (!args.quiet)
            .then(|| spawn_progress(self.extractor.clone(), stats.clone(), stop.clone()));

        let mut outlet = BusOutlet(publisher);
        let force = args.force_reprocess;
        let publishing = Instant::now();
        let outcome = self.extractor.cycle(&mut outlet, &shutdown, force).await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                stop.trigger();
                return Err(e.context("extracting"));
            }
        };
        let (ending, version, published) = match outcome {
            CycleOutcome::Completed { version, published } => {
                (Ending::Completed, Some(version), published)
            }
            CycleOutcome::AlreadyDone { version } => {
                (Ending::UpToDate, Some(version), BTreeMap::new())
            }
            CycleOutcome::Interrupted => (Ending::Interrupted, None, BTreeMap::new()),
        };
        outlet.flush().await.context("flushing the publisher")?;
        let four_kinds = version
            .as_deref()
            .and_then(|v| VersionState::load(&self.root, v).ok().flatten())
            .is_some_and(|s| s.extraction_complete);
        let mut ending = ending;
        let mut stages = Vec::new();
        if ending == Ending::Completed {
            stages.push(("extractor".to_owned(), publishing.elapsed()));
            match wait_for_consumers(
                &stats,
                &published,
                four_kinds,
                args.batch_size.max(1) as u64,
                &tasks,
                &shutdown,
            )
            .await
            {
                Some(done) => stages.extend(
                    CONSUMERS
                        .iter()
                        .zip(done)
                        .map(|(name, at)| ((*name).to_owned(), at - publishing)),
                ),
                None => ending = Ending::Interrupted,
            }
        }
        stop.trigger();
        let mut failure = None;
        for task in tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    failure.get_or_insert(e);
                }
                Err(e) => {
                    failure.get_or_insert(anyhow::Error::new(e).context("a consumer panicked"));
                }
            }
        }
        for server in servers {
            if let Ok(Err(e)) = server.await {
                tracing::warn!(error = %format!("{e:#}"), "A health server ended with an error.");
            }
        }
        if let Some(display) = display {
            display.await.ok();
        }
        if let Some(e) = failure {
            return Err(e.context("consuming"));
        }
        let mut kinds = BTreeMap::new();
        for kind in RecordKind::ALL {
            kinds.insert(
                kind,
                KindSummary {
                    published: published.get(&kind).copied().unwrap_or(0),
                    graph: stats[0].counts(kind),
                    tables: stats[1].counts(kind),
                    dead_letters: 0,
                },
            );
        }
        let summary = Summary {
            input: self.description,
            version,
            bus: args.bus,
            ending,
            kinds,
            elapsed: Duration::ZERO,
            stages,
        };
        Ok((summary, outlet))
    }
}

/// Waits until both consumers have taken what was published: every kind's
/// `extraction_complete` handled (when the input had four kinds: that message follows
/// every batch on each queue and runs the completion steps), else as many records as were
/// published (a dead-lettered message counts as a full batch). Returns when each consumer
/// got there, or `None` when stopped first.
async fn wait_for_consumers(
    stats: &[ConsumerStats],
    published: &BTreeMap<RecordKind, u64>,
    four_kinds: bool,
    batch: u64,
    tasks: &[tokio::task::JoinHandle<anyhow::Result<()>>],
    shutdown: &Shutdown,
) -> Option<Vec<Instant>> {
    let done = |s: &ConsumerStats| {
        if four_kinds {
            RecordKind::ALL
                .iter()
                .all(|k| s.extractions_complete(*k) > 0)
        } else {
            published.iter().all(|(kind, n)| {
                let c = s.counts(*kind);
                c.records + c.dead_lettered * batch >= *n
            })
        }
    };
    let mut finished: Vec<Option<Instant>> = vec![None; stats.len()];
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        for (at, s) in finished.iter_mut().zip(stats) {
            if at.is_none() && done(s) {
                *at = Some(Instant::now());
            }
        }
        if finished.iter().all(Option::is_some) {
            return Some(finished.into_iter().flatten().collect());
        }
        if shutdown.is_requested() || tasks.iter().any(tokio::task::JoinHandle::is_finished) {
            return None;
        }
        tick.tick().await;
    }
}

/// The progress display: a line redrawn every second on a terminal, a log line every
/// 10 s otherwise.
fn spawn_progress(
    extractor: Extractor,
    stats: Vec<ConsumerStats>,
    stop: Shutdown,
) -> tokio::task::JoinHandle<()> {
    let terminal = std::io::stderr().is_terminal();
    tokio::spawn(async move {
        let every = if terminal {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        };
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.requested() => break,
            }
            let written = |s: &ConsumerStats| -> u64 {
                RecordKind::ALL.iter().map(|k| s.counts(*k).records).sum()
            };
            let published: u64 = RecordKind::ALL
                .iter()
                .map(|k| {
                    extractor
                        .metrics
                        .counter(
                            "records_published_total",
                            "Records published (new or changed).",
                            &[("kind", k.plural())],
                        )
                        .get()
                })
                .sum();
            let step = extractor.progress.snapshot();
            let extract = if step.step.is_empty() {
                "extractor done".to_owned()
            } else {
                step.line(20)
            };
            let line = format!(
                "{extract} | published {published} | Neo4j {} | PostgreSQL {}",
                written(&stats[0]),
                written(&stats[1])
            );
            if terminal {
                let mut err = std::io::stderr().lock();
                // A failed write to the terminal is not worth stopping for.
                drop(write!(err, "\r\x1b[2K{line}"));
                drop(err.flush());
            } else {
                tracing::info!("{line}");
            }
        }
        if terminal {
            drop(write!(std::io::stderr(), "\r\x1b[2K"));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn defaults_run_the_sample_through_rabbitmq() {
        let args = PipelineArgs::parse_from(["discogsography"]);
        assert_eq!(args.bus, BusChoice::Rabbitmq);
        assert!(args.input.is_none() && !args.download);
        assert_eq!(args.sample_releases, 2_000);
        let args = PipelineArgs::parse_from(["discogsography", "--bus", "memory", "--input", "/x"]);
        assert_eq!(args.bus, BusChoice::Memory);
        assert!(
            PipelineArgs::try_parse_from(["discogsography", "--input", "/x", "--download"])
                .is_err()
        );
        assert!(
            PipelineArgs::try_parse_from(["discogsography", "--sample-releases", "0"]).is_err()
        );
    }

    #[test]
    fn summary_prints_every_kind_and_the_rate() {
        let mut kinds = BTreeMap::new();
        for kind in RecordKind::ALL {
            kinds.insert(
                kind,
                KindSummary {
                    published: 10,
                    graph: WriteCounts {
                        records: 10,
                        inserted: 10,
                        ..WriteCounts::default()
                    },
                    tables: WriteCounts {
                        records: 10,
                        inserted: 9,
                        updated: 1,
                        ..WriteCounts::default()
                    },
                    dead_letters: 0,
                },
            );
        }
        let summary = Summary {
            input: "sample".into(),
            version: Some("20260101".into()),
            bus: BusChoice::Memory,
            ending: Ending::Completed,
            kinds,
            elapsed: Duration::from_secs(2),
            stages: vec![("extractor".into(), Duration::from_secs(1))],
        };
        let text = summary.to_string();
        for kind in RecordKind::ALL {
            assert!(text.contains(kind.plural()), "{text}");
        }
        assert!(
            text.contains("10 / 0 / 0") && text.contains("9 / 1 / 0"),
            "{text}"
        );
        assert!(
            text.contains("40 records published in 2.0 s (20 records/s"),
            "{text}"
        );
        assert!(
            text.contains("extractor    done after     1.0 s (40 records/s)"),
            "{text}"
        );
        assert!(text.contains("Neo4j new/changed/same/removed"), "{text}");
        assert!(
            text.contains("10 / 0 / 0 / 0") && text.contains("9 / 1 / 0 / 0"),
            "{text}"
        );
        assert!(!text.contains("dead-lettered"));
    }
}
