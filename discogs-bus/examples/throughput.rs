//! End-to-end throughput of the bus through the real RabbitMQ: one publisher, one
//! consumer, persistent messages, publisher confirms, quorum queues, records of the real
//! average release size (~2.2 KB of JSON, what ~3 KB of dump XML makes; from the generator
//! in `discogs-benches`).
//!
//! Two runs, one after the other, in the same process:
//!
//! * **batched**: the defaults, 100 records per message and up to 128 unconfirmed messages;
//! * **one by one**: one record per message, each confirm awaited before the next message
//!   (the original system's way).
//!
//! The publisher is handed records already encoded, as the extractor's parser workers
//! hand them over ([`EncodedRecord`], encoded once before the clock starts). In both runs
//! the clock runs from the first record published to the last one received and
//! acknowledged by the consumer, which takes each message either as
//!
//! * `--consumer json` (the default): the batch's JSON, decompressed, its records counted
//!   from the publisher's `discogs-records` header: what the bus itself costs; or
//! * `--consumer typed`: the batch decoded into typed records (text borrowed from the
//!   body), as the consumer services do before they write.
//!
//! ```text
//! scripts/services up && eval "$(scripts/services env)"
//! cargo run --release -p discogs-bus --example throughput -- [--records 300000] [--baseline-records 20000]
//!     [--batch 100] [--window 128] [--compression lz4|none] [--consumer json|typed]
//! ```
//!
//! The exchanges and queues live under a prefix of their own and are deleted at the end.

use std::time::{Duration, Instant};

use discogs_benches::generate::Generator;
use discogs_bus::{
    Admin, AmqpConsumer, AmqpPublisher, BusError, Compression, Consumer, ConsumerConfig, FileRef,
    Publisher, PublisherConfig, Resume, Topology,
};
use discogs_model::wire::{EncodedRecord, Message, MessageType};
use discogs_model::{RecordKind, SinkRecord};

#[derive(Clone)]
struct Args {
    sequential: bool,
    records: u64,
    baseline_records: u64,
    batch: usize,
    window: usize,
    prefetch: u16,
    compression: Compression,
    typed: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sequential: false,
        records: 300_000,
        baseline_records: 20_000,
        batch: 100,
        window: 128,
        prefetch: 0,
        compression: Compression::default(),
        typed: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--sequential" {
            args.sequential = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{flag} {v}: {e}"))
        };
        match flag.as_str() {
            "--records" => args.records = number(&value)?,
            "--baseline-records" => args.baseline_records = number(&value)?,
            "--batch" => {
                args.batch = usize::try_from(number(&value)?).map_err(|e| e.to_string())?
            }
            "--window" => {
                args.window = usize::try_from(number(&value)?).map_err(|e| e.to_string())?
            }
            "--compression" => {
                args.compression = Compression::from_name(&value).map_err(|e| e.to_string())?
            }
            "--consumer" => {
                args.typed = match value.as_str() {
                    "json" => false,
                    "typed" => true,
                    other => return Err(format!("--consumer {other}: json or typed")),
                }
            }
            "--prefetch" => {
                args.prefetch = u16::try_from(number(&value)?).map_err(|e| e.to_string())?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

/// Result of one run.
struct Run {
    records: u64,
    messages: u64,
    elapsed: Duration,
    publish_elapsed: Duration,
}

impl Run {
    fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

async fn run(
    url: &str,
    topology: &Topology,
    pool: &[EncodedRecord],
    records: u64,
    config: PublisherConfig,
    args: &Args,
) -> Result<Run, BusError> {
    let (sequential, prefetch, typed) = (args.sequential, args.prefetch, args.typed);
    let consumer_name = "bench";
    let mut consumer_config = ConsumerConfig::new(consumer_name);
    consumer_config.kinds = vec![RecordKind::Release];
    consumer_config.prefetch = if prefetch > 0 {
        prefetch
    } else {
        ConsumerConfig::prefetch_for(500, config.max_records)
    };
    let mut consumer = AmqpConsumer::new(url, topology.clone(), consumer_config)?;
    let mut publisher = AmqpPublisher::new(url, topology.clone(), config)?;
    publisher.connect().await?;

    let pool = pool.to_vec();
    let start = Instant::now();
    let publishing = tokio::spawn(async move {
        let file = FileRef::new(
            RecordKind::Release,
            "bench",
            "discogs_bench_releases.xml.gz",
        );
        publisher.begin_file(file, Resume::default())?;
        let mut in_publish = Duration::ZERO;
        let mut slow = 0u32;
        for i in 0..records {
            let slot = usize::try_from(i).unwrap_or(0) % pool.len();
            let t = Instant::now();
            publisher.publish_encoded(&pool[slot]).await?;
            let d = t.elapsed();
            in_publish += d;
            if d > Duration::from_millis(1) {
                slow += 1;
            }
        }
        eprintln!("  publisher: {in_publish:?} in publish(), {slow} calls over 1 ms");
        publisher.end_file().await?;
        let elapsed = start.elapsed();
        publisher.close().await?;
        Ok::<_, BusError>(elapsed)
    });
    let mut publishing = Some(publishing);
    let mut consume_start = start;
    let waited_for = if typed { "decoding" } else { "decompressing" };
    if sequential {
        if let Some(p) = publishing.take() {
            let elapsed = p
                .await
                .map_err(|e| BusError::Usage(format!("publisher task: {e}")))??;
            println!(
                "  publishing alone: {:.2} s, {:.0} records/s",
                elapsed.as_secs_f64(),
                records as f64 / elapsed.as_secs_f64()
            );
        }
        consume_start = Instant::now();
    }

    let (mut received, mut messages, mut body_bytes) = (0u64, 0u64, 0u64);
    let (mut waiting, mut decoding, mut acking) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    loop {
        let t0 = Instant::now();
        let delivery = consumer.next().await?;
        let t1 = Instant::now();
        waiting += t1 - t0;
        messages += 1;
        body_bytes += delivery.body().map_or(0, |b| b.len() as u64);
        let done = if typed {
            // Decoded into typed records, as a consumer service does before writing them.
            let message = delivery.decode()?;
            match &*message {
                Message::Batch(b) => {
                    received += b.records.len() as u64;
                    false
                }
                Message::FileComplete(_) => true,
                Message::Removed(_) | Message::ExtractionComplete(_) => false,
            }
        } else {
            // The JSON as the publisher encoded it, decompressed; records counted from
            // the headers.
            delivery.json()?;
            match delivery.declared_type() {
                Some(MessageType::Batch) => {
                    received += delivery.declared_records().unwrap_or(0);
                    false
                }
                Some(MessageType::FileComplete) => true,
                _ => false,
            }
        };
        let t2 = Instant::now();
        decoding += t2 - t1;
        delivery.ack().await?;
        acking += t2.elapsed();
        if done && received >= records {
            break;
        }
    }
    let elapsed = start.elapsed();
    eprintln!("  consumer: waiting {waiting:?}, {waited_for} {decoding:?}, acking {acking:?}");
    println!(
        "  bodies on the broker: {:.0} bytes per record",
        body_bytes as f64 / received.max(1) as f64
    );
    if sequential {
        let consuming = consume_start.elapsed();
        println!(
            "  consuming alone: {:.2} s, {:.0} records/s",
            consuming.as_secs_f64(),
            received as f64 / consuming.as_secs_f64()
        );
    }
    let publish_elapsed = match publishing {
        Some(p) => p
            .await
            .map_err(|e| BusError::Usage(format!("publisher task: {e}")))??,
        None => elapsed,
    };
    consumer.close().await?;
    Ok(Run {
        records: received,
        messages,
        elapsed,
        publish_elapsed,
    })
}

async fn cleanup(url: &str, topology: &Topology) -> Result<(), BusError> {
    let admin = Admin::connect(url, topology.clone()).await?;
    admin.delete_consumer("bench", &RecordKind::ALL).await?;
    admin.delete_exchanges(&RecordKind::ALL).await?;
    admin.close().await
}

async fn example() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let url = std::env::var("AMQP_CONNECTION")
        .or_else(|_| std::env::var("AMQP_ADDR"))
        .unwrap_or_else(|_| "amqp://discogsography:discogsography@127.0.0.1:5672/%2f".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", load.trim());

    // A pool of real-shaped releases, hashed and encoded once; the runs cycle through it.
    let records: Vec<SinkRecord<'static>> = Generator::new(RecordKind::Release, 42)
        .take(5_000)
        .map(SinkRecord::new)
        .collect();
    let json_bytes: usize = records
        .iter()
        .map(|r| serde_json::to_vec(&r.record).map_or(0, |v| v.len()))
        .sum();
    let pool = records
        .iter()
        .map(EncodedRecord::new)
        .collect::<Result<Vec<_>, _>>()?;
    let average = json_bytes as f64 / pool.len() as f64;
    println!("records: generated releases, {average:.0} bytes of JSON on average (record + 80 bytes of hash and envelope)");

    let topology = Topology::with_prefix(format!("bench-{}", std::process::id()));
    let admin = Admin::connect(&url, topology.clone()).await?;
    admin
        .declare_consumer("bench", &[RecordKind::Release])
        .await?;
    admin.close().await?;

    let batched = PublisherConfig {
        max_records: args.batch,
        confirm_window: args.window,
        compression: args.compression,
        ..PublisherConfig::default()
    };
    let one_by_one = PublisherConfig {
        max_records: 1,
        confirm_window: 1,
        ..PublisherConfig::default()
    };
    let outcome = async {
        let b = run(&url, &topology, &pool, args.records, batched, &args).await?;
        let o = run(
            &url,
            &topology,
            &pool,
            args.baseline_records,
            one_by_one,
            &Args {
                prefetch: 0,
                ..args.clone()
            },
        )
        .await?;
        Ok::<_, BusError>((b, o))
    }
    .await;
    cleanup(&url, &topology).await?;
    let (b, o) = outcome?;
    let mb = |run: &Run| run.records as f64 * (average + 80.0) / 1e6 / run.elapsed.as_secs_f64();
    for (name, run) in [
        (
            format!(
                "batched ({} records/message, window {}, compression {:?}, consumer {})",
                args.batch,
                args.window,
                args.compression,
                if args.typed { "typed" } else { "json" }
            ),
            &b,
        ),
        (
            "one by one (1 record/message, each confirm awaited)".to_owned(),
            &o,
        ),
    ] {
        println!(
            "{name}: {} records in {} messages, {:.2} s end to end ({:.2} s publishing): {:.0} records/s, {:.0} messages/s, {:.0} MB/s",
            run.records,
            run.messages,
            run.elapsed.as_secs_f64(),
            run.publish_elapsed.as_secs_f64(),
            run.records_per_sec(),
            run.messages as f64 / run.elapsed.as_secs_f64(),
            mb(run),
        );
    }
    println!(
        "ratio: batched is {:.1}x the one-by-one way",
        b.records_per_sec() / o.records_per_sec()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = example().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
