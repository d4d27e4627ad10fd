//! Key values of every item, always built from the authenticated user id.
//!
//! | item    | PK                     | SK                        | index keys |
//! |---------|------------------------|---------------------------|------------|
//! | node    | `USER#<u>`             | `NODE#<n>`                | UserTimeIndex: `USER#<u>` / `TS#<ms>#<n>` |
//! | edge    | `USER#<u>`             | `NODE#<a>#EDGE#<b>`       | none (stored for a->b and b->a) |
//! | posting | `USER#<u>#NODE#<n>`    | `KW#<keyword>`            | KeywordIndex: `USER#<u>#KW#<keyword>` / `NODE#<n>` |
//!
//! | stream checkpoint | `OUTBOX#CHECKPOINTS` | `SHARD#<shard id>` | none (the local outbox relay's position) |
//!
//! A soft-deleted node also carries DeletionQueue keys `DELETED#<shard>` / `<ms>#<u>#<n>`
//! until cleanup removes it.
//!
//! Postings get a partition per node so that a bulk create spreads its keyword writes
//! instead of piling them onto the user's partition.

use crate::domain::{NodeId, UserId};

/// What every partition key of a user's items starts with.
pub const USER_PREFIX: &str = "USER#";

pub fn user_partition(user: &UserId) -> String {
    format!("{USER_PREFIX}{user}")
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

/// Where the outbox relay of `brain2 serve` keeps, per shard of the table's stream, the last
/// record it delivered. Not a user's item: no request reads it.
pub const STREAM_CHECKPOINT_PARTITION: &str = "OUTBOX#CHECKPOINTS";

pub fn stream_checkpoint_sort_key(shard_id: &str) -> String {
    format!("SHARD#{shard_id}")
}

/// A user's recent changes: a partition of their own, written off the request path, so that
/// neither the graph Query nor the node partition's throughput sees them.
pub fn change_log_partition(user: &UserId) -> String {
    format!("USER#{user}#CHANGES")
}

pub const CHANGE_PREFIX: &str = "CHANGE#";
/// Above every [`change_sort_key`]: the upper bound of a Query of the changes.
pub const CHANGES_END: &str = "CHANGE#~";

/// A change by its place in the log: a UUIDv7 made when it was logged, so that sort key
/// order is the order changes were logged in. (An event's own id carries the time of the
/// write, which a stream record gives to the second: it cannot order the log.)
pub fn change_sort_key(logged: uuid::Uuid) -> String {
    format!("{CHANGE_PREFIX}{logged}")
}

/// Where a change is in the log, found by the event id clients know.
pub fn change_marker_sort_key(event_id: uuid::Uuid) -> String {
    format!("EVENT#{event_id}")
}

/// A user's WebSocket connections, apart from the node partition for the same reasons.
pub fn connections_partition(user: &UserId) -> String {
    format!("USER#{user}#WS")
}

pub const CONNECTION_PREFIX: &str = "CONN#";

pub fn connection_sort_key(connection_id: &str) -> String {
    format!("{CONNECTION_PREFIX}{connection_id}")
}

/// API Gateway names only the connection when a client disconnects or sends a message: this
/// item says whose it is. Not a user's item: no request reads it.
pub fn connection_owner_partition(connection_id: &str) -> String {
    format!("WSCONN#{connection_id}")
}

pub const CONNECTION_OWNER: &str = "OWNER";

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

/// Millisecond fields are written zero-padded and read back as plain digits only.
fn parse_millis(raw: &str) -> Option<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// The parts of a [`deletion_sort_key`]: user ids hold no `#`, so the key splits unambiguously.
pub fn parse_deletion_sort_key(key: &str) -> Option<(i64, UserId, NodeId)> {
    let (millis, rest) = key.split_once('#')?;
    let (user, node) = rest.split_once('#')?;
    Some((parse_millis(millis)?, UserId::parse(user).ok()?, NodeId::parse(node).ok()?))
}

/// The parts of a [`time_sort_key`].
pub fn parse_time_sort_key(key: &str) -> Option<(i64, NodeId)> {
    let (millis, node) = key.strip_prefix("TS#")?.split_once('#')?;
    Some((parse_millis(millis)?, NodeId::parse(node).ok()?))
}

/// The owner and the other end of an [`edge_sort_key`].
pub fn parse_edge_sort_key(key: &str) -> Option<(NodeId, NodeId)> {
    let (owner, other) = key.strip_prefix("NODE#")?.split_once("#EDGE#")?;
    Some((NodeId::parse(owner).ok()?, NodeId::parse(other).ok()?))
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

    #[test]
    fn keys_parse_back() {
        let (user, a, b) = (UserId::parse("alice").unwrap(), NodeId::generate(), NodeId::generate());
        assert_eq!(parse_edge_sort_key(&edge_sort_key(a, b)), Some((a, b)));
        assert_eq!(parse_time_sort_key(&time_sort_key(42, a)), Some((42, a)));
        assert_eq!(parse_deletion_sort_key(&deletion_sort_key(7, &user, a)), Some((7, user, a)));
        for bad in ["", "#", "NODE#x#EDGE#y", "+5#alice#x", &node_sort_key(a), &format!("-1#alice#{a}")] {
            assert_eq!(parse_edge_sort_key(bad), None, "{bad}");
            assert_eq!(parse_deletion_sort_key(bad), None, "{bad}");
            assert_eq!(parse_time_sort_key(bad), None, "{bad}");
        }
    }
}
