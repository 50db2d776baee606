//! Masters (`discogs_YYYYMMDD_masters.xml.gz`).

use std::borrow::Cow;

use crate::owned::model_struct;
use crate::parts::{Credit, Image, Video};

model_struct! {
    /// A master release: the work that groups the versions (releases) of a recording.
    pub struct Master<'a> {
        /// Discogs master id (`<master id="…">`).
        pub id: u64,
        /// The master's title.
        pub title: Cow<'a, str>,
        /// `main_release`: the id of the release chosen as the main version.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub main_release: Option<u64>,
        /// Year of first release; `None` when the dump says `0` (unknown).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub year: Option<u16>,
        /// Credited artists.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub artists: Vec<Credit<'a>>,
        /// Genres, e.g. `Electronic`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub genres: Vec<Cow<'a, str>>,
        /// Styles, e.g. `Deep House`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub styles: Vec<Cow<'a, str>>,
        /// Notes in Discogs markup.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub notes: Option<Cow<'a, str>>,
        /// `data_quality`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub data_quality: Option<Cow<'a, str>>,
        /// Videos.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub videos: Vec<Video<'a>>,
        /// Images (dumps up to mid-2024).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub images: Vec<Image<'a>>,
    }
}
