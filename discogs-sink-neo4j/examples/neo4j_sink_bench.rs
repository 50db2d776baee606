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
//! masters), batches of 20000 records, and the sink's defaults for the records per
//! transaction (2500) and the write transactions running at once (2). With `NEO4J_PID` set to the
//! server's process id, each phase also prints the server's CPU time per record (from
//! `/proc`), and the part of it that is not the JVM compiling Neo4j's code. With
//! `BENCH_WARMUP=N` set, the same run on N releases goes first, unreported, in a namespace
//! of its own (a freshly started server spends its first minutes largely compiling). With
//! `BENCH_KINDS` set (comma-separated, e.g. `artists,masters`), only those kinds' first loads
//! run (the re-load and update phases need `releases`). The
//! server comes from `NEO4J_TEST_URI`, `NEO4J_USERNAME`, `NEO4J_PASSWORD`; the benchmark writes in
//! a namespace of its own and drops it at the end, after a failure too (unless `KEEP_GRAPH`
//! is set).
//!
//! Records come from discogs-benches' `Generator` (seed 42). Their references point at
//! random ids; the benchmark maps each to one of the generated records of that kind, so
//! that, as in a full load, releases refer to artists, labels and masters already in the
//! graph (set `BENCH_STUBS` to keep the random ids: every reference then creates a stub).
//! Records are generated and hashed outside the timed sections: the figures are the
//! sink's, from `write_batch` call to commit.

use std::time::{Duration, Instant};

use discogs_benches::generate::{Generator, IdPools, IdSpace};
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

/// Generated records of every kind with references mapped into the generated ids.
struct Data {
    pools: IdPools,
    stubs: bool,
}

impl Data {
    fn fix(&self, record: &mut Record<'static>) {
        if !self.stubs {
            self.pools.connect(record, 0);
        }
    }

    /// Writes `n` records of `kind` in batches; every `change_every`-th release (when
    /// set) gets a new title. Returns the outcome, the time spent in `write_batch` and
    /// this process's CPU time in it (the sink's client side; generating the records is
    /// left out).
    async fn pass(
        &self,
        sink: &mut Neo4jSink,
        kind: RecordKind,
        n: usize,
        batch: usize,
        change_every: Option<usize>,
    ) -> Result<(SinkOutcome, Duration, Duration)> {
        let mut generator = Generator::new(kind, 42);
        let mut outcome = SinkOutcome::default();
        let mut spent = Duration::ZERO;
        let mut client = Duration::ZERO;
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
            let cpu = own_cpu();
            outcome += sink.write_batch(kind, &records).await?;
            client += own_cpu().saturating_sub(cpu);
            spent += start.elapsed();
            done += size;
        }
        Ok((outcome, spent, client))
    }
}

/// CPU time (user + system) in a `/proc` `stat` line: utime and stime are the 14th and
/// 15th fields, counted after the parenthesised command name.
fn stat_cpu(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    // Clock ticks are 1/100 s on Linux.
    Some(Duration::from_millis(ticks * 10))
}

/// This process's CPU time so far, summed over its threads in nanoseconds
/// (`/proc/self/task/*/schedstat`; zero where there is no `/proc`). Not [`stat_cpu`]: a
/// batch costs the client only a few of its 10 ms clock ticks (a comparison on 2026-11-30
/// read 9 µs per master from the ticks against 12–13 from this).
fn own_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .sum()
}

/// CPU time of a process so far: `(all threads, its JIT compiler threads)`.
///
/// The JVM's compiler threads (`C1 CompilerThre…`, `C2 CompilerThre…`) are counted apart:
/// a freshly started server spends much of its CPU compiling Neo4j's own code for the
/// first minute or two of writes, a cost a long load pays once.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    total: Duration,
    jit: Duration,
}

fn cpu_time(pid: Option<u32>) -> Option<Cpu> {
    let pid = pid?;
    let total = stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    let mut jit = Duration::ZERO;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let name = stat.split_once('(').map_or("", |(_, n)| n);
        if name.starts_with("C1 CompilerThre") || name.starts_with("C2 CompilerThre") {
            jit += stat_cpu(&stat).unwrap_or_default();
        }
    }
    Some(Cpu { total, jit })
}

/// ` server CPU …` since `before`, per record, when the server's pid is known.
fn server_cpu(pid: Option<u32>, before: Option<Cpu>, n: usize, wall: Duration) -> String {
    match (cpu_time(pid), before) {
        (Some(now), Some(before)) => {
            let used = now.total.saturating_sub(before.total);
            let jit = now.jit.saturating_sub(before.jit);
            #[allow(clippy::cast_precision_loss)]
            let per = |d: Duration| d.as_secs_f64() * 1e6 / n.max(1) as f64;
            format!(
                "; server CPU {:.1} s = {:.0} µs/record ({:.0} without JIT compiling), {:.0} % of one core",
                used.as_secs_f64(),
                per(used),
                per(used.saturating_sub(jit)),
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

/// What one run needs besides the sink.
struct Run {
    releases: usize,
    batch: usize,
    pid: Option<u32>,
    stubs: bool,
    /// The kinds whose first load runs (all four unless `BENCH_KINDS` says otherwise).
    kinds: Vec<RecordKind>,
}

/// The kinds named in `BENCH_KINDS` (comma-separated: `artists,masters`), or all four.
fn bench_kinds() -> Result<Vec<RecordKind>> {
    let Ok(list) = std::env::var("BENCH_KINDS") else {
        return Ok(RecordKind::ALL.to_vec());
    };
    list.split(',')
        .map(|name| name.trim().parse::<RecordKind>().map_err(Into::into))
        .collect()
}

impl Run {
    /// One pass of `n` records of `kind` (every `change_every`-th changed), described in
    /// one line: its rate, outcome, the write transactions and deadlock retries it cost,
    /// and the server's CPU per record.
    async fn phase(
        &self,
        data: &Data,
        sink: &mut Neo4jSink,
        label: &str,
        kind: RecordKind,
        n: usize,
        change_every: Option<usize>,
    ) -> Result<String> {
        let cpu = cpu_time(self.pid);
        let before = sink.stats();
        let (outcome, t, client) = data.pass(sink, kind, n, self.batch, change_every).await?;
        let after = sink.stats();
        #[allow(clippy::cast_precision_loss)]
        let client = client.as_secs_f64() * 1e6 / n.max(1) as f64;
        Ok(format!(
            "  {label} {:>9.0} records/s ({n} in {:.1} s, {outcome:?}, write transactions {}, deadlock retries {}; client CPU {client:.0} µs/record{})",
            rate(n, t),
            t.as_secs_f64(),
            after.write_transactions - before.write_transactions,
            after.deadlock_retries - before.deadlock_retries,
            server_cpu(self.pid, cpu, n, t)
        ))
    }

    /// The four files' first load, a re-load of the unchanged releases, an update with 10 %
    /// of them changed, `finish_extraction`, and the namespace dropped (unless `keep`).
    /// Prints each phase when `report` is set.
    async fn run(&self, mut sink: Neo4jSink, report: bool, keep: bool) -> Result<()> {
        let releases = self.releases;
        let (artists, labels, masters) = (releases / 2, releases / 8, releases / 8);
        let say = |line: String| {
            if report {
                println!("{line}");
            }
        };
        let count = |kind| match kind {
            RecordKind::Artist => artists,
            RecordKind::Label => labels,
            RecordKind::Master => masters,
            RecordKind::Release => releases,
        } as u64;
        let data = Data {
            // The same generators (seed 42) as `Data::pass`.
            pools: IdPools::generated(42, IdSpace::FULL_DUMP, count),
            stubs: self.stubs,
        };
        for (kind, n) in [
            (RecordKind::Artist, artists),
            (RecordKind::Label, labels),
            (RecordKind::Master, masters),
            (RecordKind::Release, releases),
        ] {
            if !self.kinds.contains(&kind) {
                continue;
            }
            let label = format!("first load, {kind:<8}");
            say(self.phase(&data, &mut sink, &label, kind, n, None).await?);
        }
        let release = RecordKind::Release;
        if !self.kinds.contains(&release) {
            return self.finish(sink, say, keep).await;
        }
        say(self
            .phase(
                &data,
                &mut sink,
                "re-load, unchanged   ",
                release,
                releases,
                None,
            )
            .await?);
        say(self
            .phase(
                &data,
                &mut sink,
                "update, 10% changed  ",
                release,
                releases,
                Some(10),
            )
            .await?);
        let started = Instant::now();
        let report_ = sink.finish_extraction().await?;
        say(format!(
            "  finish_extraction     {:.1} s ({report_:?})",
            started.elapsed().as_secs_f64()
        ));
        self.finish(sink, say, keep).await
    }

    /// Drops the namespace, unless `keep`.
    async fn finish(&self, sink: Neo4jSink, say: impl Fn(String), keep: bool) -> Result<()> {
        if keep {
            say("  kept the namespace (KEEP_GRAPH is set)".to_owned());
            return Ok(());
        }
        let started = Instant::now();
        sink.drop_namespace().await?;
        say(format!(
            "  namespace dropped in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let releases = arg(1, 100_000);
    let batch = arg(2, 20_000);
    let tx_records = arg(3, discogs_sink_neo4j::default_transaction_records());
    let write_transactions = arg(4, discogs_sink_neo4j::default_write_transactions());
    let pid: Option<u32> = std::env::var("NEO4J_PID").ok().and_then(|p| p.parse().ok());
    let warmup: usize = env("BENCH_WARMUP", "0").parse()?;
    let stubs = std::env::var_os("BENCH_STUBS").is_some();
    let kinds = bench_kinds()?;
    let sink = |namespace: &str| -> Result<Neo4jSink> {
        let config = Neo4jSinkConfig::new(
            env("NEO4J_TEST_URI", "bolt://127.0.0.1:7687"),
            env("NEO4J_USERNAME", "neo4j"),
            env("NEO4J_PASSWORD", "discogsography"),
        )
        .namespace(namespace)
        .transaction_records(tx_records)
        .write_transactions(write_transactions)
        .timeout_secs(600);
        Ok(Neo4jSink::new(config)?)
    };
    if warmup > 0 {
        // The same run on fewer records in a namespace of its own, not reported: the
        // server's JIT compiles its write path here rather than in the measured run.
        let started = Instant::now();
        let warm_namespace = format!("Bench{}w_", std::process::id());
        let mut warm = sink(&warm_namespace)?;
        let run = Run {
            releases: warmup,
            batch,
            pid,
            stubs,
            kinds: kinds.clone(),
        };
        let warmed = match warm.ensure_schema().await {
            Ok(_) => run.run(warm, false, false).await,
            Err(e) => Err(e.into()),
        };
        cleaned_up(warmed, sink(&warm_namespace)?).await?;
        println!(
            "neo4j_sink_bench: warm-up run of {warmup} releases (BENCH_WARMUP) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let namespace = format!("Bench{}_", std::process::id());
    let mut measured = sink(&namespace)?;
    if let Err(e) = measured.ensure_schema().await {
        return cleaned_up(Err(e.into()), sink(&namespace)?).await;
    }
    println!(
        "neo4j_sink_bench: {releases} releases, {} artists, {} labels, {} masters; \
         batches of {batch}, transactions of up to {tx_records} records, {write_transactions} \
         at a time in their statements, namespace {namespace}{}",
        releases / 2,
        releases / 8,
        releases / 8,
        if stubs {
            ", references left random (stubs)"
        } else {
            ""
        }
    );
    let run = Run {
        releases,
        batch,
        pid,
        stubs,
        kinds,
    };
    let keep = std::env::var_os("KEEP_GRAPH").is_some();
    let result = run.run(measured, true, keep).await;
    if keep {
        return result;
    }
    cleaned_up(result, sink(&namespace)?).await
}

/// `result`, after dropping the namespace of `sink` when the run failed (a run that
/// succeeds drops its own), so that a failed run leaves nothing behind.
async fn cleaned_up(result: Result<()>, sink: Neo4jSink) -> Result<()> {
    if result.is_err() {
        if let Err(e) = sink.drop_namespace().await {
            eprintln!("neo4j_sink_bench: could not drop the namespace of the failed run: {e}");
        }
    }
    result
}
