//! Artists (`discogs_YYYYMMDD_artists.xml.gz`).

use std::borrow::Cow;

use crate::owned::model_struct;
use crate::parts::{EntityRef, Image};

model_struct! {
    /// An artist: a person, group or alias.
    pub struct Artist<'a> {
        /// Discogs artist id (`<id>`); `0` only when the dump carried none (pre-2014 excerpts).
        pub id: u64,
        /// The artist's name, e.g. `The Persuader`.
        pub name: Cow<'a, str>,
        /// `realname`: a person's real name.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub real_name: Option<Cow<'a, str>>,
        /// Biography in Discogs markup (`[a=Name]`, `[l123]`, `[url=..]..[/url]`), kept as text.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub profile: Option<Cow<'a, str>>,
        /// `data_quality`, e.g. `Needs Vote`, `Correct`, `Complete and Correct`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub data_quality: Option<Cow<'a, str>>,
        /// Web links.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub urls: Vec<Cow<'a, str>>,
        /// `namevariations`: other spellings seen on releases.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub name_variations: Vec<Cow<'a, str>>,
        /// Other names the same artist records under.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub aliases: Vec<EntityRef<'a>>,
        /// A group's members.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub members: Vec<EntityRef<'a>>,
        /// The groups this artist is a member of.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub groups: Vec<EntityRef<'a>>,
        /// Images (dumps up to mid-2024).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub images: Vec<Image<'a>>,
    }
}
