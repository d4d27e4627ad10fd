//! Key values of every item, always built from the authenticated user id.
//!
//! | item    | PK                     | SK                        | index keys |
//! |---------|------------------------|---------------------------|------------|
//! | node    | `USER#<u>`             | `NODE#<n>`                | UserTimeIndex: `USER#<u>` / `TS#<ms>#<n>` |
//! | edge    | `USER#<u>`             | `NODE#<a>#EDGE#<b>`       | none (stored for a->b and b->a) |
//! | posting | `USER#<u>#NODE#<n>`    | `KW#<keyword>`            | KeywordIndex: `USER#<u>#KW#<keyword>` / `NODE#<n>` |
//!
//! A soft-deleted node also carries DeletionQueue keys `DELETED#<shard>` / `<ms>#<u>#<n>`
//! until cleanup removes it.
//!
//! Postings get a partition per node so that a bulk create spreads its keyword writes
//! instead of piling them onto the user's partition.

use crate::domain::{NodeId, UserId};

pub fn user_partition(user: &UserId) -> String {
    format!("USER#{user}")
}

pub fn node_sort_key(node: NodeId) -> String {
    format!("NODE#{node}")
}

pub fn edge_sort_key(owner: NodeId, other: NodeId) -> String {
    format!("NODE#{owner}#EDGE#{other}")
}

pub fn edge_prefix(owner: NodeId) -> String {
    format!("NODE#{owner}#EDGE#")
}

pub fn posting_partition(user: &UserId, node: NodeId) -> String {
    format!("USER#{user}#NODE#{node}")
}

pub fn posting_sort_key(keyword: &str) -> String {
    format!("KW#{keyword}")
}

pub fn keyword_partition(user: &UserId, keyword: &str) -> String {
    format!("USER#{user}#KW#{keyword}")
}

/// Document-frequency counters and applied-event markers of a user: a partition of their
/// own, so the counter updates of a burst of notes do not load the user's node partition.
pub fn frequency_partition(user: &UserId) -> String {
    format!("USER#{user}#DF")
}

pub const FREQUENCY_TOTAL: &str = "TOTAL";

pub fn frequency_sort_key(keyword: &str) -> String {
    format!("KW#{keyword}")
}

pub fn applied_event_sort_key(event_id: uuid::Uuid) -> String {
    format!("APPLIED#{event_id}")
}

pub fn deletion_shard(shard: u32) -> String {
    format!("DELETED#{shard}")
}

/// Zero-padded time first, so a range condition selects entries older than a cut-off.
pub fn deletion_sort_key(deleted_at_ms: i64, user: &UserId, node: NodeId) -> String {
    format!("{deleted_at_ms:013}#{user}#{node}")
}

/// Zero-padded so that string order is time order.
pub fn time_sort_key(created_at_ms: i64, node: NodeId) -> String {
    format!("TS#{created_at_ms:013}#{node}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_chronologically() {
        let id = NodeId::generate();
        assert!(time_sort_key(999, id) < time_sort_key(1_000, id));
        assert!(time_sort_key(1_700_000_000_000, id) < time_sort_key(17_000_000_000_000, id));
    }

    #[test]
    fn edge_keys_share_the_node_prefix() {
        let (a, b) = (NodeId::generate(), NodeId::generate());
        assert!(edge_sort_key(a, b).starts_with(&edge_prefix(a)));
        assert!(edge_sort_key(a, b).starts_with(&node_sort_key(a)));
        assert!(!edge_sort_key(b, a).starts_with(&edge_prefix(a)));
    }
}
