//! A small, fast XML tokenizer for one record of a Discogs dump.
//!
//! It works on a `&str` holding exactly one record and hands out borrowed slices, so
//! text without escapes costs no allocation. It understands what the dumps use (elements,
//! attributes in single or double quotes, the five predefined entities, numeric character
//! references) and steps over what they do not (comments, processing instructions,
//! DOCTYPE, CDATA, whose content is kept as text). It is lenient where the dumps are
//! sloppy: a bare `&` stays a literal `&`, and characters XML forbids are dropped.

use std::borrow::Cow;

use memchr::{memchr, memchr2, memchr3, memmem};

/// A syntax problem inside a record, at a byte offset from the record's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XmlError {
    /// Byte offset from the start of the record.
    pub(crate) offset: usize,
    /// What went wrong.
    pub(crate) message: Cow<'static, str>,
}

pub(crate) type XmlResult<T> = Result<T, XmlError>;

fn err<T>(offset: usize, message: impl Into<Cow<'static, str>>) -> XmlResult<T> {
    Err(XmlError {
        offset,
        message: message.into(),
    })
}

/// A start tag: `<name attrs>` or `<name attrs/>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start<'a> {
    pub(crate) name: &'a str,
    /// The raw attribute text between the name and `>` (or `/>`).
    pub(crate) attrs: &'a str,
    /// Self-closing (`<name/>`): no content and no end tag follow.
    pub(crate) empty: bool,
    /// Offset of `<` from the record's start.
    pub(crate) offset: usize,
}

/// What [`Tokenizer::next_tag`] found after a run of text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tag<'a> {
    Start(Start<'a>),
    End(&'a str),
    /// CDATA section content (no markup in it, no escapes).
    CData(&'a str),
    /// A comment, processing instruction or DOCTYPE, stepped over.
    Markup,
    Eof,
}

/// Cursor over one record.
#[derive(Debug)]
pub(crate) struct Tokenizer<'a> {
    src: &'a str,
    pos: usize,
    /// Nesting depth of `sub_tracks` and similar recursive structures, for a bound.
    pub(crate) depth: usize,
}

/// Deepest nesting the record parsers follow before they give up on a record.
pub(crate) const MAX_DEPTH: usize = 64;

/// Position of the first `needle` in `hay`: eight bytes at a time over the first 16
/// (most gaps between tags are short, where a SIMD search costs more than it saves, and
/// a byte loop mispredicts its exit), then `memchr` for the rest.
#[inline(always)]
fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    const SHORT: usize = 16;
    let mut i = 0;
    while i < SHORT {
        let Some(w) = word_at(hay, i) else {
            return hay[i..].iter().position(|&b| b == needle).map(|p| i + p);
        };
        let m = bytes_equal(w, needle);
        if m != 0 {
            return Some(i + first_marked(m));
        }
        i += 8;
    }
    memchr(needle, &hay[SHORT..]).map(|p| p + SHORT)
}

/// Position of the first `<`, `&` or CR in `hay`: eight bytes at a time over the first
/// 32 (most text in the dumps is short), then `memchr3`.
#[inline(always)]
fn find_text_end(hay: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let mut i = 0;
    while i < SHORT {
        let Some(w) = word_at(hay, i) else {
            return hay[i..]
                .iter()
                .position(|&b| matches!(b, b'<' | b'&' | b'\r'))
                .map(|p| i + p);
        };
        // Each mask's lowest mark is exact, so the lowest mark of their union is too.
        let m = bytes_equal(w, b'<') | bytes_equal(w, b'&') | bytes_equal(w, b'\r');
        if m != 0 {
            return Some(i + first_marked(m));
        }
        i += 8;
    }
    memchr3(b'<', b'&', b'\r', &hay[SHORT..]).map(|p| p + SHORT)
}

/// Whether `text` holds a `&` or a CR (the only bytes that make decoding allocate).
#[inline]
fn needs_decoding(text: &[u8]) -> bool {
    if text.len() <= 32 {
        return text.iter().any(|&b| b == b'&' || b == b'\r');
    }
    memchr2(b'&', b'\r', text).is_some()
}

/// Bytes that end an element name in a start tag.
static NAME_END: [bool; 256] = {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'/' as usize] = true;
    t[b'>' as usize] = true;
    t
};

/// `0x01` in every byte of a word, for the word-at-a-time scans below.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte of a word.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes of `bytes` at `i`, as a little-endian word (the first byte lowest).
#[inline(always)]
fn word_at(bytes: &[u8], i: usize) -> Option<u64> {
    let eight: [u8; 8] = bytes.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(eight))
}

/// A word with the high bit set in each byte of `w` equal to `b`. Only the lowest set bit
/// is exact (a borrow can mark bytes above it), which is all the scans need.
#[inline(always)]
fn bytes_equal(w: u64, b: u8) -> u64 {
    let v = w ^ (ONES * u64::from(b));
    v.wrapping_sub(ONES) & !v & HIGHS
}

/// As [`bytes_equal`], for the bytes of `w` below `n` (`n` at most 0x80).
#[inline(always)]
fn bytes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
}

/// Offset of the byte a match mask marks first.
#[inline(always)]
fn first_marked(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// Position of the first byte at or after `i` that `mask` marks in its word (see
/// [`bytes_equal`]) and `hit` accepts, eight bytes at a time, the last few one by one.
/// For the short spans inside a tag, where a SIMD search costs more in set-up than
/// it saves.
#[inline(always)]
fn scan_words(
    bytes: &[u8],
    mut i: usize,
    mask: impl Fn(u64) -> u64,
    hit: impl Fn(u8) -> bool,
) -> Option<usize> {
    while let Some(w) = word_at(bytes, i) {
        let m = mask(w);
        if m != 0 {
            return Some(i + first_marked(m));
        }
        i += 8;
    }
    bytes.get(i..)?.iter().position(|&b| hit(b)).map(|p| i + p)
}

/// Position of the first `needle` at or after `i`, eight bytes at a time.
#[inline(always)]
fn find_near(bytes: &[u8], i: usize, needle: u8) -> Option<usize> {
    scan_words(bytes, i, |w| bytes_equal(w, needle), |b| b == needle)
}

/// Position of the first `>` at or after `i`, eight bytes at a time (tag names are short,
/// and a byte loop mispredicts its exit on every tag).
#[inline(always)]
fn find_gt(bytes: &[u8], i: usize) -> Option<usize> {
    find_near(bytes, i, b'>')
}

/// Whether the `len` bytes at `a` and at `b` in `bytes` are equal: one or two word
/// compares for names up to 16 bytes (a call to `memcmp` costs more than the compare).
#[inline(always)]
fn same_at(bytes: &[u8], a: usize, b: usize, len: usize) -> bool {
    /// Whether the low `n` bytes (1 to 8) of two words are equal.
    #[inline(always)]
    fn low_equal(x: u64, y: u64, n: usize) -> bool {
        (x ^ y) << (64 - 8 * n) == 0
    }
    if (1..=16).contains(&len) {
        if let (Some(x), Some(y)) = (word_at(bytes, a), word_at(bytes, b)) {
            if len <= 8 {
                return low_equal(x, y, len);
            }
            if x != y {
                return false;
            }
            if let (Some(x), Some(y)) = (word_at(bytes, a + 8), word_at(bytes, b + 8)) {
                return low_equal(x, y, len - 8);
            }
        }
    }
    bytes.get(a..a + len) == bytes.get(b..b + len)
}

/// End of the element name starting at `i`: the first white space, `/` or `>` (or
/// other control byte, which the reader has removed before parsing), eight bytes at a time.
#[inline(always)]
fn name_end(bytes: &[u8], mut i: usize) -> usize {
    while let Some(w) = word_at(bytes, i) {
        let m = bytes_below(w, 0x21) | bytes_equal(w, b'/') | bytes_equal(w, b'>');
        if m != 0 {
            return i + first_marked(m);
        }
        i += 8;
    }
    while i < bytes.len() && !NAME_END[usize::from(bytes[i])] {
        i += 1;
    }
    i
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `s` without XML white space at either end (byte-wise: the four are ASCII, so the
/// cuts fall on character boundaries).
#[inline(always)]
fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    // Most text has none: bytes above the space are never white space.
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) if first > b' ' && last > b' ' => return s,
        (None, _) => return "",
        _ => {}
    }
    let Some(start) = b.iter().position(|&c| !is_space(c)) else {
        return "";
    };
    let end = b
        .iter()
        .rposition(|&c| !is_space(c))
        .map_or(start, |e| e + 1);
    &s[start..end]
}

impl<'a> Tokenizer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self {
            src,
            pos: 0,
            depth: 0,
        }
    }

    /// Returns the raw text up to the next tag, and that tag.
    pub(crate) fn next_tag(&mut self) -> XmlResult<(&'a str, Tag<'a>)> {
        let bytes = self.src.as_bytes();
        let text_start = self.pos;
        let Some(rel) = find_byte(b'<', &bytes[self.pos..]) else {
            let text = &self.src[text_start..];
            self.pos = bytes.len();
            return Ok((text, Tag::Eof));
        };
        let lt = self.pos + rel;
        let text = &self.src[text_start..lt];
        let tag = match bytes.get(lt + 1) {
            Some(b'/') => {
                let name_start = lt + 2;
                let Some(gt) = find_gt(bytes, name_start) else {
                    return err(lt, "end tag is not closed");
                };
                self.pos = gt + 1;
                Tag::End(trim(&self.src[name_start..gt]))
            }
            Some(b'!' | b'?') => self.skip_markup(lt)?,
            Some(_) => Tag::Start(self.read_start(lt)?),
            None => return err(lt, "input ends after '<'"),
        };
        Ok((text, tag))
    }

    /// Steps over `<!-- -->`, `<? ?>`, `<!DOCTYPE >`; returns CDATA content as a tag.
    fn skip_markup(&mut self, lt: usize) -> XmlResult<Tag<'a>> {
        let rest = &self.src.as_bytes()[lt..];
        let (end, cdata) = if rest.starts_with(b"<!--") {
            (memmem::find(&rest[4..], b"-->").map(|i| 4 + i + 3), None)
        } else if rest.starts_with(b"<![CDATA[") {
            match memmem::find(&rest[9..], b"]]>") {
                Some(i) => (Some(9 + i + 3), Some(&self.src[lt + 9..lt + 9 + i])),
                None => (None, None),
            }
        } else if rest.starts_with(b"<?") {
            (memmem::find(&rest[2..], b"?>").map(|i| 2 + i + 2), None)
        } else {
            (memchr(b'>', rest).map(|i| i + 1), None)
        };
        let Some(end) = end else {
            return err(lt, "markup declaration, comment or CDATA is not closed");
        };
        self.pos = lt + end;
        Ok(cdata.map_or(Tag::Markup, Tag::CData))
    }

    fn read_start(&mut self, lt: usize) -> XmlResult<Start<'a>> {
        let bytes = self.src.as_bytes();
        let name_start = lt + 1;
        let i = name_end(bytes, name_start);
        if i == name_start {
            return err(lt, "'<' is not followed by an element name");
        }
        let name = &self.src[name_start..i];
        if bytes.get(i) == Some(&b'>') {
            self.pos = i + 1;
            return Ok(Start {
                name,
                attrs: "",
                empty: false,
                offset: lt,
            });
        }
        let attrs_start = i;
        // Find the closing '>' outside quoted attribute values.
        let mut j = i;
        let gt = loop {
            let Some(at) = scan_words(
                bytes,
                j,
                |w| bytes_equal(w, b'>') | bytes_equal(w, b'"') | bytes_equal(w, b'\''),
                |b| matches!(b, b'>' | b'"' | b'\''),
            ) else {
                return err(lt, format!("start tag <{name}> is not closed"));
            };
            if bytes[at] == b'>' {
                break at;
            }
            let Some(close) = find_near(bytes, at + 1, bytes[at]) else {
                return err(at, format!("attribute value in <{name}> is not closed"));
            };
            j = close + 1;
        };
        let empty = gt > attrs_start && bytes[gt - 1] == b'/';
        let attrs_end = if empty { gt - 1 } else { gt };
        self.pos = gt + 1;
        Ok(Start {
            name,
            attrs: &self.src[attrs_start..attrs_end],
            empty,
            offset: lt,
        })
    }

    /// Reads the text content of `start` up to its end tag, skipping any child
    /// elements, and decodes it (see [`decode_text`]).
    pub(crate) fn text(&mut self, start: &Start<'a>) -> XmlResult<Cow<'a, str>> {
        if start.empty {
            return Ok(Cow::Borrowed(""));
        }
        // Fast path: text, then exactly `</name>`. The scan stops at the first `<`, `&`
        // or CR, so text that reaches `<` first needs no decoding, only trimming.
        let bytes = self.src.as_bytes();
        if let Some(rel) = find_text_end(&bytes[self.pos..]) {
            let lt = self.pos + rel;
            let name_len = start.name.len();
            let after = lt + 2 + name_len;
            if bytes[lt] == b'<'
                && bytes.get(lt + 1) == Some(&b'/')
                && bytes.get(after) == Some(&b'>')
                && same_at(bytes, lt + 2, start.offset + 1, name_len)
            {
                let raw = &self.src[self.pos..lt];
                self.pos = after + 1;
                return Ok(Cow::Borrowed(trim(raw)));
            }
        }
        let (raw, tag) = self.next_tag()?;
        match tag {
            Tag::End(name) if name == start.name => Ok(decode_text(raw)),
            _ => {
                // Rare: comments, CDATA or child elements inside a text element.
                let mut acc = String::from(raw);
                let mut tag = tag;
                loop {
                    match tag {
                        Tag::End(name) if name == start.name => break,
                        Tag::End(name) => {
                            return err(
                                self.pos,
                                format!("expected </{}>, found </{name}>", start.name),
                            )
                        }
                        Tag::Eof => {
                            return err(start.offset, format!("<{}> is not closed", start.name))
                        }
                        Tag::CData(data) => acc.push_str(&escape_amp(data)),
                        Tag::Markup => {}
                        Tag::Start(child) => self.skip(&child)?,
                    }
                    let (raw, next) = self.next_tag()?;
                    acc.push_str(raw);
                    tag = next;
                }
                Ok(Cow::Owned(decode_text(&acc).into_owned()))
            }
        }
    }

    /// Calls `f` for each child element of `start` (text between children is ignored);
    /// `f` must consume the child it is given (read its text, its children, or skip it).
    pub(crate) fn children(
        &mut self,
        start: &Start<'a>,
        mut f: impl FnMut(&mut Self, Start<'a>) -> XmlResult<()>,
    ) -> XmlResult<()> {
        if start.empty {
            return Ok(());
        }
        loop {
            // Fast path: the next tag follows at once (the dumps put no white space
            // between elements since 2014) and is a start tag or `start`'s own end tag.
            let bytes = self.src.as_bytes();
            let lt = self.pos;
            if bytes.get(lt) == Some(&b'<') {
                match bytes.get(lt + 1) {
                    Some(b'/') => {
                        let after = lt + 2 + start.name.len();
                        if bytes.get(after) == Some(&b'>')
                            && same_at(bytes, lt + 2, start.offset + 1, start.name.len())
                        {
                            self.pos = after + 1;
                            return Ok(());
                        }
                    }
                    Some(b'!' | b'?') | None => {}
                    Some(_) => {
                        let child = self.read_start(lt)?;
                        f(self, child)?;
                        continue;
                    }
                }
            }
            match self.next_tag()?.1 {
                Tag::Start(child) => f(self, child)?,
                Tag::End(name) if name == start.name => return Ok(()),
                Tag::End(name) => {
                    return err(
                        self.pos,
                        format!("expected </{}>, found </{name}>", start.name),
                    )
                }
                Tag::CData(_) | Tag::Markup => {}
                Tag::Eof => return err(start.offset, format!("<{}> is not closed", start.name)),
            }
        }
    }

    /// Skips the element `start` and everything inside it.
    pub(crate) fn skip(&mut self, start: &Start<'a>) -> XmlResult<()> {
        if start.empty {
            return Ok(());
        }
        let mut depth = 1usize;
        loop {
            match self.next_tag()?.1 {
                Tag::Start(s) if !s.empty => depth += 1,
                Tag::End(_) => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Tag::Eof => return err(start.offset, format!("<{}> is not closed", start.name)),
                _ => {}
            }
        }
    }

    /// Enters a nested structure, failing when nesting is deeper than [`MAX_DEPTH`].
    pub(crate) fn enter(&mut self, start: &Start<'a>) -> XmlResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                start.offset,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            );
        }
        Ok(())
    }

    /// Leaves a structure entered with [`Tokenizer::enter`].
    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }
}

/// CDATA content is literal; escape `&` so that [`decode_text`] leaves it alone.
fn escape_amp(data: &str) -> Cow<'_, str> {
    if data.contains('&') {
        Cow::Owned(data.replace('&', "&amp;"))
    } else {
        Cow::Borrowed(data)
    }
}

/// Iterator over `name="value"` pairs in a start tag's attribute text; values are raw
/// (decode them with [`decode_text`]).
#[derive(Debug)]
pub(crate) struct Attrs<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.src.as_bytes();
        while self.pos < bytes.len() && is_space(bytes[self.pos]) {
            self.pos += 1;
        }
        if self.pos >= bytes.len() {
            return None;
        }
        let eq = find_near(bytes, self.pos, b'=')?;
        let name = trim(&self.src[self.pos..eq]);
        let mut q = eq + 1;
        while q < bytes.len() && is_space(bytes[q]) {
            q += 1;
        }
        let quote = *bytes.get(q)?;
        if quote != b'"' && quote != b'\'' {
            // Unquoted value: take it up to the next space.
            let end = bytes[q..]
                .iter()
                .position(|&b| is_space(b))
                .map_or(bytes.len(), |e| q + e);
            self.pos = end;
            return Some((name, &self.src[q..end]));
        }
        let close = find_near(bytes, q + 1, quote)?;
        self.pos = close + 1;
        Some((name, &self.src[q + 1..close]))
    }
}

/// Decodes raw XML text into its value: entities and character references expanded
/// (a bare `&` is kept as is), CRLF and lone CR turned into LF, characters that XML
/// forbids dropped, and XML white space trimmed from both ends. Borrows the input
/// when nothing needs changing.
pub(crate) fn decode_text(raw: &str) -> Cow<'_, str> {
    let trimmed = trim(raw);
    if !needs_decoding(trimmed.as_bytes()) {
        return Cow::Borrowed(trimmed);
    }
    let mut out = String::with_capacity(trimmed.len());
    let mut rest = trimmed;
    let mut after_cr = false;
    while let Some(i) = memchr2(b'&', b'\r', rest.as_bytes()) {
        let (head, tail) = rest.split_at(i);
        push_after_cr(&mut out, head, &mut after_cr);
        if tail.as_bytes()[0] == b'\r' {
            out.push('\n');
            after_cr = true;
            rest = &tail[1..];
            continue;
        }
        // The references the dumps use most (a line end in `profile` and `notes` is
        // `&#13;` + LF; `&amp;` in every kind of text) are recognised first.
        let found = if tail.starts_with("&#13;") {
            Some(('\r', 5))
        } else if tail.starts_with("&amp;") {
            Some(('&', 5))
        } else {
            entity(tail)
        };
        match found {
            Some((c, len)) => {
                if c == '\r' {
                    out.push('\n');
                    after_cr = true;
                } else {
                    if is_xml_char(c) {
                        let mut buf = [0u8; 4];
                        push_after_cr(&mut out, c.encode_utf8(&mut buf), &mut after_cr);
                    }
                }
                rest = &tail[len..];
            }
            None => {
                push_after_cr(&mut out, "&", &mut after_cr);
                rest = &tail[1..];
            }
        }
    }
    push_after_cr(&mut out, rest, &mut after_cr);
    let t = trim(&out);
    if t.len() == out.len() {
        Cow::Owned(out)
    } else {
        Cow::Owned(t.to_owned())
    }
}

/// Appends `s`, dropping a leading LF when the previous character was a CR (so CRLF
/// becomes one LF).
fn push_after_cr(out: &mut String, s: &str, after_cr: &mut bool) {
    if s.is_empty() {
        return;
    }
    let s = if *after_cr {
        s.strip_prefix('\n').unwrap_or(s)
    } else {
        s
    };
    *after_cr = false;
    out.push_str(s);
}

/// Characters allowed in XML 1.0 documents.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Parses the entity or character reference at the start of `s` (which starts with
/// `&`): the character and the length of the reference.
fn entity(s: &str) -> Option<(char, usize)> {
    let bytes = s.as_bytes();
    let semi = memchr(b';', &bytes[..bytes.len().min(12)])?;
    let body = &s[1..semi];
    let c = match body {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let num = body.strip_prefix('#')?;
            let code = if let Some(hex) = num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                num.parse().ok()?
            };
            // An invalid code point decodes to nothing rather than failing the record.
            char::from_u32(code).unwrap_or('\u{0}')
        }
    };
    Some((c, semi + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_borrows_plain_text() {
        assert!(matches!(
            decode_text("  Stockholm \n"),
            Cow::Borrowed("Stockholm")
        ));
    }

    #[test]
    fn decode_entities_and_references() {
        assert_eq!(
            decode_text("a &amp; b &lt;c&gt; &quot;&apos; &#228;&#xE4;"),
            "a & b <c> \"' ää"
        );
    }

    #[test]
    fn decode_keeps_bare_ampersand() {
        assert_eq!(
            decode_text("Simon & Garfunkel &co; &"),
            "Simon & Garfunkel &co; &"
        );
    }

    #[test]
    fn decode_normalises_line_ends() {
        assert_eq!(decode_text("a&#13;\nb&#13;c\r\nd\re&#13;"), "a\nb\nc\nd\ne");
    }

    #[test]
    fn decode_drops_forbidden_references() {
        assert_eq!(decode_text("a&#7;b&#0;c&#xD800;d"), "abcd");
    }

    #[test]
    fn attrs_in_any_quote_and_order() {
        let pairs: Vec<_> = Attrs::new(r#" catno='SK 1' name="Svek"  id = "5" "#).collect();
        assert_eq!(pairs, [("catno", "SK 1"), ("name", "Svek"), ("id", "5")]);
    }

    #[test]
    fn word_scans_find_the_first_match_at_every_position() {
        for len in 0..24 {
            for at in 0..len {
                let mut s = vec![b'a'; len];
                s[at] = b'>';
                // A second match further on, and a byte that borrows, must not confuse it.
                if at + 2 < len {
                    s[at + 2] = b'>';
                    s[at + 1] = 0x00;
                }
                assert_eq!(find_gt(&s, 0), Some(at), "{s:?}");
                for delimiter in [b' ', b'\t', b'\n', b'\r', b'/', b'>'] {
                    s[at] = delimiter;
                    assert_eq!(name_end(&s, 0), at, "{s:?}");
                }
            }
            let s = vec![0xC3; len];
            assert_eq!(find_gt(&s, 0), None);
            assert_eq!(name_end(&s, 0), len);
        }
    }

    #[test]
    fn text_and_byte_scans_match_a_plain_search() {
        // Lengths around the word-at-a-time heads (16 and 32 bytes) and past them, every
        // position of the first match, with later matches and borrowing bytes after it.
        for len in 0..72 {
            for at in 0..=len {
                for first in [b'<', b'&', b'\r'] {
                    let mut s = vec![b'x'; len];
                    if at < len {
                        s[at] = first;
                        for (k, b) in [(1, 0x00), (2, b'<'), (3, b'&'), (5, 0x80)] {
                            if at + k < len {
                                s[at + k] = b;
                            }
                        }
                    }
                    let plain = s.iter().position(|&b| matches!(b, b'<' | b'&' | b'\r'));
                    assert_eq!(find_text_end(&s), plain, "{s:?}");
                    let lt = s.iter().position(|&b| b == b'<');
                    assert_eq!(find_byte(b'<', &s), lt, "{s:?}");
                }
            }
        }
    }
    #[test]
    fn same_at_compares_exactly_the_given_bytes() {
        let src = b"<abcdefghijklmnopq></abcdefghijklmnopX>....................";
        for len in 0..=17 {
            // Equal up to the 17th byte, which differs ('q' against 'X').
            assert_eq!(same_at(src, 1, 21, len), len < 17, "len {len}");
        }
        // Near the end, where no whole word is left, and out of range.
        let short = b"<ab></ab>";
        assert!(same_at(short, 1, 6, 2));
        assert!(!same_at(short, 1, 6, 4));
    }

    #[test]
    fn gt_inside_attribute_value() {
        let mut t = Tokenizer::new(r#"<a x="1>2"/><b>t</b>"#);
        let (_, Tag::Start(a)) = t.next_tag().unwrap() else {
            panic!()
        };
        assert!(a.empty);
        assert_eq!(Attrs::new(a.attrs).next(), Some(("x", "1>2")));
    }

    #[test]
    fn text_with_comment_and_cdata() {
        let mut t = Tokenizer::new("<n>a<!-- x -->b<![CDATA[<&>]]>c</n>");
        let (_, Tag::Start(n)) = t.next_tag().unwrap() else {
            panic!()
        };
        assert_eq!(t.text(&n).unwrap(), "ab<&>c");
    }
}
