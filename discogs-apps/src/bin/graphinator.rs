//! `graphinator`: keeps the Neo4j graph current from the bus (health on port 8001).

use anyhow::Context as _;
use clap::Parser;
use discogs_apps::config::{AmqpArgs, Secret, ServiceArgs};
use discogs_apps::consumer::{self, ConsumerArgs, Neo4jTarget};
use discogs_apps::shutdown::Shutdown;
use discogs_apps::telemetry;
use discogs_sink_neo4j::{Neo4jSink, Neo4jSinkConfig};

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
    /// Neo4j Bolt URI.
    #[arg(long, env = "NEO4J_ADDRESS", default_value = "bolt://127.0.0.1:7687")]
    neo4j_address: String,
    /// Neo4j user.
    #[arg(long, env = "NEO4J_USERNAME", default_value = "neo4j")]
    neo4j_username: String,
    /// Neo4j password (never logged).
    #[arg(
        long,
        env = "NEO4J_PASSWORD",
        default_value = "discogsography",
        hide_default_value = true
    )]
    neo4j_password: Secret,
    /// Prefix of every label and schema name (empty in production; tests use their own).
    #[arg(long, env = "NEO4J_NAMESPACE", default_value = "")]
    neo4j_namespace: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Args = consumer::parse_args(8001);
    telemetry::init(&args.service)?;
    let config = Neo4jSinkConfig::new(
        &args.neo4j_address,
        &args.neo4j_username,
        args.neo4j_password.expose(),
    )
    .namespace(&args.neo4j_namespace);
    tracing::info!(neo4j = %args.neo4j_address, amqp = %args.amqp.amqp_connection, "Starting the graphinator.");
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
