//! Against the real RabbitMQ (`scripts/services up`): the behavioural suite, the topology
//! as the management API lists it, and what only a broker does.
//!
//! Each test declares its own exchanges and queues under a unique prefix
//! (`discogs_testkit::Scope`) and deletes them at the end, even when it fails.

#[path = "../behaviour/mod.rs"]
mod behaviour;
#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use behaviour::TestBus;
use common::{management_get, with_amqp};
use discogs_bus::{
    process, Admin, AmqpConsumer, BusError, Compression, Consumer, ConsumerConfig, ConsumerState,
    FileRef, Publisher, PublisherConfig, Resume, RetryPolicy, Settled, Topology,
};
use discogs_model::RecordKind;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::json;

#[tokio::test]
async fn amqp_round_trip_every_kind() {
    let Some(dir) = discogs_testkit::shared_fixtures() else {
        return;
    };
    let files = behaviour::fixture_files(&dir);
    with_amqp("roundtrip", 20, |bus| async move {
        behaviour::round_trip_every_kind(bus, &files).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_million_records_none_lost() {
    with_amqp("million", 20, behaviour::million).await;
}

#[tokio::test]
async fn amqp_always_failing_ends_in_dlq() {
    with_amqp("alwaysfails", 3, |bus| {
        behaviour::always_failing_ends_in_dlq(bus)
    })
    .await;
}

#[tokio::test]
async fn amqp_permanent_error_dead_letters_at_once() {
    with_amqp("permanent", 3, |bus| {
        behaviour::permanent_error_dead_letters_at_once(bus)
    })
    .await;
}

#[tokio::test]
async fn amqp_delivery_limit_dead_letters() {
    with_amqp("limit", 2, |bus| {
        behaviour::delivery_limit_dead_letters(bus)
    })
    .await;
}

#[tokio::test]
async fn amqp_unroutable_is_an_error() {
    with_amqp("unroutable", 20, |bus| {
        behaviour::unroutable_is_an_error(bus)
    })
    .await;
}

#[tokio::test]
async fn amqp_requeue_and_drop_redeliver() {
    with_amqp("redeliver", 20, |bus| {
        behaviour::requeue_and_drop_redeliver(bus)
    })
    .await;
}

#[tokio::test]
async fn amqp_resume_from_confirmed_progress() {
    with_amqp("resume", 20, |bus| {
        behaviour::resume_from_confirmed_progress(bus)
    })
    .await;
}

#[tokio::test]
async fn amqp_shutdown_finishes_delivery_in_hand() {
    with_amqp("shutdown", 20, |bus| {
        behaviour::shutdown_finishes_delivery_in_hand(bus)
    })
    .await;
}

/// The management API lists the topology with the expected names, types and arguments.
#[tokio::test]
async fn amqp_management_api_lists_topology() {
    with_amqp("management", 7, |bus| async move {
        bus.declare("graphinator").await;
        let t = &bus.topology;
        for kind in RecordKind::ALL {
            let exchange = t.exchange(kind);
            let queue = t.queue("graphinator", kind);
            let dlx = t.dead_letter_exchange("graphinator", kind);
            let dlq = t.dead_letter_queue("graphinator", kind);
            assert_eq!(exchange, format!("{}-{}", t.prefix, kind.plural()));
            assert_eq!(queue, format!("{}-graphinator-{}", t.prefix, kind.plural()));
            assert_eq!(dlx, format!("{queue}.dlx"));
            assert_eq!(dlq, format!("{queue}.dlq"));

            for name in [&exchange, &dlx] {
                let e = management_get(&bus.config, &format!("/api/exchanges/%2F/{name}"));
                assert_eq!(e["type"], "fanout", "{name}");
                assert_eq!(e["durable"], true, "{name}");
                assert_eq!(e["auto_delete"], false, "{name}");
            }
            let q = management_get(&bus.config, &format!("/api/queues/%2F/{queue}"));
            assert_eq!(q["type"], "quorum");
            assert_eq!(q["durable"], true);
            assert_eq!(q["auto_delete"], false);
            assert_eq!(
                q["arguments"],
                json!({
                    "x-queue-type": "quorum",
                    "x-delivery-limit": 7,
                    "x-dead-letter-exchange": dlx,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                })
            );
            let d = management_get(&bus.config, &format!("/api/queues/%2F/{dlq}"));
            assert_eq!(d["type"], "quorum");
            assert_eq!(d["durable"], true);

            let bindings = management_get(
                &bus.config,
                &format!("/api/exchanges/%2F/{exchange}/bindings/source"),
            );
            let to: Vec<&str> = bindings
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["destination"].as_str().unwrap())
                .collect();
            assert_eq!(to, vec![queue.as_str()]);
            let bindings = management_get(
                &bus.config,
                &format!("/api/exchanges/%2F/{dlx}/bindings/source"),
            );
            assert_eq!(bindings[0]["destination"], dlq);
        }
        // Declaring again (a second service starting) changes nothing.
        bus.declare("graphinator").await;
        // The whole scope as the queue list shows it: 4 queues + 4 dead-letter queues.
        let all = management_get(&bus.config, "/api/queues/%2F");
        let mine = all
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["name"].as_str().unwrap().starts_with(&t.prefix))
            .count();
        assert_eq!(mine, 8);
    })
    .await;
}

/// A queue that exists with other arguments is a permanent error naming the queue.
#[tokio::test]
async fn amqp_topology_conflict_is_permanent() {
    with_amqp("conflict", 5, |bus| async move {
        bus.declare("tableinator").await;
        let other = Topology {
            delivery_limit: 6,
            ..bus.topology.clone()
        };
        let admin = Admin::connect(bus.url(), other).await.unwrap();
        let err = admin
            .declare_consumer("tableinator", &[RecordKind::Artist])
            .await
            .unwrap_err();
        assert!(matches!(err, BusError::Topology { .. }), "{err:?}");
        assert!(!err.is_retriable());
        assert!(err.to_string().contains("tableinator-artists"), "{err}");
        admin.close().await.unwrap_or(());
    })
    .await;
}

/// A publisher declares the queues of the consumers it is told about before its first
/// message, so records published before those consumers ever started are kept for them.
#[tokio::test]
async fn amqp_publisher_declares_consumer_queues() {
    with_amqp("declares", 20, |bus| async move {
        let mut publisher = bus.publisher(PublisherConfig {
            consumers: vec!["graphinator".into(), "tableinator".into()],
            ..PublisherConfig::default()
        });
        let done = behaviour::publish_artists(
            &mut publisher,
            FileRef::new(RecordKind::Artist, "20260101", "a.xml.gz"),
            1..=250,
            Resume::default(),
        )
        .await;
        assert_eq!(done.batches, 3);
        for c in ["graphinator", "tableinator"] {
            // 3 batches + file_complete, each consumer its own copy (fanout).
            assert_eq!(bus.depth(c, RecordKind::Artist).await, 4, "{c}");
            assert_eq!(bus.depth(c, RecordKind::Release).await, 0, "{c}");
        }
        publisher.close().await.unwrap();
    })
    .await;
}

/// A body that is not a message of this schema is dead-lettered with the decoding error.
#[tokio::test]
async fn amqp_undecodable_message_is_dead_lettered() {
    with_amqp("undecodable", 20, |bus| async move {
        let body = br#"{"type":"batch","schema":99}"#;
        let copy = undecodable_is_dead_lettered(
            bus,
            RecordKind::Master,
            body,
            lapin::BasicProperties::default(),
            "schema 99 is newer",
        )
        .await;
        assert_eq!(copy.data, body);
    })
    .await;
}

/// Publishes `body` with `properties` to the exchange of `kind`, as another client
/// could: the consumer cannot decode it, `process` dead-letters it without calling the
/// handler, with a reason containing `why`. Returns the copy in the dead-letter queue.
async fn undecodable_is_dead_lettered(
    bus: &common::Amqp,
    kind: RecordKind,
    body: &[u8],
    properties: lapin::BasicProperties,
    why: &str,
) -> lapin::message::Delivery {
    bus.declare("reader").await;
    let conn = lapin::Connection::connect(bus.url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let exchange = bus.topology.exchange(kind);
    channel
        .basic_publish(
            exchange.as_str().into(),
            "".into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .unwrap();
    let mut consumer = bus.consumer(ConsumerConfig::new("reader"));
    let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.kind(), kind);
    let err = d.message().unwrap_err();
    assert!(!err.is_retriable());
    let mut handler = behaviour::Failing {
        retriable: true,
        calls: 0,
    };
    let settled = process(d, &mut handler, &RetryPolicy::default())
        .await
        .unwrap();
    let Settled::DeadLettered { reason } = settled else {
        panic!("{settled:?}")
    };
    assert!(reason.contains(why), "{reason}");
    assert_eq!(
        handler.calls, 0,
        "the handler never sees an undecodable message"
    );
    // The dead-letter queue holds the body as it came, with the reason.
    let dlq = bus.topology.dead_letter_queue("reader", kind);
    let mut copy = None;
    for _ in 0..40 {
        copy = channel
            .basic_get(dlq.as_str().into(), Default::default())
            .await
            .unwrap();
        if copy.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let copy = copy.expect("a copy in the dead-letter queue").delivery;
    let reason = discogs_bus::dead_letter_reason(copy.properties.headers().as_ref()).unwrap();
    assert!(reason.contains(why), "{reason}");
    consumer.close().await.unwrap();
    conn.close(200, "done".into()).await.unwrap();
    copy
}

/// Batches travel LZ4-compressed by default and plain when a publisher says so; one
/// consumer reads both, and the records are the same.
#[tokio::test]
async fn amqp_lz4_and_plain_batches_read_the_same() {
    with_amqp("lz4", 20, |bus| async move {
        bus.declare("reader").await;
        let records: Vec<_> = (1..=50).map(behaviour::artist).collect();
        for (n, compression) in [Compression::Lz4, Compression::None]
            .into_iter()
            .enumerate()
        {
            let mut publisher = bus.publisher(PublisherConfig {
                compression,
                ..PublisherConfig::default()
            });
            let file = FileRef::new(RecordKind::Artist, "20260101", format!("file{n}.xml.gz"));
            publisher.begin_file(file, Resume::default()).unwrap();
            for r in &records {
                publisher.publish(r).await.unwrap();
            }
            publisher.end_file().await.unwrap();
            publisher.close().await.unwrap();
        }
        let mut consumer = bus.consumer(ConsumerConfig::new("reader"));
        let mut seen = Vec::new();
        while seen.len() < 4 {
            let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
                .await
                .unwrap()
                .unwrap();
            let body = d.body().unwrap().to_vec();
            let message = behaviour::owned(&d);
            if let discogs_model::wire::Message::Batch(b) = &message {
                assert_eq!(b.records, records, "the records of {}", b.file);
                let json = message.to_json().unwrap();
                assert_eq!(d.json().unwrap(), json, "the JSON of {} either way", b.file);
                if b.file == "file0.xml.gz" {
                    // The LZ4 block format after the JSON's length (little-endian u32).
                    assert!(
                        body.len() < json.len(),
                        "LZ4 body of {} bytes for {} bytes of JSON",
                        body.len(),
                        json.len()
                    );
                    let length = u32::try_from(json.len()).unwrap().to_le_bytes();
                    assert_eq!(body[..4], length);
                } else {
                    assert_eq!(body, json, "a plain body is the JSON itself");
                }
                seen.push(b.file.to_string());
            } else {
                seen.push(message.message_type().to_string());
            }
            d.ack().await.unwrap();
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "file0.xml.gz",
                "file1.xml.gz",
                "file_complete",
                "file_complete"
            ]
        );
        consumer.close().await.unwrap();
    })
    .await;
}

/// A body that claims to be LZ4 and does not decompress is dead-lettered with the reason,
/// the copy as it came (body and `content_encoding`).
#[tokio::test]
async fn amqp_corrupt_lz4_body_is_dead_lettered() {
    with_amqp("badlz4", 20, |bus| async move {
        // Claims 1,000 bytes of JSON, then a literal run that overruns the input.
        let corrupt = b"\xe8\x03\x00\x00\xf0\xff\xffnot lz4";
        let copy = undecodable_is_dead_lettered(
            bus,
            RecordKind::Label,
            corrupt,
            lapin::BasicProperties::default()
                .with_content_encoding(Compression::LZ4_ENCODING.into()),
            "does not decompress",
        )
        .await;
        assert_eq!(copy.data, corrupt);
        assert_eq!(
            copy.properties
                .content_encoding()
                .as_ref()
                .map(|e| e.as_str()),
            Some(Compression::LZ4_ENCODING)
        );
    })
    .await;
}

/// `CONSUMER_CANCEL_DELAY`: a consumer idle for that long unsubscribes and disconnects,
/// then subscribes again when messages arrive.
#[tokio::test]
async fn amqp_idle_consumer_disconnects_and_resumes() {
    with_amqp("idle", 20, |bus| async move {
        let mut config = ConsumerConfig::new("idler");
        config.kinds = vec![RecordKind::Label];
        config.idle_after = Some(Duration::from_millis(800));
        config.idle_check_interval = Duration::from_millis(300);
        let mut consumer: AmqpConsumer = bus.consumer(config);
        assert_eq!(consumer.state(), ConsumerState::Starting);
        // Nothing to consume: next() waits; it is cancel-safe, so a timeout loses nothing.
        let waited = tokio::time::timeout(Duration::from_millis(2000), consumer.next()).await;
        assert!(waited.is_err());
        assert_eq!(consumer.state(), ConsumerState::Idle);
        let admin = bus.admin().await;
        let queue = bus.topology.queue("idler", RecordKind::Label);
        let stats = admin.queue_stats(&queue).await.unwrap().unwrap();
        assert_eq!(stats.consumers, 0, "an idle consumer holds no subscription");

        let mut publisher = bus.publisher(PublisherConfig::default());
        publisher
            .begin_file(
                FileRef::new(RecordKind::Label, "v", "l.xml"),
                Resume::default(),
            )
            .unwrap();
        publisher
            .publish(&discogs_model::SinkRecord::new(
                discogs_model::Record::from(discogs_model::Label {
                    id: 9,
                    name: "Tresor".into(),
                    ..Default::default()
                }),
            ))
            .await
            .unwrap();
        publisher.end_file().await.unwrap();
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("the idle consumer came back")
            .unwrap();
        assert_eq!(behaviour::records(&d).len(), 1);
        assert_eq!(consumer.state(), ConsumerState::Consuming);
        let stats = admin.queue_stats(&queue).await.unwrap().unwrap();
        assert_eq!(stats.consumers, 1);
        d.ack().await.unwrap();
        admin.close().await.unwrap();
        consumer.close().await.unwrap();
    })
    .await;
}

/// The broker rejects a publish to a queue declared elsewhere with a length limit and
/// `reject-publish`: the nack is an error the caller sees, and the batch is sent again
/// once there is room.
#[tokio::test]
async fn amqp_nack_is_an_error_and_the_batch_is_kept() {
    with_amqp("nack", 20, |bus| async move {
        // A queue bound to the exchange that refuses messages beyond one.
        bus.remember("full");
        let admin = bus.admin().await;
        admin
            .declare_exchanges(&[RecordKind::Artist])
            .await
            .unwrap();
        let conn = lapin::Connection::connect(bus.url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        let queue = bus.topology.queue("full", RecordKind::Artist);
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString("reject-publish".into()),
        );
        channel
            .queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), args)
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                bus.topology.exchange(RecordKind::Artist).into(),
                "".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut publisher = bus.publisher(PublisherConfig {
            max_records: 1,
            ..PublisherConfig::default()
        });
        publisher
            .begin_file(
                FileRef::new(RecordKind::Artist, "v", "a.xml"),
                Resume::default(),
            )
            .unwrap();
        publisher.publish(&behaviour::artist(1)).await.unwrap();
        publisher.publish(&behaviour::artist(2)).await.unwrap();
        let err = publisher.flush().await.unwrap_err();
        assert!(matches!(err, BusError::Nacked { .. }), "{err:?}");
        assert!(err.is_retriable());
        assert_eq!(publisher.progress().unwrap().confirmed_batches, 1);
        // Make room: the kept batch goes through on the next call.
        channel
            .queue_purge(queue.as_str().into(), Default::default())
            .await
            .unwrap();
        publisher.flush().await.unwrap();
        assert_eq!(publisher.progress().unwrap().confirmed_batches, 2);
        conn.close(200, "done".into()).await.unwrap();
        admin.close().await.unwrap();
    })
    .await;
}
