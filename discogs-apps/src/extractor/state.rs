//! What the extractor remembers per dump version, in
//! `<DISCOGS_ROOT>/.extraction_state_<version>.json`, written atomically (temporary file,
//! fsync, rename, fsync of the folder): which files are downloaded and verified, and per
//! file how far publishing got, counted in batches the broker confirmed.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;
use discogs_parse::RecordKind;
use serde::{Deserialize, Serialize};

/// Where publishing of one file stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Not started.
    #[default]
    Pending,
    /// Started; `resume` says where to continue.
    Running,
    /// Every batch and `file_complete` confirmed.
    Done,
}

/// The point after the last batch the broker confirmed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// Batches confirmed (numbered `0..batches`).
    pub batches: u64,
    /// Records published in those batches.
    pub published: u64,
    /// Records of the file read up to the last confirmed record (published or not).
    pub records_read: u64,
    /// Byte offset in the XML stream of the record after which publishing continues:
    /// records starting at or before it are done.
    pub offset: Option<u64>,
}

/// One file of a version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// The file's name.
    pub file: String,
    /// Size on disk once downloaded.
    pub bytes: Option<u64>,
    /// Verified against the CHECKSUM (`false` also when there was none to check).
    pub verified: bool,
    /// SHA-256 of the bytes that were (or are being) parsed.
    pub sha256: Option<String>,
    /// Publishing status.
    pub status: FileStatus,
    /// Where to continue.
    pub resume: ResumePoint,
    /// Records read in the whole file, once done.
    pub records: Option<u64>,
    /// Records published (new or changed), once done.
    pub published: Option<u64>,
    /// Ids that were in the hash store but not in this file, once done.
    pub removed: Option<u64>,
    /// When publishing finished.
    pub completed_at: Option<String>,
}

/// Everything remembered about one dump version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionState {
    /// Format of this file.
    pub schema: u32,
    /// The dump version (`YYYYMMDD`), or `local-…` for `--input`.
    pub version: String,
    /// When processing of this version started (kept across restarts: consumers purge by it).
    pub started_at: String,
    /// Last write.
    pub updated_at: String,
    /// Per kind (`artist`, ...).
    pub files: BTreeMap<RecordKind, FileState>,
    /// `extraction_complete` confirmed on every exchange.
    pub extraction_complete: bool,
}

impl VersionState {
    /// A fresh state.
    #[must_use]
    pub fn new(version: &str) -> Self {
        let now = crate::health::rfc3339(SystemTime::now());
        Self {
            schema: 1,
            version: version.to_owned(),
            started_at: now.clone(),
            updated_at: now,
            files: BTreeMap::new(),
            extraction_complete: false,
        }
    }

    /// The state file of `version` in `root`.
    #[must_use]
    pub fn path(root: &Path, version: &str) -> PathBuf {
        root.join(format!(".extraction_state_{version}.json"))
    }

    /// Reads the state of `version`; `None` when there is none. An unreadable file is
    /// moved aside (`.corrupt`) and treated as none, with a warning.
    ///
    /// # Errors
    ///
    /// When the file exists but cannot be read or moved.
    pub fn load(root: &Path, version: &str) -> anyhow::Result<Option<Self>> {
        let path = Self::path(root, version);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        match serde_json::from_str(&text) {
            Ok(state) => Ok(Some(state)),
            Err(e) => {
                let aside = path.with_extension("json.corrupt");
                tracing::warn!(path = %path.display(), error = %e, "State file unreadable; moved aside, starting this version afresh.");
                std::fs::rename(&path, &aside)
                    .with_context(|| format!("moving {} aside", path.display()))?;
                Ok(None)
            }
        }
    }

    /// Writes the state atomically.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn save(&mut self, root: &Path) -> anyhow::Result<()> {
        self.updated_at = crate::health::rfc3339(SystemTime::now());
        let path = Self::path(root, &self.version);
        let text = serde_json::to_vec_pretty(self).context("encoding the state")?;
        write_atomically(&path, &text)
    }

    /// Whether every file and `extraction_complete` are done.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.extraction_complete
            && RecordKind::ALL.iter().all(|k| {
                self.files
                    .get(k)
                    .is_some_and(|f| f.status == FileStatus::Done)
            })
    }

    /// The state of `kind`'s file, created when missing.
    pub fn file_mut(&mut self, kind: RecordKind, file: &str) -> &mut FileState {
        let entry = self.files.entry(kind).or_default();
        if entry.file.is_empty() {
            entry.file = file.to_owned();
        }
        entry
    }
}

/// Writes `bytes` to `path` through a temporary file: write, fsync, rename, fsync the
/// folder. A crash leaves the old file or the new one, never a mix.
///
/// # Errors
///
/// When any step fails.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                drop(d.sync_all());
            }
        }
        Ok(())
    })();
    result.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corrupt_file() {
        let dir = std::env::temp_dir().join(format!("state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(VersionState::load(&dir, "20260101").unwrap(), None);
        let mut s = VersionState::new("20260101");
        let f = s.file_mut(RecordKind::Label, "discogs_20260101_labels.xml.gz");
        f.status = FileStatus::Running;
        f.resume = ResumePoint {
            batches: 3,
            published: 250,
            records_read: 400,
            offset: Some(12_345),
        };
        s.save(&dir).unwrap();
        let back = VersionState::load(&dir, "20260101").unwrap().unwrap();
        assert_eq!(back.files, s.files);
        assert!(!back.is_finished());
        let text = std::fs::read_to_string(VersionState::path(&dir, "20260101")).unwrap();
        assert!(text.contains("\"label\""), "kinds by name: {text}");
        std::fs::write(VersionState::path(&dir, "20260101"), "{not json").unwrap();
        assert_eq!(VersionState::load(&dir, "20260101").unwrap(), None);
        assert!(dir.join(".extraction_state_20260101.json.corrupt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
