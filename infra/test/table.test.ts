import { Match } from 'aws-cdk-lib/assertions';
import { parseTableSchema } from '../lib/schema';
import { expectIndexesOfSchema, ofType, only, repoFile, synthesize, Synthesized } from './helpers';

// The file as the service reads it, parsed here without the stack's loader.
const schema = JSON.parse(repoFile('schema', 'table.json'));
const indexes: any[] = Object.values(schema.indexes);

let synth: Synthesized;
let table: any;

beforeAll(() => {
  synth = synthesize();
  table = only(ofType(synth.json, 'AWS::DynamoDB::Table'), 'table')[1];
});

test('keys are the schema file\'s partition and sort key, as strings', () => {
  expect(table.Properties.KeySchema).toEqual([
    { AttributeName: schema.partitionKey, KeyType: 'HASH' },
    { AttributeName: schema.sortKey, KeyType: 'RANGE' },
  ]);
  for (const definition of table.Properties.AttributeDefinitions) {
    expect(definition.AttributeType).toBe('S');
  }
});

test('every index of schema/table.json is on the table with its keys and projection, and no other', () => {
  expectIndexesOfSchema(table, indexes);
  const defined = table.Properties.AttributeDefinitions.map((definition: any) => definition.AttributeName).sort();
  const keys = [schema.partitionKey, schema.sortKey, ...indexes.flatMap((index) => [index.partitionKey, index.sortKey])];
  expect(defined).toEqual([...new Set(keys)].sort());
});

test('the three indexes the service names exist with the projections the design asks for', () => {
  const byName = Object.fromEntries(table.Properties.GlobalSecondaryIndexes.map((gsi: any) => [gsi.IndexName, gsi]));
  expect(byName.KeywordIndex.Projection.ProjectionType).toMatch(/^(INCLUDE|ALL)$/);
  expect(byName.DeletionQueue.Projection).toEqual({ ProjectionType: 'KEYS_ONLY' });
  expect(byName.UserTimeIndex.Projection.ProjectionType).toMatch(/^(INCLUDE|ALL)$/);
});

test('on demand, point-in-time recovery, a stream of new and old images, TTL, deletion protection', () => {
  synth.template.hasResource('AWS::DynamoDB::Table', {
    DeletionPolicy: 'Retain',
    UpdateReplacePolicy: 'Retain',
    Properties: Match.objectLike({
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      TimeToLiveSpecification: { AttributeName: schema.ttlAttribute, Enabled: true },
      DeletionProtectionEnabled: true,
    }),
  });
});

test('a change to the schema file changes the table: an added index appears', () => {
  const changed = JSON.parse(repoFile('schema', 'table.json'));
  changed.indexes.byTag = { name: 'TagIndex', partitionKey: 'GSI4PK', sortKey: 'GSI4SK', projection: 'KEYS_ONLY' };
  const other = synthesize({}, { schema: parseTableSchema(JSON.stringify(changed)) });
  const gsis = only(ofType(other.json, 'AWS::DynamoDB::Table'), 'table')[1].Properties.GlobalSecondaryIndexes;
  expect(gsis.map((gsi: any) => gsi.IndexName)).toContain('TagIndex');
  expect(gsis).toHaveLength(indexes.length + 1);
});

test('a schema the service could not use is refused', () => {
  const broken = JSON.parse(repoFile('schema', 'table.json'));
  broken.indexes.keyword.nonKeyAttributes = [];
  expect(() => parseTableSchema(JSON.stringify(broken))).toThrow(/INCLUDE but names no nonKeyAttributes/);
  const unknown = JSON.parse(repoFile('schema', 'table.json'));
  unknown.indexes.userTime.projection = 'SOME';
  expect(() => parseTableSchema(JSON.stringify(unknown))).toThrow(/projection is SOME/);
});
