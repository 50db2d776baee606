//! One record of any kind.

use crate::{Artist, Label, Master, RecordHash, RecordKind, Release};

/// A record of any of the four kinds.
// Releases are the largest variant, and also the most common record (19 M of 34 M);
// boxing them would add an allocation per record to save copies of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "lowercase")]
pub enum Record<'a> {
    /// From the artists dump.
    Artist(Artist<'a>),
    /// From the labels dump.
    Label(Label<'a>),
    /// From the masters dump.
    Master(Master<'a>),
    /// From the releases dump.
    Release(Release<'a>),
}

impl Record<'_> {
    /// Which kind of record this is.
    #[must_use]
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::Artist(_) => RecordKind::Artist,
            Self::Label(_) => RecordKind::Label,
            Self::Master(_) => RecordKind::Master,
            Self::Release(_) => RecordKind::Release,
        }
    }

    /// The record's Discogs id (`0` only for the rare pre-2014 record that has none).
    #[must_use]
    pub fn id(&self) -> u64 {
        match self {
            Self::Artist(r) => r.id,
            Self::Label(r) => r.id,
            Self::Master(r) => r.id,
            Self::Release(r) => r.id,
        }
    }

    /// The record's name (artists, labels) or title (masters, releases).
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Artist(r) => &r.name,
            Self::Label(r) => &r.name,
            Self::Master(r) => &r.title,
            Self::Release(r) => &r.title,
        }
    }

    /// SHA-256 over the canonical encoding (see [`crate::hash`]).
    #[must_use]
    pub fn hash(&self) -> RecordHash {
        RecordHash::of(self)
    }

    /// Converts into a form that owns all its text.
    #[must_use]
    pub fn into_owned(self) -> Record<'static> {
        match self {
            Self::Artist(r) => Record::Artist(r.into_owned()),
            Self::Label(r) => Record::Label(r.into_owned()),
            Self::Master(r) => Record::Master(r.into_owned()),
            Self::Release(r) => Record::Release(r.into_owned()),
        }
    }
}

macro_rules! record_from {
    ($($variant:ident),*) => {$(
        impl<'a> From<$variant<'a>> for Record<'a> {
            fn from(r: $variant<'a>) -> Self {
                Self::$variant(r)
            }
        }
    )*};
}
record_from!(Artist, Label, Master, Release);
