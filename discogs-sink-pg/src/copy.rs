//! Binary COPY rows encoded by hand into large chunks.
//!
//! `tokio_postgres::binary_copy::BinaryCopyInWriter` sends a `CopyData` message through the
//! connection task whenever its buffer passes 4 KB, which for ~2.5 KB release rows is one
//! channel message and one socket write per row. Here each stream encodes its rows (the
//! JSON straight into the COPY buffer, no intermediate copy) and sends 256 KB chunks, so the
//! client costs less per row and the server starts parsing the first chunk while the client
//! encodes the next.

use bytes::{BufMut, Bytes, BytesMut};
use discogs_model::{Record, SinkRecord};
use futures_util::SinkExt;
use postgres_types::{IsNull, ToSql, Type};
use tokio_postgres::{CopyInSink, Transaction};

use crate::schema::columns;
use crate::sink::{big, big_opt};
use crate::PgSinkError;

/// Chunk size sent per `CopyData` message.
const CHUNK: usize = 256 * 1024;

/// `PGCOPY\n\377\r\n\0`, flags (0) and header extension length (0).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// One binary COPY in progress: rows are encoded into `buf` and sent when it passes
/// [`CHUNK`].
pub(crate) struct CopyWriter {
    sink: std::pin::Pin<Box<CopyInSink<Bytes>>>,
    buf: BytesMut,
    json: Json,
}

/// Scratch space for a record's JSON: as `serde_json` writes it, and with sorted keys.
#[derive(Debug, Default)]
pub(crate) struct Json {
    raw: Vec<u8>,
    sorted: Vec<u8>,
    sorter: KeySorter,
}

impl CopyWriter {
    /// Starts `copy` (a `COPY … FROM STDIN (FORMAT binary)` statement) in `tx`.
    pub(crate) async fn start(tx: &Transaction<'_>, copy: &str) -> Result<Self, PgSinkError> {
        let sink = tx
            .copy_in(copy)
            .await
            .map_err(PgSinkError::pg("starting COPY"))?;
        let mut buf = BytesMut::with_capacity(CHUNK + 64 * 1024);
        buf.put_slice(HEADER);
        Ok(Self {
            sink: Box::pin(sink),
            buf,
            json: Json::default(),
        })
    }

    /// Encodes one record as a row of its kind's [`columns`], and sends the buffer when
    /// it is full.
    pub(crate) async fn row(&mut self, r: &SinkRecord<'_>) -> Result<(), PgSinkError> {
        encode_row(&mut self.buf, &mut self.json, r)?;
        if self.buf.len() >= CHUNK {
            let chunk = self.buf.split().freeze();
            self.sink
                .send(chunk)
                .await
                .map_err(PgSinkError::pg("sending COPY rows"))?;
        }
        Ok(())
    }

    /// Sends the rest and the trailer; returns the rows the server copied.
    pub(crate) async fn finish(mut self) -> Result<u64, PgSinkError> {
        self.buf.put_i16(-1);
        let chunk = self.buf.split().freeze();
        self.sink
            .send(chunk)
            .await
            .map_err(PgSinkError::pg("sending COPY rows"))?;
        self.sink
            .as_mut()
            .finish()
            .await
            .map_err(PgSinkError::pg("finishing COPY"))
    }
}

/// Appends one field: its length (or -1 for NULL) and its binary value.
fn field(
    buf: &mut BytesMut,
    id: u64,
    value: &(dyn ToSql + Sync),
    ty: &Type,
) -> Result<(), PgSinkError> {
    let at = buf.len();
    buf.put_i32(0);
    let written = value
        .to_sql_checked(ty, buf)
        .map_err(|source| PgSinkError::Field { id, source })?;
    let len = match written {
        IsNull::Yes => -1,
        IsNull::No => i32::try_from(buf.len() - at - 4).map_err(|e| PgSinkError::Field {
            id,
            source: e.into(),
        })?,
    };
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Appends the JSONB field: version byte 1 and the record's JSON text with its keys in
/// JSONB order ([`KeySorter`]).
fn jsonb<T: serde::Serialize>(
    buf: &mut BytesMut,
    json: &mut Json,
    id: u64,
    value: &T,
) -> Result<(), PgSinkError> {
    json.raw.clear();
    serde_json::to_writer(&mut json.raw, value)
        .map_err(|source| PgSinkError::Encode { id, source })?;
    let text = if json.sorter.sort(&json.raw, &mut json.sorted) {
        &json.sorted
    } else {
        &json.raw
    };
    let len = i32::try_from(text.len() + 1).map_err(|e| PgSinkError::Field {
        id,
        source: e.into(),
    })?;
    buf.reserve(text.len() + 5);
    buf.put_i32(len);
    buf.put_u8(1);
    buf.put_slice(text);
    Ok(())
}

/// Appends one row: field count, then `id, sha256, <extracted columns>, data`.
fn encode_row(buf: &mut BytesMut, json: &mut Json, r: &SinkRecord<'_>) -> Result<(), PgSinkError> {
    let id = r.record.id();
    let types = columns(r.record.kind());
    let count = i16::try_from(types.len()).unwrap_or(i16::MAX);
    buf.put_i16(count);
    let key = big(id)?;
    let sha: &[u8] = r.hash.as_bytes();
    let head: [&(dyn ToSql + Sync); 2] = [&key, &sha];
    let mut put = |values: &[&(dyn ToSql + Sync)]| -> Result<(), PgSinkError> {
        for (value, (_, ty)) in head.iter().chain(values).zip(types) {
            field(buf, id, *value, ty)?;
        }
        Ok(())
    };
    match &r.record {
        Record::Artist(a) => {
            put(&[&a.name, &a.real_name])?;
            jsonb(buf, json, id, a)
        }
        Record::Label(l) => {
            let parent = big_opt(l.parent_label.as_ref().and_then(|p| p.id))?;
            put(&[&l.name, &parent])?;
            jsonb(buf, json, id, l)
        }
        Record::Master(m) => {
            let year = m.year.map(i32::from);
            let main = big_opt(m.main_release)?;
            put(&[&m.title, &year, &main, &m.genres, &m.styles])?;
            jsonb(buf, json, id, m)
        }
        Record::Release(x) => {
            let year = x.year.map(i32::from);
            let master = big_opt(x.master_id)?;
            put(&[
                &x.title,
                &year,
                &x.released,
                &x.country,
                &x.status,
                &master,
                &x.genres,
                &x.styles,
            ])?;
            jsonb(buf, json, id, x)
        }
    }
}

/// Rewrites compact JSON (as `serde_json` writes it) with the keys of every object in the
/// order JSONB stores them: shorter keys first, then bytewise.
///
/// The server sorts each object's keys while parsing JSONB input; keys in struct
/// declaration order made that sort ~8% of its CPU on a first load. Already sorted keys
/// make it a linear check. The result is the same JSON value; only member order changes.
/// Returns `false` (and leaves `out` unspecified) when `src` is not what it expects; the
/// caller then sends `src` as it is, which the server sorts itself.
#[derive(Debug, Default)]
pub(crate) struct KeySorter {
    /// Member spans in `out`: (key start, key end, value end), a stack across nesting.
    spans: Vec<(usize, usize, usize)>,
    /// A copy of an object's members while they are written back in order.
    tmp: Vec<u8>,
}

impl KeySorter {
    /// Writes `src` into `out` (cleared first) with sorted keys.
    pub(crate) fn sort(&mut self, src: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        self.spans.clear();
        let mut pos = 0;
        self.value(src, &mut pos, out).is_some() && pos == src.len()
    }

    fn value(&mut self, src: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> Option<()> {
        match *src.get(*pos)? {
            b'{' => self.object(src, pos, out),
            b'[' => self.array(src, pos, out),
            b'"' => string(src, pos, out),
            _ => {
                let start = *pos;
                while !matches!(src.get(*pos), None | Some(b',' | b']' | b'}')) {
                    *pos += 1;
                }
                out.extend_from_slice(&src[start..*pos]);
                (*pos > start).then_some(())
            }
        }
    }

    fn array(&mut self, src: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> Option<()> {
        out.push(b'[');
        *pos += 1;
        if src.get(*pos) == Some(&b']') {
            *pos += 1;
            out.push(b']');
            return Some(());
        }
        loop {
            self.value(src, pos, out)?;
            let c = *src.get(*pos)?;
            *pos += 1;
            out.push(c);
            match c {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    fn object(&mut self, src: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> Option<()> {
        out.push(b'{');
        *pos += 1;
        if src.get(*pos) == Some(&b'}') {
            *pos += 1;
            out.push(b'}');
            return Some(());
        }
        let base = self.spans.len();
        let region = out.len();
        loop {
            let key = out.len();
            string(src, pos, out)?;
            let key_end = out.len();
            if src.get(*pos) != Some(&b':') {
                return None;
            }
            *pos += 1;
            out.push(b':');
            self.value(src, pos, out)?;
            self.spans.push((key, key_end, out.len()));
            let c = *src.get(*pos)?;
            *pos += 1;
            match c {
                b',' => out.push(b','),
                b'}' => break,
                _ => return None,
            }
        }
        let members = &mut self.spans[base..];
        let sorted = members
            .windows(2)
            .all(|w| jsonb_key_order(out, &w[0], &w[1]).is_le());
        if !sorted {
            self.tmp.clear();
            self.tmp.extend_from_slice(&out[region..]);
            let tmp = &self.tmp;
            members.sort_by(|a, b| {
                let ka = &tmp[a.0 - region..a.1 - region];
                let kb = &tmp[b.0 - region..b.1 - region];
                ka.len().cmp(&kb.len()).then_with(|| ka.cmp(kb))
            });
            out.truncate(region);
            for (i, &(start, _, end)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&tmp[start - region..end - region]);
            }
        }
        self.spans.truncate(base);
        out.push(b'}');
        Some(())
    }
}

/// JSONB's key order for two member spans of `out`: length, then bytes.
fn jsonb_key_order(
    out: &[u8],
    a: &(usize, usize, usize),
    b: &(usize, usize, usize),
) -> std::cmp::Ordering {
    let (ka, kb) = (&out[a.0..a.1], &out[b.0..b.1]);
    ka.len().cmp(&kb.len()).then_with(|| ka.cmp(kb))
}

/// Copies a JSON string (quotes included) from `src` at `pos` to `out`.
fn string(src: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> Option<()> {
    let start = *pos;
    if src.get(start) != Some(&b'"') {
        return None;
    }
    *pos += 1;
    loop {
        match *src.get(*pos)? {
            b'"' => break,
            b'\\' => *pos += 2,
            _ => *pos += 1,
        }
    }
    *pos += 1;
    out.extend_from_slice(&src[start..*pos]);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use discogs_model::conformance::sample_release;

    fn sorted(src: &str) -> String {
        let mut out = Vec::new();
        assert!(KeySorter::default().sort(src.as_bytes(), &mut out), "{src}");
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keys_in_jsonb_order_at_every_depth() {
        assert_eq!(
            sorted(
                r#"{"title":"x","id":1,"a":[{"zz":null,"b":true},{}],"ab":{"yy":-1.5e3,"x":[]}}"#
            ),
            r#"{"a":[{"b":true,"zz":null},{}],"ab":{"x":[],"yy":-1.5e3},"id":1,"title":"x"}"#
        );
        assert_eq!(sorted("[]"), "[]");
        assert_eq!(sorted("{}"), "{}");
        assert_eq!(sorted(r#""a""#), r#""a""#);
    }

    #[test]
    fn strings_with_quotes_braces_and_escapes_are_copied_as_they_are() {
        assert_eq!(
            sorted(r#"{"notes":"a \"}\" , ] \\","id":7,"x\"y":"{\u00e9}"}"#),
            r#"{"id":7,"x\"y":"{\u00e9}","notes":"a \"}\" , ] \\"}"#
        );
    }

    #[test]
    fn a_release_keeps_its_value() {
        let record = sample_release(42, "Sorted keys");
        let raw = match &record {
            Record::Release(r) => serde_json::to_vec(r).unwrap(),
            _ => unreachable!(),
        };
        let mut out = Vec::new();
        assert!(KeySorter::default().sort(&raw, &mut out));
        let before: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let after: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(before, after);
        assert_eq!(raw.len(), out.len());
        assert_ne!(raw, out, "struct order is not JSONB order");
    }

    #[test]
    fn malformed_input_is_refused() {
        let mut out = Vec::new();
        for bad in [
            r#"{"a":1"#,
            r#"{"a" 1}"#,
            r#"["a""#,
            r#"{"a":1}x"#,
            "",
            r#"{"a":}"#,
        ] {
            assert!(
                !KeySorter::default().sort(bad.as_bytes(), &mut out),
                "{bad}"
            );
        }
    }
}
