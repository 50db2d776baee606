//! After a complete extraction: removal of isolated stubs and the explorer's aggregates,
//! each in transactions bounded by an id range, so that a full-size graph cannot exhaust
//! the server's transaction memory.

use std::collections::BTreeMap;

use discogs_model::RecordKind;
use neo4rs::{query, BoltInteger, BoltMap, BoltNull, BoltString, BoltType, Query};

use crate::sink::get;
use crate::{Neo4jSink, Neo4jSinkError};

/// Genre, style and label aggregates written by [`Neo4jSink::compute_aggregates`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Aggregates {
    /// Genre nodes given their counts.
    pub genres: u64,
    /// Style nodes given their counts.
    pub styles: u64,
    /// Label nodes whose counts changed (and were written).
    pub labels_updated: u64,
}

/// What [`Neo4jSink::finish_extraction`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Stub nodes (no `sha256`) without relationships that were deleted.
    pub stubs_removed: u64,
    /// Genre and style nodes that no record `IS` any more, deleted.
    pub tags_removed: u64,
    /// The aggregates.
    pub aggregates: Aggregates,
    /// Transactions the work took (reads and writes).
    pub transactions: u64,
}

/// Per genre or style name: releases, artists, labels, first year.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    releases: i64,
    artists: i64,
    labels: i64,
    first_year: Option<i64>,
}

impl Neo4jSink {
    /// The work to do once an extraction is complete (all four files of a dump written
    /// and no writes in flight): [`Neo4jSink::remove_isolated_stubs`], then
    /// [`Neo4jSink::compute_aggregates`].
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses a statement; everything done before
    /// the error is committed, and running it again is safe.
    pub async fn finish_extraction(&mut self) -> Result<MaintenanceReport, Neo4jSinkError> {
        let mut report = MaintenanceReport::default();
        let (stubs, tags, tx) = self.remove_isolated().await?;
        report.stubs_removed = stubs;
        report.tags_removed = tags;
        report.transactions += tx;
        let (aggregates, tx) = self.aggregates().await?;
        report.aggregates = aggregates;
        report.transactions += tx;
        tracing::info!(?report, "Post-extraction maintenance done.");
        Ok(report)
    }

    /// Deletes stub nodes (created by references, never completed by a record of their
    /// own) that no relationship touches any more, and genres and styles that no record
    /// `IS` any more (with their `PART_OF` relationships). Stubs that are still referenced
    /// stay: their record may come in a later dump.
    /// Returns how many nodes were deleted.
    ///
    /// # Errors
    ///
    /// As for [`Neo4jSink::finish_extraction`].
    pub async fn remove_isolated_stubs(&mut self) -> Result<u64, Neo4jSinkError> {
        let (stubs, tags, _) = self.remove_isolated().await?;
        Ok(stubs + tags)
    }

    /// Computes the aggregates the explorer reads instead of traversing:
    ///
    /// * on each `Genre` and `Style`: `release_count` (releases `IS` it), `artist_count`
    ///   (artists those releases are `BY`), `label_count` (labels they are `ON`),
    ///   `first_year` (the earliest release year), and `style_count` on a genre /
    ///   `genre_count` on a style (its `PART_OF` neighbours);
    /// * on each `Label`: `release_count`, `artist_count`, `genre_count`, `first_year`
    ///   of the releases `ON` it (written only where a value changed).
    ///
    /// Each transaction covers one range of [`crate::Neo4jSinkConfig::maintenance_id_range`]
    /// ids of releases, artists or labels; genre and style totals are summed here and
    /// written in one small transaction at the end.
    ///
    /// # Errors
    ///
    /// As for [`Neo4jSink::finish_extraction`].
    pub async fn compute_aggregates(&mut self) -> Result<Aggregates, Neo4jSinkError> {
        Ok(self.aggregates().await?.0)
    }

    async fn remove_isolated(&mut self) -> Result<(u64, u64, u64), Neo4jSinkError> {
        // Genres and styles may be deleted here: the next write checks them again.
        self.known_tags.clear();
        let (mut stubs, mut tx) = (0, 0);
        for kind in RecordKind::ALL {
            let label = self.names.label(kind).to_owned();
            let text = format!(
                "MATCH (n:{label}) WHERE n.id >= $lo AND n.id < $hi AND n.sha256 IS NULL \
                 AND NOT EXISTS {{ (n)--() }} DELETE n RETURN count(*) AS n"
            );
            let mut cursor = i64::MIN;
            while let Some((lo, hi)) = self.next_range(&label, cursor).await? {
                stubs += self
                    .count(query(&text).param("lo", lo).param("hi", hi))
                    .await?;
                tx += 2;
                cursor = hi;
            }
        }
        let mut tags = 0;
        for label in [self.names.genre().to_owned(), self.names.style().to_owned()] {
            // No record IS it any more: its PART_OF relationships go with it.
            let text = format!(
                "MATCH (n:{label}) WHERE NOT EXISTS {{ (n)<-[:IS]-() }} DETACH DELETE n \
                 RETURN count(*) AS n"
            );
            tags += self.count(query(&text)).await?;
            tx += 1;
        }
        tracing::info!(stubs, tags, "Isolated stubs removed.");
        Ok((stubs, tags, tx))
    }

    async fn aggregates(&self) -> Result<(Aggregates, u64), Neo4jSinkError> {
        let genre = self.names.genre().to_owned();
        let (release, artist, label) = (
            self.names.release().to_owned(),
            self.names.artist().to_owned(),
            self.names.label_label().to_owned(),
        );
        let mut totals: BTreeMap<(bool, String), Totals> = BTreeMap::new();
        let mut tx = 0;

        // Releases per genre and style, and the first year.
        let text = format!(
            "MATCH (r:{release}) WHERE r.id >= $lo AND r.id < $hi MATCH (r)-[:IS]->(x) \
             RETURN x:{genre} AS genre, x.name AS name, count(r) AS n, min(r.year) AS first"
        );
        tx += self
            .sum_over_ranges(&release, &text, &mut totals, |t, n, first| {
                t.releases += n;
                t.first_year = match (t.first_year, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            })
            .await?;
        // Artists per genre and style: each artist is in exactly one range, so the
        // per-range distinct counts add up.
        let text = format!(
            "MATCH (a:{artist}) WHERE a.id >= $lo AND a.id < $hi \
             MATCH (a)<-[:BY]-(:{release})-[:IS]->(x) \
             RETURN x:{genre} AS genre, x.name AS name, count(DISTINCT a) AS n, null AS first"
        );
        tx += self
            .sum_over_ranges(&artist, &text, &mut totals, |t, n, _| t.artists += n)
            .await?;
        // Labels per genre and style, likewise.
        let text = format!(
            "MATCH (l:{label}) WHERE l.id >= $lo AND l.id < $hi \
             MATCH (l)<-[:ON]-(:{release})-[:IS]->(x) \
             RETURN x:{genre} AS genre, x.name AS name, count(DISTINCT l) AS n, null AS first"
        );
        tx += self
            .sum_over_ranges(&label, &text, &mut totals, |t, n, _| t.labels += n)
            .await?;

        // Per label, written in the same ranges, only where a value changed.
        let text = format!(
            "MATCH (l:{label}) WHERE l.id >= $lo AND l.id < $hi \
             CALL (l) {{ OPTIONAL MATCH (l)<-[:ON]-(r:{release}) \
                         RETURN count(DISTINCT r) AS releases, min(r.year) AS first }} \
             CALL (l) {{ OPTIONAL MATCH (l)<-[:ON]-(:{release})-[:BY]->(a) \
                         RETURN count(DISTINCT a) AS artists }} \
             CALL (l) {{ OPTIONAL MATCH (l)<-[:ON]-(:{release})-[:IS]->(g:{genre}) \
                         RETURN count(DISTINCT g) AS genres }} \
             WITH l, releases, first, artists, genres \
             WHERE l.release_count IS NULL OR l.release_count <> releases \
                OR l.artist_count <> artists OR l.genre_count <> genres \
                OR coalesce(l.first_year, -1) <> coalesce(first, -1) \
             SET l.release_count = releases, l.artist_count = artists, \
                 l.genre_count = genres, l.first_year = first \
             RETURN count(l) AS n"
        );
        let mut labels_updated = 0;
        let mut cursor = i64::MIN;
        while let Some((lo, hi)) = self.next_range(&label, cursor).await? {
            labels_updated += self
                .count(query(&text).param("lo", lo).param("hi", hi))
                .await?;
            tx += 2;
            cursor = hi;
        }

        // Genre and style totals, in one transaction (a few hundred nodes).
        let mut written = [0, 0];
        for (is_genre, node, part_of) in [
            (true, genre.clone(), "COUNT { (x)<-[:PART_OF]-() }"),
            (
                false,
                self.names.style().to_owned(),
                "COUNT { (x)-[:PART_OF]->() }",
            ),
        ] {
            let mut map = BoltMap::new();
            for ((g, name), t) in &totals {
                if *g != is_genre {
                    continue;
                }
                let mut row = BoltMap::with_capacity(4);
                row.put(BoltString::new("releases"), int(t.releases));
                row.put(BoltString::new("artists"), int(t.artists));
                row.put(BoltString::new("labels"), int(t.labels));
                row.put(
                    BoltString::new("first"),
                    t.first_year.map_or(BoltType::Null(BoltNull), int),
                );
                map.put(BoltString::new(name), BoltType::Map(row));
            }
            let (counted, other) = if is_genre {
                ("style_count", "genre_count")
            } else {
                ("genre_count", "style_count")
            };
            let text = format!(
                "MATCH (x:{node}) WITH x, $totals[x.name] AS t \
                 SET x.release_count = coalesce(t.releases, 0), \
                     x.artist_count = coalesce(t.artists, 0), \
                     x.label_count = coalesce(t.labels, 0), \
                     x.first_year = t.first, x.{counted} = {part_of} \
                 REMOVE x.{other} RETURN count(x) AS n"
            );
            written[usize::from(!is_genre)] = self
                .count(query(&text).param("totals", BoltType::Map(map)))
                .await?;
            tx += 1;
        }
        let aggregates = Aggregates {
            genres: written[0],
            styles: written[1],
            labels_updated,
        };
        tracing::info!(?aggregates, transactions = tx, "Aggregates computed.");
        Ok((aggregates, tx))
    }

    /// The next range `[lo, lo + width)` of ids of `label` whose start is the first id at
    /// or after `cursor` (one index seek), or `None` past the last node.
    async fn next_range(
        &self,
        label: &str,
        cursor: i64,
    ) -> Result<Option<(i64, i64)>, Neo4jSinkError> {
        let text = format!(
            "MATCH (n:{label}) WHERE n.id >= $cursor RETURN n.id AS id ORDER BY id LIMIT 1"
        );
        let context = "finding the next id range";
        let mut rows = self
            .graph
            .execute_read(query(&text).param("cursor", cursor))
            .await
            .map_err(Neo4jSinkError::neo4j(context))?;
        let Some(row) = rows.next().await.map_err(Neo4jSinkError::neo4j(context))? else {
            return Ok(None);
        };
        let lo: i64 = get(&row, "id")?;
        let width = i64::try_from(self.config.maintenance_id_range).unwrap_or(i64::MAX);
        Ok(Some((lo, lo.saturating_add(width))))
    }

    /// Runs `text` over every id range of `label`, adding each row's `(genre, name, n,
    /// first)` into `totals` with `add`. Returns the transactions it took.
    async fn sum_over_ranges(
        &self,
        label: &str,
        text: &str,
        totals: &mut BTreeMap<(bool, String), Totals>,
        add: impl Fn(&mut Totals, i64, Option<i64>),
    ) -> Result<u64, Neo4jSinkError> {
        let context = "computing aggregates";
        let mut tx = 0;
        let mut cursor = i64::MIN;
        while let Some((lo, hi)) = self.next_range(label, cursor).await? {
            let mut rows = self
                .graph
                .execute_read(query(text).param("lo", lo).param("hi", hi))
                .await
                .map_err(Neo4jSinkError::neo4j(context))?;
            while let Some(row) = rows.next().await.map_err(Neo4jSinkError::neo4j(context))? {
                let genre: bool = get(&row, "genre")?;
                let name: String = get(&row, "name")?;
                let n: i64 = get(&row, "n")?;
                let first: Option<i64> = get(&row, "first")?;
                add(totals.entry((genre, name)).or_default(), n, first);
            }
            tx += 2;
            cursor = hi;
        }
        Ok(tx)
    }

    /// Runs a statement returning one row with a count `n`, in its own auto-commit
    /// transaction (retried by the driver on transient errors).
    async fn count(&self, q: Query) -> Result<u64, Neo4jSinkError> {
        let context = "post-extraction maintenance";
        let mut rows = self
            .graph
            .execute(q)
            .await
            .map_err(Neo4jSinkError::neo4j(context))?;
        let mut total = 0;
        while let Some(row) = rows.next().await.map_err(Neo4jSinkError::neo4j(context))? {
            let n: i64 = get(&row, "n")?;
            total += n.unsigned_abs();
        }
        Ok(total)
    }
}

fn int(v: i64) -> BoltType {
    BoltType::Integer(BoltInteger::new(v))
}
