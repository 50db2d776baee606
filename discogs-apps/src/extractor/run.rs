//! The service loop: one cycle now, then one every `PERIODIC_CHECK_DAYS` or on
//! `POST /trigger`; `/health` and `/metrics` all along; a clean stop on SIGTERM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use discogs_parse::{DumpContent, DumpFileName, DumpReader, RecordKind};
use serde_json::{json, Map, Value};

use super::fetch;
use super::hashstore::HashStore;
use super::http::{Http, HttpOptions};
use super::progress::Progress;
use super::publish::{publish_file, FileJob, FileOutcome, Outlet, PublishOptions};
use super::state::{FileStatus, VersionState};
use super::ExtractorArgs;
use crate::health::{self, Status};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// How a cycle ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CycleOutcome {
    /// The version was published to the end (`extraction_complete` sent when it has all
    /// four kinds).
    Completed {
        /// The version.
        version: String,
        /// Records published per kind in this cycle.
        published: BTreeMap<RecordKind, u64>,
    },
    /// The version was finished before: nothing to do.
    AlreadyDone {
        /// The version.
        version: String,
    },
    /// Shutdown was asked for; the resume point is saved.
    Interrupted,
}

/// What the service shares with its HTTP handlers.
#[derive(Debug, Clone)]
pub struct Extractor {
    args: Arc<ExtractorArgs>,
    /// `/health`.
    pub status: Status,
    /// `/metrics`.
    pub metrics: Metrics,
    /// The step in hand, by bytes.
    pub progress: Progress,
    current: Arc<Mutex<Value>>,
    trigger: tokio::sync::mpsc::Sender<bool>,
    trigger_rx: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<bool>>>,
}

impl Extractor {
    /// Sets up status, metrics and progress for `args`.
    #[must_use]
    pub fn new(args: ExtractorArgs) -> Self {
        let (trigger, trigger_rx) = tokio::sync::mpsc::channel(1);
        let this = Self {
            args: Arc::new(args),
            status: Status::new("extractor"),
            metrics: Metrics::new("extractor"),
            progress: Progress::default(),
            current: Arc::new(Mutex::new(json!({}))),
            trigger,
            trigger_rx: Arc::new(tokio::sync::Mutex::new(trigger_rx)),
        };
        let (progress, metrics, current) = (
            this.progress.clone(),
            this.metrics.clone(),
            this.current.clone(),
        );
        this.status.set_details(move || {
            let mut m = Map::new();
            m.insert("extraction_progress".into(), progress.to_json());
            let mut kinds = Map::new();
            for kind in RecordKind::ALL {
                let labels = [("kind", kind.plural())];
                kinds.insert(
                    kind.plural().into(),
                    json!({
                        "read": metrics.counter("records_read_total", "Records read from dump files.", &labels).get(),
                        "published": metrics.counter("records_published_total", "Records published (new or changed).", &labels).get(),
                    }),
                );
            }
            m.insert("records".into(), Value::Object(kinds));
            m.insert("current".into(), current.lock().unwrap_or_else(PoisonError::into_inner).clone());
            m
        });
        this.status.set_state("idle");
        this
    }

    /// `/health`, `/metrics` and `POST /trigger` (`{"force_reprocess": bool}` optional):
    /// 202 when a check starts, 409 while one runs.
    pub fn router(&self) -> Router {
        health::router(self.status.clone(), self.metrics.clone())
            .route("/trigger", post(trigger).with_state(self.clone()))
    }

    fn set_current(&self, value: Value) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = value;
    }

    /// Runs the service: the health server, a first cycle, then periodic or triggered
    /// cycles until shutdown. With `--input` or `--once`, one cycle and return.
    ///
    /// # Errors
    ///
    /// When the hash store cannot be opened, the health port cannot be bound, or (with
    /// `--once`/`--input`) the cycle fails.
    pub async fn serve<O: Outlet>(&self, outlet: &mut O, shutdown: Shutdown) -> anyhow::Result<()> {
        let args = self.args.clone();
        let listener = health::bind(args.service.health_addr()).await?;
        let server = tokio::spawn(health::serve_on(listener, self.router(), shutdown.clone()));
        self.progress.spawn_terminal_bar(shutdown.clone());
        let once = args.once || args.input.is_some();
        let mut force = args.force_reprocess;
        let result = loop {
            let outcome = self.cycle(outlet, &shutdown, force).await;
            force = args.force_reprocess;
            let wait = match &outcome {
                Ok(CycleOutcome::Interrupted) => break Ok(()),
                Ok(_) => {
                    self.status.set_state("completed");
                    if once {
                        break Ok(());
                    }
                    self.status.set_state("waiting");
                    Duration::from_secs(args.periodic_check_days * 86_400)
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "❌ Extraction failed.");
                    self.status.set_unhealthy("failed", format!("{e:#}"));
                    if once {
                        break outcome.map(|_| ());
                    }
                    // Try again sooner than the next periodic check, still politely.
                    Duration::from_secs(3600)
                        .min(Duration::from_secs(args.periodic_check_days * 86_400))
                }
            };
            tracing::info!(?wait, "⏰ Next check for a new dump.");
            let mut rx = self.trigger_rx.lock().await;
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                asked = rx.recv() => { force = asked.unwrap_or(false) || args.force_reprocess; }
                () = shutdown.requested() => break Ok(()),
            }
        };
        shutdown.trigger();
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "Health server ended with an error.")
            }
            Err(e) => tracing::warn!(error = %e, "Health server task failed."),
        }
        result
    }

    /// One cycle: find the dump (or take `--input`), fetch and verify it, publish what
    /// changed, send `extraction_complete`.
    ///
    /// # Errors
    ///
    /// Whatever stops the cycle; the state saved so far lets the next cycle resume.
    pub async fn cycle<O: Outlet>(
        &self,
        outlet: &mut O,
        shutdown: &Shutdown,
        force: bool,
    ) -> anyhow::Result<CycleOutcome> {
        self.status.set_state("running");
        let root = &self.args.discogs_root;
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating DISCOGS_ROOT {}", root.display()))?;
        let (version, files) = match &self.args.input {
            Some(input) => local_files(input)?,
            None => {
                let http = Http::new(HttpOptions {
                    min_gap: Duration::from_secs_f64(self.args.request_gap_secs.max(0.0)),
                    ..HttpOptions::default()
                })?;
                let chosen =
                    fetch::discover(&http, &self.args.base_url, self.args.allow_unverified).await?;
                let version = chosen.date.to_string();
                let mut state = self.load_state(root, &version, force)?;
                if state.is_finished() {
                    tracing::info!(%version, "✅ Newest dump already processed; nothing to do.");
                    return Ok(CycleOutcome::AlreadyDone { version });
                }
                self.set_current(json!({"version": version, "step": "download"}));
                let local = fetch::fetch(&http, root, &chosen, &mut state, &self.progress).await?;
                let files = local.into_iter().map(|(k, f)| (k, f.path)).collect();
                (version, files)
            }
        };
        let mut state = self.load_state(root, &version, force)?;
        let all_done = files.keys().all(|k| {
            state
                .files
                .get(k)
                .is_some_and(|f| f.status == FileStatus::Done)
        });
        if all_done && (files.len() < RecordKind::ALL.len() || state.extraction_complete) {
            tracing::info!(%version, "✅ Version already processed; nothing to do (--force-reprocess reads it again).");
            return Ok(CycleOutcome::AlreadyDone { version });
        }
        let store = HashStore::open(
            &root.join(".record_hashes.redb"),
            self.args.hash_cache_mb << 20,
        )?;
        let options = PublishOptions {
            workers: self.args.workers(),
            force: self.args.full_publish,
            checkpoint_every: Duration::from_secs_f64(self.args.checkpoint_secs.max(0.0)),
        };
        let mut published = BTreeMap::new();
        for (kind, path) in &files {
            if state
                .files
                .get(kind)
                .is_some_and(|f| f.status == FileStatus::Done)
            {
                tracing::info!(file = %path.display(), "File already published in this version; skipped.");
                continue;
            }
            if shutdown.is_requested() {
                return Ok(CycleOutcome::Interrupted);
            }
            self.set_current(json!({"version": version, "step": "publish", "file": path.file_name().map(|n| n.to_string_lossy().into_owned())}));
            let job = FileJob {
                root,
                path,
                kind: *kind,
                state: &mut state,
                store: &store,
                progress: &self.progress,
                metrics: &self.metrics,
                shutdown,
            };
            match publish_file(job, outlet, &options).await? {
                FileOutcome::Interrupted => return Ok(CycleOutcome::Interrupted),
                FileOutcome::Done { published: n, .. } => {
                    published.insert(*kind, n);
                }
            }
        }
        if files.len() == RecordKind::ALL.len() && !state.extraction_complete {
            let counts =
                RecordKind::ALL.map(|k| state.files.get(&k).and_then(|f| f.records).unwrap_or(0));
            let started_at =
                crate::health::parse_rfc3339(&state.started_at).unwrap_or_else(SystemTime::now);
            outlet
                .extraction_complete(&version, started_at, counts)
                .await
                .context("sending extraction_complete")?;
            state.extraction_complete = true;
            state.save(root)?;
            tracing::info!(%version, ?counts, "🎉 Extraction complete.");
        } else if files.len() < RecordKind::ALL.len() {
            tracing::info!(%version, kinds = files.len(), "Input has fewer than four kinds: no extraction_complete.");
        }
        self.set_current(json!({"version": version, "step": "done"}));
        Ok(CycleOutcome::Completed { version, published })
    }

    fn load_state(&self, root: &Path, version: &str, force: bool) -> anyhow::Result<VersionState> {
        match VersionState::load(root, version)? {
            Some(s) if force && s.files.values().any(|f| f.status != FileStatus::Pending) => {
                tracing::info!(%version, "Version finished before; reading it again (--force-reprocess).");
                let mut fresh = VersionState::new(version);
                for (kind, f) in &s.files {
                    let keep = fresh.file_mut(*kind, &f.file);
                    keep.bytes = f.bytes;
                    keep.verified = f.verified;
                    keep.sha256.clone_from(&f.sha256);
                }
                Ok(fresh)
            }
            Some(s) => Ok(s),
            None => Ok(VersionState::new(version)),
        }
    }
}

async fn trigger(State(ex): State<Extractor>, body: axum::body::Bytes) -> impl IntoResponse {
    let force = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("force_reprocess").and_then(Value::as_bool))
        .unwrap_or(false);
    if ex.status.state() == "running" {
        return (
            StatusCode::CONFLICT,
            Json(json!({"status": "already_running"})),
        );
    }
    match ex.trigger.try_send(force) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(json!({"status": "started", "force_reprocess": force})),
        ),
        Err(_) => (
            StatusCode::CONFLICT,
            Json(json!({"status": "already_triggered"})),
        ),
    }
}

/// The files of `--input`: one file, or the newest date's `discogs_YYYYMMDD_*.xml[.gz]`
/// files of a folder. The version is the date in the names (`discogs_20251101_releases_sample.xml.gz`
/// counts too), or `local-<name>` for other names; the kind comes from the name when it
/// says, else from the file's root element.
///
/// # Errors
///
/// When the input holds no dump file, or two files of one kind for the newest date.
pub fn local_files(input: &Path) -> anyhow::Result<(String, BTreeMap<RecordKind, PathBuf>)> {
    let mut files = BTreeMap::new();
    if input.is_file() {
        let (date, kind) = local_name(input)?;
        let version = date.unwrap_or_else(|| {
            let name = input
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            format!("local-{}", name.split('.').next().unwrap_or("input"))
        });
        files.insert(kind, input.to_owned());
        return Ok((version, files));
    }
    let mut by_date: BTreeMap<String, BTreeMap<RecordKind, PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(input)
        .with_context(|| format!("reading the folder {}", input.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        if !(name.starts_with("discogs_") && (name.ends_with(".xml") || name.ends_with(".xml.gz")))
        {
            continue;
        }
        let (Some(date), kind) = local_name(&path)? else {
            continue;
        };
        if let Some(old) = by_date
            .entry(date.clone())
            .or_default()
            .insert(kind, path.clone())
        {
            bail!(
                "two {kind} files for {date}: {} and {}",
                old.display(),
                path.display()
            );
        }
    }
    let Some((version, files)) = by_date.pop_last() else {
        bail!(
            "no discogs_YYYYMMDD_<kind>.xml[.gz] file in {}",
            input.display()
        );
    };
    Ok((version, files))
}

/// The date of a `discogs_YYYYMMDD_…` name, and the kind (from the name, else the content).
fn local_name(path: &Path) -> anyhow::Result<(Option<String>, RecordKind)> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    if let Ok(DumpFileName {
        date,
        content: DumpContent::Records(kind),
        ..
    }) = DumpFileName::parse(&name)
    {
        return Ok((Some(date.to_string()), kind));
    }
    let mut parts = name.strip_prefix("discogs_").unwrap_or("").splitn(2, '_');
    let date = parts
        .next()
        .and_then(|d| d.parse::<discogs_parse::DumpDate>().ok())
        .map(|d| d.to_string());
    let by_name = parts.next().and_then(|rest| {
        RecordKind::ALL
            .into_iter()
            .find(|k| rest.starts_with(k.plural()))
    });
    let kind = match by_name {
        Some(kind) => kind,
        None => DumpReader::open(path)
            .with_context(|| format!("reading {}", path.display()))?
            .kind(),
    };
    Ok((date, kind))
}
