//! Headless Chromium driven over the DevTools protocol (a WebSocket carrying JSON, spoken
//! with `tokio-tungstenite`), shared by the browser tests of the dashboard and the explorer
//! (each test binary includes this file with `#[path]`).
//!
//! Chromium comes from the Debian package `chromium` (or any Chrome/Chromium named by
//! `CHROMIUM`); [`find_chromium_or_skip`] skips a test without it, and fails it under
//! `CI=true`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use discogs_apps::dashboard::http::HttpClient;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A DevTools connection.
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Chromium, or `None` with the reason printed (a panic under `CI=true`).
pub(crate) fn find_chromium_or_skip() -> Option<PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        let message = "no Chromium found (install the Debian package `chromium`, or set CHROMIUM)";
        if discogs_testkit::is_ci() {
            panic!("CI=true: {message}");
        }
        discogs_testkit::skip(message);
    }
    found
}

/// The browser to use: `CHROMIUM`, else the first of the usual names on `PATH`.
pub(crate) fn find_chromium() -> Option<PathBuf> {
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
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // Already gone is fine.
        self.0.kill().unwrap_or(());
        self.0.wait().map(drop).unwrap_or(());
    }
}

/// Headless Chromium showing `url`, and its DevTools address.
pub(crate) fn start_chromium(binary: &Path, url: &str, profile: &Path) -> (Killed, String) {
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
pub(crate) struct Page {
    ws: Ws,
    next_id: u64,
}

impl Page {
    /// Connects to the page target showing `url`.
    pub(crate) async fn attach(browser_ws: &str, url: &str) -> Self {
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
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Value {
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
    pub(crate) async fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
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
    pub(crate) async fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|e| panic!("{expression}: {e}"))
    }

    /// Evaluates `expression` until it is `true`, for at most `limit`.
    pub(crate) async fn wait_until(
        &mut self,
        limit: Duration,
        what: &str,
        expression: &str,
        figures: &str,
    ) {
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
    pub(crate) async fn screenshot(&mut self, path: &Path) {
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
