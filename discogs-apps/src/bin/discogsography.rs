//! `discogsography`: the whole pipeline in one command (see `discogs_apps::pipeline` and
//! the README's first lines).
//!
//! Exit status: 0 when everything published reached both databases (or there was nothing
//! new), 1 on an error, 2 on a bad flag or logging setup, 3 when messages were
//! dead-lettered, 130 when interrupted.

use std::process::ExitCode;

use clap::Parser as _;
use discogs_apps::pipeline::{self, Ending, PipelineArgs};
use discogs_apps::shutdown::Shutdown;

fn main() -> ExitCode {
    let args = PipelineArgs::parse();
    if let Err(e) = discogs_apps::telemetry::init(&args.service) {
        eprintln!("discogsography: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("discogsography: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = Shutdown::new();
    let next = pipeline::next_steps(&args);
    let result = runtime.block_on(async {
        shutdown.listen_for_signals();
        pipeline::run(args, shutdown).await
    });
    match result {
        Ok(summary) => {
            print!("{summary}");
            match summary.ending {
                Ending::Interrupted => ExitCode::from(130),
                _ if summary.dead_letters() > 0 => ExitCode::from(3),
                _ => {
                    print!("{next}");
                    ExitCode::SUCCESS
                }
            }
        }
        Err(e) => {
            eprintln!("discogsography: {e:#}");
            ExitCode::FAILURE
        }
    }
}
