//! Explore and expand lookups that arrive together share Neo4j statements (one subquery
//! each, `explore/batch.rs`): their answers must be exactly those each lookup gets alone.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::world::{metric, Running, World};

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Explore and expand requests of every centre type, by id and by name, of several
/// categories, pages and year cut-offs, and unknown centres (404).
fn requests(world: &World) -> (Vec<String>, Vec<String>, Vec<(u64, usize)>) {
    let model = &world.model;
    let releases_of = crate::api::releases_per_artist(model);
    let mut labels: BTreeMap<u64, usize> = BTreeMap::new();
    let (mut genres, mut styles) = (BTreeSet::new(), BTreeSet::new());
    for r in model.releases() {
        for l in r.labels.iter().filter_map(|l| l.id) {
            *labels.entry(l).or_default() += 1;
        }
        genres.extend(r.genres.iter().map(ToString::to_string));
        styles.extend(r.styles.iter().map(ToString::to_string));
    }
    let mut artists: Vec<(u64, usize)> = releases_of.into_iter().collect();
    artists.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    // The busiest, and some with a single release.
    let mut picked: Vec<(u64, usize)> = artists.iter().take(16).copied().collect();
    picked.extend(artists.iter().rev().take(8).copied());
    let mut labels: Vec<(u64, usize)> = labels.into_iter().collect();
    labels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let labels: Vec<u64> = labels.iter().take(6).map(|l| l.0).collect();
    let genres: Vec<String> = genres.into_iter().take(4).collect();
    let styles: Vec<String> = styles.into_iter().take(4).collect();
    let names: Vec<String> = model
        .artists()
        .take(6)
        .map(|a| a.name.to_string())
        .collect();

    let mut explores = Vec::new();
    let mut expands = Vec::new();
    for (n, (id, _)) in picked.iter().enumerate() {
        explores.push(format!("/api/explore?type=artist&id={id}"));
        let base = format!("/api/expand?type=artist&id={id}");
        expands.push(format!("{base}&category=releases&limit=5"));
        expands.push(format!("{base}&category=releases&limit=5&offset=5"));
        // Cut-offs differ between lookups of one statement (a row's parameter).
        let year = [1980, 1990, 2000, 2010][n % 4];
        expands.push(format!(
            "{base}&category=releases&limit=5&before_year={year}"
        ));
        expands.push(format!("{base}&category=labels&limit=3"));
        expands.push(format!("{base}&category=aliases&limit=10"));
    }
    for name in &names {
        explores.push(format!("/api/explore?type=artist&name={}", enc(name)));
        expands.push(format!(
            "/api/expand?type=artist&name={}&category=releases&limit=5",
            enc(name)
        ));
    }
    for id in &labels {
        explores.push(format!("/api/explore?type=label&id={id}"));
        for cat in ["releases", "artists", "genres"] {
            expands.push(format!(
                "/api/expand?type=label&id={id}&category={cat}&limit=5"
            ));
        }
    }
    for (kind, names) in [("genre", &genres), ("style", &styles)] {
        for (n, name) in names.iter().enumerate() {
            explores.push(format!("/api/explore?type={kind}&name={}", enc(name)));
            let other = if kind == "genre" { "styles" } else { "genres" };
            for cat in ["releases", "artists", "labels", other] {
                expands.push(format!(
                    "/api/expand?type={kind}&name={}&category={cat}&limit=5",
                    enc(name)
                ));
            }
            expands.push(format!(
                "/api/expand?type={kind}&name={}&category=releases&limit=5&before_year={}",
                enc(name),
                1985 + 5 * n
            ));
        }
    }
    // Unknown centres, between known ones of the same shapes.
    for path in [
        "/api/explore?type=artist&id=999999999",
        "/api/explore?type=artist&name=No%20Such%20Artist%20Anywhere",
        "/api/explore?type=genre&name=No%20Such%20Genre",
    ] {
        explores.insert(explores.len() / 2, path.to_owned());
    }
    for path in [
        "/api/expand?type=artist&id=999999999&category=releases&limit=5",
        "/api/expand?type=label&id=999999999&category=artists&limit=5",
    ] {
        expands.insert(expands.len() / 2, path.to_owned());
    }
    (explores, expands, picked)
}

/// Explores and expands sent all at once to an explorer that runs one statement of a
/// shape at a time (so the others queue and share the next) answer exactly what each
/// answers alone (one statement each, sent one after the other), 404s included; the
/// releases counts equal the records'.
pub(crate) async fn batched_explores_and_expands(world: &World) {
    let (explores, expands, artists) = requests(world);
    assert!(
        explores.len() > 30 && expands.len() > 150,
        "{} explores, {} expands",
        explores.len(),
        expands.len()
    );
    let no_cache = ["--memory-cache-mb", "0"];
    let alone = Running::start(world.args("", &no_cache)).await;
    let mut want: Vec<(u16, Value)> = Vec::new();
    for path in explores.iter().chain(&expands) {
        want.push(alone.get(path).await);
    }
    let count = |text: &str, series: &str| metric(text, &format!("explore_{series}_total"));
    let m = alone.metrics().await;
    for what in ["explore", "expand"] {
        assert_eq!(
            count(&m, &format!("{what}_statements")),
            count(&m, &format!("{what}_lookups")),
            "one after the other: one statement per {what}"
        );
    }
    alone.stop().await;
    // The anchors: every request answered, the unknown ones 404, the artists' release
    // counts those of the records.
    let statuses: BTreeSet<u16> = want.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, BTreeSet::from([200, 404]), "{want:?}");
    assert_eq!(want.iter().filter(|(s, _)| *s == 404).count(), 5);
    for (id, releases) in &artists {
        let path = format!("/api/explore?type=artist&id={id}");
        let i = explores.iter().position(|p| *p == path).unwrap();
        let cats = want[i].1["categories"].as_array().unwrap();
        let n = cats.iter().find(|c| c["category"] == "releases").unwrap()["count"].clone();
        assert_eq!(n, *releases, "{path}: {}", want[i].1);
    }

    let shared = Running::start(world.args(
        "",
        &[
            no_cache[0],
            no_cache[1],
            "--explore-statements",
            "1",
            "--expand-statements",
            "1",
        ],
    ))
    .await;
    let before = shared.metrics().await;
    // Every request at once, twice over (the same centre twice in one statement is
    // answered twice).
    let paths: Vec<&String> = explores.iter().chain(&expands).collect();
    let got = futures_util::future::join_all(
        paths
            .iter()
            .chain(paths.iter())
            .map(|path| shared.get(path)),
    )
    .await;
    for ((path, got), want) in paths
        .iter()
        .chain(paths.iter())
        .zip(&got)
        .zip(want.iter().chain(want.iter()))
    {
        assert_eq!(got, want, "{path}: shared statement vs alone");
    }
    let after = shared.metrics().await;
    for (what, n) in [("explore", explores.len()), ("expand", expands.len())] {
        let lookups =
            count(&after, &format!("{what}_lookups")) - count(&before, &format!("{what}_lookups"));
        let statements = count(&after, &format!("{what}_statements"))
            - count(&before, &format!("{what}_statements"));
        assert_eq!(lookups, 2 * n as u64, "{what}: {after}");
        assert!(
            statements < lookups / 2,
            "{what}: {lookups} lookups in {statements} statements: they shared"
        );
    }
    shared.stop().await;
}
