//! The parts that several record kinds share: images, credits, references, videos.

use std::borrow::Cow;

use crate::owned::model_struct;

model_struct! {
    /// An image entry (`<image>`). Present in dumps up to mid-2024; the URIs are empty
    /// since about 2017, the sizes remain.
    pub struct Image<'a> {
        /// `type`: `primary` or `secondary`.
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        pub kind: Option<Cow<'a, str>>,
        /// `uri`, empty in recent dumps.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub uri: Option<Cow<'a, str>>,
        /// `uri150`, the thumbnail, empty in recent dumps.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub uri150: Option<Cow<'a, str>>,
        /// Width in pixels.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub width: Option<u32>,
        /// Height in pixels.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub height: Option<u32>,
    }
}

model_struct! {
    /// A named reference to another entity: an artist's alias, member or group, a
    /// label's sublabel or parent label. Either half may be missing in some dumps
    /// (2017 aliases have no id; a 2026 parent label may carry only its id).
    pub struct EntityRef<'a> {
        /// The referenced entity's id; `None` when the dump gives none (or `0`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub id: Option<u64>,
        /// The referenced entity's name; empty when the dump gives none.
        #[serde(skip_serializing_if = "str::is_empty")]
        pub name: Cow<'a, str>,
    }
}

model_struct! {
    /// An artist credit (`<artist>` under `artists` or `extraartists` of a master,
    /// release or track).
    pub struct Credit<'a> {
        /// The artist's id; `None` for an unlinked credit (`<id>0</id>` or no `<id>`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub id: Option<u64>,
        /// The artist's name as in the database.
        pub name: Cow<'a, str>,
        /// Artist name variation used on this release.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub anv: Option<Cow<'a, str>>,
        /// Joiner to the next artist (`,`, `&`, `Feat.`...).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub join: Option<Cow<'a, str>>,
        /// The credit's role (extra artists), e.g. `Written-By [All Tracks By]`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub role: Option<Cow<'a, str>>,
        /// The tracks the credit applies to, free text such as `A1, B2`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub tracks: Option<Cow<'a, str>>,
    }
}

model_struct! {
    /// A video link (`<video>` on masters and releases).
    pub struct Video<'a> {
        /// `src`: the video URL.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub src: Option<Cow<'a, str>>,
        /// `duration` in seconds (`0` is kept: the dumps use it for unknown).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub duration: Option<u32>,
        /// `embed="true"`.
        pub embed: bool,
        /// The video's title.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub title: Option<Cow<'a, str>>,
        /// The video's description, often long and multi-line.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub description: Option<Cow<'a, str>>,
    }
}
