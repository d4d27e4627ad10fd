//! The similarity worker: keeps each user's document frequencies, links a created or
//! updated note to the notes most like it (`similarity` edges weighted by TF-IDF cosine),
//! and unlinks the notes it is no longer like enough.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use crate::domain::similarity::{Candidate, DocumentFrequencies, SimilarityPolicy, best_matches, stale_links};
use crate::domain::{DomainEvent, Edge, EdgeKind, EdgeWeight, NodeId, UserId};
use crate::ports::{EventPublisher, GraphStore, StoreError};
use crate::telemetry::metric;

/// Notes read per keyword when looking for candidates: enough for the strongest matches
/// of a personal graph, bounded so one popular keyword cannot make a note expensive.
const CANDIDATES_PER_KEYWORD: usize = 50;

/// A change to a note, as the worker receives it from the bus.
#[derive(Debug, Clone, PartialEq)]
pub enum NoteChange {
    Created { event_id: Uuid, user_id: UserId, node_id: NodeId, keywords: Vec<String> },
    Updated { event_id: Uuid, user_id: UserId, node_id: NodeId, keywords: Vec<String>, previous_keywords: Vec<String> },
    Deleted { event_id: Uuid, user_id: UserId, node_id: NodeId, keywords: Vec<String> },
}

pub struct SimilarityWorker {
    store: Arc<dyn GraphStore>,
    events: Arc<dyn EventPublisher>,
    policy: SimilarityPolicy,
}

impl SimilarityWorker {
    pub fn new(store: Arc<dyn GraphStore>, events: Arc<dyn EventPublisher>, policy: SimilarityPolicy) -> Self {
        Self { store, events, policy }
    }

    /// Handles one change; safe to repeat (counters are applied once per event, edges
    /// that exist are not written again, edges gone are not deleted again). Returns the
    /// similarity edges it created.
    pub async fn handle(&self, change: &NoteChange) -> Result<Vec<Edge>, StoreError> {
        match change {
            NoteChange::Created { event_id, user_id, node_id, keywords } => {
                self.store.apply_frequency_change(user_id, *event_id, keywords, &[], 1).await?;
                self.link_similar(user_id, *node_id).await
            }
            NoteChange::Updated { event_id, user_id, node_id, keywords, previous_keywords } => {
                self.store.apply_frequency_change(user_id, *event_id, keywords, previous_keywords, 0).await?;
                self.link_similar(user_id, *node_id).await
            }
            NoteChange::Deleted { event_id, user_id, keywords, .. } => {
                self.store.apply_frequency_change(user_id, *event_id, &[], keywords, -1).await?;
                Ok(Vec::new())
            }
        }
    }

    async fn link_similar(&self, user: &UserId, id: NodeId) -> Result<Vec<Edge>, StoreError> {
        // The note as it is now: a deleted note gets no edges, an updated one is scored
        // on its latest keywords whatever event version arrived.
        let Some(node) = self.store.get_node(user, id).await? else { return Ok(Vec::new()) };
        let Some(adjacent) = self.store.node_edges(user, id).await? else { return Ok(Vec::new()) };
        // Similarity edges, whichever of the two notes created them; manual edges are the
        // user's and never touched here.
        let linked: Vec<Edge> = adjacent.into_iter().filter(|edge| edge.kind == EdgeKind::Similarity).collect();
        let mut candidate_ids: HashSet<NodeId> = linked.iter().map(|edge| edge.other_end(id)).collect();
        for keyword in &node.keywords {
            candidate_ids.extend(self.store.nodes_with_keyword(user, keyword, CANDIDATES_PER_KEYWORD).await?);
        }
        candidate_ids.remove(&id);
        if candidate_ids.is_empty() {
            return Ok(Vec::new());
        }
        let candidates = self.store.get_nodes(user, &candidate_ids.into_iter().collect::<Vec<_>>()).await?;
        let mut vocabulary: Vec<String> = node.keywords.clone();
        vocabulary.extend(candidates.iter().flat_map(|c| c.keywords.iter().cloned()));
        vocabulary.sort();
        vocabulary.dedup();
        let frequencies = self.store.document_frequencies(user, &vocabulary).await?;
        let scored: Vec<Candidate<'_>> =
            candidates.iter().map(|c| Candidate { id: c.id, keywords: &c.keywords }).collect();
        self.unlink_stale(user, id, &node.keywords, &linked, &scored, &frequencies).await?;
        let mut created = Vec::new();
        for matched in best_matches(id, &node.keywords, &scored, &frequencies, &self.policy) {
            let Ok(weight) = EdgeWeight::new(matched.score) else { continue };
            let Ok(edge) = Edge::new(user.clone(), id, matched.id, weight, EdgeKind::Similarity, Utc::now()) else {
                continue;
            };
            match self.store.insert_edge(&edge).await {
                Ok(()) => created.push(edge),
                // Linked already (by hand, or by an earlier delivery of this event), or
                // the other note went away meanwhile: nothing to do.
                Err(StoreError::EdgeExists | StoreError::NodeMissing) => {}
                Err(other) => return Err(other),
            }
        }
        metric::similarity_edges_linked(created.len());
        if !created.is_empty()
            && let Err(error) = self.events.publish(created.iter().map(DomainEvent::edge_created).collect()).await
        {
            tracing::error!(%error, "edge events were not published");
        }
        Ok(created)
    }

    /// Deletes the similarity edges of note `id` whose other end is no longer similar
    /// enough. An other end that is gone keeps its edge here: its purge removes it.
    async fn unlink_stale(
        &self,
        user: &UserId,
        id: NodeId,
        keywords: &[String],
        linked: &[Edge],
        scored: &[Candidate<'_>],
        frequencies: &DocumentFrequencies,
    ) -> Result<(), StoreError> {
        let linked_ids: HashSet<NodeId> = linked.iter().map(|edge| edge.other_end(id)).collect();
        let still_linked: Vec<Candidate<'_>> =
            scored.iter().filter(|candidate| linked_ids.contains(&candidate.id)).copied().collect();
        let stale: HashSet<NodeId> =
            stale_links(keywords, &still_linked, frequencies, &self.policy).into_iter().collect();
        let mut events = Vec::new();
        for edge in linked.iter().filter(|edge| stale.contains(&edge.other_end(id))) {
            // `false`: deleted already (an earlier delivery of this event, or the user).
            if self.store.delete_edge(user, edge.source, edge.target).await? {
                events.push(DomainEvent::edge_deleted(user, edge.source, edge.target, Utc::now()));
            }
        }
        if !events.is_empty() {
            tracing::debug!(note = %id, unlinked = events.len(), "similarity edges removed");
        }
        if !events.is_empty()
            && let Err(error) = self.events.publish(events).await
        {
            tracing::error!(%error, "edge events were not published");
        }
        Ok(())
    }
}
