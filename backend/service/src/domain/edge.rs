use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DomainError, NodeId, UserId};

/// How an edge came to be: drawn by the user, or derived from keyword similarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    Manual,
    Similarity,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Similarity => "similarity",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "manual" => Some(Self::Manual),
            "similarity" => Some(Self::Similarity),
            _ => None,
        }
    }
}

/// Strength of a connection, from [`EdgeWeight::MIN`] to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct EdgeWeight(f64);

impl EdgeWeight {
    pub const FULL: Self = Self(1.0);
    /// The weakest weight: numbers closer to 0 (down to 5e-324) are valid floats but not
    /// DynamoDB numbers (1e-130 at the least), and no link is meaningfully that weak.
    pub const MIN: f64 = 1e-6;

    pub fn new(value: f64) -> Result<Self, DomainError> {
        if value.is_finite() && (Self::MIN..=1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(DomainError::InvalidWeight(value))
        }
    }

    pub fn value(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for EdgeWeight {
    type Error = DomainError;

    fn try_from(value: f64) -> Result<Self, DomainError> {
        Self::new(value)
    }
}

impl From<EdgeWeight> for f64 {
    fn from(weight: EdgeWeight) -> Self {
        weight.0
    }
}

/// A directed link between two of one user's nodes. The store keeps it in both
/// directions so each end can list its neighbours with a single query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    pub user_id: UserId,
    pub source: NodeId,
    pub target: NodeId,
    pub weight: EdgeWeight,
    pub kind: EdgeKind,
    pub created_at: DateTime<Utc>,
}

impl Edge {
    pub fn new(
        user_id: UserId,
        source: NodeId,
        target: NodeId,
        weight: EdgeWeight,
        kind: EdgeKind,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        if source == target {
            return Err(DomainError::SelfEdge);
        }
        Ok(Self { user_id, source, target, weight, kind, created_at: now })
    }

    /// The node at the other end, seen from `from`.
    pub fn other_end(&self, from: NodeId) -> NodeId {
        if self.source == from { self.target } else { self.source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_bounds() {
        assert!(EdgeWeight::new(1.0).is_ok());
        assert!(EdgeWeight::new(0.01).is_ok());
        assert!(EdgeWeight::new(EdgeWeight::MIN).is_ok());
        for bad in [0.0, 5e-324, 1e-7, -0.5, 1.01, f64::NAN, f64::INFINITY] {
            assert!(EdgeWeight::new(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn no_self_edges() {
        let user = UserId::parse("u").unwrap();
        let id = NodeId::generate();
        let result = Edge::new(user, id, id, EdgeWeight::FULL, EdgeKind::Manual, Utc::now());
        assert_eq!(result, Err(DomainError::SelfEdge));
    }

    #[test]
    fn other_end_works_from_both_sides() {
        let user = UserId::parse("u").unwrap();
        let (a, b) = (NodeId::generate(), NodeId::generate());
        let edge = Edge::new(user, a, b, EdgeWeight::FULL, EdgeKind::Manual, Utc::now()).unwrap();
        assert_eq!(edge.other_end(a), b);
        assert_eq!(edge.other_end(b), a);
    }
}
