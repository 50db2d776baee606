//! The page in headless Chromium, against the `dashboard` binary and the real services,
//! driven over the DevTools protocol (`tests/common/chromium.rs`, shared with the explorer's
//! browser test; see ARCHITECTURE.md, "Dashboard").
//!
//! Chromium comes from the Debian package `chromium` (or any Chrome/Chromium named by
//! `CHROMIUM`). Without it the test is skipped with the reason printed, and fails under
//! `CI=true`. Screenshots are written to `target/tmp/dashboard-browser/`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use discogs_apps::dashboard::http::HttpClient;
use discogs_apps::shutdown::Shutdown;
use serde_json::Value;

use crate::chromium::{find_chromium_or_skip, start_chromium, Killed, Page};
use crate::util::{closed_port, FakeService, Playground, Services};

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
    let Some(chromium) = find_chromium_or_skip() else {
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
