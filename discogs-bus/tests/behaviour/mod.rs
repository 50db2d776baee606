//! Behaviour every bus must show, written once over [`TestBus`] and run against RabbitMQ
//! (`tests/amqp`) and the in-process bus (`tests/memory.rs`).

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, SystemTime};

use discogs_bus::{
    process, Backoff, BusError, Consumer, ConsumerConfig, Delivery, FileRef, Handler, Publisher,
    PublisherConfig, Resume, RetryPolicy, Settled,
};
use discogs_model::wire::{
    BatchId, EncodedRecord, ExtractionComplete, FileComplete, Message, RecordCounts,
};
use discogs_model::{Artist, Record, RecordKind, SinkError, SinkRecord};

/// What a behaviour test needs from a bus.
#[allow(async_fn_in_trait)]
pub trait TestBus {
    /// The publisher type.
    type P: Publisher;
    /// The consumer type.
    type C: Consumer;
    /// A publisher.
    fn publisher(&self, config: PublisherConfig) -> Self::P;
    /// A consumer (not yet receiving).
    fn consumer(&self, config: ConsumerConfig) -> Self::C;
    /// Declares a consumer's queues for all kinds, so that publishing reaches them.
    async fn declare(&self, consumer: &str);
    /// Takes everything out of a consumer's dead-letter queue: (message, reason,
    /// deliveries when known).
    async fn dead_letters(&self, consumer: &str, kind: RecordKind) -> Vec<DeadLettered>;
    /// Ready messages in a consumer's queue.
    async fn depth(&self, consumer: &str, kind: RecordKind) -> usize;
    /// The queues' delivery limit.
    fn delivery_limit(&self) -> u32;
}

/// One message found in a dead-letter queue.
#[derive(Debug)]
pub struct DeadLettered {
    pub message: Message<'static>,
    pub reason: String,
    pub deliveries: Option<u32>,
}

const VERSION: &str = "20260101";

/// The delivery's message, detached from it. Decoded with the borrowing decoder, which
/// the tests so cover as much as `Delivery::message`.
pub fn owned(d: &Delivery) -> Message<'static> {
    let decoded = d.decode().unwrap().into_owned().into_owned();
    assert_eq!(&decoded, d.message().unwrap(), "both decoders agree");
    decoded
}

/// The batch number, when the delivery is a batch.
pub fn batch_seq(d: &Delivery) -> Option<u64> {
    d.batch().map(|b| b.seq)
}

/// The records of a batch (none for a control message).
pub fn records(d: &Delivery) -> Vec<SinkRecord<'static>> {
    d.records().to_vec()
}

pub fn artist(id: u64) -> SinkRecord<'static> {
    SinkRecord::new(Record::from(Artist {
        id,
        name: format!("Artist {id}").into(),
        ..Default::default()
    }))
}

fn file_of(kind: RecordKind, tag: &str) -> FileRef {
    FileRef::new(
        kind,
        VERSION,
        format!("discogs_{VERSION}_{}{tag}.xml.gz", kind.plural()),
    )
}

async fn next(consumer: &mut impl Consumer) -> Delivery {
    match tokio::time::timeout(Duration::from_secs(60), consumer.next()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => panic!("consumer failed: {e}"),
        Err(_) => panic!("no delivery within 60 s"),
    }
}

/// Reads real records of every kind from the shared fixtures.
pub fn fixture_files(dir: &Path) -> Vec<(FileRef, Vec<SinkRecord<'static>>)> {
    let picks = [
        "philipmat__discogs-xml2db/discogs_20200806_artists.xml.gz",
        "philipmat__discogs-xml2db/discogs_20200806_labels.xml.gz",
        "nicolascalo__discogs_lakehouse_graph_data_platform/derived_discogs_20260101_masters_sample_300000.wellformed.xml.gz",
        "nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz",
    ];
    picks
        .iter()
        .map(|p| {
            let path = dir.join(p);
            let reader = discogs_parse::DumpReader::open(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let kind = reader.kind();
            let records: Vec<SinkRecord<'static>> = reader
                .map(|r| {
                    let r = r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    SinkRecord {
                        record: r.record,
                        hash: r.hash,
                    }
                })
                .collect();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (FileRef::new(kind, VERSION, name), records)
        })
        .collect()
}

/// Every kind, real records: published file by file (every other record through
/// [`Publisher::publish_encoded`]), consumed with exact counts, in
/// order, equal records and hashes, contiguous batch numbers, `file_complete` after the
/// file's batches, `extraction_complete` on every kind.
pub async fn round_trip_every_kind(
    bus: &impl TestBus,
    files: &[(FileRef, Vec<SinkRecord<'static>>)],
) {
    let name = "roundtrip";
    bus.declare(name).await;
    let mut publisher = bus.publisher(PublisherConfig::default());
    let mut counts = RecordCounts::default();
    let mut expected_complete = Vec::new();
    for (file, records) in files {
        publisher
            .begin_file(file.clone(), Resume::default())
            .unwrap();
        for (i, r) in records.iter().enumerate() {
            if i % 2 == 0 {
                publisher.publish(r).await.unwrap();
            } else {
                // Every other record encoded beforehand, as the extractor's workers do.
                let encoded = EncodedRecord::new(r).unwrap();
                publisher.publish_encoded(&encoded).await.unwrap();
            }
        }
        let done = publisher.end_file().await.unwrap();
        assert_eq!(done.records, records.len() as u64, "{}", file.file);
        assert_eq!(
            done.batches,
            (records.len() as u64).div_ceil(100),
            "{}",
            file.file
        );
        *counts.get_mut(file.kind) += records.len() as u64;
        expected_complete.push(done);
    }
    let started_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_409_506);
    let extraction = ExtractionComplete {
        version: VERSION.into(),
        started_at,
        record_counts: counts,
    };
    publisher.extraction_complete(&extraction).await.unwrap();

    let mut consumer = bus.consumer(ConsumerConfig::new(name));
    let mut batches: BTreeMap<RecordKind, BTreeMap<u64, Vec<SinkRecord<'static>>>> =
        BTreeMap::new();
    let mut completes: Vec<FileComplete<'static>> = Vec::new();
    let mut extractions = 0;
    while extractions < 4 {
        let d = next(&mut consumer).await;
        let message = owned(&d);
        // What a consumer knows without decoding: the headers, and the JSON itself.
        assert_eq!(d.declared_type(), Some(message.message_type()));
        let declared = match &message {
            Message::Batch(b) => b.records.len() as u64,
            Message::Removed(r) => r.ids.len() as u64,
            Message::FileComplete(f) => f.records,
            Message::ExtractionComplete(e) => e.record_counts.total(),
        };
        assert_eq!(d.declared_records(), Some(declared), "{message:?}");
        assert_eq!(
            Message::from_json(d.json().unwrap()).unwrap().into_owned(),
            message
        );
        match message {
            Message::Batch(b) => {
                assert_eq!(b.kind, d.kind());
                assert!(
                    !completes.iter().any(|c| c.kind == b.kind),
                    "a batch of {} came after its file_complete",
                    b.kind
                );
                let previous = batches.entry(b.kind).or_default().insert(b.seq, b.records);
                assert!(
                    previous.is_none(),
                    "batch {} of {} twice without a fault",
                    b.seq,
                    b.kind
                );
            }
            Message::FileComplete(f) => completes.push(f),
            Message::Removed(_) => {}
            Message::ExtractionComplete(e) => {
                assert_eq!(e, extraction);
                extractions += 1;
            }
        }
        d.ack().await.unwrap();
    }
    completes.sort_by_key(|c| c.kind);
    expected_complete.sort_by_key(|c| c.kind);
    assert_eq!(completes, expected_complete);
    for (file, records) in files {
        let got = &batches[&file.kind];
        let seqs: Vec<u64> = got.keys().copied().collect();
        assert_eq!(
            seqs,
            (0..got.len() as u64).collect::<Vec<_>>(),
            "{}",
            file.file
        );
        let all: Vec<&SinkRecord<'static>> = got.values().flatten().collect();
        assert_eq!(all.len(), records.len(), "{}", file.file);
        for (a, b) in all.iter().zip(records) {
            assert_eq!(*a, b, "{}", file.file);
            assert_eq!(
                a.hash,
                a.record.hash(),
                "{}: hash changed on the way",
                file.file
            );
        }
    }
    for kind in RecordKind::ALL {
        assert_eq!(bus.depth(name, kind).await, 0);
    }
    consumer.close().await.unwrap();
}

/// Counts what a consumer receives: every id, with re-sent batches recognised by their
/// id and content.
#[derive(Default)]
pub struct Tally {
    pub seen: Vec<bool>,
    pub unique: u64,
    pub batches: HashMap<BatchId<'static>, (u64, u64, usize)>,
    pub duplicate_batches: u64,
    pub deliveries: u64,
    pub complete: Option<FileComplete<'static>>,
}

impl Tally {
    pub fn new(ids: u64) -> Self {
        Self {
            seen: vec![false; usize::try_from(ids + 1).unwrap()],
            ..Self::default()
        }
    }

    /// Adds a delivery's content; panics on a record seen twice outside a re-sent batch.
    pub fn add(&mut self, message: &Message<'_>) {
        self.deliveries += 1;
        match message {
            Message::Batch(b) => {
                let first = b.records.first().map_or(0, |r| r.record.id());
                let last = b.records.last().map_or(0, |r| r.record.id());
                let key = b.id().into_owned();
                if let Some(known) = self.batches.get(&key) {
                    assert_eq!(
                        *known,
                        (first, last, b.records.len()),
                        "batch {key} re-sent with other records"
                    );
                    self.duplicate_batches += 1;
                    return;
                }
                self.batches.insert(key, (first, last, b.records.len()));
                for r in &b.records {
                    let id = usize::try_from(r.record.id()).unwrap();
                    assert!(
                        !self.seen[id],
                        "record {id} arrived twice in different batches"
                    );
                    self.seen[id] = true;
                    self.unique += 1;
                }
            }
            Message::FileComplete(f) => {
                if self.complete.is_none() {
                    self.complete = Some(f.clone().into_owned());
                }
            }
            Message::ExtractionComplete(_) | Message::Removed(_) => {}
        }
    }

    pub fn missing(&self) -> Vec<usize> {
        self.seen
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, s)| !**s)
            .map(|(i, _)| i)
            .take(10)
            .collect()
    }
}

/// Publishes `n` small artist records (ids 1..=n) as one file.
pub async fn publish_artists(
    publisher: &mut impl Publisher,
    file: FileRef,
    ids: std::ops::RangeInclusive<u64>,
    resume: Resume,
) -> FileComplete<'static> {
    publisher.begin_file(file, resume).unwrap();
    for id in ids {
        publisher.publish(&artist(id)).await.unwrap();
    }
    publisher.end_file().await.unwrap()
}

/// 1,000,000 records published and consumed at the same time: none lost, none extra
/// beyond recognised duplicates (there should be none without a fault).
pub async fn million<B>(bus: &B)
where
    B: TestBus,
    B::P: 'static,
{
    const N: u64 = 1_000_000;
    let name = "million";
    bus.declare(name).await;
    let mut publisher = bus.publisher(PublisherConfig::default());
    let file = file_of(RecordKind::Artist, "_million");
    let publishing = tokio::spawn(async move {
        let done = publish_artists(&mut publisher, file, 1..=N, Resume::default()).await;
        (done, publisher)
    });
    let mut consumer = bus.consumer(ConsumerConfig::new(name));
    let mut tally = Tally::new(N);
    while tally.complete.is_none() {
        let d = next(&mut consumer).await;
        tally.add(&d.decode().unwrap());
        d.ack().await.unwrap();
    }
    let (done, _publisher) = publishing.await.unwrap();
    assert_eq!(done.records, N);
    assert_eq!(tally.complete.as_ref(), Some(&done));
    assert_eq!(tally.missing(), Vec::<usize>::new(), "records lost");
    assert_eq!(tally.unique, N);
    assert_eq!(tally.batches.len() as u64, done.batches);
    assert_eq!(tally.duplicate_batches, 0, "duplicates without any fault");
    assert_eq!(bus.depth(name, RecordKind::Artist).await, 0);
    consumer.close().await.unwrap();
}

/// A handler that fails: retriably for batches when `retriable`, permanently otherwise;
/// control messages succeed.
pub struct Failing {
    pub retriable: bool,
    pub calls: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("the database says no (test failure {0})")]
pub struct TestFailure(u32, bool);

impl SinkError for TestFailure {
    fn is_retriable(&self) -> bool {
        self.1
    }
}

impl Handler for Failing {
    type Error = TestFailure;

    async fn handle(&mut self, delivery: &Delivery) -> Result<(), TestFailure> {
        if delivery.batch().is_none() {
            return Ok(());
        }
        self.calls += 1;
        Err(TestFailure(self.calls, self.retriable))
    }
}

fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        backoff: Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
            give_up_after: None,
        },
        hold_for: Duration::ZERO,
    }
}

/// A message that always fails ends in the dead-letter queue after the delivery limit,
/// with the reason, and not before.
pub async fn always_failing_ends_in_dlq(bus: &impl TestBus) {
    let name = "alwaysfails";
    bus.declare(name).await;
    let mut publisher = bus.publisher(PublisherConfig::default());
    publish_artists(
        &mut publisher,
        file_of(RecordKind::Artist, "_fails"),
        1..=5,
        Resume::default(),
    )
    .await;
    let mut consumer = bus.consumer(ConsumerConfig::new(name));
    let mut handler = Failing {
        retriable: true,
        calls: 0,
    };
    let limit = bus.delivery_limit();
    let mut requeues = 0;
    let mut counts = Vec::new();
    let (mut dead_lettered, mut control_acked) = (false, false);
    while !(dead_lettered && control_acked) {
        let d = next(&mut consumer).await;
        if batch_seq(&d).is_some() {
            counts.push(d.redelivery_count());
        }
        match process(d, &mut handler, &quick_policy()).await.unwrap() {
            Settled::Acked { .. } => control_acked = true,
            Settled::Requeued { .. } => requeues += 1,
            Settled::DeadLettered { reason } => {
                assert!(reason.contains("the database says no"), "{reason}");
                dead_lettered = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        requeues, limit,
        "requeued up to the limit, then dead-lettered"
    );
    assert_eq!(
        counts,
        (0..=limit).collect::<Vec<_>>(),
        "redelivery count seen on each delivery"
    );
    let dead = bus.dead_letters(name, RecordKind::Artist).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].message.record_count(), 5);
    assert!(
        dead[0].reason.contains("the database says no"),
        "{}",
        dead[0].reason
    );
    assert!(
        dead[0]
            .reason
            .contains(&format!("after {} deliveries", limit + 1)),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].deliveries, Some(limit + 1));
    assert_eq!(bus.depth(name, RecordKind::Artist).await, 0);
    consumer.close().await.unwrap();
}

/// A permanent error dead-letters at once, with the error as the reason.
pub async fn permanent_error_dead_letters_at_once(bus: &impl TestBus) {
    let name = "permanent";
    bus.declare(name).await;
    let mut publisher = bus.publisher(PublisherConfig::default());
    publish_artists(
        &mut publisher,
        file_of(RecordKind::Artist, "_perm"),
        1..=3,
        Resume::default(),
    )
    .await;
    let mut consumer = bus.consumer(ConsumerConfig::new(name));
    let mut handler = Failing {
        retriable: false,
        calls: 0,
    };
    let d = next(&mut consumer).await;
    assert_eq!(d.redelivery_count(), 0);
    let settled = process(d, &mut handler, &quick_policy()).await.unwrap();
    assert!(
        matches!(settled, Settled::DeadLettered { .. }),
        "{settled:?}"
    );
    assert_eq!(handler.calls, 1);
    let d = next(&mut consumer).await; // file_complete: the handler succeeds
    assert!(matches!(
        process(d, &mut handler, &quick_policy()).await.unwrap(),
        Settled::Acked { attempts: 1 }
    ));
    let dead = bus.dead_letters(name, RecordKind::Artist).await;
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].reason.contains("test failure 1"),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].deliveries, Some(1));
    consumer.close().await.unwrap();
}

/// A consumer that keeps giving a message back (a crash loop) without dead-lettering it
/// itself: the broker's delivery limit moves it to the dead-letter queue.
pub async fn delivery_limit_dead_letters(bus: &impl TestBus) {
    let name = "limit";
    bus.declare(name).await;
    let mut publisher = bus.publisher(PublisherConfig::default());
    publish_artists(
        &mut publisher,
        file_of(RecordKind::Artist, "_limit"),
        1..=2,
        Resume::default(),
    )
    .await;
    let mut consumer = bus.consumer(ConsumerConfig::new(name));
    let mut deliveries = 0;
    loop {
        let d = match tokio::time::timeout(Duration::from_secs(3), consumer.next()).await {
            Ok(d) => d.unwrap(),
            Err(_) => break, // nothing left: the batch was dead-lettered
        };
        if batch_seq(&d).is_some() {
            deliveries += 1;
            d.requeue().await.unwrap();
        } else {
            d.ack().await.unwrap();
        }
    }
    let limit = bus.delivery_limit();
    assert_eq!(deliveries, limit + 1);
    let dead = bus.dead_letters(name, RecordKind::Artist).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].message.record_count(), 2);
    assert!(
        dead[0].reason.contains("delivery") && dead[0].reason.contains("limit"),
        "{}",
        dead[0].reason
    );
    consumer.close().await.unwrap();
}

/// Publishing with no queue bound is an error, not a silent drop; nothing is lost: once
/// a queue exists, the same call goes through.
pub async fn unroutable_is_an_error(bus: &impl TestBus) {
    let mut publisher = bus.publisher(PublisherConfig::default());
    publisher
        .begin_file(file_of(RecordKind::Label, "_unroutable"), Resume::default())
        .unwrap();
    let record = SinkRecord::new(Record::from(discogs_model::Label {
        id: 1,
        name: "Planet E".into(),
        ..Default::default()
    }));
    publisher.publish(&record).await.unwrap();
    let err = publisher.end_file().await.unwrap_err();
    assert!(matches!(err, BusError::Unroutable { .. }), "{err:?}");
    assert!(!err.is_retriable());
    assert_eq!(publisher.progress().unwrap().confirmed_batches, 0);
    let name = "late";
    bus.declare(name).await;
    let done = publisher.end_file().await.unwrap();
    assert_eq!((done.batches, done.records), (1, 1));
    let mut consumer = bus.consumer(ConsumerConfig::new(name));
    let d = next(&mut consumer).await;
    assert_eq!(records(&d), vec![record]);
    d.ack().await.unwrap();
    let d = next(&mut consumer).await;
    assert!(matches!(owned(&d), Message::FileComplete(_)));
    d.ack().await.unwrap();
    consumer.close().await.unwrap();
}

/// Requeued and dropped deliveries come back with their redelivery count raised. (A
/// quorum queue delivers a returned message after those already waiting, so the batch may
/// come back after `file_complete`: consumers compare `file_complete.batches` with what
/// they have handled rather than rely on order.)
pub async fn requeue_and_drop_redeliver(bus: &impl TestBus) {
    let name = "redeliver";
    bus.declare(name).await;
    let mut publisher = bus.publisher(PublisherConfig::default());
    publish_artists(
        &mut publisher,
        file_of(RecordKind::Artist, "_redeliver"),
        1..=10,
        Resume::default(),
    )
    .await;
    let mut consumer = bus.consumer(ConsumerConfig::new(name));
    let mut batch_counts = Vec::new();
    let mut control = 0;
    while batch_counts.len() < 3 || control < 1 {
        let d = next(&mut consumer).await;
        if batch_seq(&d).is_none() {
            assert!(matches!(owned(&d), Message::FileComplete(_)));
            control += 1;
            d.ack().await.unwrap();
            continue;
        }
        assert_eq!(batch_seq(&d), Some(0));
        assert_eq!(d.is_redelivered(), d.redelivery_count() > 0);
        batch_counts.push(d.redelivery_count());
        match batch_counts.len() {
            1 => d.requeue().await.unwrap(),
            2 => drop(d),
            _ => d.ack().await.unwrap(),
        }
    }
    assert_eq!(batch_counts, vec![0, 1, 2]);
    assert_eq!(control, 1);
    assert_eq!(bus.depth(name, RecordKind::Artist).await, 0);
    consumer.close().await.unwrap();
}

/// A publisher that stopped after some confirmed batches resumes from its resume point:
/// batch numbers continue, the file's counts cover both runs, no record twice.
pub async fn resume_from_confirmed_progress(bus: &impl TestBus) {
    let name = "resume";
    bus.declare(name).await;
    let file = file_of(RecordKind::Artist, "_resume");
    let mut first = bus.publisher(PublisherConfig::default());
    first.begin_file(file.clone(), Resume::default()).unwrap();
    for id in 1..=250 {
        first.publish(&artist(id)).await.unwrap();
    }
    first.flush().await.unwrap();
    let progress = first.progress().unwrap().clone();
    assert_eq!(progress.accepted_records, 250);
    assert_eq!(
        (progress.confirmed_batches, progress.confirmed_records),
        (3, 250)
    );
    drop(first); // the process "crashes" here
    let resume = progress.resume_point();
    let mut second = bus.publisher(PublisherConfig::default());
    let done = publish_artists(&mut second, file, 251..=400, resume).await;
    assert_eq!((done.batches, done.records), (5, 400));
    let mut consumer = bus.consumer(ConsumerConfig::new(name));
    let mut tally = Tally::new(400);
    while tally.complete.is_none() {
        let d = next(&mut consumer).await;
        tally.add(&d.decode().unwrap());
        d.ack().await.unwrap();
    }
    assert_eq!(tally.missing(), Vec::<usize>::new());
    let mut seqs: Vec<u64> = tally.batches.keys().map(|k| k.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    assert_eq!(tally.complete, Some(done));
    consumer.close().await.unwrap();
}

/// Graceful shutdown: the delivery in hand is finished and acknowledged, the prefetched
/// ones not yet handed out go back to the queue for the next consumer.
pub async fn shutdown_finishes_delivery_in_hand(bus: &impl TestBus) {
    let name = "shutdown";
    bus.declare(name).await;
    let mut publisher = bus.publisher(PublisherConfig {
        max_records: 10,
        ..PublisherConfig::default()
    });
    publish_artists(
        &mut publisher,
        file_of(RecordKind::Artist, "_shutdown"),
        1..=50,
        Resume::default(),
    )
    .await;
    let mut config = ConsumerConfig::new(name);
    config.prefetch = 4;
    let mut consumer = bus.consumer(config.clone());
    let in_hand = next(&mut consumer).await;
    assert_eq!(batch_seq(&in_hand), Some(0));
    // Shutdown: no more next(); the work in hand is finished and acknowledged.
    in_hand.ack().await.unwrap();
    consumer.close().await.unwrap();

    let mut consumer = bus.consumer(config);
    let mut tally = Tally::new(50);
    while tally.complete.is_none() {
        let d = next(&mut consumer).await;
        tally.add(&d.decode().unwrap());
        d.ack().await.unwrap();
    }
    let mut seqs: Vec<u64> = tally.batches.keys().map(|k| k.seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4],
        "batch 0 was acknowledged; the others came back"
    );
    consumer.close().await.unwrap();
}
