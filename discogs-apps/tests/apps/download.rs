//! Discovery and download against a Discogs-like site in the test process: the newest
//! complete dump is chosen, a cut download resumes with Range and verifies, a corrupt file
//! is detected and fetched again, 429 with Retry-After is honoured.

use std::time::{Duration, Instant};

use discogs_apps::extractor::fetch::{self, sha256_file};
use discogs_apps::extractor::http::{part_path, Http, HttpOptions};
use discogs_apps::extractor::progress::Progress;
use discogs_apps::extractor::state::VersionState;
use discogs_parse::RecordKind;

use crate::dumpsite::{DumpSite, Faults};
use crate::util::temp_root;

fn quick_http() -> Http {
    Http::new(HttpOptions {
        min_gap: Duration::from_millis(20),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        max_attempts: 4,
        ..HttpOptions::default()
    })
    .unwrap()
}

#[tokio::test]
async fn newest_complete_dump_is_chosen_from_html_and_s3_listings() {
    let Some(fixtures) = discogs_testkit::shared_fixtures() else {
        return;
    };
    for s3 in [false, true] {
        let site = DumpSite::start(&fixtures, s3).await;
        let http = quick_http();
        let chosen = fetch::discover(&http, &site.base_url(), false)
            .await
            .unwrap();
        assert_eq!(
            chosen.date.to_string(),
            "20251101",
            "s3={s3}: the split 2025-12-03 dump is skipped"
        );
        let sums = chosen.checksums.as_ref().unwrap();
        assert_eq!(sums.len(), 4);
        if s3 {
            // 11 keys in pages of 8: the listing was continued with a marker.
            assert!(
                site.log().iter().any(|s| s.target.contains("marker=")),
                "{:?}",
                site.log()
            );
        }
        // Without a CHECKSUM requirement the split date still lacks two kinds.
        let loose = fetch::discover(&http, &site.base_url(), true)
            .await
            .unwrap();
        assert_eq!(loose.date.to_string(), "20251101");

        let root = temp_root("discover");
        let mut state = VersionState::new("20251101");
        let progress = Progress::default();
        let files = fetch::fetch(&http, &root, &chosen, &mut state, &progress)
            .await
            .unwrap();
        assert_eq!(files.len(), 4);
        for (kind, file) in &files {
            assert!(file.verified, "{kind}");
            let name = format!("discogs_20251101_{}.xml.gz", kind.plural());
            assert_eq!(std::fs::read(&file.path).unwrap(), site.bytes(&name));
            assert!(state.files[kind].verified);
        }
        // A second fetch trusts the recorded verification: no request at all.
        let before = site.log().len();
        let mut again = VersionState::load(&root, "20251101").unwrap().unwrap();
        fetch::fetch(&http, &root, &chosen, &mut again, &progress)
            .await
            .unwrap();
        assert_eq!(
            site.log().len(),
            before,
            "verified files are not fetched again"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}

#[tokio::test]
async fn cut_download_resumes_with_range_and_verifies() {
    let Some(fixtures) = discogs_testkit::shared_fixtures() else {
        return;
    };
    let site = DumpSite::start(&fixtures, false).await;
    let name = "discogs_20251101_releases.xml.gz";
    let size = site.bytes(name).len();
    site.set_faults(
        name,
        Faults {
            cut_after: Some(size / 2),
            ..Faults::default()
        },
    );
    let http = quick_http();
    let chosen = fetch::discover(&http, &site.base_url(), false)
        .await
        .unwrap();
    let root = temp_root("resume");
    let mut state = VersionState::new("20251101");
    let files = fetch::fetch(&http, &root, &chosen, &mut state, &Progress::default())
        .await
        .unwrap();
    assert!(files[&RecordKind::Release].verified);
    let seen = site.requests_for(name);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].range_from, None);
    assert_eq!(
        seen[1].range_from,
        Some(u64::try_from(size / 2).unwrap()),
        "resumed where the cut was"
    );
    assert_eq!(seen[1].status, 206);

    // A download killed with the process leaves a .part file: the next run asks for the rest.
    let dest = root.join("other.xml.gz");
    std::fs::write(part_path(&dest), &site.bytes(name)[..size / 3]).unwrap();
    let url = format!("http://{}/?download=data%2F2025%2F{name}", site.addr);
    let done = http
        .download(&url, &dest, &Progress::default())
        .await
        .unwrap();
    assert_eq!(done.resumed_from, u64::try_from(size / 3).unwrap());
    assert_eq!(done.bytes, u64::try_from(size).unwrap());
    assert_eq!(std::fs::read(&dest).unwrap(), site.bytes(name));
    assert!(!part_path(&dest).exists());
    assert_eq!(
        site.requests_for(name).last().unwrap().range_from,
        Some(u64::try_from(size / 3).unwrap())
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn corrupt_file_is_detected_and_fetched_again() {
    let Some(fixtures) = discogs_testkit::shared_fixtures() else {
        return;
    };
    let site = DumpSite::start(&fixtures, false).await;
    let labels = "discogs_20251101_labels.xml.gz";
    site.set_faults(
        labels,
        Faults {
            corrupt: 1,
            ..Faults::default()
        },
    );
    let http = quick_http();
    let chosen = fetch::discover(&http, &site.base_url(), false)
        .await
        .unwrap();
    let root = temp_root("corrupt");
    // A file already on disk with wrong bytes (e.g. an old, damaged copy) is re-fetched too.
    let masters = "discogs_20251101_masters.xml.gz";
    let mut damaged = site.bytes(masters);
    damaged[10] ^= 0xff;
    std::fs::write(root.join(masters), &damaged).unwrap();

    let mut state = VersionState::new("20251101");
    let progress = Progress::default();
    let files = fetch::fetch(&http, &root, &chosen, &mut state, &progress)
        .await
        .unwrap();
    assert_eq!(
        site.requests_for(labels).len(),
        2,
        "corrupt bytes, then good ones"
    );
    assert_eq!(
        site.requests_for(masters).len(),
        1,
        "the damaged copy on disk was replaced"
    );
    for kind in [RecordKind::Label, RecordKind::Master] {
        let file = &files[&kind];
        assert!(file.verified);
        let sum = sha256_file(&file.path, &progress).await.unwrap();
        assert_eq!(Some(&sum), chosen.checksums.as_ref().unwrap().get(&kind));
    }

    // Corrupt every time: the second mismatch is an error and nothing unverified stays.
    site.set_faults(
        labels,
        Faults {
            corrupt: 5,
            ..Faults::default()
        },
    );
    std::fs::remove_file(root.join(labels)).unwrap();
    let mut fresh = VersionState::new("20251101");
    let err = fetch::fetch(&http, &root, &chosen, &mut fresh, &progress)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("does not match the CHECKSUM"),
        "{err:#}"
    );
    assert!(!root.join(labels).exists());
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_honoured() {
    let Some(fixtures) = discogs_testkit::shared_fixtures() else {
        return;
    };
    let site = DumpSite::start(&fixtures, false).await;
    let name = "discogs_20251101_artists.xml.gz";
    site.set_faults(
        name,
        Faults {
            rate_limit: Some(2),
            ..Faults::default()
        },
    );
    let http = quick_http();
    let root = temp_root("429");
    let url = format!("http://{}/?download=data%2F2025%2F{name}", site.addr);
    let started = Instant::now();
    http.download(&url, &root.join(name), &Progress::default())
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "waited {waited:?}, the server asked for 2 s"
    );
    assert!(waited < Duration::from_secs(10));
    let seen = site.requests_for(name);
    assert_eq!(
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        [429, 200]
    );
    std::fs::remove_dir_all(&root).unwrap();
}
