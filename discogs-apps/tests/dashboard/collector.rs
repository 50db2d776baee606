//! The collector against the real services: every section filled, sources that fail shown
//! as down with their error (never as zeros) without delaying the snapshot, and the
//! figures following what a writer does. Through `/api/metrics` of a running dashboard.

use std::time::{Duration, Instant};

use discogs_apps::dashboard::collect::Collector;
use discogs_apps::dashboard::snapshot::{ServiceState, SourceState};

use crate::util::{
    closed_port, label_count, queue_figure, redis_hits, service, table_rows, type_count,
    FakeService, Playground, RunningDashboard, Services,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_sources_are_down_with_their_error_and_do_not_delay_the_snapshot() {
    let Some(services) = Services::require() else {
        return;
    };
    let scope = discogs_testkit::Scope::new("dash_failing");
    // Accepts connections (the kernel's backlog) and never answers.
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole = black_hole.local_addr().unwrap();
    let refused = closed_port().await;
    let healthy = FakeService::start("extractor").await;
    let slow = format!("slow=http://{hole}/health");
    let dead = format!("dead=http://127.0.0.1:{refused}/health");
    let management = format!("http://{hole}");
    let redis = format!("redis://127.0.0.1:{refused}/0");
    let args = services.dashboard_args(
        &scope,
        &[
            "--service",
            &healthy.target("extractor"),
            "--service",
            &slow,
            "--service",
            &dead,
            "--rabbitmq-management-url",
            &management,
            "--postgres-password",
            "not-the-password",
            "--redis-url",
            &redis,
            "--interval-ms",
            "1000",
            "--source-timeout-ms",
            "700",
        ],
    );
    let mut collector = Collector::new(args.collector_config().unwrap());

    let started = Instant::now();
    let s = collector.collect().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1200),
        "a silent source held the snapshot for {took:?} (timeout 700 ms)"
    );

    let by_name = |name: &str| s.services.iter().find(|x| x.name == name).unwrap();
    assert_eq!(by_name("extractor").status, ServiceState::Healthy);
    let slow = by_name("slow");
    assert_eq!(slow.status, ServiceState::Down);
    assert!(
        slow.error
            .as_deref()
            .unwrap()
            .contains("no answer within 700 ms"),
        "{slow:?}"
    );
    let dead = by_name("dead");
    assert_eq!(dead.status, ServiceState::Down);
    assert!(
        dead.error.as_deref().unwrap().contains("refused"),
        "{dead:?}"
    );
    assert!(dead.records.is_none() && dead.progress.is_none());

    assert_eq!(s.rabbitmq.status, SourceState::Down);
    assert!(s.rabbitmq.data.is_none(), "down is no data, not zeros");
    assert!(s.rabbitmq.error.as_deref().unwrap().contains("no answer"));
    assert_eq!(s.postgres.status, SourceState::Down);
    assert!(
        s.postgres.error.as_deref().unwrap().contains("28P01"),
        "wrong password: {:?}",
        s.postgres.error
    );
    assert!(s.postgres.data.is_none());
    assert_eq!(s.redis.status, SourceState::Down);
    assert!(s.redis.data.is_none());
    // Neo4j, the one store given good settings, answers (its first connection may take
    // longer than 700 ms on a loaded machine: the next collections pick up that reading).
    let mut neo4j = s.neo4j.clone();
    for _ in 0..10 {
        if neo4j.is_up() {
            break;
        }
        assert!(neo4j
            .error
            .as_deref()
            .unwrap()
            .contains("no answer within 700 ms"));
        neo4j = collector.collect().await.neo4j;
    }
    assert_eq!(neo4j.status, SourceState::Up, "{:?}", neo4j.error);
    assert!(neo4j.data.is_some());

    // The activity log says what is down, and why.
    let log: Vec<String> = s
        .events
        .iter()
        .map(|e| format!("{} {} {}", e.source, e.level, e.message))
        .collect();
    assert!(
        log.iter().any(|l| l.starts_with("dead error down: ")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("postgres error down: 28P01")),
        "{log:?}"
    );

    // The JSON says `down` with the error and `data: null`: a page cannot show zeros.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["redis"]["status"], "down");
    assert!(json["redis"]["data"].is_null());
    assert!(json["redis"]["error"].as_str().unwrap().contains("refused"));
    healthy.stop().await;
    drop(black_hole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_metrics_holds_every_source_and_follows_the_writes() {
    let Some(services) = Services::require() else {
        return;
    };
    let services_ = services.clone();
    Playground::run(&services, "dash_api", |play| async move {
        let services = services_;
        let extractor = FakeService::start("extractor").await;
        let args = services.dashboard_args(
            &play.scope,
            &[
                "--service",
                &extractor.target("extractor"),
                "--interval-ms",
                "1000",
                "--source-timeout-ms",
                "800",
            ],
        );
        let dashboard = RunningDashboard::start(args).await;
        play.write(5).await;
        play.dead_letter("invalid record: id is not a number").await;

        // Every section, each source up; the broker computes queue figures every 5 s.
        let deadline = Instant::now() + Duration::from_secs(20);
        let first = loop {
            let s = dashboard.api_metrics().await;
            let ready = queue_figure(&s, &play.queue, "messages") == Some(5)
                && table_rows(&s, &play.scope.schema()) == Some(5)
                && s["rabbitmq"]["data"]["dead_letters"][0]["samples"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty());
            if ready {
                break s;
            }
            assert!(Instant::now() < deadline, "figures not seen in 20 s: {s:#}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        for source in ["rabbitmq", "postgres", "neo4j", "redis"] {
            assert_eq!(
                first[source]["status"], "up",
                "{source}: {:#}",
                first[source]
            );
            assert!(first[source]["data"].is_object(), "{source}");
        }
        assert!(first["postgres"]["data"]["size_bytes"].as_u64().unwrap() > 0);
        assert!(first["postgres"]["data"]["connections"].as_u64().unwrap() >= 1);
        // The graph of the test's namespace only: its six labels (0 where none yet), the
        // relationships starting at them, totals of its own; other graphs in the database
        // (other tests, benchmarks) neither show nor count.
        assert_eq!(label_count(&first, &play.label()), Some(5));
        let ns = crate::util::namespace(&play.scope);
        let labels = first["neo4j"]["data"]["labels"].as_array().unwrap();
        let names: Vec<&str> = labels.iter().map(|l| l["name"].as_str().unwrap()).collect();
        assert_eq!(labels.len(), 6, "{names:?}");
        for base in ["Artist", "Label", "Master", "Release", "Genre", "Style"] {
            assert!(names.contains(&format!("{ns}{base}").as_str()), "{names:?}");
        }
        assert_eq!(label_count(&first, &format!("{ns}Release")), Some(0));
        assert_eq!(type_count(&first, "ON_LABEL"), Some(5));
        assert_eq!(first["neo4j"]["data"]["total_nodes"], 10);
        assert_eq!(first["neo4j"]["data"]["total_relationships"], 5);
        assert!(first["redis"]["data"]["used_memory"].as_u64().unwrap() > 0);

        // The extractor's card: state, task, progress by bytes with an ETA, records per second.
        let ex = service(&first, "extractor");
        assert_eq!(ex["status"], "healthy");
        assert_eq!(
            ex["current_task"],
            "publish discogs_20260101_releases.xml.gz"
        );
        assert!(ex["progress"]["bytes_done"].as_u64().unwrap() > 0);
        assert_eq!(ex["progress"]["bytes_total"], 1_000_000_000u64);
        assert!(ex["progress"]["percent"].as_f64().unwrap() > 0.0);
        assert!(ex["progress"]["eta_seconds"].as_u64().unwrap() > 0);
        assert!(
            ex["records_per_second"].as_f64().unwrap() > 100.0,
            "5000 records/s published: {ex:#}"
        );

        // The dead letter, with the reason its consumer gave, and still in its queue: reading
        // it for the panel put it back.
        let dlq = &first["rabbitmq"]["data"]["dead_letters"][0];
        assert_eq!(dlq["name"], play.dlq.as_str());
        assert_eq!(dlq["source"], play.queue.as_str());
        let sample = &dlq["samples"][0];
        assert_eq!(sample["reason"], "invalid record: id is not a number");
        assert_eq!(sample["file"], "discogs_20260101_artists.xml.gz");
        assert_eq!(sample["seq"], 7);
        assert_eq!(queue_figure(&first, &play.queue, "dead_letters"), Some(1));

        // More writes: every figure follows.
        let hits = redis_hits(&first).unwrap();
        play.write(7).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        let later = loop {
            let s = dashboard.api_metrics().await;
            // Each store is read in its own task: one may show the new figures a
            // collection before another.
            if queue_figure(&s, &play.queue, "messages") == Some(12)
                && table_rows(&s, &play.scope.schema()) == Some(12)
                && label_count(&s, &play.label()) == Some(12)
            {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "new figures not seen in 20 s: {s:#}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(label_count(&later, &play.label()), Some(12));
        assert_eq!(type_count(&later, "ON_LABEL"), Some(12));
        assert_eq!(later["neo4j"]["data"]["total_nodes"], 24);
        assert!(redis_hits(&later).unwrap() >= hits + 7);
        let dlq = &later["rabbitmq"]["data"]["dead_letters"][0];
        assert_eq!(dlq["messages"], 1, "peeking lost nothing: {dlq:#}");
        assert!(later["seq"].as_u64() > first["seq"].as_u64());

        // The charts' history: one point per collection, the queue's depth in the last.
        let history = dashboard.get_json("/api/history").await;
        let points = history["points"].as_array().unwrap();
        assert!(points.len() >= 2, "{history:#}");
        assert!(points
            .windows(2)
            .all(|w| w[0]["t"].as_u64() < w[1]["t"].as_u64()));
        let last = &points.last().unwrap()["queues"][play.queue.as_str()];
        assert!(last["messages"].as_u64() >= Some(12), "{last:#}");
        assert!(points.last().unwrap()["services"]["extractor"].as_f64() > Some(0.0));
        // The original's routes: parts of the same snapshot.
        let parts = [
            ("/api/services", "services"),
            ("/api/queues", "rabbitmq"),
            ("/api/databases", "postgres"),
            ("/api/databases", "neo4j"),
            ("/api/databases", "redis"),
        ];
        for (route, key) in parts {
            let part = dashboard.get_json(route).await;
            assert!(part["timestamp"].is_string(), "{route}");
            assert!(!part[key].is_null(), "{route} {key}: {part:#}");
        }

        dashboard.stop().await;
        extractor.stop().await;
    })
    .await;
}
