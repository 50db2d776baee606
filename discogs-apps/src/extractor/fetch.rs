//! From a base URL to verified files on disk: discovery of the newest complete dump,
//! download into `DISCOGS_ROOT`, SHA-256 check against its CHECKSUM.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use discogs_parse::{parse_checksums, ChecksumEntry, DumpDate, RecordKind};
use sha2::{Digest as _, Sha256};

use super::discover::{self, Candidate, RemoteFile};
use super::http::Http;
use super::progress::Progress;
use super::state::VersionState;

/// The dump chosen by [`discover()`].
#[derive(Debug, Clone)]
pub struct Chosen {
    /// Its date, the version.
    pub date: DumpDate,
    /// Its files.
    pub candidate: Candidate,
    /// Expected SHA-256 per kind; `None` only under `--allow-unverified`.
    pub checksums: Option<BTreeMap<RecordKind, [u8; 32]>>,
}

/// A file on disk ready to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Where it is.
    pub path: PathBuf,
    /// Whether its SHA-256 matched the CHECKSUM.
    pub verified: bool,
}

/// Reads the listing at `base_url` and returns the newest complete dump.
///
/// # Errors
///
/// When the listing cannot be fetched or holds no complete dump.
pub async fn discover(
    http: &Http,
    base_url: &str,
    allow_unverified: bool,
) -> anyhow::Result<Chosen> {
    let files = list(http, base_url).await?;
    let groups = discover::group(files);
    let candidates = discover::complete_newest_first(&groups, !allow_unverified);
    for (date, candidate) in candidates {
        match checksums_for(http, &candidate).await {
            Ok(sums) => {
                tracing::info!(version = %date, "🔎 Newest complete dump found.");
                return Ok(Chosen {
                    date,
                    candidate,
                    checksums: Some(sums),
                });
            }
            Err(e) if allow_unverified => {
                tracing::warn!(version = %date, error = %format!("{e:#}"), "⚠️ No usable CHECKSUM; files will be parsed unverified (--allow-unverified).");
                return Ok(Chosen {
                    date,
                    candidate,
                    checksums: None,
                });
            }
            Err(e) => {
                tracing::warn!(version = %date, error = %format!("{e:#}"), "⚠️ CHECKSUM unusable; trying an older dump.");
            }
        }
    }
    bail!("no complete dump (four kinds and a CHECKSUM for one date) listed at {base_url}")
}

/// Every dump file listed at `base_url` (S3 XML with its pages, or the data site's HTML
/// root and its two newest year pages).
async fn list(http: &Http, base_url: &str) -> anyhow::Result<Vec<RemoteFile>> {
    let body = http
        .get_text(base_url)
        .await
        .with_context(|| format!("fetching the listing {base_url}"))?;
    if discover::is_s3_listing(&body) {
        let mut page = discover::parse_s3_listing(&body, base_url);
        let mut files = std::mem::take(&mut page.files);
        let mut pages = 1;
        while let Some(marker) = page.next_marker.take() {
            pages += 1;
            if pages > 100 {
                bail!("{base_url}: more than 100 listing pages");
            }
            let sep = if base_url.contains('?') { '&' } else { '?' };
            let url = format!(
                "{base_url}{sep}marker={}",
                discover::percent_encode_path(&marker)
            );
            let body = http
                .get_text(&url)
                .await
                .with_context(|| format!("fetching {url}"))?;
            page = discover::parse_s3_listing(&body, base_url);
            files.append(&mut page.files);
        }
        return Ok(files);
    }
    let root = discover::parse_html_listing(&body, base_url);
    let mut files = root.files;
    for (year, url) in root.years.iter().take(2) {
        tracing::debug!(year, %url, "Reading a year's listing.");
        let body = http
            .get_text(url)
            .await
            .with_context(|| format!("fetching {url}"))?;
        files.extend(discover::parse_html_listing(&body, url).files);
    }
    Ok(files)
}

/// Fetches and reads a candidate's CHECKSUM; every one of its four files must be named.
async fn checksums_for(
    http: &Http,
    candidate: &Candidate,
) -> anyhow::Result<BTreeMap<RecordKind, [u8; 32]>> {
    let Some(remote) = &candidate.checksum else {
        bail!("no CHECKSUM listed");
    };
    let text = http.get_text(&remote.url).await?;
    let entries = parse_checksums(&text).context("reading the CHECKSUM")?;
    match_checksums(candidate, &entries)
}

/// The expected hash of each of the candidate's files, by exact file name.
///
/// # Errors
///
/// When a file is not named in the CHECKSUM.
pub fn match_checksums(
    candidate: &Candidate,
    entries: &[ChecksumEntry],
) -> anyhow::Result<BTreeMap<RecordKind, [u8; 32]>> {
    let mut out = BTreeMap::new();
    for (kind, file) in &candidate.files {
        let name = file.name.to_string();
        let entry = entries
            .iter()
            .find(|e| e.file == name)
            .with_context(|| format!("CHECKSUM does not name {name}"))?;
        out.insert(*kind, entry.sha256);
    }
    Ok(out)
}

/// Downloads (or finds already on disk) and verifies the chosen dump's four files,
/// recording each step in `state`. A file whose SHA-256 does not match is deleted and
/// downloaded again, once; a second mismatch is an error.
///
/// # Errors
///
/// When a download fails for good, a file does not verify twice, or the state cannot be
/// saved.
pub async fn fetch(
    http: &Http,
    root: &Path,
    chosen: &Chosen,
    state: &mut VersionState,
    progress: &Progress,
) -> anyhow::Result<BTreeMap<RecordKind, LocalFile>> {
    let mut out = BTreeMap::new();
    for (kind, remote) in &chosen.candidate.files {
        let name = remote.name.to_string();
        let dest = root.join(&name);
        let expected = chosen.checksums.as_ref().and_then(|c| c.get(kind)).copied();
        let known = state.files.get(kind).cloned().unwrap_or_default();
        let on_disk = std::fs::metadata(&dest).ok().map(|m| m.len());
        let already_verified = known.verified
            && on_disk.is_some()
            && on_disk == known.bytes
            && expected.map(hex) == known.sha256;
        if already_verified {
            tracing::info!(file = %name, "✅ Already downloaded and verified.");
            out.insert(
                *kind,
                LocalFile {
                    path: dest,
                    verified: true,
                },
            );
            continue;
        }
        let mut attempts = 0;
        let actual = loop {
            attempts += 1;
            if !dest.exists() {
                http.download(&remote.url, &dest, progress)
                    .await
                    .with_context(|| format!("downloading {name}"))?;
            }
            let actual = sha256_file(&dest, progress).await?;
            match expected {
                Some(want) if want != actual => {
                    tracing::error!(file = %name, expected = %hex(want), actual = %hex(actual), "🔐 SHA-256 mismatch; deleting the file and downloading it again.");
                    std::fs::remove_file(&dest)
                        .with_context(|| format!("deleting {}", dest.display()))?;
                    if attempts >= 2 {
                        bail!("{name}: SHA-256 does not match the CHECKSUM after {attempts} downloads");
                    }
                }
                Some(_) => {
                    tracing::info!(file = %name, "🔐 SHA-256 matches the CHECKSUM.");
                    break actual;
                }
                None => {
                    tracing::warn!(file = %name, "⚠️ Not verified: no CHECKSUM (--allow-unverified).");
                    break actual;
                }
            }
        };
        let file = state.file_mut(*kind, &name);
        let sha = hex(actual);
        if file.sha256.as_ref().is_some_and(|old| *old != sha) {
            // Different bytes than those partly published: publish this file from the start.
            tracing::warn!(file = %name, "File content changed since publishing started; its progress is reset.");
            file.resume = super::state::ResumePoint::default();
            file.status = super::state::FileStatus::Pending;
        }
        file.bytes = std::fs::metadata(&dest).ok().map(|m| m.len());
        file.verified = expected.is_some();
        file.sha256 = Some(sha);
        state.save(root)?;
        out.insert(
            *kind,
            LocalFile {
                path: dest,
                verified: expected.is_some(),
            },
        );
    }
    progress.finish();
    Ok(out)
}

/// SHA-256 of a file, read on a blocking thread, progress shown as step `verify`.
///
/// # Errors
///
/// When the file cannot be read.
pub async fn sha256_file(path: &Path, progress: &Progress) -> anyhow::Result<[u8; 32]> {
    let path = path.to_owned();
    let progress = progress.clone();
    tokio::task::spawn_blocking(move || {
        let total = std::fs::metadata(&path).map_or(0, |m| m.len());
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        progress.start("verify", &name, 0, total);
        let mut file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            progress.add(n as u64);
        }
        Ok(hasher.finalize().into())
    })
    .await
    .context("hashing thread")?
}

/// Lowercase hex.
#[must_use]
pub fn hex(bytes: [u8; 32]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        write!(s, "{b:02x}").unwrap_or(());
        s
    })
}
