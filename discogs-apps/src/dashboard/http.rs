//! A small HTTP client for the dashboard's readings: services' `/health` and RabbitMQ's
//! management API, over HTTP or HTTPS, with basic authentication and a size limit on the
//! answer. Timeouts are the caller's (the collector bounds every source).

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Largest answer read (the management API lists every queue: a few KB per queue).
const MAX_BODY: usize = 16 << 20;

/// An HTTP client; clones share the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// An answer: status code and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client for `http://` and `https://` URLs (the system's web PKI roots).
    #[must_use]
    pub fn new() -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(connector);
        Self { client }
    }

    /// `GET url`, with basic authentication when `auth` is given.
    ///
    /// # Errors
    ///
    /// A message naming what failed: the URL, the connection, or the body.
    pub async fn get(&self, url: &str, auth: Option<&BasicAuth>) -> Result<Reply, String> {
        self.send(Method::GET, url, auth, None).await
    }

    /// `POST url` with a JSON body.
    ///
    /// # Errors
    ///
    /// As [`HttpClient::get`].
    pub async fn post_json(
        &self,
        url: &str,
        auth: Option<&BasicAuth>,
        body: &serde_json::Value,
    ) -> Result<Reply, String> {
        self.send(Method::POST, url, auth, Some(body.to_string()))
            .await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        auth: Option<&BasicAuth>,
        body: Option<String>,
    ) -> Result<Reply, String> {
        let mut request = Request::builder().method(method).uri(url);
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth.header());
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("bad URL {url}: {e}"))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| describe_error(&e))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok(Reply { status, body })
    }
}

/// The innermost cause of a client error: "Connection refused (os error 111)" says more
/// than "client error (Connect)".
fn describe_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text = inner.to_string();
        source = inner.source();
    }
    text
}

/// A user name and password for HTTP basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    user: String,
    password: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

impl BasicAuth {
    /// Credentials.
    #[must_use]
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The user name.
    #[must_use]
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `Basic base64(user:password)`.
    #[must_use]
    pub fn header(&self) -> String {
        format!(
            "Basic {}",
            base64(format!("{}:{}", self.user, self.password).as_bytes())
        )
    }
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        // RFC 4648 §10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(
            BasicAuth::new("guest", "guest").header(),
            "Basic Z3Vlc3Q6Z3Vlc3Q="
        );
        let auth = BasicAuth::new("user", "s3cret");
        assert!(!format!("{auth:?}").contains("s3cret"), "{auth:?}");
    }
}
