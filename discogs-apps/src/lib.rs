//! The discogsography services and what they share.
//!
//! Each service is a thin binary in `src/bin/` whose `main` parses its flags, installs
//! logging, and calls a `run` function of this library. What every service needs lives
//! here, so the extractor, graphinator, tableinator, explore and dashboard behave alike:
//!
//! * [`config`]: flags that also read the original system's environment variables
//!   ([`config::ServiceArgs`], [`config::AmqpArgs`]) and [`config::Secret`], whose
//!   `Debug` and `Display` never show the secret.
//! * [`telemetry`]: the `tracing` subscriber (`LOG_LEVEL`, `RUST_LOG`, text or JSON).
//! * [`metrics`]: a small Prometheus registry of counters and gauges, rendered as text.
//! * [`health`]: the HTTP server every service runs: `GET /health` (200 only when
//!   healthy, JSON body) and `GET /metrics`, plus the service's own routes.
//! * [`consumer`]: the graphinator's and tableinator's shared loop (four kinds at once,
//!   ack after commit, retries, dead letters, completion steps recorded once).
//! * [`explore`]: the graph explorer's API and page (port 8006).
//! * [`pipeline`]: the `discogsography` command, the whole pipeline in one process.
//! * [`shutdown`]: one [`shutdown::Shutdown`] handle, triggered by SIGTERM or SIGINT,
//!   that every task can wait on.
//!
//! ```no_run
//! use discogs_apps::{health, metrics::Metrics, shutdown::Shutdown};
//!
//! # async fn example() -> anyhow::Result<()> {
//! let shutdown = Shutdown::new();
//! shutdown.listen_for_signals();
//! let metrics = Metrics::new("my_service");
//! let status = health::Status::new("my-service");
//! let app = health::router(status.clone(), metrics.clone());
//! health::serve("127.0.0.1:8000".parse()?, app, shutdown.clone()).await?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod consumer;
pub mod dashboard;
pub mod explore;
pub mod extractor;

pub mod health;
pub mod metrics;
pub mod pipeline;
pub mod shutdown;
pub mod telemetry;
