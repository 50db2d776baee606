//! A Discogs-like dump site inside the test process (axum on 127.0.0.1:0): the data site's
//! HTML listing (root with year links, year pages with `?download=` links) or the bucket's
//! S3 XML listing (paged), the real fixture dumps under dump names, and their CHECKSUM.
//! Faults can be injected per file: a connection cut half-way, corrupt bytes, 429 with
//! `Retry-After`. Every request is logged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use discogs_apps::extractor::discover::percent_decode;
use sha2::{Digest as _, Sha256};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) target: String,
    pub(crate) range_from: Option<u64>,
    pub(crate) status: u16,
}

/// Faults for one file, each used up once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    /// Cut the connection after this many bytes of the body.
    pub(crate) cut_after: Option<usize>,
    /// Serve bytes with one bit flipped this many times.
    pub(crate) corrupt: u32,
    /// Answer 429 with `Retry-After` of this many seconds, once.
    pub(crate) rate_limit: Option<u64>,
}

#[derive(Debug, Default)]
struct Site {
    /// name → bytes
    files: BTreeMap<String, Vec<u8>>,
    faults: BTreeMap<String, Faults>,
    log: Vec<Seen>,
    s3: bool,
}

/// The running site.
#[derive(Debug, Clone)]
pub(crate) struct DumpSite {
    pub(crate) addr: SocketAddr,
    site: Arc<Mutex<Site>>,
}

/// The fixture files served under a date's dump names.
pub(crate) fn fixture_dump(fixtures: &std::path::Path, set: &str) -> Vec<(&'static str, Vec<u8>)> {
    let read = |p: &str| std::fs::read(fixtures.join(p)).unwrap();
    match set {
        // The Jan 2025 cluster plus the real 2025-11 releases excerpt (4,229 releases).
        "new" => vec![
            ("artists", read("tgmz__de.tgmz.discogs/discogs_20250101_artists.xml.gz")),
            ("labels", read("tgmz__de.tgmz.discogs/discogs_20250101_labels.xml.gz")),
            ("masters", read("tgmz__de.tgmz.discogs/discogs_20250101_masters.xml.gz")),
            (
                "releases",
                read("nicolascalo__discogs_lakehouse_graph_data_platform/discogs_20251101_releases_sample_100000.xml.gz"),
            ),
        ],
        _ => vec![
            ("artists", read("tgmz__de.tgmz.discogs/discogs_artists.xml.gz")),
            ("labels", read("tgmz__de.tgmz.discogs/discogs_labels.xml.gz")),
            ("masters", read("tgmz__de.tgmz.discogs/discogs_masters.xml.gz")),
            ("releases", read("tgmz__de.tgmz.discogs/discogs_releases.xml.gz")),
        ],
    }
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl DumpSite {
    /// Starts a site listing: 2025-10-01 complete (older), 2025-11-01 complete (newest
    /// complete), 2025-12-03 masters and releases only, no CHECKSUM (a split dump).
    pub(crate) async fn start(fixtures: &std::path::Path, s3: bool) -> Self {
        let mut site = Site {
            s3,
            ..Site::default()
        };
        for (date, set) in [("20251001", "old"), ("20251101", "new")] {
            let mut checksum = String::new();
            for (kind, bytes) in fixture_dump(fixtures, set) {
                let name = format!("discogs_{date}_{kind}.xml.gz");
                checksum.push_str(&format!("{} {name}\n", sha_hex(&bytes)));
                site.files.insert(name, bytes);
            }
            site.files.insert(
                format!("discogs_{date}_CHECKSUM.txt"),
                checksum.into_bytes(),
            );
        }
        for (kind, bytes) in fixture_dump(fixtures, "new").into_iter().skip(2) {
            site.files
                .insert(format!("discogs_20251203_{kind}.xml.gz"), bytes);
        }
        let site = Arc::new(Mutex::new(site));
        let app = Router::new()
            .route("/", get(root))
            .fallback(get(by_path))
            .with_state(site.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, site }
    }

    pub(crate) fn base_url(&self) -> String {
        if self.site.lock().unwrap().s3 {
            format!("http://{}/?prefix=data/", self.addr)
        } else {
            format!("http://{}/", self.addr)
        }
    }

    pub(crate) fn set_faults(&self, name: &str, faults: Faults) {
        self.site
            .lock()
            .unwrap()
            .faults
            .insert(name.to_owned(), faults);
    }

    pub(crate) fn bytes(&self, name: &str) -> Vec<u8> {
        self.site.lock().unwrap().files[name].clone()
    }

    pub(crate) fn log(&self) -> Vec<Seen> {
        self.site.lock().unwrap().log.clone()
    }

    /// Requests whose target names `name`.
    pub(crate) fn requests_for(&self, name: &str) -> Vec<Seen> {
        self.log()
            .into_iter()
            .filter(|s| s.target.contains(name))
            .collect()
    }
}

fn html_page(links: &[String]) -> String {
    let mut out = String::from("<html><head><title>Discogs Data</title></head><body><ul>\n");
    for l in links {
        out.push_str(&format!("<li><a href=\"{l}\">{l}</a></li>\n"));
    }
    out.push_str("</ul></body></html>");
    out
}

async fn root(
    State(site): State<Arc<Mutex<Site>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let q: BTreeMap<String, String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    serve(&site, q, &headers)
}

fn serve(site: &Arc<Mutex<Site>>, q: BTreeMap<String, String>, headers: &HeaderMap) -> Response {
    let range_from = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.trim_end_matches('-').parse::<u64>().ok());
    let target = format!(
        "/?{}",
        q.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let mut site = site.lock().unwrap();
    let (status, response) = respond(&mut site, &q, range_from);
    site.log.push(Seen {
        target,
        range_from,
        status,
    });
    response
}

/// S3 style: the file's key is the path (`/data/2025/discogs_….xml.gz`).
async fn by_path(
    State(site): State<Arc<Mutex<Site>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let mut q = BTreeMap::new();
    q.insert(
        "download".to_owned(),
        uri.path().trim_start_matches('/').to_owned(),
    );
    serve(&site, q, &headers)
}

fn respond(
    site: &mut Site,
    q: &BTreeMap<String, String>,
    range_from: Option<u64>,
) -> (u16, Response) {
    let names: Vec<String> = site.files.keys().cloned().collect();
    if site.s3 && !q.contains_key("download") {
        // Two pages of 8 keys at most, continued with `marker`.
        let after = q
            .get("marker")
            .map(|m| m.rsplit('/').next().unwrap_or(m).to_owned())
            .unwrap_or_default();
        let keys: Vec<&String> = names
            .iter()
            .filter(|n| n.as_str() > after.as_str())
            .collect();
        let page = &keys[..keys.len().min(8)];
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>discogs-data-dumps</Name><Prefix>data/</Prefix>");
        xml.push_str(&format!("<IsTruncated>{}</IsTruncated>", keys.len() > 8));
        for n in page {
            xml.push_str(&format!(
                "<Contents><Key>data/2025/{n}</Key><Size>{}</Size></Contents>",
                site.files[*n].len()
            ));
        }
        xml.push_str("</ListBucketResult>");
        return (
            200,
            ([(header::CONTENT_TYPE, "application/xml")], xml).into_response(),
        );
    }
    if let Some(prefix) = q.get("prefix") {
        let year = prefix.trim_start_matches("data/").trim_end_matches('/');
        let links: Vec<String> = names
            .iter()
            .filter(|n| n.contains(&format!("_{year}")))
            .map(|n| format!("?download=data%2F{year}%2F{n}"))
            .collect();
        return (200, axum::response::Html(html_page(&links)).into_response());
    }
    let Some(key) = q.get("download") else {
        let links = vec![
            "?prefix=data%2F2024%2F".to_owned(),
            "?prefix=data%2F2025%2F".to_owned(),
        ];
        return (200, axum::response::Html(html_page(&links)).into_response());
    };
    let name = key.rsplit('/').next().unwrap_or(key).to_owned();
    let Some(bytes) = site.files.get(&name).cloned() else {
        return (404, StatusCode::NOT_FOUND.into_response());
    };
    let faults = site.faults.entry(name).or_default();
    if let Some(secs) = faults.rate_limit.take() {
        let resp = (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            "slow down",
        );
        return (429, resp.into_response());
    }
    let mut body = bytes.clone();
    if faults.corrupt > 0 {
        faults.corrupt -= 1;
        let mid = body.len() / 2;
        body[mid] ^= 0x01;
    }
    let total = body.len();
    let start = usize::try_from(range_from.unwrap_or(0)).unwrap();
    if start >= total && start > 0 {
        let resp = (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{total}"))],
        );
        return (416, resp.into_response());
    }
    let part = body[start..].to_vec();
    let cut = faults.cut_after.take();
    let stream_body = match cut {
        Some(n) if n < part.len() => {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
                Ok(part[..n].to_vec()),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "cut by the test",
                )),
            ];
            Body::from_stream(futures_util::stream::iter(chunks))
        }
        _ => Body::from(part.clone()),
    };
    let mut resp = Response::builder()
        .header(header::CONTENT_LENGTH, part.len())
        .header(header::ACCEPT_RANGES, "bytes");
    let status = if start > 0 {
        resp = resp.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{total}", total - 1),
        );
        206
    } else {
        200
    };
    (status, resp.body(stream_body).unwrap())
}
