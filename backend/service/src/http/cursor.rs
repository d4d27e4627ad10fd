//! Cursors: positions in a user's data, handed to the client and back, sealed with a MAC.
//!
//! A cursor is `base64url(position ‖ tag)`, where `tag` is the first 16 bytes of
//! HMAC-SHA256 over a format version, the cursor's kind (a listing, a graph page...), the
//! authenticated user id and the position. A cursor that was altered, made up, or minted for
//! another user fails the check and is refused (400 `invalid-cursor`) before any read.
//!
//! The MAC is a second wall, not the first: reads are keyed by the authenticated user
//! whatever a cursor says, so even a forged position could only point into the caller's own
//! data. That is why a built-in key is acceptable when `BRAIN2_CURSOR_KEY` is not set:
//! someone who knows it can craft positions for themselves, never reach another user's
//! items. Setting the key makes cursors unforgeable as well.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::{NodeId, UserId};
use crate::ports::{GraphCursor, ListCursor};

/// What the key is derived from when `BRAIN2_CURSOR_KEY` is unset (see the module's docs).
const BUILT_IN_KEY_MATERIAL: &str = "brain2 built-in cursor key: cursors are bound to their user, not secret";
/// The domain of the key derivation, so the setting's value is never used as a MAC key as is.
const KEY_DERIVATION_LABEL: &[u8] = b"brain2/cursor-key/v1";
const FORMAT_VERSION: u8 = 1;
/// 128 bits of tag: forging one is a 2^-128 guess per request.
const TAG_BYTES: usize = 16;
/// Longest cursor string looked at; anything longer is refused before decoding.
pub const MAX_CURSOR_CHARS: usize = 512;

/// The kind of position a cursor holds; part of the MAC, so one kind is never read as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKind {
    /// `GET /nodes`: newest first.
    NodeListing,
    /// `GET /graph-data` pages.
    GraphPage,
}

impl CursorKind {
    fn label(self) -> &'static [u8] {
        match self {
            Self::NodeListing => b"nodes",
            Self::GraphPage => b"graph",
        }
    }
}

/// The cursor was not made by this service for this user and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this API returned to this user")]
pub struct InvalidCursor;

/// The MAC key of cursors, keyed once.
#[derive(Clone)]
pub struct CursorKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// The key derived from a configured secret (any length).
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut derivation =
            <Hmac<Sha256> as KeyInit>::new_from_slice(KEY_DERIVATION_LABEL).expect("HMAC takes any key");
        derivation.update(secret);
        let key = derivation.finalize().into_bytes();
        Self { mac: <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("HMAC takes any key") }
    }

    /// The key used when none is configured.
    pub fn built_in() -> Self {
        Self::from_secret(BUILT_IN_KEY_MATERIAL.as_bytes())
    }

    fn tag(&self, kind: CursorKind, user: &UserId, position: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(&[FORMAT_VERSION]);
        mac.update(kind.label());
        // User ids hold no control characters, so the NUL separators keep the fields apart.
        mac.update(&[0]);
        mac.update(user.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(position);
        mac
    }

    /// A cursor string for this position of this user's data.
    pub fn seal(&self, kind: CursorKind, user: &UserId, position: &[u8]) -> String {
        let tag = self.tag(kind, user, position).finalize().into_bytes();
        let mut sealed = Vec::with_capacity(position.len() + TAG_BYTES);
        sealed.extend_from_slice(position);
        sealed.extend_from_slice(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// The position of a cursor this key sealed for this user and kind.
    pub fn open(&self, kind: CursorKind, user: &UserId, raw: &str) -> Result<Vec<u8>, InvalidCursor> {
        if raw.len() > MAX_CURSOR_CHARS {
            return Err(InvalidCursor);
        }
        let mut sealed = URL_SAFE_NO_PAD.decode(raw).map_err(|_| InvalidCursor)?;
        if sealed.len() < TAG_BYTES {
            return Err(InvalidCursor);
        }
        let tag = sealed.split_off(sealed.len() - TAG_BYTES);
        // Constant time, so timing tells nothing about how much of a guessed tag was right.
        self.tag(kind, user, &sealed).verify_truncated_left(&tag).map_err(|_| InvalidCursor)?;
        Ok(sealed)
    }

    /// The cursor of a newest-first listing position: creation time and node id.
    pub fn seal_listing(&self, user: &UserId, cursor: ListCursor) -> String {
        let mut position = Vec::with_capacity(24);
        position.extend_from_slice(&cursor.created_at_ms.to_be_bytes());
        position.extend_from_slice(cursor.node_id.as_bytes());
        self.seal(CursorKind::NodeListing, user, &position)
    }

    pub fn open_listing(&self, user: &UserId, raw: &str) -> Result<ListCursor, InvalidCursor> {
        let position = self.open(CursorKind::NodeListing, user, raw)?;
        if position.len() != 24 {
            return Err(InvalidCursor);
        }
        let millis: [u8; 8] = position[..8].try_into().expect("8 bytes");
        let id: [u8; 16] = position[8..].try_into().expect("16 bytes");
        let created_at_ms = i64::from_be_bytes(millis);
        if created_at_ms < 0 {
            return Err(InvalidCursor);
        }
        Ok(ListCursor { created_at_ms, node_id: NodeId::from_bytes(id) })
    }

    /// The cursor of a graph page: the node the next page starts at, and the edge of that
    /// node it continues after when a page ended among its edges.
    pub fn seal_graph_page(&self, user: &UserId, cursor: GraphCursor) -> String {
        let mut position = Vec::with_capacity(32);
        position.extend_from_slice(cursor.node.as_bytes());
        if let Some(other) = cursor.edge_to {
            position.extend_from_slice(other.as_bytes());
        }
        self.seal(CursorKind::GraphPage, user, &position)
    }

    pub fn open_graph_page(&self, user: &UserId, raw: &str) -> Result<GraphCursor, InvalidCursor> {
        let position = self.open(CursorKind::GraphPage, user, raw)?;
        let id = |bytes: &[u8]| NodeId::from_bytes(bytes.try_into().expect("16 bytes"));
        match position.len() {
            16 => Ok(GraphCursor { node: id(&position), edge_to: None }),
            32 => Ok(GraphCursor { node: id(&position[..16]), edge_to: Some(id(&position[16..])) }),
            _ => Err(InvalidCursor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    #[test]
    fn a_graph_cursor_round_trips_for_its_user_only_and_is_no_listing_cursor() {
        let key = CursorKey::built_in();
        let (node, other) = (NodeId::generate(), NodeId::generate());
        for cursor in [GraphCursor { node, edge_to: None }, GraphCursor { node, edge_to: Some(other) }] {
            let sealed = key.seal_graph_page(&user("alice"), cursor);
            assert_eq!(key.open_graph_page(&user("alice"), &sealed), Ok(cursor));
            assert_eq!(key.open_graph_page(&user("bob"), &sealed), Err(InvalidCursor));
            assert_eq!(key.open_listing(&user("alice"), &sealed), Err(InvalidCursor));
        }
        let listing = key.seal_listing(&user("alice"), ListCursor { created_at_ms: 1, node_id: node });
        assert_eq!(key.open_graph_page(&user("alice"), &listing), Err(InvalidCursor));
    }

    #[test]
    fn a_listing_cursor_round_trips_for_its_user_only() {
        let key = CursorKey::built_in();
        let cursor = ListCursor { created_at_ms: 1_700_000_000_123, node_id: NodeId::generate() };
        let sealed = key.seal_listing(&user("alice"), cursor);
        assert_eq!(key.open_listing(&user("alice"), &sealed), Ok(cursor));
        assert_eq!(key.open_listing(&user("bob"), &sealed), Err(InvalidCursor));
        assert_eq!(CursorKey::from_secret(b"another key").open_listing(&user("alice"), &sealed), Err(InvalidCursor));
        let as_graph = key.open(CursorKind::GraphPage, &user("alice"), &sealed);
        assert_eq!(as_graph, Err(InvalidCursor), "a listing cursor is not a graph cursor");
    }

    #[test]
    fn garbage_is_refused() {
        let key = CursorKey::built_in();
        let alice = user("alice");
        for bad in ["", "!!!", "bm90LWEtY3Vyc29y", &"A".repeat(MAX_CURSOR_CHARS + 1)] {
            assert_eq!(key.open_listing(&alice, bad), Err(InvalidCursor), "{bad}");
        }
        // A correctly sealed position of the wrong length.
        let short = key.seal(CursorKind::NodeListing, &alice, b"12345");
        assert_eq!(key.open_listing(&alice, &short), Err(InvalidCursor));
        let mut negative = (-5_i64).to_be_bytes().to_vec();
        negative.extend_from_slice(NodeId::generate().as_bytes());
        let negative = key.seal(CursorKind::NodeListing, &alice, &negative);
        assert_eq!(key.open_listing(&alice, &negative), Err(InvalidCursor));
    }
}
