//! Integration tests of the dashboard: one test binary, one module per topic. They talk
//! to the real PostgreSQL, RabbitMQ (with its management API), Neo4j and Redis that
//! `scripts/services up` starts, each test in its own names (queue prefix, schema, label).

mod browser;
#[path = "../common/chromium.rs"]
mod chromium;
mod cli;
mod collector;
mod pipeline;
#[path = "../common/stack.rs"]
mod stack;
mod util;
mod websocket;
