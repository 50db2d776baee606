//! The broker restarts (`rabbitmqctl stop_app` / `start_app`) in the middle of publishing
//! and in the middle of consuming: every record arrives at least once, and the only
//! repeats are whole batches re-sent or redelivered, recognisable by their id.
//!
//! A test binary of its own, its tests one at a time, so that stopping the broker never
//! hits the other tests of this crate. The broker is started again even when a test
//! fails (a guard does it on drop) and is down for about two seconds.

#[path = "behaviour/mod.rs"]
mod behaviour;
#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use behaviour::{artist, Tally, TestBus};
use common::{with_amqp, with_amqp_within, Broker};
use discogs_bus::{
    BusError, Consumer, ConsumerConfig, FileRef, Publisher, PublisherConfig, Resume,
};
use discogs_model::RecordKind;
use discogs_testkit::{require, Service};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the broker stays stopped.
const OUTAGE: Duration = Duration::from_secs(2);

async fn restart(broker: &Broker) {
    let b = broker.clone();
    let stopped = tokio::task::spawn_blocking(move || b.stop_app())
        .await
        .unwrap();
    tokio::time::sleep(OUTAGE).await;
    tokio::task::spawn_blocking(move || stopped.start())
        .await
        .unwrap();
}

fn broker() -> Option<Broker> {
    // The bus's reconnection events, in the test's output.
    tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .try_init()
        .unwrap_or(());
    let config = require(Service::RabbitMq)?;
    Broker::control(&config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_broker_restart_mid_publish() {
    let Some(broker) = broker() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    // Its own limit: publishing may take up to 300 s after the restart (checked below).
    with_amqp_within(Duration::from_secs(480), "restartpub", 20, |bus| async move {
        // Small records publish fast; enough of them that the restart (rabbitmqctl takes a
        // second or two to act) falls well before the end.
        const N: u64 = 2_000_000;
        let name = "survivor";
        bus.declare(name).await;
        let confirmed = Arc::new(AtomicU64::new(0));
        let seen = confirmed.clone();
        let mut publisher = bus.publisher(PublisherConfig::default());
        let publishing = tokio::spawn(async move {
            let file = FileRef::new(RecordKind::Artist, "20260101", "restart_pub.xml.gz");
            publisher.begin_file(file, Resume::default()).unwrap();
            for id in 1..=N {
                publisher.publish(&artist(id)).await.unwrap();
                let progress = publisher.progress().unwrap();
                seen.store(progress.confirmed_batches, Ordering::Relaxed);
            }
            let done = publisher.end_file().await.unwrap();
            (done, publisher.reconnects())
        });
        let start = Instant::now();
        while confirmed.load(Ordering::Relaxed) < 200 {
            assert!(start.elapsed() < Duration::from_secs(120), "publishing did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        restart(&broker).await;
        let at_restart = confirmed.load(Ordering::Relaxed);
        assert!(
            !publishing.is_finished() && at_restart < N / 100,
            "the restart must fall in the middle of publishing ({at_restart} batches confirmed)"
        );
        let (done, reconnects) = tokio::time::timeout(Duration::from_secs(300), publishing)
            .await
            .expect("publishing finished after the restart")
            .unwrap();
        assert_eq!(done.records, N);
        assert!(reconnects >= 1, "the publisher reconnected");

        let mut consumer = bus.consumer(ConsumerConfig::new(name));
        let mut tally = Tally::new(N);
        while tally.complete.is_none() || tally.unique < N {
            let d = tokio::time::timeout(Duration::from_secs(60), consumer.next())
                .await
                .expect("a delivery")
                .unwrap();
            tally.add(&d.decode().unwrap());
            d.ack().await.unwrap();
        }
        assert_eq!(tally.missing(), Vec::<usize>::new(), "records lost");
        assert_eq!(tally.batches.len() as u64, done.batches);
        eprintln!(
            "restart mid-publish: {at_restart} batches confirmed at the restart, {reconnects} reconnection(s), \
             {} batches re-sent and received twice",
            tally.duplicate_batches
        );
        consumer.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_broker_restart_mid_consume() {
    let Some(broker) = broker() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    with_amqp("restartcons", 20, |bus| async move {
        const N: u64 = 300_000;
        let name = "survivor";
        bus.declare(name).await;
        let mut publisher = bus.publisher(PublisherConfig::default());
        let file = FileRef::new(RecordKind::Artist, "20260101", "restart_cons.xml.gz");
        let done = behaviour::publish_artists(&mut publisher, file, 1..=N, Resume::default()).await;

        let mut consumer = bus.consumer(ConsumerConfig::new(name));
        let mut tally = Tally::new(N);
        let mut stale = 0;
        let mut restarting = None;
        while tally.complete.is_none() || tally.unique < N {
            let d = tokio::time::timeout(Duration::from_secs(60), consumer.next())
                .await
                .expect("a delivery")
                .unwrap();
            tally.add(&d.decode().unwrap());
            // A consumer that writes to a database: about a millisecond per batch.
            tokio::time::sleep(Duration::from_millis(1)).await;
            match d.ack().await {
                Ok(()) => {}
                Err(e @ BusError::StaleDelivery { .. }) => {
                    assert!(e.is_retriable());
                    eprintln!("ack refused: {e}");
                    stale += 1;
                }
                Err(e) => panic!("{e}"),
            }
            if tally.deliveries == 300 {
                let broker = broker.clone();
                restarting = Some(tokio::spawn(async move { restart(&broker).await }));
            }
        }
        let restarting = restarting.expect("the restart was triggered");
        assert!(
            restarting.is_finished(),
            "every record arrived only after the broker came back"
        );
        restarting.await.unwrap();
        // Batches whose ack was lost with the connection come again: take them too.
        while let Ok(d) = tokio::time::timeout(Duration::from_secs(3), consumer.next()).await {
            let d = d.unwrap();
            tally.add(&d.decode().unwrap());
            d.ack().await.unwrap();
        }
        assert_eq!(tally.missing(), Vec::<usize>::new(), "records lost");
        assert!(consumer.reconnects() >= 1, "the consumer reconnected");
        eprintln!(
            "restart mid-consume: {} deliveries for {} batches, {stale} acks refused on the old connection, \
             {} batches delivered again",
            tally.deliveries,
            done.batches,
            tally.duplicate_batches
        );
        consumer.close().await.unwrap();
        // Everything acknowledged at last: nothing left behind.
        let deadline = Instant::now() + Duration::from_secs(10);
        while bus.depth(name, RecordKind::Artist).await > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(bus.depth(name, RecordKind::Artist).await, 0);
    })
    .await;
}
