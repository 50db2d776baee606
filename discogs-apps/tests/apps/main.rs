//! Integration tests of discogs-apps: one test binary, one module per topic.

mod download;
mod dumpsite;
mod health_server;
mod util;
