//! Integration tests of discogs-apps: one test binary, one module per topic.

mod download;
mod dumpsite;
mod extract;
mod health_server;
mod outlet;
mod rabbitmq;
mod util;
