import { CLEANUP_DETAIL_TYPES, DetailType, EVENT_SOURCE, REALTIME_DETAIL_TYPES, SIMILARITY_DETAIL_TYPES } from '../lib/events';
import { MAX_RECEIVES } from '../lib/constructs/messaging';
import { asList, logicalId, ofType, repoFile, synthesize, Synthesized } from './helpers';

let synth: Synthesized;
let ids: {
  bus: string;
  cleanupQueue: string;
  cleanupDlq: string;
  similarityQueue: string;
  similarityDlq: string;
  realtimeQueue: string;
  realtimeDlq: string;
  publishDlq: string;
  streamFailures: string;
  cleanupRule: string;
  similarityRule: string;
  realtimeRule: string;
};

beforeAll(() => {
  synth = synthesize();
  const { stack } = synth;
  const m = stack.messaging;
  ids = {
    bus: logicalId(stack, m.bus),
    cleanupQueue: logicalId(stack, m.cleanup.queue),
    cleanupDlq: logicalId(stack, m.cleanup.deadLetterQueue),
    similarityQueue: logicalId(stack, m.similarity.queue),
    similarityDlq: logicalId(stack, m.similarity.deadLetterQueue),
    realtimeQueue: logicalId(stack, m.realtime.queue),
    realtimeDlq: logicalId(stack, m.realtime.deadLetterQueue),
    publishDlq: logicalId(stack, m.publishDeadLetterQueue),
    streamFailures: logicalId(stack, m.streamFailuresQueue),
    cleanupRule: logicalId(stack, m.cleanup.rule),
    similarityRule: logicalId(stack, m.similarity.rule),
    realtimeRule: logicalId(stack, m.realtime.rule),
  };
});

test('the source and detail types are the ones the service publishes', () => {
  expect(repoFile('backend', 'service', 'src', 'adapters', 'eventbridge', 'mod.rs')).toContain(
    `pub const EVENT_SOURCE: &str = "${EVENT_SOURCE}";`,
  );
  const events = repoFile('backend', 'service', 'src', 'domain', 'events.rs');
  const docs = repoFile('docs', 'events.md');
  for (const detailType of Object.values(DetailType)) {
    expect(events).toContain(`=> "${detailType}"`);
    expect(docs).toContain(`\`${detailType}\``);
  }
  // The worker reads exactly these (backend/service/src/worker.rs): deletes go to cleanup,
  // every note change to similarity.
  const worker = repoFile('backend', 'service', 'src', 'worker.rs');
  for (const detailType of SIMILARITY_DETAIL_TYPES) expect(worker).toContain(`Some("${detailType}")`);
});

test('the bus is named after the prefix', () => {
  synth.template.hasResourceProperties('AWS::Events::EventBus', { Name: 'brain2' });
});

test.each([
  ['cleanup', () => ids.cleanupRule, () => ids.cleanupQueue, CLEANUP_DETAIL_TYPES],
  ['similarity', () => ids.similarityRule, () => ids.similarityQueue, SIMILARITY_DETAIL_TYPES],
  ['realtime', () => ids.realtimeRule, () => ids.realtimeQueue, REALTIME_DETAIL_TYPES],
])('the %s rule sends its events from the bus to its queue, and the queue lets only that rule in', (name, rule, queue, detailTypes) => {
  const props = synth.json.Resources[rule()].Properties;
  expect(props.Name).toBe(`brain2-${name}`);
  expect(props.EventBusName).toEqual({ Ref: ids.bus });
  expect(props.EventPattern).toEqual({ source: [EVENT_SOURCE], 'detail-type': [...detailTypes] });
  expect(props.Targets).toHaveLength(1);
  expect(props.Targets[0].Arn).toEqual({ 'Fn::GetAtt': [queue(), 'Arn'] });

  const policies = Object.values(ofType(synth.json, 'AWS::SQS::QueuePolicy')).filter((policy) =>
    policy.Properties.Queues.some((q: any) => q.Ref === queue()),
  );
  const statements = policies.flatMap((policy) => policy.Properties.PolicyDocument.Statement);
  const delivery = statements.filter((s: any) => s.Effect === 'Allow' && s.Principal?.Service === 'events.amazonaws.com');
  expect(delivery).toHaveLength(1);
  expect(asList(delivery[0].Action)).toContain('sqs:SendMessage');
  expect(delivery[0].Resource).toEqual({ 'Fn::GetAtt': [queue(), 'Arn'] });
  expect(delivery[0].Condition).toEqual({ ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [rule(), 'Arn'] } } });
});

test('cleanup takes node.deleted only; similarity takes every note change; realtime takes every node and edge change', () => {
  expect(CLEANUP_DETAIL_TYPES).toEqual(['node.deleted']);
  expect([...SIMILARITY_DETAIL_TYPES].sort()).toEqual(['node.created', 'node.deleted', 'node.updated']);
  expect([...REALTIME_DETAIL_TYPES].sort()).toEqual(['edge.created', 'edge.deleted', 'node.created', 'node.deleted', 'node.updated']);
  expect([...REALTIME_DETAIL_TYPES].sort()).toEqual(Object.values(DetailType).sort());
});

test('every queue is a dead-letter queue or redrives to one after five receives', () => {
  const queues = ofType(synth.json, 'AWS::SQS::Queue');
  expect(Object.keys(queues)).toHaveLength(8);
  const deadLetterTargets = new Set(
    Object.values(queues)
      .map((queue) => queue.Properties.RedrivePolicy?.deadLetterTargetArn?.['Fn::GetAtt']?.[0])
      .filter(Boolean),
  );
  // The publisher's dead-letter queue is written to by the service itself (BRAIN2_EVENTS_DLQ_URL),
  // the stream failures queue by the events function and its event source mapping.
  const deadLetterQueues = new Set([...deadLetterTargets, ids.publishDlq, ids.streamFailures]);
  expect(deadLetterQueues).toEqual(new Set([ids.cleanupDlq, ids.similarityDlq, ids.realtimeDlq, ids.publishDlq, ids.streamFailures]));
  for (const [id, queue] of Object.entries(queues)) {
    if (deadLetterQueues.has(id)) {
      expect(queue.Properties.RedrivePolicy).toBeUndefined();
      expect(queue.Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    } else {
      expect(queue.Properties.RedrivePolicy.maxReceiveCount).toBe(MAX_RECEIVES);
    }
  }
  expect(queues[ids.cleanupQueue].Properties.RedrivePolicy.deadLetterTargetArn).toEqual({ 'Fn::GetAtt': [ids.cleanupDlq, 'Arn'] });
  expect(queues[ids.similarityQueue].Properties.RedrivePolicy.deadLetterTargetArn).toEqual({ 'Fn::GetAtt': [ids.similarityDlq, 'Arn'] });
  expect(queues[ids.realtimeQueue].Properties.RedrivePolicy.deadLetterTargetArn).toEqual({ 'Fn::GetAtt': [ids.realtimeDlq, 'Arn'] });
  expect(MAX_RECEIVES).toBe(5);
  expect(repoFile('backend', 'devstack', 'src', 'provision.rs')).toContain(`const MAX_RECEIVES: u32 = ${MAX_RECEIVES};`);
});

test('every queue is encrypted with SQS-managed keys and refuses requests without TLS', () => {
  const queues = ofType(synth.json, 'AWS::SQS::Queue');
  const policies = Object.values(ofType(synth.json, 'AWS::SQS::QueuePolicy'));
  for (const [id, queue] of Object.entries(queues)) {
    expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
    expect(queue.Properties.KmsMasterKeyId).toBeUndefined();
    const statements = policies
      .filter((policy) => policy.Properties.Queues.some((q: any) => q.Ref === id))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  }
});

test('queue names follow docs/events.md: <bus>-cleanup, <bus>-similarity, and <bus>-realtime likewise, each with its <name>-dlq', () => {
  const names = Object.values(ofType(synth.json, 'AWS::SQS::Queue')).map((queue) => queue.Properties.QueueName).sort();
  expect(names).toEqual([
    'brain2-cleanup',
    'brain2-cleanup-dlq',
    'brain2-publish-dlq',
    'brain2-realtime',
    'brain2-realtime-dlq',
    'brain2-similarity',
    'brain2-similarity-dlq',
    'brain2-stream-failures',
  ]);
  const docs = repoFile('docs', 'events.md');
  expect(docs).toContain('`<bus>-cleanup-dlq`');
  expect(docs).toContain('`<bus>-similarity-dlq`');
});

test('the stream failures queue lets in no service principal: the events function sends with its role, Lambda with the function\'s', () => {
  const statements = Object.values(ofType(synth.json, 'AWS::SQS::QueuePolicy'))
    .filter((policy) => policy.Properties.Queues.some((q: any) => q.Ref === ids.streamFailures))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
  expect(statements.filter((s: any) => s.Effect === 'Allow')).toEqual([]);
});
