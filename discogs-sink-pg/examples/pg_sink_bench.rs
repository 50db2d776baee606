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
//! `DISCOGS_TEST_PG_URL`; the benchmark works in a schema of its own and drops it at the end
//! (unless `KEEP_SCHEMA` is set). With `BENCH_NO_INDEXES` set, the secondary indexes are
//! not built after the first load (to see what they cost the update pass).
//! Records are generated (discogs-benches' `Generator`, seed 42) and hashed outside the
//! timed sections: the figures are the sink's, from `write_batch` call to commit.

use std::time::{Duration, Instant};

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

/// Writes `n` generated releases in batches; every `change_every`-th record (when set) gets
/// a changed `notes`. Returns the outcome and the time spent inside `write_batch`.
async fn pass(
    sink: &mut PgSink,
    n: usize,
    batch: usize,
    change_every: Option<usize>,
    json_bytes: &mut usize,
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
                        r.notes =
                            Some(format!("Changed in the benchmark's update pass ({i}).").into());
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
        outcome += sink.write_batch(RecordKind::Release, &records).await?;
        spent += start.elapsed();
        done += size;
    }
    Ok((outcome, spent))
}

fn rate(n: usize, d: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    n / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let n = arg(1, 200_000);
    let batch = arg(2, 5_000);
    let streams = arg(3, 2);
    let url = std::env::var("DISCOGS_TEST_PG_URL").unwrap_or_else(|_| {
        "postgres://discogsography:discogsography@127.0.0.1:5432/discogsography".to_owned()
    });
    let schema = format!("sink_bench_{}", std::process::id());
    let config = PgSinkConfig::new(url.clone())
        .schema(&schema)
        .streams(streams);
    let mut sink = PgSink::new(config)?;
    sink.migrate().await?;
    println!("pg_sink_bench: {n} releases, batches of {batch}, {streams} streams, schema {schema}");

    let mut json = 0;
    let started = sink.begin_first_load(RecordKind::Release).await?;
    let (first, t_first) = pass(&mut sink, n, batch, None, &mut json).await?;
    let t_index = Instant::now();
    if std::env::var_os("BENCH_NO_INDEXES").is_none() {
        sink.finish_first_load(RecordKind::Release).await?;
    }
    let t_index = t_index.elapsed();
    println!("  average JSON per release: {json} bytes");
    println!(
        "  first load (first-load mode {started}): {:>8.0} releases/s  ({:.1} s, {first:?}); index build {:.1} s; with indexes {:.0} releases/s",
        rate(n, t_first),
        t_first.as_secs_f64(),
        t_index.as_secs_f64(),
        rate(n, t_first + t_index)
    );

    let (update, t_update) = pass(&mut sink, n, batch, Some(10), &mut json).await?;
    println!(
        "  update, 10% changed:              {:>8.0} releases/s  ({:.1} s, {update:?})",
        rate(n, t_update),
        t_update.as_secs_f64()
    );

    let (reload, t_reload) = pass(&mut sink, n, batch, Some(10), &mut json).await?;
    println!(
        "  reload, unchanged:                {:>8.0} releases/s  ({:.1} s, {reload:?})",
        rate(n, t_reload),
        t_reload.as_secs_f64()
    );
    drop(sink);
    if std::env::var_os("KEEP_SCHEMA").is_some() {
        println!("  kept schema {schema} (KEEP_SCHEMA is set)");
        return Ok(());
    }

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await?;
    Ok(())
}
