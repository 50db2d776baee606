//! The dashboard service: a live view of the pipeline on port 8003 (the page, `/ws`,
//! `/api/metrics`, `/health`, `/metrics`). See `discogs_apps::dashboard`.
//!
//! Run with `cargo run -p discogs-apps --bin dashboard` and open <http://127.0.0.1:8003/>.

use clap::Parser as _;
use discogs_apps::dashboard::{self, DashboardArgs};
use discogs_apps::shutdown::Shutdown;
use discogs_apps::telemetry;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = DashboardArgs::parse();
    if let Err(e) = telemetry::init(&args.service) {
        eprintln!("dashboard: {e:#}");
        return std::process::ExitCode::from(2);
    }
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    match dashboard::run(args, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("❌ Dashboard failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
