//! Finding the newest complete dump in a listing.
//!
//! Two listings are understood, recognised by content:
//!
//! * the **S3 bucket's XML** (`ListBucketResult`, e.g.
//!   `https://discogs-data-dumps.s3.us-west-2.amazonaws.com/?prefix=data/`): every key with
//!   its size; files are fetched from `{bucket}/{key}`; a truncated listing is continued
//!   with `marker=`;
//! * the **data site's HTML** (`https://data.discogs.com/`): the root links year pages
//!   (`?prefix=data%2FYYYY%2F`), a year page links files (`?download=data%2FYYYY%2F…`);
//!   the two newest year pages are read (a new year's folder may hold no complete dump yet).
//!
//! Policy for the irregular cases (`../shared/reference/dump-format-and-peers.md` A.1):
//!
//! * The date is whatever the file names say, not assumed to be the 1st; dumps are ordered
//!   by date.
//! * **Complete** = the four kinds and a CHECKSUM file for **one** date, the CHECKSUM
//!   not empty (a 0-byte CHECKSUM, as on 2013-10-01, does not count), and, once fetched,
//!   naming all four files. The newest complete date wins; newer incomplete dates are
//!   skipped with a warning saying what they lack.
//! * **Split dumps** (kinds spread over two dates, e.g. 2019-10-03 + 2019-10-10) are not
//!   merged: each date is judged alone, so such a month is skipped for an older complete
//!   one. Mixing dates would publish records of two snapshots under one version.
//! * **Missing CHECKSUM** (2021-07-01, or a CHECKSUM uploaded days after the data, as in
//!   2022-11): the date is incomplete, so the previous dump is kept and the next periodic
//!   check picks the new one up once its CHECKSUM is there. With `--allow-unverified` a
//!   date with the four kinds and no usable CHECKSUM is accepted and its files are
//!   parsed unverified (logged as such).

use std::collections::BTreeMap;

use discogs_parse::{DumpContent, DumpDate, DumpFileName, RecordKind};

/// A file in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// The parsed name.
    pub name: DumpFileName,
    /// Where to download it.
    pub url: String,
    /// Its size when the listing says (the S3 listing does, the HTML one does not).
    pub size: Option<u64>,
}

/// All files of one dump date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    /// Records files by kind.
    pub files: BTreeMap<RecordKind, RemoteFile>,
    /// The CHECKSUM file, if listed.
    pub checksum: Option<RemoteFile>,
}

impl Candidate {
    /// What keeps this date from being complete (empty when complete). `need_checksum`
    /// is false under `--allow-unverified`.
    #[must_use]
    pub fn missing(&self, need_checksum: bool) -> Vec<String> {
        let mut out: Vec<String> = RecordKind::ALL
            .iter()
            .filter(|k| !self.files.contains_key(k))
            .map(|k| k.plural().to_owned())
            .collect();
        if need_checksum {
            match &self.checksum {
                None => out.push("CHECKSUM".into()),
                Some(c) if c.size == Some(0) => out.push("CHECKSUM (empty file)".into()),
                Some(_) => {}
            }
        }
        out
    }
}

/// Groups listed files by date. Later duplicates of a name (e.g. `.xml` next to
/// `.xml.gz`) do not replace a `.gz` file.
#[must_use]
pub fn group(files: impl IntoIterator<Item = RemoteFile>) -> BTreeMap<DumpDate, Candidate> {
    let mut out: BTreeMap<DumpDate, Candidate> = BTreeMap::new();
    for file in files {
        let entry = out.entry(file.name.date).or_default();
        match file.name.content {
            DumpContent::Checksum => entry.checksum = Some(file),
            DumpContent::Records(kind) => {
                let keep_existing = entry.files.get(&kind).is_some_and(|f| f.name.gzip);
                if !keep_existing {
                    entry.files.insert(kind, file);
                }
            }
        }
    }
    out
}

/// Dates whose listing is complete, newest first; incomplete newer dates are logged.
#[must_use]
pub fn complete_newest_first(
    groups: &BTreeMap<DumpDate, Candidate>,
    need_checksum: bool,
) -> Vec<(DumpDate, Candidate)> {
    let mut out = Vec::new();
    for (date, candidate) in groups.iter().rev() {
        let missing = candidate.missing(need_checksum);
        if missing.is_empty() {
            out.push((*date, candidate.clone()));
        } else if out.is_empty() {
            tracing::warn!(
                version = %date,
                missing = %missing.join(", "),
                "⚠️ Dump is incomplete; skipping it for an older complete one."
            );
        }
    }
    out
}

/// One page of an S3 `ListBucketResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Page {
    /// Dump files on the page (other keys are ignored).
    pub files: Vec<RemoteFile>,
    /// The marker for the next page when the listing is truncated.
    pub next_marker: Option<String>,
}

/// Whether a listing body is S3's XML.
#[must_use]
pub fn is_s3_listing(body: &str) -> bool {
    body.contains("<ListBucketResult")
}

/// Reads an S3 `ListBucketResult` page; file URLs are `{origin of listing_url}/{key}`.
#[must_use]
pub fn parse_s3_listing(body: &str, listing_url: &str) -> S3Page {
    let origin = origin(listing_url);
    let mut page = S3Page::default();
    let mut last_key = None;
    for contents in body.split("<Contents>").skip(1) {
        let Some(key) = tag_text(contents, "Key") else {
            continue;
        };
        let key = xml_unescape(key);
        last_key = Some(key.clone());
        if let Ok(name) = DumpFileName::parse(&key) {
            page.files.push(RemoteFile {
                name,
                url: format!("{origin}/{}", percent_encode_path(&key)),
                size: tag_text(contents, "Size").and_then(|s| s.trim().parse().ok()),
            });
        }
    }
    if tag_text(body, "IsTruncated").is_some_and(|t| t.trim() == "true") {
        page.next_marker = tag_text(body, "NextMarker").map(xml_unescape).or(last_key);
    }
    page
}

/// Links found in an HTML listing page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlPage {
    /// Year pages (`?prefix=data%2FYYYY%2F`), as absolute URLs with their year.
    pub years: Vec<(u16, String)>,
    /// Dump files linked from the page.
    pub files: Vec<RemoteFile>,
}

/// Reads the links of an HTML listing page (the data site's root or year page).
#[must_use]
pub fn parse_html_listing(body: &str, page_url: &str) -> HtmlPage {
    let mut page = HtmlPage::default();
    for href in hrefs(body) {
        let href = html_unescape(href);
        let decoded = percent_decode(&href);
        if let Some(i) = decoded.find("prefix=data/") {
            let year = &decoded[i + "prefix=data/".len()..];
            if let Some(year) = year
                .get(..4)
                .filter(|y| y.bytes().all(|b| b.is_ascii_digit()))
            {
                if let Ok(year) = year.parse() {
                    let url = resolve(page_url, &href);
                    if !page.years.iter().any(|(y, _)| *y == year) {
                        page.years.push((year, url));
                    }
                }
            }
            continue;
        }
        let last = decoded.rsplit(['/', '=']).next().unwrap_or(&decoded);
        if let Ok(name) = DumpFileName::parse(last) {
            page.files.push(RemoteFile {
                name,
                url: resolve(page_url, &href),
                size: None,
            });
        }
    }
    page.years.sort_by_key(|y| std::cmp::Reverse(y.0));
    page
}

fn hrefs(body: &str) -> impl Iterator<Item = &str> {
    body.match_indices("href=").filter_map(move |(i, _)| {
        let rest = &body[i + 5..];
        let quote = rest.chars().next()?;
        if quote == '"' || quote == '\'' {
            let end = rest[1..].find(quote)?;
            Some(&rest[1..=end])
        } else {
            let end = rest.find([' ', '>']).unwrap_or(rest.len());
            Some(&rest[..end])
        }
    })
}

fn tag_text<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(&body[start..end])
}

/// `scheme://host[:port]` of a URL.
#[must_use]
pub fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| i + after_scheme);
    &url[..end]
}

/// Resolves a link found on the page at `base` (absolute, root-relative, query-only or
/// relative to the page's folder).
#[must_use]
pub fn resolve(base: &str, href: &str) -> String {
    if href.contains("://") {
        return href.to_owned();
    }
    if let Some(rest) = href.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        return format!("{scheme}://{rest}");
    }
    if href.starts_with('/') {
        return format!("{}{href}", origin(base));
    }
    let no_fragment = base.split('#').next().unwrap_or(base);
    let no_query = no_fragment.split('?').next().unwrap_or(no_fragment);
    if href.starts_with('?') {
        let path = if no_query.len() == origin(base).len() {
            format!("{no_query}/")
        } else {
            no_query.to_owned()
        };
        return format!("{path}{href}");
    }
    let dir_end = no_query.rfind('/').filter(|&i| i >= origin(base).len());
    match dir_end {
        Some(i) => format!("{}{href}", &no_query[..=i]),
        None => format!("{no_query}/{href}"),
    }
}

fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&quot;", "\"")
}

fn xml_unescape(s: &str) -> String {
    html_unescape(s)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'")
}

/// Decodes `%XX` escapes (and `+` as a space in a query).
#[must_use]
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes what may not stand in a URL path (keeps `/` and unreserved characters).
#[must_use]
pub fn percent_encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Option<std::path::PathBuf> {
        discogs_testkit::shared_fixtures()
    }

    #[test]
    fn resolves_links() {
        let root = "https://data.discogs.com/";
        assert_eq!(
            resolve(root, "?prefix=data%2F2026%2F"),
            "https://data.discogs.com/?prefix=data%2F2026%2F"
        );
        assert_eq!(
            resolve(
                "https://data.discogs.com/?prefix=data%2F2026%2F",
                "?download=x"
            ),
            "https://data.discogs.com/?download=x"
        );
        assert_eq!(
            resolve("http://127.0.0.1:9/a/b.html", "c/d"),
            "http://127.0.0.1:9/a/c/d"
        );
        assert_eq!(
            resolve("http://127.0.0.1:9", "?download=k"),
            "http://127.0.0.1:9/?download=k"
        );
        assert_eq!(resolve("http://h/x/y", "/z"), "http://h/z");
        assert_eq!(percent_decode("data%2F2026%2Fa+b%"), "data/2026/a b%");
    }

    #[test]
    fn html_listing_like_the_data_site() {
        let root = r#"<html><body><a href="?prefix=data%2F2025%2F">2025</a>
            <a href="?prefix=data%2F2026%2F">2026</a><a href="/about">x</a></body></html>"#;
        let page = parse_html_listing(root, "https://data.discogs.com/");
        assert_eq!(
            page.years,
            vec![
                (
                    2026,
                    "https://data.discogs.com/?prefix=data%2F2026%2F".to_owned()
                ),
                (
                    2025,
                    "https://data.discogs.com/?prefix=data%2F2025%2F".to_owned()
                )
            ]
        );
        let year = r#"<a href="?download=data%2F2026%2Fdiscogs_20260101_artists.xml.gz">a</a>
            <a href='?download=data%2F2026%2Fdiscogs_20260101_CHECKSUM.txt'>c</a>"#;
        let page = parse_html_listing(year, "https://data.discogs.com/?prefix=data%2F2026%2F");
        assert_eq!(page.files.len(), 2);
        assert_eq!(
            page.files[0].url,
            "https://data.discogs.com/?download=data%2F2026%2Fdiscogs_20260101_artists.xml.gz"
        );
        assert_eq!(page.files[1].name.content, DumpContent::Checksum);
    }

    /// The real 2008–2022 listing of the current bucket: 166 dates, the newest complete is
    /// 2022-11-01 (its CHECKSUM came two days after the data, but is in this listing).
    #[test]
    fn real_bucket_listing_2022() {
        let Some(dir) = fixtures() else { return };
        let body =
            std::fs::read_to_string(dir.join("dsub-io__go-open-discogs-batch/data.xml")).unwrap();
        assert!(is_s3_listing(&body));
        let url = "https://discogs-data-dumps.s3.us-west-2.amazonaws.com/?prefix=data/";
        let page = parse_s3_listing(&body, url);
        assert_eq!(page.files.len(), 777, "every key is a dump file");
        let groups = group(page.files);
        assert_eq!(groups.len(), 166);
        let complete = complete_newest_first(&groups, true);
        let (date, newest) = &complete[0];
        assert_eq!(date.to_string(), "20221101");
        assert_eq!(
            newest.files[&RecordKind::Release].url,
            "https://discogs-data-dumps.s3.us-west-2.amazonaws.com/data/2022/discogs_20221101_releases.xml.gz"
        );
        assert!(newest.files[&RecordKind::Release].size.unwrap() > 11_000_000_000);
        // The irregular dates of the note: split, partial and empty-CHECKSUM dumps are
        // never complete.
        let complete_dates: Vec<String> = complete.iter().map(|(d, _)| d.to_string()).collect();
        for irregular in [
            "20191003", "20191010", "20200601", "20210701", "20131001", "20110201", "20110211",
        ] {
            assert!(
                !complete_dates.contains(&irregular.to_owned()),
                "{irregular} must not count as complete"
            );
        }
        assert!(complete_dates.contains(&"20131002".to_owned()));
        assert!(
            complete_dates.contains(&"20200703".to_owned()),
            "not on the 1st, but complete"
        );
        // Without the CHECKSUM requirement, 2019-10-03 (masters+releases only) is still
        // incomplete: the four kinds are needed for one date.
        let loose: Vec<String> = complete_newest_first(&groups, false)
            .iter()
            .map(|(d, _)| d.to_string())
            .collect();
        assert!(!loose.contains(&"20191003".to_owned()));
    }

    /// The old bucket's 2021 listing also holds `index.html`, `list.js`...: ignored.
    #[test]
    fn real_old_bucket_listing_2021() {
        let Some(dir) = fixtures() else { return };
        let body =
            std::fs::read_to_string(dir.join("echovisionlab__discogs-batch/DiscogsDataDump.xml"))
                .unwrap();
        let page = parse_s3_listing(&body, "https://discogs-data.s3-us-west-2.amazonaws.com/");
        assert!(page.files.len() > 600 && page.files.len() < 710);
        let groups = group(page.files);
        let complete = complete_newest_first(&groups, true);
        let newest = complete[0].0.to_string();
        assert!(
            newest.starts_with("2021"),
            "newest complete in 2021: {newest}"
        );
        assert!(!complete.iter().any(|(d, _)| d.to_string() == "20210701"));
    }

    #[test]
    fn truncated_listing_gives_a_marker() {
        let body = "<ListBucketResult><IsTruncated>true</IsTruncated>\
            <Contents><Key>data/2026/discogs_20260101_labels.xml.gz</Key><Size>5</Size></Contents>\
            <Contents><Key>index.html</Key><Size>1</Size></Contents></ListBucketResult>";
        let page = parse_s3_listing(body, "http://127.0.0.1:1/?prefix=data/");
        assert_eq!(page.files.len(), 1);
        assert_eq!(page.files[0].size, Some(5));
        assert_eq!(page.next_marker.as_deref(), Some("index.html"));
    }
}
