//! Loads one Discogs dump file into PostgreSQL tables with `discogs-sink-pg`, and prints
//! what happened: rows inserted, updated, and left alone because their hash was unchanged.
//! Run it twice on the same file and the second run writes nothing.
//!
//! Run with (services from `scripts/services up`, or any PostgreSQL 14+):
//!
//! ```text
//! eval "$(scripts/services env)"
//! cargo run --release -p examples --example dump_to_postgres -- FILE [SCHEMA]
//! ```
//!
//! The server comes from the same variables as the services' (`POSTGRES_ADDRESS` as
//! `host:port`, `POSTGRES_USERNAME`, `POSTGRES_PASSWORD`, `POSTGRES_DATABASE`); the
//! tables go to SCHEMA (`discogs` by default), created when missing. Then, for example:
//!
//! ```text
//! psql -c "SELECT id, title, year FROM discogs.releases ORDER BY id LIMIT 5"
//! ```

use std::process::ExitCode;
use std::time::Instant;

use discogs_model::{Sink, SinkOutcome, SinkRecord};
use discogs_parse::{DumpReader, Error};
use discogs_sink_pg::{PgSink, PgSinkConfig};

/// Records per `write_batch` call: large enough for COPY to pay off, small enough to
/// keep a few megabytes in memory.
const BATCH: usize = 2_000;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: dump_to_postgres FILE [SCHEMA]");
        return ExitCode::FAILURE;
    };
    let schema = args.get(1).map_or("discogs", String::as_str);
    let url = format!(
        "postgres://{}:{}@{}/{}",
        env("POSTGRES_USERNAME", "discogsography"),
        env("POSTGRES_PASSWORD", "discogsography"),
        env("POSTGRES_ADDRESS", "127.0.0.1:5432"),
        env("POSTGRES_DATABASE", "discogsography"),
    );
    match load(path, PgSinkConfig::new(url).schema(schema)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn load(path: &str, config: PgSinkConfig) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut reader = DumpReader::open(path)?;
    let kind = reader.kind();
    println!("{path}: {kind} into {config:?}");
    let mut sink = PgSink::new(config)?;
    sink.migrate().await?;

    let mut total = SinkOutcome::default();
    let mut malformed = 0_u64;
    let mut batch: Vec<SinkRecord<'static>> = Vec::with_capacity(BATCH);
    loop {
        let item = reader.next_record();
        let end = item.is_none();
        match item {
            Some(Ok(parsed)) => {
                // The records borrow the reader's buffer: own them to keep a batch.
                let parsed = parsed.into_owned();
                batch.push(SinkRecord {
                    record: parsed.record,
                    hash: parsed.hash,
                });
            }
            // A malformed record is reported and skipped; the stream goes on.
            Some(Err(Error::Record(e))) => {
                eprintln!("skipped: {e}");
                malformed += 1;
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
        if batch.len() == BATCH || (end && !batch.is_empty()) {
            total += sink.write_batch(kind, &batch).await?;
            batch.clear();
        }
        if end {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} inserted, {} updated, {} unchanged, {malformed} malformed, in {seconds:.1} s",
        total.inserted, total.updated, total.unchanged
    );
    Ok(())
}
