//! Arbitrary UTF-8 text as one record of each of the four kinds (`parse_record`).
//!
//! Checks: no panic; on success the record has the asked kind, parsing is deterministic,
//! `into_owned()` keeps the record and its hash; on failure the error offset lies within
//! the text.
#![no_main]

use discogs_model::RecordKind;
use discogs_parse_fuzz::check_record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in RecordKind::ALL {
        check_record(kind, text);
    }
});
