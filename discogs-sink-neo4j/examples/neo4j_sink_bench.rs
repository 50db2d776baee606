//! Benchmark of the Neo4j sink on generated records: first load of artists, labels,
//! masters and releases (in that order, as a full dump loads), re-load of unchanged
//! releases, an update with 10% of the releases changed, and the post-extraction work.
//! Prints records/s for each phase.
//!
//! Run with (services up, see docs/services.md):
//!
//! ```text
//! eval "$(scripts/services env)"
//! cargo run --release -p discogs-sink-neo4j --example neo4j_sink_bench -- [RELEASES] [BATCH] [TX_RECORDS] [WRITE_TRANSACTIONS]
//! ```
//!
//! Defaults: 100000 releases (and half as many artists, an eighth as many labels and
//! masters), batches of 5000 records, at most 5000 records per transaction, the sink's
//! default number of concurrent write transactions per chunk. With `NEO4J_PID` set to the
//! server's process id, each phase also prints the server's CPU time per record (from
//! `/proc`). The server
//! comes from `NEO4J_TEST_URI`, `NEO4J_USERNAME`, `NEO4J_PASSWORD`; the benchmark writes in
//! a namespace of its own and drops it at the end (unless `KEEP_GRAPH` is set).
//!
//! Records come from discogs-benches' `Generator` (seed 42). Their references point at
//! random ids; the benchmark maps each to one of the generated records of that kind, so
//! that, as in a full load, releases refer to artists, labels and masters already in the
//! graph (set `BENCH_STUBS` to keep the random ids: every reference then creates a stub).
//! Records are generated and hashed outside the timed sections: the figures are the
//! sink's, from `write_batch` call to commit.

use std::time::{Duration, Instant};

use discogs_benches::generate::Generator;
use discogs_model::{Record, RecordKind, Sink, SinkOutcome, SinkRecord};
use discogs_sink_neo4j::{Neo4jSink, Neo4jSinkConfig};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The ids of the records the generator makes for `kind`, in order.
fn ids(kind: RecordKind, n: usize) -> Vec<u64> {
    Generator::new(kind, 42).take(n).map(|r| r.id()).collect()
}

/// Points a reference at one of `pool`'s ids.
fn remap(id: &mut Option<u64>, pool: &[u64]) {
    if let (Some(v), false) = (id.as_mut(), pool.is_empty()) {
        *v = pool[usize::try_from(*v).unwrap_or(0) % pool.len()];
    }
}

/// Generated records of every kind with references mapped into the generated ids.
struct Data {
    artists: Vec<u64>,
    labels: Vec<u64>,
    masters: Vec<u64>,
    releases: Vec<u64>,
    stubs: bool,
}

impl Data {
    fn fix(&self, record: &mut Record<'static>) {
        if self.stubs {
            return;
        }
        match record {
            Record::Artist(a) => {
                for r in a
                    .aliases
                    .iter_mut()
                    .chain(&mut a.members)
                    .chain(&mut a.groups)
                {
                    remap(&mut r.id, &self.artists);
                }
            }
            Record::Label(l) => {
                for r in l.sublabels.iter_mut().chain(l.parent_label.as_mut()) {
                    remap(&mut r.id, &self.labels);
                }
            }
            Record::Master(m) => {
                remap(&mut m.main_release, &self.releases);
                for c in &mut m.artists {
                    remap(&mut c.id, &self.artists);
                }
            }
            Record::Release(r) => {
                for c in r.artists.iter_mut().chain(&mut r.extra_artists) {
                    remap(&mut c.id, &self.artists);
                }
                for l in &mut r.labels {
                    remap(&mut l.id, &self.labels);
                }
                remap(&mut r.master_id, &self.masters);
            }
        }
    }

    /// Writes `n` records of `kind` in batches; every `change_every`-th release (when
    /// set) gets a new title. Returns the outcome and the time spent in `write_batch`.
    async fn pass(
        &self,
        sink: &mut Neo4jSink,
        kind: RecordKind,
        n: usize,
        batch: usize,
        change_every: Option<usize>,
    ) -> Result<(SinkOutcome, Duration)> {
        let mut generator = Generator::new(kind, 42);
        let mut outcome = SinkOutcome::default();
        let mut spent = Duration::ZERO;
        let mut done = 0;
        while done < n {
            let size = batch.min(n - done);
            let records: Vec<SinkRecord<'static>> = (done..done + size)
                .map(|i| {
                    let mut record = generator.record();
                    self.fix(&mut record);
                    if change_every.is_some_and(|k| i % k == 0) {
                        if let Record::Release(r) = &mut record {
                            r.title = format!("{} (changed {i})", r.title).into();
                            r.genres.reverse();
                            r.artists.pop();
                        }
                    }
                    SinkRecord::new(record)
                })
                .collect();
            let start = Instant::now();
            outcome += sink.write_batch(kind, &records).await?;
            spent += start.elapsed();
            done += size;
        }
        Ok((outcome, spent))
    }
}

/// CPU time (user + system) of process `pid` so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    // Clock ticks are 1/100 s on Linux.
    Some(Duration::from_millis(ticks * 10))
}

/// ` server CPU …` since `before`, per record, when the server's pid is known.
fn server_cpu(pid: Option<u32>, before: Option<Duration>, n: usize, wall: Duration) -> String {
    match (cpu_time(pid), before) {
        (Some(now), Some(before)) => {
            let used = now.saturating_sub(before);
            #[allow(clippy::cast_precision_loss)]
            let per = used.as_secs_f64() * 1e6 / n.max(1) as f64;
            format!(
                "; server CPU {:.1} s = {per:.0} µs/record, {:.0} % of one core",
                used.as_secs_f64(),
                100.0 * used.as_secs_f64() / wall.as_secs_f64().max(1e-9)
            )
        }
        _ => String::new(),
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    n / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let releases = arg(1, 100_000);
    let batch = arg(2, 5_000);
    let tx_records = arg(3, 5_000);
    let write_transactions = arg(4, discogs_sink_neo4j::default_write_transactions());
    let pid: Option<u32> = std::env::var("NEO4J_PID").ok().and_then(|p| p.parse().ok());
    let (artists, labels, masters) = (releases / 2, releases / 8, releases / 8);
    let stubs = std::env::var_os("BENCH_STUBS").is_some();
    let namespace = format!("Bench{}_", std::process::id());
    let config = Neo4jSinkConfig::new(
        env("NEO4J_TEST_URI", "bolt://127.0.0.1:7687"),
        env("NEO4J_USERNAME", "neo4j"),
        env("NEO4J_PASSWORD", "discogsography"),
    )
    .namespace(&namespace)
    .transaction_records(tx_records)
    .write_transactions(write_transactions)
    .timeout_secs(600);
    let mut sink = Neo4jSink::new(config)?;
    sink.ensure_schema().await?;
    println!(
        "neo4j_sink_bench: {releases} releases, {artists} artists, {labels} labels, {masters} masters; \
         batches of {batch}, {tx_records} records per chunk in up to {write_transactions} concurrent \
         transactions, namespace {namespace}{}",
        if stubs { ", references left random (stubs)" } else { "" }
    );
    let data = Data {
        artists: ids(RecordKind::Artist, artists),
        labels: ids(RecordKind::Label, labels),
        masters: ids(RecordKind::Master, masters),
        releases: ids(RecordKind::Release, releases),
        stubs,
    };

    for (kind, n) in [
        (RecordKind::Artist, artists),
        (RecordKind::Label, labels),
        (RecordKind::Master, masters),
        (RecordKind::Release, releases),
    ] {
        let cpu = cpu_time(pid);
        let stats = sink.stats();
        let (outcome, t) = data.pass(&mut sink, kind, n, batch, None).await?;
        println!(
            "  first load, {kind:<8} {:>9.0} records/s  ({n} in {:.1} s, {outcome:?}, deadlock retries {}{})",
            rate(n, t),
            t.as_secs_f64(),
            sink.stats().deadlock_retries - stats.deadlock_retries,
            server_cpu(pid, cpu, n, t)
        );
    }
    let before = sink.stats();
    let cpu = cpu_time(pid);
    let (outcome, t) = data
        .pass(&mut sink, RecordKind::Release, releases, batch, None)
        .await?;
    println!(
        "  re-load, unchanged    {:>9.0} releases/s ({:.1} s, {outcome:?}, write transactions: {}{})",
        rate(releases, t),
        t.as_secs_f64(),
        sink.stats().write_transactions - before.write_transactions,
        server_cpu(pid, cpu, releases, t)
    );
    let cpu = cpu_time(pid);
    let stats = sink.stats();
    let (outcome, t) = data
        .pass(&mut sink, RecordKind::Release, releases, batch, Some(10))
        .await?;
    println!(
        "  update, 10% changed   {:>9.0} releases/s ({:.1} s, {outcome:?}, deadlock retries {}{})",
        rate(releases, t),
        t.as_secs_f64(),
        sink.stats().deadlock_retries - stats.deadlock_retries,
        server_cpu(pid, cpu, releases, t)
    );
    let started = Instant::now();
    let report = sink.finish_extraction().await?;
    println!(
        "  finish_extraction     {:.1} s ({report:?})",
        started.elapsed().as_secs_f64()
    );
    if std::env::var_os("KEEP_GRAPH").is_some() {
        println!("  kept namespace {namespace} (KEEP_GRAPH is set)");
        return Ok(());
    }
    let started = Instant::now();
    sink.drop_namespace().await?;
    println!(
        "  namespace dropped in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
