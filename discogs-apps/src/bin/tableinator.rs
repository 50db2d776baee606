//! `tableinator`: keeps the PostgreSQL tables current from the bus (health on port 8002).

use anyhow::Context as _;
use clap::Parser;
use discogs_apps::config::{AmqpArgs, PostgresArgs, ServiceArgs};
use discogs_apps::consumer::{self, ConsumerArgs, PgTarget};
use discogs_apps::shutdown::Shutdown;
use discogs_apps::telemetry;
use discogs_sink_pg::PgSink;

/// Consumes the four kinds' queues into PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "tableinator", version, about)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    amqp: AmqpArgs,
    #[command(flatten)]
    consumer: ConsumerArgs,
    #[command(flatten)]
    postgres: PostgresArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Args = consumer::parse_args(8002);
    telemetry::init(&args.service)?;
    let config = args.postgres.sink_config("tableinator");
    tracing::info!(postgres = %config.redacted_url(), schema = %args.postgres.postgres_schema, amqp = %args.amqp.amqp_connection, "Starting the tableinator.");
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    consumer::serve(
        "tableinator",
        &args.service,
        &args.amqp,
        &args.consumer,
        shutdown,
        |_kind| {
            let sink = PgSink::new(config.clone()).context("PostgreSQL configuration")?;
            Ok(PgTarget::new(sink).first_load(args.postgres.postgres_first_load))
        },
    )
    .await
}
