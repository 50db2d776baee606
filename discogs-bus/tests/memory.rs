//! The in-process bus passes the same behavioural tests as RabbitMQ, plus its bound.

#[path = "behaviour/mod.rs"]
mod behaviour;

use std::time::Duration;

use behaviour::{DeadLettered, TestBus};
use discogs_bus::{
    Consumer, ConsumerConfig, FileRef, MemoryBus, MemoryConsumer, MemoryPublisher, Publisher,
    PublisherConfig, Resume,
};
use discogs_model::RecordKind;

const LIMIT: u32 = 3;

struct Memory(MemoryBus);

impl Memory {
    fn new() -> Self {
        Self(MemoryBus::new(256, LIMIT))
    }
}

impl TestBus for Memory {
    type P = MemoryPublisher;
    type C = MemoryConsumer;

    fn publisher(&self, config: PublisherConfig) -> MemoryPublisher {
        self.0.publisher(config).unwrap()
    }

    fn consumer(&self, config: ConsumerConfig) -> MemoryConsumer {
        self.0.consumer(config).unwrap()
    }

    async fn declare(&self, consumer: &str) {
        self.0.declare_consumer(consumer, &RecordKind::ALL);
    }

    async fn dead_letters(&self, consumer: &str, kind: RecordKind) -> Vec<DeadLettered> {
        self.0
            .dead_letters(consumer, kind)
            .into_iter()
            .map(|d| DeadLettered {
                message: (*d.message).clone(),
                reason: d.reason,
                deliveries: Some(d.deliveries),
            })
            .collect()
    }

    async fn depth(&self, consumer: &str, kind: RecordKind) -> usize {
        self.0.queue_depth(consumer, kind).unwrap_or(0)
    }

    fn delivery_limit(&self) -> u32 {
        LIMIT
    }
}

#[tokio::test]
async fn memory_round_trip_every_kind() {
    let Some(dir) = discogs_testkit::shared_fixtures() else {
        return;
    };
    let files = behaviour::fixture_files(&dir);
    behaviour::round_trip_every_kind(&Memory::new(), &files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_million_records_none_lost() {
    behaviour::million(&Memory::new()).await;
}

#[tokio::test]
async fn memory_always_failing_ends_in_dlq() {
    behaviour::always_failing_ends_in_dlq(&Memory::new()).await;
}

#[tokio::test]
async fn memory_permanent_error_dead_letters_at_once() {
    behaviour::permanent_error_dead_letters_at_once(&Memory::new()).await;
}

#[tokio::test]
async fn memory_delivery_limit_dead_letters() {
    behaviour::delivery_limit_dead_letters(&Memory::new()).await;
}

#[tokio::test]
async fn memory_unroutable_is_an_error() {
    behaviour::unroutable_is_an_error(&Memory::new()).await;
}

#[tokio::test]
async fn memory_requeue_and_drop_redeliver() {
    behaviour::requeue_and_drop_redeliver(&Memory::new()).await;
}

#[tokio::test]
async fn memory_resume_from_confirmed_progress() {
    behaviour::resume_from_confirmed_progress(&Memory::new()).await;
}

#[tokio::test]
async fn memory_shutdown_finishes_delivery_in_hand() {
    behaviour::shutdown_finishes_delivery_in_hand(&Memory::new()).await;
}

/// Queues are bounded: a publisher waits when a queue is full and goes on when a consumer
/// makes room; memory stays at `capacity` messages.
#[tokio::test]
async fn memory_publisher_waits_for_room() {
    let bus = MemoryBus::new(3, LIMIT);
    bus.declare_consumer("slow", &[RecordKind::Artist]);
    let mut publisher = bus
        .publisher(PublisherConfig {
            max_records: 1,
            ..PublisherConfig::default()
        })
        .unwrap();
    publisher
        .begin_file(
            FileRef::new(RecordKind::Artist, "v", "f"),
            Resume::default(),
        )
        .unwrap();
    // A batch is closed when the next record comes: 4 records fill 3 messages.
    for id in 1..=4 {
        publisher.publish(&behaviour::artist(id)).await.unwrap();
    }
    assert_eq!(bus.queue_depth("slow", RecordKind::Artist), Some(3));
    let blocked = tokio::time::timeout(
        Duration::from_millis(200),
        publisher.publish(&behaviour::artist(5)),
    )
    .await;
    assert!(blocked.is_err(), "publishing into a full queue must wait");
    assert_eq!(bus.queue_depth("slow", RecordKind::Artist), Some(3));
    let mut config = ConsumerConfig::new("slow");
    config.kinds = vec![RecordKind::Artist];
    let mut consumer = bus.consumer(config).unwrap();
    let d = consumer.next().await.unwrap();
    d.ack().await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        publisher.publish(&behaviour::artist(5)),
    )
    .await
    .expect("room was made")
    .unwrap();
    bus.close();
    assert!(matches!(
        consumer.next().await,
        Err(discogs_bus::BusError::Closed)
    ));
}
