//! Test support for the RabbitMQ tests: a [`TestBus`] over a scoped topology, the
//! management API, and broker restarts.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use discogs_bus::{
    dead_letter_reason, headers, Admin, AmqpConsumer, AmqpPublisher, ConsumerConfig,
    PublisherConfig, Topology,
};
use discogs_model::wire::Message;
use discogs_model::RecordKind;
use discogs_testkit::{require, Config, Scope, Service};
use futures_util::FutureExt;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::AMQPValue;

use crate::behaviour::{DeadLettered, TestBus};

/// A scoped topology on the real broker: its own prefix, deleted at the end.
pub struct Amqp {
    pub config: Config,
    pub topology: Topology,
    pub consumers: std::sync::Mutex<Vec<String>>,
}

impl Amqp {
    pub fn url(&self) -> &str {
        self.config.url()
    }

    pub async fn admin(&self) -> Admin {
        Admin::connect(self.url(), self.topology.clone())
            .await
            .expect("admin connection")
    }

    /// Deletes every queue and exchange this test created.
    pub async fn cleanup(&self) {
        let admin = self.admin().await;
        let consumers = self.consumers.lock().unwrap().clone();
        for c in consumers {
            admin.delete_consumer(&c, &RecordKind::ALL).await.unwrap();
        }
        admin.delete_exchanges(&RecordKind::ALL).await.unwrap();
        admin.close().await.unwrap();
    }

    pub fn remember(&self, consumer: &str) {
        let mut list = self.consumers.lock().unwrap();
        if !list.iter().any(|c| c == consumer) {
            list.push(consumer.to_owned());
        }
    }
}

/// How long one RabbitMQ test may run (see [`with_amqp`]): several times what the slowest
/// takes on a busy two-core machine, so that only a hang reaches it.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(180);

/// How long deleting a test's topology may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `body` on a fresh scoped topology (delivery limit `limit`), then deletes it, even
/// when the body panics. The body fails (panics) after [`TEST_TIMEOUT`] instead of
/// hanging; see [`with_amqp_within`].
pub async fn with_amqp<F, Fut>(tag: &str, limit: u32, body: F)
where
    F: FnOnce(&'static Amqp) -> Fut,
    Fut: Future<Output = ()>,
{
    with_amqp_within(TEST_TIMEOUT, tag, limit, body).await;
}

/// [`with_amqp`] with a time limit of its own for the body. Past `time` the body is
/// dropped and the test fails with a message naming it; the topology is still deleted. A
/// watchdog thread ends the whole test process (exit code 101) should even that not
/// happen (something blocking a runtime thread), so that CI never hangs on these tests.
pub async fn with_amqp_within<F, Fut>(time: Duration, tag: &str, limit: u32, body: F)
where
    F: FnOnce(&'static Amqp) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(config) = require(Service::RabbitMq) else {
        return;
    };
    let _watchdog = Watchdog::start(tag, time + CLEANUP_TIMEOUT + Duration::from_secs(60));
    let scope = Scope::new(tag);
    let amqp: &'static Amqp = Box::leak(Box::new(Amqp {
        config,
        topology: Topology {
            prefix: scope.queue_prefix(),
            delivery_limit: limit,
        },
        consumers: std::sync::Mutex::new(Vec::new()),
    }));
    let outcome = AssertUnwindSafe(within(time, tag, body(amqp)))
        .catch_unwind()
        .await;
    if tokio::time::timeout(CLEANUP_TIMEOUT, amqp.cleanup())
        .await
        .is_err()
    {
        eprintln!("{tag}: deleting the test topology took over {CLEANUP_TIMEOUT:?}; left behind");
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `fut`'s output, or a panic naming `what` when it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => out,
        Err(_) => panic!(
            "{what}: not finished after {limit:?}: it hangs (the log above shows its last steps)"
        ),
    }
}

/// Ends the test process when a test outlives its deadline by far: the last resort against
/// a hang that a time-out inside the runtime cannot break (a blocked runtime thread, a
/// blocking task the runtime waits for on shutdown). Disarmed on drop.
struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    fn start(what: &str, deadline: Duration) -> Watchdog {
        let (disarm, disarmed) = std::sync::mpsc::channel::<()>();
        let what = what.to_owned();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(deadline)
            {
                eprintln!("{what}: still running after {deadline:?}; ending the test process");
                std::process::exit(101);
            }
        });
        Watchdog(Some(disarm))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.take();
    }
}

impl TestBus for Amqp {
    type P = AmqpPublisher;
    type C = AmqpConsumer;

    fn publisher(&self, config: PublisherConfig) -> AmqpPublisher {
        for c in &config.consumers {
            self.remember(c);
        }
        AmqpPublisher::new(self.url(), self.topology.clone(), config).unwrap()
    }

    fn consumer(&self, config: ConsumerConfig) -> AmqpConsumer {
        self.remember(&config.name);
        AmqpConsumer::new(self.url(), self.topology.clone(), config).unwrap()
    }

    async fn declare(&self, consumer: &str) {
        self.remember(consumer);
        let admin = self.admin().await;
        admin
            .declare_consumer(consumer, &RecordKind::ALL)
            .await
            .unwrap();
        admin.close().await.unwrap();
    }

    async fn dead_letters(&self, consumer: &str, kind: RecordKind) -> Vec<DeadLettered> {
        let conn = lapin::Connection::connect(self.url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        let dlq = self.topology.dead_letter_queue(consumer, kind);
        let mut out = Vec::new();
        // The broker moves a message to the DLQ asynchronously: give it a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let got = channel
                .basic_get(dlq.as_str().into(), BasicGetOptions::default())
                .await
                .unwrap();
            let Some(got) = got else {
                if out.is_empty() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                break;
            };
            let delivery = got.delivery;
            let table = delivery.properties.headers().as_ref();
            let reason = dead_letter_reason(table).unwrap_or_default();
            let deliveries =
                match table.and_then(|t| t.inner().get(headers::DEAD_LETTER_DELIVERIES)) {
                    Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).ok(),
                    _ => None,
                };
            let encoding = delivery.properties.content_encoding().as_ref();
            let json =
                discogs_bus::body_json(encoding.map(|e| e.as_str()), &delivery.data).unwrap();
            let message = Message::from_json(&json).unwrap().into_owned();
            delivery.ack(BasicAckOptions::default()).await.unwrap();
            out.push(DeadLettered {
                message,
                reason,
                deliveries,
            });
        }
        conn.close(200, "done".into()).await.unwrap();
        out
    }

    async fn depth(&self, consumer: &str, kind: RecordKind) -> usize {
        let admin = self.admin().await;
        let n = admin
            .queue_depth(consumer, kind)
            .await
            .unwrap()
            .unwrap_or(0);
        admin.close().await.unwrap();
        n as usize
    }

    fn delivery_limit(&self) -> u32 {
        self.topology.delivery_limit
    }
}

/// The management API: `GET path` (e.g. `/api/queues/%2F/name`) as JSON.
pub fn management_get(amqp: &Config, path: &str) -> serde_json::Value {
    let base = std::env::var("RABBITMQ_MANAGEMENT_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:15672".to_owned());
    let hostport = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let credentials = format!(
        "{}:{}",
        amqp.username().unwrap_or("guest"),
        amqp.password().unwrap_or("guest")
    );
    let mut stream = TcpStream::connect(&hostport).expect("management API reachable");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // HTTP/1.0: the server closes the connection and sends no chunked encoding.
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {hostport}\r\nAuthorization: Basic {}\r\nAccept: application/json\r\n\r\n",
        base64(credentials.as_bytes())
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "GET {path}: {head}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Stops and starts the broker's application with `rabbitmqctl`, the way an operator
/// restarts it. The command is `DISCOGS_RABBITMQCTL` (split on spaces) or
/// `scripts/services rabbitmqctl` of this workspace.
#[derive(Clone)]
pub struct Broker {
    command: Vec<String>,
    address: String,
}

impl Broker {
    /// The broker control, or `None` (test skipped; a failure under `CI=true`) when
    /// `rabbitmqctl` cannot reach the broker.
    pub fn control(amqp: &Config) -> Option<Broker> {
        let command: Vec<String> = match std::env::var("DISCOGS_RABBITMQCTL") {
            Ok(c) if !c.trim().is_empty() => c.split_whitespace().map(str::to_owned).collect(),
            _ => {
                let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "scripts", "services"]
                    .iter()
                    .collect();
                vec![script.display().to_string(), "rabbitmqctl".to_owned()]
            }
        };
        let broker = Broker {
            command,
            address: amqp.address(),
        };
        match broker.run(&["-q", "status"]) {
            Ok(()) => Some(broker),
            Err(why) => {
                let message = format!("cannot control the broker with {:?}: {why} (set DISCOGS_RABBITMQCTL, or DISCOGS_SERVICES_DIR for scripts/services)", broker.command);
                if discogs_testkit::is_ci() {
                    panic!("CI=true: {message}");
                }
                discogs_testkit::skip(&message);
                None
            }
        }
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        let output = Command::new(&self.command[0])
            .args(&self.command[1..])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// `stop_app`; the returned guard runs `start_app` when dropped (also when the test
    /// fails), so the shared broker is never left stopped.
    pub fn stop_app(&self) -> Stopped {
        eprintln!("rabbitmqctl stop_app");
        // The guard exists before the command: whatever happens, start_app follows.
        let stopped = Stopped {
            broker: self.clone(),
            started: false,
        };
        self.run(&["stop_app"]).expect("rabbitmqctl stop_app");
        stopped
    }
}

/// The broker's application is stopped until [`Stopped::start`] or drop.
pub struct Stopped {
    broker: Broker,
    started: bool,
}

impl Stopped {
    /// `start_app`, then waits until AMQP accepts connections again.
    pub fn start(mut self) {
        self.start_inner().expect("rabbitmqctl start_app");
    }

    fn start_inner(&mut self) -> Result<(), String> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        eprintln!("rabbitmqctl start_app");
        let started = self.broker.run(&["start_app"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect(&self.broker.address).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        started
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Err(e) = self.start_inner() {
            eprintln!(
                "rabbitmqctl start_app failed: {e}; run `scripts/services rabbitmqctl start_app`"
            );
        }
    }
}
