//! Handing snapshots to WebSocket clients without letting one client hold up another.
//!
//! The latest snapshot sits in a `watch` channel as serialized JSON (serialized once,
//! shared by every client). Each client has its own task: it sends the latest snapshot at
//! once, then each new one. A client that reads slowly simply skips the snapshots that
//! were replaced before it was ready (there is no queue per client that could grow), and a
//! client whose send does not complete within the send timeout (its connection is stalled)
//! is dropped. The collector never waits for any client.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::snapshot::Snapshot;
use crate::metrics::{Counter, Gauge, Metrics};
use crate::shutdown::Shutdown;

/// One published snapshot: the value and its JSON.
#[derive(Debug, Clone)]
pub struct Published {
    /// The snapshot.
    pub snapshot: Arc<Snapshot>,
    /// Its JSON, as sent to every client and returned by `/api/metrics`.
    pub json: Utf8Bytes,
}

/// The fan-out point between the collector and the clients; clones share it.
#[derive(Debug, Clone)]
pub struct Hub(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    tx: watch::Sender<Option<Published>>,
    send_timeout: Duration,
    clients_now: AtomicU64,
    clients: Gauge,
    connected: Counter,
    dropped: Counter,
    shutdown: Shutdown,
    history: Mutex<History>,
}

impl Hub {
    /// A hub whose clients are dropped when a send takes longer than `send_timeout`,
    /// keeping `history_len` points for the charts.
    #[must_use]
    pub fn new(
        metrics: &Metrics,
        send_timeout: Duration,
        history_len: usize,
        shutdown: Shutdown,
    ) -> Self {
        Self(Arc::new(Inner {
            tx: watch::Sender::new(None),
            send_timeout,
            clients_now: AtomicU64::new(0),
            clients: metrics.gauge("websocket_clients", "WebSocket clients connected.", &[]),
            connected: metrics.counter(
                "websocket_connections_total",
                "WebSocket clients that connected.",
                &[],
            ),
            dropped: metrics.counter(
                "websocket_slow_clients_dropped_total",
                "WebSocket clients dropped because a send did not complete in time.",
                &[],
            ),
            shutdown,
            history: Mutex::new(History::new(history_len)),
        }))
    }

    /// Publishes a snapshot: it replaces the previous one for every client.
    ///
    /// # Errors
    ///
    /// When the snapshot cannot be serialized (it always can: plain data).
    pub fn publish(&self, snapshot: Snapshot) -> Result<(), serde_json::Error> {
        let json = serde_json::to_string(&snapshot)?;
        self.publish_raw(snapshot, json);
        Ok(())
    }

    /// Publishes a snapshot with the JSON to send for it (tests send outsized payloads).
    pub fn publish_raw(&self, snapshot: Snapshot, json: String) {
        self.0
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(&snapshot);
        self.0.tx.send_replace(Some(Published {
            snapshot: Arc::new(snapshot),
            json: Utf8Bytes::from(json),
        }));
    }

    /// The latest snapshot, if any was published.
    #[must_use]
    pub fn latest(&self) -> Option<Published> {
        self.0.tx.borrow().clone()
    }

    /// The chart history (`/api/history`).
    #[must_use]
    pub fn history(&self) -> Value {
        self.0
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .to_json()
    }

    /// Clients connected now.
    #[must_use]
    pub fn clients(&self) -> u64 {
        self.0.clients_now.load(Ordering::Relaxed)
    }

    /// Clients dropped for being too slow, since the start.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.0.dropped.get()
    }

    /// Serves one WebSocket client until it leaves, is too slow, or the service stops.
    pub async fn serve(self, mut socket: WebSocket) {
        let inner = &self.0;
        inner.connected.inc();
        let now = inner.clients_now.fetch_add(1, Ordering::Relaxed) + 1;
        #[allow(clippy::cast_precision_loss)]
        inner.clients.set(now as f64);
        let mut rx = inner.tx.subscribe();
        let why = 'client: loop {
            // The latest at once (also to a new client), then wait for the next.
            let latest = rx.borrow_and_update().clone();
            if let Some(published) = latest {
                let send = socket.send(Message::Text(published.json));
                match tokio::time::timeout(inner.send_timeout, send).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break 'client "gone",
                    Err(_) => {
                        inner.dropped.inc();
                        tracing::warn!(
                            timeout_ms = inner.send_timeout.as_millis(),
                            "Dropping a WebSocket client: a send did not complete in time."
                        );
                        break 'client "too slow";
                    }
                }
            }
            loop {
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            break 'client "hub closed";
                        }
                        continue 'client;
                    }
                    incoming = socket.recv() => match incoming {
                        // Pings are answered by the library; anything else a client sends
                        // is ignored.
                        Some(Ok(Message::Close(_)) | Err(_)) | None => break 'client "gone",
                        Some(Ok(_)) => {}
                    },
                    () = inner.shutdown.requested() => {
                        let bye = Message::Close(Some(CloseFrame {
                            code: 1001,
                            reason: Utf8Bytes::from_static("dashboard stopping"),
                        }));
                        // Best effort: the process is stopping either way.
                        drop(tokio::time::timeout(Duration::from_secs(1), socket.send(bye)).await);
                        break 'client "shutdown";
                    }
                }
            }
        };
        tracing::debug!(why, "WebSocket client left.");
        let now = inner.clients_now.fetch_sub(1, Ordering::Relaxed) - 1;
        #[allow(clippy::cast_precision_loss)]
        inner.clients.set(now as f64);
    }
}

/// A queue on a chart: name, messages, publish rate, ack rate.
type QueuePoint = (String, Option<u64>, Option<f64>, Option<f64>);

/// One point of the charts.
#[derive(Debug, Clone)]
struct Point {
    t: u64,
    queues: Vec<QueuePoint>,
    services: Vec<(String, Option<f64>)>,
    dead_letters: Option<u64>,
}

/// The last points of the charts, so a page that connects (or reconnects) draws the last
/// minutes at once instead of starting empty.
#[derive(Debug)]
struct History {
    points: VecDeque<Point>,
    capacity: usize,
}

impl History {
    fn new(capacity: usize) -> Self {
        Self {
            points: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
        }
    }

    fn push(&mut self, s: &Snapshot) {
        let rabbit = s.rabbitmq.data.as_ref();
        self.points.push_back(Point {
            t: s.timestamp_ms,
            queues: rabbit
                .map(|r| {
                    r.queues
                        .iter()
                        .map(|q| (q.name.clone(), q.messages, q.publish_rate, q.ack_rate))
                        .collect()
                })
                .unwrap_or_default(),
            services: s
                .services
                .iter()
                .map(|x| (x.name.clone(), x.records_per_second))
                .collect(),
            dead_letters: rabbit.map(|r| r.total_dead_letters),
        });
        while self.points.len() > self.capacity {
            self.points.pop_front();
        }
    }

    /// `{"points": [{"t", "queues": {name: {messages, publish, ack}}, "services": {name:
    /// records_per_second}, "dead_letters"}]}`; a missing figure is `null`, never 0.
    fn to_json(&self) -> Value {
        let points: Vec<Value> = self
            .points
            .iter()
            .map(|p| {
                let queues: Map<String, Value> = p
                    .queues
                    .iter()
                    .map(|(name, m, publish, ack)| {
                        (
                            name.clone(),
                            json!({"messages": m, "publish": publish, "ack": ack}),
                        )
                    })
                    .collect();
                let services: Map<String, Value> = p
                    .services
                    .iter()
                    .map(|(name, rps)| (name.clone(), json!(rps)))
                    .collect();
                json!({"t": p.t, "queues": queues, "services": services,
                       "dead_letters": p.dead_letters})
            })
            .collect();
        json!({"capacity": self.capacity, "points": points})
    }
}
