//! Regression tests for what the fuzz targets in `fuzz/` found (see `fuzz/README.md`).
//! Each input is inlined as found (after minimising); each test names the target that
//! found it.

use discogs_parse::{DumpReader, Error, ParallelReader, ReadOptions};

/// Four malformed records (`</x>` closes `<title>`) and then a good one.
const FOUR_BAD_THEN_GOOD: &[u8] = b"<releases>\
<release id=\"1\"><title>a</x></release>\
<release id=\"2\"><title>a</x></release>\
<release id=\"3\"><title>a</x></release>\
<release id=\"4\"><title>a</x></release>\
<release id=\"5\"><title>ok</title></release>\
</releases>";

/// What a reader yields, as comparable text: `Ok(id)`, or the error's kind and message.
fn describe(item: Result<u64, Error>) -> String {
    match item {
        Ok(id) => format!("Ok({id})"),
        Err(e @ Error::Record(_)) => format!("Record({e})"),
        Err(e @ Error::TooManyErrors { .. }) => format!("TooManyErrors({e})"),
        Err(e) => format!("Other({e})"),
    }
}

fn sequential(xml: &'static [u8], options: ReadOptions) -> Vec<String> {
    let mut reader = DumpReader::from_reader(xml, "<fuzz>", options).expect("a releases dump");
    let mut out = Vec::new();
    while let Some(item) = reader.next_record() {
        out.push(describe(item.map(|p| p.record.id())));
    }
    assert!(
        reader.next_record().is_none(),
        "the sequential reader is not fused"
    );
    out
}

fn parallel(xml: &'static [u8], options: ReadOptions, workers: usize) -> Vec<String> {
    let reader = DumpReader::from_reader(xml, "<fuzz>", options).expect("a releases dump");
    ParallelReader::new(reader, workers, |p| p.record.id())
        .map(describe)
        .collect()
}

/// Found by `dump_reader` (ParallelReader against DumpReader with `max_errors(Some(2))`):
/// after `Error::TooManyErrors` the ParallelReader went on yielding the rest of the
/// current chunk — more `TooManyErrors` with growing counts, then the good records —
/// where the sequential reader ends the stream.
#[test]
fn fuzz_dump_reader_parallel_continues_after_too_many_errors() {
    let options = ReadOptions::default().max_errors(Some(1));
    let expected = vec![
        "Record(<fuzz>: malformed releases record at byte 38 (id 1): expected </title>, found </x>)".to_owned(),
        "TooManyErrors(<fuzz>: stopped after 2 malformed records (limit 1))".to_owned(),
    ];
    assert_eq!(sequential(FOUR_BAD_THEN_GOOD, options.clone()), expected);
    for workers in [1, 2] {
        assert_eq!(
            parallel(FOUR_BAD_THEN_GOOD, options.clone(), workers),
            expected,
            "{workers} workers"
        );
    }
}

/// The same input without a limit: both readers give every record error and the good
/// record, in the same order.
#[test]
fn fuzz_dump_reader_parallel_matches_sequential_without_limit() {
    let options = ReadOptions::default().max_errors(None);
    let seq = sequential(FOUR_BAD_THEN_GOOD, options.clone());
    assert_eq!(seq.len(), 5);
    assert_eq!(seq[4], "Ok(5)");
    assert_eq!(parallel(FOUR_BAD_THEN_GOOD, options, 2), seq);
}

/// A reader that hands out one byte per `read` call, as a pipe or socket may.
struct OneByteReads(&'static [u8]);

impl std::io::Read for OneByteReads {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// `<releases><release id="5"><title>ok</title></release></releases>`, gzip-compressed.
const GZIP_ONE_RELEASE: &[u8] = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff\xb3)J\xcdIM,N-\xb6\xb3\x81\xb2\x142Sl\x95L\x95\xeclJ2KrR\xed\xf2\xb3m\xf4!,\x1b}\xa8\n\x04\xab\xd8\x0e\x00\x88J\xfcW@\x00\x00\x00";

/// Not a fuzzer crash: seen while writing the fuzz harness, in `decompress` (reader.rs),
/// which looks for the gzip magic in what the first `fill_buf` returns. When the
/// underlying reader's first `read` gives a single byte (legal for any `Read`: pipes,
/// sockets, HTTP bodies), gzip input is not recognised and is rejected as "not XML".
#[test]
fn fuzz_harness_gzip_detected_with_one_byte_reads() {
    let records: Vec<u64> =
        DumpReader::from_reader(GZIP_ONE_RELEASE, "<gz>", ReadOptions::default())
            .expect("gzip read in one go")
            .map(|r| r.expect("a good record").record.id())
            .collect();
    assert_eq!(records, [5]);
    let reader = DumpReader::from_reader(
        OneByteReads(GZIP_ONE_RELEASE),
        "<gz, one byte per read>",
        ReadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("gzip input with one-byte reads was not recognised: {e}"));
    let records: Vec<u64> = reader
        .map(|r| r.expect("a good record").record.id())
        .collect();
    assert_eq!(records, [5]);
}
