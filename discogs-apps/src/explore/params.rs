//! Query parameters, their validation, entity types and the API's errors.
//!
//! Every handler reads its parameters through [`Params`], which refuses unknown names,
//! repeated names and out-of-range values with a `400` whose body is
//! `{"error": "<what is wrong>"}`; every failure of a handler is an [`ApiError`] with its
//! status code and the same JSON shape.

use std::collections::BTreeMap;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A failed request: its status and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: the request is invalid.
    BadRequest(String),
    /// 404: the entity does not exist.
    NotFound(String),
    /// 429: the client sent too many requests; retry after this many seconds.
    TooManyRequests(u64),
    /// 503: a database cannot be reached.
    Unavailable(String),
    /// 504: a query took longer than its limit.
    Timeout(String),
}

impl ApiError {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The message of the JSON body.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::BadRequest(m) | Self::NotFound(m) | Self::Unavailable(m) | Self::Timeout(m) => {
                m.clone()
            }
            Self::TooManyRequests(s) => format!("too many requests: retry in {s} s"),
        }
    }

    /// 504 for a query of `what` (`"graph"`, `"PostgreSQL"`) that outlived `limit`.
    pub(crate) fn late(what: &str, limit: std::time::Duration) -> Self {
        Self::Timeout(format!("the {what} query took longer than {limit:?}"))
    }

    /// A database error: logged with its detail, answered as 503 without it.
    pub(crate) fn database(what: &str, e: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %e, "{what} failed.");
        Self::Unavailable(format!("{what} failed: the database did not answer"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(json!({ "error": self.message() }));
        match self {
            Self::TooManyRequests(s) => {
                (self.status(), [(header::RETRY_AFTER, s.to_string())], body).into_response()
            }
            _ => (self.status(), body).into_response(),
        }
    }
}

/// The kinds of node the API knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityType {
    /// `Artist`, keyed by id.
    Artist,
    /// `Label`, keyed by id.
    Label,
    /// `Master`, keyed by id.
    Master,
    /// `Release`, keyed by id.
    Release,
    /// `Genre`, keyed by name.
    Genre,
    /// `Style`, keyed by name.
    Style,
}

impl EntityType {
    /// All six, in the order of [`discogs_sink_neo4j::GraphNames::all_labels`].
    pub const ALL: [EntityType; 6] = [
        Self::Artist,
        Self::Label,
        Self::Master,
        Self::Release,
        Self::Genre,
        Self::Style,
    ];

    /// `artist`, `label`, `master`, `release`, `genre`, `style`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Artist => "artist",
            Self::Label => "label",
            Self::Master => "master",
            Self::Release => "release",
            Self::Genre => "genre",
            Self::Style => "style",
        }
    }

    /// The type named `s` (as [`EntityType::as_str`] writes it).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether the node is keyed by its name (genre, style) rather than by an id.
    #[must_use]
    pub fn keyed_by_name(self) -> bool {
        matches!(self, Self::Genre | Self::Style)
    }

    /// The property holding the node's display name: `title` for masters and releases.
    #[must_use]
    pub fn name_property(self) -> &'static str {
        match self {
            Self::Master | Self::Release => "title",
            _ => "name",
        }
    }

    /// The index into [`discogs_sink_neo4j::GraphNames::all_labels`].
    #[must_use]
    pub fn label_index(self) -> usize {
        match self {
            Self::Artist => 0,
            Self::Label => 1,
            Self::Master => 2,
            Self::Release => 3,
            Self::Genre => 4,
            Self::Style => 5,
        }
    }
}

/// How a request names an entity: by id (artists, labels, masters, releases) or by exact
/// name (any type; the only key of genres and styles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityRef {
    /// `id=…`.
    Id(i64),
    /// `name=…`.
    Name(String),
}

/// The query parameters of one request.
#[derive(Debug, Clone, Default)]
pub struct Params(BTreeMap<String, String>);

/// Longest accepted parameter value, in bytes.
const MAX_VALUE: usize = 500;

impl Params {
    /// Parses a raw query string, accepting only the names in `allowed`.
    ///
    /// # Errors
    ///
    /// [`ApiError::BadRequest`] for an unknown or repeated name, or a value longer than
    /// 500 bytes.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut map = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {k:?} (expected one of: {})",
                    allowed.join(", ")
                )));
            }
            if v.len() > MAX_VALUE {
                return Err(ApiError::BadRequest(format!(
                    "parameter {k:?} is longer than {MAX_VALUE} bytes"
                )));
            }
            if map.insert(k.clone().into_owned(), v.into_owned()).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "parameter {k:?} is given twice"
                )));
            }
        }
        Ok(Self(map))
    }

    /// The canonical form (sorted `name=value` pairs), for cache keys.
    #[must_use]
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.0 {
            out.push_str(k);
            out.push('=');
            out.push_str(v);
            out.push('&');
        }
        out
    }

    /// The trimmed value of `name`, `None` when absent or blank.
    #[must_use]
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The value of `name`, which must be present.
    ///
    /// # Errors
    ///
    /// [`ApiError::BadRequest`] when absent or blank.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.text(name)
            .ok_or_else(|| ApiError::BadRequest(format!("parameter {name:?} is required")))
    }

    /// A text of `min..=max` characters.
    ///
    /// # Errors
    ///
    /// [`ApiError::BadRequest`] when absent or of another length.
    pub fn query_text(&self, name: &str, min: usize, max: usize) -> Result<&str, ApiError> {
        let q = self.required(name)?;
        let n = q.chars().count();
        if n < min || n > max {
            return Err(ApiError::BadRequest(format!(
                "parameter {name:?} must be {min} to {max} characters, not {n}"
            )));
        }
        Ok(q)
    }

    /// An integer in `min..=max`, or `None` when absent.
    ///
    /// # Errors
    ///
    /// [`ApiError::BadRequest`] when not an integer or out of range.
    pub fn opt_int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.text(name) else {
            return Ok(None);
        };
        match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::BadRequest(format!(
                "parameter {name:?} must be an integer from {min} to {max}, not {v:?}"
            ))),
        }
    }

    /// An integer in `min..=max`, `default` when absent.
    ///
    /// # Errors
    ///
    /// As [`Params::opt_int`].
    pub fn int(&self, name: &str, min: i64, max: i64, default: i64) -> Result<i64, ApiError> {
        Ok(self.opt_int(name, min, max)?.unwrap_or(default))
    }

    /// The entity type in parameter `name`, one of `allowed`.
    ///
    /// # Errors
    ///
    /// [`ApiError::BadRequest`] when absent or not allowed.
    pub fn entity_type(&self, name: &str, allowed: &[EntityType]) -> Result<EntityType, ApiError> {
        let v = self.required(name)?;
        EntityType::parse(v)
            .filter(|t| allowed.contains(t))
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
                ApiError::BadRequest(format!(
                    "parameter {name:?} must be one of {}, not {v:?}",
                    names.join(", ")
                ))
            })
    }

    /// The entity named by `{prefix}id` or `{prefix}name` (exactly one of them); genres and
    /// styles take `name` (an `id` is read as their name).
    ///
    /// # Errors
    ///
    /// [`ApiError::BadRequest`] when both or neither are given, or the id is not a
    /// positive integer.
    pub fn entity_ref(&self, prefix: &str, kind: EntityType) -> Result<EntityRef, ApiError> {
        let id_key = format!("{prefix}id");
        let name_key = format!("{prefix}name");
        match (self.text(&id_key), self.text(&name_key)) {
            (Some(_), Some(_)) => Err(ApiError::BadRequest(format!(
                "give {id_key:?} or {name_key:?}, not both"
            ))),
            (None, None) => Err(ApiError::BadRequest(format!(
                "parameter {id_key:?} or {name_key:?} is required"
            ))),
            (Some(id), None) if kind.keyed_by_name() => Ok(EntityRef::Name(id.to_owned())),
            (Some(id), None) => parse_id(id).map(EntityRef::Id),
            (None, Some(name)) => Ok(EntityRef::Name(name.to_owned())),
        }
    }
}

/// A positive integer id.
///
/// # Errors
///
/// [`ApiError::BadRequest`] for anything else.
pub fn parse_id(v: &str) -> Result<i64, ApiError> {
    match v.trim().parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "an id must be a positive integer, not {v:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked() {
        let p = Params::parse(
            Some("q=depeche%20mode&limit=5&type=artist"),
            &["q", "limit", "type"],
        )
        .unwrap();
        assert_eq!(p.query_text("q", 2, 100).unwrap(), "depeche mode");
        assert_eq!(p.int("limit", 1, 50, 10).unwrap(), 5);
        assert_eq!(p.int("offset", 0, 10, 0).unwrap(), 0);
        assert_eq!(
            p.entity_type("type", &[EntityType::Artist]).unwrap(),
            EntityType::Artist
        );
        assert_eq!(p.canonical(), "limit=5&q=depeche mode&type=artist&");
        assert!(p.entity_type("type", &[EntityType::Label]).is_err());
        assert!(Params::parse(Some("x=1"), &["q"]).is_err());
        assert!(Params::parse(Some("q=1&q=2"), &["q"]).is_err());
        let p = Params::parse(
            Some("limit=0&id=-3&name=x&q=a"),
            &["limit", "id", "name", "q"],
        )
        .unwrap();
        assert!(p.int("limit", 1, 50, 10).is_err());
        assert!(p.entity_ref("", EntityType::Artist).is_err(), "both");
        assert!(p.query_text("q", 2, 10).is_err());
        let p = Params::parse(Some("id=Rock"), &["id"]).unwrap();
        assert_eq!(
            p.entity_ref("", EntityType::Genre).unwrap(),
            EntityRef::Name("Rock".into())
        );
        assert!(p.entity_ref("", EntityType::Artist).is_err());
        let e = ApiError::BadRequest("x".into());
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
}
