//! Benchmark support for the discogs-* crates: [`generate`] writes Discogs-shaped dumps
//! of any size, deterministically, for benchmarks and load tests.
//!
//! [`sample`] writes a whole dump of the four kinds whose records reference each other
//! (the `discogsography` command's built-in sample).
//!
//! The command `generate_dump` (in `src/bin`) writes such a file; `benches/parse.rs` holds
//! the criterion benches; `run-parse-bench.sh` is the whole-file benchmark behind the
//! figures in the README.
#![deny(missing_docs)]

pub mod generate;
pub mod sample;
