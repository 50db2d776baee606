//! Graph lookups sent to Neo4j together: autocomplete, explore and expand.
//!
//! Most of what a small lookup costs Neo4j is the statement around it (Bolt messages, the
//! transaction, the plan cache lookup), not its reads. So lookups of one statement shape
//! share statements: while `max_in_flight` statements of that shape are running, new
//! lookups wait in a queue, and the statement that finishes next takes the whole queue (at
//! most [`MAX_BATCH`]) into its next statement, one row per lookup (`UNWIND` over the
//! lookups' parameters, each lookup's work in a `CALL (i) { … }` subquery). A lookup that
//! finds fewer statements running starts one at once, so a quiet explorer adds no wait.
//! Every lookup still gets its own subquery and its own answer: nothing is shared between
//! lookups but the statement.
//!
//! The shape is a key chosen by the caller: the entity type for autocomplete (its index is
//! a parameter), the statement text for explore, the text with the page's `SKIP`/`LIMIT`
//! for expand (Cypher takes them from parameters of the whole statement, not from a row).

use std::collections::HashMap;
use std::hash::Hash;
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

/// An autocomplete lookup's input.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The Lucene query.
    pub lucene: String,
    /// Most suggestions wanted.
    pub limit: i64,
}

/// What a lookup is told: its answer, `None` when its statement gave it no row (an
/// unknown centre), or the statement's error.
pub type Reply<A> = Result<Option<A>, ApiError>;

/// A lookup waiting for its statement: its input and where its answer goes.
#[derive(Debug)]
pub struct Pending<I, A> {
    /// What the statement needs of this lookup (its row's parameters).
    pub input: I,
    /// Where its answer goes.
    pub reply: oneshot::Sender<Reply<A>>,
}

struct Queue<T> {
    waiting: Vec<T>,
    in_flight: usize,
}

/// The queues of lookups, one per statement shape `K`, of inputs `I` answered `A`.
pub struct Batches<K, I, A> {
    queues: Mutex<HashMap<K, Queue<Pending<I, A>>>>,
    max_in_flight: usize,
    statements: Counter,
    lookups: Counter,
}

impl<K, I, A> std::fmt::Debug for Batches<K, I, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("max_in_flight", &self.max_in_flight)
            .field("statements", &self.statements.get())
            .field("lookups", &self.lookups.get())
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone, I, A> Batches<K, I, A> {
    /// Queues with at most `max_in_flight` statements running per shape (at least 1),
    /// counting statements and lookups in `metrics` when given, as
    /// `{endpoint}_statements_total` and `{endpoint}_lookups_total` (their ratio is the
    /// mean batch).
    #[must_use]
    pub fn new(max_in_flight: usize, metrics: Option<(&Metrics, &str)>) -> Self {
        let (statements, lookups) = metrics.map_or_else(Default::default, |(m, endpoint)| {
            (
                m.counter(
                    &format!("{endpoint}_statements_total"),
                    &format!("Statements of {endpoint} lookups sent to Neo4j."),
                    &[],
                ),
                m.counter(
                    &format!("{endpoint}_lookups_total"),
                    &format!("{endpoint} lookups (one row each) sent in those statements."),
                    &[],
                ),
            )
        });
        Self {
            queues: Mutex::default(),
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

    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<K, Queue<Pending<I, A>>>> {
        // A panic while holding this lock leaves consistent queues: no invariant spans
        // the critical sections.
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `lookup`. When fewer than `max_in_flight` statements of `shape` are running,
    /// the caller must run one: the lookups to send are returned (this one and any
    /// waiting), and the caller holds a place until [`Self::next`] returns `None`.
    #[must_use]
    pub fn push(&self, shape: &K, lookup: Pending<I, A>) -> Option<Vec<Pending<I, A>>> {
        let mut queues = self.queues();
        let q = match queues.get_mut(shape) {
            Some(q) => q,
            None => queues.entry(shape.clone()).or_insert(Queue {
                waiting: Vec::new(),
                in_flight: 0,
            }),
        };
        q.waiting.push(lookup);
        if q.in_flight < self.max_in_flight {
            q.in_flight += 1;
            Some(take(&mut q.waiting))
        } else {
            None
        }
    }

    /// After a statement of `shape`: the lookups that queued meanwhile, for the next one,
    /// or `None` (the caller's place is given back, atomically with finding the queue
    /// empty, so that no lookup is left waiting; a shape with nothing running and nothing
    /// waiting is forgotten).
    #[must_use]
    pub fn next(&self, shape: &K) -> Option<Vec<Pending<I, A>>> {
        let mut queues = self.queues();
        let q = queues.get_mut(shape)?;
        if q.waiting.is_empty() {
            q.in_flight = q.in_flight.saturating_sub(1);
            if q.in_flight == 0 {
                queues.remove(shape);
            }
            None
        } else {
            Some(take(&mut q.waiting))
        }
    }

    /// Gives back a place without taking the queue: after a panic in the statement's
    /// runner (the lookups of that statement got no answer; the ones still waiting are
    /// taken by the next lookup of the shape that arrives).
    pub fn abandon(&self, shape: &K) {
        let mut queues = self.queues();
        if let Some(q) = queues.get_mut(shape) {
            q.in_flight = q.in_flight.saturating_sub(1);
            if q.in_flight == 0 && q.waiting.is_empty() {
                queues.remove(shape);
            }
        }
    }

    /// Shapes with lookups running or waiting.
    #[must_use]
    pub fn shapes(&self) -> usize {
        self.queues().len()
    }
}

/// The first [`MAX_BATCH`] waiting lookups.
fn take<T>(waiting: &mut Vec<T>) -> Vec<T> {
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
pub struct Place<'a, K: Eq + Hash + Clone, I, A> {
    batches: &'a Batches<K, I, A>,
    shape: K,
    held: bool,
}

impl<'a, K: Eq + Hash + Clone, I, A> Place<'a, K, I, A> {
    /// The place [`Batches::push`] gave.
    #[must_use]
    pub fn new(batches: &'a Batches<K, I, A>, shape: K) -> Self {
        Self {
            batches,
            shape,
            held: true,
        }
    }

    /// The next batch, or `None` with the place given back.
    #[must_use]
    pub fn take_next(&mut self) -> Option<Vec<Pending<I, A>>> {
        let next = self.batches.next(&self.shape);
        if next.is_none() {
            self.held = false;
        }
        next
    }
}

impl<K: Eq + Hash + Clone, I, A> Drop for Place<'_, K, I, A> {
    fn drop(&mut self) {
        if self.held {
            self.batches.abandon(&self.shape);
        }
    }
}

impl<K: Eq + Hash + Clone + std::fmt::Debug, I, A> std::fmt::Debug for Place<'_, K, I, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Place")
            .field("shape", &self.shape)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Ac = Batches<EntityType, Lookup, Vec<Hit>>;
    type AcPending = Pending<Lookup, Vec<Hit>>;

    fn lookup(q: &str) -> (AcPending, oneshot::Receiver<Reply<Vec<Hit>>>) {
        let (reply, rx) = oneshot::channel();
        (
            Pending {
                input: Lookup {
                    lucene: q.to_owned(),
                    limit: 10,
                },
                reply,
            },
            rx,
        )
    }

    fn names(batch: &[AcPending]) -> Vec<&str> {
        batch.iter().map(|l| l.input.lucene.as_str()).collect()
    }

    const ARTIST: &EntityType = &EntityType::Artist;

    #[test]
    fn lookups_queue_while_statements_run_and_the_next_statement_takes_them() {
        let b = Ac::new(2, None);
        let a = b.push(ARTIST, lookup("a*").0).expect("first runs");
        assert_eq!(names(&a), ["a*"]);
        let c = b.push(ARTIST, lookup("b*").0).expect("second runs");
        assert_eq!(names(&c), ["b*"]);
        // Two running: the next ones wait.
        assert!(b.push(ARTIST, lookup("c*").0).is_none());
        assert!(b.push(ARTIST, lookup("d*").0).is_none());
        // Another shape has its own queue.
        assert!(b.push(&EntityType::Label, lookup("e*").0).is_some());
        // The first runner takes both waiting lookups, then finds none and gives back its
        // place, so a new lookup runs at once.
        assert_eq!(names(&b.next(ARTIST).unwrap()), ["c*", "d*"]);
        assert!(b.next(ARTIST).is_none());
        assert!(b.push(ARTIST, lookup("f*").0).is_some());
    }

    #[test]
    fn a_statement_takes_at_most_max_batch_lookups() {
        let b = Ac::new(1, None);
        let _running = b.push(ARTIST, lookup("x*").0).unwrap();
        for i in 0..MAX_BATCH + 3 {
            assert!(b.push(ARTIST, lookup(&format!("{i}*")).0).is_none());
        }
        assert_eq!(b.next(ARTIST).unwrap().len(), MAX_BATCH);
        assert_eq!(b.next(ARTIST).unwrap().len(), 3);
        assert!(b.next(ARTIST).is_none());
    }

    #[test]
    fn a_dropped_place_is_given_back() {
        let b = Ac::new(1, None);
        let genre = EntityType::Genre;
        let _first = b.push(&genre, lookup("x*").0).unwrap();
        {
            let _place = Place::new(&b, genre);
            // A runner that panics drops its place without `next`.
        }
        let (waiting, _rx) = lookup("y*");
        assert!(b.push(&genre, waiting).is_some(), "the place is free again");
        let mut place = Place::new(&b, genre);
        assert!(place.take_next().is_none());
        drop(place);
        // Given back once, not twice: one runner may start, a second must wait.
        assert!(b.push(&genre, lookup("z*").0).is_some());
        assert!(b.push(&genre, lookup("w*").0).is_none());
    }

    #[test]
    fn idle_shapes_are_forgotten() {
        // Expand's shapes include the page (offset, limit): many of them over time, each
        // kept only while a statement of it runs.
        let b: Batches<(String, i64), i64, i64> = Batches::new(1, None);
        for offset in 0..100 {
            let shape = ("expand".to_owned(), offset);
            let (reply, _rx) = oneshot::channel();
            assert!(b.push(&shape, Pending { input: 1, reply }).is_some());
            let (reply, _rx) = oneshot::channel();
            assert!(b.push(&shape, Pending { input: 2, reply }).is_none());
            assert_eq!(b.shapes(), 1);
            assert_eq!(b.next(&shape).map(|v| v.len()), Some(1));
            assert!(b.next(&shape).is_none());
            assert_eq!(b.shapes(), 0, "offset {offset}");
        }
        let shape = ("expand".to_owned(), 0);
        let (reply, _rx) = oneshot::channel();
        let _running = b.push(&shape, Pending { input: 1, reply }).unwrap();
        b.abandon(&shape);
        assert_eq!(b.shapes(), 0, "abandoned with nothing waiting");
    }
}
