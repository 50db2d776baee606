//! The dump reader: input handling (files, gzip), record parsing with recovery, hashing.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use discogs_model::{Record, RecordHash, RecordHasher, RecordKind};
use flate2::read::MultiGzDecoder;

use crate::error::{Error, RecordError};
use crate::records::{empty_record, parse_record_into};
use crate::split::Splitter;

/// A parsed record with its hash and where it was in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRecord<'a> {
    /// The record, borrowing text from the reader's buffer where it could.
    pub record: Record<'a>,
    /// SHA-256 of the record's canonical encoding.
    pub hash: RecordHash,
    /// Byte offset of the record's start tag in the (decompressed) XML stream.
    pub offset: u64,
}

impl ParsedRecord<'_> {
    /// Converts into a form that owns all its text.
    #[must_use]
    pub fn into_owned(self) -> ParsedRecord<'static> {
        ParsedRecord {
            record: self.record.into_owned(),
            hash: self.hash,
            offset: self.offset,
        }
    }
}

/// Settings for reading a dump.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Malformed records tolerated before reading stops with [`Error::TooManyErrors`]
    /// (`None`: no limit). Default: 1,000.
    pub max_errors: Option<u64>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            max_errors: Some(1_000),
        }
    }
}

impl ReadOptions {
    /// Sets [`ReadOptions::max_errors`].
    #[must_use]
    pub fn max_errors(mut self, limit: Option<u64>) -> Self {
        self.max_errors = limit;
        self
    }
}

/// How far reading has got, for progress displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes read from the input as stored (compressed bytes for `.gz`).
    pub input_bytes: u64,
    /// Bytes of XML consumed.
    pub xml_bytes: u64,
    /// Records returned (parsed or not).
    pub records: u64,
    /// Malformed records.
    pub errors: u64,
    /// Records that needed repair before parsing (invalid UTF-8 or control characters).
    pub repaired: u64,
}

/// Counts the bytes read through it.
#[derive(Debug)]
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Boxed input stream with gzip already undone.
pub(crate) type Input = Box<dyn Read + Send>;

/// Wraps `reader` in a gzip decoder when its first two bytes are the gzip magic. The
/// bytes are read one `read` at a time if need be (a pipe may hand out one byte).
fn decompress(mut reader: impl Read + Send + 'static, file: &Arc<str>) -> Result<Input, Error> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Open {
                    file: file.clone(),
                    source,
                })
            }
        }
    }
    let rejoined = io::Cursor::new(head).take(got as u64).chain(reader);
    if head[..got] == [0x1f, 0x8b] {
        Ok(Box::new(GzInput(MultiGzDecoder::new(
            BufReader::with_capacity(128 * 1024, rejoined),
        ))))
    } else {
        Ok(Box::new(rejoined))
    }
}

/// A gzip decoder whose errors say that decompression, not the disk, failed.
struct GzInput<R: BufRead>(MultiGzDecoder<R>);

impl<R: BufRead> Read for GzInput<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            let what = if e.kind() == io::ErrorKind::UnexpectedEof {
                "the gzip stream ends early (truncated download?)"
            } else {
                "the gzip stream is corrupt"
            };
            io::Error::new(e.kind(), format!("{what}: {e}"))
        })
    }
}

/// Turns one record's bytes into a [`ParsedRecord`]: repairs what XML forbids, parses,
/// hashes. Shared by the sequential and the parallel reader.
#[derive(Debug)]
pub(crate) struct RecordParser {
    kind: RecordKind,
    file: Arc<str>,
    hasher: RecordHasher,
    /// Records that needed repair (invalid UTF-8 or control characters).
    pub(crate) repaired: u64,
}

/// `true` when `bytes` holds a C0 control character other than tab, LF and CR.
fn has_forbidden_controls(bytes: &[u8]) -> bool {
    /// Whether `chunk` has any byte below the space: an OR over the chunk without
    /// branches, which the compiler turns into vector compares.
    #[inline(always)]
    fn any_below_space(chunk: &[u8]) -> bool {
        chunk.iter().fold(0u8, |acc, &b| acc | u8::from(b < 0x20)) != 0
    }
    // Most chunks have no control character, and the rest mostly line feeds: only
    // those are looked at byte by byte.
    let forbidden = |chunk: &[u8]| {
        any_below_space(chunk)
            && chunk
                .iter()
                .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
    };
    let mut chunks = bytes.chunks_exact(32);
    chunks.any(forbidden) || forbidden(chunks.remainder())
}

impl RecordParser {
    pub(crate) fn new(kind: RecordKind, file: Arc<str>) -> Self {
        Self {
            kind,
            file,
            hasher: RecordHasher::new(),
            repaired: 0,
        }
    }

    /// An empty record of this dump's kind at `offset`, for [`RecordParser::parse_into`].
    #[inline(always)]
    pub(crate) fn empty<'a>(&self, offset: u64) -> ParsedRecord<'a> {
        ParsedRecord {
            record: empty_record(self.kind),
            hash: RecordHash::default(),
            offset,
        }
    }

    /// Parses one record. Records that needed repair are counted in `repaired`.
    #[inline(always)]
    pub(crate) fn parse<'a>(
        &mut self,
        bytes: &'a [u8],
        offset: u64,
    ) -> Result<ParsedRecord<'a>, RecordError> {
        let mut parsed = self.empty(offset);
        self.parse_into(bytes, &mut parsed)?;
        Ok(parsed)
    }

    /// Parses one record into `out`, an empty record from [`RecordParser::empty`]. The
    /// record is filled where the caller keeps it: a record is several hundred bytes,
    /// and copying it through every layer on the way out cost as much as a part of
    /// parsing a short one (artists average 316 bytes of XML).
    #[inline(always)]
    pub(crate) fn parse_into<'a>(
        &mut self,
        bytes: &'a [u8],
        out: &mut ParsedRecord<'a>,
    ) -> Result<(), RecordError> {
        if let Ok(src) = simdutf8::basic::from_utf8(bytes) {
            if !has_forbidden_controls(bytes) {
                return self.parse_str(src, out);
            }
        }
        self.parse_repaired(bytes, out)
    }

    #[cold]
    fn parse_repaired(
        &mut self,
        bytes: &[u8],
        out: &mut ParsedRecord<'_>,
    ) -> Result<(), RecordError> {
        self.repaired += 1;
        let text: String = String::from_utf8_lossy(bytes)
            .chars()
            .filter(|&c| c >= '\u{20}' || matches!(c, '\t' | '\n' | '\r'))
            .collect();
        let mut parsed = self.empty(out.offset);
        self.parse_str(&text, &mut parsed)?;
        *out = parsed.into_owned();
        Ok(())
    }

    #[inline(always)]
    fn parse_str<'a>(
        &mut self,
        src: &'a str,
        out: &mut ParsedRecord<'a>,
    ) -> Result<(), RecordError> {
        match parse_record_into(src, &mut out.record) {
            Ok(()) => {
                out.hash = self.hasher.hash(&out.record);
                Ok(())
            }
            Err(e) => Err(RecordError {
                file: self.file.clone(),
                kind: self.kind,
                offset: out.offset + e.offset as u64,
                record_offset: out.offset,
                id: sniff_id(self.kind, src),
                message: e.message.into_owned(),
            }),
        }
    }
}

/// Best-effort id of a record that failed to parse, for the error message.
fn sniff_id(kind: RecordKind, src: &str) -> Option<u64> {
    let after = match kind {
        RecordKind::Master | RecordKind::Release => {
            let tag_end = src.find('>')?;
            let tag = &src[..tag_end];
            let i = tag.find(" id=")? + 4;
            tag.get(i + 1..)?
        }
        RecordKind::Artist | RecordKind::Label => src.get(src.find("<id>")? + 4..)?,
    };
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    after[..digits].parse().ok()
}

/// Reads one Discogs dump file record by record.
///
/// [`DumpReader::next_record`] lends records that borrow the reader's buffer (no copy of
/// text without escapes); the [`Iterator`] implementation yields owned records instead.
/// A malformed record comes out as [`Error::Record`] and reading continues with the next
/// one; any other error ends the stream.
pub struct DumpReader {
    splitter: Splitter<Input>,
    parser: RecordParser,
    options: ReadOptions,
    input_bytes: Arc<AtomicU64>,
    errors: u64,
    done: bool,
}

impl std::fmt::Debug for DumpReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DumpReader")
            .field("splitter", &self.splitter)
            .field("progress", &self.progress())
            .finish()
    }
}

impl DumpReader {
    /// Opens a dump file, plain XML or gzip (recognised by its content, not its name),
    /// and reads far enough to know its kind.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the file cannot be opened, [`Error::NotADump`] when it does not
    /// start like a Discogs dump.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, ReadOptions::default())
    }

    /// [`DumpReader::open`] with options.
    ///
    /// # Errors
    ///
    /// As [`DumpReader::open`].
    pub fn open_with(path: impl AsRef<Path>, options: ReadOptions) -> Result<Self, Error> {
        let path = path.as_ref();
        let name: Arc<str> = path.display().to_string().into();
        let file = File::open(path).map_err(|source| Error::Open {
            file: name.clone(),
            source,
        })?;
        Self::build(file, name, options)
    }

    /// Reads a dump from any reader (plain or gzip XML). `name` appears in error messages.
    ///
    /// # Errors
    ///
    /// As [`DumpReader::open`].
    pub fn from_reader(
        reader: impl Read + Send + 'static,
        name: &str,
        options: ReadOptions,
    ) -> Result<Self, Error> {
        Self::build(reader, name.into(), options)
    }

    fn build(
        reader: impl Read + Send + 'static,
        file: Arc<str>,
        options: ReadOptions,
    ) -> Result<Self, Error> {
        let input_bytes = Arc::new(AtomicU64::new(0));
        let counted = Counting {
            inner: reader,
            count: input_bytes.clone(),
        };
        let input = decompress(counted, &file)?;
        let splitter = Splitter::new(input, file.clone())?;
        let parser = RecordParser::new(splitter.kind(), file);
        Ok(Self {
            splitter,
            parser,
            options,
            input_bytes,
            errors: 0,
            done: false,
        })
    }

    /// The kind of records in this dump.
    #[must_use]
    pub fn kind(&self) -> RecordKind {
        self.splitter.kind()
    }

    /// The input's name, as used in error messages.
    #[must_use]
    pub fn file(&self) -> &str {
        self.splitter.file()
    }

    /// How far reading has got.
    #[must_use]
    pub fn progress(&self) -> Progress {
        Progress {
            input_bytes: self.input_bytes.load(Ordering::Relaxed),
            xml_bytes: self.splitter.offset(),
            records: self.splitter.records,
            errors: self.errors,
            repaired: self.parser.repaired,
        }
    }

    /// The next record, borrowing from the reader's buffer; `None` at the end.
    ///
    /// A malformed record gives `Some(Err(Error::Record(_)))` and the next call goes on
    /// with the following record. Any other error is the last item.
    pub fn next_record(&mut self) -> Option<Result<ParsedRecord<'_>, Error>> {
        if self.done {
            return None;
        }
        let span = match self.splitter.next_span() {
            Ok(Some(span)) => span,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let repaired_before = self.parser.repaired;
        // Filled in the slot it is returned in (see `RecordParser::parse_into`).
        let mut item = Some(Ok(self.parser.empty(span.offset)));
        let Some(Ok(parsed)) = &mut item else {
            unreachable!("just built")
        };
        let result = self.parser.parse_into(self.splitter.bytes(&span), parsed);
        if self.parser.repaired != repaired_before {
            note_repair(self.splitter.file(), span.offset, self.parser.repaired);
        }
        if let Err(e) = result {
            self.errors += 1;
            if let Some(limit) = self.options.max_errors {
                if self.errors > limit {
                    self.done = true;
                    return Some(Err(Error::TooManyErrors {
                        file: self.splitter.file().clone(),
                        errors: self.errors,
                        limit,
                    }));
                }
            }
            return Some(Err(Error::Record(e)));
        }
        item
    }

    pub(crate) fn into_parts(self) -> (Splitter<Input>, ReadOptions, Arc<AtomicU64>) {
        (self.splitter, self.options, self.input_bytes)
    }
}

/// Logs repaired records: the first few one by one, then every 1,000th.
pub(crate) fn note_repair(file: &str, offset: u64, count: u64) {
    if count <= 10 || count % 1_000 == 0 {
        tracing::warn!(
            file,
            offset,
            repaired = count,
            "Record had invalid UTF-8 or control characters; repaired."
        );
    }
}

impl Iterator for DumpReader {
    type Item = Result<ParsedRecord<'static>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().map(|r| r.map(ParsedRecord::into_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_controls_anywhere_but_not_tab_lf_cr() {
        for len in [1usize, 63, 64, 65, 200] {
            for at in [0, len / 2, len - 1] {
                let mut bytes = vec![b'a'; len];
                for allowed in [b'\t', b'\n', b'\r'] {
                    bytes[at] = allowed;
                    assert!(
                        !has_forbidden_controls(&bytes),
                        "{allowed:#x} at {at}/{len}"
                    );
                }
                for forbidden in [0x00, 0x01, 0x08, 0x0b, 0x0c, 0x1f] {
                    bytes[at] = forbidden;
                    assert!(
                        has_forbidden_controls(&bytes),
                        "{forbidden:#x} at {at}/{len}"
                    );
                }
            }
        }
        assert!(!has_forbidden_controls("Björk\u{80}\u{7f} ".as_bytes()));
    }
}
