//! Autocomplete lookups sent to Neo4j together.
//!
//! Most of what an autocomplete costs Neo4j is the statement around the full-text call
//! (Bolt messages, the transaction, the plan cache lookup), not the call. So lookups of one
//! type share statements: while `max_in_flight` statements of that type are running, new
//! lookups wait in a queue, and the statement that finishes next takes the whole queue (at
//! most [`MAX_BATCH`]) into its next statement, one full-text call per lookup. A lookup
//! that finds fewer statements running starts one at once, so a quiet explorer adds no
//! wait. Every lookup still gets its own full-text call and its own answer: nothing is
//! shared between lookups but the statement.

use std::sync::Mutex;

use tokio::sync::oneshot;

use super::params::{ApiError, EntityType};
use crate::metrics::{Counter, Metrics};

/// Most lookups in one statement.
pub const MAX_BATCH: usize = 64;

/// One suggestion: as the full-text call yields it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Hit {
    /// `id` of the node (`null` for genres and styles).
    pub id: Option<i64>,
    /// Its name or title.
    pub name: Option<String>,
    /// The full-text score.
    pub score: f64,
}

/// A lookup waiting for its statement.
#[derive(Debug)]
pub struct Lookup {
    /// The Lucene query.
    pub lucene: String,
    /// Most suggestions wanted.
    pub limit: i64,
    /// Where its suggestions go.
    pub reply: oneshot::Sender<Result<Vec<Hit>, ApiError>>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Lookup>,
    in_flight: usize,
}

/// The queues of lookups, one per entity type.
#[derive(Debug)]
pub struct Batches {
    queues: [Mutex<Queue>; 6],
    max_in_flight: usize,
    statements: Counter,
    lookups: Counter,
}

impl Batches {
    /// Queues with at most `max_in_flight` statements running per type (at least 1),
    /// counting statements and lookups in `metrics` when given
    /// (`autocomplete_statements_total`, `autocomplete_lookups_total`: their ratio is the
    /// mean batch).
    #[must_use]
    pub fn new(max_in_flight: usize, metrics: Option<&Metrics>) -> Self {
        let (statements, lookups) = metrics.map_or_else(Default::default, |m| {
            (
                m.counter(
                    "autocomplete_statements_total",
                    "Autocomplete statements sent to Neo4j.",
                    &[],
                ),
                m.counter(
                    "autocomplete_lookups_total",
                    "Autocomplete lookups (one full-text call each) in those statements.",
                    &[],
                ),
            )
        });
        Self {
            queues: Default::default(),
            max_in_flight: max_in_flight.max(1),
            statements,
            lookups,
        }
    }

    /// Counts a statement of `n` lookups.
    pub fn sent(&self, n: usize) {
        self.statements.inc();
        self.lookups.add(n as u64);
    }

    fn queue(&self, kind: EntityType) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock leaves a consistent queue: no invariant spans
        // the critical sections.
        self.queues[kind.label_index()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `lookup`. When fewer than `max_in_flight` statements of `kind` are running,
    /// the caller must run one: the lookups to send are returned (this one and any
    /// waiting), and the caller holds a place until [`Self::next`] returns `None`.
    #[must_use]
    pub fn push(&self, kind: EntityType, lookup: Lookup) -> Option<Vec<Lookup>> {
        let mut q = self.queue(kind);
        q.waiting.push(lookup);
        if q.in_flight < self.max_in_flight {
            q.in_flight += 1;
            Some(take(&mut q.waiting))
        } else {
            None
        }
    }

    /// After a statement of `kind`: the lookups that queued meanwhile, for the next one,
    /// or `None` (the caller's place is given back, atomically with finding the queue
    /// empty, so that no lookup is left waiting).
    #[must_use]
    pub fn next(&self, kind: EntityType) -> Option<Vec<Lookup>> {
        let mut q = self.queue(kind);
        if q.waiting.is_empty() {
            q.in_flight = q.in_flight.saturating_sub(1);
            None
        } else {
            Some(take(&mut q.waiting))
        }
    }

    /// Gives back a place without taking the queue: after a panic in the statement's
    /// runner (the lookups of that statement got no answer; the ones still waiting are
    /// taken by the next lookup that arrives).
    pub fn abandon(&self, kind: EntityType) {
        let mut q = self.queue(kind);
        q.in_flight = q.in_flight.saturating_sub(1);
    }
}

/// The first [`MAX_BATCH`] waiting lookups.
fn take(waiting: &mut Vec<Lookup>) -> Vec<Lookup> {
    let n = waiting.len().min(MAX_BATCH);
    waiting.drain(..n).collect()
}

/// The statement for a batch of lookups on the full-text index `$index` of `kind`: one
/// row per lookup (`$qs[i]`, in any order), its suggestions best first (`score`, then the
/// shortest name, then the lowest id), at most `$limit`.
#[must_use]
pub fn statement(kind: EntityType) -> String {
    let name_prop = kind.name_property();
    format!(
        "UNWIND range(0, size($qs) - 1) AS i \
         CALL (i) {{ \
           CALL db.index.fulltext.queryNodes($index, $qs[i]) YIELD node, score \
           WITH node.id AS id, node.{name_prop} AS name, score \
           ORDER BY score DESC, size(name), id LIMIT $limit \
           RETURN collect({{id: id, name: name, score: score}}) AS hits \
         }} \
         RETURN i, hits"
    )
}

/// Keeps a statement runner's place until it is given back: by [`Batches::next`] finding
/// the queue empty, or on drop (a panic) through [`Batches::abandon`].
#[derive(Debug)]
pub struct Place<'a> {
    batches: &'a Batches,
    kind: EntityType,
    held: bool,
}

impl<'a> Place<'a> {
    /// The place [`Batches::push`] gave.
    #[must_use]
    pub fn new(batches: &'a Batches, kind: EntityType) -> Self {
        Self {
            batches,
            kind,
            held: true,
        }
    }

    /// The next batch, or `None` with the place given back.
    #[must_use]
    pub fn take_next(&mut self) -> Option<Vec<Lookup>> {
        let next = self.batches.next(self.kind);
        if next.is_none() {
            self.held = false;
        }
        next
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if self.held {
            self.batches.abandon(self.kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(q: &str) -> (Lookup, oneshot::Receiver<Result<Vec<Hit>, ApiError>>) {
        let (reply, rx) = oneshot::channel();
        (
            Lookup {
                lucene: q.to_owned(),
                limit: 10,
                reply,
            },
            rx,
        )
    }

    fn names(batch: &[Lookup]) -> Vec<&str> {
        batch.iter().map(|l| l.lucene.as_str()).collect()
    }

    #[test]
    fn lookups_queue_while_statements_run_and_the_next_statement_takes_them() {
        let b = Batches::new(2, None);
        let a = b
            .push(EntityType::Artist, lookup("a*").0)
            .expect("first runs");
        assert_eq!(names(&a), ["a*"]);
        let c = b
            .push(EntityType::Artist, lookup("b*").0)
            .expect("second runs");
        assert_eq!(names(&c), ["b*"]);
        // Two running: the next ones wait.
        assert!(b.push(EntityType::Artist, lookup("c*").0).is_none());
        assert!(b.push(EntityType::Artist, lookup("d*").0).is_none());
        // Another type has its own queue.
        assert!(b.push(EntityType::Label, lookup("e*").0).is_some());
        // The first runner takes both waiting lookups, then finds none and gives back its
        // place, so a new lookup runs at once.
        assert_eq!(names(&b.next(EntityType::Artist).unwrap()), ["c*", "d*"]);
        assert!(b.next(EntityType::Artist).is_none());
        assert!(b.push(EntityType::Artist, lookup("f*").0).is_some());
    }

    #[test]
    fn a_statement_takes_at_most_max_batch_lookups() {
        let b = Batches::new(1, None);
        let _running = b.push(EntityType::Artist, lookup("x*").0).unwrap();
        for i in 0..MAX_BATCH + 3 {
            assert!(b
                .push(EntityType::Artist, lookup(&format!("{i}*")).0)
                .is_none());
        }
        assert_eq!(b.next(EntityType::Artist).unwrap().len(), MAX_BATCH);
        assert_eq!(b.next(EntityType::Artist).unwrap().len(), 3);
        assert!(b.next(EntityType::Artist).is_none());
    }

    #[test]
    fn a_dropped_place_is_given_back() {
        let b = Batches::new(1, None);
        let _first = b.push(EntityType::Genre, lookup("x*").0).unwrap();
        {
            let _place = Place::new(&b, EntityType::Genre);
            // A runner that panics drops its place without `next`.
        }
        let (waiting, _rx) = lookup("y*");
        assert!(
            b.push(EntityType::Genre, waiting).is_some(),
            "the place is free again"
        );
        let mut place = Place::new(&b, EntityType::Genre);
        assert!(place.take_next().is_none());
        drop(place);
        // Given back once, not twice: one runner may start, a second must wait.
        assert!(b.push(EntityType::Genre, lookup("z*").0).is_some());
        assert!(b.push(EntityType::Genre, lookup("w*").0).is_none());
    }
}
