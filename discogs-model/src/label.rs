//! Labels (`discogs_YYYYMMDD_labels.xml.gz`).

use std::borrow::Cow;

use crate::owned::model_struct;
use crate::parts::{EntityRef, Image};

model_struct! {
    /// A record label, company or series.
    pub struct Label<'a> {
        /// Discogs label id (`<id>`); `0` only when the dump carried none (pre-2014 excerpts).
        pub id: u64,
        /// The label's name.
        pub name: Cow<'a, str>,
        /// `contactinfo`: postal address and phone, multi-line.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub contact_info: Option<Cow<'a, str>>,
        /// Description in Discogs markup, kept as text.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub profile: Option<Cow<'a, str>>,
        /// `data_quality`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub data_quality: Option<Cow<'a, str>>,
        /// `parentLabel`: the label this one belongs to.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub parent_label: Option<EntityRef<'a>>,
        /// Web links.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub urls: Vec<Cow<'a, str>>,
        /// Labels that belong to this one.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub sublabels: Vec<EntityRef<'a>>,
        /// Images (dumps up to mid-2024).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub images: Vec<Image<'a>>,
    }
}
