/**
 * What each function may do with the table, from the calls the service makes
 * (backend/service/src/adapters/dynamodb): the item-level actions on the table and the
 * indexes it queries, each index named (no `index/*`). Transactions need the action of
 * each item they write (PutItem, DeleteItem, UpdateItem, ConditionCheckItem) besides
 * TransactWriteItems itself.
 */
export interface TableAccess {
  readonly tableActions: readonly string[];
  /** Keys of `schema/table.json` indexes the function queries. */
  readonly queriedIndexes: readonly string[];
}

export const API_TABLE_ACCESS: TableAccess = {
  tableActions: [
    'dynamodb:GetItem',
    'dynamodb:BatchGetItem',
    'dynamodb:Query',
    // Only the `baseline` profile's graph fetch (query_not_scan off) scans, to measure what the Query saves.
    'dynamodb:Scan',
    'dynamodb:PutItem',
    'dynamodb:DeleteItem',
    'dynamodb:BatchWriteItem',
    'dynamodb:TransactWriteItems',
    'dynamodb:ConditionCheckItem',
    // The health check.
    'dynamodb:DescribeTable',
  ],
  queriedIndexes: ['keyword', 'userTime'],
};

export const CLEANUP_TABLE_ACCESS: TableAccess = {
  // Reads the marked node and its edges, deletes edges, postings and the node item.
  tableActions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'],
  queriedIndexes: ['deletionQueue'],
};

export const SIMILARITY_TABLE_ACCESS: TableAccess = {
  // Reads notes and keyword counters, writes counters (transactions of Put and Update)
  // and similarity edges (transactions of ConditionCheck and Put).
  tableActions: [
    'dynamodb:GetItem',
    'dynamodb:BatchGetItem',
    'dynamodb:Query',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:ConditionCheckItem',
    'dynamodb:TransactWriteItems',
  ],
  queriedIndexes: ['keyword'],
};

export const EVENTS_TABLE_ACCESS: TableAccess = {
  // Reads the table's stream, never its items: the records carry the item images it turns
  // into events. The stream read is granted with its event source (compute.ts).
  tableActions: [],
  queriedIndexes: [],
};

export const REALTIME_CONNECTIONS_TABLE_ACCESS: TableAccess = {
  // $connect writes the connection item and its lookup item in one transaction (which may
  // hold condition checks); $disconnect reads the lookup item and deletes both (a transaction
  // of two Deletes); $default reads the lookup item and updates the connection item.
  tableActions: [
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:DeleteItem',
    'dynamodb:UpdateItem',
    'dynamodb:TransactWriteItems',
    'dynamodb:ConditionCheckItem',
  ],
  queriedIndexes: [],
};

export const REALTIME_BROADCAST_TABLE_ACCESS: TableAccess = {
  // Writes each event to the user's event log (BatchWriteItem, PutItem), queries the user's
  // connection items on the base table (no index), reads single items (GetItem), and
  // deletes the connection and lookup items of connections that are gone
  // (TransactWriteItems, DeleteItem or BatchWriteItem).
  tableActions: [
    'dynamodb:Query',
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:BatchWriteItem',
    'dynamodb:DeleteItem',
    'dynamodb:TransactWriteItems',
  ],
  queriedIndexes: [],
};
