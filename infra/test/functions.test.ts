import * as fs from 'fs';
import * as path from 'path';
import { Match } from 'aws-cdk-lib/assertions';
import { EVENTS_TABLE_ACCESS } from '../lib/access';
import { EVENT_DELIVERIES } from '../lib/config';
import { STREAM_ENTITIES, SWEEP_EVENT } from '../lib/constructs/compute';
import { asList, logicalId, ofType, repoFile, roleStatements, serviceOf, synthesize, Synthesized, tempDir } from './helpers';
import { lambdaBinaries, serviceSettings } from './service-source';

type FunctionKey = 'api' | 'cleanup' | 'similarity' | 'events';
const FUNCTIONS: readonly FunctionKey[] = ['api', 'cleanup', 'similarity', 'events'];

let synth: Synthesized;
let ids: {
  api: string;
  cleanup: string;
  similarity: string;
  events: string;
  table: string;
  bus: string;
  publishDlq: string;
  streamFailures: string;
  cleanupQueue: string;
  similarityQueue: string;
};

beforeAll(() => {
  synth = synthesize();
  const { stack } = synth;
  const { compute } = serviceOf(synth);
  ids = {
    api: logicalId(stack, compute.api.function),
    cleanup: logicalId(stack, compute.cleanup.function),
    similarity: logicalId(stack, compute.similarity.function),
    events: logicalId(stack, compute.events.function),
    table: logicalId(stack, stack.data.table),
    bus: logicalId(stack, stack.messaging.bus),
    publishDlq: logicalId(stack, stack.messaging.publishDeadLetterQueue),
    streamFailures: logicalId(stack, stack.messaging.streamFailuresQueue),
    cleanupQueue: logicalId(stack, stack.messaging.cleanup.queue),
    similarityQueue: logicalId(stack, stack.messaging.similarity.queue),
  };
});

function fn(key: FunctionKey): any {
  return synth.json.Resources[ids[key]];
}

function statementsOf(key: FunctionKey): any[] {
  return roleStatements(synth.json, fn(key).Properties.Role['Fn::GetAtt'][0]);
}

function actionsOn(statements: any[], resourceId: string): string[] {
  return statements
    .filter((statement) => JSON.stringify(statement.Resource).includes(`"${resourceId}"`))
    .flatMap((statement) => asList(statement.Action));
}

function allActions(statements: any[]): string[] {
  return statements.flatMap((statement) => asList(statement.Action));
}

test('each function runs its cargo binary on provided.al2023, arm64, with active tracing', () => {
  const binaries: Record<FunctionKey, string> = {
    api: 'brain2-lambda',
    cleanup: 'brain2-cleanup',
    similarity: 'brain2-similarity',
    events: 'brain2-events',
  };
  for (const [key, binary] of Object.entries(binaries) as [FunctionKey, string][]) {
    expect(lambdaBinaries()).toContain(binary);
    const props = fn(key).Properties;
    expect(props.Runtime).toBe('provided.al2023');
    expect(props.Architectures).toEqual(['arm64']);
    expect(props.Handler).toBe('bootstrap');
    expect(props.TracingConfig).toEqual({ Mode: 'Active' });
    expect(props.Description).toContain(`(${binary})`);
  }
  // The realtime functions' come with authMode=jwt alone (test/realtime.test.ts).
  expect(serviceOf(synth).assets.stubs).toEqual(['brain2-lambda', 'brain2-cleanup', 'brain2-similarity', 'brain2-events']);
  expect(serviceOf(synth).compute.all.map((f) => logicalId(synth.stack, f.function))).toEqual(FUNCTIONS.map((key) => ids[key]));
});

test('make lambda-zips checks a zip for every function the stack deploys that backend/lambda builds', () => {
  const line = repoFile('Makefile').match(/^LAMBDA_BINS := (.*)$/m);
  expect(line).not.toBeNull();
  // With authMode=jwt, which has every function (the realtime ones too).
  const jwt = synthesize({ authMode: 'jwt' });
  const deployed = serviceOf(jwt).assets.stubs;
  expect(deployed).toHaveLength(6);
  for (const binary of deployed) expect(lambdaBinaries()).toContain(binary);
  expect(line![1].split(/\s+/).sort()).toEqual([...deployed].sort());
});

test('sizes, timeouts and reserved concurrency are set per function', () => {
  expect(fn('api').Properties).toMatchObject({ MemorySize: 512, Timeout: 25, ReservedConcurrentExecutions: 50 });
  expect(fn('cleanup').Properties).toMatchObject({ MemorySize: 256, Timeout: 120, ReservedConcurrentExecutions: 5 });
  expect(fn('similarity').Properties).toMatchObject({ MemorySize: 256, Timeout: 60, ReservedConcurrentExecutions: 5 });
  // The events function runs one execution per shard, from the shared pool unless told otherwise.
  expect(fn('events').Properties).toMatchObject({ MemorySize: 256, Timeout: 60 });
  expect(fn('events').Properties.ReservedConcurrentExecutions).toBeUndefined();
  const events = synthesize({ eventsMemoryMb: '512', eventsTimeoutSeconds: '120', eventsReservedConcurrency: '4' });
  expect(events.json.Resources[logicalId(events.stack, serviceOf(events).compute.events.function)].Properties).toMatchObject({
    MemorySize: 512,
    Timeout: 120,
    ReservedConcurrentExecutions: 4,
  });
  expect(() => synthesize({ eventsTimeoutSeconds: '901' })).toThrow(/context eventsTimeoutSeconds must be an integer from 1 to 900/);
  const other = synthesize({ apiMemoryMb: '1024', architecture: 'x86_64', apiReservedConcurrency: '0' });
  const api = other.json.Resources[logicalId(other.stack, serviceOf(other).compute.api.function)].Properties;
  expect(api.MemorySize).toBe(1024);
  expect(api.Architectures).toEqual(['x86_64']);
  expect(api.ReservedConcurrentExecutions).toBeUndefined();
  const longest = synthesize({ apiTimeoutSeconds: '29' });
  const props = longest.json.Resources[logicalId(longest.stack, serviceOf(longest).compute.api.function)].Properties;
  expect(props.Timeout).toBe(29);
  expect(props.Environment.Variables.BRAIN2_REQUEST_DEADLINE_MS).toBe('27000');
  expect(() => synthesize({ serviceSettings: '{"BRAIN2_REQUEST_DEADLINE_MS":"60000"}' })).toThrow(/set by the stack/);
});

test('each function logs to its own log group with a retention', () => {
  const groups = ofType(synth.json, 'AWS::Logs::LogGroup');
  for (const key of FUNCTIONS) {
    const groupId = fn(key).Properties.LoggingConfig.LogGroup.Ref;
    expect(groups[groupId].Properties.RetentionInDays).toBe(30);
    expect(groups[groupId].Properties.LogGroupName).toBe(`/aws/lambda/${fn(key).Properties.FunctionName}`);
  }
});

test('the environment names the stack\'s own table, bus and dead-letter queue, and only settings the service reads', () => {
  const known = serviceSettings();
  for (const key of FUNCTIONS) {
    const env = fn(key).Properties.Environment.Variables;
    for (const name of Object.keys(env)) expect({ key, name, known: known.has(name) }).toEqual({ key, name, known: true });
    expect(env.BRAIN2_TABLE).toEqual({ Ref: ids.table });
    expect(env.BRAIN2_EVENT_BUS).toEqual({ Ref: ids.bus });
    expect(env.BRAIN2_PROFILE).toBe('optimized');
    expect(env.BRAIN2_EVENT_DELIVERY).toBe('outbox');
    expect(env.BRAIN2_SIM_RTT_MS).toBeUndefined();
    expect(env.BRAIN2_FAULTS).toBeUndefined();
  }
  const api = fn('api').Properties.Environment.Variables;
  expect(api.BRAIN2_EVENTS_DLQ_URL).toEqual({ Ref: ids.publishDlq });
  expect(api.BRAIN2_AUTH_MODE).toBe('apigateway');
  expect(api.BRAIN2_JWT_SECRET).toBeUndefined();
  expect(api.BRAIN2_FLAG_COMPRESSION).toBe('off');
  // The function's 25 s timeout less 2 s to answer: under API Gateway's 29 s as well.
  expect(api.BRAIN2_REQUEST_DEADLINE_MS).toBe('23000');
  const similarity = fn('similarity').Properties.Environment.Variables;
  expect(similarity.BRAIN2_EVENTS_DLQ_URL).toEqual({ Ref: ids.publishDlq });
  const cleanup = fn('cleanup').Properties.Environment.Variables;
  expect(cleanup.BRAIN2_CLEANUP_GRACE_SECONDS).toBe('300');
  expect(cleanup.BRAIN2_EVENTS_DLQ_URL).toBeUndefined();
  // The workers authenticate nobody and must start without a token secret.
  expect(cleanup.BRAIN2_AUTH_MODE).toBe('apigateway');
  expect(similarity.BRAIN2_AUTH_MODE).toBe('apigateway');
  expect(cleanup.BRAIN2_STREAM_FAILURES_QUEUE_URL).toBeUndefined();
  expect(similarity.BRAIN2_STREAM_FAILURES_QUEUE_URL).toBeUndefined();
  // The events function publishes (bus, publisher's dead-letter queue), sends what it cannot
  // publish to the stream failures queue, and authenticates nobody.
  expect(fn('events').Properties.Environment.Variables).toEqual({
    BRAIN2_TABLE: { Ref: ids.table },
    BRAIN2_EVENT_BUS: { Ref: ids.bus },
    BRAIN2_PROFILE: 'optimized',
    BRAIN2_EVENT_DELIVERY: 'outbox',
    BRAIN2_EVENTS_DLQ_URL: { Ref: ids.publishDlq },
    BRAIN2_AUTH_MODE: 'apigateway',
    BRAIN2_STREAM_FAILURES_QUEUE_URL: { Ref: ids.streamFailures },
  });
});

describe('eventDelivery', () => {
  test('is outbox unless set, one of inline, background, outbox, and reaches every function', () => {
    expect(EVENT_DELIVERIES).toEqual(['inline', 'background', 'outbox']);
    for (const mode of ['inline', 'background'] as const) {
      const other = synthesize({ eventDelivery: mode, authMode: 'jwt' });
      const functions = Object.values(ofType(other.json, 'AWS::Lambda::Function'));
      expect(functions).toHaveLength(6);
      for (const f of functions) expect(f.Properties.Environment.Variables.BRAIN2_EVENT_DELIVERY).toBe(mode);
    }
  });

  test('a value not among them fails the synth, naming the setting and the values it takes', () => {
    expect(() => synthesize({ eventDelivery: 'stream' })).toThrow(
      'context eventDelivery must be one of inline, background, outbox, got stream',
    );
  });

  test('is the stack\'s to set: serviceSettings may not set the delivery or the failures queue', () => {
    for (const name of ['BRAIN2_EVENT_DELIVERY', 'BRAIN2_STREAM_FAILURES_QUEUE_URL']) {
      expect(() => synthesize({ serviceSettings: JSON.stringify({ [name]: 'inline' }) })).toThrow(/set by the stack/);
    }
  });
});

test('serviceSettings adds service settings and refuses what the stack owns or Lambda refuses', () => {
  const other = synthesize({ serviceSettings: '{"BRAIN2_EXPOSE_COSTS":"on","BRAIN2_PROFILE":"baseline"}' });
  const env = other.json.Resources[logicalId(other.stack, serviceOf(other).compute.api.function)].Properties.Environment.Variables;
  expect(env.BRAIN2_EXPOSE_COSTS).toBe('on');
  expect(env.BRAIN2_PROFILE).toBe('baseline');
  expect(() => synthesize({ serviceSettings: '{"BRAIN2_TABLE":"other"}' })).toThrow(/set by the stack/);
  expect(() => synthesize({ serviceSettings: '{"BRAIN2_FAULTS":"throttle=1"}' })).toThrow(/refused in Lambda/);
  expect(() => synthesize({ serviceSettings: '{"AWS_REGION":"x"}' })).toThrow(/not a BRAIN2_\* setting/);
});

describe('IAM: each function gets what its code calls and nothing else', () => {
  // Actions that support no resource-level permissions: X-Ray's for tracing, and
  // dynamodb:ListStreams, which the stream event source grants (it lists stream ARNs, no data).
  const unscoped = (action: string) => action.startsWith('xray:') || action === 'dynamodb:ListStreams';

  test('no statement of any role has a "*" resource, except for actions that support no resource-level permissions', () => {
    for (const policy of Object.values(ofType(synth.json, 'AWS::IAM::Policy'))) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        if (asList(statement.Resource).includes('*')) {
          expect(asList(statement.Action).every(unscoped)).toBe(true);
        }
      }
    }
    // ListStreams only for the stream's reader.
    for (const key of ['api', 'cleanup', 'similarity'] as const) expect(allActions(statementsOf(key))).not.toContain('dynamodb:ListStreams');
  });

  test('DynamoDB actions name the table, one of its indexes or its stream, never a wildcard', () => {
    for (const key of FUNCTIONS) {
      for (const statement of statementsOf(key)) {
        const actions = (asList(statement.Action) as string[]).filter((action) => !unscoped(action));
        if (!actions.some((action) => action.startsWith('dynamodb:'))) continue;
        expect(actions).not.toContain('dynamodb:*');
        for (const resource of asList(statement.Resource)) {
          const text = JSON.stringify(resource);
          expect(text).toContain(ids.table);
          expect(text).not.toContain('*');
        }
      }
    }
  });

  test('the API may write the table, publish to the bus, and send to the publisher\'s dead-letter queue only', () => {
    const statements = statementsOf('api');
    expect(actionsOn(statements, ids.table)).toEqual(expect.arrayContaining(['dynamodb:TransactWriteItems', 'dynamodb:Query', 'dynamodb:DescribeTable']));
    expect(actionsOn(statements, ids.bus).sort()).toEqual(['events:DescribeEventBus', 'events:PutEvents']);
    expect(actionsOn(statements, ids.publishDlq)).toContain('sqs:SendMessage');
    expect(allActions(statements)).not.toContain('sqs:ReceiveMessage');
    expect(actionsOn(statements, ids.cleanupQueue)).toEqual([]);
    expect(actionsOn(statements, ids.similarityQueue)).toEqual([]);
  });

  test('cleanup reads its queue and the table, queries DeletionQueue, and publishes nothing', () => {
    const statements = statementsOf('cleanup');
    const actions = allActions(statements);
    expect(actions).not.toContain('events:PutEvents');
    expect(actions).not.toContain('sqs:SendMessage');
    expect(actions).not.toContain('dynamodb:Scan');
    expect(actionsOn(statements, ids.cleanupQueue)).toContain('sqs:ReceiveMessage');
    expect(actionsOn(statements, ids.similarityQueue)).toEqual([]);
    const indexes = JSON.stringify(statements.filter((s) => JSON.stringify(s.Resource).includes('/index/')));
    expect(indexes).toContain('/index/DeletionQueue');
    expect(indexes).not.toContain('/index/KeywordIndex');
  });

  test('similarity reads its queue and the table and publishes the edges it draws', () => {
    // brain2-similarity announces new similarity edges (edge.created), so it needs PutEvents
    // and the publisher's dead-letter queue, like the API.
    const statements = statementsOf('similarity');
    expect(actionsOn(statements, ids.bus)).toEqual(['events:PutEvents']);
    expect(actionsOn(statements, ids.publishDlq)).toContain('sqs:SendMessage');
    expect(actionsOn(statements, ids.similarityQueue)).toContain('sqs:ReceiveMessage');
    expect(actionsOn(statements, ids.cleanupQueue)).toEqual([]);
    expect(allActions(statements)).not.toContain('dynamodb:Scan');
    expect(allActions(statements)).not.toContain('dynamodb:DeleteItem');
    const indexes = JSON.stringify(statements.filter((s) => JSON.stringify(s.Resource).includes('/index/')));
    expect(indexes).toContain('/index/KeywordIndex');
    expect(indexes).not.toContain('/index/DeletionQueue');
  });

  test('events reads the table\'s stream, publishes, and sends to the two failure queues; it touches no item', () => {
    const statements = statementsOf('events');
    const stream = { 'Fn::GetAtt': [ids.table, 'StreamArn'] };
    const on = (resource: unknown) =>
      statements.filter((s) => asList(s.Resource).some((r) => JSON.stringify(r) === JSON.stringify(resource))).flatMap((s) => asList(s.Action));
    expect(on(stream).sort()).toEqual(['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator']);
    expect(on('*')).toContain('dynamodb:ListStreams');
    expect(on({ 'Fn::GetAtt': [ids.table, 'Arn'] })).toEqual([]);
    expect(JSON.stringify(statements)).not.toContain('/index/');
    expect(allActions(statements).filter((action) => action.startsWith('dynamodb:')).sort()).toEqual([
      'dynamodb:DescribeStream',
      'dynamodb:GetRecords',
      'dynamodb:GetShardIterator',
      'dynamodb:ListStreams',
    ]);
    expect(EVENTS_TABLE_ACCESS).toEqual({ tableActions: [], queriedIndexes: [] });
    expect(actionsOn(statements, ids.bus)).toEqual(['events:PutEvents']);
    expect(actionsOn(statements, ids.publishDlq)).toContain('sqs:SendMessage');
    expect(actionsOn(statements, ids.streamFailures)).toContain('sqs:SendMessage');
    expect(allActions(statements)).not.toContain('sqs:ReceiveMessage');
    expect(actionsOn(statements, ids.cleanupQueue)).toEqual([]);
    expect(actionsOn(statements, ids.similarityQueue)).toEqual([]);
    // Nobody else may send to the stream failures queue.
    for (const key of ['api', 'cleanup', 'similarity'] as const) expect(actionsOn(statementsOf(key), ids.streamFailures)).toEqual([]);
  });

  test('function roles carry no managed policies', () => {
    for (const key of FUNCTIONS) {
      const role = synth.json.Resources[fn(key).Properties.Role['Fn::GetAtt'][0]];
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });
});

test('queue-fed functions report partial batch failures and never poll more than they may run', () => {
  const all = Object.values(ofType(synth.json, 'AWS::Lambda::EventSourceMapping'));
  expect(all).toHaveLength(3);
  // Cleanup and similarity; with authMode=jwt the realtime broadcast function too (test/realtime.test.ts).
  const mappings = all.filter((mapping) => mapping.Properties.FunctionName.Ref !== ids.events);
  expect(mappings).toHaveLength(2);
  for (const mapping of mappings) {
    expect(mapping.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
  }
  const byFunction = (id: string) => mappings.find((mapping) => mapping.Properties.FunctionName.Ref === id)!.Properties;
  expect(byFunction(ids.cleanup).EventSourceArn).toEqual({ 'Fn::GetAtt': [ids.cleanupQueue, 'Arn'] });
  expect(byFunction(ids.similarity).EventSourceArn).toEqual({ 'Fn::GetAtt': [ids.similarityQueue, 'Arn'] });
  // One execution of cleanup stays free for the scheduled sweep.
  expect(byFunction(ids.cleanup).ScalingConfig).toEqual({ MaximumConcurrency: 4 });
  expect(byFunction(ids.similarity).ScalingConfig).toEqual({ MaximumConcurrency: 5 });
});

describe('the events function\'s stream event source', () => {
  function streamMapping(of: Synthesized): any {
    const events = logicalId(of.stack, serviceOf(of).compute.events.function);
    const mappings = Object.values(ofType(of.json, 'AWS::Lambda::EventSourceMapping')).filter(
      (mapping) => mapping.Properties.FunctionName.Ref === events,
    );
    expect(mappings).toHaveLength(1);
    return mappings[0].Properties;
  }

  test('reads the table\'s stream from its oldest record, in batches of 100, retried from the first failed record', () => {
    const { FilterCriteria, ...settings } = streamMapping(synth);
    expect(settings).toEqual({
      FunctionName: { Ref: ids.events },
      EventSourceArn: { 'Fn::GetAtt': [ids.table, 'StreamArn'] },
      Enabled: true,
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 3600,
      ParallelizationFactor: 1,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [ids.streamFailures, 'Arn'] } } },
    });
    expect(FilterCriteria).toBeDefined();
  });

  test('only node and edge items invoke it: written (new image) or deleted (old image)', () => {
    const patterns = streamMapping(synth).FilterCriteria.Filters.map((filter: any) => JSON.parse(filter.Pattern));
    expect(patterns).toEqual([
      { dynamodb: { NewImage: { entity: { S: ['node', 'edge'] } } } },
      { dynamodb: { OldImage: { entity: { S: ['node', 'edge'] } } } },
    ]);
    // The service's own names for these items (backend/service/src/adapters/dynamodb/items.rs).
    const items = repoFile('backend', 'service', 'src', 'adapters', 'dynamodb', 'items.rs');
    expect(STREAM_ENTITIES).toEqual(['node', 'edge']);
    expect(items).toContain('pub const ENTITY_NODE: &str = "node";');
    expect(items).toContain('pub const ENTITY_EDGE: &str = "edge";');
    // The attribute the service reads an item's kind from.
    expect(items).toContain('item.get("entity")');
  });

  test.each(['inline', 'background'])('is disabled with eventDelivery %s, where the functions publish themselves', (mode) => {
    const other = synthesize({ eventDelivery: mode });
    const mapping = streamMapping(other);
    expect(mapping.Enabled).toBe(false);
    // Otherwise the same: enabling it again is a settings change, not a new mapping.
    const { Enabled: _enabled, ...rest } = mapping;
    const { Enabled: _default, ...expected } = streamMapping(synth);
    expect(rest).toEqual(expected);
  });
});

test('worker queues stay invisible for six times their function\'s timeout', () => {
  const queues = synth.json.Resources;
  expect(queues[ids.cleanupQueue].Properties.VisibilityTimeout).toBe(6 * fn('cleanup').Properties.Timeout);
  expect(queues[ids.similarityQueue].Properties.VisibilityTimeout).toBe(6 * fn('similarity').Properties.Timeout);
});

test('a schedule invokes cleanup with an event that is not an SQS batch, which brain2-cleanup takes as a sweep', () => {
  // backend/lambda/src/lib.rs: a payload with "Records" is a batch, anything else sweeps.
  expect(repoFile('backend', 'lambda', 'src', 'lib.rs')).toContain('event.payload.get("Records").is_some()');
  const rules = Object.values(ofType(synth.json, 'AWS::Events::Rule')).filter((rule) => rule.Properties.ScheduleExpression);
  expect(rules).toHaveLength(1);
  const [rule] = rules;
  expect(rule.Properties.ScheduleExpression).toBe('rate(15 minutes)');
  expect(rule.Properties.EventBusName).toBeUndefined();
  const [target] = rule.Properties.Targets;
  expect(target.Arn).toEqual({ 'Fn::GetAtt': [ids.cleanup, 'Arn'] });
  const input = JSON.parse(target.Input);
  expect(input).toEqual(SWEEP_EVENT);
  expect(input.Records).toBeUndefined();
  synth.template.hasResourceProperties('AWS::Lambda::Permission', {
    FunctionName: { 'Fn::GetAtt': [ids.cleanup, 'Arn'] },
    Principal: 'events.amazonaws.com',
  });
});

describe('function code', () => {
  test('without zips and without allowStubAssets, the stack refuses to build', () => {
    expect(() => synthesize({ allowStubAssets: 'false' })).toThrow(/bootstrap\.zip is missing/);
  });

  test('a template built from stubs carries a rule that makes CloudFormation refuse to deploy it', () => {
    expect(synth.json.Rules?.RefuseStubAssets).toBeDefined();
    const stub = fs.readFileSync(path.join(synth.outdir, 'stub-lambda', 'brain2-lambda', 'bootstrap'), 'utf8');
    expect(stub).toContain('BRAIN2_STUB_ASSET');
  });

  test('with the zips of cargo lambda, each function uses its own zip and no stub', () => {
    const assets = tempDir('brain2-zips-');
    const binaries = serviceOf(synthesize({ authMode: 'jwt' })).assets.stubs;
    expect(binaries).toHaveLength(6);
    for (const binary of binaries) {
      fs.mkdirSync(path.join(assets, binary));
      fs.writeFileSync(path.join(assets, binary, 'bootstrap.zip'), `zip of ${binary}`);
    }
    const built = synthesize({ allowStubAssets: 'false', lambdaAssets: assets, authMode: 'jwt' });
    expect(serviceOf(built).assets.stubs).toEqual([]);
    expect(built.json.Rules?.RefuseStubAssets).toBeUndefined();
    const keys = Object.values(ofType(built.json, 'AWS::Lambda::Function')).map((f) => JSON.stringify(f.Properties.Code.S3Key));
    expect(new Set(keys).size).toBe(binaries.length);
  });
});

describe('jwt mode', () => {
  let jwt: Synthesized;
  beforeAll(() => {
    jwt = synthesize({ authMode: 'jwt' });
  });

  test('the secret reaches the API as a Secrets Manager dynamic reference, never a literal', () => {
    const api = jwt.json.Resources[logicalId(jwt.stack, serviceOf(jwt).compute.api.function)].Properties.Environment.Variables;
    expect(api.BRAIN2_AUTH_MODE).toBe('jwt');
    const secret = JSON.stringify(api.BRAIN2_JWT_SECRET);
    expect(secret).toContain('{{resolve:secretsmanager:');
    expect(typeof api.BRAIN2_JWT_SECRET).not.toBe('string');
    jwt.template.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: Match.objectLike({ PasswordLength: 64 }),
    });
    jwt.template.resourceCountIs('AWS::Cognito::UserPool', 0);
  });

  test('an existing secret is referenced by name and not created', () => {
    const named = synthesize({ authMode: 'jwt', jwtSecretName: 'brain2/existing' });
    named.template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    const api = named.json.Resources[logicalId(named.stack, serviceOf(named).compute.api.function)].Properties.Environment.Variables;
    expect(api.BRAIN2_JWT_SECRET).toBe('{{resolve:secretsmanager:brain2/existing:SecretString:::}}');
  });

  test('the workers get no secret in any mode', () => {
    for (const worker of [serviceOf(jwt).compute.cleanup, serviceOf(jwt).compute.similarity, serviceOf(jwt).compute.events]) {
      const env = jwt.json.Resources[logicalId(jwt.stack, worker.function)].Properties.Environment.Variables;
      expect(env.BRAIN2_JWT_SECRET).toBeUndefined();
    }
  });
});
