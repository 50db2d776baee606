//! Progress by bytes of the current step (download, verification, publishing): shown as a
//! bar on a terminal and in `/health`, from the same counters.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[derive(Debug)]
struct Inner {
    step: Mutex<(String, String, Instant)>,
    done: AtomicU64,
    total: AtomicU64,
    /// `done` when the step started (a resumed download starts part-way).
    base: AtomicU64,
}

/// Progress of the step in hand; clones share it.
#[derive(Debug, Clone)]
pub struct Progress(Arc<Inner>);

impl Default for Progress {
    fn default() -> Self {
        Self(Arc::new(Inner {
            step: Mutex::new((String::new(), String::new(), Instant::now())),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            base: AtomicU64::new(0),
        }))
    }
}

/// A reading of [`Progress`].
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// `download`, `verify`, `publish`, or empty when idle.
    pub step: String,
    /// The file.
    pub file: String,
    /// Bytes done.
    pub done: u64,
    /// Bytes in all (0 when unknown).
    pub total: u64,
    /// Bytes per second since the step started.
    pub rate: f64,
    /// Time left at that rate, when the total is known.
    pub eta: Option<Duration>,
}

impl Progress {
    /// Starts a step over `file`, `done` bytes of `total` already behind.
    pub fn start(&self, step: &str, file: &str, done: u64, total: u64) {
        *self.0.step.lock().unwrap_or_else(PoisonError::into_inner) =
            (step.to_owned(), file.to_owned(), Instant::now());
        self.0.done.store(done, Ordering::Relaxed);
        self.0.base.store(done, Ordering::Relaxed);
        self.0.total.store(total, Ordering::Relaxed);
    }

    /// Sets the total once it is known.
    pub fn set_total(&self, total: u64) {
        self.0.total.store(total, Ordering::Relaxed);
    }

    /// Sets the bytes done.
    pub fn set_done(&self, done: u64) {
        self.0.done.store(done, Ordering::Relaxed);
    }

    /// Adds to the bytes done.
    pub fn add(&self, bytes: u64) {
        self.0.done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Back to idle.
    pub fn finish(&self) {
        self.start("", "", 0, 0);
    }

    /// The current reading.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let (step, file, started) = self
            .0
            .step
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let done = self.0.done.load(Ordering::Relaxed);
        let total = self.0.total.load(Ordering::Relaxed);
        let moved = done.saturating_sub(self.0.base.load(Ordering::Relaxed));
        let secs = started.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let rate = if secs > 0.0 { moved as f64 / secs } else { 0.0 };
        #[allow(clippy::cast_precision_loss)]
        let eta = (total > done && rate > 0.0)
            .then(|| Duration::from_secs_f64((total - done) as f64 / rate));
        Snapshot {
            step,
            file,
            done,
            total,
            rate,
            eta,
        }
    }

    /// The reading as JSON for `/health`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let s = self.snapshot();
        json!({
            "step": s.step,
            "file": s.file,
            "bytes_done": s.done,
            "bytes_total": s.total,
            "percent": s.percent(),
            "bytes_per_second": s.rate.round(),
            "eta_seconds": s.eta.map(|d| d.as_secs()),
        })
    }

    /// Draws a bar on stderr every 250 ms while stderr is a terminal, until `stop`.
    pub fn spawn_terminal_bar(&self, stop: crate::shutdown::Shutdown) {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.requested() => break,
                }
                let s = this.snapshot();
                if s.step.is_empty() {
                    continue;
                }
                let mut err = std::io::stderr().lock();
                // A failed write to the terminal is not worth stopping for.
                drop(write!(err, "\r\x1b[2K{}", s.line(40)));
                drop(err.flush());
            }
        });
    }
}

impl Snapshot {
    /// Percent done, when the total is known.
    #[must_use]
    pub fn percent(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.total > 0).then(|| (self.done as f64 * 100.0 / self.total as f64).min(100.0))
    }

    /// One line: step, file, bar, bytes, rate, ETA.
    #[must_use]
    pub fn line(&self, width: usize) -> String {
        let bar = match self.percent() {
            Some(p) => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let filled = ((p / 100.0) * width as f64) as usize;
                format!(
                    "[{}{}]",
                    "#".repeat(filled),
                    "-".repeat(width - filled.min(width))
                )
            }
            None => format!("[{}]", "?".repeat(width)),
        };
        let eta = self.eta.map_or_else(
            || "--:--".into(),
            |d| {
                let s = d.as_secs();
                format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            },
        );
        format!(
            "{} {} {bar} {:.1}/{:.1} MB {:.1} MB/s ETA {eta}",
            self.step,
            self.file,
            mb(self.done),
            mb(self.total),
            self.rate / 1e6,
        )
    }
}

#[allow(clippy::cast_precision_loss)]
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_eta_and_line() {
        let p = Progress::default();
        p.start(
            "download",
            "discogs_20260101_labels.xml.gz",
            1_000_000,
            4_000_000,
        );
        std::thread::sleep(Duration::from_millis(50));
        p.add(1_000_000);
        let s = p.snapshot();
        assert_eq!((s.done, s.total), (2_000_000, 4_000_000));
        assert_eq!(s.percent(), Some(50.0));
        assert!(s.rate > 0.0 && s.eta.is_some());
        let line = s.line(10);
        assert!(line.contains("[#####-----] 2.0/4.0 MB"), "{line}");
        assert_eq!(p.to_json()["bytes_done"], 2_000_000);
        p.finish();
        assert_eq!(p.snapshot().step, "");
    }
}
