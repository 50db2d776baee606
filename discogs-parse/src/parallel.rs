//! Parallel parsing: one thread reads, decompresses and splits the stream into chunks of
//! whole records; worker threads parse and hash them and apply the caller's function;
//! the caller receives the results in the original record order. All queues are
//! bounded, so memory stays flat whatever the file size.

use std::any::Any;
use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::error::{Error, RecordError};
use crate::reader::{note_repair, DumpReader, Input, ParsedRecord, Progress, RecordParser};
use crate::split::Splitter;

/// Target size of the chunks of records handed to workers.
const CHUNK_BYTES: usize = 512 * 1024;

struct Chunk {
    data: Vec<u8>,
    spans: Vec<(u64, Range<usize>)>,
}

enum Output<T> {
    Records {
        items: Vec<Result<T, RecordError>>,
        repaired: u64,
    },
    End(Option<Error>),
    Panic(Box<dyn Any + Send>),
}

/// Progress counters shared with the reading thread.
#[derive(Debug, Default)]
struct Shared {
    xml_bytes: AtomicU64,
    records: AtomicU64,
}

/// Parses a dump on several threads and yields `f(record)` for every record, in order.
///
/// Built from a [`DumpReader`]; `f` runs on the worker threads, so put per-record work
/// there (serialising, comparing hashes) to spread it over the cores. Record errors and
/// the final error come out in stream order, as with the sequential reader.
///
/// ```no_run
/// use discogs_parse::{DumpReader, ParallelReader};
///
/// let reader = DumpReader::open("discogs_20260101_releases.xml.gz")?;
/// let ids = ParallelReader::new(reader, 2, |parsed| (parsed.record.id(), parsed.hash));
/// for item in ids {
///     let (id, hash) = item?;
///     println!("{id} {hash}");
/// }
/// # Ok::<(), discogs_parse::Error>(())
/// ```
pub struct ParallelReader<T> {
    results: Option<Receiver<(u64, Output<T>)>>,
    pending: BTreeMap<u64, Output<T>>,
    next_seq: u64,
    current: std::vec::IntoIter<Result<T, RecordError>>,
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    input_bytes: Arc<AtomicU64>,
    file: Arc<str>,
    max_errors: Option<u64>,
    errors: u64,
    repaired: u64,
    done: bool,
}

impl<T> std::fmt::Debug for ParallelReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelReader")
            .field("file", &self.file)
            .field("progress", &self.progress())
            .finish()
    }
}

impl<T: Send + 'static> ParallelReader<T> {
    /// Starts one reading thread and `workers` parsing threads (at least one).
    ///
    /// # Panics
    ///
    /// When a thread cannot be spawned. A panic in `f` is resumed on the thread that
    /// iterates.
    pub fn new<F>(reader: DumpReader, workers: usize, f: F) -> Self
    where
        F: Fn(ParsedRecord<'_>) -> T + Send + Sync + 'static,
    {
        let workers = workers.max(1);
        let (splitter, options, input_bytes) = reader.into_parts();
        let kind = splitter.kind();
        let file = splitter.file().clone();
        let (job_tx, job_rx) = bounded::<(u64, Chunk)>(workers * 2);
        let (out_tx, out_rx) = bounded::<(u64, Output<T>)>(workers * 2);
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let f = Arc::new(f);
        let mut threads = Vec::with_capacity(workers + 1);
        for n in 0..workers {
            let (job_rx, out_tx, f, file) =
                (job_rx.clone(), out_tx.clone(), f.clone(), file.clone());
            let thread = std::thread::Builder::new()
                .name(format!("discogs-parse-{n}"))
                .spawn(move || work(&job_rx, &out_tx, &mut RecordParser::new(kind, file), &*f))
                .expect("spawning a parser thread");
            threads.push(thread);
        }
        drop(job_rx);
        let (stop2, shared2) = (stop.clone(), shared.clone());
        let thread = std::thread::Builder::new()
            .name("discogs-read".into())
            .spawn(move || read(splitter, &job_tx, &out_tx, &stop2, &shared2))
            .expect("spawning the reader thread");
        threads.push(thread);
        Self {
            results: Some(out_rx),
            pending: BTreeMap::new(),
            next_seq: 0,
            current: Vec::new().into_iter(),
            threads,
            stop,
            shared,
            input_bytes,
            file,
            max_errors: options.max_errors,
            errors: 0,
            repaired: 0,
            done: false,
        }
    }
}

impl<T> ParallelReader<T> {
    /// How far reading has got (records counts those split off, some still in flight).
    #[must_use]
    pub fn progress(&self) -> Progress {
        Progress {
            input_bytes: self.input_bytes.load(Ordering::Relaxed),
            xml_bytes: self.shared.xml_bytes.load(Ordering::Relaxed),
            records: self.shared.records.load(Ordering::Relaxed),
            errors: self.errors,
            repaired: self.repaired,
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.current = Vec::new().into_iter();
        self.stop.store(true, Ordering::Relaxed);
        self.results = None;
        self.pending.clear();
        for t in self.threads.drain(..) {
            // A worker that panicked already reported it through the channel.
            let _joined = t.join();
        }
    }
}

fn read<T>(
    mut splitter: Splitter<Input>,
    jobs: &Sender<(u64, Chunk)>,
    out: &Sender<(u64, Output<T>)>,
    stop: &AtomicBool,
    shared: &Shared,
) {
    let mut seq = 0u64;
    loop {
        let mut chunk = Chunk {
            data: Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4),
            spans: Vec::new(),
        };
        let end = loop {
            match splitter.next_span() {
                Ok(Some(span)) => {
                    let bytes = splitter.bytes(&span);
                    let at = chunk.data.len();
                    chunk.data.extend_from_slice(bytes);
                    chunk.spans.push((span.offset, at..at + bytes.len()));
                    if chunk.data.len() >= CHUNK_BYTES {
                        break None;
                    }
                }
                Ok(None) => break Some(None),
                Err(e) => break Some(Some(e)),
            }
        };
        shared.xml_bytes.store(splitter.offset(), Ordering::Relaxed);
        shared.records.store(splitter.records, Ordering::Relaxed);
        if !chunk.spans.is_empty() {
            if jobs.send((seq, chunk)).is_err() {
                return;
            }
            seq += 1;
        }
        if let Some(end) = end {
            // Sent straight to the results: its sequence number puts it after all chunks.
            let _sent = out.send((seq, Output::End(end)));
            return;
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
    }
}

fn work<T, F>(
    jobs: &Receiver<(u64, Chunk)>,
    out: &Sender<(u64, Output<T>)>,
    parser: &mut RecordParser,
    f: &F,
) where
    F: Fn(ParsedRecord<'_>) -> T,
{
    for (seq, chunk) in jobs {
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            let before = parser.repaired;
            let items = chunk
                .spans
                .iter()
                .map(|(offset, range)| parser.parse(&chunk.data[range.clone()], *offset).map(f))
                .collect();
            Output::Records {
                items,
                repaired: parser.repaired - before,
            }
        }));
        let output = result.unwrap_or_else(Output::Panic);
        let stop = matches!(output, Output::Panic(_));
        if out.send((seq, output)).is_err() || stop {
            return;
        }
    }
}

impl<T> Iterator for ParallelReader<T> {
    type Item = Result<T, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(match item {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        self.errors += 1;
                        match self.max_errors {
                            Some(limit) if self.errors > limit => {
                                let error = Error::TooManyErrors {
                                    file: self.file.clone(),
                                    errors: self.errors,
                                    limit,
                                };
                                self.finish();
                                Err(error)
                            }
                            _ => Err(Error::Record(e)),
                        }
                    }
                });
            }
            if self.done {
                return None;
            }
            let output = loop {
                if let Some(o) = self.pending.remove(&self.next_seq) {
                    break o;
                }
                let received = self.results.as_ref().and_then(|r| r.recv().ok());
                match received {
                    Some((seq, o)) => {
                        self.pending.insert(seq, o);
                    }
                    None => {
                        self.finish();
                        return None;
                    }
                }
            };
            self.next_seq += 1;
            match output {
                Output::Records { items, repaired } => {
                    if repaired > 0 {
                        self.repaired += repaired;
                        note_repair(&self.file, 0, self.repaired);
                    }
                    self.current = items.into_iter();
                }
                Output::End(end) => {
                    self.finish();
                    return end.map(Err);
                }
                Output::Panic(payload) => {
                    self.finish();
                    panic::resume_unwind(payload);
                }
            }
        }
    }
}

impl<T> Drop for ParallelReader<T> {
    fn drop(&mut self) {
        self.finish();
    }
}
