//! The `tracing` subscriber every service installs: level from `RUST_LOG` or `LOG_LEVEL`,
//! text or JSON lines on stderr.

use anyhow::Context as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogFormat, ServiceArgs};

/// Turns `LOG_LEVEL` (the original's DEBUG/INFO/WARNING/ERROR/CRITICAL, any case) or a
/// `tracing` target filter (`warn,discogs_apps=debug`) into a filter.
///
/// # Errors
///
/// When the text is neither.
pub fn parse_filter(level: &str) -> anyhow::Result<Targets> {
    let directive = match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" | "" => "info",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" => "error",
        "OFF" => "off",
        _ => level.trim(),
    };
    directive
        .parse()
        .with_context(|| format!("log level {level:?} is not a level or a filter"))
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `--log-level`.
///
/// # Errors
///
/// When the filter cannot be parsed or a subscriber is already installed.
pub fn init(args: &ServiceArgs) -> anyhow::Result<()> {
    let level = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| args.log_level.clone());
    let filter = parse_filter(&level)?;
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match args.log_format {
        LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(std::io::stderr)
                        .with_ansi(ansi),
                )
                .try_init()
        }
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_line_number(true),
            )
            .try_init(),
    };
    installed.context("installing the log subscriber")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn original_level_names() {
        for (given, want) in [
            ("INFO", LevelFilter::INFO),
            ("warning", LevelFilter::WARN),
            ("CRITICAL", LevelFilter::ERROR),
            ("debug", LevelFilter::DEBUG),
        ] {
            let filter = parse_filter(given).unwrap();
            assert!(filter.would_enable("x", want.into_level().as_ref().unwrap()));
        }
        let filter = parse_filter("warn,discogs_apps=debug").unwrap();
        assert!(filter.would_enable("discogs_apps::x", &tracing::Level::DEBUG));
        assert!(!filter.would_enable("other", &tracing::Level::INFO));
        assert!(parse_filter("=bad=").is_err());
    }
}
