//! Publishing one dump file: scan with change detection, hand new and changed records to
//! the bus, and follow the broker's confirms to move the resume point and the hash store.
//!
//! ```text
//!  blocking thread                       async task
//!  ParallelReader (workers compare       Outlet::publish(record)  ─► broker
//!  hashes with the store's snapshot)     confirmed (batches, records) ◄─ confirms
//!  ─► changed records, in file order ─►  pending records (id, hash, offset, index)
//!     (bounded channel)                  confirmed prefix ─► state file (resume point)
//!                                                          ─► hash store (their hashes)
//! ```
//!
//! Order of the two writes on every confirm step: the state file first, then the hash
//! store. A crash between them leaves hashes unrecorded for records the broker has: they
//! are published once more next month (harmless, consumers are idempotent). The other
//! order could resume with batch numbers already used for other records.

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use discogs_model::wire::EncodedRecord;
use discogs_model::{RecordHash, RecordKind};

use super::hashstore::{HashStore, IdSet};
use super::progress::Progress;
use super::scan::{scan, Item, ScanOptions};
use super::state::{FileStatus, ResumePoint, VersionState};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// What the extractor needs from the message bus: batches numbered per file, confirms
/// reported as a count of confirmed batches and records, control messages.
pub trait Outlet: Send {
    /// Starts a file; batches are numbered from `resume.batches`, records counted from
    /// `resume.published`.
    ///
    /// # Errors
    ///
    /// When a file is already open.
    fn begin_file(
        &mut self,
        kind: RecordKind,
        version: &str,
        file: &str,
        resume: ResumePoint,
    ) -> anyhow::Result<()>;

    /// Adds a record to the current batch (sending full batches, waiting when too many
    /// are unconfirmed).
    fn publish(
        &mut self,
        record: &EncodedRecord,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Sends the partial batch and waits for every confirm.
    fn flush(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Flushes, then sends `file_complete` and waits for its confirm; closes the file.
    fn end_file(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Sends `ids` (records of the open file's kind that the dump no longer has) as
    /// `removed` messages and waits for their confirms, after the file's last batch and
    /// before [`end_file`](Self::end_file), which reports their count.
    fn removed(&mut self, ids: &[u64]) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// `(batches, records)` of the open file that the broker confirmed, all of them
    /// numbered below these (counting the resume point's). Only meaningful while a file
    /// is open.
    fn confirmed(&self) -> (u64, u64);

    /// Sends `extraction_complete` on every kind's exchange and waits for the confirms.
    fn extraction_complete(
        &mut self,
        version: &str,
        started_at: std::time::SystemTime,
        counts: [u64; 4],
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// How a file's publishing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOutcome {
    /// Every record read, every batch and `file_complete` confirmed.
    Done {
        /// Records in the file.
        records: u64,
        /// Records published by this run.
        published: u64,
        /// Ids in the hash store that the file no longer has.
        removed: u64,
    },
    /// Shutdown was asked for; the confirmed point is saved.
    Interrupted,
}

/// Settings of [`publish_file`].
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Parser workers.
    pub workers: usize,
    /// Publish every record, changed or not.
    pub force: bool,
    /// Save the resume point and hashes at most this often.
    pub checkpoint_every: Duration,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            workers: 2,
            force: false,
            checkpoint_every: Duration::from_secs(1),
        }
    }
}

/// Everything [`publish_file`] works with.
#[derive(Debug)]
pub struct FileJob<'a> {
    /// `DISCOGS_ROOT`: state file and removed-id lists go here.
    pub root: &'a Path,
    /// The file to read.
    pub path: &'a Path,
    /// Its kind.
    pub kind: RecordKind,
    /// The version's state (saved as publishing moves on).
    pub state: &'a mut VersionState,
    /// The hash store.
    pub store: &'a HashStore,
    /// Progress by bytes of the file.
    pub progress: &'a Progress,
    /// Counters.
    pub metrics: &'a Metrics,
    /// Stops publishing between records.
    pub shutdown: &'a Shutdown,
}

struct Pending {
    id: u64,
    hash: RecordHash,
    offset: u64,
    /// 0-based position of the record in the file.
    index: u64,
}

enum Msg {
    Changed {
        record: EncodedRecord,
        offset: u64,
        index: u64,
    },
    Done {
        seen: IdSet,
        records: u64,
        errors: u64,
    },
    Failed(anyhow::Error),
}

/// Publishes one file, resuming after its last confirmed batch.
///
/// # Errors
///
/// When the file cannot be read to its end (a truncated or corrupt file, too many bad
/// records), the bus fails for good, or the state or the hash store cannot be written.
/// What was confirmed before the error is saved.
pub async fn publish_file<O: Outlet>(
    job: FileJob<'_>,
    outlet: &mut O,
    options: &PublishOptions,
) -> anyhow::Result<FileOutcome> {
    let FileJob {
        root,
        path,
        kind,
        state,
        store,
        progress,
        metrics,
        shutdown,
    } = job;
    let file = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let version = state.version.clone();
    let resume = {
        let f = state.file_mut(kind, &file);
        f.status = FileStatus::Running;
        f.resume
    };
    state.save(root)?;
    if resume.batches > 0 || resume.offset.is_some() {
        tracing::info!(
            %file,
            batches = resume.batches,
            published = resume.published,
            records_read = resume.records_read,
            offset = resume.offset,
            "▶️ Resuming after the last confirmed batch (not from record 0)."
        );
    } else {
        tracing::info!(%file, "🚀 Publishing from the start.");
    }
    outlet.begin_file(kind, &version, &file, resume)?;

    let total = std::fs::metadata(path).map_or(0, |m| m.len());
    progress.start("publish", &file, 0, total);
    let started = Instant::now();
    // 1,024 changed records in flight between the threads: a few MB of releases.
    let (tx, rx) = tokio::sync::mpsc::channel::<Msg>(1024);
    let stop = Arc::new(AtomicBool::new(false));
    let labels = [("kind", kind.plural())];
    let read_total = metrics.counter(
        "records_read_total",
        "Records read from dump files.",
        &labels,
    );
    let handle = spawn_reader(
        path.to_owned(),
        store.clone(),
        kind,
        options,
        resume,
        tx,
        progress.clone(),
        read_total,
        stop.clone(),
    );
    let mut reader = Reader {
        rx: Some(rx),
        stop,
        handle: Some(handle),
    };

    let published_total = metrics.counter(
        "records_published_total",
        "Records published (new or changed).",
        &labels,
    );
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut confirmed_seen = resume.published;
    let mut next_published = resume.published;
    let mut point = resume;
    let mut to_record: Vec<(u64, RecordHash)> = Vec::new();
    let mut last_checkpoint = Instant::now();
    let mut background = Background::default();
    let mut interrupted = false;

    let end = loop {
        let msg = tokio::select! {
            biased;
            () = shutdown.requested() => { interrupted = true; break None; }
            msg = reader.recv() => msg,
        };
        match msg {
            Some(Msg::Changed {
                record,
                offset,
                index,
            }) => {
                let (id, hash) = (record.id(), record.hash());
                outlet
                    .publish(&record)
                    .await
                    .with_context(|| format!("publishing {kind} {id} of {file}"))?;
                published_total.inc();
                pending.push_back(Pending {
                    id,
                    hash,
                    offset,
                    index,
                });
                next_published += 1;
                let (_, records) = outlet.confirmed();
                if records > confirmed_seen {
                    confirmed_seen = records;
                    take_confirmed(
                        &mut pending,
                        &mut point,
                        &mut to_record,
                        outlet.confirmed(),
                        next_published,
                    );
                    if last_checkpoint.elapsed() >= options.checkpoint_every
                        && background.is_idle()?
                    {
                        // Off the publishing path: the next checkpoint waits for this one.
                        state.file_mut(kind, &file).resume = point;
                        let entries = std::mem::take(&mut to_record);
                        background.start(root, state.clone(), kind, store.clone(), entries);
                        last_checkpoint = Instant::now();
                    }
                }
            }
            Some(Msg::Done {
                seen,
                records,
                errors,
            }) => break Some((seen, records, errors)),
            Some(Msg::Failed(e)) => {
                // Save what the broker has before giving up.
                drop(outlet.flush().await);
                take_confirmed(
                    &mut pending,
                    &mut point,
                    &mut to_record,
                    outlet.confirmed(),
                    next_published,
                );
                background.wait().await?;
                checkpoint(root, state, kind, &file, point, store, &mut to_record).await?;
                return Err(e);
            }
            None => anyhow::bail!("the reading thread of {file} stopped without a word"),
        }
    };

    let Some((seen, records, errors)) = end else {
        // Shutdown: confirm what is in hand, save the point, leave the rest for the next run.
        drop(reader);
        let flushed = tokio::time::timeout(Duration::from_secs(30), outlet.flush()).await;
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::warn!(%file, "Unconfirmed batches abandoned at shutdown; they will be published again.");
        }
        take_confirmed(
            &mut pending,
            &mut point,
            &mut to_record,
            outlet.confirmed(),
            next_published,
        );
        background.wait().await?;
        checkpoint(root, state, kind, &file, point, store, &mut to_record).await?;
        tracing::info!(%file, batches = point.batches, records_read = point.records_read, "🛑 Stopped; the resume point is saved.");
        progress.finish();
        debug_assert!(interrupted);
        return Ok(FileOutcome::Interrupted);
    };
    drop(reader);

    outlet
        .flush()
        .await
        .with_context(|| format!("confirming the last batches of {file}"))?;
    take_confirmed(
        &mut pending,
        &mut point,
        &mut to_record,
        outlet.confirmed(),
        next_published,
    );
    anyhow::ensure!(
        pending.is_empty(),
        "{file}: {} records unconfirmed after a flush",
        pending.len()
    );
    point.records_read = records;
    background.wait().await?;
    checkpoint(root, state, kind, &file, point, store, &mut to_record).await?;

    // Removed ids: listed on disk first, then sent, then forgotten by the store, so that a
    // crash anywhere in between sends them again on restart (the list is the source once
    // the store has forgotten them; sending twice is harmless).
    let list = removed_list_path(root, &version, kind);
    let mut removed = read_removed_list(&list)?;
    removed.retain(|id| !seen.contains(*id));
    removed.extend(store.ids_not_in(kind, &seen)?);
    removed.sort_unstable();
    removed.dedup();
    if !removed.is_empty() {
        let text: String = removed.iter().map(|id| format!("{id}\n")).collect();
        super::state::write_atomically(&list, text.as_bytes())?;
        tracing::info!(%file, removed = removed.len(), list = %list.display(), "🗑️ Ids no longer in the dump: listed, and sent to the consumers as `removed`.");
    }
    outlet
        .removed(&removed)
        .await
        .with_context(|| format!("sending the ids removed from {file}"))?;
    outlet
        .end_file()
        .await
        .with_context(|| format!("completing {file}"))?;
    if !removed.is_empty() {
        store.remove(kind, &removed)?;
    }
    let published = next_published - resume.published;
    let f = state.file_mut(kind, &file);
    f.status = FileStatus::Done;
    f.records = Some(records);
    f.published = Some(next_published);
    f.removed = Some(removed.len() as u64);
    f.completed_at = Some(crate::health::rfc3339(std::time::SystemTime::now()));
    state.save(root)?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let per_second = (records.saturating_sub(resume.records_read) as f64 / secs.max(1e-9)).round();
    tracing::info!(%file, records, published = next_published, published_this_run = published, errors, removed = removed.len(), seconds = format!("{secs:.2}"), records_per_second = per_second, "✅ File complete.");
    Ok(FileOutcome::Done {
        records,
        published,
        removed: removed.len() as u64,
    })
}

/// `DISCOGS_ROOT/removed_<version>_<kinds>.ids`: the ids a version's file of `kind` no
/// longer has, one per line.
#[must_use]
pub fn removed_list_path(root: &Path, version: &str, kind: RecordKind) -> PathBuf {
    root.join(format!("removed_{version}_{}.ids", kind.plural()))
}

/// The ids of a removed-id list; empty when there is none.
///
/// # Errors
///
/// When the file exists but cannot be read or holds something else than ids.
pub fn read_removed_list(path: &Path) -> anyhow::Result<Vec<u64>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse()
                .with_context(|| format!("{}: {l:?} is not an id", path.display()))
        })
        .collect()
}

/// Moves the confirmed prefix of `pending` into `to_record` and `point`. `pending[i]`
/// carries the published number `next_published - pending.len() + i`; the broker has
/// confirmed every number below `records`.
fn take_confirmed(
    pending: &mut VecDeque<Pending>,
    point: &mut ResumePoint,
    to_record: &mut Vec<(u64, RecordHash)>,
    (batches, records): (u64, u64),
    next_published: u64,
) {
    let mut number = next_published - pending.len() as u64;
    while number < records {
        let Some(p) = pending.pop_front() else { break };
        to_record.push((p.id, p.hash));
        point.offset = Some(p.offset);
        point.records_read = p.index + 1;
        number += 1;
    }
    if records > point.published {
        point.published = records;
        point.batches = batches;
    }
}

/// At most one checkpoint running on its own thread while publishing goes on. Dropping
/// it waits for the thread, so no thread holds the hash store after `publish_file`.
#[derive(Default)]
struct Background(Option<std::thread::JoinHandle<anyhow::Result<()>>>);

impl Background {
    /// Whether no checkpoint is running (the error of a finished one comes out here).
    fn is_idle(&mut self) -> anyhow::Result<bool> {
        match &self.0 {
            Some(h) if !h.is_finished() => Ok(false),
            _ => self.join().map(|()| true),
        }
    }

    fn join(&mut self) -> anyhow::Result<()> {
        match self.0.take() {
            Some(h) => h
                .join()
                .map_err(|_| anyhow::anyhow!("the checkpoint thread panicked"))?,
            None => Ok(()),
        }
    }

    fn start(
        &mut self,
        root: &Path,
        mut state: VersionState,
        kind: RecordKind,
        store: HashStore,
        entries: Vec<(u64, RecordHash)>,
    ) {
        let root = root.to_owned();
        self.0 = Some(std::thread::spawn(move || {
            state.save(&root)?;
            if !entries.is_empty() {
                store.record(kind, &entries)?;
            }
            Ok(())
        }));
    }

    async fn wait(&mut self) -> anyhow::Result<()> {
        match self.0.take() {
            Some(h) => tokio::task::spawn_blocking(move || {
                h.join()
                    .map_err(|_| anyhow::anyhow!("the checkpoint thread panicked"))?
            })
            .await
            .context("checkpoint thread")?,
            None => Ok(()),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Err(e) = self.join() {
            tracing::warn!(error = %format!("{e:#}"), "Checkpoint failed while stopping.");
        }
    }
}

/// Saves the resume point (state file), then records the confirmed hashes.
async fn checkpoint(
    root: &Path,
    state: &mut VersionState,
    kind: RecordKind,
    file: &str,
    point: ResumePoint,
    store: &HashStore,
    to_record: &mut Vec<(u64, RecordHash)>,
) -> anyhow::Result<()> {
    state.file_mut(kind, file).resume = point;
    state.save(root)?;
    if !to_record.is_empty() {
        let entries = std::mem::take(to_record);
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.record(kind, &entries))
            .await
            .context("hash store thread")??;
    }
    Ok(())
}

/// The reading thread and its channel. Dropping it stops the thread and waits for it,
/// so no thread keeps the hash store open after `publish_file` returns, whichever way.
struct Reader {
    rx: Option<tokio::sync::mpsc::Receiver<Msg>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Reader {
    async fn recv(&mut self) -> Option<Msg> {
        self.rx.as_mut()?.recv().await
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.rx.take()); // unblocks a thread waiting to send
        if let Some(h) = self.handle.take() {
            drop(h.join());
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_reader(
    path: PathBuf,
    store: HashStore,
    kind: RecordKind,
    options: &PublishOptions,
    resume: ResumePoint,
    tx: tokio::sync::mpsc::Sender<Msg>,
    progress: Progress,
    read_total: crate::metrics::Counter,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let scan_options = ScanOptions {
        workers: options.workers,
        force: options.force,
        resume_after: resume.offset,
    };
    std::thread::Builder::new()
        .name("extractor-read".into())
        .spawn(move || {
            let result = (|| -> anyhow::Result<Option<Msg>> {
                let snapshot = store.snapshot(kind)?;
                let mut reader = scan(&path, snapshot, scan_options)?;
                let mut seen = IdSet::default();
                let mut index = 0u64;
                let mut errors = 0u64;
                while let Some(item) = reader.next() {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(None);
                    }
                    match item {
                        Ok(Ok(item)) => {
                            seen.insert(item.id());
                            if let Item::Changed { record, offset } = item {
                                let msg = Msg::Changed {
                                    record,
                                    offset,
                                    index,
                                };
                                if tx.blocking_send(msg).is_err() {
                                    return Ok(None); // the publisher stopped
                                }
                            }
                            index += 1;
                        }
                        Ok(Err(lookup)) => anyhow::bail!(lookup),
                        Err(e) if e.is_record_error() => {
                            errors += 1;
                            index += 1;
                            tracing::warn!(error = %e, "Malformed record skipped.");
                        }
                        Err(e) => {
                            return Err(e).with_context(|| format!("reading {}", path.display()))
                        }
                    }
                    read_total.inc();
                    if index.is_multiple_of(4096) {
                        progress.set_done(reader.progress().input_bytes);
                    }
                }
                progress.set_done(reader.progress().input_bytes);
                Ok(Some(Msg::Done {
                    seen,
                    records: index,
                    errors,
                }))
            })();
            let msg = match result {
                Ok(Some(msg)) => msg,
                Ok(None) => return,
                Err(e) => Msg::Failed(e),
            };
            drop(tx.blocking_send(msg));
        })
        .expect("spawning the reading thread")
}
