//! The extractor service: finds the newest complete Discogs dump, downloads it politely
//! and resumably, verifies it against its CHECKSUM, parses it, and publishes only the
//! records that changed since the last published dump, resuming after the last batch the
//! broker confirmed.
//!
//! | module | job |
//! |---|---|
//! | [`bus`] | the [`publish::Outlet`] over any `discogs_bus::Publisher` |
//! | [`discover`] | reading the data site's HTML or the bucket's XML listing; the policy for irregular dumps |
//! | [`http`] | the polite client: gap between requests, backoff, `Retry-After`, `Range` |
//! | [`fetch`] | discovery plus download plus SHA-256 check, into `DISCOGS_ROOT` |
//! | [`state`] | per version on disk: downloaded, verified, per file the resume point |
//! | [`hashstore`] | the last confirmed hash per (kind, id), in redb |
//! | [`scan`] | parsing with change detection on the parser's workers |
//! | [`progress`] | bytes, rate and ETA of the step in hand (terminal bar and `/health`) |
//! | [`publish`] | one file onto the bus, following confirms; the [`publish::Outlet`] trait |
//! | [`run`] | the service loop, `POST /trigger`, local mode |

pub mod bus;
pub mod discover;
pub mod fetch;
pub mod hashstore;
pub mod http;
pub mod progress;
pub mod publish;
pub mod run;
pub mod scan;
pub mod state;

use std::path::PathBuf;

use crate::config::{AmqpArgs, ServiceArgs};

/// The extractor's flags and environment variables (names of the original where it had one).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "extractor",
    version,
    about = "Finds, downloads, verifies and publishes the newest Discogs dump; publishes only what changed."
)]
pub struct ExtractorArgs {
    /// Health server and logging.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The broker.
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// Folder for the downloaded dumps, the state files and the hash store.
    #[arg(long, env = "DISCOGS_ROOT", default_value = "/discogs-data")]
    pub discogs_root: PathBuf,
    /// Where the dumps are listed: the data site's HTML or an S3 bucket listing.
    #[arg(
        long,
        env = "DISCOGS_BASE_URL",
        default_value = "https://data.discogs.com/"
    )]
    pub base_url: String,
    /// Local mode: a dump file, or a folder of `discogs_YYYYMMDD_*.xml[.gz]` files, instead
    /// of downloading. Runs once.
    #[arg(long, env = "DISCOGS_INPUT")]
    pub input: Option<PathBuf>,
    /// Days between checks for a new dump (at least 1).
    #[arg(long, env = "PERIODIC_CHECK_DAYS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub periodic_check_days: u64,
    /// Process a version again even when it was finished (changed records only, unless
    /// `--full-publish`).
    #[arg(short = 'f', long, env = "FORCE_REPROCESS")]
    pub force_reprocess: bool,
    /// Publish every record, changed or not (the hash store is still updated).
    #[arg(long, env = "FULL_PUBLISH")]
    pub full_publish: bool,
    /// Accept a dump without a usable CHECKSUM and parse its files unverified.
    #[arg(long, env = "ALLOW_UNVERIFIED")]
    pub allow_unverified: bool,
    /// Process the newest dump once and exit (no periodic checks).
    #[arg(long)]
    pub once: bool,
    /// Parser worker threads (default: the number of cores).
    #[arg(long, env = "MAX_WORKERS")]
    pub max_workers: Option<usize>,
    /// Records per message on the bus.
    #[arg(long, env = "BATCH_SIZE", default_value_t = 100)]
    pub batch_size: usize,
    /// How batch bodies travel on the bus: `lz4` (JSON compressed: 40 % of the bytes on the
    /// broker's disk and network, for a few µs of CPU per record) or `none` (JSON).
    #[arg(long, env = "BUS_COMPRESSION", default_value = "lz4", value_parser = crate::config::parse_compression)]
    pub bus_compression: discogs_bus::Compression,
    /// Seconds between two HTTP requests to the dump site.
    #[arg(long, env = "REQUEST_GAP_SECS", default_value_t = 5.0)]
    pub request_gap_secs: f64,
    /// Seconds between saves of the resume point and the confirmed hashes (0: after every
    /// confirm).
    #[arg(long, env = "CHECKPOINT_SECS", default_value_t = 1.0)]
    pub checkpoint_secs: f64,
    /// Page cache of the hash store, in MB.
    #[arg(long, env = "HASH_CACHE_MB", default_value_t = 32)]
    pub hash_cache_mb: usize,
    /// Consumers whose queues are declared (and bound) before publishing, so nothing
    /// published is unroutable.
    #[arg(
        long,
        env = "CONSUMERS",
        value_delimiter = ',',
        default_value = "graphinator,tableinator"
    )]
    pub consumers: Vec<String>,
}

impl ExtractorArgs {
    /// Parser workers to use.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.max_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn parse_config() {
        let a = ExtractorArgs::parse_from([
            "extractor",
            "--discogs-root",
            "/tmp/d",
            "--periodic-check-days",
            "5",
            "-f",
            "--consumers",
            "a,b",
        ]);
        assert_eq!(a.discogs_root, PathBuf::from("/tmp/d"));
        assert_eq!(a.periodic_check_days, 5);
        assert!(a.force_reprocess && !a.allow_unverified);
        assert_eq!(a.consumers, ["a", "b"]);
        assert_eq!(a.service.health_port, 8000);
        assert!(
            ExtractorArgs::try_parse_from(["extractor", "--periodic-check-days", "0"]).is_err()
        );
        assert!(!format!("{a:?}").contains("discogsography:discogsography@"));
    }
}
