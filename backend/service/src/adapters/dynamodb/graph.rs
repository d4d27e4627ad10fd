//! Pages of a user's graph. The user's partition holds each node followed by the edges
//! stored under it (`NODE#<n>`, then `NODE#<n>#EDGE#<m>`), so a page is a stretch of that
//! partition in key order: a Query that starts just after the previous page's last item
//! and stops after `limit` live nodes, or earlier once the page holds [`PAGE_BYTES`] of
//! data (soft-deleted nodes waiting for cleanup included).
//! With `query_not_scan` off, the old filtered Scan of the whole table is kept (every page
//! pays for reading the table), so that the flag's measurement stays honest.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};

use super::items::{self, Item, entity_of};
use super::schema::SCHEMA;
use super::{DynamoGraphStore, batch, keys, sdk_error, string};
use crate::adapters::aws::retry::STORE_RETRY;
use crate::domain::{Edge, NodeId, UserId};
use crate::ports::{Graph, GraphCursor, StoreError};

/// Attributes the graph view needs from node and edge items (`projections` on).
const GRAPH_ATTRIBUTES: &str = "SK, entity, nodeId, userId, content, keywords, displayKeywords, tags, createdAt, \
                                updatedAt, version, deletedAt, sourceId, targetId, weight, kind";
/// Attributes that tell whether a node is live.
const LIVENESS_ATTRIBUTES: &str = "PK, SK, deletedAt";
/// Data one page carries at most (as stored; the JSON of the answer is of the same order),
/// so that no page comes near Lambda's 6 MB response limit, whatever the notes hold.
pub const PAGE_BYTES: usize = 512 * 1024;
/// Items one Query call reads at most: a page of nodes with a few edges each in one call.
const ITEMS_PER_CALL: usize = 1_000;

/// The sort key a page starts after.
fn cursor_sort_key(cursor: GraphCursor) -> String {
    match cursor.edge_to {
        Some(other) => keys::edge_sort_key(cursor.node, other),
        None => keys::node_sort_key(cursor.node),
    }
}

/// Where the page that follows `item` starts, from its sort key.
fn cursor_of(item: &Item) -> Option<GraphCursor> {
    let sort_key = items::string_attribute(item, &SCHEMA.sort_key)?.strip_prefix("NODE#")?;
    match sort_key.split_once("#EDGE#") {
        Some((node, other)) => {
            Some(GraphCursor { node: NodeId::parse(node).ok()?, edge_to: Some(NodeId::parse(other).ok()?) })
        }
        None => Some(GraphCursor { node: NodeId::parse(sort_key).ok()?, edge_to: None }),
    }
}

/// Bytes of data in an item, roughly as DynamoDB counts them: names and values.
fn estimated_bytes(item: &Item) -> usize {
    fn value_bytes(value: &AttributeValue) -> usize {
        match value {
            AttributeValue::S(text) | AttributeValue::N(text) => text.len(),
            AttributeValue::L(list) => list.iter().map(value_bytes).sum::<usize>() + 3,
            AttributeValue::M(map) => {
                map.iter().map(|(name, value)| name.len() + value_bytes(value)).sum::<usize>() + 3
            }
            AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
            _ => 8,
        }
    }
    item.iter().map(|(name, value)| name.len() + value_bytes(value)).sum()
}

/// The items of one page, gathered in key order.
struct PageCollector {
    limit: usize,
    nodes: usize,
    bytes: usize,
    items: Vec<Item>,
    /// Set when an item was left for the next page.
    full: bool,
}

impl PageCollector {
    fn new(limit: usize) -> Self {
        Self { limit, nodes: 0, bytes: 0, items: Vec::new(), full: false }
    }

    /// Takes `item` if the page has room for it; `false` once the page is full. Nodes
    /// waiting for cleanup are not shown, so they count against the byte budget only.
    fn offer(&mut self, item: Item) -> bool {
        let is_node = entity_of(&item) == Some(items::ENTITY_NODE) && !items::is_deleted(&item);
        let bytes = estimated_bytes(&item);
        let over_budget = !self.items.is_empty() && self.bytes + bytes > PAGE_BYTES;
        if (is_node && self.nodes == self.limit) || over_budget {
            self.full = true;
            return false;
        }
        self.nodes += usize::from(is_node);
        self.bytes += bytes;
        self.items.push(item);
        true
    }

    /// Where the next page starts, if there is one.
    fn next(&self) -> Option<GraphCursor> {
        if self.full { self.items.last().and_then(cursor_of) } else { None }
    }
}

impl DynamoGraphStore {
    /// A page of the graph: nodes and the edges stored under them (the copies under their
    /// source), without soft-deleted nodes or edges that touch one.
    pub(super) async fn graph_page(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<GraphCursor>,
    ) -> Result<Graph, StoreError> {
        let page = if self.flags.query_not_scan {
            self.query_page(user, limit, after).await?
        } else {
            self.scan_page(user, limit, after).await?
        };
        let next = page.next();
        let mut graph = Graph { next, ..Graph::default() };
        let mut live = HashSet::new();
        let mut deleted = HashSet::new();
        let mut edges: Vec<Edge> = Vec::new();
        for item in page.items {
            match entity_of(&item) {
                Some(items::ENTITY_NODE) if items::is_deleted(&item) => {
                    deleted.insert(items::node_from_item(item)?.id);
                }
                Some(items::ENTITY_NODE) => {
                    let node = items::node_from_item(item)?;
                    live.insert(node.id);
                    graph.nodes.push(node);
                }
                Some(items::ENTITY_EDGE) => {
                    let (edge, stored_under_source) = items::edge_from_item(user, item)?;
                    if stored_under_source {
                        edges.push(edge);
                    }
                }
                _ => {}
            }
        }
        // Edges of soft-deleted nodes linger until cleanup; they are not part of the graph.
        // Ends that are not on this page are looked up, only whether they are live.
        let elsewhere: HashSet<NodeId> = edges
            .iter()
            .flat_map(|edge| [edge.source, edge.target])
            .filter(|id| !live.contains(id) && !deleted.contains(id))
            .collect();
        live.extend(self.live_among(user, elsewhere).await?);
        graph.edges = edges.into_iter().filter(|e| live.contains(&e.source) && live.contains(&e.target)).collect();
        Ok(graph)
    }

    /// Which of `ids` are live nodes of the user.
    async fn live_among(&self, user: &UserId, ids: HashSet<NodeId>) -> Result<Vec<NodeId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys = ids.into_iter().map(|id| items::node_key(user, id)).collect();
        let found =
            batch::get_all_projected(&self.client(), &self.table, keys, self.batch_policy(), LIVENESS_ATTRIBUTES)
                .await?;
        Ok(found
            .iter()
            .filter(|item| !items::is_deleted(item))
            .filter_map(|item| cursor_of(item).filter(|position| position.edge_to.is_none()))
            .map(|position| position.node)
            .collect())
    }

    /// A Query from just after `after`, read call by call until the page is full.
    async fn query_page(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<GraphCursor>,
    ) -> Result<PageCollector, StoreError> {
        let mut query = self
            .query_partition(keys::user_partition(user))
            .limit(i32::try_from((limit + 1).saturating_mul(4).min(ITEMS_PER_CALL)).unwrap_or(i32::MAX));
        if let Some(cursor) = after {
            query = query
                .key_condition_expression("#pk = :pk AND #sk > :after")
                .expression_attribute_names("#sk", &SCHEMA.sort_key)
                .expression_attribute_values(":after", string(cursor_sort_key(cursor)));
        }
        if self.flags.projections {
            query = query.projection_expression(GRAPH_ATTRIBUTES);
        }
        let mut page = PageCollector::new(limit);
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let call = query.clone().set_exclusive_start_key(start.clone());
            let output =
                STORE_RETRY.run(|| async { call.clone().send().await.map_err(sdk_error) }, batch::is_throttled).await?;
            for item in output.items.unwrap_or_default() {
                if !page.offer(item) {
                    return Ok(page);
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(page),
            }
        }
    }

    /// The old way: a Scan of the whole table filtered to the user's partition, then the
    /// page cut out of it.
    async fn scan_page(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<GraphCursor>,
    ) -> Result<PageCollector, StoreError> {
        let mut scan = self
            .client()
            .scan()
            .table_name(&self.table)
            .filter_expression("#pk = :pk")
            .expression_attribute_names("#pk", &SCHEMA.partition_key)
            .expression_attribute_values(":pk", string(keys::user_partition(user)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        if self.flags.projections {
            scan = scan.projection_expression(GRAPH_ATTRIBUTES);
        }
        let mut all: Vec<Item> = scan.into_paginator().items().send().try_collect().await.map_err(sdk_error)?;
        let sort_key = |item: &Item| items::string_attribute(item, &SCHEMA.sort_key).unwrap_or_default().to_owned();
        all.sort_by_cached_key(sort_key);
        let start = after.map(cursor_sort_key);
        let mut page = PageCollector::new(limit);
        for item in all.into_iter().filter(|item| start.as_ref().is_none_or(|start| sort_key(item) > *start)) {
            if !page.offer(item) {
                break;
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sort_key: String, entity: &str, content_bytes: usize) -> Item {
        HashMap::from([
            (SCHEMA.sort_key.clone(), AttributeValue::S(sort_key)),
            ("entity".to_owned(), AttributeValue::S(entity.to_owned())),
            ("content".to_owned(), AttributeValue::S("x".repeat(content_bytes))),
        ])
    }

    #[test]
    fn a_page_ends_after_limit_nodes_with_their_edges() {
        let (a, b, c) = (NodeId::generate(), NodeId::generate(), NodeId::generate());
        let mut page = PageCollector::new(2);
        assert!(page.offer(item(keys::node_sort_key(a), items::ENTITY_NODE, 10)));
        assert!(page.offer(item(keys::edge_sort_key(a, c), items::ENTITY_EDGE, 0)));
        assert!(page.offer(item(keys::node_sort_key(b), items::ENTITY_NODE, 10)));
        assert!(page.offer(item(keys::edge_sort_key(b, a), items::ENTITY_EDGE, 0)));
        assert!(!page.offer(item(keys::node_sort_key(c), items::ENTITY_NODE, 10)));
        assert_eq!(page.items.len(), 4);
        assert_eq!(page.next(), Some(GraphCursor { node: b, edge_to: Some(a) }));
        assert_eq!(cursor_sort_key(page.next().unwrap()), keys::edge_sort_key(b, a));
    }

    #[test]
    fn a_page_ends_early_at_its_byte_budget_but_never_empty() {
        let mut page = PageCollector::new(500);
        let big = PAGE_BYTES / 3;
        let ids: Vec<NodeId> = (0..4).map(|_| NodeId::generate()).collect();
        let taken = ids.iter().take_while(|id| page.offer(item(keys::node_sort_key(**id), "node", big))).count();
        assert_eq!(taken, 2, "a third of the budget each: the third would pass it");
        assert_eq!(page.next(), Some(GraphCursor { node: ids[1], edge_to: None }));
        let mut single = PageCollector::new(500);
        assert!(single.offer(item(keys::node_sort_key(ids[0]), "node", PAGE_BYTES * 2)), "one item always fits");
    }

    #[test]
    fn the_last_page_has_no_next() {
        let mut page = PageCollector::new(5);
        assert!(page.offer(item(keys::node_sort_key(NodeId::generate()), "node", 1)));
        assert_eq!(page.next(), None);
    }
}
