//! The four kinds of Discogs records.

use std::fmt;
use std::str::FromStr;

/// Which of the four dump files a record comes from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// `discogs_YYYYMMDD_artists.xml.gz`, records `<artist>`.
    Artist,
    /// `discogs_YYYYMMDD_labels.xml.gz`, records `<label>`.
    Label,
    /// `discogs_YYYYMMDD_masters.xml.gz`, records `<master>`.
    Master,
    /// `discogs_YYYYMMDD_releases.xml.gz`, records `<release>`.
    Release,
}

impl RecordKind {
    /// All four kinds, in the order the dumps are usually processed.
    pub const ALL: [RecordKind; 4] = [Self::Artist, Self::Label, Self::Master, Self::Release];

    /// The record element name (`artist`, `label`, `master`, `release`).
    #[must_use]
    pub fn element(self) -> &'static str {
        match self {
            Self::Artist => "artist",
            Self::Label => "label",
            Self::Master => "master",
            Self::Release => "release",
        }
    }

    /// The plural used for the root element, file names, exchanges and tables
    /// (`artists`, `labels`, `masters`, `releases`).
    #[must_use]
    pub fn plural(self) -> &'static str {
        match self {
            Self::Artist => "artists",
            Self::Label => "labels",
            Self::Master => "masters",
            Self::Release => "releases",
        }
    }

    /// The kind whose root element (plural) or record element (singular) is `name`.
    #[must_use]
    pub fn from_element(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"artists" | b"artist" => Self::Artist,
            b"labels" | b"label" => Self::Label,
            b"masters" | b"master" => Self::Master,
            b"releases" | b"release" => Self::Release,
            _ => return None,
        })
    }

    /// The byte that stands for this kind in the canonical encoding.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Artist => 1,
            Self::Label => 2,
            Self::Master => 3,
            Self::Release => 4,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.plural())
    }
}

/// The text given to [`RecordKind::from_str`] names no kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown record kind {0:?} (expected artists, labels, masters or releases)")]
pub struct UnknownKind(pub String);

impl FromStr for RecordKind {
    type Err = UnknownKind;

    /// Accepts the singular or plural, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_element(s.to_ascii_lowercase().as_bytes())
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}
