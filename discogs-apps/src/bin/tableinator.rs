//! `tableinator`: keeps the PostgreSQL tables current from the bus (health on port 8002).

use anyhow::Context as _;
use clap::Parser;
use discogs_apps::config::{AmqpArgs, Secret, ServiceArgs};
use discogs_apps::consumer::{self, ConsumerArgs, PgTarget};
use discogs_apps::shutdown::Shutdown;
use discogs_apps::telemetry;
use discogs_sink_pg::{PgSink, PgSinkConfig};

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
    /// PostgreSQL `host:port`.
    #[arg(long, env = "POSTGRES_ADDRESS", default_value = "127.0.0.1:5432")]
    postgres_address: String,
    /// PostgreSQL user.
    #[arg(long, env = "POSTGRES_USERNAME", default_value = "discogsography")]
    postgres_username: String,
    /// PostgreSQL password (never logged).
    #[arg(
        long,
        env = "POSTGRES_PASSWORD",
        default_value = "discogsography",
        hide_default_value = true
    )]
    postgres_password: Secret,
    /// PostgreSQL database.
    #[arg(long, env = "POSTGRES_DATABASE", default_value = "discogsography")]
    postgres_database: String,
    /// Schema of the tables.
    #[arg(long, env = "POSTGRES_SCHEMA", default_value_t = discogs_sink_pg::default_schema())]
    postgres_schema: String,
    /// Connections per kind (each kind has its own sink).
    #[arg(long, env = "POSTGRES_STREAMS", default_value_t = 1)]
    postgres_streams: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Args = consumer::parse_args(8002);
    telemetry::init(&args.service)?;
    let url = format!(
        "postgres://{}:{}@{}/{}",
        consumer::url_encode(&args.postgres_username),
        consumer::url_encode(args.postgres_password.expose()),
        args.postgres_address,
        consumer::url_encode(&args.postgres_database),
    );
    let config = PgSinkConfig::new(url)
        .schema(&args.postgres_schema)
        .streams(args.postgres_streams.max(1))
        .application_name("tableinator");
    tracing::info!(postgres = %config.redacted_url(), schema = %args.postgres_schema, amqp = %args.amqp.amqp_connection, "Starting the tableinator.");
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
            Ok(PgTarget::new(sink))
        },
    )
    .await
}
