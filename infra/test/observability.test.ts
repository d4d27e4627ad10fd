import * as fs from 'fs';
import * as path from 'path';
import { AlarmSpec, loadAlarms, MetricSpec, parseAlarm } from '../lib/alarm-spec';
import { ALARMS_DIR, DASHBOARDS_DIR, REPO_ROOT, RUNBOOKS_DIR } from '../lib/paths';
import { Placeholders } from '../lib/placeholders';
import { containsValue, logicalId, ofType, only, PSEUDO_PARAMETERS, references, serviceOf, synthesize, Synthesized, tempDir } from './helpers';
import { emfDimensions, routerRoutes, serviceMetrics } from './service-source';

let synth: Synthesized;
let alarms: AlarmSpec[];
let templateAlarms: Record<string, any>;

const alarmFiles = fs.readdirSync(ALARMS_DIR).filter((file) => file.endsWith('.json')).sort();
const dashboardFiles = fs.readdirSync(DASHBOARDS_DIR).filter((file) => file.endsWith('.json')).sort();

beforeAll(() => {
  // Every optional part on, so that every file of alarms/ and dashboards/ is in the template;
  // test/cache.test.ts checks what is left out without the shared cache, and
  // test/realtime.test.ts without the WebSocket API (authMode=cognito).
  synth = synthesize({ sharedCache: 'true', authMode: 'jwt' });
  alarms = loadAlarms();
  templateAlarms = Object.fromEntries(
    Object.values(ofType(synth.json, 'AWS::CloudWatch::Alarm')).map((alarm) => [alarm.Properties.AlarmName, alarm.Properties]),
  );
});

/** What a placeholder-bearing value of a data file becomes in the template. */
function rendered(value: string): unknown {
  return synth.stack.resolve(serviceOf(synth).placeholders.substitute(value, 'test'));
}

function dimensionsOf(metric: MetricSpec): { Name: string; Value: unknown }[] {
  return Object.entries(metric.dimensions)
    .map(([Name, Value]) => ({ Name, Value: rendered(Value) }))
    .sort((a, b) => a.Name.localeCompare(b.Name));
}

function sortDimensions(dimensions: { Name: string; Value: unknown }[] | undefined) {
  return [...(dimensions ?? [])].sort((a, b) => a.Name.localeCompare(b.Name));
}

function expectExisting(value: unknown, where: string): void {
  for (const id of references(value)) {
    const exists = id in synth.json.Resources || PSEUDO_PARAMETERS.includes(id);
    expect({ where, id, exists }).toEqual({ where, id, exists: true });
  }
}

/** A metric of the service is named by `Function` and exactly the labels it is recorded with. */
function expectServiceMetric(name: string, dimensions: string[], where: string): void {
  const expected = emfDimensions(name);
  expect({ where, name, known: expected !== undefined }).toEqual({ where, name, known: true });
  expect({ where, name, dimensions: [...dimensions].sort() }).toEqual({ where, name, dimensions: expected });
}

describe('alarms', () => {
  test('there is one alarm file per alarm the on-call list asks for', () => {
    const names = alarms.map((alarm) => alarm.name);
    for (const wanted of [
      'api-function-p99-duration',
      'api-function-error-rate',
      'cleanup-function-error-rate',
      'similarity-function-error-rate',
      'events-function-error-rate',
      'lambda-throttles',
      'api-5xx-rate',
      'api-p99-latency',
      'dynamodb-user-errors',
      'dynamodb-system-errors',
      'dynamodb-throttled-requests',
      'eventbridge-failed-invocations',
      'cleanup-queue-backlog',
      'cleanup-queue-oldest-message',
      'cleanup-dlq-depth',
      'similarity-dlq-depth',
      'publish-dlq-depth',
      'stream-failures-depth',
      'events-stream-iterator-age',
      'node-create-p99-latency',
      'api-cache-hit-rate',
      'shared-cache-throttled-commands',
      'shared-cache-read-latency',
      'shared-cache-ecpu-limit',
      'shared-cache-storage-limit',
      'realtime-post-failures',
      'realtime-dlq-depth',
      'realtime-queue-oldest-message',
      'realtime-connections-function-error-rate',
      'realtime-broadcast-function-error-rate',
    ]) {
      expect(names).toContain(wanted);
    }
    expect(alarms).toHaveLength(alarmFiles.length);
  });

  test('every alarm file is an alarm in the template with its threshold, comparison, periods and metric', () => {
    for (const spec of alarms) {
      const alarm = templateAlarms[`brain2-${spec.name}`];
      expect({ file: spec.name, inTemplate: alarm !== undefined }).toEqual({ file: spec.name, inTemplate: true });
      expect(alarm.Threshold).toBe(spec.threshold);
      expect(alarm.ComparisonOperator).toBe(spec.comparison);
      expect(alarm.EvaluationPeriods).toBe(spec.evaluationPeriods);
      expect(alarm.DatapointsToAlarm).toBe(spec.datapointsToAlarm);
      expect(alarm.TreatMissingData).toBe(spec.treatMissingData);
      expect(alarm.AlarmDescription).toContain(`[${spec.severity}]`);
      expect(alarm.AlarmDescription).toContain(`docs/runbooks/${spec.name}.md`);
      if (spec.metric) {
        expect(alarm.Namespace).toBe(spec.metric.namespace);
        expect(alarm.MetricName).toBe(spec.metric.name);
        expect(alarm.Period).toBe(spec.period);
        expect(alarm.ExtendedStatistic ?? alarm.Statistic).toBe(spec.statistic);
        expect(sortDimensions(alarm.Dimensions)).toEqual(dimensionsOf(spec.metric));
      } else {
        const expression = alarm.Metrics.find((m: any) => m.Expression);
        expect(expression.Expression).toBe(rendered(spec.math!.expression));
        expect(expression.ReturnData).toBe(true);
        const inputs = alarm.Metrics.filter((m: any) => m.MetricStat);
        expect(inputs.map((m: any) => m.Id).sort()).toEqual(Object.keys(spec.math!.metrics).sort());
        for (const input of inputs) {
          const metric = spec.math!.metrics[input.Id];
          expect(input.MetricStat.Period).toBe(spec.period);
          expect(input.MetricStat.Stat).toBe(metric.statistic);
          expect(input.MetricStat.Metric.Namespace).toBe(metric.namespace);
          expect(input.MetricStat.Metric.MetricName).toBe(metric.name);
          expect(sortDimensions(input.MetricStat.Metric.Dimensions)).toEqual(dimensionsOf(metric));
        }
      }
    }
  });

  test('every alarm in the template comes from a file of alarms/', () => {
    const names = new Set(alarms.map((alarm) => `brain2-${alarm.name}`));
    for (const name of Object.keys(templateAlarms)) {
      expect({ alarm: name, hasFile: names.has(name) }).toEqual({ alarm: name, hasFile: true });
    }
  });

  test('every alarm notifies the alarm topic when it fires and when it recovers', () => {
    const topic = logicalId(synth.stack, serviceOf(synth).observability.topic);
    for (const alarm of Object.values(templateAlarms)) {
      expect(alarm.AlarmActions).toEqual([{ Ref: topic }]);
      expect(alarm.OKActions).toEqual([{ Ref: topic }]);
    }
  });

  test('every alarm has a runbook with what it means, first checks, its dashboards and mitigation', () => {
    for (const spec of alarms) {
      const file = path.join(REPO_ROOT, spec.runbook);
      expect({ runbook: spec.runbook, exists: fs.existsSync(file) }).toEqual({ runbook: spec.runbook, exists: true });
      const text = fs.readFileSync(file, 'utf8');
      for (const section of ['## What it means', '## First checks', '## Dashboards', '## Mitigation']) {
        expect({ runbook: spec.runbook, section, present: text.includes(section) }).toEqual({ runbook: spec.runbook, section, present: true });
      }
      for (const dashboard of spec.dashboards) {
        expect(text).toContain(`\`<prefix>-${dashboard}\``);
        expect(dashboardFiles).toContain(`${dashboard}.json`);
      }
    }
    const runbooks = fs.readdirSync(RUNBOOKS_DIR).filter((file) => file.endsWith('.md'));
    expect(runbooks.sort()).toEqual(alarms.map((alarm) => `${alarm.name}.md`).sort());
  });

  test('every dead-letter queue has its own depth alarm', () => {
    const m = synth.stack.messaging;
    for (const queue of [m.cleanup.deadLetterQueue, m.similarity.deadLetterQueue, m.realtime.deadLetterQueue, m.publishDeadLetterQueue, m.streamFailuresQueue]) {
      const id = logicalId(synth.stack, queue);
      const matching = Object.values(templateAlarms).filter(
        (alarm) =>
          alarm.MetricName === 'ApproximateNumberOfMessagesVisible' &&
          JSON.stringify(alarm.Dimensions) === JSON.stringify([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id, 'QueueName'] } }]),
      );
      expect({ queue: id, alarms: matching.length }).toEqual({ queue: id, alarms: 1 });
      expect(matching[0]).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    }
  });

  test('alarms on the service\'s own metrics name real metrics with their exact dimensions', () => {
    let seen = 0;
    for (const spec of alarms) {
      const inputs = spec.metric ? [spec.metric] : Object.values(spec.math!.metrics);
      for (const metric of inputs.filter((input) => input.namespace === 'Brain2')) {
        expectServiceMetric(metric.name, Object.keys(metric.dimensions), `alarms/${spec.name}.json`);
        seen += 1;
      }
    }
    expect(seen).toBeGreaterThan(0);
  });

  test('node creation latency is the request-duration histogram of POST /api/v1/nodes, in seconds', () => {
    const spec = alarms.find((alarm) => alarm.name === 'node-create-p99-latency')!;
    expect(spec.metric).toEqual({
      namespace: 'Brain2',
      name: 'brain2_http_request_duration_seconds',
      dimensions: { Function: '${ApiFunctionName}', route: '/api/v1/nodes', method: 'POST' },
    });
    expect(spec.statistic).toBe('p99');
    expect(spec.threshold).toBe(0.1);
    expect(routerRoutes()).toContainEqual({ path: '/api/v1/nodes', methods: expect.arrayContaining(['POST']) });
  });

  test('every function has an error-rate alarm (Errors / Invocations) and counts in lambda-throttles', () => {
    const { compute, realtime } = serviceOf(synth);
    const throttles = templateAlarms['brain2-lambda-throttles'];
    const functions = [...compute.all, ...realtime!.all];
    expect(Object.keys(ofType(synth.json, 'AWS::Lambda::Function')).sort()).toEqual(functions.map((fn) => logicalId(synth.stack, fn.function)).sort());
    for (const fn of functions) {
      const name = { Ref: logicalId(synth.stack, fn.function) };
      const dimensions = [{ Name: 'FunctionName', Value: name }];
      const errorRates = Object.values(templateAlarms).filter((alarm) => {
        const inputs = (alarm.Metrics ?? []).filter((m: any) => m.MetricStat);
        const on = (metric: string) =>
          inputs.some((m: any) => m.MetricStat.Metric.MetricName === metric && JSON.stringify(m.MetricStat.Metric.Dimensions) === JSON.stringify(dimensions));
        return on('Errors') && on('Invocations');
      });
      expect({ fn: fn.node.id, errorRateAlarms: errorRates.length }).toEqual({ fn: fn.node.id, errorRateAlarms: 1 });
      const throttled = throttles.Metrics.filter((m: any) => m.MetricStat?.Metric.MetricName === 'Throttles')
        .map((m: any) => JSON.stringify(m.MetricStat.Metric.Dimensions));
      expect(throttled).toContain(JSON.stringify(dimensions));
    }
  });

  test('eventbridge-failed-invocations counts every rule of the bus', () => {
    const alarm = templateAlarms['brain2-eventbridge-failed-invocations'];
    const counted = alarm.Metrics.filter((m: any) => m.MetricStat).map((m: any) => JSON.stringify(m.MetricStat.Metric.Dimensions));
    const m = synth.stack.messaging;
    for (const rule of [m.cleanup.rule, m.similarity.rule, m.realtime.rule]) {
      expect(counted).toContain(JSON.stringify([
        { Name: 'EventBusName', Value: { Ref: logicalId(synth.stack, m.bus) } },
        { Name: 'RuleName', Value: { Ref: logicalId(synth.stack, rule) } },
      ]));
    }
  });

  test('events-lost counts every function that publishes', () => {
    const { compute } = serviceOf(synth);
    const lost = templateAlarms['brain2-events-lost'];
    const counted = lost.Metrics.filter((m: any) => m.MetricStat).map((m: any) => JSON.stringify(m.MetricStat.Metric.Dimensions));
    for (const publisher of [compute.api, compute.similarity, compute.events]) {
      expect(counted).toContain(JSON.stringify([{ Name: 'Function', Value: { Ref: logicalId(synth.stack, publisher.function) } }]));
    }
    const expression = lost.Metrics.find((m: any) => m.Expression).Expression as string;
    for (const m of lost.Metrics.filter((m: any) => m.MetricStat)) expect(expression).toContain(`FILL(${m.Id}, 0)`);
  });

  test('the events function\'s stream: iterator age above 60 s for five minutes in a row', () => {
    const alarm = templateAlarms['brain2-events-stream-iterator-age'];
    const events = logicalId(synth.stack, serviceOf(synth).compute.events.function);
    expect(alarm).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: events } }],
      Statistic: 'Maximum',
      Period: 60,
      EvaluationPeriods: 5,
      Threshold: 60000,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(alarm.DatapointsToAlarm).toBeUndefined();
  });

  test('the stream failures queue: any visible message', () => {
    const queue = logicalId(synth.stack, synth.stack.messaging.streamFailuresQueue);
    expect(templateAlarms['brain2-stream-failures-depth']).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmDescription: expect.stringContaining('[critical]'),
    });
  });

  test('alarm dimensions name resources of the stack', () => {
    for (const alarm of Object.values(templateAlarms)) {
      expectExisting(alarm.Dimensions, alarm.AlarmName);
      expectExisting(alarm.Metrics, alarm.AlarmName);
    }
  });

  test('a malformed alarm file is refused with its name', () => {
    const file = path.join(ALARMS_DIR, 'api-5xx-rate.json');
    const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(() => parseAlarm(file, JSON.stringify({ ...spec, comparison: 'Above' }))).toThrow(/api-5xx-rate.json: comparison/);
    expect(() => parseAlarm(file, JSON.stringify({ ...spec, runbook: 'docs/runbooks/other.md' }))).toThrow(/runbook must be/);
    expect(() => parseAlarm(path.join(ALARMS_DIR, 'renamed.json'), JSON.stringify(spec))).toThrow(/the file says renamed/);
  });

  test('an unknown placeholder in an alarm fails the synth', () => {
    const [first] = loadAlarms();
    const broken: AlarmSpec = first.metric
      ? { ...first, metric: { ...first.metric, dimensions: { FunctionName: '${NoSuchFunction}' } } }
      : { ...first, math: { ...first.math!, metrics: { m: { namespace: 'AWS/Lambda', name: 'Errors', dimensions: { FunctionName: '${NoSuchFunction}' }, statistic: 'Sum' } } } };
    expect(() => synthesize({}, { alarms: [broken] })).toThrow(/unknown placeholder \$\{NoSuchFunction\}/);
  });
});

describe('dashboards', () => {
  test('every dashboard file is valid JSON with widgets, and becomes <prefix>-<name>', () => {
    const dashboards = Object.values(ofType(synth.json, 'AWS::CloudWatch::Dashboard'));
    expect(dashboards.map((d) => d.Properties.DashboardName).sort()).toEqual(
      dashboardFiles.map((file) => `brain2-${path.basename(file, '.json')}`).sort(),
    );
    for (const file of dashboardFiles) {
      const body = JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8'));
      expect(body.widgets.length).toBeGreaterThan(0);
      for (const widget of body.widgets) {
        expect(widget).toEqual(expect.objectContaining({ type: expect.any(String), x: expect.any(Number), y: expect.any(Number), width: expect.any(Number), height: expect.any(Number) }));
        expect(widget.x + widget.width).toBeLessThanOrEqual(24);
        if (widget.type !== 'text') expect(widget.properties.region).toBe('${Region}');
      }
    }
  });

  test('every placeholder the dashboards use is a name of the stack, and each names an existing resource', () => {
    const defined = new Set(serviceOf(synth).placeholders.names);
    for (const file of dashboardFiles) {
      for (const name of Placeholders.used(fs.readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8'))) {
        expect({ file, name, defined: defined.has(name) }).toEqual({ file, name, defined: true });
      }
    }
    for (const name of serviceOf(synth).placeholders.names) {
      const value = rendered(`\${${name}}`);
      if (typeof value === 'string') {
        // A name the stack set itself (a function, queue or rule name) or a setting it gave a
        // resource (a usage limit): it is in a resource.
        const inResource = Object.values(synth.json.Resources).some(
          (resource) => containsValue(resource.Properties, value) || containsValue(resource.Properties, Number(value)),
        );
        expect({ name, value, inResource }).toEqual({ name, value, inResource: true });
      } else {
        expect(references(value).size).toBeGreaterThan(0);
        expectExisting(value, name);
      }
    }
  });

  test('the synthesized dashboards refer only to resources of the stack', () => {
    for (const dashboard of Object.values(ofType(synth.json, 'AWS::CloudWatch::Dashboard'))) {
      const refs = references(dashboard.Properties.DashboardBody);
      expect(refs.size).toBeGreaterThan(0);
      expectExisting(dashboard.Properties.DashboardBody, dashboard.Properties.DashboardName);
      expect(JSON.stringify(dashboard.Properties.DashboardBody)).not.toMatch(/\$\{[A-Za-z]+\}/);
    }
  });

  test('an unknown placeholder in a dashboard fails the synth', () => {
    const dir = tempDir('brain2-dashboards-');
    fs.writeFileSync(
      path.join(dir, 'broken.json'),
      JSON.stringify({ widgets: [{ type: 'text', x: 0, y: 0, width: 6, height: 2, properties: { markdown: '${TabelName}' } }] }),
    );
    expect(() => synthesize({}, { dashboardsDir: dir, alarms: [] })).toThrow(/broken.json: unknown placeholder \$\{TabelName\}/);
    fs.writeFileSync(path.join(dir, 'broken.json'), '{"widgets": [');
    expect(() => synthesize({}, { dashboardsDir: dir, alarms: [] })).toThrow(/broken.json is not valid JSON/);
  });

  test('metrics of the service on the dashboards are real metrics with their exact dimensions', () => {
    let seen = 0;
    for (const file of dashboardFiles) {
      const body = JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8'));
      for (const widget of body.widgets.filter((w: any) => w.type === 'metric')) {
        for (const row of widget.properties.metrics) {
          if (typeof row[0] === 'string' && row[0] === 'Brain2') {
            const dimensions = row.slice(2).filter((item: unknown) => typeof item === 'string').filter((_: unknown, i: number) => i % 2 === 0);
            expectServiceMetric(row[1], dimensions, file);
            seen += 1;
          }
          const expression: string | undefined = row[0]?.expression;
          for (const search of expression?.matchAll(/\{Brain2,([^}]*)\} MetricName="([a-z0-9_]+)"/g) ?? []) {
            expectServiceMetric(search[2], search[1].split(','), file);
            seen += 1;
          }
        }
      }
    }
    expect(seen).toBeGreaterThan(10);
    expect(serviceMetrics().size).toBeGreaterThanOrEqual(15);
  });

  test.each([
    ['api', ['"Count"', '"4XXError"', '"5XXError"', '"Latency"', '"p50"', '"p99"', '"CacheHitCount"', '"CacheMissCount"']],
    ['lambda', ['"Duration"', '"p50"', '"p99"', '@initDuration', '"Errors"', '"Throttles"', '"ConcurrentExecutions"', '${EventsFunctionName}', '${EventsLogGroupName}']],
    ['dynamodb', ['ConsumedReadCapacityUnits', 'ConsumedWriteCapacityUnits', 'ThrottledRequests', 'SuccessfulRequestLatency', 'UserErrors', 'SystemErrors']],
    [
      'events',
      [
        'PutEventsApproximateCallCount',
        'FailedInvocations',
        'ApproximateNumberOfMessagesVisible',
        'ApproximateAgeOfOldestMessage',
        '${CleanupDlqName}',
        '${SimilarityDlqName}',
        '${PublishDlqName}',
        '"IteratorAge"',
        '${EventsFunctionName}',
        'brain2_stream_records_failed_total',
        '${StreamFailuresQueueName}',
      ],
    ],
    [
      'realtime',
      [
        '"ConnectCount"',
        '"MessageCount"',
        '"IntegrationError"',
        '"ClientError"',
        '"ExecutionError"',
        '"IntegrationLatency"',
        '{Brain2,Function,outcome} MetricName=\\"brain2_realtime_posts_total\\" Function=\\"${RealtimeBroadcastFunctionName}\\"',
        '"brain2_realtime_delivery_seconds"',
        '"ApproximateAgeOfOldestMessage"',
        '${RealtimeQueueName}',
        '${RealtimeDlqName}',
        '${RealtimeConnectionsFunctionName}',
        '${RealtimeBroadcastFunctionName}',
        '${RealtimeAccessLogGroupName}',
      ],
    ],
    ['service', ['brain2_aws_calls_total', 'brain2_http_requests_total', 'brain2_cache_lookups_total', 'brain2_events_dead_lettered_total']],
    [
      'shared-cache',
      [
        '"CacheHits"',
        '"CacheMisses"',
        '"CacheHitRate"',
        '"SuccessfulReadRequestLatency"',
        '"SuccessfulWriteRequestLatency"',
        '"Evictions"',
        '"ElastiCacheProcessingUnits"',
        '"BytesUsedForCache"',
        '"CurrConnections"',
        '"ThrottledCmds"',
      ],
    ],
  ])('the %s dashboard shows what on-call needs', (name, wanted) => {
    const text = fs.readFileSync(path.join(DASHBOARDS_DIR, `${name}.json`), 'utf8');
    for (const item of wanted as string[]) expect(text).toContain(item);
  });

  test('the events dashboard shows the events function\'s stream: iterator age, invocations, errors, failed records, failures queue', () => {
    const body = JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, 'events.json'), 'utf8'));
    const rows = body.widgets
      .filter((w: any) => w.type === 'metric')
      .flatMap((w: any) => w.properties.metrics.map((row: any[]) => ({ row, stat: row[row.length - 1]?.stat ?? w.properties.stat })));
    const shown = (namespace: string, metric: string, dimension: string, value: string, stat: string) =>
      rows.some(({ row, stat: s }: any) => row[0] === namespace && row[1] === metric && row[2] === dimension && row[3] === value && s === stat);
    expect(shown('AWS/Lambda', 'IteratorAge', 'FunctionName', '${EventsFunctionName}', 'Maximum')).toBe(true);
    expect(shown('AWS/Lambda', 'Invocations', 'FunctionName', '${EventsFunctionName}', 'Sum')).toBe(true);
    expect(shown('AWS/Lambda', 'Errors', 'FunctionName', '${EventsFunctionName}', 'Sum')).toBe(true);
    expect(shown('Brain2', 'brain2_stream_records_failed_total', 'Function', '${EventsFunctionName}', 'Sum')).toBe(true);
    expect(shown('AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', '${StreamFailuresQueueName}', 'Maximum')).toBe(true);
  });
});

test('the alarm topic is encrypted with a rotating key CloudWatch may use, and refuses requests without TLS', () => {
  const [, topic] = only(ofType(synth.json, 'AWS::SNS::Topic'), 'topic');
  const keyId = topic.Properties.KmsMasterKeyId['Fn::GetAtt'][0];
  const key = synth.json.Resources[keyId];
  expect(key.Properties.EnableKeyRotation).toBe(true);
  expect(key.Properties.KeyPolicy.Statement).toContainEqual(
    expect.objectContaining({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] }),
  );
  const [, policy] = only(ofType(synth.json, 'AWS::SNS::TopicPolicy'), 'topic policy');
  expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
    expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
  );
});
