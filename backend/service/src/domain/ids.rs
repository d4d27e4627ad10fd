use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::DomainError;

/// The authenticated user. Only ever built from verified credentials, never from a request body.
/// Deserialized through [`UserId::parse`], like every other way in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// `#` is the key separator of the table, so it may not appear in a user id:
    /// otherwise one user id could be crafted to alias another user's keys.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let valid = !raw.is_empty()
            && raw.chars().count() <= 128
            && !raw.chars().any(|c| c == '#' || c.is_control() || c.is_whitespace());
        if valid { Ok(Self(raw.to_owned())) } else { Err(DomainError::InvalidUserId) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = DomainError;

    fn try_from(raw: String) -> Result<Self, DomainError> {
        Self::parse(&raw)
    }
}

impl From<UserId> for String {
    fn from(user: UserId) -> Self {
        user.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const HYPHENATED_LENGTH: usize = 36;

/// Node ids are UUIDv7: unique without coordination and roughly time-ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(Uuid);

impl NodeId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The hyphenated form only (`8-4-4-4-12` hexadecimal digits, either case): the braced,
    /// URN and unhyphenated forms `uuid` would also read are refused, so an id has one
    /// spelling on the wire besides its case.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let invalid = || DomainError::InvalidNodeId(raw.chars().take(64).collect());
        if raw.len() != HYPHENATED_LENGTH {
            return Err(invalid());
        }
        Uuid::try_parse(raw).map(Self).map_err(|_| invalid())
    }
}

impl NodeId {
    /// The 16 bytes of the UUID (cursors carry them).
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always the hyphenated lower-case form, so keys built from ids are canonical.
        write!(f, "{}", self.0.hyphenated())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_rejects_key_separator_and_blank() {
        assert!(UserId::parse("alice").is_ok());
        assert_eq!(UserId::parse("a#b"), Err(DomainError::InvalidUserId));
        assert_eq!(UserId::parse(""), Err(DomainError::InvalidUserId));
        assert_eq!(UserId::parse("a b"), Err(DomainError::InvalidUserId));
        assert!(UserId::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn node_id_round_trips_in_canonical_form() {
        let id = NodeId::generate();
        assert_eq!(NodeId::parse(&id.to_string()), Ok(id));
        let upper = id.to_string().to_uppercase();
        assert_eq!(NodeId::parse(&upper).unwrap().to_string(), id.to_string());
        assert!(matches!(NodeId::parse("nope"), Err(DomainError::InvalidNodeId(_))));
        let simple = id.to_string().replace('-', "");
        for other_form in [simple.clone(), format!("{{{id}}}"), format!("urn:uuid:{id}"), format!(" {id}")] {
            assert!(NodeId::parse(&other_form).is_err(), "{other_form}");
        }
    }
}
