//! `graphinator`: keeps the Neo4j graph current from the bus (health on port 8001).

use anyhow::Context as _;
use clap::Parser;
use discogs_apps::config::{AmqpArgs, Neo4jArgs, ServiceArgs};
use discogs_apps::consumer::{self, ConsumerArgs, Neo4jTarget};
use discogs_apps::shutdown::Shutdown;
use discogs_apps::telemetry;
use discogs_sink_neo4j::Neo4jSink;

/// Consumes the four kinds' queues into Neo4j.
#[derive(Debug, Parser)]
#[command(name = "graphinator", version, about)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    amqp: AmqpArgs,
    #[command(flatten)]
    consumer: ConsumerArgs,
    #[command(flatten)]
    neo4j: Neo4jArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Args = consumer::parse_args(8001);
    telemetry::init(&args.service)?;
    let config = args.neo4j.sink_config();
    tracing::info!(neo4j = %args.neo4j.neo4j_address, amqp = %args.amqp.amqp_connection, "Starting the graphinator.");
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    consumer::serve(
        "graphinator",
        &args.service,
        &args.amqp,
        &args.consumer,
        shutdown,
        |_kind| {
            let sink = Neo4jSink::new(config.clone()).context("Neo4j configuration")?;
            Ok(Neo4jTarget::new(sink))
        },
    )
    .await
}
