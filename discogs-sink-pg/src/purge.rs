//! Purge: after a complete extraction, delete the rows whose ids it did not carry.
//!
//! # How ids are remembered, cheaply
//!
//! While an extraction is set ([`PgSink::set_extraction`]), every written batch adds **one
//! row** to the unlogged table `extraction_ids`: the extraction, the kind, and the batch's
//! ids as a `BIGINT[]`. An unchanged record costs nothing more than its 8 bytes in that
//! array; its table row is never touched to mark it "seen". [`PgSink::purge`] collects the
//! distinct ids of the extraction into a temporary table, counts the rows of the kind's
//! table not among them, checks the guards, deletes those rows with one anti-join, and
//! drops the extraction's id rows, all in one transaction.
//!
//! # Guards
//!
//! The purge is refused, with a `WARN` event naming the reason, when:
//! * the run dead-lettered messages of that kind ([`PurgeRefusal::DeadLettered`]);
//! * the extractor reported zero records of that kind ([`PurgeRefusal::NothingExtracted`]);
//! * fewer distinct ids were recorded than the extractor reported records: some batches
//!   are not written yet, or the unlogged table was emptied by a crash
//!   ([`PurgeRefusal::Incomplete`]);
//! * it would delete more than [`crate::PgSinkConfig::max_purge_fraction`] of the table
//!   ([`PurgeRefusal::TooLarge`]).

use std::fmt;

use discogs_model::RecordKind;

use crate::schema::table;
use crate::{PgSink, PgSinkError};

/// What the run that ended knows about one kind, from its `extraction_complete` message
/// and the consumer's own counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeRequest<'a> {
    /// The extraction (dump version) given to [`PgSink::set_extraction`].
    pub extraction: &'a str,
    /// The kind to purge.
    pub kind: RecordKind,
    /// Records of this kind the extractor reported (`extraction_complete.record_counts`).
    pub reported_records: u64,
    /// Messages of this kind that the run dead-lettered.
    pub dead_lettered: u64,
}

/// Why a purge was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum PurgeRefusal {
    /// The run dead-lettered messages of this kind: their ids are missing.
    DeadLettered {
        /// How many messages.
        messages: u64,
    },
    /// The extractor reported no records of this kind.
    NothingExtracted,
    /// Fewer distinct ids were recorded than records reported.
    Incomplete {
        /// Distinct ids recorded for the extraction.
        recorded: u64,
        /// Records the extractor reported.
        reported: u64,
    },
    /// The purge would delete more than the allowed fraction of the table.
    TooLarge {
        /// Rows that would be deleted.
        would_delete: u64,
        /// Rows in the table.
        rows: u64,
        /// The allowed fraction.
        max_fraction: f64,
    },
}

impl fmt::Display for PurgeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DeadLettered { messages } => {
                write!(f, "the run dead-lettered {messages} messages of this kind")
            }
            Self::NothingExtracted => f.write_str("the extractor reported zero records"),
            Self::Incomplete { recorded, reported } => write!(
                f,
                "only {recorded} distinct ids were written of {reported} records reported"
            ),
            Self::TooLarge { would_delete, rows, max_fraction } => write!(
                f,
                "it would delete {would_delete} of {rows} rows, more than the allowed fraction {max_fraction}"
            ),
        }
    }
}

/// What [`PgSink::purge`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum PurgeOutcome {
    /// Rows not in the extraction were deleted.
    Purged {
        /// How many.
        deleted: u64,
    },
    /// Nothing was deleted, for this reason (also logged at `WARN`).
    Refused(PurgeRefusal),
}

impl PgSink {
    /// Deletes the rows of `request.kind` whose ids the extraction did not carry, unless a
    /// guard refuses (see the [module documentation](crate::purge)).
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or a statement fails; a refusal is not an error.
    pub async fn purge(&mut self, request: PurgeRequest<'_>) -> Result<PurgeOutcome, PgSinkError> {
        let PurgeRequest {
            extraction,
            kind,
            reported_records,
            dead_lettered,
        } = request;
        let refuse = |reason: PurgeRefusal| {
            tracing::warn!(kind = %kind, extraction, %reason, "Purge refused.");
            Ok(PurgeOutcome::Refused(reason))
        };
        if dead_lettered > 0 {
            return refuse(PurgeRefusal::DeadLettered {
                messages: dead_lettered,
            });
        }
        if reported_records == 0 {
            return refuse(PurgeRefusal::NothingExtracted);
        }
        self.connect().await?;
        let max_fraction = self.config.max_purge_fraction;
        let schema = self.config.schema.clone();
        let t = table(kind);
        let pg = PgSinkError::pg;
        let tx = self.clients[0]
            .transaction()
            .await
            .map_err(pg("starting the purge"))?;
        tx.execute(
            &format!(
                "CREATE TEMP TABLE purge_seen ON COMMIT DROP AS
                 SELECT DISTINCT unnest(ids) AS id FROM \"{schema}\".extraction_ids
                 WHERE extraction = $1 AND kind = $2"
            ),
            &[&extraction, &kind.plural()],
        )
        .await
        .map_err(pg("collecting the extraction's ids"))?;
        tx.batch_execute("ANALYZE purge_seen")
            .await
            .map_err(pg("analyzing ids"))?;
        let row = tx
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM purge_seen),
                            (SELECT count(*) FROM \"{schema}\".{t}),
                            (SELECT count(*) FROM \"{schema}\".{t} x
                             WHERE NOT EXISTS (SELECT 1 FROM purge_seen s WHERE s.id = x.id))"
                ),
                &[],
            )
            .await
            .map_err(pg("counting rows to purge"))?;
        let count = |i: usize| row.get::<_, i64>(i).unsigned_abs();
        let (recorded, rows, would_delete) = (count(0), count(1), count(2));
        if recorded < reported_records {
            return refuse(PurgeRefusal::Incomplete {
                recorded,
                reported: reported_records,
            });
        }
        #[allow(clippy::cast_precision_loss)]
        if would_delete as f64 > max_fraction * rows as f64 {
            return refuse(PurgeRefusal::TooLarge {
                would_delete,
                rows,
                max_fraction,
            });
        }
        let deleted = tx
            .execute(
                &format!(
                    "DELETE FROM \"{schema}\".{t} x
                     WHERE NOT EXISTS (SELECT 1 FROM purge_seen s WHERE s.id = x.id)"
                ),
                &[],
            )
            .await
            .map_err(pg("deleting stale rows"))?;
        tx.execute(
            &format!("DELETE FROM \"{schema}\".extraction_ids WHERE extraction = $1 AND kind = $2"),
            &[&extraction, &kind.plural()],
        )
        .await
        .map_err(pg("forgetting the extraction's ids"))?;
        tx.commit().await.map_err(pg("committing the purge"))?;
        tracing::info!(kind = %kind, extraction, deleted, rows, "Purged rows not in the extraction.");
        Ok(PurgeOutcome::Purged { deleted })
    }

    /// Deletes the rows of `kind` with these ids (records removed from Discogs, as the
    /// extractor's `removed` messages list them), in one transaction; ids without a row
    /// are ignored, so deleting again is harmless. Returns how many rows were deleted.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the statement fails; nothing is deleted then.
    pub async fn delete_ids(&mut self, kind: RecordKind, ids: &[u64]) -> Result<u64, PgSinkError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = ids
            .iter()
            .map(|&id| i64::try_from(id).map_err(|_| PgSinkError::IdOutOfRange(id)))
            .collect::<Result<_, _>>()?;
        self.connect().await?;
        let schema = &self.config.schema;
        let t = table(kind);
        let deleted = self.clients[0]
            .execute(
                &format!("DELETE FROM \"{schema}\".{t} WHERE id = ANY($1)"),
                &[&ids],
            )
            .await
            .map_err(PgSinkError::pg("deleting removed records"))?;
        tracing::debug!(kind = %kind, ids = ids.len(), deleted, "Removed records deleted.");
        Ok(deleted)
    }
}
