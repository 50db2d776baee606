//! A small Prometheus registry: counters and gauges with labels, rendered in the text
//! exposition format (version 0.0.4). Updating a metric is one atomic operation; the
//! registry's lock is taken only to register a series and to render.
//!
//! ```
//! use discogs_apps::metrics::Metrics;
//!
//! let metrics = Metrics::new("extractor");
//! let published = metrics.counter("records_published_total", "Records published.", &[("kind", "releases")]);
//! published.add(100);
//! metrics.gauge("download_bytes", "Bytes downloaded of the current file.", &[]).set(1.5e6);
//! let text = metrics.render();
//! assert!(text.contains("extractor_records_published_total{kind=\"releases\"} 100"));
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A counter: only goes up.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge: a value that goes up and down (stored as `f64` bits).
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// The current value.
    #[must_use]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

#[derive(Debug)]
enum Cell {
    Counter(Counter),
    Gauge(Gauge),
}

#[derive(Debug)]
struct Family {
    /// The name as the first caller gave it (found again without formatting anything).
    given: String,
    name: String,
    help: String,
    kind: Kind,
    series: Vec<Series>,
}

#[derive(Debug)]
struct Series {
    /// The labels as the first caller gave them.
    given: Vec<(String, String)>,
    /// The labels rendered: `{k="v",...}` or empty.
    rendered: String,
    cell: Cell,
}

impl Series {
    fn given_as(&self, labels: &[(&str, &str)]) -> bool {
        self.given.len() == labels.len()
            && self
                .given
                .iter()
                .zip(labels)
                .all(|((k, v), (k2, v2))| k == k2 && v == v2)
    }
}

#[derive(Debug)]
struct Inner {
    namespace: String,
    families: Mutex<Vec<Family>>,
}

/// The registry of one service; clones share it.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

impl Metrics {
    /// A registry whose metric names all start with `{namespace}_`.
    #[must_use]
    pub fn new(namespace: &str) -> Self {
        Self(Arc::new(Inner {
            namespace: sanitize(namespace),
            families: Mutex::new(Vec::new()),
        }))
    }

    /// The counter `name` with these labels, registered on first use.
    ///
    /// # Panics
    ///
    /// When `name` is already registered as a gauge.
    #[must_use]
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        match self.cell(name, help, Kind::Counter, labels, || {
            Cell::Counter(Counter::default())
        }) {
            Cell::Counter(c) => c,
            Cell::Gauge(_) => unreachable!("kind checked in cell()"),
        }
    }

    /// The gauge `name` with these labels, registered on first use.
    ///
    /// # Panics
    ///
    /// When `name` is already registered as a counter.
    #[must_use]
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        match self.cell(name, help, Kind::Gauge, labels, || {
            Cell::Gauge(Gauge::default())
        }) {
            Cell::Gauge(g) => g,
            Cell::Counter(_) => unreachable!("kind checked in cell()"),
        }
    }

    fn cell(
        &self,
        name: &str,
        help: &str,
        kind: Kind,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Cell,
    ) -> Cell {
        let mut families = self
            .0
            .families
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Every request of a service counts itself: the usual case, a series met before
        // under the same spelling, allocates nothing.
        let index = match families.iter().position(|f| f.given == name) {
            Some(i) => i,
            None => {
                let full = format!("{}_{}", self.0.namespace, sanitize(name));
                match families.iter().position(|f| f.name == full) {
                    Some(i) => i,
                    None => {
                        families.push(Family {
                            given: name.to_owned(),
                            name: full,
                            help: help.replace('\\', "\\\\").replace('\n', "\\n"),
                            kind,
                            series: Vec::new(),
                        });
                        families.len() - 1
                    }
                }
            }
        };
        let family = &mut families[index];
        assert!(
            family.kind == kind,
            "metric {} registered as {:?} and {kind:?}",
            family.name,
            family.kind
        );
        let position = match family.series.iter().position(|s| s.given_as(labels)) {
            Some(i) => Some(i),
            None => {
                let rendered = render_labels(labels);
                family.series.iter().position(|s| s.rendered == rendered)
            }
        };
        let cell = match position {
            Some(i) => &family.series[i].cell,
            None => {
                family.series.push(Series {
                    given: labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    rendered: render_labels(labels),
                    cell: make(),
                });
                &family.series.last().expect("just pushed").cell
            }
        };
        match cell {
            Cell::Counter(c) => Cell::Counter(c.clone()),
            Cell::Gauge(g) => Cell::Gauge(g.clone()),
        }
    }

    /// Every metric in the Prometheus text format.
    #[must_use]
    pub fn render(&self) -> String {
        let families = self
            .0
            .families
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut out = String::with_capacity(families.len() * 128);
        for family in families.iter() {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            writeln!(out, "# HELP {} {}", family.name, family.help).unwrap_or(());
            writeln!(out, "# TYPE {} {kind}", family.name).unwrap_or(());
            for Series {
                rendered: labels,
                cell,
                ..
            } in &family.series
            {
                match cell {
                    Cell::Counter(c) => writeln!(out, "{}{labels} {}", family.name, c.get()),
                    Cell::Gauge(g) => writeln!(out, "{}{labels} {}", family.name, g.get()),
                }
                .unwrap_or(());
            }
        }
        out
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut out = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        write!(out, "{}=\"{v}\"", sanitize(k)).unwrap_or(());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_once_with_all_series() {
        let m = Metrics::new("svc-x");
        m.counter("a_total", "A.", &[("kind", "artists")]).add(2);
        m.counter("a_total", "A.", &[("kind", "labels")]).inc();
        let again = m.counter("a_total", "A.", &[("kind", "artists")]);
        again.inc();
        m.gauge("g", "G \"quoted\".", &[("file", "a\"b")]).set(0.5);
        let text = m.render();
        assert_eq!(text.matches("# TYPE svc_x_a_total counter").count(), 1);
        assert!(text.contains("svc_x_a_total{kind=\"artists\"} 3\n"));
        assert!(text.contains("svc_x_a_total{kind=\"labels\"} 1\n"));
        assert!(text.contains("svc_x_g{file=\"a\\\"b\"} 0.5\n"));
    }

    #[test]
    fn spellings_that_render_alike_share_a_series() {
        let m = Metrics::new("svc");
        m.counter("a-total", "A.", &[("kind", "x")]).inc();
        m.counter("a_total", "A.", &[("kind", "x")]).inc();
        m.counter("a_total", "A.", &[("kind", "x")]).inc();
        let text = m.render();
        assert_eq!(text.matches("# TYPE svc_a_total counter").count(), 1);
        assert!(text.contains("svc_a_total{kind=\"x\"} 3\n"), "{text}");
    }

    #[test]
    #[should_panic(expected = "registered as")]
    fn one_name_one_kind() {
        let m = Metrics::new("x");
        drop(m.counter("n", "", &[]));
        drop(m.gauge("n", "", &[]));
    }
}
