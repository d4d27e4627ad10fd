import * as fs from 'fs';
import { SCHEMA_FILE } from './paths';

/** How an index projects the table's attributes, as DynamoDB names it. */
export type Projection = 'ALL' | 'KEYS_ONLY' | 'INCLUDE';

export interface IndexSchema {
  readonly name: string;
  readonly partitionKey: string;
  readonly sortKey: string;
  readonly projection: Projection;
  readonly nonKeyAttributes: string[];
}

/**
 * `schema/table.json`: the one description of the table's keys, indexes and TTL, shared
 * with the service (`backend/service/src/adapters/dynamodb/schema.rs`). Every key is a
 * string attribute, as the service declares them.
 */
export interface TableSchema {
  readonly partitionKey: string;
  readonly sortKey: string;
  readonly ttlAttribute: string;
  /** Keyed by the service's name for the index (`keyword`, `deletionQueue`, `userTime`). */
  readonly indexes: Record<string, IndexSchema>;
}

const PROJECTIONS: readonly string[] = ['ALL', 'KEYS_ONLY', 'INCLUDE'];

function text(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new Error(`${SCHEMA_FILE}: ${where} must be a non-empty string`);
  }
  return value;
}

function parseIndex(key: string, raw: Record<string, unknown>): IndexSchema {
  const projection = text(raw.projection, `indexes.${key}.projection`);
  if (!PROJECTIONS.includes(projection)) {
    throw new Error(`${SCHEMA_FILE}: indexes.${key}.projection is ${projection}, not one of ${PROJECTIONS.join(', ')}`);
  }
  const nonKeyAttributes = (raw.nonKeyAttributes ?? []) as unknown[];
  if (!Array.isArray(nonKeyAttributes)) {
    throw new Error(`${SCHEMA_FILE}: indexes.${key}.nonKeyAttributes must be a list`);
  }
  if (projection === 'INCLUDE' && nonKeyAttributes.length === 0) {
    throw new Error(`${SCHEMA_FILE}: indexes.${key} projects INCLUDE but names no nonKeyAttributes`);
  }
  if (projection !== 'INCLUDE' && nonKeyAttributes.length > 0) {
    throw new Error(`${SCHEMA_FILE}: indexes.${key} names nonKeyAttributes but projects ${projection}`);
  }
  return {
    name: text(raw.name, `indexes.${key}.name`),
    partitionKey: text(raw.partitionKey, `indexes.${key}.partitionKey`),
    sortKey: text(raw.sortKey, `indexes.${key}.sortKey`),
    projection: projection as Projection,
    nonKeyAttributes: nonKeyAttributes.map((attribute, i) => text(attribute, `indexes.${key}.nonKeyAttributes[${i}]`)),
  };
}

export function parseTableSchema(json: string): TableSchema {
  const raw = JSON.parse(json) as Record<string, unknown>;
  const indexes = raw.indexes as Record<string, Record<string, unknown>> | undefined;
  if (!indexes || typeof indexes !== 'object' || Object.keys(indexes).length === 0) {
    throw new Error(`${SCHEMA_FILE}: indexes must name at least one index`);
  }
  return {
    partitionKey: text(raw.partitionKey, 'partitionKey'),
    sortKey: text(raw.sortKey, 'sortKey'),
    ttlAttribute: text(raw.ttlAttribute, 'ttlAttribute'),
    indexes: Object.fromEntries(Object.entries(indexes).map(([key, index]) => [key, parseIndex(key, index)])),
  };
}

export function loadTableSchema(file: string = SCHEMA_FILE): TableSchema {
  return parseTableSchema(fs.readFileSync(file, 'utf8'));
}

/** The index the service knows as `key`; the stack fails to build if the schema lacks it. */
export function indexNamed(schema: TableSchema, key: string): IndexSchema {
  const index = schema.indexes[key];
  if (!index) {
    throw new Error(`${SCHEMA_FILE} has no index "${key}" (has: ${Object.keys(schema.indexes).join(', ')})`);
  }
  return index;
}
