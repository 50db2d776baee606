//! The health and metrics server every service runs.
//!
//! * `GET /health`: `200` when the service is healthy, `503` otherwise, with a JSON body:
//!   `status` (`healthy`/`unhealthy`), `service`, `state`, `reason` (why unhealthy),
//!   `uptime_seconds`, `timestamp`, plus whatever the service's details function adds
//!   (counts, rates, the current file and offset...).
//! * `GET /metrics`: the service's [`Metrics`] in the Prometheus text format.
//!
//! A service keeps one [`Status`], updates it as it works, and may add its own routes
//! (`router(...).merge(...)`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

type Details = Arc<dyn Fn() -> Map<String, Value> + Send + Sync>;

struct Inner {
    service: String,
    started: Instant,
    healthy: AtomicBool,
    state: Mutex<(String, Option<String>)>,
    details: Mutex<Option<Details>>,
}

/// What `/health` reports; clones share it.
#[derive(Clone)]
pub struct Status(Arc<Inner>);

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Status")
            .field("service", &self.0.service)
            .field("healthy", &self.is_healthy())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Status {
    /// A healthy status in state `starting`.
    #[must_use]
    pub fn new(service: &str) -> Self {
        Self(Arc::new(Inner {
            service: service.to_owned(),
            started: Instant::now(),
            healthy: AtomicBool::new(true),
            state: Mutex::new(("starting".into(), None)),
            details: Mutex::new(None),
        }))
    }

    /// Sets the state (`idle`, `running`, `waiting`...) and marks the service healthy.
    pub fn set_state(&self, state: &str) {
        *self.0.state.lock().unwrap_or_else(PoisonError::into_inner) = (state.to_owned(), None);
        self.0.healthy.store(true, Ordering::Relaxed);
    }

    /// Marks the service unhealthy: `/health` answers 503 with this state and reason.
    pub fn set_unhealthy(&self, state: &str, reason: impl Into<String>) {
        *self.0.state.lock().unwrap_or_else(PoisonError::into_inner) =
            (state.to_owned(), Some(reason.into()));
        self.0.healthy.store(false, Ordering::Relaxed);
    }

    /// Whether `/health` answers 200.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.0.healthy.load(Ordering::Relaxed)
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> String {
        self.0
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// Sets the function whose fields are added to every `/health` body.
    pub fn set_details(&self, details: impl Fn() -> Map<String, Value> + Send + Sync + 'static) {
        *self
            .0
            .details
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(details));
    }

    /// The `/health` body.
    #[must_use]
    pub fn report(&self) -> Value {
        let (state, reason) = self
            .0
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let healthy = self.is_healthy();
        let mut body = json!({
            "status": if healthy { "healthy" } else { "unhealthy" },
            "service": self.0.service,
            "state": state,
            "uptime_seconds": self.0.started.elapsed().as_secs(),
            "timestamp": rfc3339(SystemTime::now()),
        });
        if let Some(reason) = reason {
            body["reason"] = reason.into();
        }
        let details = self
            .0
            .details
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let (Some(details), Value::Object(map)) = (details, &mut body) {
            for (k, v) in details() {
                map.entry(k).or_insert(v);
            }
        }
        body
    }
}

/// `/health` and `/metrics` for this status and registry.
pub fn router(status: Status, metrics: Metrics) -> Router {
    Router::new()
        .route("/health", get(health).with_state(status))
        .route("/metrics", get(render_metrics).with_state(metrics))
}

async fn health(State(status): State<Status>) -> impl IntoResponse {
    let code = if status.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(status.report()))
}

async fn render_metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
}

/// Binds the health server's address, before a service starts its work, so that a port
/// already in use stops the service at once with the address in the error rather than
/// leaving it running without `/health`.
///
/// # Errors
///
/// When the address cannot be bound (in use, or not an address of this machine).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("binding the health server to {addr} (is the port in use? HEALTH_PORT sets it)")
    })
}

/// Binds `addr` and serves `app` until `shutdown` is triggered.
///
/// # Errors
///
/// When the address cannot be bound or the server fails.
pub async fn serve(addr: SocketAddr, app: Router, shutdown: Shutdown) -> anyhow::Result<()> {
    serve_on(bind(addr).await?, app, shutdown).await
}

/// Serves `app` on a bound listener until `shutdown` is triggered (tests bind port 0).
///
/// # Errors
///
/// When the server fails.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().ok();
    tracing::info!(?addr, "Health server listening (/health, /metrics).");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.requested().await })
        .await
        .context("health server")
}

/// `2026-01-31T12:34:56Z` for a time (UTC, whole seconds).
#[must_use]
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Reads what [`rfc3339`] writes (`YYYY-MM-DDTHH:MM:SSZ`); `None` for anything else.
#[must_use]
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    Some(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_772_324_096);
        assert_eq!(rfc3339(t), "2026-03-01T00:14:56Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
        for t in [UNIX_EPOCH, t, leap] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
        assert_eq!(parse_rfc3339("2026-01-01 00:00:00"), None);
    }

    #[test]
    fn report_carries_state_and_details() {
        let s = Status::new("svc");
        s.set_details(|| {
            let mut m = Map::new();
            m.insert("records".into(), 5.into());
            m.insert("status".into(), "ignored: reserved key".into());
            m
        });
        s.set_state("running");
        let r = s.report();
        assert_eq!(
            (r["status"].as_str(), r["state"].as_str()),
            (Some("healthy"), Some("running"))
        );
        assert_eq!(r["records"], 5);
        s.set_unhealthy("failed", "broker unreachable");
        let r = s.report();
        assert_eq!(r["status"], "unhealthy");
        assert_eq!(r["reason"], "broker unreachable");
        assert!(!s.is_healthy());
    }
}
