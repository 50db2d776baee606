//! The hash store: the last *published and confirmed* hash of every record, per kind and
//! id, in one redb file (`<DISCOGS_ROOT>/.record_hashes.redb`, one table per kind,
//! `u64 → [u8; 32]`).
//!
//! A record is published when its hash differs from the stored one (or none is stored);
//! its hash is stored only after the broker confirmed the batch that carried it, so a
//! crash between publishing and confirming publishes the record again rather than losing
//! it. Why redb: ARCHITECTURE.md ("Extractor").

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use discogs_model::{RecordHash, RecordKind};
use redb::{
    Database, Durability, ReadOnlyTable, ReadableDatabase as _, ReadableTableMetadata as _,
    TableDefinition,
};

type Table = TableDefinition<'static, u64, [u8; 32]>;

fn table(kind: RecordKind) -> Table {
    TableDefinition::new(kind.plural())
}

/// The store; clones share the database.
#[derive(Clone)]
pub struct HashStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for HashStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashStore").finish_non_exhaustive()
    }
}

/// A read-only view of one kind's hashes as of when it was taken; shareable between threads.
pub struct Snapshot {
    table: Option<ReadOnlyTable<u64, [u8; 32]>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("empty", &self.table.is_none())
            .finish()
    }
}

impl Snapshot {
    /// The stored hash of `id`.
    ///
    /// # Errors
    ///
    /// When the database cannot be read.
    pub fn get(&self, id: u64) -> Result<Option<RecordHash>, redb::StorageError> {
        match &self.table {
            None => Ok(None),
            Some(t) => Ok(t.get(id)?.map(|g| RecordHash(g.value()))),
        }
    }
}

impl HashStore {
    /// Opens (or creates) the store at `path` with a page cache of `cache_bytes`.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or is not a redb database.
    pub fn open(path: &Path, cache_bytes: usize) -> anyhow::Result<Self> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .with_context(|| format!("opening the hash store {}", path.display()))?;
        Ok(Self { db: Arc::new(db) })
    }

    /// A consistent view of `kind`'s hashes.
    ///
    /// # Errors
    ///
    /// When the database cannot be read.
    pub fn snapshot(&self, kind: RecordKind) -> anyhow::Result<Snapshot> {
        let tx = self
            .db
            .begin_read()
            .context("hash store: read transaction")?;
        let table = match tx.open_table(table(kind)) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e).context("hash store: opening a table"),
        };
        Ok(Snapshot { table })
    }

    /// Stores these hashes (confirmed by the broker) in one durable transaction.
    ///
    /// # Errors
    ///
    /// When the write fails; nothing is stored then.
    pub fn record(&self, kind: RecordKind, entries: &[(u64, RecordHash)]) -> anyhow::Result<()> {
        self.write(kind, |t| {
            for (id, hash) in entries {
                t.insert(id, hash.0)?;
            }
            Ok(())
        })
    }

    /// Forgets these ids (records no longer in the dump).
    ///
    /// # Errors
    ///
    /// When the write fails.
    pub fn remove(&self, kind: RecordKind, ids: &[u64]) -> anyhow::Result<()> {
        self.write(kind, |t| {
            for id in ids {
                t.remove(id)?;
            }
            Ok(())
        })
    }

    fn write(
        &self,
        kind: RecordKind,
        f: impl FnOnce(&mut redb::Table<'_, u64, [u8; 32]>) -> Result<(), redb::StorageError>,
    ) -> anyhow::Result<()> {
        let mut tx = self
            .db
            .begin_write()
            .context("hash store: write transaction")?;
        tx.set_durability(Durability::Immediate)
            .context("hash store: durability")?;
        {
            let mut t = tx.open_table(table(kind)).context("hash store: table")?;
            f(&mut t).context("hash store: writing")?;
        }
        tx.commit().context("hash store: commit")
    }

    /// Stored ids of `kind` that `seen` does not hold, in id order.
    ///
    /// # Errors
    ///
    /// When the database cannot be read.
    pub fn ids_not_in(&self, kind: RecordKind, seen: &IdSet) -> anyhow::Result<Vec<u64>> {
        let snap = self.snapshot(kind)?;
        let Some(t) = snap.table else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in t.range::<u64>(..).context("hash store: scan")? {
            let (id, _) = item.context("hash store: scan")?;
            let id = id.value();
            if !seen.contains(id) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// How many hashes of `kind` are stored.
    ///
    /// # Errors
    ///
    /// When the database cannot be read.
    pub fn len(&self, kind: RecordKind) -> anyhow::Result<u64> {
        let snap = self.snapshot(kind)?;
        match snap.table {
            None => Ok(0),
            Some(t) => t.len().context("hash store: count"),
        }
    }
}

/// A set of record ids (a bitmap: ids are dense, 4.5 MB for 36 M ids).
#[derive(Debug, Clone, Default)]
pub struct IdSet {
    words: Vec<u64>,
    len: u64,
}

impl IdSet {
    /// Adds `id`.
    pub fn insert(&mut self, id: u64) {
        let word = usize::try_from(id / 64).expect("id fits in memory");
        if word >= self.words.len() {
            self.words.resize((word + 1).max(self.words.len() * 2), 0);
        }
        let bit = 1u64 << (id % 64);
        if self.words[word] & bit == 0 {
            self.words[word] |= bit;
            self.len += 1;
        }
    }

    /// Whether `id` is in the set.
    #[must_use]
    pub fn contains(&self, id: u64) -> bool {
        usize::try_from(id / 64)
            .ok()
            .and_then(|w| self.words.get(w))
            .is_some_and(|w| w & (1u64 << (id % 64)) != 0)
    }

    /// Ids in the set.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_snapshot_and_removed_ids() {
        let dir = std::env::temp_dir().join(format!("hashstore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.redb");
        let store = HashStore::open(&path, 1 << 20).unwrap();
        let before = store.snapshot(RecordKind::Label).unwrap();
        assert_eq!(before.get(1).unwrap(), None);
        store
            .record(
                RecordKind::Label,
                &[
                    (1, RecordHash([1; 32])),
                    (5, RecordHash([5; 32])),
                    (9, RecordHash([9; 32])),
                ],
            )
            .unwrap();
        assert_eq!(before.get(1).unwrap(), None, "a snapshot does not move");
        let now = store.snapshot(RecordKind::Label).unwrap();
        assert_eq!(now.get(5).unwrap(), Some(RecordHash([5; 32])));
        assert_eq!(
            store.snapshot(RecordKind::Artist).unwrap().get(5).unwrap(),
            None
        );
        let mut seen = IdSet::default();
        seen.insert(5);
        seen.insert(1000);
        assert_eq!(
            store.ids_not_in(RecordKind::Label, &seen).unwrap(),
            vec![1, 9]
        );
        store.remove(RecordKind::Label, &[1, 9]).unwrap();
        assert_eq!(store.len(RecordKind::Label).unwrap(), 1);
        drop((before, now, store));
        let reopened = HashStore::open(&path, 1 << 20).unwrap();
        assert_eq!(reopened.len(RecordKind::Label).unwrap(), 1, "durable");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn id_set() {
        let mut s = IdSet::default();
        assert!(!s.contains(0) && s.is_empty());
        for id in [0, 63, 64, 36_000_000, 64] {
            s.insert(id);
        }
        assert_eq!(s.len(), 4);
        assert!(s.contains(36_000_000) && s.contains(63) && !s.contains(62));
    }
}
