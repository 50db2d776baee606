//! Latency and throughput of the explore API under 50 concurrent clients.
//!
//! Loads the fixture excerpts (the same as the explore tests: `/work/shared/fixtures` or
//! `DISCOGS_FIXTURES`) through the real sinks into a Neo4j namespace and a PostgreSQL schema
//! of its own, serves three explorers in this process and sends each of autocomplete,
//! explore and expand from `--clients` concurrent clients, each with its own keep-alive
//! connection:
//!
//! * "no cache": no cache tier at all, every answer from the databases (after a first pass
//!   over the inputs, so that the databases' own caches are warm, as in production);
//! * "Redis": the Redis tier only (in-process tier off), every key warmed first: each
//!   request is one Redis `GET`;
//! * "memory + Redis": both tiers, as deployed, every key warmed first: each request is
//!   answered from the in-process tier (its entries live 10 s; an expired one would be
//!   fetched from Redis again). The hits per tier during the run are printed, so the
//!   table says where the answers came from.
//!
//! Prints p50/p95/p99, requests per second and the CPU time per request: of the clients
//! (their own thread), of the explorers (the rest of this process), of Neo4j (with
//! `--neo4j-pid <pid>`; else 0) and of the rest of the machine (Redis, PostgreSQL, and
//! whatever else runs: "rest"); a first row
//! measures `/health` (no database, no cache) as the floor of the clients and the HTTP
//! stack. Removes what it loaded at the end.
//!
//! ```text
//! eval "$(scripts/services env)"
//! cargo run --release -p discogs-apps --example explore_bench -- --clients 50 --requests 10000
//! ```
//!
//! `--only autocomplete` (or `explore`, `expand`) runs one endpoint; `--neo4j-connections`
//! sets the explorers' Neo4j pool (16, the explorer's default), `--autocomplete-statements`
//! the autocomplete statements of one type running at once (2, the explorer's default;
//! lookups arriving meanwhile share the next statement), `--explore-statements` and
//! `--expand-statements` the same for explore and expand (2 each; a large number, such as
//! 1000, sends every lookup in a statement of its own). After the table, the lookups and
//! statements of each uncached run (their ratio: the mean batch).

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/explore/world.rs"]
mod world;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use discogs_apps::dashboard::http::HttpClient;
use world::{metric, Running, World};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time of a process (`self` or a pid) in clock ticks, from Linux's `/proc` (0 elsewhere).
fn process_ticks(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The fields after the command's closing parenthesis, from the state (field 3):
            // utime and stime are fields 14 and 15.
            let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// CPU time in clock ticks: this process's (explorers and clients), Neo4j's (when
/// `--neo4j-pid` is given), and the whole machine's busy time.
fn cpu_ticks() -> (u64, u64, u64) {
    let own = process_ticks("self");
    let neo4j = std::env::args()
        .skip_while(|a| a != "--neo4j-pid")
        .nth(1)
        .map_or(0, |pid| process_ticks(&pid));
    let machine = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let f: Vec<u64> = s
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // Everything but idle and iowait.
            Some(f.iter().sum::<u64>() - f.get(3)? - f.get(4)?)
        })
        .unwrap_or(0);
    (own, neo4j, machine)
}

/// What a run measured: the sorted latencies, the wall time and the clients' CPU ticks.
struct Measured {
    latencies: Vec<Duration>,
    wall: Duration,
    client_ticks: u64,
}

/// Sends `requests` GETs of `paths` (round robin) from `clients` tasks. The clients run on
/// a thread of their own (a single-threaded runtime), so that their CPU time is measured
/// apart from the explorers'.
async fn run(
    addr: std::net::SocketAddr,
    paths: Arc<Vec<String>>,
    clients: usize,
    requests: usize,
) -> Measured {
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the clients' runtime");
        let ticks = process_ticks("thread-self");
        let (latencies, wall) = runtime.block_on(clients_run(addr, paths, clients, requests));
        Measured {
            latencies,
            wall,
            client_ticks: process_ticks("thread-self") - ticks,
        }
    })
    .await
    .expect("the clients' thread")
}

async fn clients_run(
    addr: std::net::SocketAddr,
    paths: Arc<Vec<String>>,
    clients: usize,
    requests: usize,
) -> (Vec<Duration>, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, paths) = (Arc::clone(&next), Arc::clone(&paths));
        tasks.push(tokio::spawn(async move {
            let http = HttpClient::new();
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return out;
                }
                let url = format!("http://{addr}{}", paths[i % paths.len()]);
                let t = Instant::now();
                let reply = http.get(&url, None).await.expect("request");
                assert_eq!(
                    reply.status,
                    200,
                    "{url}: {:?}",
                    String::from_utf8_lossy(&reply.body)
                );
                out.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    let wall = started.elapsed();
    all.sort();
    (all, wall)
}

/// The `permille`-th latency in milliseconds (950: p95).
fn pct(sorted: &[Duration], permille: usize) -> f64 {
    let i = (sorted.len() - 1) * permille / 1000;
    sorted[i].as_secs_f64() * 1000.0
}

/// Prints a table row; `cpu0` and `cpu` are [`cpu_ticks`] at the start and the end of the
/// run.
#[allow(clippy::too_many_arguments)]
fn row(
    name: &str,
    mode: &str,
    m: &Measured,
    requests: usize,
    tiers: &str,
    cpu0: (u64, u64, u64),
    cpu: (u64, u64, u64),
) {
    // Clock ticks are 10 ms (USER_HZ 100).
    let per = |ticks: u64| ticks as f64 * 10_000.0 / requests as f64;
    let own = cpu.0.saturating_sub(cpu0.0);
    let explorer = own.saturating_sub(m.client_ticks);
    let neo4j = cpu.1.saturating_sub(cpu0.1);
    let rest = cpu.2.saturating_sub(cpu0.2).saturating_sub(own + neo4j);
    let lat = &m.latencies;
    println!(
        "| {name} | {mode} | {:.1} | {:.1} | {:.1} | {:.0} | {tiers} | {:.0} / {:.0} / {:.0} / {:.0} |",
        pct(lat, 500),
        pct(lat, 950),
        pct(lat, 990),
        requests as f64 / m.wall.as_secs_f64(),
        per(m.client_ticks),
        per(explorer),
        per(neo4j),
        per(rest),
    );
}

#[tokio::main]
async fn main() {
    let clients = arg("--clients", 50);
    let requests = arg("--requests", 2000);
    let Some(world) = World::load("explore_bench").await else {
        eprintln!("explore_bench: fixtures or services missing (see the printed reason)");
        return;
    };
    // Inputs: every artist credited on a loaded release, busiest first.
    let mut artists: Vec<(u64, usize)> = world
        .model
        .releases()
        .flat_map(|r| r.artists.iter().filter_map(|a| a.id))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|id| (id, world.model.releases_by(id).len()))
        .collect();
    artists.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    artists.truncate(500);
    let conns = arg("--neo4j-connections", 16).to_string();
    let statements = arg(
        "--autocomplete-statements",
        discogs_apps::explore::graph::AUTOCOMPLETE_STATEMENTS,
    )
    .to_string();
    let explore_statements = arg(
        "--explore-statements",
        discogs_apps::explore::graph::EXPLORE_STATEMENTS,
    )
    .to_string();
    let expand_statements = arg(
        "--expand-statements",
        discogs_apps::explore::graph::EXPAND_STATEMENTS,
    )
    .to_string();
    let pool = vec![
        "--neo4j-connections",
        conns.as_str(),
        "--autocomplete-statements",
        statements.as_str(),
        "--explore-statements",
        explore_statements.as_str(),
        "--expand-statements",
        expand_statements.as_str(),
    ];
    let mut no_memory = pool.clone();
    no_memory.extend(["--memory-cache-mb", "0"]);
    let cold = Running::start(world.args("", &no_memory)).await;
    let redis = Running::start(world.args(&world.redis_url(), &no_memory)).await;
    let both = Running::start(world.args(&world.redis_url(), &pool)).await;
    let mut names = Vec::new();
    for (id, _) in artists.iter().take(200) {
        let v = cold.ok(&format!("/api/node/{id}?type=artist")).await;
        if let Some(n) = v["name"].as_str() {
            let prefix: String = n.chars().take(4).collect();
            if prefix.trim().chars().count() >= 2 {
                names.push(
                    form_urlencoded::byte_serialize(prefix.trim().as_bytes()).collect::<String>(),
                );
            }
        }
    }
    let workloads: Vec<(&str, Vec<String>)> = vec![
        (
            "autocomplete",
            names
                .iter()
                .map(|q| format!("/api/autocomplete?type=artist&q={q}&limit=10"))
                .collect(),
        ),
        (
            "explore",
            artists
                .iter()
                .map(|(id, _)| format!("/api/explore?type=artist&id={id}"))
                .collect(),
        ),
        (
            "expand",
            artists
                .iter()
                .map(|(id, _)| {
                    format!("/api/expand?type=artist&id={id}&category=releases&limit=30")
                })
                .collect(),
        ),
    ];
    println!(
        "{} artists, {clients} clients, {requests} requests per run",
        artists.len()
    );
    println!(
        "| endpoint | mode | p50 ms | p95 ms | p99 ms | requests/s | hits memory / Redis | CPU µs/request: clients / explorer / Neo4j / rest |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    // A row for the floor: `/health` (no database, no cache), the same clients and server
    // stack.
    let health = Arc::new(vec!["/health".to_owned()]);
    run(both.health, Arc::clone(&health), clients, clients).await;
    let cpu0 = cpu_ticks();
    let m = run(both.health, health, clients, requests).await;
    row("/health", "(floor)", &m, requests, "–", cpu0, cpu_ticks());
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    let mut batches = Vec::new();
    for (name, paths) in workloads {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let paths = Arc::new(paths);
        for (mode, app) in [
            ("no cache", &cold),
            ("Redis", &redis),
            ("memory + Redis", &both),
        ] {
            // A first pass over every input: warms the databases' caches, and stores every
            // answer in the cache tiers the explorer has.
            run(app.addr, Arc::clone(&paths), clients, paths.len()).await;
            let before = app.metrics().await;
            let cpu0 = cpu_ticks();
            let m = run(app.addr, Arc::clone(&paths), clients, requests).await;
            let cpu = cpu_ticks();
            let after = app.metrics().await;
            let hits = |tier: &str| {
                let series =
                    format!("explore_cache_hits_total{{endpoint=\"{name}\",tier=\"{tier}\"}}");
                metric(&after, &series) - metric(&before, &series)
            };
            let tiers = format!("{} / {}", hits("memory"), hits("redis"));
            row(name, mode, &m, requests, &tiers, cpu0, cpu);
            let sent = |series: &str| metric(&after, series) - metric(&before, series);
            let lookups = sent(&format!("explore_{name}_lookups_total"));
            if lookups > 0 {
                let statements = sent(&format!("explore_{name}_statements_total"));
                batches.push(format!(
                    "{name} ({mode}): {lookups} lookups in {statements} statements, {:.1} per statement",
                    lookups as f64 / statements.max(1) as f64
                ));
            }
        }
    }
    for line in batches {
        println!("{line}");
    }
    cold.stop().await;
    redis.stop().await;
    both.stop().await;
    world.clean().await;
}
