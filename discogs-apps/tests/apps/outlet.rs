//! A recording [`Outlet`] (test double in the manner of ripgrep's `KitchenSink`): batches
//! records like the bus does, confirms all but the newest `lag` batches, can fail like a
//! lost broker after a number of records, and keeps everything it was given.

use std::time::SystemTime;

use discogs_apps::extractor::publish::Outlet;
use discogs_apps::extractor::state::ResumePoint;
use discogs_model::wire::EncodedRecord;
use discogs_model::{RecordHash, RecordKind};

/// One batch as sent.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    #[allow(dead_code)]
    pub(crate) file: String,
    pub(crate) seq: u64,
    pub(crate) records: Vec<(u64, RecordHash)>,
}

#[derive(Debug, Default)]
pub(crate) struct RecordingOutlet {
    pub(crate) batch_size: usize,
    /// Newest batches left unconfirmed until a flush.
    pub(crate) lag: usize,
    /// Fail every publish once this many records were accepted (a lost broker).
    pub(crate) fail_after: Option<u64>,
    /// Ask for shutdown once this many records were accepted (SIGTERM mid-file).
    pub(crate) shutdown_after: Option<(u64, discogs_apps::shutdown::Shutdown)>,
    pub(crate) sent: Vec<Sent>,
    pub(crate) file_complete: Vec<(String, u64, u64)>,
    /// Ids sent as removed, per file.
    pub(crate) removed: Vec<(String, Vec<u64>)>,
    pub(crate) extraction_complete: Vec<(String, [u64; 4])>,
    pub(crate) begun: Vec<(String, ResumePoint)>,
    file: Option<String>,
    open: Vec<(u64, RecordHash)>,
    next_seq: u64,
    records_base: u64,
    accepted: u64,
    unconfirmed: usize,
}

impl RecordingOutlet {
    pub(crate) fn new(batch_size: usize, lag: usize) -> Self {
        Self {
            batch_size,
            lag,
            ..Self::default()
        }
    }

    fn send(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.open);
        self.sent.push(Sent {
            file: self.file.clone().unwrap_or_default(),
            seq: self.next_seq,
            records,
        });
        self.next_seq += 1;
        self.unconfirmed += 1;
    }

    /// Records published, over all runs, in order.
    pub(crate) fn published_ids(&self) -> Vec<u64> {
        self.sent
            .iter()
            .flat_map(|b| b.records.iter().map(|r| r.0))
            .collect()
    }
}

impl Outlet for RecordingOutlet {
    fn begin_file(
        &mut self,
        _kind: RecordKind,
        _version: &str,
        file: &str,
        resume: ResumePoint,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(self.file.is_none(), "a file is open");
        self.file = Some(file.to_owned());
        self.next_seq = resume.batches;
        self.records_base = resume.published;
        self.accepted = 0;
        self.unconfirmed = 0;
        self.begun.push((file.to_owned(), resume));
        Ok(())
    }

    async fn publish(&mut self, record: &EncodedRecord) -> anyhow::Result<()> {
        if self.fail_after.is_some_and(|n| self.accepted >= n) {
            anyhow::bail!("broker connection lost (test)");
        }
        // What a consumer would read back: the record and the hash it travels with.
        let decoded = record.decode()?;
        anyhow::ensure!(decoded.record.id() == record.id() && decoded.hash == record.hash());
        self.open.push((record.id(), record.hash()));
        self.accepted += 1;
        if let Some((n, shutdown)) = &self.shutdown_after {
            if self.accepted == *n {
                shutdown.trigger();
            }
        }
        if self.open.len() >= self.batch_size {
            self.send();
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        self.send();
        self.unconfirmed = 0;
        Ok(())
    }

    async fn end_file(&mut self) -> anyhow::Result<()> {
        self.flush().await?;
        let file = self.file.take().unwrap_or_default();
        self.file_complete
            .push((file, self.next_seq, self.records_base + self.accepted));
        Ok(())
    }

    async fn removed(&mut self, ids: &[u64]) -> anyhow::Result<()> {
        self.flush().await?;
        if !ids.is_empty() {
            let file = self.file.clone().unwrap_or_default();
            self.removed.push((file, ids.to_vec()));
        }
        Ok(())
    }

    fn confirmed(&self) -> (u64, u64) {
        let confirmed_batches = self.next_seq - self.unconfirmed.min(self.lag) as u64;
        let unconfirmed_records: usize = self
            .sent
            .iter()
            .rev()
            .take(self.unconfirmed.min(self.lag))
            .map(|b| b.records.len())
            .sum::<usize>()
            + self.open.len();
        (
            confirmed_batches,
            self.records_base + self.accepted - unconfirmed_records as u64,
        )
    }

    async fn extraction_complete(
        &mut self,
        version: &str,
        _started_at: SystemTime,
        counts: [u64; 4],
    ) -> anyhow::Result<()> {
        self.extraction_complete.push((version.to_owned(), counts));
        Ok(())
    }
}
