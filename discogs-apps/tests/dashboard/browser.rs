//! The page in headless Chromium, against the `dashboard` binary and the real services,
//! driven over the DevTools protocol (a WebSocket carrying JSON, spoken here with the same
//! `tokio-tungstenite` client as the WebSocket tests; see ARCHITECTURE.md, "Dashboard").
//!
//! Chromium comes from the Debian package `chromium` (or any Chrome/Chromium named by
//! `CHROMIUM`). Without it the test is skipped with the reason printed, and fails under
//! `CI=true`. Screenshots are written to `target/tmp/dashboard-browser/`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use discogs_apps::dashboard::http::HttpClient;
use discogs_apps::shutdown::Shutdown;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::util::{closed_port, FakeService, Playground, Services, Ws};

/// The browser to use: `CHROMIUM`, else the first of the usual names on `PATH`.
fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let names = [
        "chromium",
        "chromium-browser",
        "chromium-headless-shell",
        "chrome-headless-shell",
        "google-chrome",
    ];
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// A process killed when dropped (also when the test fails half-way).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // Already gone is fine.
        self.0.kill().unwrap_or(());
        self.0.wait().map(drop).unwrap_or(());
    }
}

/// Starts the `dashboard` binary on `port` and waits for its `/health`.
async fn start_binary(argv: &[String], port: u16) -> Killed {
    let child = Command::new(env!("CARGO_BIN_EXE_dashboard"))
        .args(&argv[1..])
        .args(["--health-port", &port.to_string()])
        .env("LOG_LEVEL", "WARNING")
        .stdout(Stdio::null())
        .spawn()
        .expect("the dashboard binary starts");
    let child = Killed(child);
    let http = HttpClient::new();
    let url = format!("http://127.0.0.1:{port}/health");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(reply) = http.get(&url, None).await {
            if reply.status == 200 {
                return child;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard binary did not answer /health"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Headless Chromium showing `url`, and its DevTools address.
fn start_chromium(binary: &Path, url: &str, profile: &Path) -> (Killed, String) {
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--window-size=1400,1000",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the DevTools address, then keeps draining so Chromium never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("ws://") {
                if let Some(tx) = tx.take() {
                    tx.send(line[at..].trim().to_owned()).unwrap_or(());
                }
            }
        }
    });
    let browser = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("Chromium printed its DevTools address within 30 s");
    (Killed(child), browser)
}

/// A DevTools session on one page.
struct Page {
    ws: Ws,
    next_id: u64,
}

impl Page {
    /// Connects to the page target showing `url`.
    async fn attach(browser_ws: &str, url: &str) -> Self {
        let host = browser_ws
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host:port");
        let http = HttpClient::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        let page_ws = loop {
            let reply = http
                .get(&format!("http://{host}/json/list"), None)
                .await
                .expect("DevTools /json/list");
            let targets: Vec<Value> = serde_json::from_slice(&reply.body).expect("targets");
            let found = targets.iter().find(|t| {
                t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url))
            });
            if let Some(t) = found {
                break t["webSocketDebuggerUrl"]
                    .as_str()
                    .expect("ws url")
                    .to_owned();
            }
            assert!(Instant::now() < deadline, "no page for {url}: {targets:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(page_ws.as_str())
            .await
            .expect("DevTools page connection");
        Self { ws, next_id: 1 }
    }

    /// Calls a DevTools method and returns its result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "method": method, "params": params});
        self.ws
            .send(Message::Text(request.to_string().into()))
            .await
            .expect("DevTools send");
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer in 30 s"))
                .expect("DevTools closed")
                .expect("DevTools error");
            let Message::Text(text) = message else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page, or the exception it threw.
    async fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        if r["exceptionDetails"].is_null() {
            Ok(r["result"]["value"].clone())
        } else {
            Err(r["exceptionDetails"].clone())
        }
    }

    /// The value of a JavaScript expression in the page.
    async fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|e| panic!("{expression}: {e}"))
    }

    /// Evaluates `expression` until it is `true`, for at most `limit`.
    async fn wait_until(&mut self, limit: Duration, what: &str, expression: &str, figures: &str) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            // Throws while the page is still loading.
            if self.try_eval(expression).await == Ok(Value::Bool(true)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let figures = self.eval(figures).await;
        panic!("{what}: not true within {limit:?}: {expression}; page shows {figures:#}");
    }

    /// A PNG of the whole page, written to `path`.
    async fn screenshot(&mut self, path: &Path) {
        let metrics = self.call("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("PNG data"))
            .expect("base64");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(path, &png).expect("write screenshot");
        println!("screenshot: {} ({} bytes)", path.display(), png.len());
    }
}

/// What the page shows, read from its DOM (`__SCHEMA__`, `__LABEL__` and `__QUEUE__` name
/// the test's table, label and queue).
const FIGURES_OF: &str = r##"(() => {
  const text = (sel) => { const n = document.querySelector(sel); return n ? n.textContent : null; };
  return {
    connection: document.getElementById("connection").dataset.state,
    seq: text("#seq"),
    cards: document.querySelectorAll("[data-service]").length,
    extractor: text("[data-service=extractor] [data-field=status]"),
    graphinator: text("[data-service=graphinator] [data-field=status]"),
    graphinator_error: text("[data-service=graphinator] [data-field=error]"),
    task: text("[data-service=extractor] [data-field=task]"),
    bytes: text("[data-progress=extractor] [data-field=bytes-done]"),
    eta: text("[data-progress=extractor] [data-field=eta]"),
    records_rate: text("[data-progress=extractor] [data-field=records-rate]"),
    rows: text('[data-table="__SCHEMA__.writes"] [data-field=rows]'),
    nodes: text('[data-label="__LABEL__"] [data-field=count]'),
    depth: text('[data-queue="__QUEUE__"] [data-field=messages]'),
    reason: text("[data-dlq] [data-field=reason]"),
    databases: [...document.querySelectorAll("[data-db]")].map((n) => n.dataset.db + ":" + n.querySelector("[data-field=status]").textContent),
    depth_points: Number(document.getElementById("chart-depth").dataset.points || 0),
    rate_points: Number(document.getElementById("chart-rates").dataset.points || 0),
    record_points: Number(document.getElementById("chart-records").dataset.points || 0),
    depth_lines: document.querySelectorAll("#chart-depth path.series").length,
    activity: [...document.querySelectorAll("#activity li")].map((n) => n.textContent),
  };
})()"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_renders_cards_and_charts_and_follows_the_pipeline() {
    let Some(services) = Services::require() else {
        return;
    };
    let Some(chromium) = find_chromium() else {
        let message = "no Chromium found (install the Debian package `chromium`, or set CHROMIUM)";
        if discogs_testkit::is_ci() {
            panic!("CI=true: {message}");
        }
        discogs_testkit::skip(message);
        return;
    };
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-browser");
    std::fs::create_dir_all(&artifacts).expect("artifacts folder");
    let services_ = services.clone();
    Playground::run(&services, "dash_browser", |play| async move {
        let services = services_;
        play.dead_letter("invalid record: release 42 has no title")
            .await;
        let extractor = FakeService::start("extractor").await;
        let graphinator = FakeService::start("graphinator").await;
        let argv = services.dashboard_argv(
            &play.scope,
            &[
                "--service",
                &extractor.target("extractor"),
                "--service",
                &graphinator.target("graphinator"),
            ],
        );
        let port = closed_port().await;
        let binary = start_binary(&argv, port).await;

        // Something writes the whole time: messages, rows, nodes.
        let stop = Shutdown::new();
        let writer = {
            let (play, stop) = (Arc::clone(&play), stop.clone());
            tokio::spawn(async move {
                while !stop.is_requested() {
                    play.write(2).await;
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
            })
        };

        let url = format!("http://127.0.0.1:{port}/");
        let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "chromium-profile-{}",
            discogs_testkit::unique_suffix()
        ));
        let (browser, devtools) = start_chromium(&chromium, &url, &profile);
        let mut page = Page::attach(&devtools, &url).await;
        let figures = FIGURES_OF
            .replace("__SCHEMA__", &play.scope.schema())
            .replace("__LABEL__", &play.label())
            .replace("__QUEUE__", &play.queue);
        let figures = figures.as_str();

        // Cards for both services and the three stores, all up; charts drawn; the dead letter
        // with its reason; the extraction with its progress.
        page.wait_until(
            Duration::from_secs(30),
            "page rendered",
            r#"(() => { const f = FIGURES;
                return f.connection === "live" && f.cards === 2 && f.extractor === "healthy"
                  && f.graphinator === "healthy" && f.databases.join() === "PostgreSQL:up,Neo4j:up,Redis:up"
                  && f.rows !== null && f.nodes !== null && f.depth !== null && f.depth !== "…"
                  && f.bytes !== null && f.reason !== null
                  && f.depth_points >= 2 && f.rate_points >= 2 && f.record_points >= 2; })()"#
                .replace("FIGURES", figures)
                .as_str(),
            figures,
        )
        .await;
        let before = page.eval(figures).await;
        assert_eq!(before["task"], "publish discogs_20260101_releases.xml.gz");
        assert_eq!(before["reason"], "invalid record: release 42 has no title");
        assert!(before["depth_lines"].as_u64() >= Some(1));
        page.screenshot(&artifacts.join("1-running.png")).await;

        // The numbers change while the pipeline runs (RabbitMQ recomputes its figures every 5 s).
        let changed = |a: &Value, b: &Value, key: &str| a[key] != b[key];
        let deadline = Instant::now() + Duration::from_secs(20);
        let after = loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = page.eval(figures).await;
            if ["seq", "bytes", "rows", "nodes", "depth"]
                .iter()
                .all(|k| changed(&before, &now, k))
            {
                break now;
            }
            assert!(
                Instant::now() < deadline,
                "the page's numbers did not all change in 20 s: before {before:#} now {now:#}"
            );
        };
        println!("before: {before}\nafter: {after}");
        assert!(after["depth_points"].as_u64() > before["depth_points"].as_u64());

        // A consumer that stops shows as down, with the error, and in the activity log.
        graphinator.stop().await;
        page.wait_until(
            Duration::from_secs(6),
            "graphinator down on the page",
            r#"document.querySelector("[data-service=graphinator] [data-field=status]").textContent === "down""#,
            figures,
        )
        .await;
        let down = page.eval(figures).await;
        assert!(
            down["graphinator_error"]
                .as_str()
                .is_some_and(|e| e.contains("refused")),
            "{down:#}"
        );
        assert!(
            down["activity"].as_array().unwrap().iter().any(|l| l
                .as_str()
                .unwrap()
                .contains("graphinator")
                && l.as_str().unwrap().contains("down")),
            "{down:#}"
        );
        page.screenshot(&artifacts.join("2-consumer-down.png"))
            .await;

        // The page reconnects by itself when the dashboard comes back.
        drop(binary);
        page.wait_until(
            Duration::from_secs(5),
            "page notices the dashboard is gone",
            r#"document.getElementById("connection").dataset.state === "down""#,
            figures,
        )
        .await;
        let binary = start_binary(&argv, port).await;
        // Live again, with the new dashboard's snapshots (numbered from 1 again).
        let last_seq: u64 = down["seq"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("seq");
        page.wait_until(
            Duration::from_secs(20),
            "page reconnected",
            &format!(
                r#"document.getElementById("connection").dataset.state === "live" && Number(document.getElementById("seq").textContent) < {last_seq}"#
            ),
            figures,
        )
        .await;
        page.screenshot(&artifacts.join("3-reconnected.png")).await;

        stop.trigger();
        writer.await.unwrap();
        drop(page);
        drop(browser);
        drop(binary);
        std::fs::remove_dir_all(&profile).unwrap_or(());
        extractor.stop().await;
    })
    .await;
}
