//! [`GraphNames`]: the labels and schema names of one graph, derived from its namespace.

use discogs_model::RecordKind;

/// The node labels and the names of the constraints and indexes of one graph.
///
/// A graph lives in a **namespace**: a prefix put before every label and every schema
/// name. Production uses the empty namespace (labels `Artist`, `Label`, `Master`,
/// `Release`, `Genre`, `Style`); tests and benchmarks use one of their own (`T1x_` gives
/// `T1x_Artist`, `T1x_artist_id`...), so that they share one Neo4j database without
/// seeing each other's nodes or colliding on the uniqueness constraints, while running
/// exactly the production code. Relationship types carry no prefix: a relationship
/// belongs to the namespace of its nodes.
///
/// ```
/// use discogs_sink_neo4j::GraphNames;
///
/// let names = GraphNames::new("").unwrap();
/// assert_eq!(names.artist(), "Artist");
/// assert_eq!(names.fulltext_artist_name(), "artist_name_fulltext");
/// let test = GraphNames::new("T42_").unwrap();
/// assert_eq!(test.release(), "T42_Release");
/// assert_eq!(test.fulltext_release_title(), "T42_release_title_fulltext");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNames {
    namespace: String,
    labels: [String; 6],
}

/// Why a namespace was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "namespace {0:?} is not a label prefix ([A-Za-z][A-Za-z0-9_]*, at most 64 bytes, or empty)"
)]
pub struct InvalidNamespace(pub String);

const BASE: [&str; 6] = ["Artist", "Label", "Master", "Release", "Genre", "Style"];

impl GraphNames {
    /// The names for `namespace`: empty, or a letter followed by letters, digits and `_`
    /// (at most 64 bytes), so that it can stand unquoted in Cypher.
    ///
    /// # Errors
    ///
    /// [`InvalidNamespace`] for anything else.
    pub fn new(namespace: &str) -> Result<Self, InvalidNamespace> {
        let mut bytes = namespace.bytes();
        let valid = namespace.is_empty()
            || (matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z'))
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && namespace.len() <= 64);
        if !valid {
            return Err(InvalidNamespace(namespace.to_owned()));
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            labels: BASE.map(|b| format!("{namespace}{b}")),
        })
    }

    /// The namespace (`""` in production).
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The label of records of `kind`: `Artist`, `Label`, `Master` or `Release`.
    #[must_use]
    pub fn label(&self, kind: RecordKind) -> &str {
        &self.labels[usize::from(kind.code() - 1)]
    }

    /// `Artist` (with the namespace's prefix).
    #[must_use]
    pub fn artist(&self) -> &str {
        &self.labels[0]
    }

    /// `Label`.
    #[must_use]
    pub fn label_label(&self) -> &str {
        &self.labels[1]
    }

    /// `Master`.
    #[must_use]
    pub fn master(&self) -> &str {
        &self.labels[2]
    }

    /// `Release`.
    #[must_use]
    pub fn release(&self) -> &str {
        &self.labels[3]
    }

    /// `Genre`.
    #[must_use]
    pub fn genre(&self) -> &str {
        &self.labels[4]
    }

    /// `Style`.
    #[must_use]
    pub fn style(&self) -> &str {
        &self.labels[5]
    }

    /// All six labels: the four record kinds, then `Genre` and `Style`.
    #[must_use]
    pub fn all_labels(&self) -> &[String; 6] {
        &self.labels
    }

    /// A schema object's name in this namespace: `{namespace}{base}`.
    #[must_use]
    pub fn schema_name(&self, base: &str) -> String {
        format!("{}{base}", self.namespace)
    }

    /// The full-text index on `Artist.name`: `artist_name_fulltext`.
    #[must_use]
    pub fn fulltext_artist_name(&self) -> String {
        self.schema_name("artist_name_fulltext")
    }

    /// The full-text index on `Label.name`: `label_name_fulltext`.
    #[must_use]
    pub fn fulltext_label_name(&self) -> String {
        self.schema_name("label_name_fulltext")
    }

    /// The full-text index on `Master.title`: `master_title_fulltext`.
    #[must_use]
    pub fn fulltext_master_title(&self) -> String {
        self.schema_name("master_title_fulltext")
    }

    /// The full-text index on `Release.title`: `release_title_fulltext`.
    #[must_use]
    pub fn fulltext_release_title(&self) -> String {
        self.schema_name("release_title_fulltext")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        let n = GraphNames::new("").unwrap();
        assert_eq!(n.label(RecordKind::Master), "Master");
        assert_eq!(n.label_label(), "Label");
        assert_eq!(n.genre(), "Genre");
        assert_eq!(n.schema_name("artist_id"), "artist_id");
        let t = GraphNames::new("Test_abc_12_").unwrap();
        assert_eq!(t.style(), "Test_abc_12_Style");
        assert_eq!(t.label(RecordKind::Artist), "Test_abc_12_Artist");
        for bad in ["1abc", "a b", "a`b", "_x", "a-b", "ä", &"x".repeat(65)] {
            assert!(GraphNames::new(bad).is_err(), "{bad}");
        }
    }
}
