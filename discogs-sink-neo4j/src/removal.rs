//! Removal of records that a dump no longer has ([`Neo4jSink::remove_records`]).

use discogs_model::RecordKind;
use neo4rs::{query, BoltInteger, BoltList, BoltType};

use crate::plan::int;
use crate::{Neo4jSink, Neo4jSinkError};

/// What [`Neo4jSink::remove_records`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemovalOutcome {
    /// Nodes deleted: nothing else referred to them any more.
    pub deleted: u64,
    /// Nodes kept as stubs (`id` and `name` only, no `sha256`) because other records
    /// still refer to them, e.g. a removed artist still credited on a release.
    pub stubbed: u64,
}

impl Neo4jSink {
    /// Removes the records of `kind` with these ids (records deleted from Discogs, as the
    /// extractor's `removed` messages list them), in one transaction:
    ///
    /// 1. the relationships each record owns are deleted (the same ones a changed record
    ///    replaces: a release's `BY`, `ON`, `DERIVED_FROM`, `IS` and the `CREDITED_ON`
    ///    pointing at it; a master's `BY`, `IS`, `MAIN_RELEASE`; an artist's `ALIAS_OF`
    ///    and `MEMBER_OF`; a label's `SUBLABEL_OF`);
    /// 2. a node that no relationship touches any more is deleted;
    /// 3. a node that other records still refer to (a removed artist credited on a
    ///    release that stays) is turned back into a stub: its properties are replaced by
    ///    `id` and `name` (`""` for masters and releases, as the stubs references create),
    ///    so it has no `sha256`, like any stub. If its record comes back, the next write
    ///    completes it; if the references go, the stub removal after the next
    ///    `extraction_complete` ([`Neo4jSink::finish_extraction`]) deletes it.
    ///
    /// Ids without a node are ignored, so removing again is harmless. Genres and styles
    /// that no record `IS` any more are left to [`Neo4jSink::finish_extraction`].
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses a statement; nothing is changed then.
    pub async fn remove_records(
        &mut self,
        kind: RecordKind,
        ids: &[u64],
    ) -> Result<RemovalOutcome, Neo4jSinkError> {
        if ids.is_empty() {
            return Ok(RemovalOutcome::default());
        }
        let ids: Vec<BoltType> = ids
            .iter()
            .map(|&id| Ok(BoltType::Integer(BoltInteger::new(int(id)?))))
            .collect::<Result<_, Neo4jSinkError>>()?;
        let ids = BoltType::List(BoltList::from(ids));
        self.ensure_schema().await?;
        let label = self.names.label(kind).to_owned();
        let delete_isolated = format!(
            "UNWIND $ids AS id MATCH (n:{label} {{id: id}}) WHERE NOT EXISTS {{ (n)--() }} \
             DELETE n RETURN count(*) AS n"
        );
        let to_stub = format!(
            "UNWIND $ids AS id MATCH (n:{label} {{id: id}}) \
             SET n = {{id: n.id, name: coalesce(n.name, '')}} RETURN count(*) AS n"
        );
        let context = "removing records";
        let mut txn = self
            .graph
            .start_txn()
            .await
            .map_err(Neo4jSinkError::neo4j(context))?;
        self.nodelay.apply();
        let mut counts = [0u64; 2];
        let result = async {
            txn.run(query(self.statements.delete_owned(kind)).param("ids", ids.clone()))
                .await?;
            for (i, text) in [&delete_isolated, &to_stub].into_iter().enumerate() {
                let mut rows = txn.execute(query(text).param("ids", ids.clone())).await?;
                if let Some(row) = rows.next(txn.handle()).await? {
                    counts[i] = row.get::<i64>("n").map_or(0, i64::unsigned_abs);
                }
            }
            Ok::<_, neo4rs::Error>(())
        }
        .await;
        if let Err(source) = result {
            let _rolled_back = txn.rollback().await.is_ok();
            return Err(Neo4jSinkError::Neo4j { context, source });
        }
        txn.commit()
            .await
            .map_err(Neo4jSinkError::neo4j("committing a removal"))?;
        let outcome = RemovalOutcome {
            deleted: counts[0],
            stubbed: counts[1],
        };
        tracing::debug!(kind = %kind, ?outcome, "Removed records.");
        Ok(outcome)
    }
}
