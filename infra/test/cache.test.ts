import * as fs from 'fs';
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AlarmSpec, loadAlarms } from '../lib/alarm-spec';
import { Observability } from '../lib/constructs/observability';
import { NETWORK_INTERFACE_ACTIONS } from '../lib/constructs/service-function';
import { CACHE_PORT, SharedCache } from '../lib/constructs/shared-cache';
import { Placeholders } from '../lib/placeholders';
import { serviceSettings } from './service-source';
import { asList, logicalId, ofType, only, repoFile, roleStatements, serviceOf, synthesize, Synthesized, tempDir } from './helpers';

let on: Synthesized;
let off: Synthesized;
let cache: SharedCache;
let ids: { cache: string; functionsGroup: string; cacheGroup: string; endpointsGroup: string; subnets: string[]; routeTables: string[] };

beforeAll(() => {
  on = synthesize({ sharedCache: 'true' });
  off = synthesize();
  cache = serviceOf(on).sharedCache!;
  const subnets = cache.vpc.isolatedSubnets;
  ids = {
    cache: logicalId(on.stack, cache.cache),
    functionsGroup: logicalId(on.stack, cache.functionsSecurityGroup),
    cacheGroup: logicalId(on.stack, cache.cacheSecurityGroup),
    endpointsGroup: logicalId(on.stack, cache.endpointsSecurityGroup),
    subnets: subnets.map((subnet) => logicalId(on.stack, subnet)),
    routeTables: subnets.map((subnet) => on.stack.getLogicalId(subnet.node.findChild('RouteTable') as never)),
  };
});

const groupId = (id: string) => ({ 'Fn::GetAtt': [id, 'GroupId'] });

/** The logical ids of the graph service's functions, the ones that read through the cache. */
const graphFunctions = (synth: Synthesized) => serviceOf(synth).compute.all.map((fn) => logicalId(synth.stack, fn.function));
const cacheUrl = () => ({
  'Fn::Join': ['', ['rediss://', { 'Fn::GetAtt': [ids.cache, 'Endpoint.Address'] }, ':', { 'Fn::GetAtt': [ids.cache, 'Endpoint.Port'] }]],
});

/** The alarm files that name the shared cache. */
function sharedCacheAlarms(): AlarmSpec[] {
  return loadAlarms().filter((spec) => JSON.stringify(spec).includes('${SharedCache'));
}

function alarmsOf(synth: Synthesized): Record<string, any> {
  const alarms = Object.values(ofType(synth.json, 'AWS::CloudWatch::Alarm'));
  return Object.fromEntries(alarms.map((alarm) => [alarm.Properties.AlarmName, alarm.Properties]));
}

function dashboardNames(synth: Synthesized): string[] {
  return Object.values(ofType(synth.json, 'AWS::CloudWatch::Dashboard')).map((dashboard) => dashboard.Properties.DashboardName);
}

interface Rule {
  readonly protocol: string;
  readonly ports: string;
  readonly peer: string;
}

/**
 * The rules of a security group, inline or in resources of their own, with the peer as a
 * group's logical id or a CIDR. CDK's placeholder egress rule of a group that allows no
 * outbound traffic (ICMP 252-86 to 255.255.255.255/32) is left out.
 */
function rulesOf(json: Synthesized['json'], id: string): { ingress: Rule[]; egress: Rule[] } {
  const rule = (entry: any, peerKey: string): Rule => ({
    protocol: entry.IpProtocol,
    ports: `${entry.FromPort}-${entry.ToPort}`,
    peer: entry.CidrIp ?? entry[peerKey]?.['Fn::GetAtt']?.[0],
  });
  const standalone = (type: string) =>
    Object.values(ofType(json, type)).filter((resource) => JSON.stringify(resource.Properties.GroupId) === JSON.stringify(groupId(id)));
  const group = json.Resources[id].Properties;
  const ingress = [...asList(group.SecurityGroupIngress), ...standalone('AWS::EC2::SecurityGroupIngress').map((r) => r.Properties)];
  const egress = [...asList(group.SecurityGroupEgress), ...standalone('AWS::EC2::SecurityGroupEgress').map((r) => r.Properties)].filter(
    (entry: any) => entry.CidrIp !== '255.255.255.255/32',
  );
  const sorted = (rules: Rule[]) => [...rules].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return {
    ingress: sorted(ingress.map((entry) => rule(entry, 'SourceSecurityGroupId'))),
    egress: sorted(egress.map((entry) => rule(entry, 'DestinationSecurityGroupId'))),
  };
}

/** The `aws-sdk-*` crates the functions' code is built with (normal dependencies only). */
function awsSdkCrates(): string[] {
  const crates = new Set<string>();
  for (const manifest of [['backend', 'service', 'Cargo.toml'], ['backend', 'lambda', 'Cargo.toml']]) {
    const dependencies = repoFile(...manifest).split(/^\[dependencies\]$/m)[1]?.split(/^\[/m)[0] ?? '';
    for (const match of dependencies.matchAll(/^aws-sdk-([a-z0-9]+)/gm)) crates.add(match[1]);
  }
  return [...crates].sort();
}

/** A policy's statements without the network interface actions, in a stable order. */
function withoutNetworkInterfaces(statements: any[]): any[] {
  return statements
    .map((statement) => ({ ...statement, Action: asList(statement.Action).filter((action) => !NETWORK_INTERFACE_ACTIONS.includes(action)) }))
    .filter((statement) => statement.Action.length > 0)
    .map((statement) => JSON.stringify(statement))
    .sort();
}

describe('the sharedCache setting', () => {
  test('is off unless set, and takes true or false only', () => {
    expect(serviceOf(off).sharedCache).toBeUndefined();
    expect(cache).toBeDefined();
    expect(() => synthesize({ sharedCache: 'yes' })).toThrow('context sharedCache must be true or false, got "yes"');
  });

  test('needs the aws target, the one with functions', () => {
    expect(() => synthesize({ target: 'localstack', sharedCache: 'true' })).toThrow(
      'context sharedCache needs target aws: the localstack target has no functions to use it',
    );
  });

  test('its usage limits are 1 GB and 5000 ECPUs a second unless set, within ElastiCache Serverless\'s ranges', () => {
    expect(on.json.Resources[ids.cache].Properties.CacheUsageLimits).toEqual({
      DataStorage: { Maximum: 1, Unit: 'GB' },
      ECPUPerSecond: { Maximum: 5000 },
    });
    expect(() => synthesize({ sharedCache: 'true', sharedCacheMaxDataGb: '0' })).toThrow(
      'context sharedCacheMaxDataGb must be an integer from 1 to 5000, got "0"',
    );
    expect(() => synthesize({ sharedCache: 'true', sharedCacheMaxEcpuPerSecond: '999' })).toThrow(
      'context sharedCacheMaxEcpuPerSecond must be an integer from 1000 to 15000000, got "999"',
    );
  });

  test('BRAIN2_CACHE_URL is the stack\'s to set', () => {
    expect(() => synthesize({ serviceSettings: '{"BRAIN2_CACHE_URL":"rediss://elsewhere:6379"}' })).toThrow(/set by the stack/);
  });
});

describe('off', () => {
  test('the template has no VPC, cache, endpoint, function network, cache URL, output, alarm or dashboard of it', () => {
    const types = new Set(Object.values(off.json.Resources).map((resource) => resource.Type));
    expect([...types].filter((type) => type.startsWith('AWS::EC2::') || type.startsWith('AWS::ElastiCache::'))).toEqual([]);
    for (const fn of Object.values(ofType(off.json, 'AWS::Lambda::Function'))) {
      expect(fn.Properties.VpcConfig).toBeUndefined();
      expect(fn.Properties.Environment.Variables.BRAIN2_CACHE_URL).toBeUndefined();
    }
    expect(JSON.stringify(ofType(off.json, 'AWS::IAM::Policy'))).not.toContain('ec2:');
    expect(off.json.Outputs?.SharedCacheEndpoint).toBeUndefined();
    expect(off.json.Outputs?.Dashboards.Value).not.toContain('shared-cache');
    expect(Object.keys(alarmsOf(off)).filter((name) => name.includes('shared-cache'))).toEqual([]);
    expect(dashboardNames(off)).not.toContain('brain2-shared-cache');
  });

  test('sharedCache=false is the default, to the byte', () => {
    expect(synthesize({ sharedCache: 'false' }).json).toEqual(off.json);
  });

  test('turning it on only adds: what the template has without it stays, but the functions\' network, environment and policies', () => {
    for (const [id, before] of Object.entries(off.json.Resources)) {
      const turnedOn = on.json.Resources[id];
      expect({ id, kept: turnedOn !== undefined }).toEqual({ id, kept: true });
      // A function in the VPC, and what depends on it, wait for the VPC's subnets as well.
      const { DependsOn, ...rest } = turnedOn;
      const waits = asList(DependsOn).filter((dependency: string) => !dependency.startsWith('SharedCache'));
      const after = waits.length > 0 ? { ...rest, DependsOn: waits } : rest;
      if (before.Type === 'AWS::Lambda::Function' && graphFunctions(on).includes(id)) {
        const { VpcConfig, Environment, ...properties } = after.Properties;
        const { BRAIN2_CACHE_URL, ...variables } = Environment.Variables;
        expect(VpcConfig).toBeDefined();
        expect(BRAIN2_CACHE_URL).toEqual(cacheUrl());
        expect({ ...properties, Environment: { Variables: variables } }).toEqual(before.Properties);
        expect({ ...after, Properties: before.Properties }).toEqual(before);
      } else if (before.Type === 'AWS::IAM::Policy') {
        expect(withoutNetworkInterfaces(after.Properties.PolicyDocument.Statement)).toEqual(
          withoutNetworkInterfaces(before.Properties.PolicyDocument.Statement),
        );
        const { PolicyDocument: _after, ...rest } = after.Properties;
        const { PolicyDocument: _before, ...expected } = before.Properties;
        expect(rest).toEqual(expected);
      } else {
        expect({ id, resource: after }).toEqual({ id, resource: before });
      }
    }
    const { SharedCacheEndpoint, Dashboards, ...outputs } = on.json.Outputs!;
    const { Dashboards: dashboards, ...expected } = off.json.Outputs!;
    expect(outputs).toEqual(expected);
    expect(SharedCacheEndpoint.Value).toEqual(cacheUrl());
    expect(Dashboards.Value).toBe(dashboards.Value.replace('brain2-service', 'brain2-service, brain2-shared-cache'));
    expect(on.json.Rules).toEqual(off.json.Rules);
    expect(on.json.Parameters).toEqual(off.json.Parameters);
  });
});

describe('the network', () => {
  test('a VPC in two AZs of isolated subnets: no NAT gateway, no internet gateway, no route out', () => {
    only(ofType(on.json, 'AWS::EC2::VPC'), 'VPC');
    const subnets = ofType(on.json, 'AWS::EC2::Subnet');
    expect(Object.keys(subnets).sort()).toEqual([...ids.subnets].sort());
    const zones = Object.values(subnets).map((subnet) => JSON.stringify(subnet.Properties.AvailabilityZone));
    expect(new Set(zones).size).toBe(2);
    for (const subnet of Object.values(subnets)) expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
    const ways = ['NatGateway', 'InternetGateway', 'EgressOnlyInternetGateway', 'VPCGatewayAttachment', 'EIP', 'Route'].map((type) => `AWS::EC2::${type}`);
    for (const type of ways) {
      expect({ type, count: Object.keys(ofType(on.json, type)).length }).toEqual({ type, count: 0 });
    }
  });

  test('a flow log keeps the rejected connections, in a log group with the stack\'s retention', () => {
    const [, flowLog] = only(ofType(on.json, 'AWS::EC2::FlowLog'), 'flow log');
    expect(flowLog.Properties).toMatchObject({ ResourceType: 'VPC', TrafficType: 'REJECT', LogDestinationType: 'cloud-watch-logs' });
    const group = on.json.Resources[flowLog.Properties.LogGroupName.Ref];
    expect(group.Properties).toMatchObject({ LogGroupName: '/aws/vpc/brain2-shared-cache/rejected', RetentionInDays: 30 });
  });

  test('DynamoDB through a gateway endpoint, EventBridge and SQS through interface endpoints with private DNS', () => {
    const endpoints = Object.values(ofType(on.json, 'AWS::EC2::VPCEndpoint'));
    const service = (endpoint: any) => endpoint.Properties.ServiceName['Fn::Join'][1][2].replace(/^\./, '');
    expect(endpoints.map(service).sort()).toEqual(['dynamodb', 'events', 'sqs']);
    const gateway = endpoints.find((endpoint) => service(endpoint) === 'dynamodb')!;
    expect(gateway.Properties.VpcEndpointType).toBe('Gateway');
    expect(gateway.Properties.RouteTableIds.map((table: any) => table.Ref).sort()).toEqual([...ids.routeTables].sort());
    for (const endpoint of endpoints.filter((candidate) => candidate !== gateway)) {
      expect(endpoint.Properties).toMatchObject({
        VpcEndpointType: 'Interface',
        PrivateDnsEnabled: true,
        SecurityGroupIds: [groupId(ids.endpointsGroup)],
      });
      expect(endpoint.Properties.SubnetIds.map((subnet: any) => subnet.Ref).sort()).toEqual([...ids.subnets].sort());
    }
  });

  test('every AWS SDK the functions are built with has its way out of the VPC, or is not called from Lambda', () => {
    // The endpoint service of each SDK crate; the streams client serves only the local
    // outbox relay of `brain2 serve`: in Lambda, the event source mapping reads the stream.
    // The management API's client serves the realtime broadcast function alone, which runs
    // outside the VPC.
    const routes: Record<string, string | null> = { dynamodb: 'dynamodb', dynamodbstreams: null, eventbridge: 'events', sqs: 'sqs', apigatewaymanagement: null };
    const crates = awsSdkCrates();
    expect(crates.length).toBeGreaterThan(0);
    for (const crate of crates) expect({ crate, routed: crate in routes }).toEqual({ crate, routed: true });
    const services = Object.values(ofType(on.json, 'AWS::EC2::VPCEndpoint')).map((endpoint) => JSON.stringify(endpoint.Properties.ServiceName));
    for (const crate of crates.filter((name) => routes[name])) {
      expect(services.some((name) => name.includes(`".${routes[crate]}"`))).toBe(true);
    }
    expect(repoFile('backend', 'service', 'src', 'adapters', 'aws', 'mod.rs')).toContain('pub dynamodb_streams: LazyClient');
  });

  test('security groups: the cache takes 6379 from the functions only, the endpoints 443 from the functions only', () => {
    expect(Object.keys(ofType(on.json, 'AWS::EC2::SecurityGroup')).sort()).toEqual([ids.cacheGroup, ids.endpointsGroup, ids.functionsGroup].sort());
    expect(CACHE_PORT).toBe(6379);
    expect(rulesOf(on.json, ids.cacheGroup)).toEqual({ ingress: [{ protocol: 'tcp', ports: '6379-6379', peer: ids.functionsGroup }], egress: [] });
    expect(rulesOf(on.json, ids.endpointsGroup)).toEqual({ ingress: [{ protocol: 'tcp', ports: '443-443', peer: ids.functionsGroup }], egress: [] });
    // 443 to any address reaches the endpoints alone: the subnets have no other route (above).
    expect(rulesOf(on.json, ids.functionsGroup)).toEqual({
      ingress: [],
      egress: [
        { protocol: 'tcp', ports: '443-443', peer: '0.0.0.0/0' },
        { protocol: 'tcp', ports: '6379-6379', peer: ids.cacheGroup },
      ],
    });
  });
});

describe('the cache', () => {
  test('is ElastiCache Serverless for Valkey 8 in the isolated subnets, behind its own security group', () => {
    const [id, resource] = only(ofType(on.json, 'AWS::ElastiCache::ServerlessCache'), 'serverless cache');
    expect(id).toBe(ids.cache);
    expect(resource.Properties).toMatchObject({
      ServerlessCacheName: 'brain2-cache',
      Engine: 'valkey',
      MajorEngineVersion: '8',
      SecurityGroupIds: [groupId(ids.cacheGroup)],
    });
    expect(resource.Properties.SubnetIds.map((subnet: any) => subnet.Ref).sort()).toEqual([...ids.subnets].sort());
  });

  test('every function of the graph service runs in its subnets with the functions\' security group, and gets BRAIN2_CACHE_URL, a setting the service reads', () => {
    expect(serviceSettings().has('BRAIN2_CACHE_URL')).toBe(true);
    const functions = ofType(on.json, 'AWS::Lambda::Function');
    for (const fn of graphFunctions(on).map((id) => functions[id])) {
      expect(fn.Properties.VpcConfig.SecurityGroupIds).toEqual([groupId(ids.functionsGroup)]);
      expect(fn.Properties.VpcConfig.SubnetIds.map((subnet: any) => subnet.Ref).sort()).toEqual([...ids.subnets].sort());
      expect(fn.Properties.Environment.Variables.BRAIN2_CACHE_URL).toEqual(cacheUrl());
    }
  });

  test('the realtime functions (authMode=jwt) stay out of it: they read no graph, and reach the management API', () => {
    const jwt = synthesize({ sharedCache: 'true', authMode: 'jwt' });
    const functions = ofType(jwt.json, 'AWS::Lambda::Function');
    const realtime = serviceOf(jwt).realtime!.all.map((fn) => logicalId(jwt.stack, fn.function));
    expect(realtime).toHaveLength(2);
    expect(Object.keys(functions).sort()).toEqual([...graphFunctions(jwt), ...realtime].sort());
    for (const id of realtime) {
      expect(functions[id].Properties.VpcConfig).toBeUndefined();
      expect(functions[id].Properties.Environment.Variables.BRAIN2_CACHE_URL).toBeUndefined();
      expect(JSON.stringify(roleStatements(jwt.json, functions[id].Properties.Role['Fn::GetAtt'][0]))).not.toContain('ec2:');
    }
  });

  test('every graph function\'s role may manage its network interfaces, on "*" as EC2 requires, and gets nothing else on "*"', () => {
    const unscoped = (action: string) =>
      action.startsWith('xray:') || action === 'dynamodb:ListStreams' || NETWORK_INTERFACE_ACTIONS.includes(action);
    const functions = ofType(on.json, 'AWS::Lambda::Function');
    for (const fn of graphFunctions(on).map((id) => functions[id])) {
      const statements = roleStatements(on.json, fn.Properties.Role['Fn::GetAtt'][0]);
      const onEverything = statements
        .filter((statement) => asList(statement.Resource).includes('*'))
        .flatMap((statement) => asList(statement.Action));
      expect(onEverything).toEqual(expect.arrayContaining([...NETWORK_INTERFACE_ACTIONS]));
      expect(onEverything.every(unscoped)).toBe(true);
    }
  });
});

describe('alarms and dashboard', () => {
  test('four alarms on the cache, by its name (the clusterId dimension), only when it is on', () => {
    expect(sharedCacheAlarms().map((spec) => spec.name).sort()).toEqual([
      'shared-cache-ecpu-limit',
      'shared-cache-read-latency',
      'shared-cache-storage-limit',
      'shared-cache-throttled-commands',
    ]);
    const alarms = alarmsOf(on);
    for (const spec of sharedCacheAlarms()) {
      const alarm = alarms[`brain2-${spec.name}`];
      const dimensions = alarm.Dimensions ?? alarm.Metrics.filter((m: any) => m.MetricStat).flatMap((m: any) => m.MetricStat.Metric.Dimensions);
      expect(dimensions).toEqual([{ Name: 'clusterId', Value: 'brain2-cache' }]);
      expect(alarmsOf(off)[`brain2-${spec.name}`]).toBeUndefined();
    }
    expect(alarms['brain2-shared-cache-read-latency']).toMatchObject({
      MetricName: 'SuccessfulReadRequestLatency',
      ExtendedStatistic: 'p99',
      Threshold: 2000,
    });
    expect(alarms['brain2-shared-cache-throttled-commands']).toMatchObject({ MetricName: 'ThrottledCmds', Statistic: 'Sum', Threshold: 0 });
  });

  test('the limit alarms measure the share of the deployment\'s own limits', () => {
    const expression = (synth: Synthesized, name: string) => alarmsOf(synth)[`brain2-${name}`].Metrics.find((m: any) => m.Expression).Expression;
    expect(expression(on, 'shared-cache-ecpu-limit')).toBe('100 * FILL(ecpus, 0) / 60 / 5000');
    expect(expression(on, 'shared-cache-storage-limit')).toBe('100 * FILL(bytes, 0) / (1 * 1000000000)');
    const larger = synthesize({ sharedCache: 'true', sharedCacheMaxDataGb: '4', sharedCacheMaxEcpuPerSecond: '20000' });
    expect(larger.json.Resources[logicalId(larger.stack, serviceOf(larger).sharedCache!.cache)].Properties.CacheUsageLimits).toEqual({
      DataStorage: { Maximum: 4, Unit: 'GB' },
      ECPUPerSecond: { Maximum: 20000 },
    });
    expect(expression(larger, 'shared-cache-ecpu-limit')).toBe('100 * FILL(ecpus, 0) / 60 / 20000');
    expect(expression(larger, 'shared-cache-storage-limit')).toBe('100 * FILL(bytes, 0) / (4 * 1000000000)');
  });

  test('the shared-cache dashboard exists only when it is on, and shows the cache by its name', () => {
    expect(dashboardNames(on)).toContain('brain2-shared-cache');
    expect(dashboardNames(off)).not.toContain('brain2-shared-cache');
    const [, dashboard] = Object.entries(ofType(on.json, 'AWS::CloudWatch::Dashboard')).find(
      ([, candidate]) => candidate.Properties.DashboardName === 'brain2-shared-cache',
    )!;
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    expect(body).toContain('\\"clusterId\\",\\"brain2-cache\\"');
    expect(body).not.toContain('${SharedCache');
  });
});

describe('leaving out what names a part the deployment does not have', () => {
  const values = { Region: 'us-east-1', TableName: 'table', SharedCacheName: undefined };
  const textWidget = (markdown: string) => ({ type: 'text', x: 0, y: 0, width: 6, height: 2, properties: { markdown } });

  function observe(dashboards: Record<string, unknown[]>, alarms: AlarmSpec[] = []): Template {
    const dir = tempDir('brain2-dashboards-');
    for (const [name, widgets] of Object.entries(dashboards)) fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ widgets }));
    const stack = new Stack(new App(), 'Observed');
    new Observability(stack, 'Observability', {
      prefix: 'brain2',
      placeholders: new Placeholders(values),
      alarms,
      dashboardsDir: dir,
      runbookBaseUrl: 'docs/runbooks',
    });
    return Template.fromStack(stack);
  }

  test('a widget that names it is left out of its dashboard, and a dashboard left with none is not made', () => {
    const template = observe({ mixed: [textWidget('${TableName}'), textWidget('${SharedCacheName}')], cache: [textWidget('${SharedCacheName}')] });
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    expect(dashboards.map((dashboard) => dashboard.Properties.DashboardName)).toEqual(['brain2-mixed']);
    expect(JSON.parse(dashboards[0].Properties.DashboardBody).widgets).toEqual([textWidget('table')]);
  });

  test('an alarm that names it is not made', () => {
    const [spec] = sharedCacheAlarms();
    const template = observe({ 'shared-cache': [textWidget('${SharedCacheName}')] }, [spec]);
    template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
  });

  test('a name the stack does not define still fails, and a left-out name cannot be substituted', () => {
    expect(() => observe({ cache: [textWidget('${SharedCacheNam}')] })).toThrow(/unknown placeholder \$\{SharedCacheNam\}/);
    const placeholders = new Placeholders(values);
    expect(placeholders.names.sort()).toEqual(['Region', 'TableName']);
    expect(placeholders.absent).toEqual(['SharedCacheName']);
    expect(placeholders.usesAbsent({ a: ['${SharedCacheName}'] })).toBe(true);
    expect(placeholders.usesAbsent('${TableName}')).toBe(false);
    expect(() => placeholders.substitute('${SharedCacheName}', 'test')).toThrow('test: ${SharedCacheName} names a part this deployment leaves out');
  });
});
