//! Integration tests of discogs-apps: one test binary, one module per topic.

mod health_server;
mod util;
