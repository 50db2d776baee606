//! The collector: reads every source at once, each within the same time limit, and turns
//! the readings into a [`Snapshot`], with what only a comparison with the previous
//! reading gives (records per second, when a service was last seen, the activity log).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::{JoinHandle, JoinSet};

use super::http::HttpClient;
use super::neo4j::{NeoSource, NeoTarget};
use super::postgres::PgSource;
use super::rabbitmq::{RabbitSource, RabbitTarget};
use super::redis::RedisSource;
use super::services::{elapsed_ms, not_answering, probe, ServiceTarget};
use super::snapshot::{Event, RabbitMq, ServiceState, ServiceStatus, Snapshot, Source};
use crate::health::rfc3339;

/// Lines kept in the activity log.
pub const EVENTS_KEPT: usize = 50;

/// A source's reading that takes longer than this is abandoned (its task aborted, its
/// connections dropped) and the source starts afresh.
pub const ABANDON_AFTER: Duration = Duration::from_secs(30);

/// A source the collector reads: PostgreSQL, Neo4j, Redis, RabbitMQ.
pub(crate) trait Reader: Send + 'static {
    /// What one reading gives.
    type Data: Send + 'static;

    /// One reading; a failure is a message naming what failed.
    fn read(&mut self) -> impl Future<Output = Result<Self::Data, String>> + Send;
}

enum SlotState<R: Reader> {
    /// Between readings.
    Idle(R),
    /// A reading still running since `since` (it outlived a collection's time limit).
    Busy {
        task: JoinHandle<(R, Result<R::Data, String>)>,
        since: Instant,
    },
    /// Lost (abandoned or failed): made afresh at the next reading.
    Empty,
}

/// One source and its reading in flight. Each reading runs in its own task, so the
/// collector can stop waiting for it at the time limit without cancelling it: a source
/// that is slow to connect is shown as down meanwhile, and the next collection picks up
/// the same reading (and its connection) instead of starting over and timing out forever.
/// A reading that runs past [`ABANDON_AFTER`] is aborted and the source made afresh.
pub(crate) struct Slot<R: Reader> {
    state: SlotState<R>,
    make: Box<dyn Fn() -> R + Send + Sync>,
}

impl<R: Reader> std::fmt::Debug for Slot<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            SlotState::Idle(_) => "idle",
            SlotState::Busy { .. } => "busy",
            SlotState::Empty => "empty",
        };
        f.debug_struct("Slot")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<R: Reader> Slot<R> {
    fn new(make: impl Fn() -> R + Send + Sync + 'static) -> Self {
        Self {
            state: SlotState::Empty,
            make: Box::new(make),
        }
    }

    /// The reading, or down when it takes longer than `limit`.
    async fn poll(&mut self, limit: Duration) -> Source<R::Data> {
        let started = Instant::now();
        let (mut task, since) = match std::mem::replace(&mut self.state, SlotState::Empty) {
            SlotState::Busy { task, since } => (task, since),
            SlotState::Idle(source) => (spawn_read(source), started),
            SlotState::Empty => (spawn_read((self.make)()), started),
        };
        let waited = |since: Instant| elapsed_ms(since);
        match tokio::time::timeout(limit, &mut task).await {
            Ok(Ok((source, reading))) => {
                self.state = SlotState::Idle(source);
                match reading {
                    Ok(data) => Source::up(data, waited(since)),
                    Err(e) => Source::down(e, waited(since)),
                }
            }
            Ok(Err(e)) => Source::down(format!("the reading failed: {e}"), waited(since)),
            Err(_) if since.elapsed() >= ABANDON_AFTER => {
                task.abort();
                Source::down(
                    format!(
                        "no answer for {} s: gave up, reconnecting",
                        since.elapsed().as_secs()
                    ),
                    waited(since),
                )
            }
            Err(_) => {
                let message = if since == started {
                    format!("no answer within {} ms", limit.as_millis())
                } else {
                    format!(
                        "no answer within {} ms (still waiting, {} s)",
                        limit.as_millis(),
                        since.elapsed().as_secs()
                    )
                };
                self.state = SlotState::Busy { task, since };
                Source::down(message, waited(since))
            }
        }
    }
}

fn spawn_read<R: Reader>(mut source: R) -> JoinHandle<(R, Result<R::Data, String>)> {
    tokio::spawn(async move {
        let reading = source.read().await;
        (source, reading)
    })
}

/// What the collector reads, and how.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// The services whose `/health` is read, in display order.
    pub services: Vec<ServiceTarget>,
    /// RabbitMQ's management API.
    pub rabbitmq: RabbitTarget,
    /// PostgreSQL.
    pub postgres: tokio_postgres::Config,
    /// The PostgreSQL schemas whose tables are listed.
    pub postgres_schemas: Vec<String>,
    /// Neo4j.
    pub neo4j: NeoTarget,
    /// Redis URL (may carry a password).
    pub redis_url: String,
    /// Time between two collections.
    pub interval: Duration,
    /// Time each source has to answer; a source that takes longer is shown as down.
    pub timeout: Duration,
}

#[derive(Debug, Default)]
struct Seen {
    status: Option<ServiceState>,
    state: Option<String>,
    last_seen: Option<String>,
    records: Option<(u64, Instant)>,
}

/// Reads every source; [`Collector::collect`] gives one snapshot.
#[derive(Debug)]
pub struct Collector {
    http: HttpClient,
    services: Vec<ServiceTarget>,
    rabbitmq: Slot<RabbitSource>,
    postgres: Slot<PgSource>,
    neo4j: Slot<NeoSource>,
    redis: Slot<RedisSource>,
    interval: Duration,
    timeout: Duration,
    seq: u64,
    seen: HashMap<String, Seen>,
    sources_up: HashMap<&'static str, bool>,
    queues: HashMap<String, (Option<u64>, Option<u64>)>,
    events: VecDeque<Event>,
}

impl Collector {
    /// A collector; it does no I/O until the first [`Collector::collect`].
    #[must_use]
    pub fn new(config: CollectorConfig) -> Self {
        let http = HttpClient::new();
        let (rabbit, rabbit_http) = (config.rabbitmq, http.clone());
        let (pg, schemas) = (config.postgres, config.postgres_schemas);
        let (neo, redis_url) = (config.neo4j, config.redis_url);
        Self {
            rabbitmq: Slot::new(move || RabbitSource::new(rabbit.clone(), rabbit_http.clone())),
            postgres: Slot::new(move || PgSource::new(pg.clone(), schemas.clone())),
            neo4j: Slot::new(move || NeoSource::new(neo.clone())),
            redis: Slot::new(move || RedisSource::new(&redis_url)),
            http,
            services: config.services,
            interval: config.interval,
            timeout: config.timeout,
            seq: 0,
            seen: HashMap::new(),
            sources_up: HashMap::new(),
            queues: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// Reads every source concurrently, each within the timeout, and returns the snapshot.
    /// Takes at most about the timeout, however slow a source is.
    pub async fn collect(&mut self) -> Snapshot {
        let started = Instant::now();
        let now = SystemTime::now();
        let timeout = self.timeout;
        let Self {
            http,
            services,
            rabbitmq,
            postgres,
            neo4j,
            redis,
            ..
        } = self;
        let (services, rabbitmq, postgres, neo4j, redis) = tokio::join!(
            probe_all(http, services, timeout),
            rabbitmq.poll(timeout),
            postgres.poll(timeout),
            neo4j.poll(timeout),
            redis.poll(timeout),
        );
        self.seq += 1;
        let mut snapshot = Snapshot {
            kind: "snapshot".into(),
            seq: self.seq,
            timestamp: rfc3339(now),
            timestamp_ms: unix_ms(now),
            collect_ms: elapsed_ms(started),
            interval_ms: u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX),
            services,
            rabbitmq,
            postgres,
            neo4j,
            redis,
            events: Vec::new(),
        };
        self.compare(&mut snapshot, started);
        snapshot.events = self.events.iter().cloned().collect();
        snapshot
    }

    /// Fills what needs the previous reading, and logs what changed.
    fn compare(&mut self, snapshot: &mut Snapshot, now: Instant) {
        let at = snapshot.timestamp.clone();
        let at_ms = snapshot.timestamp_ms;
        let mut events = Vec::new();
        for service in &mut snapshot.services {
            let seen = self.seen.entry(service.name.clone()).or_default();
            if service.status != ServiceState::Down {
                seen.last_seen = Some(at.clone());
            }
            service.last_seen.clone_from(&seen.last_seen);
            if let Some(records) = service.records {
                if service.records_per_second.is_none() {
                    if let Some((before, then)) = seen.records {
                        let secs = now.duration_since(then).as_secs_f64();
                        #[allow(clippy::cast_precision_loss)]
                        if records >= before && secs > 0.0 {
                            service.records_per_second = Some((records - before) as f64 / secs);
                        }
                    }
                }
                seen.records = Some((records, now));
            }
            if seen.status != Some(service.status) {
                let (level, message) = service_change(seen.status, service);
                events.push((service.name.clone(), level, message));
            } else if service.status != ServiceState::Down && seen.state != service.state {
                events.push((
                    service.name.clone(),
                    "info",
                    format!(
                        "state {} → {}",
                        seen.state.as_deref().unwrap_or("?"),
                        service.state.as_deref().unwrap_or("?")
                    ),
                ));
            }
            seen.status = Some(service.status);
            if service.status != ServiceState::Down {
                seen.state.clone_from(&service.state);
            }
        }
        let sources = [
            (
                "rabbitmq",
                snapshot.rabbitmq.is_up(),
                &snapshot.rabbitmq.error,
            ),
            (
                "postgres",
                snapshot.postgres.is_up(),
                &snapshot.postgres.error,
            ),
            ("neo4j", snapshot.neo4j.is_up(), &snapshot.neo4j.error),
            ("redis", snapshot.redis.is_up(), &snapshot.redis.error),
        ];
        for (name, up, error) in sources {
            if self.sources_up.insert(name, up) != Some(up) {
                events.push(if up {
                    (name.to_owned(), "info", "answering".to_owned())
                } else {
                    (
                        name.to_owned(),
                        "error",
                        format!("down: {}", error.as_deref().unwrap_or("no answer")),
                    )
                });
            }
        }
        if let Some(rabbit) = &snapshot.rabbitmq.data {
            self.queue_events(rabbit, &mut events);
        }
        for (source, level, message) in events {
            self.events.push_back(Event {
                at: at.clone(),
                at_ms,
                source,
                level: level.to_owned(),
                message,
            });
        }
        while self.events.len() > EVENTS_KEPT {
            self.events.pop_front();
        }
    }

    /// New dead letters, and queues whose consumers went away while work waits.
    fn queue_events(
        &mut self,
        rabbit: &RabbitMq,
        events: &mut Vec<(String, &'static str, String)>,
    ) {
        for queue in &rabbit.queues {
            let before = self
                .queues
                .insert(queue.name.clone(), (queue.consumers, queue.dead_letters));
            let Some((consumers_before, dead_before)) = before else {
                continue;
            };
            if let (Some(b), Some(n)) = (consumers_before, queue.consumers) {
                if b > 0 && n == 0 {
                    events.push((
                        queue.name.clone(),
                        "warn",
                        format!(
                            "no consumer any more ({} messages waiting)",
                            queue.messages.unwrap_or(0)
                        ),
                    ));
                } else if b == 0 && n > 0 {
                    events.push((
                        queue.name.clone(),
                        "info",
                        format!("{n} consumer(s) attached"),
                    ));
                }
            }
            if let (Some(b), Some(n)) = (dead_before, queue.dead_letters) {
                if n > b {
                    let reason = rabbit
                        .dead_letters
                        .iter()
                        .find(|d| d.source == queue.name)
                        .and_then(|d| d.samples.last())
                        .and_then(|s| s.reason.clone());
                    events.push((
                        queue.name.clone(),
                        "error",
                        match reason {
                            Some(r) => format!("{} new dead-lettered message(s), e.g. {r}", n - b),
                            None => format!("{} new dead-lettered message(s)", n - b),
                        },
                    ));
                }
            }
        }
        self.queues
            .retain(|name, _| rabbit.queues.iter().any(|q| &q.name == name));
    }
}

/// What to log when a service's status changes.
fn service_change(before: Option<ServiceState>, now: &ServiceStatus) -> (&'static str, String) {
    let state = now
        .state
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let word = |s: ServiceState| match s {
        ServiceState::Healthy => "healthy",
        ServiceState::Unhealthy => "unhealthy",
        ServiceState::Starting => "starting",
        ServiceState::Down => "down",
    };
    let detail = match now.status {
        ServiceState::Down => format!(": {}", now.error.as_deref().unwrap_or("no answer")),
        ServiceState::Unhealthy => format!(": {}", now.reason.as_deref().unwrap_or("unhealthy")),
        _ => state,
    };
    let level = match now.status {
        ServiceState::Down => "error",
        ServiceState::Unhealthy => "warn",
        _ => "info",
    };
    let message = match before {
        None => format!("{}{detail}", word(now.status)),
        Some(b) => format!("{} → {}{detail}", word(b), word(now.status)),
    };
    (level, message)
}

/// Every service's `/health` at once, each within `limit`, in the configured order.
async fn probe_all(
    http: &HttpClient,
    targets: &[ServiceTarget],
    limit: Duration,
) -> Vec<ServiceStatus> {
    let mut set = JoinSet::new();
    for (i, target) in targets.iter().enumerate() {
        let (http, target) = (http.clone(), target.clone());
        set.spawn(async move {
            let started = Instant::now();
            let status = match tokio::time::timeout(limit, probe(&http, &target)).await {
                Ok(status) => status,
                Err(_) => not_answering(
                    &target,
                    elapsed_ms(started),
                    Some(format!("no answer within {} ms", limit.as_millis())),
                ),
            };
            (i, status)
        });
    }
    let mut out: Vec<Option<ServiceStatus>> = vec![None; targets.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, status)) = joined {
            out[i] = Some(status);
        }
    }
    out.into_iter()
        .zip(targets)
        .map(|(s, t)| {
            s.unwrap_or_else(|| not_answering(t, 0, Some("the reading task failed".into())))
        })
        .collect()
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
