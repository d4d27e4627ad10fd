import { Match } from 'aws-cdk-lib/assertions';
import { AUTHORIZATION_CACHE_KEY } from '../lib/constructs/api';
import { logicalId, ofType, only, references, serviceOf, synthesize, Synthesized } from './helpers';
import { routerRoutes } from './service-source';

let synth: Synthesized;
let apiFunctionId: string;

beforeAll(() => {
  synth = synthesize();
  apiFunctionId = logicalId(synth.stack, serviceOf(synth).compute.api.function);
});

/** Every API Gateway resource's full path, by logical id. */
function resourcePaths(json: Synthesized['json']): Map<string, string> {
  const resources = ofType(json, 'AWS::ApiGateway::Resource');
  const paths = new Map<string, string>();
  const pathOf = (id: string): string => {
    if (paths.has(id)) return paths.get(id)!;
    const { ParentId, PathPart } = resources[id].Properties;
    const parent = ParentId.Ref ? pathOf(ParentId.Ref) : '';
    const full = `${parent}/${PathPart}`;
    paths.set(id, full);
    return full;
  };
  Object.keys(resources).forEach(pathOf);
  return paths;
}

interface RouteMethod {
  readonly path: string;
  readonly httpMethod: string;
  readonly properties: any;
}

function methods(json: Synthesized['json']): RouteMethod[] {
  const paths = resourcePaths(json);
  return Object.values(ofType(json, 'AWS::ApiGateway::Method')).map((method) => ({
    path: method.Properties.ResourceId.Ref ? paths.get(method.Properties.ResourceId.Ref)! : '/',
    httpMethod: method.Properties.HttpMethod,
    properties: method.Properties,
  }));
}

/**
 * The resource API Gateway picks for a request path: at each segment a literal child wins
 * over a `{param}` child, and a `{proxy+}` child takes the rest; a resource that exists but
 * lacks the method answers 403 rather than falling back.
 */
function resolve(paths: string[], requestPath: string): string | undefined {
  const segments = requestPath.split('/').filter(Boolean);
  let current = '';
  for (let i = 0; i < segments.length; i++) {
    const children = paths.filter((p) => p.startsWith(`${current}/`) && p.split('/').length === current.split('/').length + 1);
    const literal = children.find((p) => p.endsWith(`/${segments[i]}`));
    const param = children.find((p) => /\/\{[^+}]+\}$/.test(p));
    const greedy = children.find((p) => p.endsWith('+}'));
    if (literal) current = literal;
    else if (param) current = param;
    else if (greedy) return greedy;
    else return undefined;
  }
  return current;
}

test('every route of the router reaches the API function with each of its methods', () => {
  const all = methods(synth.json);
  const paths = [...resourcePaths(synth.json).values()];
  const routes = routerRoutes();
  expect(routes.length).toBeGreaterThanOrEqual(9);
  for (const route of routes) {
    const sample = route.path.replace(/\{[^}]+\}/g, '0190c3b2-0000-7000-8000-000000000001');
    const resource = resolve(paths, sample);
    expect({ route: route.path, resource }).toEqual({ route: route.path, resource: expect.any(String) });
    for (const httpMethod of route.methods) {
      const method = all.find((m) => m.path === resource && (m.httpMethod === httpMethod || m.httpMethod === 'ANY'));
      expect({ route: route.path, httpMethod, found: !!method }).toEqual({ route: route.path, httpMethod, found: true });
      expect(method!.properties.Integration.Type).toBe('AWS_PROXY');
      expect(JSON.stringify(method!.properties.Integration.Uri)).toContain(apiFunctionId);
    }
  }
  // The literal "bulk" segment is served by /nodes/{id}'s ANY, as the router expects.
  expect(resolve(paths, '/api/v1/nodes/bulk')).toBe('/api/v1/nodes/{id}');
});

test('the stage has a 0.5 GB cache cluster, X-Ray, throttling and JSON access logs', () => {
  const [, stage] = only(ofType(synth.json, 'AWS::ApiGateway::Stage'), 'stage');
  expect(stage.Properties).toMatchObject({ StageName: 'prod', CacheClusterEnabled: true, CacheClusterSize: '0.5', TracingEnabled: true });
  const all = stage.Properties.MethodSettings.find((s: any) => s.ResourcePath === '/*' && s.HttpMethod === '*');
  expect(all).toMatchObject({ CachingEnabled: false, ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200, LoggingLevel: 'ERROR', DataTraceEnabled: false });
  const accessLogs = logicalId(synth.stack, serviceOf(synth).api.accessLogs);
  expect([...references(stage.Properties.AccessLogSetting.DestinationArn)]).toContain(accessLogs);
  const format = JSON.parse(stage.Properties.AccessLogSetting.Format);
  expect(format).toMatchObject({ requestId: '$context.requestId', status: '$context.status', resourcePath: '$context.resourcePath' });
  expect(synth.json.Resources[accessLogs].Properties.RetentionInDays).toBe(30);
});

test('graph-data (300 s) and nodes/{id} GETs are cached, encrypted, and nothing else is', () => {
  const [, stage] = only(ofType(synth.json, 'AWS::ApiGateway::Stage'), 'stage');
  const cached = stage.Properties.MethodSettings.filter((s: any) => s.CachingEnabled);
  expect(cached.map((s: any) => `${s.HttpMethod} ${s.ResourcePath}`).sort()).toEqual([
    'GET /~1api~1v1~1graph-data',
    'GET /~1api~1v1~1nodes~1{id}',
  ]);
  const ttl = (path: string) => cached.find((s: any) => s.ResourcePath === path);
  expect(ttl('/~1api~1v1~1graph-data')).toMatchObject({ CacheTtlInSeconds: 300, CacheDataEncrypted: true });
  expect(ttl('/~1api~1v1~1nodes~1{id}')).toMatchObject({ CacheTtlInSeconds: 60, CacheDataEncrypted: true });
});

test('every cached method keys its cache on the Authorization header, so no caller gets another\'s response', () => {
  const [, stage] = only(ofType(synth.json, 'AWS::ApiGateway::Stage'), 'stage');
  const all = methods(synth.json);
  const cached = stage.Properties.MethodSettings.filter((s: any) => s.CachingEnabled);
  expect(cached.length).toBeGreaterThan(0);
  for (const setting of cached) {
    const path = setting.ResourcePath.replace(/^\//, '').replace(/~1/g, '/');
    const method = all.find((m) => m.path === path && m.httpMethod === setting.HttpMethod)!;
    expect(method.properties.Integration.CacheKeyParameters).toContain(AUTHORIZATION_CACHE_KEY);
    expect(Object.keys(method.properties.RequestParameters)).toContain(AUTHORIZATION_CACHE_KEY);
    for (const parameter of path.match(/\{[^}]+\}/g) ?? []) {
      // A path parameter belongs in the key too, or every node would share one entry.
      expect(method.properties.Integration.CacheKeyParameters).toContain(`method.request.path.${parameter.slice(1, -1)}`);
    }
  }
  expect(AUTHORIZATION_CACHE_KEY).toBe('method.request.header.Authorization');
});

test('API Gateway compresses responses of 1000 bytes and more, and the function leaves compression to it', () => {
  synth.template.hasResourceProperties('AWS::ApiGateway::RestApi', { MinimumCompressionSize: 1000 });
  expect(synth.json.Resources[apiFunctionId].Properties.Environment.Variables.BRAIN2_FLAG_COMPRESSION).toBe('off');
});

test('a usage plan applies the stage\'s throttling', () => {
  const stage = logicalId(synth.stack, serviceOf(synth).api.stage);
  synth.template.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
    Throttle: { RateLimit: 100, BurstLimit: 200 },
    ApiStages: [Match.objectLike({ Stage: { Ref: stage } })],
  });
});

test('cognito mode: every method but the health check needs the user pool authorizer', () => {
  const authorizer = logicalId(synth.stack, serviceOf(synth).api.authorizer);
  synth.template.hasResourceProperties('AWS::ApiGateway::Authorizer', {
    Type: 'COGNITO_USER_POOLS',
    IdentitySource: 'method.request.header.Authorization',
  });
  for (const method of methods(synth.json)) {
    if (method.path === '/api/v1/health') {
      expect(method.properties.AuthorizationType).toBe('NONE');
    } else {
      expect({ path: method.path, type: method.properties.AuthorizationType }).toEqual({ path: method.path, type: 'COGNITO_USER_POOLS' });
      expect(method.properties.AuthorizerId).toEqual({ Ref: authorizer });
    }
  }
  const env = synth.json.Resources[apiFunctionId].Properties.Environment.Variables;
  expect(env.BRAIN2_AUTH_MODE).toBe('apigateway');
});

test('jwt mode: no authorizer, the function checks tokens, caching still keys on Authorization', () => {
  const jwt = synthesize({ authMode: 'jwt' });
  jwt.template.resourceCountIs('AWS::ApiGateway::Authorizer', 0);
  for (const method of methods(jwt.json)) {
    expect(method.properties.AuthorizationType).toBe('NONE');
    if (method.httpMethod === 'GET') {
      expect(method.properties.Integration.CacheKeyParameters).toContain(AUTHORIZATION_CACHE_KEY);
    }
  }
});
