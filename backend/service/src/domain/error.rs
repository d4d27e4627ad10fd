use thiserror::Error;

/// A rule of the domain was broken by the input; always the caller's fault.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DomainError {
    #[error("content must not be empty")]
    EmptyContent,
    #[error("content is {actual} characters long; the limit is {limit}")]
    ContentTooLong { actual: usize, limit: usize },
    #[error(
        "content has a control character at character {position}: only tab, line feed and carriage return are allowed"
    )]
    ContentControlCharacter { position: usize },
    #[error("a node may have at most {limit} tags, got {actual}")]
    TooManyTags { actual: usize, limit: usize },
    #[error("tag {tag:?} is invalid: tags are 1 to {limit} characters, without control characters")]
    InvalidTag { tag: String, limit: usize },
    #[error("{0:?} is not a valid node id (expected a UUID: 8-4-4-4-12 hexadecimal digits)")]
    InvalidNodeId(String),
    #[error("user id must be 1 to 128 printable characters without '#'")]
    InvalidUserId,
    #[error("an edge cannot connect a node to itself")]
    SelfEdge,
    #[error("edge weight must be a number from 0.000001 to 1, got {0}")]
    InvalidWeight(f64),
}

impl DomainError {
    /// Stable machine-readable code, part of the API contract.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyContent => "empty-content",
            Self::ContentTooLong { .. } => "content-too-long",
            Self::ContentControlCharacter { .. } => "invalid-content",
            Self::TooManyTags { .. } => "too-many-tags",
            Self::InvalidTag { .. } => "invalid-tag",
            Self::InvalidNodeId(_) => "invalid-node-id",
            Self::InvalidUserId => "invalid-user-id",
            Self::SelfEdge => "self-edge",
            Self::InvalidWeight(_) => "invalid-weight",
        }
    }
}
