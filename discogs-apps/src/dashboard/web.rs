//! The dashboard's HTTP routes: the page, the JSON API and the WebSocket.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the page (`web/dashboard/index.html`, built into the binary) |
//! | `GET /dashboard.js`, `/dashboard.css` | its script and style |
//! | `GET /ws` | WebSocket: the latest snapshot at once, then every new one |
//! | `GET /api/metrics` | the latest snapshot (the same JSON the WebSocket sends) |
//! | `GET /api/history` | the charts' points of the last minutes |
//! | `GET /api/services`, `/api/queues`, `/api/databases` | parts of the snapshot (the original's routes) |
//! | `GET /health`, `/metrics` | the shared health and Prometheus routes |

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::hub::Hub;
use crate::health::{self, Status};
use crate::metrics::Metrics;

const INDEX: &str = include_str!("../../web/dashboard/index.html");
const SCRIPT: &str = include_str!("../../web/dashboard/dashboard.js");
const STYLE: &str = include_str!("../../web/dashboard/dashboard.css");

/// Largest message accepted from a client (clients have nothing to say).
const MAX_CLIENT_MESSAGE: usize = 64 << 10;

/// Every route of the dashboard.
pub fn router(hub: Hub, status: Status, metrics: Metrics) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/ws", get(websocket))
        .route("/api/metrics", get(api_metrics))
        .route("/api/history", get(api_history))
        .route("/api/services", get(api_services))
        .route("/api/queues", get(api_queues))
        .route("/api/databases", get(api_databases))
        .with_state(hub)
        .merge(health::router(status, metrics))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn websocket(State(hub): State<Hub>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| hub.serve(socket))
}

fn no_snapshot_yet() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        Json(json!({"error": "no snapshot yet: the first collection is running"})),
    )
        .into_response()
}

async fn api_metrics(State(hub): State<Hub>) -> Response {
    match hub.latest() {
        Some(p) => (
            [(header::CONTENT_TYPE, "application/json")],
            p.json.as_str().to_owned(),
        )
            .into_response(),
        None => no_snapshot_yet(),
    }
}

async fn api_history(State(hub): State<Hub>) -> Response {
    Json(hub.history()).into_response()
}

async fn api_services(State(hub): State<Hub>) -> Response {
    match hub.latest() {
        Some(p) => Json(json!({"timestamp": p.snapshot.timestamp,
                               "services": p.snapshot.services}))
        .into_response(),
        None => no_snapshot_yet(),
    }
}

async fn api_queues(State(hub): State<Hub>) -> Response {
    match hub.latest() {
        Some(p) => Json(json!({"timestamp": p.snapshot.timestamp,
                               "rabbitmq": p.snapshot.rabbitmq}))
        .into_response(),
        None => no_snapshot_yet(),
    }
}

async fn api_databases(State(hub): State<Hub>) -> Response {
    match hub.latest() {
        Some(p) => Json(json!({"timestamp": p.snapshot.timestamp,
                               "postgres": p.snapshot.postgres,
                               "neo4j": p.snapshot.neo4j,
                               "redis": p.snapshot.redis}))
        .into_response(),
        None => no_snapshot_yet(),
    }
}
