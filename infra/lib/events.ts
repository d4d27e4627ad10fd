/**
 * The domain events as the service publishes them (docs/events.md;
 * `EVENT_SOURCE` in backend/service/src/adapters/eventbridge/mod.rs and the detail types
 * in backend/service/src/domain/events.rs). A test checks these against the Rust code.
 */
export const EVENT_SOURCE = 'brain2.backend';

export const DetailType = {
  NodeCreated: 'node.created',
  NodeUpdated: 'node.updated',
  NodeDeleted: 'node.deleted',
  EdgeCreated: 'edge.created',
  EdgeDeleted: 'edge.deleted',
} as const;

/** What the cleanup worker acts on: the purge of a soft-deleted node. */
export const CLEANUP_DETAIL_TYPES: readonly string[] = [DetailType.NodeDeleted];

/**
 * What the similarity worker acts on: created and updated notes get linked, and every
 * change (deletes included) moves the per-user keyword document frequencies.
 */
export const SIMILARITY_DETAIL_TYPES: readonly string[] = [
  DetailType.NodeCreated,
  DetailType.NodeUpdated,
  DetailType.NodeDeleted,
];

/**
 * What clients see live (the realtime broadcast function): every change of a node or an
 * edge, which it writes to the user's event log and posts to the user's open connections.
 */
export const REALTIME_DETAIL_TYPES: readonly string[] = [
  DetailType.NodeCreated,
  DetailType.NodeUpdated,
  DetailType.NodeDeleted,
  DetailType.EdgeCreated,
  DetailType.EdgeDeleted,
];
