//! The extractor's publishing logic over real dump excerpts, with the recording outlet:
//! change detection (a second run publishes nothing; the 2025 kiraririria releases over
//! the 2025-11 excerpt publish exactly the changed records), resume after a crash from
//! the last confirmed batch, `/trigger` and `/health`, and a health port in use stopping
//! the service before its first cycle.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use clap::Parser as _;
use discogs_apps::extractor::run::{CycleOutcome, Extractor};
use discogs_apps::extractor::state::VersionState;
use discogs_apps::extractor::ExtractorArgs;
use discogs_apps::shutdown::Shutdown;
use discogs_model::{RecordHash, RecordKind};
use discogs_parse::DumpReader;

use crate::outlet::RecordingOutlet;
pub(crate) use crate::util::temp_root;

pub(crate) const EXCERPT_2025_11: &str =
    "nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz";
pub(crate) const KIRARIRIRIA_2025: &str = "kiraririria__discogs-xml2json/releases.xml";

pub(crate) fn args(root: &Path, input: &Path, extra: &[&str]) -> ExtractorArgs {
    let mut v = vec![
        "extractor".to_owned(),
        "--discogs-root".into(),
        root.display().to_string(),
        "--input".into(),
        input.display().to_string(),
        "--max-workers".into(),
        "2".into(),
    ];
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    ExtractorArgs::parse_from(v)
}

/// (id, hash) of every record of a file, in order, read independently of the extractor.
pub(crate) fn records_of(path: &Path) -> Vec<(u64, RecordHash)> {
    DumpReader::open(path)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.record.id(), r.hash)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_only_what_changed() {
    let Some(fixtures) = discogs_testkit::shared_fixtures() else {
        return;
    };
    let root = temp_root("changes");
    let month = fixtures.join(EXCERPT_2025_11);
    let shutdown = Shutdown::new();
    let all = records_of(&month);
    assert_eq!(all.len(), 4_229);

    // First run: everything is new.
    let mut outlet = RecordingOutlet::new(100, 3);
    let ex = Extractor::new(args(&root, &month, &[]));
    let outcome = ex.cycle(&mut outlet, &shutdown, false).await.unwrap();
    let CycleOutcome::Completed { version, published } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(version, "20251101");
    assert_eq!(published[&RecordKind::Release], 4_229);
    assert_eq!(
        outlet.published_ids(),
        all.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert_eq!(
        outlet.file_complete,
        vec![(
            "discogs_20251101_releases_sample_100000.xml.gz".to_owned(),
            43,
            4_229
        )]
    );
    assert!(
        outlet.extraction_complete.is_empty(),
        "one kind only: no extraction_complete"
    );

    // The same version again: finished, skipped without reading.
    let again = ex.cycle(&mut outlet, &shutdown, false).await.unwrap();
    assert_eq!(
        again,
        CycleOutcome::AlreadyDone {
            version: "20251101".into()
        }
    );
    // Read again on purpose: every hash is known, nothing is published.
    let sent_before = outlet.sent.len();
    let reread = ex.cycle(&mut outlet, &shutdown, true).await.unwrap();
    let CycleOutcome::Completed { published, .. } = reread else {
        panic!("{reread:?}")
    };
    assert_eq!(published[&RecordKind::Release], 0);
    assert_eq!(
        outlet.sent.len(),
        sent_before,
        "a second run publishes nothing"
    );

    // A later 2025 dump's first 12 releases: exactly the records whose data changed.
    let later = fixtures.join(KIRARIRIRIA_2025);
    let old: BTreeMap<u64, RecordHash> = all.iter().copied().collect();
    let new = records_of(&later);
    let changed: Vec<u64> = new
        .iter()
        .filter(|(id, h)| old.get(id) != Some(h))
        .map(|r| r.0)
        .collect();
    assert_eq!(
        (new.len(), changed.len()),
        (12, 7),
        "as PROVENANCE.md says: 7 of 12 differ"
    );
    let mut outlet = RecordingOutlet::new(100, 3);
    let ex = Extractor::new(args(&root, &later, &[]));
    let outcome = ex.cycle(&mut outlet, &shutdown, false).await.unwrap();
    let CycleOutcome::Completed { version, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(version, "local-releases");
    assert_eq!(outlet.published_ids(), changed);
    let published_hashes: Vec<RecordHash> = outlet
        .sent
        .iter()
        .flat_map(|b| b.records.iter().map(|r| r.1))
        .collect();
    let want: Vec<RecordHash> = new
        .iter()
        .filter(|r| changed.contains(&r.0))
        .map(|r| r.1)
        .collect();
    assert_eq!(published_hashes, want);
    // Ids of the earlier dump that this one lacks are listed for the consumers' purge.
    let removed =
        std::fs::read_to_string(root.join("removed_local-releases_releases.ids")).unwrap();
    assert_eq!(removed.lines().count(), 4_229 - 12);
    assert!(!removed
        .lines()
        .any(|l| new.iter().any(|r| r.0.to_string() == l)));
    // ... and sent to them, once, in the list's order.
    let listed: Vec<u64> = removed.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(outlet.removed.len(), 1);
    assert_eq!(outlet.removed[0].1, listed);
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_crash_from_the_last_confirmed_batch() {
    let Some(fixtures) = discogs_testkit::shared_fixtures() else {
        return;
    };
    let root = temp_root("resume");
    let month = fixtures.join(EXCERPT_2025_11);
    let all: Vec<u64> = records_of(&month).into_iter().map(|r| r.0).collect();
    let shutdown = Shutdown::new();
    let a = args(&root, &month, &["--checkpoint-secs", "0"]);

    // The broker goes away after 2,050 records, with the newest 3 batches unconfirmed.
    let mut first = RecordingOutlet::new(100, 3);
    first.fail_after = Some(2_050);
    let err = Extractor::new(a.clone())
        .cycle(&mut first, &shutdown, false)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("broker connection lost"),
        "{err:#}"
    );
    let state = VersionState::load(&root, "20251101").unwrap().unwrap();
    let point = state.files[&RecordKind::Release].resume;
    assert!(point.batches >= 5 && point.batches <= 20, "{point:?}");
    assert_eq!(point.published, point.batches * 100);

    // Restart: publishing continues after the confirmed batches, not from record 0.
    let mut second = RecordingOutlet::new(100, 3);
    Extractor::new(a)
        .cycle(&mut second, &shutdown, false)
        .await
        .unwrap();
    assert_eq!(second.begun[0].1, point);
    assert_eq!(second.sent[0].seq, point.batches, "batch numbers go on");
    let confirmed_first: Vec<u64> = first
        .published_ids()
        .into_iter()
        .take(usize::try_from(point.published).unwrap())
        .collect();
    let mut union = confirmed_first;
    union.extend(second.published_ids());
    assert_eq!(
        union, all,
        "confirmed before the crash + after the restart = a clean run, each record once"
    );
    assert_eq!(
        second.file_complete[0].2, 4_229,
        "file_complete counts the whole file"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_confirms_the_batch_in_hand_and_saves_the_point() {
    let Some(fixtures) = discogs_testkit::shared_fixtures() else {
        return;
    };
    let root = temp_root("shutdown");
    let month = fixtures.join(EXCERPT_2025_11);
    let all: Vec<u64> = records_of(&month).into_iter().map(|r| r.0).collect();
    let a = args(&root, &month, &[]);
    let shutdown = Shutdown::new();
    let mut first = RecordingOutlet::new(100, 3);
    first.shutdown_after = Some((1_234, shutdown.clone()));
    let outcome = Extractor::new(a.clone())
        .cycle(&mut first, &shutdown, false)
        .await
        .unwrap();
    assert_eq!(outcome, CycleOutcome::Interrupted);
    let point = VersionState::load(&root, "20251101")
        .unwrap()
        .unwrap()
        .files[&RecordKind::Release]
        .resume;
    // The partial batch in hand was sent and confirmed: everything accepted is saved.
    let accepted = u64::try_from(first.published_ids().len()).unwrap();
    assert!(accepted >= 1_234, "{accepted}");
    assert_eq!(point.published, accepted);
    assert_eq!(point.batches, u64::try_from(first.sent.len()).unwrap());
    assert!(
        first.file_complete.is_empty(),
        "no file_complete for an unfinished file"
    );

    let mut second = RecordingOutlet::new(100, 3);
    Extractor::new(a)
        .cycle(&mut second, &Shutdown::new(), false)
        .await
        .unwrap();
    let mut union = first.published_ids();
    union.extend(second.published_ids());
    assert_eq!(union, all, "nothing twice, nothing lost");
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_and_health_over_http() {
    let root = temp_root("trigger");
    let ex = Extractor::new(args(&root, &root, &[]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    tokio::spawn(discogs_apps::health::serve_on(
        listener,
        ex.router(),
        shutdown.clone(),
    ));
    let health = crate::util::request(addr, "GET", "/health", "").await;
    assert_eq!(health.status, 200);
    let body: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(body["state"], "idle");
    assert!(body["extraction_progress"]["bytes_done"].is_number());
    assert!(body["records"]["releases"]["published"].is_number());
    let t = crate::util::request(addr, "POST", "/trigger", r#"{"force_reprocess":true}"#).await;
    assert_eq!(t.status, 202, "{}", t.body);
    assert!(t.body.contains("\"force_reprocess\":true"));
    let again = crate::util::request(addr, "POST", "/trigger", "").await;
    assert_eq!(again.status, 409, "one check at a time: {}", again.body);
    ex.status.set_state("running");
    let busy = crate::util::request(addr, "POST", "/trigger", "").await;
    assert_eq!(
        (busy.status, busy.body.contains("already_running")),
        (409, true)
    );
    shutdown.trigger();
    std::fs::remove_dir_all(&root).unwrap();
}

/// A health port already in use stops the service before its first cycle, with the address
/// in the error (the server used to be spawned unchecked: the service ran without `/health`
/// and logged the bind error only when it stopped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_port_in_use_stops_the_service_before_its_first_cycle() {
    let root = temp_root("port-in-use");
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    // The input does not exist: a cycle would fail on it with another error.
    let input = root.join("no-such-dump");
    let ex = Extractor::new(args(&root, &input, &["--health-port", &port]));
    let mut outlet = RecordingOutlet::new(100, 3);
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        ex.serve(&mut outlet, Shutdown::new()),
    )
    .await
    .expect("serve returns at once");
    let error = format!("{:#}", result.expect_err("the port is in use"));
    assert!(
        error.contains(&format!("binding the health server to 127.0.0.1:{port}")),
        "{error}"
    );
    assert!(outlet.published_ids().is_empty(), "nothing published");
    drop(taken);
    std::fs::remove_dir_all(&root).unwrap();
}
