//! Compares two dumps of one kind (say, two months of releases) by record hash and
//! prints what changed: new, changed and removed ids.
//!
//! Run with:
//!
//! ```text
//! cargo run --release -p examples --example diff_dumps -- OLD NEW [--ids]
//! ```
//!
//! With `--ids`, also lists the ids, one `+id` (new), `~id` (changed) or `-id` (removed)
//! per line. Memory: one id and hash (40 bytes) per record of OLD.

use std::collections::HashMap;
use std::process::ExitCode;

use discogs_parse::{DumpReader, Error, ParallelReader, RecordHash};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let list_ids = args.iter().any(|a| a == "--ids");
    let files: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [old, new] = files.as_slice() else {
        eprintln!("usage: diff_dumps OLD NEW [--ids]");
        return ExitCode::FAILURE;
    };
    match diff(old, new, list_ids) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every (id, hash) of a dump, read on all cores; malformed records are reported and skipped.
fn hashes(
    path: &str,
    mut each: impl FnMut(u64, RecordHash),
) -> Result<discogs_parse::RecordKind, Error> {
    let reader = DumpReader::open(path)?;
    let kind = reader.kind();
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    for item in ParallelReader::new(reader, workers, |p| (p.record.id(), p.hash)) {
        match item {
            Ok((id, hash)) => each(id, hash),
            Err(Error::Record(e)) => eprintln!("skipped: {e}"),
            Err(e) => return Err(e),
        }
    }
    Ok(kind)
}

fn diff(old: &str, new: &str, list_ids: bool) -> Result<(), Error> {
    let mut before: HashMap<u64, RecordHash> = HashMap::new();
    let old_kind = hashes(old, |id, hash| {
        before.insert(id, hash);
    })?;
    let (mut added, mut changed, mut same) = (Vec::new(), Vec::new(), 0u64);
    let new_kind = hashes(new, |id, hash| match before.remove(&id) {
        None => added.push(id),
        Some(h) if h != hash => changed.push(id),
        Some(_) => same += 1,
    })?;
    if old_kind != new_kind {
        eprintln!("error: {old} holds {old_kind}, {new} holds {new_kind}");
        std::process::exit(2);
    }
    let mut removed: Vec<u64> = before.into_keys().collect();
    removed.sort_unstable();
    println!(
        "{new_kind}: {} new, {} changed, {} removed, {same} unchanged",
        added.len(),
        changed.len(),
        removed.len()
    );
    if list_ids {
        for id in &added {
            println!("+{id}");
        }
        for id in &changed {
            println!("~{id}");
        }
        for id in &removed {
            println!("-{id}");
        }
    }
    Ok(())
}
