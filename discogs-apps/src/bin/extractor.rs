//! The extractor service: see `discogs_apps::extractor` and the README's "Extractor".

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use discogs_apps::extractor::bus::BusOutlet;
use discogs_apps::extractor::run::Extractor;
use discogs_apps::extractor::ExtractorArgs;
use discogs_apps::shutdown::Shutdown;
use discogs_bus::{AmqpPublisher, PublisherConfig, Topology};

fn main() -> ExitCode {
    let args = ExtractorArgs::parse();
    if let Err(e) = discogs_apps::telemetry::init(&args.service) {
        eprintln!("extractor: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "Cannot start the async runtime.");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "❌ Extractor stopped.");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ExtractorArgs) -> anyhow::Result<()> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        amqp = %args.amqp.amqp_connection,
        root = %args.discogs_root.display(),
        "🚀 Extractor starting."
    );
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let config = PublisherConfig {
        max_records: args.batch_size,
        consumers: args.consumers.clone(),
        connection_name: "discogsography extractor".into(),
        compression: args.bus_compression,
        ..PublisherConfig::default()
    };
    let publisher = AmqpPublisher::new(
        args.amqp.amqp_connection.expose(),
        Topology::with_prefix(args.amqp.exchange_prefix.clone()),
        config,
    )
    .context("setting up the publisher")?;
    let mut outlet = BusOutlet(publisher);
    let result = Extractor::new(args).serve(&mut outlet, shutdown).await;
    let closed = outlet
        .0
        .close()
        .await
        .context("closing the broker connection");
    result.and(closed)
}
