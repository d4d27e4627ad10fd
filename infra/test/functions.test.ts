import * as fs from 'fs';
import * as path from 'path';
import { Match } from 'aws-cdk-lib/assertions';
import { SWEEP_EVENT } from '../lib/constructs/compute';
import { asList, logicalId, ofType, repoFile, roleStatements, serviceOf, synthesize, Synthesized, tempDir } from './helpers';
import { serviceSettings } from './service-source';

let synth: Synthesized;
let ids: { api: string; cleanup: string; similarity: string; table: string; bus: string; publishDlq: string; cleanupQueue: string; similarityQueue: string };

beforeAll(() => {
  synth = synthesize();
  const { stack } = synth;
  const { compute } = serviceOf(synth);
  ids = {
    api: logicalId(stack, compute.api.function),
    cleanup: logicalId(stack, compute.cleanup.function),
    similarity: logicalId(stack, compute.similarity.function),
    table: logicalId(stack, stack.data.table),
    bus: logicalId(stack, stack.messaging.bus),
    publishDlq: logicalId(stack, stack.messaging.publishDeadLetterQueue),
    cleanupQueue: logicalId(stack, stack.messaging.cleanup.queue),
    similarityQueue: logicalId(stack, stack.messaging.similarity.queue),
  };
});

function fn(key: 'api' | 'cleanup' | 'similarity'): any {
  return synth.json.Resources[ids[key]];
}

function statementsOf(key: 'api' | 'cleanup' | 'similarity'): any[] {
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
  const binaries = { api: 'brain2-lambda', cleanup: 'brain2-cleanup', similarity: 'brain2-similarity' };
  const cargo = repoFile('backend', 'lambda', 'Cargo.toml');
  for (const [key, binary] of Object.entries(binaries) as ['api' | 'cleanup' | 'similarity', string][]) {
    expect(cargo).toContain(`name = "${binary}"`);
    const props = fn(key).Properties;
    expect(props.Runtime).toBe('provided.al2023');
    expect(props.Architectures).toEqual(['arm64']);
    expect(props.Handler).toBe('bootstrap');
    expect(props.TracingConfig).toEqual({ Mode: 'Active' });
    expect(props.Description).toContain(`(${binary})`);
  }
  expect(serviceOf(synth).assets.stubs).toEqual(['brain2-lambda', 'brain2-cleanup', 'brain2-similarity']);
});

test('sizes, timeouts and reserved concurrency are set per function', () => {
  expect(fn('api').Properties).toMatchObject({ MemorySize: 512, Timeout: 25, ReservedConcurrentExecutions: 50 });
  expect(fn('cleanup').Properties).toMatchObject({ MemorySize: 256, Timeout: 120, ReservedConcurrentExecutions: 5 });
  expect(fn('similarity').Properties).toMatchObject({ MemorySize: 256, Timeout: 60, ReservedConcurrentExecutions: 5 });
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
  for (const key of ['api', 'cleanup', 'similarity'] as const) {
    const groupId = fn(key).Properties.LoggingConfig.LogGroup.Ref;
    expect(groups[groupId].Properties.RetentionInDays).toBe(30);
    expect(groups[groupId].Properties.LogGroupName).toBe(`/aws/lambda/${fn(key).Properties.FunctionName}`);
  }
});

test('the environment names the stack\'s own table, bus and dead-letter queue, and only settings the service reads', () => {
  const known = serviceSettings();
  for (const key of ['api', 'cleanup', 'similarity'] as const) {
    const env = fn(key).Properties.Environment.Variables;
    for (const name of Object.keys(env)) expect(known).toContain(name);
    expect(env.BRAIN2_TABLE).toEqual({ Ref: ids.table });
    expect(env.BRAIN2_EVENT_BUS).toEqual({ Ref: ids.bus });
    expect(env.BRAIN2_PROFILE).toBe('optimized');
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
  test('no statement of any role has a "*" resource, except the X-Ray actions tracing needs', () => {
    for (const policy of Object.values(ofType(synth.json, 'AWS::IAM::Policy'))) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        if (asList(statement.Resource).includes('*')) {
          expect(asList(statement.Action).every((action: string) => action.startsWith('xray:'))).toBe(true);
        }
      }
    }
  });

  test('DynamoDB actions name the table or one of its indexes, never a wildcard', () => {
    for (const key of ['api', 'cleanup', 'similarity'] as const) {
      for (const statement of statementsOf(key)) {
        const actions = asList(statement.Action) as string[];
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

  test('function roles carry no managed policies', () => {
    for (const key of ['api', 'cleanup', 'similarity'] as const) {
      const role = synth.json.Resources[fn(key).Properties.Role['Fn::GetAtt'][0]];
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });
});

test('queue-fed functions report partial batch failures and never poll more than they may run', () => {
  const mappings = Object.values(ofType(synth.json, 'AWS::Lambda::EventSourceMapping'));
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
    for (const binary of ['brain2-lambda', 'brain2-cleanup', 'brain2-similarity']) {
      fs.mkdirSync(path.join(assets, binary));
      fs.writeFileSync(path.join(assets, binary, 'bootstrap.zip'), `zip of ${binary}`);
    }
    const built = synthesize({ allowStubAssets: 'false', lambdaAssets: assets });
    expect(serviceOf(built).assets.stubs).toEqual([]);
    expect(built.json.Rules?.RefuseStubAssets).toBeUndefined();
    const keys = Object.values(ofType(built.json, 'AWS::Lambda::Function')).map((f) => JSON.stringify(f.Properties.Code.S3Key));
    expect(new Set(keys).size).toBe(3);
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
    for (const worker of [serviceOf(jwt).compute.cleanup, serviceOf(jwt).compute.similarity]) {
      const env = jwt.json.Resources[logicalId(jwt.stack, worker.function)].Properties.Environment.Variables;
      expect(env.BRAIN2_JWT_SECRET).toBeUndefined();
    }
  });
});
