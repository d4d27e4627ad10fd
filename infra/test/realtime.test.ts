import { REALTIME_BROADCAST_TABLE_ACCESS, REALTIME_CONNECTIONS_TABLE_ACCESS } from '../lib/access';
import { MAX_RECEIVES } from '../lib/constructs/messaging';
import { REALTIME_ROUTES, REALTIME_STAGE_NAME } from '../lib/constructs/realtime';
import { EVENT_SOURCE, REALTIME_DETAIL_TYPES } from '../lib/events';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { loadAlarms } from '../lib/alarm-spec';
import { asList, logicalId, ofType, only, repoFile, roleStatements, serviceOf, synthesize, Synthesized } from './helpers';
import { emfDimensions, lambdaBinaries, serviceMetrics, serviceSettings } from './service-source';

/** The realtime functions' binaries, settings only they read, and metrics (with their labels) of dashboards/realtime.json and its alarms. */
const REALTIME_BINARIES = ['brain2-realtime-connections', 'brain2-realtime-broadcast'];
const REALTIME_SETTINGS = ['BRAIN2_REALTIME_ENDPOINT', 'BRAIN2_REALTIME_QUEUE_URL'];
const REALTIME_METRICS: Record<string, string[]> = {
  brain2_realtime_posts_total: ['outcome'],
  brain2_realtime_delivery_seconds: [],
  brain2_realtime_connections: [],
};

/** With authMode=jwt, the one mode that has the WebSocket API. */
let synth: Synthesized;
let ids: {
  api: string;
  stage: string;
  accessLogs: string;
  connections: string;
  broadcast: string;
  table: string;
  bus: string;
  queue: string;
  dlq: string;
  rule: string;
};

beforeAll(() => {
  synth = synthesize({ authMode: 'jwt' });
  const { stack } = synth;
  const realtime = serviceOf(synth).realtime!;
  const m = stack.messaging;
  ids = {
    api: logicalId(stack, realtime.webSocketApi),
    stage: logicalId(stack, realtime.stage),
    accessLogs: logicalId(stack, realtime.accessLogs),
    connections: logicalId(stack, realtime.connections.function),
    broadcast: logicalId(stack, realtime.broadcast.function),
    table: logicalId(stack, stack.data.table),
    bus: logicalId(stack, m.bus),
    queue: logicalId(stack, m.realtime.queue),
    dlq: logicalId(stack, m.realtime.deadLetterQueue),
    rule: logicalId(stack, m.realtime.rule),
  };
});

const ref = (id: string) => ({ Ref: id });
const arn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });

function environmentOf(of: Synthesized, fn: 'connections' | 'broadcast'): Record<string, any> {
  const realtime = serviceOf(of).realtime!;
  return of.json.Resources[logicalId(of.stack, realtime[fn].function)].Properties.Environment.Variables;
}

function statementsOf(id: string): any[] {
  return roleStatements(synth.json, synth.json.Resources[id].Properties.Role['Fn::GetAtt'][0]);
}

describe('the WebSocket API', () => {
  test('is <prefix>-realtime, with exactly $connect, $disconnect and $default, all to the connections function', () => {
    const [apiId, api] = only(ofType(synth.json, 'AWS::ApiGatewayV2::Api'), 'WebSocket API');
    expect(apiId).toBe(ids.api);
    expect(api.Properties).toMatchObject({ Name: 'brain2-realtime', ProtocolType: 'WEBSOCKET' });
    const routes = Object.values(ofType(synth.json, 'AWS::ApiGatewayV2::Route'));
    expect(routes.map((route) => route.Properties.RouteKey).sort()).toEqual([...REALTIME_ROUTES].sort());
    const [integrationId, integration] = only(ofType(synth.json, 'AWS::ApiGatewayV2::Integration'), 'integration');
    expect(integration.Properties.ApiId).toEqual(ref(ids.api));
    expect(integration.Properties.IntegrationType).toBe('AWS_PROXY');
    expect(JSON.stringify(integration.Properties.IntegrationUri)).toContain(JSON.stringify(arn(ids.connections)));
    for (const route of routes) {
      expect(route.Properties.ApiId).toEqual(ref(ids.api));
      expect(route.Properties.Target).toEqual({ 'Fn::Join': ['', ['integrations/', ref(integrationId)]] });
    }
  });

  test('only $default answers the client (subscribe and ping replies), through a route response', () => {
    const routes = Object.fromEntries(
      Object.entries(ofType(synth.json, 'AWS::ApiGatewayV2::Route')).map(([id, route]) => [route.Properties.RouteKey, { id, ...route.Properties }]),
    );
    expect(routes.$default.RouteResponseSelectionExpression).toBe('$default');
    expect(routes.$connect.RouteResponseSelectionExpression).toBeUndefined();
    expect(routes.$disconnect.RouteResponseSelectionExpression).toBeUndefined();
    const [, response] = only(ofType(synth.json, 'AWS::ApiGatewayV2::RouteResponse'), 'route response');
    expect(response.Properties).toEqual({ ApiId: ref(ids.api), RouteId: ref(routes.$default.id), RouteResponseKey: '$default' });
  });

  test('API Gateway may invoke the connections function for each route of this API alone', () => {
    const permissions = Object.values(ofType(synth.json, 'AWS::Lambda::Permission')).filter(
      (permission) => JSON.stringify(permission.Properties.FunctionName) === JSON.stringify(arn(ids.connections)),
    );
    expect(permissions).toHaveLength(REALTIME_ROUTES.length);
    for (const permission of permissions) {
      expect(permission.Properties.Principal).toBe('apigateway.amazonaws.com');
      expect(JSON.stringify(permission.Properties.SourceArn)).toContain(JSON.stringify(ref(ids.api)));
    }
    const sources = permissions.map((permission) => JSON.stringify(permission.Properties.SourceArn));
    for (const routeKey of REALTIME_ROUTES) expect(sources.some((source) => source.includes(`/*${routeKey}`))).toBe(true);
  });
});

describe('the stage', () => {
  test('is live, deployed automatically, with default route throttling from the context and no data tracing', () => {
    const [stageId, stage] = only(ofType(synth.json, 'AWS::ApiGatewayV2::Stage'), 'stage');
    expect(stageId).toBe(ids.stage);
    expect(REALTIME_STAGE_NAME).toBe('live');
    expect(stage.Properties).toMatchObject({ ApiId: ref(ids.api), StageName: 'live', AutoDeploy: true });
    expect(stage.Properties.DefaultRouteSettings).toEqual({ DataTraceEnabled: false, ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 });
    // Access logs go through the account's API Gateway logging role: the stage waits for it.
    expect(asList(stage.DependsOn)).toContain(logicalId(synth.stack, serviceOf(synth).api.accountLogging));

    const other = synthesize({ authMode: 'jwt', realtimeThrottleRateLimit: '20', realtimeThrottleBurstLimit: '40' });
    const [, throttled] = only(ofType(other.json, 'AWS::ApiGatewayV2::Stage'), 'stage');
    expect(throttled.Properties.DefaultRouteSettings).toMatchObject({ ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 });
    expect(() => synthesize({ realtimeThrottleBurstLimit: '0' })).toThrow(/context realtimeThrottleBurstLimit must be an integer from 1 to 5000/);
  });

  test('logs each connect, message and disconnect as JSON to its own log group, without the query string (the token travels there)', () => {
    const stage = synth.json.Resources[ids.stage].Properties;
    expect(stage.AccessLogSettings.DestinationArn).toEqual(arn(ids.accessLogs));
    expect(synth.json.Resources[ids.accessLogs].Properties).toEqual({
      LogGroupName: '/aws/apigateway/brain2-realtime/access',
      RetentionInDays: 30,
    });
    const format: string = stage.AccessLogSettings.Format;
    const fields = JSON.parse(format);
    for (const variable of [
      '$context.requestId',
      '$context.requestTime',
      '$context.requestTimeEpoch',
      '$context.connectionId',
      '$context.eventType',
      '$context.routeKey',
      '$context.status',
      '$context.integration.error',
      '$context.error.message',
    ]) {
      expect(Object.values(fields)).toContain(variable);
    }
    expect(format.toLowerCase()).not.toMatch(/querystring|token|header|\$request\.|\$input/);
  });
});

describe('the realtime queue', () => {
  test('the rule sends every node and edge change of the service from the bus to it', () => {
    const rule = synth.json.Resources[ids.rule].Properties;
    expect(rule.Name).toBe('brain2-realtime');
    expect(rule.EventBusName).toEqual(ref(ids.bus));
    expect(rule.EventPattern).toEqual({
      source: [EVENT_SOURCE],
      'detail-type': ['node.created', 'node.updated', 'node.deleted', 'edge.created', 'edge.deleted'],
    });
    expect(REALTIME_DETAIL_TYPES).toEqual(rule.EventPattern['detail-type']);
    expect(rule.Targets.map((target: any) => target.Arn)).toEqual([arn(ids.queue)]);
  });

  test('redrives to <prefix>-realtime-dlq after five receives, and stays invisible for six times the broadcast function\'s timeout', () => {
    const queue = synth.json.Resources[ids.queue].Properties;
    expect(queue.QueueName).toBe('brain2-realtime');
    expect(queue.RedrivePolicy).toEqual({ deadLetterTargetArn: arn(ids.dlq), maxReceiveCount: MAX_RECEIVES });
    expect(queue.VisibilityTimeout).toBe(6 * synth.json.Resources[ids.broadcast].Properties.Timeout);
    expect(synth.json.Resources[ids.dlq].Properties).toMatchObject({ QueueName: 'brain2-realtime-dlq', MessageRetentionPeriod: 14 * 24 * 3600 });
  });

  test('feeds the broadcast function ten messages at a time, at once (no batching window), reporting partial batch failures', () => {
    const mappings = Object.values(ofType(synth.json, 'AWS::Lambda::EventSourceMapping')).filter(
      (mapping) => mapping.Properties.FunctionName.Ref === ids.broadcast,
    );
    expect(mappings).toHaveLength(1);
    const mapping = mappings[0].Properties;
    expect(mapping.EventSourceArn).toEqual(arn(ids.queue));
    expect(mapping.BatchSize).toBe(10);
    expect(mapping.MaximumBatchingWindowInSeconds).toBe(0);
    expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    // No reserved concurrency by default, so nothing bounds the pollers.
    expect(mapping.ScalingConfig).toBeUndefined();
    const reserved = synthesize({ authMode: 'jwt', realtimeBroadcastReservedConcurrency: '4' });
    const bounded = Object.values(ofType(reserved.json, 'AWS::Lambda::EventSourceMapping')).find(
      (candidate) => candidate.Properties.FunctionName.Ref === logicalId(reserved.stack, serviceOf(reserved).realtime!.broadcast.function),
    )!;
    expect(bounded.Properties.ScalingConfig).toEqual({ MaximumConcurrency: 4 });
    expect(() => synthesize({ realtimeBroadcastReservedConcurrency: '1' })).toThrow(
      /context realtimeBroadcastReservedConcurrency must be 0 \(shared pool\) or at least 2/,
    );
  });
});

describe('the functions', () => {
  test('run their binaries with their own sizing: 256 MB, 10 s and 30 s, no reserved concurrency unless set', () => {
    const connections = synth.json.Resources[ids.connections].Properties;
    const broadcast = synth.json.Resources[ids.broadcast].Properties;
    expect(connections).toMatchObject({ FunctionName: 'brain2-realtime-connections', MemorySize: 256, Timeout: 10, Runtime: 'provided.al2023' });
    expect(broadcast).toMatchObject({ FunctionName: 'brain2-realtime-broadcast', MemorySize: 256, Timeout: 30, Runtime: 'provided.al2023' });
    expect(connections.Description).toContain('(brain2-realtime-connections)');
    expect(broadcast.Description).toContain('(brain2-realtime-broadcast)');
    for (const props of [connections, broadcast]) {
      expect(props.ReservedConcurrentExecutions).toBeUndefined();
      expect(props.TracingConfig).toEqual({ Mode: 'Active' });
    }
    const sized = synthesize({
      authMode: 'jwt',
      realtimeConnectionsMemoryMb: '512',
      realtimeConnectionsTimeoutSeconds: '29',
      realtimeConnectionsReservedConcurrency: '20',
      realtimeBroadcastTimeoutSeconds: '60',
    });
    const realtime = serviceOf(sized).realtime!;
    expect(sized.json.Resources[logicalId(sized.stack, realtime.connections.function)].Properties).toMatchObject({
      MemorySize: 512,
      Timeout: 29,
      ReservedConcurrentExecutions: 20,
    });
    expect(sized.json.Resources[logicalId(sized.stack, sized.stack.messaging.realtime.queue)].Properties.VisibilityTimeout).toBe(360);
    // API Gateway waits 29 s at most for a WebSocket integration.
    expect(() => synthesize({ realtimeConnectionsTimeoutSeconds: '30' })).toThrow(/context realtimeConnectionsTimeoutSeconds must be an integer from 1 to 29/);
  });

  test('the broadcast function posts through the stage\'s management API (BRAIN2_REALTIME_ENDPOINT) and authenticates nobody', () => {
    expect(environmentOf(synth, 'broadcast')).toEqual({
      BRAIN2_TABLE: ref(ids.table),
      BRAIN2_EVENT_BUS: ref(ids.bus),
      BRAIN2_PROFILE: 'optimized',
      BRAIN2_EVENT_DELIVERY: 'outbox',
      BRAIN2_AUTH_MODE: 'apigateway',
      BRAIN2_REALTIME_ENDPOINT: {
        'Fn::Join': ['', ['https://', ref(ids.api), '.execute-api.', ref('AWS::Region'), '.', ref('AWS::URLSuffix'), '/live']],
      },
    });
  });

  test('the connections function checks tokens as the API function does (jwt mode), with the same secret reference', () => {
    const env = environmentOf(synth, 'connections');
    const api = synth.json.Resources[logicalId(synth.stack, serviceOf(synth).compute.api.function)].Properties.Environment.Variables;
    expect(env).toEqual({
      BRAIN2_TABLE: ref(ids.table),
      BRAIN2_EVENT_BUS: ref(ids.bus),
      BRAIN2_PROFILE: 'optimized',
      BRAIN2_EVENT_DELIVERY: 'outbox',
      BRAIN2_AUTH_MODE: 'jwt',
      BRAIN2_JWT_SECRET: api.BRAIN2_JWT_SECRET,
    });
    expect(env.BRAIN2_AUTH_MODE).toBe('jwt');
    expect(env.BRAIN2_JWT_SECRET).toEqual(api.BRAIN2_JWT_SECRET);
    expect(JSON.stringify(env.BRAIN2_JWT_SECRET)).toContain('{{resolve:secretsmanager:');
    // Nor does the broadcast function get the secret.
    expect(environmentOf(synth, 'broadcast').BRAIN2_JWT_SECRET).toBeUndefined();
    expect(environmentOf(synth, 'broadcast').BRAIN2_AUTH_MODE).toBe('apigateway');
  });

  test('every setting they get is one the service reads, and the stack owns the new one', () => {
    const known = serviceSettings();
    for (const fn of ['connections', 'broadcast'] as const) {
      for (const name of Object.keys(environmentOf(synth, fn))) expect({ fn, name, known: known.has(name) }).toEqual({ fn, name, known: true });
    }
    for (const name of ['BRAIN2_REALTIME_ENDPOINT']) {
      expect(() => synthesize({ serviceSettings: JSON.stringify({ [name]: 'x' }) })).toThrow(/set by the stack/);
    }
  });
});

describe('IAM', () => {
  test('each function gets exactly its table actions, on the table alone, and no index', () => {
    for (const [id, access] of [
      [ids.connections, REALTIME_CONNECTIONS_TABLE_ACCESS],
      [ids.broadcast, REALTIME_BROADCAST_TABLE_ACCESS],
    ] as const) {
      const statements = statementsOf(id);
      const dynamodb = statements.filter((s) => asList(s.Action).some((action: string) => action.startsWith('dynamodb:')));
      expect(dynamodb).toHaveLength(1);
      expect(dynamodb[0].Resource).toEqual(arn(ids.table));
      expect(asList(dynamodb[0].Action).sort()).toEqual([...access.tableActions].sort());
      expect(access.queriedIndexes).toEqual([]);
      expect(JSON.stringify(statements)).not.toContain('/index/');
    }
  });

  test('the broadcast function may post to connections of this API\'s stage only, never "*"', () => {
    const statements = statementsOf(ids.broadcast);
    const manage = statements.filter((s) => asList(s.Action).some((action: string) => action.startsWith('execute-api:')));
    expect(manage).toHaveLength(1);
    expect(manage[0].Action).toBe('execute-api:ManageConnections');
    expect(manage[0].Resource).toEqual({
      'Fn::Join': [
        '',
        ['arn:', ref('AWS::Partition'), ':execute-api:', ref('AWS::Region'), ':', ref('AWS::AccountId'), ':', ref(ids.api), '/live/POST/@connections/*'],
      ],
    });
    // It reads its queue and publishes nothing.
    const actions = statements.flatMap((s) => asList(s.Action));
    expect(actions).toContain('sqs:ReceiveMessage');
    expect(actions).not.toContain('events:PutEvents');
    expect(actions).not.toContain('sqs:SendMessage');
  });

  test('the connections function touches the table alone: no queue, no bus, no management API', () => {
    const actions = statementsOf(ids.connections).flatMap((s) => asList(s.Action) as string[]);
    expect(actions.filter((action) => !/^(dynamodb|logs|xray):/.test(action))).toEqual([]);
  });

  test('nothing else may manage the API\'s connections', () => {
    for (const policy of Object.values(ofType(synth.json, 'AWS::IAM::Policy'))) {
      const roles = policy.Properties.Roles.map((role: any) => role.Ref);
      const manages = JSON.stringify(policy.Properties.PolicyDocument).includes('execute-api:ManageConnections');
      if (manages) expect(roles).toEqual([synth.json.Resources[ids.broadcast].Properties.Role['Fn::GetAtt'][0]]);
    }
  });
});

test('outputs: the wss:// URL clients connect to with ?token=, and the API id', () => {
  const outputs = synth.json.Outputs!;
  expect(outputs.RealtimeUrl.Value).toEqual({
    'Fn::Join': ['', ['wss://', ref(ids.api), '.execute-api.', ref('AWS::Region'), '.', ref('AWS::URLSuffix'), '/live']],
  });
  expect(outputs.RealtimeUrl.Description).toContain('?token=');
  expect(outputs.RealtimeApiId.Value).toEqual(ref(ids.api));
  expect(outputs.Dashboards.Value).toContain('brain2-realtime');
});

describe('dashboard and alarms', () => {
  const alarms = () =>
    Object.fromEntries(Object.values(ofType(synth.json, 'AWS::CloudWatch::Alarm')).map((alarm) => [alarm.Properties.AlarmName, alarm.Properties]));

  test('the realtime dashboard names the API and stage, both functions, the queue and its dead-letter queue', () => {
    const dashboard = Object.values(ofType(synth.json, 'AWS::CloudWatch::Dashboard')).find(
      (candidate) => candidate.Properties.DashboardName === 'brain2-realtime',
    )!;
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const id of [ids.api, ids.connections, ids.broadcast, ids.queue, ids.dlq, ids.rule, ids.accessLogs]) {
      expect({ id, shown: body.includes(JSON.stringify(id)) }).toEqual({ id, shown: true });
    }
    expect(body).toContain('\\"live\\"');
  });

  test('post failures: more than 5 failed posts a minute of the broadcast function in 3 of 5 minutes; no data is no failure', () => {
    expect(alarms()['brain2-realtime-post-failures']).toMatchObject({
      Namespace: 'Brain2',
      MetricName: 'brain2_realtime_posts_total',
      Dimensions: [
        { Name: 'Function', Value: ref(ids.broadcast) },
        { Name: 'outcome', Value: 'failed' },
      ],
      Statistic: 'Sum',
      Period: 60,
      EvaluationPeriods: 5,
      DatapointsToAlarm: 3,
      Threshold: 5,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
    });
  });

  test('the queue: its dead-letter queue holds any message, or its oldest message is over 5 minutes old for 5 minutes', () => {
    expect(alarms()['brain2-realtime-dlq-depth']).toMatchObject({
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [ids.dlq, 'QueueName'] } }],
      Threshold: 0,
    });
    expect(alarms()['brain2-realtime-queue-oldest-message']).toMatchObject({
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [ids.queue, 'QueueName'] } }],
      Period: 60,
      EvaluationPeriods: 5,
      Threshold: 300,
    });
  });
});

test('the localstack target has the realtime queue, its dead-letter queue and rule, and no WebSocket API or function', () => {
  const local = synthesize({ target: 'localstack', allowStubAssets: 'false' });
  const m = local.stack.messaging;
  for (const construct of [m.realtime.queue, m.realtime.deadLetterQueue, m.realtime.rule]) {
    const id = logicalId(local.stack, construct);
    expect(local.json.Resources[id]).toEqual(synth.json.Resources[id]);
  }
  const types = Object.values(local.json.Resources).map((resource) => resource.Type);
  expect(types.filter((type) => type.startsWith('AWS::ApiGatewayV2::') || type.startsWith('AWS::Lambda::'))).toEqual([]);
  expect(Object.keys(local.json.Outputs!)).toEqual(expect.arrayContaining(['RealtimeQueueUrl', 'RealtimeDeadLetterQueueUrl']));
  expect(local.json.Outputs!.RealtimeUrl).toBeUndefined();
});

test('in cognito mode (the default) the WebSocket API is left out with a note: no API, no realtime function, dashboard or alarm; the queue and rule stay', () => {
  const cognito = synthesize();
  expect(serviceOf(cognito).realtime).toBeUndefined();
  expect(ofType(cognito.json, 'AWS::ApiGatewayV2::Api')).toEqual({});
  expect(Object.keys(cognito.json.Resources).filter((id) => cognito.json.Resources[id].Type.startsWith('AWS::ApiGatewayV2::'))).toEqual([]);
  const functionNames = Object.values(ofType(cognito.json, 'AWS::Lambda::Function')).map((fn) => fn.Properties.FunctionName);
  expect(functionNames.filter((name) => /realtime/.test(String(name)))).toEqual([]);
  expect(serviceOf(cognito).assets.stubs.filter((binary) => REALTIME_BINARIES.includes(binary))).toEqual([]);
  const dashboards = Object.values(ofType(cognito.json, 'AWS::CloudWatch::Dashboard')).map((d) => d.Properties.DashboardName);
  expect(dashboards).not.toContain('brain2-realtime');
  expect(cognito.json.Outputs!.Dashboards.Value).not.toContain('brain2-realtime');
  const alarms = Object.fromEntries(Object.values(ofType(cognito.json, 'AWS::CloudWatch::Alarm')).map((alarm) => [alarm.Properties.AlarmName, alarm.Properties]));
  const realtimeAlarms = loadAlarms().filter((spec) => spec.name.startsWith('realtime-')).map((spec) => `brain2-${spec.name}`);
  expect(realtimeAlarms.length).toBeGreaterThanOrEqual(5);
  for (const name of realtimeAlarms) expect(alarms[name]).toBeUndefined();
  // lambda-throttles sums the throttles of the functions that are there.
  const throttles = alarms['brain2-lambda-throttles'];
  expect(throttles.Metrics.find((m: any) => m.Expression).Expression).toBe('FILL(api, 0) + FILL(cleanup, 0) + FILL(similarity, 0) + FILL(events, 0)');
  expect(throttles.Metrics.filter((m: any) => m.MetricStat).map((m: any) => m.Id).sort()).toEqual(['api', 'cleanup', 'events', 'similarity']);
  expect(JSON.stringify(cognito.json)).not.toContain('brain2-realtime-connections');
  expect(JSON.stringify(cognito.json)).not.toContain('brain2-realtime-broadcast');
  expect(cognito.json.Outputs!.RealtimeUrl).toBeUndefined();
  expect(cognito.json.Outputs!.RealtimeApiId).toBeUndefined();
  // The realtime queue, its dead-letter queue and rule are not auth-dependent.
  const m = cognito.stack.messaging;
  for (const construct of [m.realtime.queue, m.realtime.deadLetterQueue, m.realtime.rule]) {
    const id = logicalId(cognito.stack, construct);
    expect(cognito.json.Resources[id]).toEqual(synth.json.Resources[id]);
  }
  Annotations.fromStack(cognito.stack).hasInfo(
    '/Brain2',
    Match.stringLikeRegexp('WebSocket API .* is left out: its \\$connect verifies only the HS256 tokens of authMode=jwt'),
  );
  expect(Annotations.fromStack(synth.stack).findInfo('*', Match.stringLikeRegexp('WebSocket API'))).toEqual([]);
});

test('backend/lambda builds both realtime binaries, make lambda-zips checks them, and the service reads their settings and records their metrics', () => {
  for (const binary of REALTIME_BINARIES) {
    expect(lambdaBinaries()).toContain(binary);
    expect(repoFile('Makefile').match(/^LAMBDA_BINS := (.*)$/m)![1].split(/\s+/)).toContain(binary);
  }
  for (const setting of REALTIME_SETTINGS) expect(serviceSettings()).toContain(setting);
  for (const [metric, labels] of Object.entries(REALTIME_METRICS)) {
    expect(serviceMetrics().has(metric)).toBe(true);
    expect(emfDimensions(metric)).toEqual(['Function', ...labels].sort());
  }
});
