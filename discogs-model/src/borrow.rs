//! Decoding records that borrow their text from the input.
//!
//! The record types' derived `Deserialize` always copies text into owned strings, so that
//! `Record<'static>` can be read from any buffer (a database row, a temporary string).
//! The bus decodes whole messages of records instead, and keeps the message body for as
//! long as the records are in use, so copying every name and title is wasted work: this
//! module is a second decoder for the same JSON, used by [`crate::wire`], in which
//! strings without escapes are borrowed from the input (`Cow::Borrowed`).
//!
//! The JSON is the one serde's derive reads: field names are the Rust names, except
//! `kind`, which is `type` (`#[serde(rename = "type")]` on `Image::kind` and
//! `Identifier::kind`, the only renamed fields); missing fields take their default;
//! unknown fields are skipped. `model_struct!` generates the impls for every model struct.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// A value decoded by this module's borrowing decoder.
pub(crate) struct Borrowed<T>(pub(crate) T);

/// The JSON name of a model struct's field.
pub(crate) fn json_name(field: &'static str) -> &'static str {
    if field == "kind" {
        "type"
    } else {
        field
    }
}

impl<'a> Deserialize<'a> for Borrowed<Cow<'a, str>> {
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'a> Visitor<'a> for V {
            type Value = Cow<'a, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'a str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(Borrowed)
    }
}

impl<'a, T> Deserialize<'a> for Borrowed<Option<T>>
where
    Borrowed<T>: Deserialize<'a>,
{
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'a, T> Visitor<'a> for V<T>
        where
            Borrowed<T>: Deserialize<'a>,
        {
            type Value = Option<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or null")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
                Borrowed::<T>::deserialize(d).map(|b| Some(b.0))
            }
        }
        d.deserialize_option(V::<T>(PhantomData)).map(Borrowed)
    }
}

impl<'a, T> Deserialize<'a> for Borrowed<Vec<T>>
where
    Borrowed<T>: Deserialize<'a>,
{
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'a, T> Visitor<'a> for V<T>
        where
            Borrowed<T>: Deserialize<'a>,
        {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element::<Borrowed<T>>()? {
                    out.push(item.0);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V::<T>(PhantomData)).map(Borrowed)
    }
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl<'a> Deserialize<'a> for Borrowed<$t> {
            fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
                <$t>::deserialize(d).map(Borrowed)
            }
        }
    )*};
}
plain!(u64, u32, u16, bool);

/// A map key, borrowed when it has no escapes.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'a> Deserialize<'a> for Key<'a> {
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        Borrowed::<Cow<'a, str>>::deserialize(d).map(|b| Key(b.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Artist, Company, Credit, EntityRef, Format, Identifier, Image, Label, Master, Release,
        ReleaseLabel, Track, Video,
    };

    fn full_release() -> Release<'static> {
        let credit = Credit {
            id: Some(5),
            name: "Jesper Dahlbäck".into(),
            anv: Some("J. Dahlback".into()),
            join: Some("&".into()),
            role: Some("Written-By [\"quoted\"]".into()),
            tracks: Some("A1 to B2".into()),
        };
        Release {
            id: 3,
            status: Some("Accepted".into()),
            title: "Profound Sounds Vol. 1".into(),
            artists: vec![credit.clone()],
            labels: vec![ReleaseLabel {
                id: Some(4),
                name: "Svek".into(),
                catno: Some("SK032".into()),
            }],
            series: vec![],
            extra_artists: vec![credit.clone(), Credit::default()],
            formats: vec![Format {
                name: "Vinyl".into(),
                qty: Some("2".into()),
                text: None,
                descriptions: vec!["12\"".into(), "33 ⅓ RPM".into()],
            }],
            genres: vec!["Electronic".into()],
            styles: vec!["Techno".into(), "Tech House".into()],
            country: Some("Sweden".into()),
            released: Some("1999-03-00".into()),
            year: Some(1999),
            notes: Some("Line one\r\nline two \\ with a backslash\ttab".into()),
            data_quality: Some("Correct".into()),
            master_id: Some(5427),
            is_main_release: true,
            tracklist: vec![Track {
                position: Some("A".into()),
                title: "Östermalm".into(),
                duration: Some("4:45".into()),
                artists: vec![credit.clone()],
                extra_artists: vec![],
                sub_tracks: vec![Track {
                    title: "Part 1".into(),
                    ..Track::default()
                }],
            }],
            identifiers: vec![Identifier {
                kind: Some("Matrix / Runout".into()),
                description: Some("A-side".into()),
                value: Some("MPO SK 032 A1".into()),
            }],
            videos: vec![Video {
                src: Some("https://www.youtube.com/watch?v=x".into()),
                duration: Some(290),
                embed: true,
                title: Some("Title".into()),
                description: Some("<b>html</b>".into()),
            }],
            companies: vec![Company {
                id: Some(1),
                name: "MPO".into(),
                catno: None,
                entity_type: Some(17),
                entity_type_name: Some("Pressed By".into()),
                resource_url: None,
            }],
            images: vec![Image {
                kind: Some("primary".into()),
                uri: Some(String::new().into()),
                uri150: None,
                width: Some(600),
                height: Some(600),
            }],
        }
    }

    /// The borrowing decoder reads exactly what the derive writes, for every field of
    /// every type, and borrows the strings that have no escapes.
    #[test]
    fn same_as_the_derive() {
        let release = full_release();
        let json = serde_json::to_string(&release).unwrap();
        let derived: Release<'static> = serde_json::from_str(&json).unwrap();
        let borrowed = serde_json::from_str::<Borrowed<Release<'_>>>(&json)
            .unwrap()
            .0;
        assert_eq!(borrowed, derived);
        assert_eq!(borrowed, release);
        assert!(matches!(borrowed.title, Cow::Borrowed(_)));
        assert!(
            matches!(borrowed.notes, Some(Cow::Owned(_))),
            "escapes force a copy"
        );
        assert!(matches!(
            borrowed.identifiers[0].kind,
            Some(Cow::Borrowed(_))
        ));

        let artist = Artist {
            id: 1,
            name: "The Persuader".into(),
            real_name: Some("Jesper Dahlbäck".into()),
            profile: Some("Swedish [a=Adam Beyer] friend.".into()),
            data_quality: Some("Needs Vote".into()),
            urls: vec!["https://example.com".into()],
            name_variations: vec!["Persuader".into()],
            aliases: vec![EntityRef {
                id: Some(2),
                name: "Lenk".into(),
            }],
            members: vec![],
            groups: vec![EntityRef {
                id: None,
                name: "Unlinked".into(),
            }],
            images: vec![Image::default()],
        };
        let json = serde_json::to_string(&artist).unwrap();
        assert_eq!(
            serde_json::from_str::<Borrowed<Artist<'_>>>(&json)
                .unwrap()
                .0,
            artist
        );

        let label = Label {
            id: 1,
            name: "Planet E".into(),
            sublabels: vec![EntityRef {
                id: Some(86_537),
                name: "Antidote (4)".into(),
            }],
            ..Label::default()
        };
        let json = serde_json::to_string(&label).unwrap();
        assert_eq!(
            serde_json::from_str::<Borrowed<Label<'_>>>(&json)
                .unwrap()
                .0,
            label
        );

        let master = Master {
            id: 5427,
            title: "Stockholm".into(),
            main_release: Some(3),
            year: Some(1999),
            artists: vec![Credit::default()],
            genres: vec!["Electronic".into()],
            ..Master::default()
        };
        let json = serde_json::to_string(&master).unwrap();
        assert_eq!(
            serde_json::from_str::<Borrowed<Master<'_>>>(&json)
                .unwrap()
                .0,
            master
        );
    }

    #[test]
    fn tolerates_what_the_derive_tolerates() {
        // Missing fields take defaults, unknown ones are skipped, null is None.
        let json = r#"{"id":7,"title":"T","extra":{"x":[1]},"country":null,"formats":[{"name":"CD","qty":null}]}"#;
        let derived: Release<'static> = serde_json::from_str(json).unwrap();
        let borrowed = serde_json::from_str::<Borrowed<Release<'_>>>(json)
            .unwrap()
            .0;
        assert_eq!(borrowed, derived);
        // Wrong types are errors in both.
        for bad in [
            r#"{"id":"7"}"#,
            r#"{"id":1,"genres":"Rock"}"#,
            r#"{"id":1,"title":3}"#,
        ] {
            assert!(
                serde_json::from_str::<Release<'static>>(bad).is_err(),
                "{bad}"
            );
            assert!(
                serde_json::from_str::<Borrowed<Release<'_>>>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
