//! Criterion benches for discogs-parse.
//!
//! Run with `cargo bench -p discogs-benches --bench parse`.
//!
//! * `file/*`: whole in-memory dumps (20 MB generated per kind, plus the real excerpts
//!   when `../shared/fixtures` is present), parsed into typed records and hashed, in
//!   MB/s of XML; sequentially, and in parallel with two workers from gzip.
//! * `record/*`: one typical release: parse only, hash only.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use discogs_benches::generate::Generator;
use discogs_parse::{
    parse_record, write_record, DumpReader, DumpWriter, Era, Layout, ParallelReader, ReadOptions,
    RecordKind,
};

fn generated(kind: RecordKind, bytes: usize) -> Arc<[u8]> {
    let mut w = DumpWriter::new(
        Vec::with_capacity(bytes + (1 << 20)),
        kind,
        Layout::new(Era::E3),
    )
    .unwrap();
    let mut written = 0;
    let mut scratch = Vec::new();
    for record in Generator::new(kind, 7) {
        if written >= bytes {
            break;
        }
        scratch.clear();
        write_record(&record, Layout::new(Era::E3), &mut scratch);
        written += scratch.len();
        w.write(&record).unwrap();
    }
    w.finish().unwrap().into()
}

fn real(rel: &str) -> Option<Arc<[u8]>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(rel);
    let raw = std::fs::read(path).ok()?;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .ok()?;
    Some(out.into())
}

fn gzip(xml: &[u8]) -> Arc<[u8]> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(xml).unwrap();
    gz.finish().unwrap().into()
}

fn count_sequential(input: &Arc<[u8]>) -> u64 {
    let mut reader =
        DumpReader::from_reader(Cursor::new(input.clone()), "bench", ReadOptions::default())
            .unwrap();
    let mut n = 0;
    while let Some(r) = reader.next_record() {
        std::hint::black_box(r.unwrap().hash);
        n += 1;
    }
    n
}

fn count_parallel(input: &Arc<[u8]>) -> u64 {
    let reader =
        DumpReader::from_reader(Cursor::new(input.clone()), "bench", ReadOptions::default())
            .unwrap();
    let mut n = 0;
    for h in ParallelReader::new(reader, 2, |p| p.hash) {
        std::hint::black_box(h.unwrap());
        n += 1;
    }
    n
}

fn files(c: &mut Criterion) {
    let mut inputs: Vec<(String, Arc<[u8]>)> = RecordKind::ALL
        .iter()
        .map(|&k| {
            (
                format!("generated-{}", k.plural()),
                generated(k, 20_000_000),
            )
        })
        .collect();
    for (name, rel) in [
        ("real-releases-2025-11", "nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz"),
        ("real-masters-2026-01", "nicolascalo__discogs_lakehouse_graph_data_platform/derived_discogs_20260101_masters_sample_300000.wellformed.xml.gz"),
    ] {
        if let Some(xml) = real(rel) {
            inputs.push((name.to_owned(), xml));
        }
    }
    let mut group = c.benchmark_group("file");
    group.sample_size(10);
    for (name, xml) in &inputs {
        group.throughput(Throughput::Bytes(xml.len() as u64));
        group.bench_with_input(BenchmarkId::new("sequential-xml", name), xml, |b, xml| {
            b.iter(|| count_sequential(xml))
        });
        let gz = gzip(xml);
        group.bench_with_input(BenchmarkId::new("parallel2-gz", name), &gz, |b, gz| {
            b.iter(|| count_parallel(gz))
        });
    }
    group.finish();
}

fn one_record(c: &mut Criterion) {
    let record = Generator::new(RecordKind::Release, 11).nth(3).unwrap();
    let mut xml = Vec::new();
    write_record(&record, Layout::new(Era::E3), &mut xml);
    let xml = String::from_utf8(xml).unwrap();
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Bytes(xml.len() as u64));
    group.bench_function("parse-release", |b| {
        b.iter(|| parse_record(RecordKind::Release, std::hint::black_box(&xml)).unwrap())
    });
    let mut hasher = discogs_model::RecordHasher::new();
    group.bench_function("hash-release", |b| {
        b.iter(|| hasher.hash(std::hint::black_box(&record)))
    });
    group.finish();
}

criterion_group!(benches, files, one_record);
criterion_main!(benches);
