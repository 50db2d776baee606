//! Releases (`discogs_YYYYMMDD_releases.xml.gz`).

use std::borrow::Cow;

use crate::owned::model_struct;
use crate::parts::{Credit, Image, Video};

model_struct! {
    /// A release: one published version of a recording (a pressing, an edition).
    pub struct Release<'a> {
        /// Discogs release id (`<release id="…">`).
        pub id: u64,
        /// `status`, e.g. `Accepted`; absent in dumps since 2026-02.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub status: Option<Cow<'a, str>>,
        /// The release's title.
        pub title: Cow<'a, str>,
        /// Credited artists.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub artists: Vec<Credit<'a>>,
        /// Labels with catalogue numbers.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub labels: Vec<ReleaseLabel<'a>>,
        /// Series the release belongs to (dumps since Dec 2024).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub series: Vec<ReleaseLabel<'a>>,
        /// `extraartists`: credits with roles (producer, engineer, writer...).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub extra_artists: Vec<Credit<'a>>,
        /// Formats (vinyl, CD...).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub formats: Vec<Format<'a>>,
        /// Genres.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub genres: Vec<Cow<'a, str>>,
        /// Styles.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub styles: Vec<Cow<'a, str>>,
        /// Country of release, free text (`UK`, `Europe`, `Sweden`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub country: Option<Cow<'a, str>>,
        /// `released` as written in the dump: `YYYY`, `YYYY-MM-DD`, `YYYY-MM-00`, `YYYY-00-00`...
        #[serde(skip_serializing_if = "Option::is_none")]
        pub released: Option<Cow<'a, str>>,
        /// The year parsed from `released` (see [`year_from_released`]).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub year: Option<u16>,
        /// Notes in Discogs markup.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub notes: Option<Cow<'a, str>>,
        /// `data_quality`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub data_quality: Option<Cow<'a, str>>,
        /// The master this release is a version of; `None` when there is none (`0` or absent).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub master_id: Option<u64>,
        /// `master_id@is_main_release`: this release is its master's main release.
        pub is_main_release: bool,
        /// The track list, in order; headings and index tracks included.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub tracklist: Vec<Track<'a>>,
        /// Identifiers: barcodes, matrix/runout, rights societies...
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub identifiers: Vec<Identifier<'a>>,
        /// Videos.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub videos: Vec<Video<'a>>,
        /// Companies: pressing plants, publishers, studios...
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub companies: Vec<Company<'a>>,
        /// Images (dumps up to mid-2024).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub images: Vec<Image<'a>>,
    }
}

model_struct! {
    /// A label (or series) a release appeared on, with its catalogue number.
    pub struct ReleaseLabel<'a> {
        /// The label's id; `None` when the dump gives none (some 2017 releases).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub id: Option<u64>,
        /// The label's name.
        pub name: Cow<'a, str>,
        /// `catno`: catalogue number, free text (`SK032`, `none`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub catno: Option<Cow<'a, str>>,
    }
}

model_struct! {
    /// A format of a release, e.g. 2 × Vinyl, 12", 33 ⅓ RPM.
    pub struct Format<'a> {
        /// Format name: `Vinyl`, `CD`, `File`, `Cassette`...
        pub name: Cow<'a, str>,
        /// `qty` as written. Text, because one release has a 52-digit quantity; see
        /// [`Format::quantity`] for the number.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub qty: Option<Cow<'a, str>>,
        /// Free text, e.g. `Red`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub text: Option<Cow<'a, str>>,
        /// Descriptions: `12"`, `33 ⅓ RPM`, `Album`...
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub descriptions: Vec<Cow<'a, str>>,
    }
}

impl Format<'_> {
    /// `qty` as a number, when it is one that fits in a `u64`.
    #[must_use]
    pub fn quantity(&self) -> Option<u64> {
        self.qty.as_deref().and_then(|q| q.parse().ok())
    }
}

model_struct! {
    /// A track, a heading (no position) or an index track (with `sub_tracks`).
    pub struct Track<'a> {
        /// Position: `A1`, `1-3`, `CD1-5`; `None` for headings.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub position: Option<Cow<'a, str>>,
        /// The track's title.
        pub title: Cow<'a, str>,
        /// Duration as written: `M:SS`, `H:MM:SS`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub duration: Option<Cow<'a, str>>,
        /// Track artists.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub artists: Vec<Credit<'a>>,
        /// Track credits.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub extra_artists: Vec<Credit<'a>>,
        /// The parts of an index track.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub sub_tracks: Vec<Track<'a>>,
    }
}

model_struct! {
    /// An identifier printed on or assigned to a release.
    pub struct Identifier<'a> {
        /// `type`: `Barcode`, `Matrix / Runout`, `Rights Society`...
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        pub kind: Option<Cow<'a, str>>,
        /// Which one, e.g. `A-side runout`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub description: Option<Cow<'a, str>>,
        /// The value, e.g. `MPO SK 032 A1`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub value: Option<Cow<'a, str>>,
    }
}

model_struct! {
    /// A company credited on a release (`<company>`), e.g. pressed by, published by.
    pub struct Company<'a> {
        /// The company's label id.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub id: Option<u64>,
        /// The company's name.
        pub name: Cow<'a, str>,
        /// Catalogue number given with the credit.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub catno: Option<Cow<'a, str>>,
        /// Numeric role id (`entity_type`), e.g. 17.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub entity_type: Option<u32>,
        /// Role name (`entity_type_name`), e.g. `Pressed By`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub entity_type_name: Option<Cow<'a, str>>,
        /// API link, e.g. `https://api.discogs.com/labels/271046`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub resource_url: Option<Cow<'a, str>>,
    }
}

/// The year in a `released` value: its first four characters when they are digits and
/// not `0000`. `1999-03-00` gives 1999, `Unknown` gives `None`.
#[must_use]
pub fn year_from_released(released: &str) -> Option<u16> {
    let digits = released.as_bytes().get(..4)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    (year != 0).then_some(year)
}
