//! Purge after a complete extraction: rows not in it go, unless a guard refuses (logged).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use discogs_model::conformance::sample_release;
use discogs_model::{RecordKind, SinkRecord};
use discogs_sink_pg::{PurgeOutcome, PurgeRefusal, PurgeRequest};
use tracing::field::{Field, Visit};

use crate::{load, TestDb};

/// A tracing subscriber that keeps each event's fields as one line of text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        write!(self.0, "{}={value:?} ", field.name()).unwrap();
    }
}

impl tracing::Subscriber for Captured {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("{} ", event.metadata().level());
        event.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Captured {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn releases(ids: impl Iterator<Item = u64>) -> Vec<SinkRecord<'static>> {
    ids.map(|id| SinkRecord::new(sample_release(id, &format!("Release {id}"))))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn purge_deletes_only_rows_not_in_the_extraction_and_each_guard_refuses_with_a_logged_reason()
{
    let Some(db) = TestDb::new("pg_purge").await else {
        return;
    };
    let logs = Captured::default();
    let _guard = tracing::subscriber::set_default(logs.clone());
    let kind = RecordKind::Release;

    // Month 1: releases 1..=100.
    let mut sink = discogs_sink_pg::PgSink::new(db.config().max_purge_fraction(0.1)).unwrap();
    sink.set_extraction(Some("20251001".into()));
    load(&mut sink, kind, &releases(1..=100), 30).await;
    // Month 2: 95 of them (6..=100), unchanged, plus 5 new ones: 5 rows are stale.
    sink.set_extraction(Some("20251101".into()));
    let month2 = releases(6..=105);
    let outcome = load(&mut sink, kind, &month2, 30).await;
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (5, 0, 95)
    );
    // The ids cost one row per batch, not one per record.
    assert_eq!(
        db.count("SELECT count(*) FROM {s}.extraction_ids WHERE extraction = '20251101'")
            .await,
        4
    );
    logs.take();

    let request = PurgeRequest {
        extraction: "20251101",
        kind,
        reported_records: 100,
        dead_lettered: 0,
    };
    let cases = [
        (
            PurgeRequest {
                dead_lettered: 2,
                ..request
            },
            PurgeRefusal::DeadLettered { messages: 2 },
            "dead-lettered 2 messages",
        ),
        (
            PurgeRequest {
                reported_records: 0,
                ..request
            },
            PurgeRefusal::NothingExtracted,
            "reported zero records",
        ),
        (
            PurgeRequest {
                reported_records: 101,
                ..request
            },
            PurgeRefusal::Incomplete {
                recorded: 100,
                reported: 101,
            },
            "only 100 distinct ids",
        ),
    ];
    for (req, refusal, reason) in cases {
        assert_eq!(
            sink.purge(req).await.unwrap(),
            PurgeOutcome::Refused(refusal)
        );
        let lines = logs.take();
        assert!(
            lines.iter().any(|l| l.starts_with("WARN")
                && l.contains("Purge refused.")
                && l.contains(reason)),
            "no logged reason {reason:?} in {lines:?}"
        );
    }
    // Too large: 5 stale rows of 105 is more than 1%.
    let mut strict = discogs_sink_pg::PgSink::new(db.config().max_purge_fraction(0.01)).unwrap();
    let refused = strict.purge(request).await.unwrap();
    assert_eq!(
        refused,
        PurgeOutcome::Refused(PurgeRefusal::TooLarge {
            would_delete: 5,
            rows: 105,
            max_fraction: 0.01
        })
    );
    let lines = logs.take();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Purge refused.") && l.contains("would delete 5 of 105 rows")),
        "{lines:?}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM {s}.releases").await,
        105,
        "refusals deleted nothing"
    );

    // Within the fraction (10%): the 5 stale rows go, nothing else.
    let purged = sink.purge(request).await.unwrap();
    assert_eq!(purged, PurgeOutcome::Purged { deleted: 5 });
    assert_eq!(db.count("SELECT count(*) FROM {s}.releases").await, 100);
    assert_eq!(
        db.count("SELECT count(*) FROM {s}.releases WHERE id < 6")
            .await,
        0
    );
    assert_eq!(
        db.count("SELECT count(*) FROM {s}.extraction_ids WHERE extraction = '20251101'")
            .await,
        0
    );
    // Run again: the extraction's ids are gone, so it refuses rather than deleting everything.
    let again = sink.purge(request).await.unwrap();
    assert!(
        matches!(
            again,
            PurgeOutcome::Refused(PurgeRefusal::Incomplete { recorded: 0, .. })
        ),
        "{again:?}"
    );
    db.drop_schema().await;
}
