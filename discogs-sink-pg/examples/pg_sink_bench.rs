//! Benchmark of the PostgreSQL sink on generated releases: first load, update with 10%
//! changed records, reload of unchanged data. Prints releases/s for each phase.
//!
//! Run with (services up, see docs/services.md):
//!
//! ```text
//! eval "$(scripts/services env)"
//! cargo run --release -p discogs-sink-pg --example pg_sink_bench -- [RELEASES] [BATCH] [STREAMS]
//! ```
//!
//! Defaults: 200000 releases, batches of 5000, 2 streams. The URL comes from
//! `DISCOGS_TEST_PG_URL`; the benchmark works in a schema of its own and drops it at the end,
//! after a failure too (unless `KEEP_SCHEMA` is set). With `BENCH_NO_INDEXES` set, the secondary indexes are
//! not built after the first load (to see what they cost the update pass). The update pass
//! changes each tenth record's `notes`, which no index covers (a HOT update); with
//! `BENCH_CHANGE=indexed` it changes `country` instead, which every index sees. With
//! `BENCH_TRACE` set, the sink's `trace` events (per part of a batch: lookup, COPY, upsert
//! and commit times) go to stderr. With `BENCH_CHECKPOINT` set, a `CHECKPOINT` runs before
//! the update pass (needs the `pg_checkpoint` role or a superuser), so the update writes a
//! full-page image at its first change of each page, as a monthly update would; otherwise
//! the update follows the load within one checkpoint interval unless the WAL forces one.
//! Records are generated (discogs-benches' `Generator`, seed 42) and hashed outside the
//! timed sections: the figures are the sink's, from `write_batch` call to commit.
//!
//! With `BENCH_BARE` set, the benchmark measures instead what the server itself allows: the
//! same releases' JSON copied (binary `COPY`, one per batch and stream, the streams in
//! parallel) into a bare table of the minimal shape the issue's reference measured (`id`
//! primary key, `sha256`, `data JSONB` with lz4; no other column, no other index), so that
//! the sink's first load can be read against it.
//!
//! Each phase also reports the CPU time it cost per record, on the client (this process)
//! and on the server (every process named `postgres`, read from `/proc`, so only when the
//! server runs on this machine). Those figures stay meaningful on a busy machine, where the
//! rates do not: the rate a phase can reach on two idle cores is about
//! `2 / (client + server µs per record)` million records per second when both sides overlap.

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures_util::SinkExt;

use discogs_benches::generate::Generator;
use discogs_model::{Record, RecordKind, Sink, SinkOutcome, SinkRecord};
use discogs_sink_pg::{PgSink, PgSinkConfig};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// `BENCH_CHANGE=indexed`: the update pass changes `country` (an extracted, indexed column,
/// also in the facets) instead of `notes` (neither), so every index gets a new entry.
fn change_indexed() -> bool {
    std::env::var("BENCH_CHANGE").is_ok_and(|v| v == "indexed")
}

/// Writes `n` generated releases in batches; every `change_every`-th record (when set) gets
/// a changed `notes`. Returns the outcome and the time spent inside `write_batch`.
async fn pass(
    sink: &mut PgSink,
    n: usize,
    batch: usize,
    change_every: Option<usize>,
    json_bytes: &mut usize,
    cpu: &mut Cpu,
) -> Result<(SinkOutcome, Duration)> {
    let mut generator = Generator::new(RecordKind::Release, 42);
    let mut outcome = SinkOutcome::default();
    let mut spent = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let size = batch.min(n - done);
        let records: Vec<SinkRecord<'static>> = (done..done + size)
            .map(|i| {
                let mut record = generator.record();
                if change_every.is_some_and(|k| i % k == 0) {
                    if let Record::Release(r) = &mut record {
                        if change_indexed() {
                            r.country = Some(format!("Changed {}", i % 7).into());
                        } else {
                            r.notes = Some(
                                format!("Changed in the benchmark's update pass ({i}).").into(),
                            );
                        }
                    }
                }
                SinkRecord::new(record)
            })
            .collect();
        if *json_bytes == 0 {
            let sample: usize = records
                .iter()
                .take(1000)
                .map(|s| match &s.record {
                    Record::Release(r) => serde_json::to_vec(r).map_or(0, |v| v.len()),
                    _ => 0,
                })
                .sum();
            *json_bytes = sample / records.len().clamp(1, 1000);
        }
        let start = Instant::now();
        let before = cpu_ticks();
        outcome += sink.write_batch(RecordKind::Release, &records).await?;
        cpu.add(before, cpu_ticks());
        spent += start.elapsed();
        done += size;
    }
    Ok((outcome, spent))
}

/// CPU time in clock ticks (utime + stime) of `/proc/<pid>/stat`; 0 when unreadable.
fn ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// CPU ticks spent inside `write_batch` calls: (client, server).
#[derive(Debug, Default, Clone, Copy)]
struct Cpu(u64, u64);

impl Cpu {
    fn add(&mut self, before: (u64, u64), after: (u64, u64)) {
        self.0 += after.0.saturating_sub(before.0);
        self.1 += after.1.saturating_sub(before.1);
    }

    /// Client and server CPU per record in µs (Linux reports 100 ticks per second).
    fn line(self, n: usize) -> String {
        #[allow(clippy::cast_precision_loss)]
        let per = |t: u64| t as f64 * 10_000.0 / n.max(1) as f64;
        format!(
            "CPU per record: client {:.0} µs, server {:.0} µs",
            per(self.0),
            per(self.1)
        )
    }
}

/// CPU ticks so far of this process and of every process named `postgres`.
fn cpu_ticks() -> (u64, u64) {
    let mine = ticks("self");
    let mut server = 0;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == "postgres")
            {
                server += ticks(pid);
            }
        }
    }
    (mine, server)
}

/// The bare-table ceiling (`BENCH_BARE`): `n` generated releases' JSON, in batches of
/// `batch`, each batch split over `streams` connections that each send their rows as one
/// binary `COPY` (committed on its own) into `bare (id, sha256, data JSONB lz4)`.
async fn bare(url: &str, schema: &str, n: usize, batch: usize, streams: usize) -> Result<()> {
    let setup = connect(url).await?;
    setup
        .batch_execute(&format!(
            "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".bare \
             (id BIGINT PRIMARY KEY, sha256 TEXT NOT NULL, data JSONB COMPRESSION lz4 NOT NULL)"
        ))
        .await?;
    let mut clients = Vec::with_capacity(streams);
    for _ in 0..streams {
        clients.push(std::sync::Arc::new(connect(url).await?));
    }
    let copy = format!("COPY \"{schema}\".bare (id, sha256, data) FROM STDIN (FORMAT binary)");
    let mut generator = Generator::new(RecordKind::Release, 42);
    let (mut spent, mut cpu, mut bytes) = (Duration::ZERO, Cpu::default(), 0);
    let mut done = 0;
    while done < n {
        let size = batch.min(n - done);
        // Encoded outside the timed section, as the sink benchmark generates its records.
        let mut parts = vec![BytesMut::new(); streams];
        for part in &mut parts {
            part.put_slice(b"PGCOPY\n\xff\r\n\0");
            part.put_i32(0);
            part.put_i32(0);
        }
        for i in 0..size {
            let record = SinkRecord::new(generator.record());
            let Record::Release(release) = &record.record else {
                unreachable!("the generator was made for releases")
            };
            let json = serde_json::to_vec(release)?;
            let hash = record.hash.to_hex();
            bytes += json.len();
            let part = &mut parts[i * streams / size];
            part.put_i16(3);
            part.put_i32(8);
            part.put_i64(i64::try_from(release.id)?);
            part.put_i32(i32::try_from(hash.len())?);
            part.put_slice(hash.as_bytes());
            part.put_i32(i32::try_from(json.len() + 1)?);
            part.put_u8(1); // JSONB's binary input: a version byte, then the JSON text
            part.put_slice(&json);
        }
        let start = Instant::now();
        let before = cpu_ticks();
        let mut tasks = Vec::with_capacity(streams);
        for (client, mut part) in clients.iter().zip(parts) {
            part.put_i16(-1);
            let (client, copy) = (client.clone(), copy.clone());
            tasks.push(tokio::spawn(async move {
                let sink = client.copy_in::<_, bytes::Bytes>(&copy).await?;
                futures_util::pin_mut!(sink);
                sink.send(part.freeze()).await?;
                sink.finish().await
            }));
        }
        for task in tasks {
            task.await??;
        }
        cpu.add(before, cpu_ticks());
        spent += start.elapsed();
        done += size;
    }
    println!(
        "  bare table (id, sha256, data JSONB lz4), binary COPY: {:>8.0} releases/s  ({:.1} s, {} bytes of JSON per release)",
        rate(n, spent),
        spent.as_secs_f64(),
        bytes / n.max(1)
    );
    println!("    {}", cpu.line(n));
    Ok(())
}

/// A plain connection to `url`, its connection task spawned.
async fn connect(url: &str) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn rate(n: usize, d: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    n / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    if std::env::var_os("BENCH_TRACE").is_some() {
        // The sink's per-part timings (lookup, COPY, upsert, commit) on stderr.
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(std::io::stderr)
            .init();
    }
    let n = arg(1, 200_000);
    let batch = arg(2, 5_000);
    let streams = arg(3, 2);
    let url = std::env::var("DISCOGS_TEST_PG_URL").unwrap_or_else(|_| {
        "postgres://discogsography:discogsography@127.0.0.1:5432/discogsography".to_owned()
    });
    let schema = format!("sink_bench_{}", std::process::id());
    let measured = if std::env::var_os("BENCH_BARE").is_some() {
        println!("pg_sink_bench: {n} releases, batches of {batch}, {streams} streams, bare table (BENCH_BARE)");
        bare(&url, &schema, n, batch, streams).await
    } else {
        phases(&url, &schema, n, batch, streams).await
    };
    if std::env::var_os("KEEP_SCHEMA").is_some() {
        println!("  kept schema {schema} (KEEP_SCHEMA is set)");
        return measured;
    }
    // Dropped whether the run succeeded or not, so that a failed run leaves nothing behind.
    let dropped = async {
        connect(&url)
            .await?
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
    }
    .await;
    if let Err(e) = &dropped {
        eprintln!("pg_sink_bench: could not drop schema {schema}: {e}");
    }
    measured.and(dropped.map_err(Into::into))
}

/// The sink's passes in `schema`: first load (and index build), update with 10 % changed,
/// reload of unchanged data; each printed with its rate and CPU per record.
async fn phases(url: &str, schema: &str, n: usize, batch: usize, streams: usize) -> Result<()> {
    let config = PgSinkConfig::new(url).schema(schema).streams(streams);
    let mut sink = PgSink::new(config)?;
    sink.migrate().await?;
    println!(
        "pg_sink_bench: {n} releases, batches of {batch}, {streams} streams, schema {schema}, update changes {}",
        if change_indexed() { "country (indexed)" } else { "notes (not indexed)" }
    );

    let mut json = 0;
    let started = sink.begin_first_load(RecordKind::Release).await?;
    let mut cpu_first = Cpu::default();
    let (first, t_first) = pass(&mut sink, n, batch, None, &mut json, &mut cpu_first).await?;
    let cpu1 = cpu_ticks();
    let t_index = Instant::now();
    if std::env::var_os("BENCH_NO_INDEXES").is_none() {
        sink.finish_first_load(RecordKind::Release).await?;
    }
    let t_index = t_index.elapsed();
    let mut cpu_index = Cpu::default();
    cpu_index.add(cpu1, cpu_ticks());
    println!("  average JSON per release: {json} bytes");
    println!(
        "  first load (first-load mode {started}): {:>8.0} releases/s  ({:.1} s, {first:?}); index build {:.1} s; with indexes {:.0} releases/s",
        rate(n, t_first),
        t_first.as_secs_f64(),
        t_index.as_secs_f64(),
        rate(n, t_first + t_index)
    );
    println!("    load: {}", cpu_first.line(n));
    println!("    index build: {}", cpu_index.line(n));

    if std::env::var_os("BENCH_CHECKPOINT").is_some() {
        // As a monthly update finds it: every page it touches was written out since, so
        // its first change writes a full-page image to the WAL.
        connect(url).await?.batch_execute("CHECKPOINT").await?;
        println!("  checkpoint before the update (BENCH_CHECKPOINT)");
    }
    let mut cpu_update = Cpu::default();
    let (update, t_update) =
        pass(&mut sink, n, batch, Some(10), &mut json, &mut cpu_update).await?;
    println!(
        "  update, 10% changed:              {:>8.0} releases/s  ({:.1} s, {update:?})",
        rate(n, t_update),
        t_update.as_secs_f64()
    );
    println!("    {}", cpu_update.line(n));

    let mut cpu_reload = Cpu::default();
    let (reload, t_reload) =
        pass(&mut sink, n, batch, Some(10), &mut json, &mut cpu_reload).await?;
    println!(
        "  reload, unchanged:                {:>8.0} releases/s  ({:.1} s, {reload:?})",
        rate(n, t_reload),
        t_reload.as_secs_f64()
    );
    println!("    {}", cpu_reload.line(n));
    Ok(())
}
