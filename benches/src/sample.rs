//! A whole generated dump: the four kinds of one version, referencing each other.
//!
//! [`write_dump`] writes `discogs_<version>_{artists,labels,masters,releases}.xml.gz` into a
//! folder, with the [`Generator`]s' records and their references pointed at generated
//! records ([`IdPools::connect`]), so credits, labels, masters and main releases connect in
//! the graph the way a real dump's do: about one reference in [`DANGLING_EVERY`] still
//! points past the last id, as a few do in the real dumps, and becomes a stub. The same
//! [`SampleSize`] and seed always give the same bytes.
//!
//! ```no_run
//! use discogs_benches::sample::{write_dump, SampleSize};
//!
//! let files = write_dump("/tmp/sample".as_ref(), "20260101", SampleSize::releases(2_000), 42)?;
//! assert_eq!(files.len(), 4);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use discogs_model::RecordKind;
use discogs_parse::{DumpWriter, Era, Layout};

use crate::generate::{Generator, IdPools, IdSpace};

/// About one reference in this many points at no record of the dump (a stub in the graph).
pub const DANGLING_EVERY: u64 = 100;

/// How many records of each kind a generated dump holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleSize {
    /// Artists.
    pub artists: u64,
    /// Labels.
    pub labels: u64,
    /// Masters.
    pub masters: u64,
    /// Releases.
    pub releases: u64,
}

impl SampleSize {
    /// `releases` releases with artists, labels and masters in a real dump's proportions
    /// (2026: 19.1 M releases, 9.1 M artists, 2.3 M labels, 2.5 M masters).
    #[must_use]
    pub fn releases(releases: u64) -> Self {
        Self {
            artists: (releases * 48 / 100).max(1),
            labels: (releases * 12 / 100).max(1),
            masters: (releases * 13 / 100).max(1),
            releases: releases.max(1),
        }
    }

    /// Records of `kind`.
    #[must_use]
    pub fn of(self, kind: RecordKind) -> u64 {
        match kind {
            RecordKind::Artist => self.artists,
            RecordKind::Label => self.labels,
            RecordKind::Master => self.masters,
            RecordKind::Release => self.releases,
        }
    }

    /// Records of all four kinds.
    #[must_use]
    pub fn total(self) -> u64 {
        RecordKind::ALL.iter().map(|k| self.of(*k)).sum()
    }
}

/// The name of `kind`'s file of dump `version`, as Discogs names them.
#[must_use]
pub fn file_name(version: &str, kind: RecordKind) -> String {
    format!("discogs_{version}_{}.xml.gz", kind.plural())
}

/// The gzip level of the sample files: the fastest. A sample is written once per size and
/// read a few times, so writing speed matters more than its size (level 6, as the dumps
/// use, took three times as long for 32 % smaller files).
pub const GZIP_LEVEL: u32 = 1;

/// Writes the four files of a generated dump `version` (`YYYYMMDD`) into `dir` (created
/// if missing) and returns their paths, artists first. The four files are written at
/// once, one thread each; each under a temporary name and renamed when complete, so a
/// file with the final name is always whole. The bytes do not depend on the threads.
///
/// # Errors
///
/// When a file cannot be written (the first such error, with the file's path).
pub fn write_dump(
    dir: &Path,
    version: &str,
    size: SampleSize,
    seed: u64,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let ids = IdSpace::matching(size.artists, size.labels, size.masters, size.releases);
    let pools = IdPools::generated(seed, ids, |kind| size.of(kind));
    std::thread::scope(|scope| {
        let writers = RecordKind::ALL.map(|kind| {
            let path = dir.join(file_name(version, kind));
            let pools = &pools;
            scope.spawn(move || {
                write_kind(&path, kind, size.of(kind), seed, ids, pools)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
                    .map(|()| path)
            })
        });
        writers
            .into_iter()
            .map(|writer| {
                writer
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Writes `count` generated records of `kind` to `path` (through `path.gz.partial`).
fn write_kind(
    path: &Path,
    kind: RecordKind,
    count: u64,
    seed: u64,
    ids: IdSpace,
    pools: &IdPools,
) -> std::io::Result<()> {
    let partial = path.with_extension("gz.partial");
    let file = BufWriter::with_capacity(1 << 20, File::create(&partial)?);
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::new(GZIP_LEVEL));
    let mut writer = DumpWriter::new(gz, kind, Layout::new(Era::E3))?;
    for mut record in
        Generator::within(kind, seed, ids).take(usize::try_from(count).unwrap_or(usize::MAX))
    {
        pools.connect(&mut record, DANGLING_EVERY);
        writer.write(&record)?;
    }
    writer.finish()?.finish()?.flush()?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use discogs_parse::DumpReader;

    #[test]
    fn a_written_dump_reads_back_and_references_itself() {
        let dir = std::env::temp_dir().join(format!("discogs-sample-test-{}", std::process::id()));
        let size = SampleSize::releases(3_000);
        let paths = write_dump(&dir, "20260101", size, 7).unwrap();
        assert_eq!(paths.len(), 4);
        let mut artist_ids = std::collections::HashSet::new();
        for (kind, path) in RecordKind::ALL.into_iter().zip(&paths) {
            assert!(path.ends_with(file_name("20260101", kind)));
            let mut reader = DumpReader::open(path).unwrap();
            assert_eq!(reader.kind(), kind);
            let mut n = 0;
            let mut credited = 0;
            let mut resolved = 0;
            while let Some(parsed) = reader.next_record() {
                n += 1;
                match parsed.unwrap().record {
                    discogs_model::Record::Artist(a) => {
                        artist_ids.insert(a.id);
                    }
                    discogs_model::Record::Release(r) => {
                        for c in r.artists.iter().filter_map(|c| c.id) {
                            credited += 1;
                            resolved += u64::from(artist_ids.contains(&c));
                        }
                    }
                    _ => {}
                }
            }
            assert_eq!(n, size.of(kind), "{kind}");
            if kind == RecordKind::Release {
                // Every credit lands on a generated artist but about one in
                // DANGLING_EVERY, and some do not.
                let missed = credited - resolved;
                assert!(
                    missed * DANGLING_EVERY <= credited * 3 && missed > 0,
                    "{resolved} of {credited} credits resolved"
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_same_size_and_seed_give_the_same_bytes() {
        let base = std::env::temp_dir().join(format!("discogs-sample-same-{}", std::process::id()));
        let size = SampleSize::releases(500);
        let first = write_dump(&base.join("a"), "20260101", size, 3).unwrap();
        let second = write_dump(&base.join("b"), "20260101", size, 3).unwrap();
        for (a, b) in first.iter().zip(&second) {
            let bytes = std::fs::read(a).unwrap();
            assert!(!bytes.is_empty());
            assert_eq!(bytes, std::fs::read(b).unwrap(), "{}", a.display());
        }
        let other = write_dump(&base.join("c"), "20260101", size, 4).unwrap();
        assert_ne!(
            std::fs::read(&first[3]).unwrap(),
            std::fs::read(&other[3]).unwrap(),
            "another seed gives other releases"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
