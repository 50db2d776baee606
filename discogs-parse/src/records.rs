//! Record parsers: one function per kind, each walking one record's elements and
//! filling the model types with slices of the input wherever no unescaping is needed.
//! Unknown elements are skipped, so a new field in a future dump does not break parsing.

use std::borrow::Cow;

use discogs_model::{
    year_from_released, Artist, Company, Credit, EntityRef, Format, Identifier, Image, Label,
    Master, Record, RecordKind, Release, ReleaseLabel, Track, Video,
};

use crate::xml::{decode_text, Attrs, Start, Tag, Tokenizer, XmlError, XmlResult};

/// Parses the one record in `src` (which starts at or before the record's start tag).
pub(crate) fn parse_record<'a>(kind: RecordKind, src: &'a str) -> XmlResult<Record<'a>> {
    let mut record = empty_record(kind);
    parse_record_into(src, &mut record)?;
    Ok(record)
}

/// An empty record of `kind`, for [`parse_record_into`] to fill.
#[inline]
pub(crate) fn empty_record<'a>(kind: RecordKind) -> Record<'a> {
    match kind {
        RecordKind::Artist => Record::Artist(Artist::default()),
        RecordKind::Label => Record::Label(Label::default()),
        RecordKind::Master => Record::Master(Master::default()),
        RecordKind::Release => Record::Release(Release::default()),
    }
}

/// Parses the one record in `src` into `out`, an empty record of the dump's kind (see
/// [`empty_record`]). Filling the caller's record in place spares copying a record of
/// several hundred bytes through every layer on the way out, which for short records
/// (artists average 316 bytes of XML) costs as much as a part of the parse.
pub(crate) fn parse_record_into<'a>(src: &'a str, out: &mut Record<'a>) -> XmlResult<()> {
    let kind = out.kind();
    let mut t = Tokenizer::new(src);
    let root = loop {
        match t.next_tag()?.1 {
            Tag::Start(s) => break s,
            Tag::Eof => {
                return Err(XmlError {
                    offset: 0,
                    message: "no element in record".into(),
                })
            }
            _ => {}
        }
    };
    if root.name != kind.element() {
        return Err(XmlError {
            offset: root.offset,
            message: format!("expected <{}>, found <{}>", kind.element(), root.name).into(),
        });
    }
    match out {
        Record::Artist(a) => artist(&mut t, &root, a),
        Record::Label(l) => label(&mut t, &root, l),
        Record::Master(m) => master(&mut t, &root, m),
        Record::Release(r) => release(&mut t, &root, r),
    }
}

/// `None` for empty text.
fn opt(text: Cow<'_, str>) -> Option<Cow<'_, str>> {
    (!text.is_empty()).then_some(text)
}

/// An id: `None` when empty or `0`, an error when not a number.
fn id_value(text: &str, at: usize) -> XmlResult<Option<u64>> {
    if text.is_empty() {
        return Ok(None);
    }
    // Up to 19 digits cannot overflow: accumulate them without `parse`'s checks.
    if text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit()) {
        let id = text.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
        return Ok((id != 0).then_some(id));
    }
    match text.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(id) => Ok(Some(id)),
        Err(_) => Err(XmlError {
            offset: at,
            message: format!("invalid id {text:?}").into(),
        }),
    }
}

/// A number in an attribute or element where a bad value is not worth losing the
/// record for: `None` when it does not parse.
fn lenient_number<T: std::str::FromStr>(text: &str) -> Option<T> {
    text.parse().ok()
}

/// The decoded value of an attribute, `None` when empty.
fn attr_value(raw: &str) -> Option<Cow<'_, str>> {
    opt(decode_text(raw))
}

fn texts<'a>(
    t: &mut Tokenizer<'a>,
    list: &Start<'a>,
    item: &str,
    out: &mut Vec<Cow<'a, str>>,
) -> XmlResult<()> {
    t.children(list, |t, c| {
        if c.name == item {
            if let Some(v) = opt(t.text(&c)?) {
                out.push(v);
            }
            Ok(())
        } else {
            t.skip(&c)
        }
    })
}

/// `<name id="…">Name</name>` (aliases, members, groups) or `<label id="…">Name</label>`
/// (sublabels); other children (the bare `<id>` list in members) are skipped.
fn refs<'a>(
    t: &mut Tokenizer<'a>,
    list: &Start<'a>,
    item: &str,
    out: &mut Vec<EntityRef<'a>>,
) -> XmlResult<()> {
    t.children(list, |t, c| {
        if c.name == item {
            let r = entity_ref(t, &c)?;
            if r.id.is_some() || !r.name.is_empty() {
                out.push(r);
            }
            Ok(())
        } else {
            t.skip(&c)
        }
    })
}

fn entity_ref<'a>(t: &mut Tokenizer<'a>, c: &Start<'a>) -> XmlResult<EntityRef<'a>> {
    let mut id = None;
    for (k, v) in Attrs::new(c.attrs) {
        if k == "id" {
            id = id_value(&decode_text(v), c.offset)?;
        }
    }
    Ok(EntityRef {
        id,
        name: t.text(c)?,
    })
}

fn images<'a>(t: &mut Tokenizer<'a>, list: &Start<'a>, out: &mut Vec<Image<'a>>) -> XmlResult<()> {
    t.children(list, |t, c| {
        if c.name == "image" {
            let mut img = Image::default();
            for (k, v) in Attrs::new(c.attrs) {
                match k {
                    "type" => img.kind = attr_value(v),
                    "uri" => img.uri = attr_value(v),
                    "uri150" => img.uri150 = attr_value(v),
                    "width" => img.width = lenient_number(v.trim()),
                    "height" => img.height = lenient_number(v.trim()),
                    _ => {}
                }
            }
            out.push(img);
        }
        t.skip(&c)
    })
}

fn credits<'a>(
    t: &mut Tokenizer<'a>,
    list: &Start<'a>,
    out: &mut Vec<Credit<'a>>,
) -> XmlResult<()> {
    t.children(list, |t, c| {
        if c.name != "artist" {
            return t.skip(&c);
        }
        let mut credit = Credit::default();
        t.children(&c, |t, f| {
            match f.name {
                "id" => credit.id = id_value(&t.text(&f)?, f.offset)?,
                "name" => credit.name = t.text(&f)?,
                "anv" => credit.anv = opt(t.text(&f)?),
                "join" => credit.join = opt(t.text(&f)?),
                "role" => credit.role = opt(t.text(&f)?),
                "tracks" => credit.tracks = opt(t.text(&f)?),
                _ => t.skip(&f)?,
            }
            Ok(())
        })?;
        out.push(credit);
        Ok(())
    })
}

fn videos<'a>(t: &mut Tokenizer<'a>, list: &Start<'a>, out: &mut Vec<Video<'a>>) -> XmlResult<()> {
    t.children(list, |t, c| {
        if c.name != "video" {
            return t.skip(&c);
        }
        let mut video = Video::default();
        for (k, v) in Attrs::new(c.attrs) {
            match k {
                "src" => video.src = attr_value(v),
                "duration" => video.duration = lenient_number(v.trim()),
                "embed" => video.embed = v.trim() == "true",
                _ => {}
            }
        }
        t.children(&c, |t, f| {
            match f.name {
                "title" => video.title = opt(t.text(&f)?),
                "description" => video.description = opt(t.text(&f)?),
                _ => t.skip(&f)?,
            }
            Ok(())
        })?;
        out.push(video);
        Ok(())
    })
}

/// The record id from a `<id>` element: `0` when empty (a pre-2014 record without id).
fn record_id(text: &str, at: usize) -> XmlResult<u64> {
    Ok(id_value(text, at)?.unwrap_or(0))
}

/// The record id from the `id` attribute of `<master>` or `<release>`.
fn id_attr(start: &Start<'_>) -> XmlResult<u64> {
    for (k, v) in Attrs::new(start.attrs) {
        if k == "id" {
            return record_id(v.trim(), start.offset);
        }
    }
    Ok(0)
}

fn artist<'a>(t: &mut Tokenizer<'a>, root: &Start<'a>, a: &mut Artist<'a>) -> XmlResult<()> {
    t.children(root, |t, c| {
        match c.name {
            "id" => a.id = record_id(&t.text(&c)?, c.offset)?,
            "name" => a.name = t.text(&c)?,
            "realname" => a.real_name = opt(t.text(&c)?),
            "profile" => a.profile = opt(t.text(&c)?),
            "data_quality" => a.data_quality = opt(t.text(&c)?),
            "urls" => texts(t, &c, "url", &mut a.urls)?,
            "namevariations" => texts(t, &c, "name", &mut a.name_variations)?,
            "aliases" => refs(t, &c, "name", &mut a.aliases)?,
            "members" => refs(t, &c, "name", &mut a.members)?,
            "groups" => refs(t, &c, "name", &mut a.groups)?,
            "images" => images(t, &c, &mut a.images)?,
            _ => t.skip(&c)?,
        }
        Ok(())
    })
}

fn label<'a>(t: &mut Tokenizer<'a>, root: &Start<'a>, l: &mut Label<'a>) -> XmlResult<()> {
    t.children(root, |t, c| {
        match c.name {
            "id" => l.id = record_id(&t.text(&c)?, c.offset)?,
            "name" => l.name = t.text(&c)?,
            "contactinfo" => l.contact_info = opt(t.text(&c)?),
            "profile" => l.profile = opt(t.text(&c)?),
            "data_quality" => l.data_quality = opt(t.text(&c)?),
            "parentLabel" => {
                let r = entity_ref(t, &c)?;
                if r.id.is_some() || !r.name.is_empty() {
                    l.parent_label = Some(r);
                }
            }
            "urls" => texts(t, &c, "url", &mut l.urls)?,
            "sublabels" => refs(t, &c, "label", &mut l.sublabels)?,
            "images" => images(t, &c, &mut l.images)?,
            _ => t.skip(&c)?,
        }
        Ok(())
    })
}

fn master<'a>(t: &mut Tokenizer<'a>, root: &Start<'a>, m: &mut Master<'a>) -> XmlResult<()> {
    m.id = id_attr(root)?;
    t.children(root, |t, c| {
        match c.name {
            "main_release" => m.main_release = id_value(&t.text(&c)?, c.offset)?,
            "title" => m.title = t.text(&c)?,
            "year" => m.year = lenient_number::<u16>(&t.text(&c)?).filter(|&y| y != 0),
            "artists" => credits(t, &c, &mut m.artists)?,
            "genres" => texts(t, &c, "genre", &mut m.genres)?,
            "styles" => texts(t, &c, "style", &mut m.styles)?,
            "notes" => m.notes = opt(t.text(&c)?),
            "data_quality" => m.data_quality = opt(t.text(&c)?),
            "videos" => videos(t, &c, &mut m.videos)?,
            "images" => images(t, &c, &mut m.images)?,
            _ => t.skip(&c)?,
        }
        Ok(())
    })
}

fn release_labels<'a>(
    t: &mut Tokenizer<'a>,
    list: &Start<'a>,
    item: &str,
    out: &mut Vec<ReleaseLabel<'a>>,
) -> XmlResult<()> {
    t.children(list, |t, c| {
        if c.name == item {
            let mut l = ReleaseLabel::default();
            for (k, v) in Attrs::new(c.attrs) {
                match k {
                    "id" => l.id = id_value(&decode_text(v), c.offset)?,
                    "name" => l.name = decode_text(v),
                    "catno" => l.catno = attr_value(v),
                    _ => {}
                }
            }
            out.push(l);
        }
        t.skip(&c)
    })
}

fn formats<'a>(
    t: &mut Tokenizer<'a>,
    list: &Start<'a>,
    out: &mut Vec<Format<'a>>,
) -> XmlResult<()> {
    t.children(list, |t, c| {
        if c.name != "format" {
            return t.skip(&c);
        }
        let mut f = Format::default();
        for (k, v) in Attrs::new(c.attrs) {
            match k {
                "name" => f.name = decode_text(v),
                "qty" => f.qty = attr_value(v),
                "text" => f.text = attr_value(v),
                _ => {}
            }
        }
        t.children(&c, |t, d| {
            if d.name == "descriptions" {
                texts(t, &d, "description", &mut f.descriptions)
            } else {
                t.skip(&d)
            }
        })?;
        out.push(f);
        Ok(())
    })
}

fn tracks<'a>(t: &mut Tokenizer<'a>, list: &Start<'a>, out: &mut Vec<Track<'a>>) -> XmlResult<()> {
    t.enter(list)?;
    t.children(list, |t, c| {
        if c.name != "track" {
            return t.skip(&c);
        }
        let mut track = Track::default();
        t.children(&c, |t, f| {
            match f.name {
                "position" => track.position = opt(t.text(&f)?),
                "title" => track.title = t.text(&f)?,
                "duration" => track.duration = opt(t.text(&f)?),
                "artists" => credits(t, &f, &mut track.artists)?,
                "extraartists" => credits(t, &f, &mut track.extra_artists)?,
                "sub_tracks" => tracks(t, &f, &mut track.sub_tracks)?,
                _ => t.skip(&f)?,
            }
            Ok(())
        })?;
        out.push(track);
        Ok(())
    })?;
    t.leave();
    Ok(())
}

fn identifiers<'a>(
    t: &mut Tokenizer<'a>,
    list: &Start<'a>,
    out: &mut Vec<Identifier<'a>>,
) -> XmlResult<()> {
    t.children(list, |t, c| {
        if c.name == "identifier" {
            let mut i = Identifier::default();
            for (k, v) in Attrs::new(c.attrs) {
                match k {
                    "type" => i.kind = attr_value(v),
                    "description" => i.description = attr_value(v),
                    "value" => i.value = attr_value(v),
                    _ => {}
                }
            }
            out.push(i);
        }
        t.skip(&c)
    })
}

fn companies<'a>(
    t: &mut Tokenizer<'a>,
    list: &Start<'a>,
    out: &mut Vec<Company<'a>>,
) -> XmlResult<()> {
    t.children(list, |t, c| {
        if c.name != "company" {
            return t.skip(&c);
        }
        let mut co = Company::default();
        t.children(&c, |t, f| {
            match f.name {
                "id" => co.id = id_value(&t.text(&f)?, f.offset)?,
                "name" => co.name = t.text(&f)?,
                "catno" => co.catno = opt(t.text(&f)?),
                "entity_type" => co.entity_type = lenient_number(&t.text(&f)?),
                "entity_type_name" => co.entity_type_name = opt(t.text(&f)?),
                "resource_url" => co.resource_url = opt(t.text(&f)?),
                _ => t.skip(&f)?,
            }
            Ok(())
        })?;
        out.push(co);
        Ok(())
    })
}

fn release<'a>(t: &mut Tokenizer<'a>, root: &Start<'a>, r: &mut Release<'a>) -> XmlResult<()> {
    r.id = id_attr(root)?;
    for (k, v) in Attrs::new(root.attrs) {
        if k == "status" {
            r.status = attr_value(v);
        }
    }
    t.children(root, |t, c| {
        match c.name {
            "title" => r.title = t.text(&c)?,
            "artists" => credits(t, &c, &mut r.artists)?,
            "labels" => release_labels(t, &c, "label", &mut r.labels)?,
            "series" => release_labels(t, &c, "series", &mut r.series)?,
            "extraartists" => credits(t, &c, &mut r.extra_artists)?,
            "formats" => formats(t, &c, &mut r.formats)?,
            "genres" => texts(t, &c, "genre", &mut r.genres)?,
            "styles" => texts(t, &c, "style", &mut r.styles)?,
            "country" => r.country = opt(t.text(&c)?),
            "released" => r.released = opt(t.text(&c)?),
            "notes" => r.notes = opt(t.text(&c)?),
            "data_quality" => r.data_quality = opt(t.text(&c)?),
            "master_id" => {
                let mut main = false;
                for (k, v) in Attrs::new(c.attrs) {
                    if k == "is_main_release" {
                        main = v.trim() == "true";
                    }
                }
                r.master_id = id_value(&t.text(&c)?, c.offset)?;
                r.is_main_release = main && r.master_id.is_some();
            }
            "tracklist" => tracks(t, &c, &mut r.tracklist)?,
            "identifiers" => identifiers(t, &c, &mut r.identifiers)?,
            "videos" => videos(t, &c, &mut r.videos)?,
            "companies" => companies(t, &c, &mut r.companies)?,
            "images" => images(t, &c, &mut r.images)?,
            _ => t.skip(&c)?,
        }
        Ok(())
    })?;
    r.year = r.released.as_deref().and_then(year_from_released);
    Ok(())
}
