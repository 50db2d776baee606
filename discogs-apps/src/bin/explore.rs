//! The explore service: the graph explorer's page and JSON API on port 8006, `/health`
//! and `/metrics` on 8007. See `discogs_apps::explore`.
//!
//! Run with `cargo run -p discogs-apps --bin explore` (after `npm ci` in
//! `discogs-apps/web/explore`) and open <http://127.0.0.1:8006/>.

use clap::Parser as _;
use discogs_apps::explore::{self, ExploreArgs};
use discogs_apps::shutdown::Shutdown;
use discogs_apps::telemetry;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = ExploreArgs::parse();
    if let Err(e) = telemetry::init(&args.service) {
        eprintln!("explore: {e:#}");
        return std::process::ExitCode::from(2);
    }
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    match explore::run(args, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("❌ Explore failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
