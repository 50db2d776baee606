//! Record splitting: finds where each record starts and ends in the decompressed stream
//! without parsing it, so that records can be parsed one by one or on other threads.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;

use discogs_model::RecordKind;
use memchr::{memchr, memmem};

use crate::error::Error;

/// Bytes read from the input at a time.
const READ_SIZE: usize = 256 * 1024;
/// How far into the input the first element must start.
const MAX_PROLOGUE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// Pre-2014 files: records at the top level, no root element.
    Absent,
    Open,
    Closed,
}

/// A record's place: its offset in the XML stream and its bytes in the splitter's buffer.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub(crate) offset: u64,
    pub(crate) range: Range<usize>,
}

/// Splits a stream of XML into records of one kind.
pub(crate) struct Splitter<R> {
    input: R,
    file: Arc<str>,
    buf: Vec<u8>,
    /// Bytes of `buf` holding input (the rest is scratch space for the next read).
    filled: usize,
    /// First byte of `buf` not yet handed out.
    start: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// A read error held back until the bytes read before it are used up.
    pending: Option<io::Error>,
    kind: RecordKind,
    root: Root,
    start_tag: memmem::Finder<'static>,
    end_tag: memmem::Finder<'static>,
    /// Records of this kind can contain elements of the same name (`<label>` in
    /// `<sublabels>`), so ends must be matched by depth.
    nests: bool,
    /// Records handed out so far.
    pub(crate) records: u64,
}

impl<R> std::fmt::Debug for Splitter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Splitter")
            .field("file", &self.file)
            .field("kind", &self.kind)
            .field("offset", &(self.base + self.start as u64))
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

fn is_delimiter(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'>')
}

impl<R: Read> Splitter<R> {
    /// Reads the beginning of `input` to find the kind of dump from its root element
    /// (or, in files without one, its first record).
    pub(crate) fn new(input: R, file: Arc<str>) -> Result<Self, Error> {
        let mut s = Self {
            input,
            file,
            buf: Vec::new(),
            filled: 0,
            start: 0,
            base: 0,
            eof: false,
            pending: None,
            kind: RecordKind::Artist,
            root: Root::Absent,
            start_tag: memmem::Finder::new(b"").into_owned(),
            end_tag: memmem::Finder::new(b"").into_owned(),
            nests: false,
            records: 0,
        };
        s.detect()?;
        s.start_tag = memmem::Finder::new(format!("<{}", s.kind.element()).as_bytes()).into_owned();
        s.end_tag = memmem::Finder::new(format!("</{}>", s.kind.element()).as_bytes()).into_owned();
        s.nests = s.kind == RecordKind::Label;
        Ok(s)
    }

    pub(crate) fn kind(&self) -> RecordKind {
        self.kind
    }

    pub(crate) fn file(&self) -> &Arc<str> {
        &self.file
    }

    /// Stream offset of the first byte not yet handed out.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// The bytes of a span returned by [`Splitter::next_span`] (valid until the next call).
    pub(crate) fn bytes(&self, span: &Span) -> &[u8] {
        &self.buf[span.range.clone()]
    }

    fn not_a_dump(&self, at: usize, detail: impl Into<String>) -> Error {
        Error::NotADump {
            file: self.file.clone(),
            offset: self.base + at as u64,
            detail: detail.into(),
        }
    }

    fn truncated(&self, detail: impl Into<String>) -> Error {
        Error::Truncated {
            file: self.file.clone(),
            offset: self.base + self.filled as u64,
            records: self.records,
            detail: detail.into(),
        }
    }

    /// Drops the bytes before `start` and reads more. Returns `false` at end of input.
    /// Offsets relative to `start` stay valid.
    fn fill(&mut self) -> Result<bool, Error> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.base += self.start as u64;
            self.start = 0;
        }
        if let Some(source) = self.pending.take() {
            self.eof = true;
            return Err(Error::Io {
                file: self.file.clone(),
                what: "reading",
                offset: self.base + self.filled as u64,
                records: self.records,
                source,
            });
        }
        let len = self.filled;
        // The buffer past `filled` stays initialised from earlier reads: growing it is the
        // only time it is zeroed (reading into a `Vec`'s spare capacity through a reader
        // that only implements `read` zeroes it on every call).
        if self.buf.len() < len + READ_SIZE {
            self.buf.resize(len + READ_SIZE, 0);
        }
        let mut n = 0;
        while n < READ_SIZE {
            match self.input.read(&mut self.buf[len + n..len + READ_SIZE]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    // Keep what was read before the error (whole records may be in it);
                    // report the error when more data is needed.
                    self.filled = len + n;
                    self.pending = Some(source);
                    return if n > 0 { Ok(true) } else { self.fill() };
                }
            }
        }
        self.filled = len + n;
        if n == 0 {
            self.eof = true;
        }
        if self.buf.len() > 4 * READ_SIZE && self.filled < READ_SIZE {
            self.buf.truncate(2 * READ_SIZE);
            self.buf.shrink_to_fit();
        }
        Ok(n > 0)
    }

    /// Makes sure `start + rel + n` bytes are buffered if the input has them.
    fn ensure(&mut self, rel: usize, n: usize) -> Result<bool, Error> {
        while self.filled < self.start + rel + n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn detect(&mut self) -> Result<(), Error> {
        loop {
            // Skip a byte-order mark and white space.
            if !self.ensure(0, 3)? && self.filled == self.start {
                return Err(self.not_a_dump(self.start, "the input is empty"));
            }
            if self.buf[self.start..self.filled].starts_with(b"\xEF\xBB\xBF") {
                self.start += 3;
            }
            while self.start < self.filled
                && matches!(self.buf[self.start], b' ' | b'\t' | b'\n' | b'\r')
            {
                self.start += 1;
            }
            if self.start == self.filled {
                if self.base + self.start as u64 > MAX_PROLOGUE as u64 || !self.fill()? {
                    return Err(self.not_a_dump(self.start, "no XML element found"));
                }
                continue;
            }
            if self.buf[self.start] != b'<' {
                let b = self.buf[self.start];
                return Err(self.not_a_dump(
                    self.start,
                    format!("expected '<', found byte 0x{b:02x}: the input is not XML (or is compressed in a format other than gzip)"),
                ));
            }
            self.ensure(0, 2)?;
            let next = self.buf[..self.filled].get(self.start + 1).copied();
            if matches!(next, Some(b'?') | Some(b'!')) {
                self.skip_markup()?;
                continue;
            }
            // An element: read its name.
            let name_len = loop {
                let avail = &self.buf[self.start + 1..self.filled];
                if let Some(i) = avail.iter().position(|&b| is_delimiter(b)) {
                    break i;
                }
                if avail.len() > 256 || !self.fill()? {
                    return Err(
                        self.not_a_dump(self.start, "the first element's name does not end")
                    );
                }
            };
            let name = &self.buf[self.start + 1..self.start + 1 + name_len];
            let Some(kind) = RecordKind::from_element(name) else {
                let name = String::from_utf8_lossy(name).into_owned();
                return Err(self.not_a_dump(
                    self.start,
                    format!(
                        "root element <{name}> is not <artists>, <labels>, <masters> or <releases>"
                    ),
                ));
            };
            self.kind = kind;
            if name.ends_with(b"s") {
                // The root element: step over its start tag.
                loop {
                    if let Some(gt) = memchr(b'>', &self.buf[self.start..self.filled]) {
                        self.start += gt + 1;
                        break;
                    }
                    if !self.fill()? {
                        return Err(self.truncated("the root element's start tag is not closed"));
                    }
                }
                self.root = Root::Open;
            } else {
                self.root = Root::Absent;
            }
            return Ok(());
        }
    }

    /// Steps over a comment, processing instruction or declaration at `start`.
    fn skip_markup(&mut self) -> Result<(), Error> {
        self.ensure(0, 4)?;
        let comment = self.buf[self.start..self.filled].starts_with(b"<!--");
        let mut from = 0;
        loop {
            let hay = &self.buf[self.start + from..self.filled];
            let found = if comment {
                memmem::find(hay, b"-->").map(|i| i + 3)
            } else {
                memchr(b'>', hay).map(|i| i + 1)
            };
            if let Some(end) = found {
                self.start += from + end;
                return Ok(());
            }
            from = (self.filled - self.start).saturating_sub(2);
            if !self.fill()? {
                return Err(self.truncated("a comment or declaration is not closed"));
            }
        }
    }

    /// The next record, or `None` at a clean end of input.
    pub(crate) fn next_span(&mut self) -> Result<Option<Span>, Error> {
        let elem_len = self.kind.element().len();
        loop {
            let Some(rel) = memchr(b'<', &self.buf[self.start..self.filled]) else {
                self.start = self.filled;
                if self.fill()? {
                    continue;
                }
                return match self.root {
                    Root::Open => Err(self.truncated(format!(
                        "the root element <{}> is not closed",
                        self.kind.plural()
                    ))),
                    Root::Absent | Root::Closed => Ok(None),
                };
            };
            self.start += rel;
            // Enough bytes to recognise `</releases>` or `<release `.
            self.ensure(0, elem_len + 4)?;
            let rest = &self.buf[self.start + 1..self.filled];
            if rest.starts_with(self.kind.element().as_bytes())
                && rest.get(elem_len).is_some_and(|&b| is_delimiter(b))
            {
                return self.record().map(Some);
            }
            match rest.first() {
                Some(b'/') => {
                    // An end tag at the top level: the root's, or stray.
                    if rest[1..].starts_with(self.kind.plural().as_bytes()) {
                        self.root = Root::Closed;
                    }
                    self.skip_tag()?;
                }
                Some(b'?') | Some(b'!') => self.skip_markup()?,
                _ => self.skip_tag()?,
            }
        }
    }

    /// Steps over the tag at `start` (up to its `>`).
    fn skip_tag(&mut self) -> Result<(), Error> {
        loop {
            if let Some(gt) = memchr(b'>', &self.buf[self.start..self.filled]) {
                self.start += gt + 1;
                return Ok(());
            }
            if !self.fill()? {
                self.start = self.filled;
                return Err(self.truncated("a tag at the top level is not closed"));
            }
        }
    }

    /// Finds the end of the record whose start tag is at `start`.
    fn record(&mut self) -> Result<Span, Error> {
        let elem_len = self.kind.element().len();
        let end_len = elem_len + 3;
        // A self-closing record (`<release id="1"/>`) ends at its start tag.
        let gt = loop {
            if let Some(gt) = memchr(b'>', &self.buf[self.start..self.filled]) {
                break gt;
            }
            if !self.fill()? {
                return Err(self.unclosed());
            }
        };
        if self.buf[self.start + gt - 1] == b'/' {
            return Ok(self.take(gt + 1));
        }
        let mut depth = 1usize;
        let mut scan = gt + 1; // where to look for nested start tags
        let mut search = gt + 1; // where to look for the next end tag
        loop {
            let found = self
                .end_tag
                .find(&self.buf[self.start + search..self.filled]);
            let Some(i) = found else {
                search = (self.filled - self.start)
                    .saturating_sub(end_len - 1)
                    .max(search);
                if !self.fill()? {
                    return Err(self.unclosed());
                }
                continue;
            };
            let end = search + i;
            if self.nests {
                depth += self.nested_starts(scan, end);
                scan = end + end_len;
            }
            depth -= 1;
            if depth == 0 {
                return Ok(self.take(end + end_len));
            }
            search = end + end_len;
        }
    }

    /// Counts start tags (not self-closing) of the record element in `start+from..start+to`.
    fn nested_starts(&self, from: usize, to: usize) -> usize {
        let hay = &self.buf[self.start + from..self.start + to];
        let n = self.kind.element().len() + 1;
        self.start_tag
            .find_iter(hay)
            .filter(|&i| {
                hay.get(i + n).is_some_and(|&b| is_delimiter(b))
                    && memchr(b'>', &hay[i..]).is_some_and(|gt| gt > 0 && hay[i + gt - 1] != b'/')
            })
            .count()
    }

    fn unclosed(&self) -> Error {
        self.truncated(format!(
            "<{}> starting at byte {} is not closed",
            self.kind.element(),
            self.base + self.start as u64
        ))
    }

    fn take(&mut self, len: usize) -> Span {
        let span = Span {
            offset: self.offset(),
            range: self.start..self.start + len,
        };
        self.start += len;
        self.records += 1;
        span
    }
}
