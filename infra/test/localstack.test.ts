import * as fs from 'fs';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { readConfig } from '../lib/config';
import { MAX_RECEIVES } from '../lib/constructs/messaging';
import { CLEANUP_DETAIL_TYPES, EVENT_SOURCE, REALTIME_DETAIL_TYPES, SIMILARITY_DETAIL_TYPES } from '../lib/events';
import { INLINE_TEMPLATE_LIMIT_BYTES } from '../lib/synthesizer';
import { cdkJsonContext, expectIndexesOfSchema, logicalId, ofType, only, repoFile, synthesize, Synthesized, tempDir } from './helpers';

// The file as the service reads it, parsed here without the stack's loader.
const schema = JSON.parse(repoFile('schema', 'table.json'));
const indexes: any[] = Object.values(schema.indexes);

/** What LocalStack's community edition creates without a container engine. */
const DATA_PLANE_TYPES = ['AWS::DynamoDB::Table', 'AWS::Events::EventBus', 'AWS::Events::Rule', 'AWS::SQS::Queue', 'AWS::SQS::QueuePolicy'];

let aws: Synthesized;
let local: Synthesized;

beforeAll(() => {
  aws = synthesize();
  // As make deploy passes it: no stub may stand in for function code, and none is needed.
  local = synthesize({ target: 'localstack', allowStubAssets: 'false' });
});

function stackArtifact(synth: Synthesized) {
  return synth.app.synth().getStackArtifact(synth.stack.artifactId);
}

test('target is aws unless set, and only aws or localstack', () => {
  expect(readConfig(new App({ context: cdkJsonContext() }).node).target).toBe('aws');
  expect(aws.stack.target).toBe('aws');
  expect(local.stack.target).toBe('localstack');
  expect(() => readConfig(new App({ context: { target: 'gcp' } }).node)).toThrow(/context target must be one of aws, localstack, got gcp/);
});

test('only the table, the bus, its rules and the queues: no function, API, auth, secret, log, alarm or dashboard', () => {
  const types = new Set(Object.values(local.json.Resources).map((resource) => resource.Type));
  expect([...types].sort()).toEqual(DATA_PLANE_TYPES);
  for (const family of ['AWS::Lambda::', 'AWS::ApiGateway::', 'AWS::ApiGatewayV2::', 'AWS::Cognito::', 'AWS::SecretsManager::', 'AWS::CloudWatch::', 'AWS::Logs::', 'AWS::IAM::']) {
    expect({ family, found: [...types].filter((type) => type.startsWith(family)) }).toEqual({ family, found: [] });
  }
  expect(local.stack.service).toBeUndefined();
  // The aws target still has all of them.
  for (const type of ['AWS::Lambda::Function', 'AWS::ApiGateway::RestApi', 'AWS::Cognito::UserPool', 'AWS::CloudWatch::Alarm', 'AWS::CloudWatch::Dashboard']) {
    expect(Object.keys(ofType(aws.json, type)).length).toBeGreaterThan(0);
  }
});

test('the table has the keys and indexes of schema/table.json, and is the aws target\'s table', () => {
  const [id, table] = only(ofType(local.json, 'AWS::DynamoDB::Table'), 'table');
  expect(table.Properties.KeySchema).toEqual([
    { AttributeName: schema.partitionKey, KeyType: 'HASH' },
    { AttributeName: schema.sortKey, KeyType: 'RANGE' },
  ]);
  expectIndexesOfSchema(table, indexes);
  const names = table.Properties.GlobalSecondaryIndexes.map((gsi: any) => gsi.IndexName);
  expect(names).toEqual(expect.arrayContaining(['KeywordIndex', 'DeletionQueue', 'UserTimeIndex']));
  expect(table.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_AND_OLD_IMAGES' });
  expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: schema.ttlAttribute, Enabled: true });
  // Same construct, same logical id, same definition: what runs against LocalStack is the real table.
  expect(id).toBe(logicalId(aws.stack, aws.stack.data.table));
  expect(table).toEqual(aws.json.Resources[id]);
});

test('the bus and the three rules, with the aws target\'s event patterns and queue targets', () => {
  const [busId, bus] = only(ofType(local.json, 'AWS::Events::EventBus'), 'bus');
  expect(bus).toEqual(aws.json.Resources[busId]);
  expect(bus.Properties.Name).toBe('brain2');

  const rules = ofType(local.json, 'AWS::Events::Rule');
  const m = local.stack.messaging;
  const expected: [string, string, readonly string[]][] = [
    [logicalId(local.stack, m.cleanup.rule), logicalId(local.stack, m.cleanup.queue), CLEANUP_DETAIL_TYPES],
    [logicalId(local.stack, m.similarity.rule), logicalId(local.stack, m.similarity.queue), SIMILARITY_DETAIL_TYPES],
    [logicalId(local.stack, m.realtime.rule), logicalId(local.stack, m.realtime.queue), REALTIME_DETAIL_TYPES],
  ];
  expect(Object.keys(rules).sort()).toEqual(expected.map(([rule]) => rule).sort());
  for (const [ruleId, queueId, detailTypes] of expected) {
    const rule = rules[ruleId];
    expect(rule.Properties.EventBusName).toEqual({ Ref: busId });
    expect(rule.Properties.EventPattern).toEqual({ source: [EVENT_SOURCE], 'detail-type': [...detailTypes] });
    expect(rule.Properties.Targets.map((target: any) => target.Arn)).toEqual([{ 'Fn::GetAtt': [queueId, 'Arn'] }]);
    expect(rule).toEqual(aws.json.Resources[ruleId]);
  }
});

test('the eight queues with their redrive policies and queue policies, as on the aws target', () => {
  const queues = ofType(local.json, 'AWS::SQS::Queue');
  const m = local.stack.messaging;
  expect(Object.keys(queues).sort()).toEqual(m.queues.map((queue) => logicalId(local.stack, queue)).sort());
  expect(Object.keys(queues)).toHaveLength(8);
  for (const channel of [m.cleanup, m.similarity, m.realtime]) {
    const redrive = queues[logicalId(local.stack, channel.queue)].Properties.RedrivePolicy;
    expect(redrive).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [logicalId(local.stack, channel.deadLetterQueue), 'Arn'] },
      maxReceiveCount: MAX_RECEIVES,
    });
  }
  for (const deadLetterQueue of [
    m.cleanup.deadLetterQueue,
    m.similarity.deadLetterQueue,
    m.realtime.deadLetterQueue,
    m.publishDeadLetterQueue,
    m.streamFailuresQueue,
  ]) {
    expect(queues[logicalId(local.stack, deadLetterQueue)].Properties.RedrivePolicy).toBeUndefined();
  }
  for (const type of ['AWS::SQS::Queue', 'AWS::SQS::QueuePolicy']) {
    const here = ofType(local.json, type);
    expect(Object.keys(here).length).toBeGreaterThan(0);
    expect(here).toEqual(ofType(aws.json, type));
  }
});

test('outputs: the table, the bus and every queue, for a script to read from cdk deploy --outputs-file', () => {
  const outputs = local.json.Outputs ?? {};
  const m = local.stack.messaging;
  const ref = (construct: unknown) => ({ Ref: logicalId(local.stack, construct) });
  const values = Object.fromEntries(Object.entries(outputs).map(([name, output]) => [name, output.Value]));
  expect(values).toEqual({
    TableName: ref(local.stack.data.table),
    EventBusName: ref(m.bus),
    // A queue's Ref is its URL.
    CleanupQueueUrl: ref(m.cleanup.queue),
    CleanupDeadLetterQueueUrl: ref(m.cleanup.deadLetterQueue),
    SimilarityQueueUrl: ref(m.similarity.queue),
    SimilarityDeadLetterQueueUrl: ref(m.similarity.deadLetterQueue),
    // What whatever plays the broadcast function's part reads (no WebSocket API here).
    RealtimeQueueUrl: ref(m.realtime.queue),
    RealtimeDeadLetterQueueUrl: ref(m.realtime.deadLetterQueue),
    PublishDeadLetterQueueUrl: ref(m.publishDeadLetterQueue),
    // Where whatever plays the events function's part sends the records it cannot publish.
    StreamFailuresQueueUrl: ref(m.streamFailuresQueue),
  });
});

test('the aws target keeps its outputs, and gets none of the worker queues\' (its functions consume them)', () => {
  expect(Object.keys(aws.json.Outputs ?? {}).filter((name) => !name.startsWith('ApiRestApiEndpoint')).sort()).toEqual(
    [
      'AlarmTopicArn',
      'ApiFunctionName',
      'ApiUrl',
      'Dashboards',
      'EventBusName',
      'PublishDeadLetterQueueUrl',
      'RestApiName',
      'StageName',
      'StreamFailuresQueueUrl',
      'TableName',
      'UserPoolClientId',
      'UserPoolId',
    ],
  );
});

test('deploys without cdk bootstrap: no bootstrap version check, no role to assume, the template sent inline', () => {
  expect(local.json.Parameters?.BootstrapVersion).toBeUndefined();
  expect(local.json.Rules?.CheckBootstrapVersion).toBeUndefined();
  const artifact = stackArtifact(local);
  expect(artifact.assumeRoleArn).toBeUndefined();
  expect(artifact.cloudFormationExecutionRoleArn).toBeUndefined();
  expect(artifact.requiresBootstrapStackVersion).toBeUndefined();
  expect(artifact.bootstrapStackVersionSsmParameter).toBeUndefined();
  expect(artifact.stackTemplateAssetObjectUrl).toBeUndefined();
  expect(fs.statSync(artifact.templateFullPath).size).toBeLessThan(INLINE_TEMPLATE_LIMIT_BYTES);

  // The aws target is bootstrapped as before.
  expect(aws.json.Parameters?.BootstrapVersion).toBeDefined();
  expect(aws.json.Rules?.CheckBootstrapVersion).toBeDefined();
  const bootstrapped = stackArtifact(aws);
  expect(bootstrapped.assumeRoleArn).toContain('cdk-hnb659fds-deploy-role');
  expect(bootstrapped.requiresBootstrapStackVersion).toBeGreaterThan(0);
  expect(bootstrapped.stackTemplateAssetObjectUrl).toContain('cdk-hnb659fds-assets');
});

test('an asset on the localstack target fails the synth, not the deploy', () => {
  const other = synthesize({ target: 'localstack' });
  const dir = tempDir('brain2-asset-');
  fs.writeFileSync(path.join(dir, 'bootstrap'), 'code');
  expect(() => new Asset(other.stack, 'Code', { path: dir })).toThrow(/deploys without cdk bootstrap and so cannot have assets/);
});
