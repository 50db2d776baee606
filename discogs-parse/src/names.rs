//! Dump file names (`discogs_YYYYMMDD_kind.xml.gz`) and CHECKSUM files.

use std::fmt;
use std::str::FromStr;

use discogs_model::RecordKind;

/// A dump date, `YYYYMMDD` as in the file names (not always the 1st of a month).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DumpDate {
    /// Year, e.g. 2026.
    pub year: u16,
    /// Month, 1-12.
    pub month: u8,
    /// Day, 1-31.
    pub day: u8,
}

impl fmt::Display for DumpDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}{:02}{:02}", self.year, self.month, self.day)
    }
}

/// A name that is not a Discogs dump file name, or a CHECKSUM file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

impl FromStr for DumpDate {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let bad = || NameError(format!("{s:?} is not a date in YYYYMMDD form"));
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year = s[..4].parse().map_err(|_| bad())?;
        let month = s[4..6].parse().map_err(|_| bad())?;
        let day = s[6..].parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(bad());
        }
        Ok(Self { year, month, day })
    }
}

/// What a dump file holds: one kind of records, or the CHECKSUM of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DumpContent {
    /// `discogs_YYYYMMDD_{kind}.xml.gz`.
    Records(RecordKind),
    /// `discogs_YYYYMMDD_CHECKSUM.txt`.
    Checksum,
}

/// A parsed dump file name, e.g. `discogs_20260101_releases.xml.gz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DumpFileName {
    /// The dump's date.
    pub date: DumpDate,
    /// What the file holds.
    pub content: DumpContent,
    /// Whether the name ends in `.gz`.
    pub gzip: bool,
}

impl DumpFileName {
    /// Parses the last path component of `name` (a path, URL or S3 key also works).
    ///
    /// # Errors
    ///
    /// When the name is not `discogs_YYYYMMDD_{artists|labels|masters|releases}.xml[.gz]`
    /// or `discogs_YYYYMMDD_CHECKSUM.txt`.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let bad = || {
            NameError(format!(
                "{base:?} is not a Discogs dump file name (discogs_YYYYMMDD_kind.xml.gz)"
            ))
        };
        let rest = base.strip_prefix("discogs_").ok_or_else(bad)?;
        let (date, rest) = rest.split_once('_').ok_or_else(bad)?;
        let date: DumpDate = date.parse()?;
        if rest == "CHECKSUM.txt" {
            return Ok(Self {
                date,
                content: DumpContent::Checksum,
                gzip: false,
            });
        }
        let (kind, gzip) = match rest.strip_suffix(".xml.gz") {
            Some(kind) => (kind, true),
            None => (rest.strip_suffix(".xml").ok_or_else(bad)?, false),
        };
        let kind = RecordKind::from_element(kind.as_bytes())
            .filter(|k| k.plural() == kind)
            .ok_or_else(bad)?;
        Ok(Self {
            date,
            content: DumpContent::Records(kind),
            gzip,
        })
    }

    /// The record kind, for a records file.
    #[must_use]
    pub fn kind(&self) -> Option<RecordKind> {
        match self.content {
            DumpContent::Records(kind) => Some(kind),
            DumpContent::Checksum => None,
        }
    }
}

impl fmt::Display for DumpFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.content {
            DumpContent::Checksum => write!(f, "discogs_{}_CHECKSUM.txt", self.date),
            DumpContent::Records(kind) => {
                write!(
                    f,
                    "discogs_{}_{}.xml{}",
                    self.date,
                    kind.plural(),
                    if self.gzip { ".gz" } else { "" }
                )
            }
        }
    }
}

/// One line of a CHECKSUM file: a SHA-256 and the file it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumEntry {
    /// The expected SHA-256, 32 bytes.
    pub sha256: [u8; 32],
    /// The file name as written (no directory).
    pub file: String,
}

impl ChecksumEntry {
    /// The expected SHA-256 as 64 lowercase hex digits.
    #[must_use]
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Parses a CHECKSUM file: one `<64 hex digits><spaces or tab>[*]<file name>` per line,
/// in any order, with one or two spaces (both layouts occur), optional `*` (binary mode
/// of `sha256sum`), blank lines ignored, with or without a final newline.
///
/// # Errors
///
/// When a non-blank line is not in that form.
pub fn parse_checksums(text: &str) -> Result<Vec<ChecksumEntry>, NameError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || {
            NameError(format!(
                "CHECKSUM line {}: {line:?} is not '<sha256> <file>'",
                n + 1
            ))
        };
        let (hex, rest) = line.split_at_checked(64).ok_or_else(bad)?;
        if !rest.starts_with([' ', '\t']) {
            return Err(bad());
        }
        let file = rest.trim_start().trim_start_matches('*');
        if file.is_empty() {
            return Err(bad());
        }
        let mut sha256 = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16);
            let (Some(hi), Some(lo)) = (digit(pair[0]), digit(pair[1])) else {
                return Err(bad());
            };
            sha256[i] = u8::try_from(hi * 16 + lo).map_err(|_| bad())?;
        }
        out.push(ChecksumEntry {
            sha256,
            file: file.to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dump_names() {
        let n = DumpFileName::parse("data/2026/discogs_20260101_releases.xml.gz").unwrap();
        assert_eq!(
            n.date,
            DumpDate {
                year: 2026,
                month: 1,
                day: 1
            }
        );
        assert_eq!(n.kind(), Some(RecordKind::Release));
        assert!(n.gzip);
        assert_eq!(n.to_string(), "discogs_20260101_releases.xml.gz");
        let c = DumpFileName::parse("discogs_20191003_CHECKSUM.txt").unwrap();
        assert_eq!(c.content, DumpContent::Checksum);
        assert!(
            !DumpFileName::parse("discogs_20080309_artists.xml")
                .unwrap()
                .gzip
        );
    }

    #[test]
    fn rejects_other_names() {
        for bad in [
            "index.html",
            "discogs_2026010_releases.xml.gz",
            "discogs_20261301_releases.xml.gz",
            "discogs_20260101_release.xml.gz",
            "discogs_20260101_releases.json",
            "discogs_20260101_",
        ] {
            assert!(DumpFileName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checksum_layouts() {
        let h = "a".repeat(64);
        let text = format!("{h}  discogs_20180101_labels.xml.gz\n\n{h} *discogs_20180101_artists.xml.gz\r\n{h}\tdiscogs_20180101_CHECKSUM.txt");
        let entries = parse_checksums(&text).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].file, "discogs_20180101_artists.xml.gz");
        assert_eq!(entries[0].sha256, [0xaa; 32]);
        assert_eq!(entries[0].sha256_hex(), h);
        assert!(parse_checksums("xyz discogs.xml").is_err());
        assert!(parse_checksums(&format!("{}  f", "g".repeat(64))).is_err());
    }
}
