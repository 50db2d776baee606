//! The dashboard following the real pipeline over the real fixtures: `discogsography
//! --serve-health` loads the 2025-11 releases excerpt (4,229 releases of the real dump,
//! 19 MB of XML) through RabbitMQ into PostgreSQL and Neo4j while the dashboard collects
//! from its three stages' `/health`, the broker and the databases, and the page is open in
//! headless Chromium. Over the WebSocket the stages show as healthy and both consumers'
//! record counts rise between snapshots; the page shows the numbers changing while the
//! run goes on; when the run ends, its stopped consumers show as down within 5 s; and the
//! dashboard's graph and table figures equal the databases'.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser as _;
use discogs_apps::pipeline::{self, Ending, PipelineArgs};
use discogs_apps::shutdown::Shutdown;
use discogs_model::RecordKind;
use discogs_testkit::shared_fixtures;
use serde_json::Value;

use crate::chromium::{find_chromium_or_skip, start_chromium, Page};
use crate::stack::Env;
use crate::util::{
    label_count, next_snapshot, service, table_rows_of, wait_for, ws_connect, RunningDashboard,
    Services,
};

/// Three consecutive free ports (the pipeline's health servers: base, +1, +2), below the
/// kernel's ephemeral range. The probes are closed before the pipeline binds the ports, and
/// in that window an outgoing connection of this or another test could take an ephemeral
/// port as its source (most likely how one CI run lost the graphinator's: its `/health`
/// never answered while it wrote everything); a port below the range is only ever taken
/// by an explicit bind.
async fn three_free_ports() -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let (low, high) = (10_000u16, ephemeral_low.saturating_sub(3).max(10_100));
    // A start that differs between runs and processes, then consecutive candidates.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let span = u32::from(high - low);
    for attempt in 0..200u32 {
        let base = low + u16::try_from((seed.wrapping_add(attempt * 7)) % span).unwrap_or(0);
        let mut held = Vec::new();
        for port in [base, base + 1, base + 2] {
            if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                held.push(l);
            }
        }
        if held.len() == 3 {
            return base;
        }
    }
    panic!("no three consecutive free ports below {ephemeral_low}");
}

/// Whether the snapshot's queue list holds `name`.
fn lists_queue(snapshot: &Value, name: &str) -> bool {
    snapshot["rabbitmq"]["data"]["queues"]
        .as_array()
        .is_some_and(|queues| queues.iter().any(|q| q["name"] == name))
}

fn records(snapshot: &Value, name: &str) -> Option<u64> {
    service(snapshot, name)["records"].as_u64()
}

/// What the page shows of the run (`__RELEASES__` names the test's releases table,
/// `__LABEL__` its graph's release label).
const PAGE_FIGURES: &str = r##"(() => {
  const text = (sel) => { const n = document.querySelector(sel); return n ? n.textContent : null; };
  const stage = (name) => ({
    status: text(`[data-service=${name}] [data-field=status]`),
    records: text(`[data-service=${name}] [data-field=records]`),
  });
  return {
    connection: document.getElementById("connection").dataset.state,
    seq: text("#seq"),
    extractor: stage("extractor"),
    graphinator: stage("graphinator"),
    tableinator: stage("tableinator"),
    rows: text('[data-table="__RELEASES__"] [data-field=rows]'),
    nodes: text('[data-label="__LABEL__"] [data-field=count]'),
  };
})()"##;

/// The number in a page text such as `≈ 4,229` or `1,024`.
fn number(text: &Value) -> Option<u64> {
    let digits: String = text
        .as_str()?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The page's figures while both consumers run, as (graphinator records, tableinator
/// records), when the page shows them.
fn running_figures(page: &Value) -> Option<(u64, u64)> {
    let healthy = ["extractor", "graphinator", "tableinator"]
        .iter()
        .all(|s| page[s]["status"] == "healthy");
    if !healthy {
        return None;
    }
    Some((
        number(&page["graphinator"]["records"])?,
        number(&page["tableinator"]["records"])?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_its_page_follow_the_real_pipeline_over_the_fixtures() {
    let Some(services) = Services::require() else {
        return;
    };
    let Some(env) = Env::new("dash_pipeline") else {
        return;
    };
    let Some(fixtures) = shared_fixtures() else {
        return;
    };
    let Some(chromium) = find_chromium_or_skip() else {
        return;
    };
    // The excerpt under its dump name (the folder's CHECKSUM file is the whole repo's).
    let input = env.link_input(
        &fixtures.join("nicolascalo__discogs_lakehouse_graph_data_platform"),
        &[(
            "discogs_20251101_releases_sample_100000.xml.gz",
            "discogs_20251101_releases.xml.gz",
        )],
    );
    let port = three_free_ports().await;
    let target =
        |name: &str, offset: u16| format!("{name}=http://127.0.0.1:{}/health", port + offset);
    let (extractor, graphinator, tableinator) = (
        target("extractor", 0),
        target("graphinator", 1),
        target("tableinator", 2),
    );
    // Collections every 250 ms: the tableinator loads these 4,229 releases in a few seconds.
    let dashboard = RunningDashboard::start(services.dashboard_args(
        &env.scope,
        &[
            "--service",
            &extractor,
            "--service",
            &graphinator,
            "--service",
            &tableinator,
            "--interval-ms",
            "250",
            "--source-timeout-ms",
            "240",
        ],
    ))
    .await;
    let mut ws = ws_connect(dashboard.addr).await;

    // The page, open before the run starts: the three stages not there yet.
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-pipeline");
    std::fs::create_dir_all(&artifacts).expect("artifacts folder");
    let url = format!("http://{}/", dashboard.addr);
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "chromium-profile-{}",
        discogs_testkit::unique_suffix()
    ));
    let (browser, devtools) = start_chromium(&chromium, &url, &profile);
    let mut page = Page::attach(&devtools, &url).await;
    let releases_table = format!("{}.releases", env.schema);
    let release_label = format!("{}Release", env.namespace);
    let figures = PAGE_FIGURES
        .replace("__RELEASES__", &releases_table)
        .replace("__LABEL__", &release_label);
    let figures = figures.as_str();
    page.wait_until(
        Duration::from_secs(30),
        "page live, the stages down",
        &format!(
            "(() => {{ const f = {figures}; return f.connection === 'live' && f.graphinator.status === 'down'; }})()"
        ),
        figures,
    )
    .await;

    let mut argv = vec!["discogsography".to_owned()];
    argv.extend(env.flags());
    argv.extend([
        "--input".into(),
        input.display().to_string(),
        "--serve-health".into(),
        "--health-port".into(),
        port.to_string(),
        // Writes of 500 records (not 2,000): the consumers' counts then move in about
        // nine steps over this file, enough to be seen rising between snapshots.
        "--write-records".into(),
        "500".into(),
    ]);
    let args = PipelineArgs::try_parse_from(&argv).expect("flags");
    let run = tokio::spawn(pipeline::run(args, Shutdown::new()));

    // While the pipeline runs: over the WebSocket every stage healthy and each consumer's
    // count rising from one snapshot to a later one; on the page, the same.
    let queue = format!("{}-tableinator-releases", env.prefix);
    let started = Instant::now();
    let (mut graph_seen, mut tables_seen) = (Vec::new(), Vec::new());
    let mut page_seen: Vec<(u64, u64)> = Vec::new();
    let mut queue_seen = false;
    let mut trace = Vec::new();
    let rose = |seen: &[u64]| seen.windows(2).any(|w| w[1] > w[0]);
    while !run.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the pipeline did not finish within 600 s"
        );
        let snapshot = next_snapshot(&mut ws, Duration::from_secs(10)).await;
        queue_seen |= lists_queue(&snapshot, &queue);
        let stages = ["extractor", "graphinator", "tableinator"];
        trace.push(Value::Array(
            stages
                .iter()
                .map(|name| {
                    let s = service(&snapshot, name);
                    serde_json::json!([name, s["status"], s["records"]])
                })
                .collect(),
        ));
        if stages
            .iter()
            .all(|name| service(&snapshot, name)["status"] == "healthy")
        {
            graph_seen.extend(records(&snapshot, "graphinator").filter(|n| *n > 0));
            tables_seen.extend(records(&snapshot, "tableinator").filter(|n| *n > 0));
        }
        let now = page.eval(figures).await;
        if let Some(running) = running_figures(&now) {
            if page_seen.last() != Some(&running) {
                if page_seen.len() == 1 {
                    page.screenshot(&artifacts.join("1-running.png")).await;
                }
                page_seen.push(running);
            }
        }
    }
    let summary = run
        .await
        .expect("pipeline task")
        .expect("the pipeline succeeds");
    // The run's end stopped the real consumers (and their health servers): both shown as
    // down, with the error, within 5 s, on the WebSocket and on the page.
    let (down, _) = wait_for(
        &mut ws,
        Duration::from_secs(5),
        "the stopped consumers shown as down",
        |s| {
            ["graphinator", "tableinator"]
                .iter()
                .all(|name| service(s, name)["status"] == "down")
        },
    )
    .await;
    assert!(
        service(&down, "graphinator")["error"]
            .as_str()
            .is_some_and(|e| e.contains("refused")),
        "{:#}",
        service(&down, "graphinator")
    );
    page.wait_until(
        Duration::from_secs(5),
        "the stopped consumers down on the page",
        &format!(
            "(() => {{ const f = {figures}; return f.graphinator.status === 'down' && f.tableinator.status === 'down'; }})()"
        ),
        figures,
    )
    .await;
    assert_eq!(summary.ending, Ending::Completed);
    assert_eq!(summary.dead_letters(), 0);
    assert_eq!(summary.kinds[&RecordKind::Release].published, 4_229);
    let trace = Value::Array(trace);
    assert!(
        rose(&graph_seen),
        "the graphinator's count rose between snapshots: {graph_seen:?}\n{trace}"
    );
    assert!(
        rose(&tables_seen),
        "the tableinator's count rose between snapshots: {tables_seen:?}\n{trace}"
    );
    assert!(
        page_seen.len() >= 2,
        "the page showed the consumers' counts changing during the run: {page_seen:?}"
    );
    assert!(queue_seen, "the dashboard listed the queue {queue}");

    // After the run: the dashboard's figures are the databases'. Release nodes come from
    // Neo4j's count store: exact (the releases file makes no release stubs, so every
    // release node is a complete one). Rows are PostgreSQL's statistics (`n_live_tup`),
    // an estimate: they must be shown, and at least the rows there are (seen above the
    // true count, never below, in a few runs beside the other tests: not compared exactly).
    let counts = env.counts().await;
    let (rows, nodes) = counts[&RecordKind::Release];
    assert_eq!((rows, nodes), (4_229, 4_229));
    let close = |shown: u64| shown >= 4_229;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = next_snapshot(&mut ws, Duration::from_secs(10)).await;
        let shown = (
            table_rows_of(&s, &env.schema, "releases"),
            label_count(&s, &release_label),
        );
        if shown.0.is_some_and(close) && shown.1 == Some(4_229) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard shows {shown:?} (rows, release nodes), the databases hold {:?}",
            (rows, nodes)
        );
    }
    page.wait_until(
        Duration::from_secs(10),
        "the page shows the final figures",
        &format!(
            "(() => {{ const f = {figures}; return f.nodes === '4,229' && f.rows !== null; }})()"
        ),
        figures,
    )
    .await;
    let shown_rows = number(&page.eval(figures).await["rows"]);
    assert!(shown_rows.is_some_and(close), "page rows {shown_rows:?}");
    page.screenshot(&artifacts.join("2-done.png")).await;

    drop(page);
    drop(browser);
    std::fs::remove_dir_all(&profile).unwrap_or(());
    dashboard.stop().await;
    env.clean_up().await;
}
