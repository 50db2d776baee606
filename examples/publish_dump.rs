//! Publishes one Discogs dump file to RabbitMQ with `discogs-bus`: its records in batches
//! of 100 per message with many publisher confirms in flight, then `file_complete` once
//! the broker has confirmed every batch. The queues of the consumers named with
//! `--consumer` are declared (and bound) first, so the records wait there for them.
//!
//! Run with (services from `scripts/services up`, or any RabbitMQ 3.10+):
//!
//! ```text
//! eval "$(scripts/services env)"
//! cargo run --release -p examples --example publish_dump -- FILE [--consumer NAME]... [--prefix PREFIX]
//! ```
//!
//! The broker comes from `AMQP_CONNECTION`; names use PREFIX (`discogsography` by
//! default): exchange `PREFIX-releases`, queues `PREFIX-NAME-releases`. Then, for
//! example, `scripts/services rabbitmqctl list_queues name messages` shows the batches
//! waiting, and the management UI (http://127.0.0.1:15672) shows their headers.

use std::process::ExitCode;
use std::time::Instant;

use discogs_bus::{AmqpPublisher, FileRef, Publisher, PublisherConfig, Resume, Topology};
use discogs_model::SinkRecord;
use discogs_parse::{DumpFileName, DumpReader, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut path, mut consumers, mut prefix) = (None, Vec::new(), None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--consumer" => consumers.extend(args.next()),
            "--prefix" => prefix = args.next(),
            _ => path = Some(arg),
        }
    }
    let Some(path) = path else {
        eprintln!("usage: publish_dump FILE [--consumer NAME]... [--prefix PREFIX]");
        return ExitCode::FAILURE;
    };
    let url = std::env::var("AMQP_CONNECTION")
        .unwrap_or_else(|_| "amqp://discogsography:discogsography@127.0.0.1:5672/%2f".into());
    let topology = prefix.map_or_else(Topology::default, Topology::with_prefix);
    match publish(&path, &url, topology, consumers).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn publish(
    path: &str,
    url: &str,
    topology: Topology,
    consumers: Vec<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut reader = DumpReader::open(path)?;
    let kind = reader.kind();
    let name = reader.file().to_owned();
    // The dump version from a Discogs file name (`discogs_20260101_releases.xml.gz`).
    let version =
        DumpFileName::parse(&name).map_or_else(|_| "unknown".to_owned(), |n| n.date.to_string());
    println!(
        "{path}: {kind} of dump {version} to exchange {}",
        topology.exchange(kind)
    );

    let config = PublisherConfig {
        consumers,
        ..PublisherConfig::default()
    };
    let mut publisher = AmqpPublisher::new(url, topology, config)?;
    publisher.connect().await?;
    publisher.begin_file(FileRef::new(kind, version, name), Resume::default())?;
    let mut malformed = 0_u64;
    while let Some(item) = reader.next_record() {
        match item {
            Ok(parsed) => {
                // The record borrows the reader's buffer; publishing encodes it at once.
                let record = SinkRecord {
                    record: parsed.record,
                    hash: parsed.hash,
                };
                publisher.publish(&record).await?;
            }
            Err(Error::Record(bad)) => {
                malformed += 1;
                eprintln!("skipped: {bad}");
            }
            Err(fatal) => return Err(fatal.into()),
        }
    }
    let done = publisher.end_file().await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} records in {} batches, all confirmed, then file_complete; {malformed} malformed; \
         {seconds:.2} s, {:.0} records/s",
        done.records,
        done.batches,
        done.records as f64 / seconds
    );
    publisher.close().await?;
    Ok(())
}
