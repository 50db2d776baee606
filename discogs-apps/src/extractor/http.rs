//! A polite HTTP client for listings and dump files: a minimum gap between requests, retries
//! with exponential backoff that honour `Retry-After`, redirects, and resumable downloads
//! with `Range`.
//!
//! Built on hyper-util's client with rustls (ring provider, webpki roots): see
//! ARCHITECTURE.md ("Extractor") for why not reqwest or ureq.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, CONTENT_LENGTH, CONTENT_RANGE, LOCATION, RANGE, RETRY_AFTER, USER_AGENT,
};
use hyper::{Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt as _;

use super::progress::Progress;

/// Why a request failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpError {
    /// The server answered with an error status.
    Status {
        /// The URL asked for.
        url: String,
        /// The status.
        status: StatusCode,
        /// The server's `Retry-After`, in seconds form.
        retry_after: Option<Duration>,
    },
    /// Connecting, sending or receiving failed, or took too long.
    Transport {
        /// The URL asked for.
        url: String,
        /// What happened.
        message: String,
    },
    /// Writing the downloaded bytes failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Anything else (bad URL, too many redirects, a body too large for text).
    Other(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status { url, status, .. } => write!(f, "{url}: HTTP {status}"),
            Self::Transport { url, message } => write!(f, "{url}: {message}"),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl HttpError {
    /// Whether another attempt may succeed: transport failures, 408, 429 and 5xx.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Status { status, .. } => {
                *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
            }
            Self::Transport { .. } => true,
            Self::Io { .. } | Self::Other(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Settings of [`Http`].
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `User-Agent` of every request.
    pub user_agent: String,
    /// Minimum time between two requests (the original waits 5 s for Discogs).
    pub min_gap: Duration,
    /// Attempts per request before giving up (an attempt that moved a download forward
    /// does not count).
    pub max_attempts: u32,
    /// First backoff; doubles per attempt.
    pub backoff_initial: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Longest `Retry-After` honoured (longer ones are cut to this).
    pub retry_after_cap: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub read_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            user_agent: format!(
                "discogsography-rs-extractor/{} (+https://github.com/discogsography/discogsography-rs)",
                env!("CARGO_PKG_VERSION")
            ),
            min_gap: Duration::from_secs(5),
            max_attempts: 8,
            backoff_initial: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            retry_after_cap: Duration::from_secs(2 * 3600),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
        }
    }
}

/// What a finished download did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downloaded {
    /// Size of the file.
    pub bytes: u64,
    /// Bytes that were already on disk from an earlier, interrupted download.
    pub resumed_from: u64,
    /// Requests sent with a `Range` header.
    pub range_requests: u32,
}

/// The polite client. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    options: HttpOptions,
    last_request: tokio::sync::Mutex<Option<Instant>>,
    requests: AtomicU64,
}

type Resp = Response<Incoming>;

impl Http {
    /// A client with these options.
    ///
    /// # Errors
    ///
    /// When TLS cannot be set up.
    pub fn new(options: HttpOptions) -> Result<Self, HttpError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.connect_timeout));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| HttpError::Other(format!("TLS set-up: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self {
            client,
            options,
            last_request: tokio::sync::Mutex::new(None),
            requests: AtomicU64::new(0),
        })
    }

    /// The options.
    #[must_use]
    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// Requests sent so far (every attempt and redirect counts).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn wait_turn(&self) {
        let mut last = self.last_request.lock().await;
        if let Some(at) = *last {
            let since = at.elapsed();
            if since < self.options.min_gap {
                let wait = self.options.min_gap - since;
                tracing::debug!(?wait, "🐢 Waiting between requests.");
                tokio::time::sleep(wait).await;
            }
        }
        *last = Some(Instant::now());
    }

    /// One GET, following up to 5 redirects, each hop after the polite gap. Error statuses
    /// become [`HttpError::Status`].
    async fn get(&self, url: &str, range_from: Option<u64>) -> Result<(String, Resp), HttpError> {
        let mut url = url.to_owned();
        for _ in 0..=5 {
            self.wait_turn().await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut req = Request::get(url.as_str()).header(USER_AGENT, &self.options.user_agent);
            if let Some(from) = range_from {
                req = req.header(RANGE, format!("bytes={from}-"));
            }
            let req = req
                .body(Empty::new())
                .map_err(|e| HttpError::Other(format!("{url}: bad request: {e}")))?;
            let resp = tokio::time::timeout(self.options.read_timeout, self.client.request(req))
                .await
                .map_err(|_| HttpError::Transport {
                    url: url.clone(),
                    message: "no response in time".into(),
                })?
                .map_err(|e| HttpError::Transport {
                    url: url.clone(),
                    message: error_chain(&e),
                })?;
            let status = resp.status();
            if status.is_redirection() {
                let Some(location) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok())
                else {
                    return Err(HttpError::Other(format!(
                        "{url}: redirect without Location"
                    )));
                };
                url = super::discover::resolve(&url, location);
                continue;
            }
            if status.is_success() || status == StatusCode::RANGE_NOT_SATISFIABLE {
                return Ok((url, resp));
            }
            return Err(HttpError::Status {
                url,
                status,
                retry_after: retry_after(resp.headers()),
            });
        }
        Err(HttpError::Other(format!("{url}: more than 5 redirects")))
    }

    /// How long to wait before attempt `attempt + 1` after `error`.
    fn backoff(&self, attempt: u32, error: &HttpError) -> Duration {
        if let Some(after) = error.retry_after() {
            return after.min(self.options.retry_after_cap);
        }
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.options
            .backoff_initial
            .saturating_mul(factor)
            .min(self.options.backoff_max)
    }

    async fn pause_before_retry(&self, attempt: u32, error: &HttpError) {
        let wait = self.backoff(attempt, error);
        if error.retry_after().is_some() {
            tracing::warn!(%error, ?wait, attempt, "⏸️ Rate limited; waiting as the server asks.");
        } else {
            tracing::warn!(%error, ?wait, attempt, "Request failed; retrying after a backoff.");
        }
        tokio::time::sleep(wait).await;
    }

    /// GETs a text document (a listing, a CHECKSUM file), with retries.
    ///
    /// # Errors
    ///
    /// The last error once the attempts are used up, or at once for one that a retry
    /// cannot help.
    pub async fn get_text(&self, url: &str) -> Result<String, HttpError> {
        const LIMIT: usize = 64 << 20;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                let (url, resp) = self.get(url, None).await?;
                let mut body = resp.into_body();
                let mut out = Vec::new();
                while let Some(frame) = self.next_frame(&url, &mut body).await? {
                    out.extend_from_slice(&frame);
                    if out.len() > LIMIT {
                        return Err(HttpError::Other(format!("{url}: document over 64 MiB")));
                    }
                }
                Ok(String::from_utf8_lossy(&out).into_owned())
            }
            .await;
            match result {
                Ok(text) => return Ok(text),
                Err(e) if e.is_retriable() && attempt < self.options.max_attempts => {
                    self.pause_before_retry(attempt, &e).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn next_frame(&self, url: &str, body: &mut Incoming) -> Result<Option<Bytes>, HttpError> {
        loop {
            let frame = tokio::time::timeout(self.options.read_timeout, body.frame())
                .await
                .map_err(|_| HttpError::Transport {
                    url: url.to_owned(),
                    message: format!("no data for {:?}", self.options.read_timeout),
                })?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(HttpError::Transport {
                        url: url.to_owned(),
                        message: error_chain(&e),
                    })
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Downloads `url` to `dest`, through `dest.part`: bytes already in the part file
    /// (an interrupted run) are kept and the rest is asked for with `Range`; a broken
    /// connection resumes the same way. The finished part file is synced and renamed.
    ///
    /// # Errors
    ///
    /// When the attempts are used up without progress, or for an error a retry cannot
    /// help (404, a disk error).
    pub async fn download(
        &self,
        url: &str,
        dest: &Path,
        progress: &Progress,
    ) -> Result<Downloaded, HttpError> {
        let part = part_path(dest);
        let name = dest
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let resumed_from = file_len(&part).await;
        if resumed_from > 0 {
            tracing::info!(file = %name, bytes = resumed_from, "📥 Resuming an interrupted download with a Range request.");
        }
        progress.start("download", &name, resumed_from, 0);
        let mut range_requests = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let have = file_len(&part).await;
            if have > 0 {
                range_requests += 1;
            }
            match self.download_once(url, &part, have, progress).await {
                Ok(()) => break,
                Err(e) if e.is_retriable() && attempt < self.options.max_attempts => {
                    if file_len(&part).await > have {
                        attempt = 0; // progress was made: a flaky line is not a dead one
                    }
                    self.pause_before_retry(attempt.max(1), &e).await;
                }
                Err(e) => return Err(e),
            }
        }
        let io = |source| HttpError::Io {
            path: dest.to_owned(),
            source,
        };
        tokio::fs::rename(&part, dest).await.map_err(io)?;
        if let Some(dir) = dest.parent() {
            sync_dir(dir).await;
        }
        let bytes = file_len(dest).await;
        tracing::info!(file = %name, bytes, resumed_from, "✅ Downloaded.");
        Ok(Downloaded {
            bytes,
            resumed_from,
            range_requests,
        })
    }

    async fn download_once(
        &self,
        url: &str,
        part: &Path,
        have: u64,
        progress: &Progress,
    ) -> Result<(), HttpError> {
        let io = |source| HttpError::Io {
            path: part.to_owned(),
            source,
        };
        let (url, resp) = self.get(url, (have > 0).then_some(have)).await?;
        let status = resp.status();
        let (start, total) = match status {
            StatusCode::PARTIAL_CONTENT => {
                let (start, total) = content_range(resp.headers()).ok_or_else(|| {
                    HttpError::Other(format!("{url}: 206 without a usable Content-Range"))
                })?;
                if start != have {
                    return Err(HttpError::Other(format!(
                        "{url}: asked for bytes from {have}, got from {start}"
                    )));
                }
                (start, total)
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // The part file already holds the whole file when the server's total is its size.
                let total = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes */"))
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if total == Some(have) {
                    progress.set_total(have);
                    return finish_part(part).await.map_err(io);
                }
                tokio::fs::remove_file(part).await.map_err(io)?;
                return Err(HttpError::Transport {
                    url,
                    message: format!("range from {have} refused; starting over"),
                });
            }
            _ => (0, content_length(resp.headers())),
        };
        if let Some(total) = total {
            progress.set_total(total);
        }
        progress.set_done(start);
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(start > 0)
            .truncate(start == 0)
            .open(part)
            .await
            .map_err(io)?;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut body = resp.into_body();
        let mut written = start;
        let result = async {
            while let Some(data) = self.next_frame(&url, &mut body).await? {
                out.write_all(&data).await.map_err(io)?;
                written += data.len() as u64;
                progress.add(data.len() as u64);
            }
            Ok(())
        }
        .await;
        // Keep what arrived, even when the connection broke: the next attempt resumes.
        out.flush().await.map_err(io)?;
        result?;
        if let Some(total) = total {
            if written != total {
                return Err(HttpError::Transport {
                    url,
                    message: format!("body ended at {written} of {total} bytes"),
                });
            }
        }
        finish_part(part).await.map_err(io)
    }
}

async fn finish_part(part: &Path) -> std::io::Result<()> {
    let file = tokio::fs::OpenOptions::new().write(true).open(part).await?;
    file.sync_all().await
}

/// Best-effort fsync of a folder, so a rename survives a crash.
pub(crate) async fn sync_dir(dir: &Path) {
    if let Ok(d) = tokio::fs::File::open(dir).await {
        drop(d.sync_all().await);
    }
}

/// `dest` + `.part`.
#[must_use]
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

async fn file_len(path: &Path) -> u64 {
    tokio::fs::metadata(path).await.map_or(0, |m| m.len())
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    // The seconds form; an HTTP date falls back to the backoff.
    value.parse::<u64>().ok().map(Duration::from_secs)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `bytes START-END/TOTAL` → (START, TOTAL when known).
fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn header_parsing() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 100-199/200"));
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(content_range(&h), Some((100, Some(200))));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 5-9/*"));
        assert_eq!(content_range(&h), Some((5, None)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
        assert_eq!(
            part_path(Path::new("/x/a.gz")),
            PathBuf::from("/x/a.gz.part")
        );
    }

    #[test]
    fn backoff_doubles_and_honours_retry_after() {
        let http = Http::new(HttpOptions {
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(60),
            ..HttpOptions::default()
        })
        .unwrap();
        let plain = HttpError::Transport {
            url: "u".into(),
            message: "m".into(),
        };
        let waits: Vec<u64> = (1..=6).map(|a| http.backoff(a, &plain).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        let limited = HttpError::Status {
            url: "u".into(),
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert!(limited.is_retriable());
        assert_eq!(http.backoff(1, &limited), Duration::from_secs(60), "capped");
        let missing = HttpError::Status {
            url: "u".into(),
            status: StatusCode::NOT_FOUND,
            retry_after: None,
        };
        assert!(!missing.is_retriable());
    }
}
