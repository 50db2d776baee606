//! The page in headless Chromium (`tests/common/chromium.rs`), against an explorer served
//! by this process over the fixtures: type part of a known artist's name, pick the
//! suggestion, see the artist and its categories, expand one, see its nodes; move the
//! timeline scrubber and see the releases after the year go; open the trends and the path
//! finder and see them drawn. Screenshots go to
//! `target/tmp/explore-browser/`.
//!
//! The page's libraries come from npm: the test runs `npm ci` in `web/explore` first
//! (skipped when `node_modules` already matches `package-lock.json`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::chromium::{find_chromium_or_skip, start_chromium, Page};
use crate::within;
use crate::world::{Running, World};

/// Runs `npm ci` in `web/explore` unless `node_modules` was installed from the same lock
/// file (a stamp holds the lock file's SHA-256). `false` (test skipped) without npm.
fn npm_ci() -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/explore");
    let lock = std::fs::read(dir.join("package-lock.json")).expect("package-lock.json");
    let digest: String = Sha256::digest(&lock)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stamp = dir.join("node_modules/.installed-lock-sha256");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == digest) {
        return true;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status();
    match status {
        Ok(s) if s.success() => {
            std::fs::write(&stamp, digest).expect("stamp");
            true
        }
        Ok(s) => panic!("npm ci failed in {}: {s}", dir.display()),
        Err(e) => {
            let message = format!("npm not found ({e}): `scripts/services up` installs it");
            assert!(!discogs_testkit::is_ci(), "CI=true: {message}");
            discogs_testkit::skip(&message);
            false
        }
    }
}

/// What the page shows, read from its DOM.
const FIGURES: &str = r##"(() => {
  const all = (sel) => [...document.querySelectorAll(sel)];
  const chart = document.getElementById("trends-chart");
  return {
    suggestions: all("#suggestions li[data-id]").map((li) => li.dataset.type + ":" + li.dataset.id),
    center: all("#graph g.node.center").map((n) => n.dataset.key),
    categories: all("#graph g.node.category").map((n) => n.dataset.category),
    releases: all('#graph g.node[data-type="release"]').length,
    more: all("#graph g.node.more").length,
    timeline: !document.getElementById("timeline").hidden,
    year: document.getElementById("timeline").dataset.year || null,
    release_label: (document.querySelector('#graph g.node.category[data-category="releases"] text') || {}).textContent || null,
    info: (document.querySelector("#info-body h3") || {}).textContent || null,
    trend_traces: chart && chart.data ? chart.data.length : 0,
    trend_points: chart && chart.data && chart.data[0] ? chart.data[0].x.length : 0,
    path_status: document.getElementById("path-status").textContent,
    path_steps: all("#path-steps li.path-step").length,
    path_nodes: all("#path-graph g.path-node").length,
  };
})()"##;

/// Types `text` into the input `#id` as a user would (an `input` event per change).
fn type_js(id: &str, text: &str) -> String {
    format!(
        "(() => {{ const i = document.getElementById({id:?}); i.focus(); i.value = {text:?}; \
         i.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()"
    )
}

/// Moves the range input `#id` to `value` as a user would (an `input` event).
fn slide_js(id: &str, value: u16) -> String {
    format!(
        "(() => {{ const i = document.getElementById({id:?}); i.value = {value}; \
         i.dispatchEvent(new Event('input', {{bubbles: true}})); return i.value === '{value}'; }})()"
    )
}

/// Clicks the first element matching `selector`.
fn click_js(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; \
         e.dispatchEvent(new MouseEvent('click', {{bubbles: true}})); return true; }})()"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_explores_expands_charts_and_finds_a_path() {
    within(600, async {
        let Some(chromium) = find_chromium_or_skip() else {
            return;
        };
        if !npm_ci() {
            return;
        }
        let Some(world) = World::load("explore_browser").await else {
            return;
        };
        let model = &world.model;
        // A real artist (not "Various", id 194) with the most releases, and the artist
        // farthest from it (at most 6 steps).
        let (artist, releases) = model
            .artists()
            .map(|a| a.id)
            .chain(model.releases().flat_map(|r| r.artists.iter().filter_map(|a| a.id)))
            .filter(|id| *id != 194)
            .map(|id| (id, model.releases_by(id).len()))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .expect("artists");
        let years: std::collections::BTreeSet<u16> = model
            .releases()
            .filter(|r| r.artists.iter().any(|a| a.id == Some(artist)))
            .filter_map(|r| r.year.filter(|y| *y > 0))
            .collect();
        let start = ("artist", artist.to_string());
        let dist = model.distances(&start);
        let (far, d) = dist
            .iter()
            .filter(|(n, d)| n.0 == "artist" && (2..=6).contains(*d))
            .map(|(n, d)| (n.1.parse::<u64>().unwrap(), *d))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .expect("an artist a few steps away");
        let app = Running::start(world.args(&world.redis_url(), &[])).await;
        // The names as the graph holds them (a release's credit may carry another spelling).
        let name_of = |id: u64| {
            let app = &app;
            async move {
                let v = app.ok(&format!("/api/node/{id}?type=artist")).await;
                v["name"].as_str().expect("a name").to_owned()
            }
        };
        let (name, far_name) = (name_of(artist).await, name_of(far).await);
        println!("artist {artist} {name:?} ({releases} releases), path to {far} {far_name:?} ({d} steps)");
        let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("explore-browser");
        std::fs::create_dir_all(&artifacts).expect("artifacts folder");
        let url = format!("http://{}/", app.addr);
        let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "chromium-profile-{}",
            discogs_testkit::unique_suffix()
        ));
        let (browser, devtools) = start_chromium(&chromium, &url, &profile);
        let mut page = Page::attach(&devtools, &url).await;
        let limit = Duration::from_secs(30);
        page.wait_until(limit, "page loaded", "typeof d3 === 'object' && typeof Plotly === 'object' && !!document.getElementById('q')", FIGURES).await;

        // Part of the name: all but its last two characters.
        let chars: Vec<char> = name.chars().collect();
        let part: String = chars[..chars.len().saturating_sub(2).max(3).min(chars.len())].iter().collect();
        assert_eq!(page.eval(&type_js("q", &part)).await, true);
        let pick = format!(r#"#suggestions li[data-id="{artist}"]"#);
        page.wait_until(limit, "the artist is suggested", &format!("!!document.querySelector({pick:?})"), FIGURES).await;
        page.screenshot(&artifacts.join("1-suggestions.png")).await;
        assert_eq!(page.eval(&click_js(&pick)).await, true);
        page.wait_until(
            limit,
            "the artist and its categories",
            &format!(
                "(() => {{ const f = {FIGURES}; return f.center.join() === 'artist:{artist}' && f.categories.join() === 'releases,labels,aliases' && f.info !== null; }})()"
            ),
            FIGURES,
        )
        .await;

        // Expand the releases: a page of 30 at most, "load more" when there are more.
        assert_eq!(page.eval(&click_js(r#"#graph g.node.category[data-category="releases"]"#)).await, true);
        let first = releases.min(30);
        page.wait_until(
            limit,
            "release nodes appear",
            &format!("(() => {{ const f = {FIGURES}; return f.releases === {first} && f.more === {}; }})()", u8::from(releases > 30)),
            FIGURES,
        )
        .await;
        if releases > 30 {
            assert_eq!(page.eval(&click_js("#graph g.node.more")).await, true);
            let second = releases.min(60);
            page.wait_until(limit, "the next page appears", &format!("{FIGURES}.releases === {second}"), FIGURES).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await; // let the layout settle for the picture
        page.screenshot(&artifacts.join("2-graph-expanded.png")).await;

        // The timeline scrubber: moved to a year in the middle of the artist's releases,
        // the graph keeps only the releases up to it; "All years" brings the rest back.
        assert!(years.len() >= 2, "the artist's releases span several years: {years:?}");
        let mid = *years.iter().nth((years.len() - 1) / 2).unwrap();
        let upto = model
            .releases()
            .filter(|r| r.artists.iter().any(|a| a.id == Some(artist)))
            .filter(|r| r.year.is_some_and(|y| y > 0 && y <= mid))
            .count();
        assert!(upto > 0 && upto < releases, "{upto} of {releases} releases up to {mid}");
        page.wait_until(limit, "the timeline is shown", &format!("{FIGURES}.timeline"), FIGURES).await;
        assert_eq!(page.eval(&slide_js("year", mid)).await, true);
        page.wait_until(
            limit,
            "only the releases up to the year",
            &format!(
                "(() => {{ const f = {FIGURES}; return f.year === '{mid}' && f.releases === {} && f.release_label === 'Releases ({upto} ≤ {mid})'; }})()",
                upto.min(30)
            ),
            FIGURES,
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        page.screenshot(&artifacts.join("2b-timeline.png")).await;
        assert_eq!(page.eval(&click_js("#tl-all")).await, true);
        page.wait_until(
            limit,
            "every release again",
            &format!(
                "(() => {{ const f = {FIGURES}; return f.year === null && f.releases === {first} && f.release_label === 'Releases ({releases})'; }})()"
            ),
            FIGURES,
        )
        .await;

        // Trends: the artist's releases per year, one point per year.
        assert_eq!(page.eval(&click_js(r#"#tabs button[data-pane="trends"]"#)).await, true);
        page.wait_until(
            limit,
            "the trend is drawn",
            &format!("(() => {{ const f = {FIGURES}; return f.trend_traces === 1 && f.trend_points === {}; }})()", years.len()),
            FIGURES,
        )
        .await;
        page.screenshot(&artifacts.join("3-trends.png")).await;

        // Path finder: to the far artist, drawn with every step.
        assert_eq!(page.eval(&click_js(r#"#tabs button[data-pane="path"]"#)).await, true);
        assert_eq!(page.eval(&type_js("path-q", &far_name)).await, true);
        let pick = format!(r#"#path-suggestions li[data-id="{far}"]"#);
        page.wait_until(limit, "the far artist is suggested", &format!("!!document.querySelector({pick:?})"), FIGURES).await;
        assert_eq!(page.eval(&click_js(&pick)).await, true);
        assert_eq!(page.eval(&click_js("#path-go")).await, true);
        page.wait_until(
            limit,
            "the path is drawn",
            &format!("(() => {{ const f = {FIGURES}; return f.path_steps === {n} && f.path_nodes === {n}; }})()", n = d + 1),
            FIGURES,
        )
        .await;
        let status = page.eval(&format!("{FIGURES}.path_status")).await;
        assert_eq!(status, format!("Connected in {d} steps."));
        page.screenshot(&artifacts.join("4-path.png")).await;

        drop(page);
        drop(browser);
        std::fs::remove_dir_all(&profile).unwrap_or(());
        app.stop().await;
        world.clean().await;
    })
    .await;
}
