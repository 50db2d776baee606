//! Latency and throughput of the explore API under 50 concurrent clients.
//!
//! Loads the fixture excerpts (the same as the explore tests: `/work/shared/fixtures` or
//! `DISCOGS_FIXTURES`) through the real sinks into a Neo4j namespace and a PostgreSQL schema
//! of its own, serves two explorers in this process — one without cache (every answer from
//! the databases: "cold"), one with the Redis cache warmed first ("cached") — and sends
//! each of autocomplete, explore and expand from `--clients` concurrent clients, each with
//! its own keep-alive connection. Prints p50/p95/p99 and requests per second; removes
//! what it loaded at the end.
//!
//! ```text
//! eval "$(scripts/services env)"
//! cargo run --release -p discogs-apps --example explore_bench -- --clients 50 --requests 2000
//! ```

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/explore/world.rs"]
mod world;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use discogs_apps::dashboard::http::HttpClient;
use world::{Running, World};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sends `requests` GETs of `paths` (round robin) from `clients` tasks; returns the sorted
/// latencies and the wall time.
async fn run(
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
    let cold = Running::start(world.args("", &[])).await;
    let cached = Running::start(world.args(&world.redis_url(), &[])).await;
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
    println!("| endpoint | mode | p50 ms | p95 ms | p99 ms | requests/s |");
    println!("|---|---|---|---|---|---|");
    for (name, paths) in workloads {
        let paths = Arc::new(paths);
        // Cold: no cache, every answer from the databases (their own caches warm after the
        // first pass, as in production).
        run(cold.addr, Arc::clone(&paths), clients, paths.len()).await;
        let (lat, wall) = run(cold.addr, Arc::clone(&paths), clients, requests).await;
        println!(
            "| {name} | no cache | {:.1} | {:.1} | {:.1} | {:.0} |",
            pct(&lat, 500),
            pct(&lat, 950),
            pct(&lat, 990),
            requests as f64 / wall.as_secs_f64()
        );
        // Cached: warm every key, then measure.
        run(cached.addr, Arc::clone(&paths), clients, paths.len()).await;
        let (lat, wall) = run(cached.addr, Arc::clone(&paths), clients, requests).await;
        println!(
            "| {name} | Redis cache | {:.1} | {:.1} | {:.1} | {:.0} |",
            pct(&lat, 500),
            pct(&lat, 950),
            pct(&lat, 990),
            requests as f64 / wall.as_secs_f64()
        );
    }
    cold.stop().await;
    cached.stop().await;
    world.clean().await;
}
