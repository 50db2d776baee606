//! The conformance suite every [`Sink`] must pass (feature `conformance`).
//!
//! A sink crate implements [`Harness`] for its store (a fresh, empty, isolated store per
//! call of [`Harness::sink`], and a way to read back what was stored) and runs each check
//! from its own integration tests, on whatever runtime it uses:
//!
//! ```ignore
//! #[tokio::test]
//! async fn conformance_idempotent_rewrite() {
//!     let Some(mut h) = PgHarness::new().await else { return };
//!     discogs_model::conformance::idempotent_rewrite(&mut h).await;
//! }
//! ```
//!
//! The checks panic with a message on failure, like `assert!`. [`run_all`] runs them all.

use std::future::Future;

use crate::{
    Artist, Credit, EntityRef, Label, Master, Record, RecordHash, RecordKind, Release,
    ReleaseLabel, Sink, SinkError, SinkOutcome, SinkRecord,
};

/// What the suite needs from a store under test.
pub trait Harness: Send {
    /// The sink under test.
    type Sink: Sink;

    /// A sink writing to a fresh, empty store of its own (a new schema, database or label
    /// prefix), so that checks do not see each other's records.
    fn sink(&mut self) -> impl Future<Output = Self::Sink> + Send;

    /// A sink configured to reach a store that does not answer (e.g. a closed port): its
    /// writes must fail with retriable errors.
    fn unreachable_sink(&mut self) -> impl Future<Output = Self::Sink> + Send;

    /// The hash stored for record `id` of `kind` by the last sink returned by
    /// [`Harness::sink`], or `None` when no such record is stored.
    fn stored_hash(
        &mut self,
        kind: RecordKind,
        id: u64,
    ) -> impl Future<Output = Option<RecordHash>> + Send;

    /// The record stored for `id` of `kind`, as written, or `None`.
    fn stored_record(
        &mut self,
        kind: RecordKind,
        id: u64,
    ) -> impl Future<Output = Option<Record<'static>>> + Send;

    /// What the store keeps of `record`: the value [`Harness::stored_record`] must read
    /// back after `record` was written. The default is the whole record; a store that
    /// keeps a documented projection of it (a graph keeps names, titles and references,
    /// not profiles or track lists) returns that projection.
    fn stored_form(&self, record: &Record<'static>) -> Record<'static> {
        record.clone()
    }
}

/// Three artists, a label and a master, small but with every common part filled.
#[must_use]
pub fn sample_batch(kind: RecordKind) -> Vec<SinkRecord<'static>> {
    let records: Vec<Record<'static>> = match kind {
        RecordKind::Artist => (1..=3)
            .map(|id| {
                Record::Artist(Artist {
                    id,
                    name: format!("Artist {id}").into(),
                    real_name: Some(format!("Real Name {id}").into()),
                    name_variations: vec!["A. Variation".into()],
                    aliases: vec![EntityRef {
                        id: Some(id + 100),
                        name: "Alias".into(),
                    }],
                    ..Artist::default()
                })
            })
            .collect(),
        RecordKind::Label => vec![Record::Label(Label {
            id: 1,
            name: "Planet E".into(),
            parent_label: Some(EntityRef {
                id: Some(9),
                name: "Parent".into(),
            }),
            ..Label::default()
        })],
        RecordKind::Master => vec![Record::Master(Master {
            id: 1,
            title: "Stockholm".into(),
            year: Some(1999),
            main_release: Some(1),
            genres: vec!["Electronic".into()],
            ..Master::default()
        })],
        RecordKind::Release => vec![sample_release(1, "Stockholm")],
    };
    records.into_iter().map(SinkRecord::new).collect()
}

/// A release whose artist, label and master ids (`1_000_000 + id`...) are not loaded: its
/// references dangle.
#[must_use]
pub fn sample_release(id: u64, title: &str) -> Record<'static> {
    Record::Release(Release {
        id,
        title: title.to_owned().into(),
        status: Some("Accepted".into()),
        country: Some("Sweden".into()),
        released: Some("1999-03-00".into()),
        year: Some(1999),
        master_id: Some(1_000_000 + id),
        is_main_release: true,
        artists: vec![Credit {
            id: Some(2_000_000 + id),
            name: "The Persuader".into(),
            ..Credit::default()
        }],
        labels: vec![ReleaseLabel {
            id: Some(3_000_000 + id),
            name: "Svek".into(),
            catno: Some("SK032".into()),
        }],
        genres: vec!["Electronic".into()],
        styles: vec!["Deep House".into()],
        ..Release::default()
    })
}

fn expect_ok<T, E: SinkError>(what: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| {
        panic!(
            "{what}: unexpected error: {e} (retriable: {})",
            e.is_retriable()
        )
    })
}

/// Writing a batch of each kind inserts every record and stores it as written.
pub async fn write_batch<H: Harness>(h: &mut H) {
    let mut sink = h.sink().await;
    for kind in RecordKind::ALL {
        let batch = sample_batch(kind);
        let outcome = expect_ok("write_batch", sink.write_batch(kind, &batch).await);
        assert_eq!(
            outcome,
            SinkOutcome {
                inserted: batch.len() as u64,
                ..SinkOutcome::default()
            },
            "first write of {kind}"
        );
        for r in &batch {
            let id = r.record.id();
            assert_eq!(
                h.stored_hash(kind, id).await,
                Some(r.hash),
                "hash of {kind} {id}"
            );
            assert_eq!(
                h.stored_record(kind, id).await,
                Some(h.stored_form(&r.record)),
                "record {kind} {id} read back"
            );
        }
    }
    expect_ok("flush", sink.flush().await);
    expect_ok("health_check", sink.health_check().await);
}

/// Writing the same batch again changes nothing, as does a batch repeating an id.
pub async fn idempotent_rewrite<H: Harness>(h: &mut H) {
    let mut sink = h.sink().await;
    let batch = sample_batch(RecordKind::Artist);
    let n = batch.len() as u64;
    expect_ok(
        "first write",
        sink.write_batch(RecordKind::Artist, &batch).await,
    );
    let again = expect_ok(
        "second write",
        sink.write_batch(RecordKind::Artist, &batch).await,
    );
    assert_eq!(
        again,
        SinkOutcome {
            unchanged: n,
            ..SinkOutcome::default()
        },
        "replayed batch"
    );
    // The same records twice in one batch: one write at most, the rest unchanged.
    let doubled: Vec<_> = batch.iter().chain(batch.iter()).cloned().collect();
    let twice = expect_ok(
        "doubled batch",
        sink.write_batch(RecordKind::Artist, &doubled).await,
    );
    assert_eq!(
        twice,
        SinkOutcome {
            unchanged: 2 * n,
            ..SinkOutcome::default()
        },
        "doubled batch"
    );
    // An empty batch is fine.
    let empty = expect_ok(
        "empty batch",
        sink.write_batch(RecordKind::Artist, &[]).await,
    );
    assert_eq!(empty, SinkOutcome::default());
}

/// A record whose data changed replaces the stored one; its neighbours stay unchanged;
/// within one batch the last occurrence of an id wins.
pub async fn changed_record<H: Harness>(h: &mut H) {
    let mut sink = h.sink().await;
    let batch = sample_batch(RecordKind::Artist);
    expect_ok(
        "first write",
        sink.write_batch(RecordKind::Artist, &batch).await,
    );
    let mut changed = batch.clone();
    let Record::Artist(a) = &mut changed[1].record else {
        unreachable!()
    };
    a.profile = Some("Changed profile.".into());
    changed[1] = SinkRecord::new(changed[1].record.clone());
    let outcome = expect_ok(
        "changed write",
        sink.write_batch(RecordKind::Artist, &changed).await,
    );
    assert_eq!(
        outcome,
        SinkOutcome {
            updated: 1,
            unchanged: batch.len() as u64 - 1,
            ..SinkOutcome::default()
        }
    );
    let id = changed[1].record.id();
    assert_eq!(
        h.stored_hash(RecordKind::Artist, id).await,
        Some(changed[1].hash)
    );
    assert_eq!(
        h.stored_record(RecordKind::Artist, id).await,
        Some(h.stored_form(&changed[1].record))
    );

    // Two versions of one id in a batch: the later one is stored.
    let first = SinkRecord::new(sample_release(7, "Old title"));
    let last = SinkRecord::new(sample_release(7, "New title"));
    let outcome = expect_ok(
        "two versions",
        sink.write_batch(RecordKind::Release, &[first, last.clone()])
            .await,
    );
    assert_eq!(
        outcome.written(),
        1,
        "one row written for two versions: {outcome:?}"
    );
    assert_eq!(outcome.total(), 2);
    assert_eq!(h.stored_hash(RecordKind::Release, 7).await, Some(last.hash));
}

/// A release referring to an artist, label and master that are not loaded is written,
/// and loading them afterwards works too.
pub async fn dangling_references<H: Harness>(h: &mut H) {
    let mut sink = h.sink().await;
    let release = SinkRecord::new(sample_release(42, "Dangling"));
    let outcome = expect_ok(
        "release first",
        sink.write_batch(RecordKind::Release, std::slice::from_ref(&release))
            .await,
    );
    assert_eq!(outcome.inserted, 1);
    assert_eq!(
        h.stored_record(RecordKind::Release, 42).await,
        Some(h.stored_form(&release.record))
    );
    let artist = SinkRecord::new(Record::Artist(Artist {
        id: 2_000_042,
        name: "The Persuader".into(),
        ..Artist::default()
    }));
    let outcome = expect_ok(
        "artist later",
        sink.write_batch(RecordKind::Artist, &[artist]).await,
    );
    assert_eq!(outcome.inserted, 1);
    let master = SinkRecord::new(Record::Master(Master {
        id: 1_000_042,
        title: "Dangling".into(),
        main_release: Some(42),
        ..Master::default()
    }));
    let outcome = expect_ok(
        "master later",
        sink.write_batch(RecordKind::Master, &[master]).await,
    );
    assert_eq!(outcome.inserted, 1);
}

/// A batch holding a record of another kind is refused with a permanent error and writes
/// nothing; a store that cannot be reached gives retriable errors, and fails its health check.
pub async fn retry_classification<H: Harness>(h: &mut H) {
    let mut sink = h.sink().await;
    let mut batch = sample_batch(RecordKind::Artist);
    batch.extend(sample_batch(RecordKind::Label));
    match sink.write_batch(RecordKind::Artist, &batch).await {
        Ok(outcome) => panic!("a label in an artist batch was accepted: {outcome:?}"),
        Err(e) => assert!(
            !e.is_retriable(),
            "wrong kind must be permanent, got retriable: {e}"
        ),
    }
    assert_eq!(
        h.stored_hash(RecordKind::Artist, 1).await,
        None,
        "refused batch wrote rows"
    );

    let mut down = h.unreachable_sink().await;
    match down
        .write_batch(RecordKind::Artist, &sample_batch(RecordKind::Artist))
        .await
    {
        Ok(outcome) => panic!("unreachable store accepted a batch: {outcome:?}"),
        Err(e) => assert!(e.is_retriable(), "unreachable store must be retriable: {e}"),
    }
    match down.health_check().await {
        Ok(()) => panic!("unreachable store passed its health check"),
        Err(e) => assert!(
            e.is_retriable(),
            "health check error should be retriable: {e}"
        ),
    }
}

/// Every check, in order.
pub async fn run_all<H: Harness>(h: &mut H) {
    write_batch(h).await;
    idempotent_rewrite(h).await;
    changed_record(h).await;
    dangling_references(h).await;
    retry_classification(h).await;
}
