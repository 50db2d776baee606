//! The extractor's [`Outlet`] over `discogs-bus`: any [`discogs_bus::Publisher`]
//! (RabbitMQ with pipelined confirms, or the in-process bus).

use std::time::SystemTime;

use discogs_bus::{FileRef, Publisher, Resume};
use discogs_model::wire::{EncodedRecord, ExtractionComplete, RecordCounts};
use discogs_model::RecordKind;

use super::publish::Outlet;
use super::state::ResumePoint;

/// A bus publisher as the extractor's outlet.
#[derive(Debug)]
pub struct BusOutlet<P>(pub P);

impl<P: Publisher> Outlet for BusOutlet<P> {
    fn begin_file(
        &mut self,
        kind: RecordKind,
        version: &str,
        file: &str,
        resume: ResumePoint,
    ) -> anyhow::Result<()> {
        let resume = Resume {
            batches: resume.batches,
            records: resume.published,
        };
        Ok(self
            .0
            .begin_file(FileRef::new(kind, version, file), resume)?)
    }

    async fn publish(&mut self, record: &EncodedRecord) -> anyhow::Result<()> {
        Ok(self.0.publish_encoded(record).await?)
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        Ok(self.0.flush().await?)
    }

    async fn end_file(&mut self) -> anyhow::Result<()> {
        self.0.end_file().await?;
        Ok(())
    }

    async fn removed(&mut self, ids: &[u64]) -> anyhow::Result<()> {
        Ok(self.0.removed(ids).await?)
    }

    fn confirmed(&self) -> (u64, u64) {
        self.0
            .progress()
            .map_or((0, 0), |p| (p.confirmed_batches, p.confirmed_records))
    }

    async fn extraction_complete(
        &mut self,
        version: &str,
        started_at: SystemTime,
        counts: [u64; 4],
    ) -> anyhow::Result<()> {
        let [artists, labels, masters, releases] = counts;
        let message = ExtractionComplete {
            version: version.into(),
            started_at,
            record_counts: RecordCounts {
                artists,
                labels,
                masters,
                releases,
            },
        };
        Ok(self.0.extraction_complete(&message).await?)
    }
}
