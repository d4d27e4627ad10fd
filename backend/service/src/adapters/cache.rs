//! In-process read caches as a decorator of the store port: node and graph reads
//! (`read_cache`) and adjacency lists (`adjacency_cache`). Everything is kept per user and
//! dropped whole by any write of that user, so a key always includes the user id and a
//! reader never sees data older than its own instance's last write. Writes made by other
//! instances show after at most the time-to-live.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::similarity::DocumentFrequencies;
use crate::domain::{Edge, Node, NodeId, UserId};
use crate::flags::Flags;
use crate::ports::{BatchOutcome, DeleteOutcome, DeletedNode, Graph, GraphStore, ListCursor, Page, StoreError};
use crate::telemetry::metric::{self, Cache};

/// Users whose reads are cached at once; the least recently used go first.
const MAX_CACHED_USERS: u64 = 1_000;

/// What one instance has read of one user's data. Replaced, never patched, on that
/// user's writes: a read that started before the write fills a view nobody sees any more.
#[derive(Default)]
struct UserView {
    graph: Mutex<Option<Graph>>,
    nodes: Mutex<HashMap<NodeId, Option<Node>>>,
    adjacency: Mutex<HashMap<NodeId, Option<Vec<Edge>>>>,
}

fn cached<K: std::hash::Hash + Eq, V: Clone>(map: &Mutex<HashMap<K, V>>, key: &K) -> Option<V> {
    map.lock().ok()?.get(key).cloned()
}

fn remember<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
    if let Ok(mut map) = map.lock() {
        map.insert(key, value);
    }
}

pub struct CachedGraphStore {
    inner: Arc<dyn GraphStore>,
    views: moka::future::Cache<UserId, Arc<UserView>>,
    read_cache: bool,
    adjacency_cache: bool,
}

impl CachedGraphStore {
    /// The store itself when no cache flag is on; otherwise the store behind the caches.
    pub fn wrap(inner: Arc<dyn GraphStore>, flags: &Flags, ttl: Duration) -> Arc<dyn GraphStore> {
        if !flags.read_cache && !flags.adjacency_cache {
            return inner;
        }
        let views = moka::future::Cache::builder().max_capacity(MAX_CACHED_USERS).time_to_live(ttl).build();
        Arc::new(Self { inner, views, read_cache: flags.read_cache, adjacency_cache: flags.adjacency_cache })
    }

    async fn view(&self, user: &UserId) -> Arc<UserView> {
        self.views.get_with(user.clone(), async { Arc::new(UserView::default()) }).await
    }

    async fn forget(&self, user: &UserId) {
        self.views.invalidate(user).await;
    }

    /// A per-node read answered from the user's view when it is there, otherwise fetched
    /// (the future is only polled on a miss) and remembered.
    async fn read_through<V: Clone>(
        &self,
        user: &UserId,
        id: NodeId,
        cache: Cache,
        slot: fn(&UserView) -> &Mutex<HashMap<NodeId, V>>,
        fetch: impl Future<Output = Result<V, StoreError>>,
    ) -> Result<V, StoreError> {
        let view = self.view(user).await;
        let hit = cached(slot(&view), &id);
        metric::cache_lookup(cache, hit.is_some());
        if let Some(value) = hit {
            return Ok(value);
        }
        let value = fetch.await?;
        remember(slot(&view), id, value.clone());
        Ok(value)
    }

    /// Runs a write, then drops the user's views (also when the write failed half-way).
    async fn writing<T>(&self, user: &UserId, write: impl Future<Output = T>) -> T {
        let result = write.await;
        self.forget(user).await;
        result
    }
}

#[async_trait]
impl GraphStore for CachedGraphStore {
    async fn insert_node(&self, node: &Node) -> Result<(), StoreError> {
        self.writing(&node.user_id, self.inner.insert_node(node)).await
    }

    async fn insert_nodes(&self, nodes: &[Node]) -> Result<BatchOutcome, StoreError> {
        let result = self.inner.insert_nodes(nodes).await;
        let users: std::collections::HashSet<&UserId> = nodes.iter().map(|node| &node.user_id).collect();
        for user in users {
            self.forget(user).await;
        }
        result
    }

    async fn get_node(&self, user: &UserId, id: NodeId) -> Result<Option<Node>, StoreError> {
        if !self.read_cache {
            return self.inner.get_node(user, id).await;
        }
        self.read_through(user, id, Cache::Node, |view| &view.nodes, self.inner.get_node(user, id)).await
    }

    async fn get_node_current(&self, user: &UserId, id: NodeId) -> Result<Option<Node>, StoreError> {
        self.inner.get_node_current(user, id).await
    }

    async fn get_nodes(&self, user: &UserId, ids: &[NodeId]) -> Result<Vec<Node>, StoreError> {
        if !self.read_cache {
            return self.inner.get_nodes(user, ids).await;
        }
        let view = self.view(user).await;
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            let hit = cached(&view.nodes, id);
            metric::cache_lookup(Cache::Node, hit.is_some());
            match hit {
                Some(node) => found.extend(node),
                None => missing.push(*id),
            }
        }
        if !missing.is_empty() {
            let fetched = self.inner.get_nodes(user, &missing).await?;
            let mut by_id: HashMap<NodeId, Node> = fetched.into_iter().map(|node| (node.id, node)).collect();
            for id in missing {
                let node = by_id.remove(&id);
                remember(&view.nodes, id, node.clone());
                found.extend(node);
            }
        }
        Ok(found)
    }

    async fn replace_node(&self, previous: &Node, next: &Node) -> Result<(), StoreError> {
        self.writing(&next.user_id, self.inner.replace_node(previous, next)).await
    }

    async fn delete_nodes(
        &self,
        user: &UserId,
        ids: &[NodeId],
        at: DateTime<Utc>,
    ) -> Result<DeleteOutcome, StoreError> {
        self.writing(user, self.inner.delete_nodes(user, ids, at)).await
    }

    async fn mark_deleted(
        &self,
        user: &UserId,
        ids: &[NodeId],
        at: DateTime<Utc>,
    ) -> Result<DeleteOutcome, StoreError> {
        self.writing(user, self.inner.mark_deleted(user, ids, at)).await
    }

    async fn deletion_queue(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<DeletedNode>, StoreError> {
        self.inner.deletion_queue(before, limit).await
    }

    async fn purge_deleted(&self, user: &UserId, id: NodeId) -> Result<bool, StoreError> {
        self.writing(user, self.inner.purge_deleted(user, id)).await
    }

    async fn list_nodes(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<ListCursor>,
    ) -> Result<Page<Node>, StoreError> {
        self.inner.list_nodes(user, limit, after).await
    }

    async fn graph(&self, user: &UserId) -> Result<Graph, StoreError> {
        if !self.read_cache {
            return self.inner.graph(user).await;
        }
        let view = self.view(user).await;
        let hit = view.graph.lock().ok().and_then(|graph| graph.clone());
        metric::cache_lookup(Cache::Graph, hit.is_some());
        if let Some(graph) = hit {
            return Ok(graph);
        }
        let graph = self.inner.graph(user).await?;
        if let Ok(mut slot) = view.graph.lock() {
            *slot = Some(graph.clone());
        }
        Ok(graph)
    }

    async fn insert_edge(&self, edge: &Edge) -> Result<(), StoreError> {
        self.writing(&edge.user_id, self.inner.insert_edge(edge)).await
    }

    async fn delete_edge(&self, user: &UserId, a: NodeId, b: NodeId) -> Result<bool, StoreError> {
        self.writing(user, self.inner.delete_edge(user, a, b)).await
    }

    async fn node_edges(&self, user: &UserId, id: NodeId) -> Result<Option<Vec<Edge>>, StoreError> {
        if !self.adjacency_cache {
            return self.inner.node_edges(user, id).await;
        }
        self.read_through(user, id, Cache::Adjacency, |view| &view.adjacency, self.inner.node_edges(user, id)).await
    }

    async fn nodes_with_keyword(&self, user: &UserId, keyword: &str, limit: usize) -> Result<Vec<NodeId>, StoreError> {
        self.inner.nodes_with_keyword(user, keyword, limit).await
    }

    async fn apply_frequency_change(
        &self,
        user: &UserId,
        event_id: uuid::Uuid,
        added: &[String],
        removed: &[String],
        documents_delta: i64,
    ) -> Result<bool, StoreError> {
        self.inner.apply_frequency_change(user, event_id, added, removed, documents_delta).await
    }

    async fn document_frequencies(
        &self,
        user: &UserId,
        keywords: &[String],
    ) -> Result<DocumentFrequencies, StoreError> {
        self.inner.document_frequencies(user, keywords).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.inner.check().await
    }
}
