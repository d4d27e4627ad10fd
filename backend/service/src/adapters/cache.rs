//! The read caches, as a decorator of the store port: node reads and the first graph page
//! (`read_cache`) and adjacency lists (`adjacency_cache`), in two tiers: this instance's
//! memory, and (`shared_cache`, with `BRAIN2_CACHE_URL`) a cache every instance shares.
//!
//! Every entry is keyed by its user and that user's current *generation*; any write of the
//! user moves them to a new generation, so their older entries are never read again (and
//! age out). A key always includes the user id, and what comes back from the shared tier
//! is checked to belong to the user who asked.
//!
//! Memory only: each instance keeps its own generations, so a reader never sees data older
//! than its own instance's last write, and writes made by other instances show after at
//! most the time-to-live. With the shared tier, the generation is the one the shared cache
//! holds, read on every cached read: a write through any instance is seen at once by every
//! other, while what did not change is still answered from memory. When the shared cache
//! cannot tell the generation (down, slow, or a generation change still owed), reads go to
//! the store: no tier is trusted without it.
//!
//! Memory is bounded by bytes, not by users: each entry weighs an estimate of its size,
//! and the least recently used go first once the total passes the budget. Misses (reads
//! of ids that do not exist) are cached too, as they cost a read like any other, but at
//! most [`MAX_CACHED_MISSES_PER_USER`] per user and generation: one user asking for random
//! ids cannot fill the cache with nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::similarity::DocumentFrequencies;
use crate::domain::{Edge, Node, NodeId, UserId};
use crate::flags::Flags;
use crate::ports::{
    BatchOutcome, DeleteOutcome, DeletedNode, Graph, GraphCursor, GraphStore, ListCursor, Page, SharedCache, StoreError,
};
use crate::telemetry::metric::{self, Cache, Tier};

/// Negative entries (ids found missing) one user may have cached per generation.
pub const MAX_CACHED_MISSES_PER_USER: usize = 256;
/// Users whose generation is remembered at once. A user forgotten here simply starts a
/// new generation: their old entries are never read again.
const MAX_TRACKED_USERS: u64 = 100_000;
/// What moka and the key cost per entry beyond the value itself (an estimate).
const ENTRY_OVERHEAD_BYTES: usize = 160;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Slot {
    Node(NodeId),
    Adjacency(NodeId),
    /// The first page of the graph, by page size.
    GraphStart(usize),
}

impl Slot {
    /// The slot's name in the shared tier (under the user and generation).
    fn name(&self) -> String {
        match self {
            Self::Node(id) => format!("n:{id}"),
            Self::Adjacency(id) => format!("a:{id}"),
            Self::GraphStart(limit) => format!("g:{limit}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EntryKey {
    user: UserId,
    generation: u64,
    slot: Slot,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Entry {
    Node(Option<Node>),
    Adjacency(Option<Vec<Edge>>),
    Graph(Graph),
}

impl Entry {
    /// Whether every node and edge in the entry is `user`'s.
    fn belongs_to(&self, user: &UserId) -> bool {
        let node_is_theirs = |node: &Node| node.user_id == *user;
        let edges_are_theirs = |edges: &[Edge]| edges.iter().all(|edge| edge.user_id == *user);
        match self {
            Self::Node(node) => node.as_ref().is_none_or(node_is_theirs),
            Self::Adjacency(edges) => edges.as_deref().is_none_or(edges_are_theirs),
            Self::Graph(graph) => graph.nodes.iter().all(node_is_theirs) && edges_are_theirs(&graph.edges),
        }
    }

    /// An entry read from the shared tier, if it decodes and is `user`'s.
    fn decode(user: &UserId, bytes: &[u8]) -> Option<Self> {
        let entry: Self = serde_json::from_slice(bytes).ok()?;
        entry.belongs_to(user).then_some(entry)
    }
}

fn node_bytes(node: &Node) -> usize {
    let strings = node.keywords.iter().chain(&node.tags).map(|s| s.len() + size_of::<String>()).sum::<usize>();
    size_of::<Node>() + node.content.len() + node.user_id.as_str().len() + strings
}

fn edges_bytes(edges: &[Edge]) -> usize {
    edges.iter().map(|edge| size_of::<Edge>() + edge.user_id.as_str().len()).sum()
}

/// The estimated bytes an entry holds: what the weigher charges against the budget.
fn entry_bytes(key: &EntryKey, entry: &Entry) -> usize {
    let value = match entry {
        Entry::Node(node) => node.as_ref().map_or(0, node_bytes),
        Entry::Adjacency(edges) => edges.as_deref().map_or(0, edges_bytes),
        Entry::Graph(graph) => graph.nodes.iter().map(node_bytes).sum::<usize>() + edges_bytes(&graph.edges),
    };
    ENTRY_OVERHEAD_BYTES + key.user.as_str().len() + value
}

fn is_miss(entry: &Entry) -> bool {
    matches!(entry, Entry::Node(None) | Entry::Adjacency(None))
}

/// A user's current generation, and the misses cached in it.
struct Generation {
    number: u64,
    misses: AtomicUsize,
}

impl Generation {
    fn new(number: u64) -> Arc<Self> {
        Arc::new(Self { number, misses: AtomicUsize::new(0) })
    }
}

pub struct CachedGraphStore {
    inner: Arc<dyn GraphStore>,
    entries: moka::future::Cache<EntryKey, Entry>,
    /// Each user's generation: this instance's own, or the shared tier's as last read.
    generations: moka::future::Cache<UserId, Arc<Generation>>,
    /// Generation numbers are never reused, so a forgotten user cannot meet old entries.
    next_generation: AtomicU64,
    shared: Option<Arc<dyn SharedCache>>,
    read_cache: bool,
    adjacency_cache: bool,
}

impl CachedGraphStore {
    /// The store itself when no cache flag is on; otherwise the store behind the caches,
    /// holding about `max_bytes` in memory, and `shared` as the second tier when given.
    pub fn wrap(
        inner: Arc<dyn GraphStore>,
        flags: &Flags,
        ttl: Duration,
        max_bytes: u64,
        shared: Option<Arc<dyn SharedCache>>,
    ) -> Arc<dyn GraphStore> {
        if !flags.read_cache && !flags.adjacency_cache {
            return inner;
        }
        Arc::new(Self::new(inner, flags, ttl, max_bytes, shared))
    }

    fn new(
        inner: Arc<dyn GraphStore>,
        flags: &Flags,
        ttl: Duration,
        max_bytes: u64,
        shared: Option<Arc<dyn SharedCache>>,
    ) -> Self {
        let entries = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key, entry| u32::try_from(entry_bytes(key, entry)).unwrap_or(u32::MAX))
            .time_to_live(ttl)
            .build();
        let generations = moka::future::Cache::builder().max_capacity(MAX_TRACKED_USERS).time_to_live(ttl).build();
        Self {
            inner,
            entries,
            generations,
            next_generation: AtomicU64::new(0),
            shared,
            read_cache: flags.read_cache,
            adjacency_cache: flags.adjacency_cache,
        }
    }

    /// The generation the user's entries are keyed by now; `None` when the shared tier
    /// cannot say, and nothing cached may be used.
    async fn generation(&self, user: &UserId) -> Option<Arc<Generation>> {
        let Some(shared) = &self.shared else {
            let fresh = async { Generation::new(self.next_generation.fetch_add(1, Ordering::Relaxed)) };
            return Some(self.generations.get_with(user.clone(), fresh).await);
        };
        let number = shared.generation(user).await.ok()?;
        if let Some(known) = self.generations.get(user).await.filter(|known| known.number == number) {
            return Some(known);
        }
        let current = Generation::new(number);
        self.generations.insert(user.clone(), current.clone()).await;
        Some(current)
    }

    fn key(user: &UserId, generation: &Generation, slot: Slot) -> EntryKey {
        EntryKey { user: user.clone(), generation: generation.number, slot }
    }

    /// The entries at `keys` (one user's, one generation's), in order: from memory, else
    /// from the shared tier in one call (and then kept in memory too).
    async fn lookup(&self, keys: &[EntryKey], cache: Cache) -> Vec<Option<Entry>> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            let entry = self.entries.get(key).await;
            metric::cache_lookup(cache, Tier::Memory, entry.is_some());
            found.push(entry);
        }
        let (Some(shared), Some(first)) = (&self.shared, keys.first()) else { return found };
        let missing: Vec<usize> = (0..keys.len()).filter(|&at| found[at].is_none()).collect();
        if missing.is_empty() {
            return found;
        }
        let slots: Vec<String> = missing.iter().map(|&at| keys[at].slot.name()).collect();
        let values = shared.get(&first.user, first.generation, &slots).await.unwrap_or_default();
        for (position, &at) in missing.iter().enumerate() {
            let entry = values.get(position).cloned().flatten().and_then(|bytes| Entry::decode(&keys[at].user, &bytes));
            metric::cache_lookup(cache, Tier::Shared, entry.is_some());
            if let Some(entry) = &entry {
                self.entries.insert(keys[at].clone(), entry.clone()).await;
            }
            found[at] = entry;
        }
        found
    }

    /// Caches `entry` in both tiers, unless it is a miss beyond the user's allowance.
    async fn remember(&self, key: EntryKey, generation: &Generation, entry: Entry) {
        if is_miss(&entry) && generation.misses.fetch_add(1, Ordering::Relaxed) >= MAX_CACHED_MISSES_PER_USER {
            return;
        }
        if let Some(shared) = &self.shared
            && let Ok(bytes) = serde_json::to_vec(&entry)
        {
            // A fill that fails costs nothing but a later miss.
            let _ = shared.put(&key.user, key.generation, &key.slot.name(), bytes).await;
        }
        self.entries.insert(key, entry).await;
    }

    /// Moves the user to a new generation: nothing cached before is read again, on this
    /// instance or (with the shared tier) on any other.
    async fn forget(&self, user: &UserId) {
        self.generations.invalidate(user).await;
        if let Some(shared) = &self.shared {
            // On failure the change is owed, and the shared tier is not read until it is made.
            let _ = shared.advance(user).await;
        }
    }

    /// A read answered from the caches when it is there, otherwise fetched (the future is
    /// only polled on a miss) and remembered under the generation seen before the fetch:
    /// a write that lands meanwhile leaves the result where nobody reads it.
    async fn read_through<V>(
        &self,
        user: &UserId,
        slot: Slot,
        cache: Cache,
        unwrap: fn(Entry) -> Option<V>,
        wrap: fn(V) -> Entry,
        fetch: impl Future<Output = Result<V, StoreError>>,
    ) -> Result<V, StoreError>
    where
        V: Clone,
    {
        let Some(generation) = self.generation(user).await else { return fetch.await };
        let key = Self::key(user, &generation, slot);
        let hit = self.lookup(std::slice::from_ref(&key), cache).await.pop().flatten().and_then(unwrap);
        if let Some(value) = hit {
            return Ok(value);
        }
        let value = fetch.await?;
        self.remember(key, &generation, wrap(value.clone())).await;
        Ok(value)
    }

    /// Runs a write, then drops the user's cached reads (also when the write failed half-way).
    async fn writing<T>(&self, user: &UserId, write: impl Future<Output = T>) -> T {
        let result = write.await;
        self.forget(user).await;
        result
    }

    /// Settles moka's pending evictions, then reports the entries held, their estimated
    /// bytes, and the misses among them.
    #[cfg(test)]
    async fn usage(&self) -> (u64, u64, usize) {
        self.entries.run_pending_tasks().await;
        let misses = self.entries.iter().filter(|(_, entry)| is_miss(entry)).count();
        (self.entries.entry_count(), self.entries.weighted_size(), misses)
    }
}

fn node_entry(entry: Entry) -> Option<Option<Node>> {
    if let Entry::Node(node) = entry { Some(node) } else { None }
}

fn adjacency_entry(entry: Entry) -> Option<Option<Vec<Edge>>> {
    if let Entry::Adjacency(edges) = entry { Some(edges) } else { None }
}

fn graph_entry(entry: Entry) -> Option<Graph> {
    if let Entry::Graph(graph) = entry { Some(graph) } else { None }
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
        let fetch = self.inner.get_node(user, id);
        self.read_through(user, Slot::Node(id), Cache::Node, node_entry, Entry::Node, fetch).await
    }

    async fn get_node_current(&self, user: &UserId, id: NodeId) -> Result<Option<Node>, StoreError> {
        self.inner.get_node_current(user, id).await
    }

    async fn get_nodes(&self, user: &UserId, ids: &[NodeId]) -> Result<Vec<Node>, StoreError> {
        if !self.read_cache {
            return self.inner.get_nodes(user, ids).await;
        }
        let Some(generation) = self.generation(user).await else { return self.inner.get_nodes(user, ids).await };
        let keys: Vec<EntryKey> = ids.iter().map(|id| Self::key(user, &generation, Slot::Node(*id))).collect();
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for (id, hit) in ids.iter().zip(self.lookup(&keys, Cache::Node).await) {
            match hit.and_then(node_entry) {
                Some(node) => found.extend(node),
                None => missing.push(*id),
            }
        }
        if !missing.is_empty() {
            let fetched = self.inner.get_nodes(user, &missing).await?;
            let mut by_id: HashMap<NodeId, Node> = fetched.into_iter().map(|node| (node.id, node)).collect();
            for id in missing {
                let node = by_id.remove(&id);
                let key = Self::key(user, &generation, Slot::Node(id));
                self.remember(key, &generation, Entry::Node(node.clone())).await;
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

    /// The first page is cached (what a client opening its graph reads); later pages are
    /// read as they are asked for.
    async fn graph(&self, user: &UserId, limit: usize, after: Option<GraphCursor>) -> Result<Graph, StoreError> {
        if !self.read_cache || after.is_some() {
            return self.inner.graph(user, limit, after).await;
        }
        let fetch = self.inner.graph(user, limit, None);
        self.read_through(user, Slot::GraphStart(limit), Cache::Graph, graph_entry, Entry::Graph, fetch).await
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
        let fetch = self.inner.node_edges(user, id);
        self.read_through(user, Slot::Adjacency(id), Cache::Adjacency, adjacency_entry, Entry::Adjacency, fetch).await
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::{KeywordExtractor, NodeDraft};
    use crate::ports::CacheError;

    /// Nodes in memory; counts the reads that reach it.
    #[derive(Default)]
    struct Nodes {
        nodes: Mutex<HashMap<NodeId, Node>>,
        reads: AtomicUsize,
    }

    impl Nodes {
        fn add(&self, user: &UserId, content: &str) -> Node {
            let draft = NodeDraft::new(content, &[]).unwrap();
            let node = Node::create(user.clone(), draft, &KeywordExtractor::new(), Utc::now());
            self.nodes.lock().unwrap().insert(node.id, node.clone());
            node
        }

        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl GraphStore for Nodes {
        async fn insert_node(&self, node: &Node) -> Result<(), StoreError> {
            self.nodes.lock().unwrap().insert(node.id, node.clone());
            Ok(())
        }
        async fn insert_nodes(&self, _: &[Node]) -> Result<BatchOutcome, StoreError> {
            Ok(BatchOutcome::default())
        }
        async fn get_node(&self, user: &UserId, id: NodeId) -> Result<Option<Node>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.nodes.lock().unwrap().get(&id).filter(|node| node.user_id == *user).cloned())
        }
        async fn get_nodes(&self, user: &UserId, ids: &[NodeId]) -> Result<Vec<Node>, StoreError> {
            let mut found = Vec::new();
            for id in ids {
                found.extend(self.get_node(user, *id).await?);
            }
            Ok(found)
        }
        async fn replace_node(&self, _: &Node, _: &Node) -> Result<(), StoreError> {
            Ok(())
        }
        async fn delete_nodes(&self, _: &UserId, _: &[NodeId], _: DateTime<Utc>) -> Result<DeleteOutcome, StoreError> {
            Ok(DeleteOutcome::default())
        }
        async fn mark_deleted(&self, _: &UserId, _: &[NodeId], _: DateTime<Utc>) -> Result<DeleteOutcome, StoreError> {
            Ok(DeleteOutcome::default())
        }
        async fn deletion_queue(&self, _: DateTime<Utc>, _: usize) -> Result<Vec<DeletedNode>, StoreError> {
            Ok(Vec::new())
        }
        async fn purge_deleted(&self, _: &UserId, _: NodeId) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn list_nodes(&self, _: &UserId, _: usize, _: Option<ListCursor>) -> Result<Page<Node>, StoreError> {
            Ok(Page { items: Vec::new(), next: None })
        }
        async fn graph(&self, _: &UserId, _: usize, _: Option<GraphCursor>) -> Result<Graph, StoreError> {
            Ok(Graph::default())
        }
        async fn insert_edge(&self, _: &Edge) -> Result<(), StoreError> {
            Ok(())
        }
        async fn delete_edge(&self, _: &UserId, _: NodeId, _: NodeId) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn node_edges(&self, _: &UserId, _: NodeId) -> Result<Option<Vec<Edge>>, StoreError> {
            Ok(None)
        }
        async fn nodes_with_keyword(&self, _: &UserId, _: &str, _: usize) -> Result<Vec<NodeId>, StoreError> {
            Ok(Vec::new())
        }
        async fn apply_frequency_change(
            &self,
            _: &UserId,
            _: uuid::Uuid,
            _: &[String],
            _: &[String],
            _: i64,
        ) -> Result<bool, StoreError> {
            Ok(true)
        }
        async fn document_frequencies(&self, _: &UserId, _: &[String]) -> Result<DocumentFrequencies, StoreError> {
            Ok(DocumentFrequencies::default())
        }
        async fn check(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    /// A shared tier in memory, for the tier logic; the Redis adapter is exercised against
    /// a real redis-server by the integration suite. `down` makes every call fail.
    #[derive(Default)]
    struct SharedInMemory {
        entries: Mutex<HashMap<(UserId, u64, String), Vec<u8>>>,
        generations: Mutex<HashMap<UserId, u64>>,
        next: AtomicU64,
        down: std::sync::atomic::AtomicBool,
    }

    impl SharedInMemory {
        fn answer(&self) -> Result<(), CacheError> {
            if self.down.load(Ordering::SeqCst) { Err(CacheError::Timeout) } else { Ok(()) }
        }
    }

    #[async_trait]
    impl SharedCache for SharedInMemory {
        async fn generation(&self, user: &UserId) -> Result<u64, CacheError> {
            self.answer()?;
            let mut generations = self.generations.lock().unwrap();
            Ok(*generations.entry(user.clone()).or_insert_with(|| self.next.fetch_add(1, Ordering::SeqCst)))
        }
        async fn advance(&self, user: &UserId) -> Result<(), CacheError> {
            self.answer()?;
            self.generations.lock().unwrap().insert(user.clone(), self.next.fetch_add(1, Ordering::SeqCst));
            Ok(())
        }
        async fn get(
            &self,
            user: &UserId,
            generation: u64,
            slots: &[String],
        ) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
            self.answer()?;
            let entries = self.entries.lock().unwrap();
            Ok(slots.iter().map(|slot| entries.get(&(user.clone(), generation, slot.clone())).cloned()).collect())
        }
        async fn put(&self, user: &UserId, generation: u64, slot: &str, value: Vec<u8>) -> Result<(), CacheError> {
            self.answer()?;
            self.entries.lock().unwrap().insert((user.clone(), generation, slot.to_owned()), value);
            Ok(())
        }
        async fn check(&self) -> Result<(), CacheError> {
            self.answer()
        }
    }

    /// An instance: its own memory tier over `nodes`, sharing `shared`.
    fn instance(nodes: &Arc<Nodes>, shared: &Arc<SharedInMemory>) -> CachedGraphStore {
        let shared: Arc<dyn SharedCache> = shared.clone();
        CachedGraphStore::new(nodes.clone(), &Flags::OPTIMIZED, Duration::from_secs(600), 1 << 20, Some(shared))
    }

    #[tokio::test]
    async fn a_write_through_one_instance_is_read_by_another_and_fills_serve_every_instance() {
        let (nodes, shared) = (Arc::new(Nodes::default()), Arc::new(SharedInMemory::default()));
        let (first, second, third) = (instance(&nodes, &shared), instance(&nodes, &shared), instance(&nodes, &shared));
        let owner = user("owner");
        let node = nodes.add(&owner, "first words");
        assert_eq!(second.get_node(&owner, node.id).await.unwrap().unwrap().content, "first words");
        assert_eq!(third.get_node(&owner, node.id).await.unwrap().unwrap().content, "first words");
        assert_eq!(nodes.reads(), 1, "the second instance's fill served the third");

        let mut revised = node.clone();
        revised.content = "second words".into();
        first.insert_node(&revised).await.unwrap();
        assert_eq!(second.get_node(&owner, node.id).await.unwrap().unwrap().content, "second words");
        assert_eq!(third.get_node(&owner, node.id).await.unwrap().unwrap().content, "second words");
        assert_eq!(nodes.reads(), 2);
        let both = third.get_nodes(&owner, &[node.id, NodeId::generate()]).await.unwrap();
        assert_eq!(both.len(), 1);
        assert_eq!(nodes.reads(), 3, "only the unknown id went to the store");
    }

    #[tokio::test]
    async fn an_entry_of_another_user_found_under_ones_keys_is_never_returned() {
        let (nodes, shared) = (Arc::new(Nodes::default()), Arc::new(SharedInMemory::default()));
        let cache = instance(&nodes, &shared);
        let (owner, stranger) = (user("owner"), user("stranger"));
        let node = nodes.add(&owner, "a private note");
        // The owner's node, planted where the stranger's read of that id would look.
        let generation = shared.generation(&stranger).await.unwrap();
        let planted = serde_json::to_vec(&Entry::Node(Some(node.clone()))).unwrap();
        shared.put(&stranger, generation, &Slot::Node(node.id).name(), planted).await.unwrap();
        assert_eq!(cache.get_node(&stranger, node.id).await.unwrap(), None);
        assert_eq!(nodes.reads(), 1, "the planted entry was refused and the store asked");
    }

    #[tokio::test]
    async fn while_the_shared_tier_cannot_say_the_generation_every_read_goes_to_the_store() {
        let (nodes, shared) = (Arc::new(Nodes::default()), Arc::new(SharedInMemory::default()));
        let (writer, reader) = (instance(&nodes, &shared), instance(&nodes, &shared));
        let owner = user("owner");
        let node = nodes.add(&owner, "first words");
        reader.get_node(&owner, node.id).await.unwrap();
        shared.down.store(true, Ordering::SeqCst);
        let mut revised = node.clone();
        revised.content = "second words".into();
        writer.insert_node(&revised).await.unwrap();
        for _ in 0..3 {
            assert_eq!(reader.get_node(&owner, node.id).await.unwrap().unwrap().content, "second words");
        }
        assert_eq!(nodes.reads(), 4, "no read was answered from memory");
    }

    fn cache_over(nodes: &Arc<Nodes>, max_bytes: u64) -> CachedGraphStore {
        CachedGraphStore::new(nodes.clone(), &Flags::OPTIMIZED, Duration::from_secs(600), max_bytes, None)
    }

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    #[tokio::test]
    async fn one_user_asking_for_random_ids_caches_a_bounded_number_of_misses() {
        let nodes = Arc::new(Nodes::default());
        let budget = 256 * 1024;
        let cache = cache_over(&nodes, budget);
        let (flooder, bystander) = (user("flooder"), user("bystander"));
        let kept = nodes.add(&bystander, "a note its owner reads again and again");
        assert!(cache.get_node(&bystander, kept.id).await.unwrap().is_some());

        for _ in 0..5_000 {
            assert!(cache.get_node(&flooder, NodeId::generate()).await.unwrap().is_none());
        }
        let ids: Vec<NodeId> = (0..1_000).map(|_| NodeId::generate()).collect();
        assert!(cache.get_nodes(&flooder, &ids).await.unwrap().is_empty());

        let (entries, bytes, misses) = cache.usage().await;
        assert!(misses <= MAX_CACHED_MISSES_PER_USER, "{misses} misses cached for one user");
        assert!(bytes <= budget, "{bytes} bytes cached, over the budget of {budget}");
        assert!(entries <= MAX_CACHED_MISSES_PER_USER as u64 + 1, "{entries} entries");
        let before = nodes.reads();
        assert!(cache.get_node(&bystander, kept.id).await.unwrap().is_some());
        assert_eq!(nodes.reads(), before, "the flood did not push another user's read out");
    }

    #[tokio::test]
    async fn large_notes_are_held_up_to_the_byte_budget_not_by_count() {
        let nodes = Arc::new(Nodes::default());
        let budget = 512 * 1024;
        let cache = cache_over(&nodes, budget);
        let owner = user("writer-of-long-notes");
        let long = "lighthouse keeper notes ".repeat(400);
        let ids: Vec<NodeId> = (0..200).map(|_| nodes.add(&owner, &long).id).collect();
        for id in &ids {
            assert!(cache.get_node(&owner, *id).await.unwrap().is_some());
        }
        let (entries, bytes, _) = cache.usage().await;
        assert!(bytes <= budget, "{bytes} bytes cached, over the budget of {budget}");
        assert!(entries < 200, "all {entries} notes of ~10 KB held in a 512 KB budget");
        assert!(entries > 0, "the cache holds what fits");
    }

    #[tokio::test]
    async fn a_write_leaves_earlier_reads_unread() {
        let nodes = Arc::new(Nodes::default());
        let cache = cache_over(&nodes, 1024 * 1024);
        let owner = user("writer");
        let node = nodes.add(&owner, "first words");
        cache.get_node(&owner, node.id).await.unwrap();
        cache.get_node(&owner, node.id).await.unwrap();
        assert_eq!(nodes.reads(), 1, "the second read is cached");
        let mut revised = node.clone();
        revised.content = "second words".into();
        cache.insert_node(&revised).await.unwrap();
        assert_eq!(cache.get_node(&owner, node.id).await.unwrap().unwrap().content, "second words");
        assert_eq!(nodes.reads(), 2);
    }
}
