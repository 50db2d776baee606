//! Reading one service's `/health`.
//!
//! Every service of the pipeline answers `GET /health` with the body of
//! [`crate::health::Status::report`]: `status`, `service`, `state`, `reason`,
//! `uptime_seconds`, `timestamp`, plus its own details. The dashboard reads from those
//! details, when present:
//!
//! * `current_task` (the original system's consumers) — else the step and file of the
//!   progress, else the extractor's `current` (`{version, step, file}`), else `state` — is
//!   shown as the current task;
//! * `extraction_progress` or `progress`, when it has `bytes_done`: `{step, file,
//!   bytes_done, bytes_total, bytes_per_second, eta_seconds}`, the extractor's progress by
//!   bytes;
//! * a record counter, the first found of `records_total`, `records`, `records_published`,
//!   `records_written`, `message_counts`, `extraction_progress`, `kinds`: a number, or an
//!   object whose `total` or sum of numbers counts, or an object of objects per kind (the
//!   extractor's `records: {artists: {read, published}, ...}`, the graphinator's and
//!   tableinator's `kinds: {artists: {records, ...}, ...}`) whose `read` (else `records`,
//!   `written`, `published`, `total`) per kind are added up;
//! * `records_per_second`, else the collector derives it from the counter.

use std::time::Instant;

use serde_json::Value;

use super::http::HttpClient;
use super::snapshot::{Progress, ServiceState, ServiceStatus};

/// Where a service's `/health` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTarget {
    /// A short name (`extractor`).
    pub name: String,
    /// Its `/health` URL.
    pub url: String,
}

impl std::str::FromStr for ServiceTarget {
    type Err = String;

    /// `name=http://host:port/health`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, url) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not NAME=URL"))?;
        let (name, url) = (name.trim(), url.trim());
        if name.is_empty() || !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("{s:?} is not NAME=http(s)://..."));
        }
        Ok(Self {
            name: name.to_owned(),
            url: url.to_owned(),
        })
    }
}

/// Reads `target`'s `/health` once. The caller bounds the time.
pub(crate) async fn probe(client: &HttpClient, target: &ServiceTarget) -> ServiceStatus {
    let started = Instant::now();
    let reply = client.get(&target.url, None).await;
    let mut status = not_answering(target, elapsed_ms(started), None);
    match reply {
        Err(e) => status.error = Some(e),
        Ok(reply) => {
            status.http_status = Some(reply.status);
            match serde_json::from_slice::<Value>(&reply.body) {
                Ok(body) if body.is_object() => interpret(&mut status, reply.status, body),
                _ => {
                    status.status = if reply.status == 200 {
                        ServiceState::Healthy
                    } else {
                        ServiceState::Unhealthy
                    };
                    status.reason = (reply.status != 200).then(|| format!("HTTP {}", reply.status));
                    status.error = Some("the /health body is not a JSON object".into());
                }
            }
        }
    }
    status
}

/// A service that has not answered (yet): down, with `error` when known.
pub(crate) fn not_answering(
    target: &ServiceTarget,
    latency_ms: u64,
    error: Option<String>,
) -> ServiceStatus {
    ServiceStatus {
        name: target.name.clone(),
        url: target.url.clone(),
        status: ServiceState::Down,
        http_status: None,
        state: None,
        current_task: None,
        reason: None,
        error,
        latency_ms,
        uptime_seconds: None,
        last_seen: None,
        records: None,
        records_per_second: None,
        progress: None,
        details: None,
    }
}

/// Fills `status` from a JSON `/health` body.
pub(crate) fn interpret(status: &mut ServiceStatus, code: u16, body: Value) {
    let said = body.get("status").and_then(Value::as_str);
    status.status = match (code, said) {
        (_, Some("starting")) => ServiceState::Starting,
        (200, Some("healthy" | "ok") | None) => ServiceState::Healthy,
        _ => ServiceState::Unhealthy,
    };
    status.state = text(&body, "state");
    status.reason = text(&body, "reason").or_else(|| text(&body, "error"));
    if status.status == ServiceState::Unhealthy && status.reason.is_none() {
        status.reason = Some(match said {
            Some(s) if code == 200 => format!("reports {s}"),
            _ => format!("HTTP {code}"),
        });
    }
    status.uptime_seconds = body.get("uptime_seconds").and_then(Value::as_u64);
    status.progress = ["extraction_progress", "progress"]
        .iter()
        .find_map(|key| body.get(*key).and_then(progress));
    status.current_task = text(&body, "current_task")
        .or_else(|| {
            let p = status.progress.as_ref()?;
            task(p.step.as_deref(), p.file.as_deref(), None)
        })
        .or_else(|| {
            let c = body.get("current")?;
            task(
                c.get("step").and_then(Value::as_str),
                c.get("file").and_then(Value::as_str),
                c.get("version").and_then(Value::as_str),
            )
        })
        .or_else(|| status.state.clone());
    status.records = [
        "records_total",
        "records",
        "records_published",
        "records_written",
        "message_counts",
        "extraction_progress",
        "kinds",
    ]
    .iter()
    .find_map(|key| body.get(*key).and_then(count));
    status.records_per_second = body
        .get("records_per_second")
        .or_else(|| {
            body.get("progress")
                .and_then(|p| p.get("records_per_second"))
        })
        .and_then(Value::as_f64);
    status.details = Some(body);
}

/// `step file` (or `step version`), when there is a step.
fn task(step: Option<&str>, file: Option<&str>, version: Option<&str>) -> Option<String> {
    let step = step.filter(|s| !s.is_empty())?;
    Some(match file.or(version).filter(|f| !f.is_empty()) {
        Some(what) => format!("{step} {what}"),
        None => step.to_owned(),
    })
}

fn text(body: &Value, key: &str) -> Option<String> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A number; an object's `total`, else the sum of its numbers; else, for an object of
/// objects (one per kind), the sum of each one's count.
fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::Object(map) => map.get("total").and_then(Value::as_u64).or_else(|| {
            let numbers: Vec<u64> = map.values().filter_map(Value::as_u64).collect();
            if !numbers.is_empty() {
                return Some(numbers.iter().sum());
            }
            let per_kind: Vec<u64> = map
                .values()
                .filter_map(|inner| {
                    ["read", "records", "written", "published", "total"]
                        .iter()
                        .find_map(|key| inner.get(*key).and_then(Value::as_u64))
                })
                .collect();
            (!per_kind.is_empty()).then(|| per_kind.iter().sum())
        }),
        _ => None,
    }
}

/// A `progress` object with at least `bytes_done`, unless it is idle (no step, nothing
/// done).
fn progress(v: &Value) -> Option<Progress> {
    let bytes_done = v.get("bytes_done")?.as_u64()?;
    if bytes_done == 0 && text(v, "step").is_none() {
        return None;
    }
    let bytes_total = v
        .get("bytes_total")
        .and_then(Value::as_u64)
        .filter(|t| *t > 0);
    let bytes_per_second = v.get("bytes_per_second").and_then(Value::as_f64);
    #[allow(clippy::cast_precision_loss)]
    let percent = bytes_total.map(|t| (bytes_done as f64 / t as f64 * 100.0).min(100.0));
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let eta_seconds = v.get("eta_seconds").and_then(Value::as_u64).or_else(|| {
        let rate = bytes_per_second.filter(|r| *r > 0.0)?;
        let left = bytes_total?.checked_sub(bytes_done)?;
        Some((left as f64 / rate).ceil() as u64)
    });
    Some(Progress {
        step: text(v, "step"),
        file: text(v, "file"),
        bytes_done,
        bytes_total,
        percent,
        bytes_per_second,
        eta_seconds,
    })
}

/// Milliseconds since `start`.
pub(crate) fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn blank() -> ServiceStatus {
        let target = "x=http://x/health".parse().unwrap();
        not_answering(&target, 0, None)
    }

    #[test]
    fn reads_the_extractor_body() {
        let mut s = blank();
        interpret(
            &mut s,
            200,
            json!({
                "status": "healthy", "service": "extractor", "state": "running", "uptime_seconds": 12,
                "progress": {"step": "publish", "file": "discogs_20260101_releases.xml.gz",
                             "bytes_done": 250, "bytes_total": 1000, "bytes_per_second": 50.0},
                "records": {"artists": 10, "releases": 5},
            }),
        );
        assert_eq!(s.status, ServiceState::Healthy);
        assert_eq!(
            s.current_task.as_deref(),
            Some("publish discogs_20260101_releases.xml.gz")
        );
        let p = s.progress.unwrap();
        assert_eq!((p.bytes_done, p.bytes_total), (250, Some(1000)));
        assert_eq!(p.percent, Some(25.0));
        assert_eq!(p.eta_seconds, Some(15), "750 bytes left at 50 B/s");
        assert_eq!(s.records, Some(15));
        assert_eq!(s.uptime_seconds, Some(12));
    }

    #[test]
    fn reads_the_extractor_of_this_workspace() {
        // The body `extractor::run` gives `/health`.
        let mut s = blank();
        interpret(
            &mut s,
            200,
            json!({
                "status": "healthy", "state": "running",
                "extraction_progress": {"step": "publish", "file": "discogs_20260101_labels.xml.gz",
                    "bytes_done": 10, "bytes_total": 40, "percent": 25.0,
                    "bytes_per_second": 5.0, "eta_seconds": 6},
                "records": {"artists": {"read": 100, "published": 7},
                            "labels": {"read": 20, "published": 20}},
                "current": {"version": "20260101", "step": "publish",
                            "file": "discogs_20260101_labels.xml.gz"},
            }),
        );
        assert_eq!(s.records, Some(120), "records read, all kinds");
        // The consumers' shape (`consumer::ConsumerStats::report`).
        let mut c = blank();
        interpret(
            &mut c,
            200,
            json!({
                "status": "healthy", "state": "running",
                "kinds": {"artists": {"records": 30, "inserted": 30, "dead_lettered": 0},
                          "releases": {"records": 12, "inserted": 10, "updated": 2}},
            }),
        );
        assert_eq!(c.records, Some(42), "records written, all kinds");
        let p = s.progress.as_ref().unwrap();
        assert_eq!(p.eta_seconds, Some(6), "the service's own ETA");
        assert_eq!(
            s.current_task.as_deref(),
            Some("publish discogs_20260101_labels.xml.gz")
        );

        let mut s = blank();
        interpret(
            &mut s,
            200,
            json!({"status": "healthy", "state": "running",
                   "extraction_progress": {"step": "", "file": "", "bytes_done": 0, "bytes_total": 0},
                   "current": {"version": "20260101", "step": "download"}}),
        );
        assert_eq!(s.current_task.as_deref(), Some("download 20260101"));
        assert!(s.progress.is_none(), "an idle progress is no progress");
    }

    #[test]
    fn unhealthy_and_the_original_shapes() {
        let mut s = blank();
        interpret(
            &mut s,
            503,
            json!({"status": "unhealthy", "state": "failed", "reason": "no broker"}),
        );
        assert_eq!(s.status, ServiceState::Unhealthy);
        assert_eq!(s.reason.as_deref(), Some("no broker"));
        assert_eq!(s.current_task.as_deref(), Some("failed"));

        let mut s = blank();
        interpret(
            &mut s,
            200,
            json!({"status": "healthy", "current_task": "Processing artists",
                   "message_counts": {"artists": 3, "labels": 4}}),
        );
        assert_eq!(s.current_task.as_deref(), Some("Processing artists"));
        assert_eq!(s.records, Some(7));

        let mut s = blank();
        interpret(
            &mut s,
            500,
            json!({"extraction_progress": {"artists": 1, "total": 9}}),
        );
        assert_eq!(s.status, ServiceState::Unhealthy);
        assert_eq!(s.reason.as_deref(), Some("HTTP 500"));
        assert_eq!(s.records, Some(9));
        assert!(s.progress.is_none(), "record counts are not byte progress");
    }

    #[test]
    fn parses_targets() {
        let t: ServiceTarget = "extractor=http://127.0.0.1:8000/health".parse().unwrap();
        assert_eq!(t.name, "extractor");
        assert!("extractor".parse::<ServiceTarget>().is_err());
        assert!("x=ftp://h/".parse::<ServiceTarget>().is_err());
    }
}
