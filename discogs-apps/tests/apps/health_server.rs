//! The shared health server over real HTTP: /health codes and body, /metrics text, shutdown.

use discogs_apps::health::{self, Status};
use discogs_apps::metrics::Metrics;
use discogs_apps::shutdown::Shutdown;

use crate::util::request;

#[tokio::test]
async fn health_and_metrics_over_http() {
    let status = Status::new("test-service");
    let metrics = Metrics::new("test_service");
    metrics
        .counter("records_total", "Records.", &[("kind", "releases")])
        .add(42);
    status.set_details(|| {
        let mut m = serde_json::Map::new();
        m.insert(
            "current_file".into(),
            "discogs_20260101_releases.xml.gz".into(),
        );
        m
    });
    let shutdown = Shutdown::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(health::serve_on(
        listener,
        health::router(status.clone(), metrics.clone()),
        shutdown.clone(),
    ));

    status.set_state("running");
    let reply = request(addr, "GET", "/health", "").await;
    assert_eq!(reply.status, 200);
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["service"], "test-service");
    assert_eq!(body["state"], "running");
    assert_eq!(body["current_file"], "discogs_20260101_releases.xml.gz");

    status.set_unhealthy("failed", "no broker");
    let reply = request(addr, "GET", "/health", "").await;
    assert_eq!(reply.status, 503, "unhealthy must not answer 200");
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["reason"], "no broker");

    let reply = request(addr, "GET", "/metrics", "").await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .body
        .contains("# TYPE test_service_records_total counter"));
    assert!(reply
        .body
        .contains("test_service_records_total{kind=\"releases\"} 42"));

    assert_eq!(request(addr, "GET", "/nope", "").await.status, 404);

    shutdown.trigger();
    tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("server stops on shutdown")
        .unwrap()
        .unwrap();
}
