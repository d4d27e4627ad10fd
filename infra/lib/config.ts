import * as path from 'path';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Node } from 'constructs';
import { DEFAULT_LAMBDA_ASSETS, REPO_ROOT } from './paths';

/**
 * How callers are authenticated.
 * - `cognito`: a Cognito user pool authorizer on the REST API checks the token and the
 *   function trusts its claims (`BRAIN2_AUTH_MODE=apigateway`).
 * - `jwt`: the function verifies HS256 tokens itself; the secret comes from Secrets
 *   Manager through a CloudFormation dynamic reference, never as a literal.
 */
export type AuthMode = 'cognito' | 'jwt';

export type Architecture = 'arm64' | 'x86_64';

/**
 * Where the stack is deployed.
 * - `aws`: the whole stack.
 * - `localstack`: the data plane alone (the table, the bus, its rules and the queues), for
 *   LocalStack's community edition without a container engine, which cannot run functions;
 *   an integration suite plays the functions' part against it.
 */
export type DeployTarget = 'aws' | 'localstack';

export const DEPLOY_TARGETS: readonly DeployTarget[] = ['aws', 'localstack'];

/**
 * How the service's domain events reach the bus (`BRAIN2_EVENT_DELIVERY` of every function).
 * - `inline`: the API and the similarity worker put each event on the bus themselves, on
 *   the request's path;
 * - `background`: they hand the events to a publisher task of their own process, which
 *   sends them in batches;
 * - `outbox`: they write only to the table, and the events function (`brain2-events`) reads
 *   the table's stream and publishes. Its event source mapping is enabled in this mode
 *   alone: in the others it would publish every event a second time.
 */
export type EventDelivery = 'inline' | 'background' | 'outbox';

export const EVENT_DELIVERIES: readonly EventDelivery[] = ['inline', 'background', 'outbox'];

/**
 * The shared read cache: an ElastiCache Serverless (Valkey) cache the functions reach as
 * `BRAIN2_CACHE_URL`, behind each function's own in-process cache. Off by default: it puts
 * the functions in a VPC with interface endpoints, which cost by the hour whatever the
 * traffic (docs/deploy.md, Shared cache). The limits cap what the cache may use, and so
 * what it may cost.
 */
export interface SharedCacheConfig {
  readonly enabled: boolean;
  /** Most data it holds, in GB; at the limit it evicts the least recently used keys with a TTL. */
  readonly maxDataStorageGb: number;
  /** Most ECPUs it serves a second; requests beyond are throttled. */
  readonly maxEcpuPerSecond: number;
}

export interface FunctionSizing {
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
  /** Executions kept for this function alone; 0 leaves it in the account's shared pool. */
  readonly reservedConcurrency: number;
}

/** Every deploy-time choice of the stack, read from CDK context (`-c key=value` or cdk.json). */
export interface Brain2Config {
  /** What the stack holds and how it is deployed; see `DeployTarget`. */
  readonly target: DeployTarget;
  /** Name prefix of the bus, queues, rules, functions, API, alarms and dashboards. */
  readonly prefix: string;
  /** Directory with `<bin>/bootstrap.zip` per function (cargo lambda's output). */
  readonly lambdaAssets: string;
  /** When a zip is missing, package a stub that cannot serve instead of failing (synth and tests only). */
  readonly allowStubAssets: boolean;
  readonly architecture: Architecture;
  readonly authMode: AuthMode;
  /** See `EventDelivery`. */
  readonly eventDelivery: EventDelivery;
  /** jwt mode: name of an existing Secrets Manager secret; unset creates one with a generated value. */
  readonly jwtSecretName?: string;
  /** Extra `BRAIN2_*` settings for every function, e.g. `{"BRAIN2_PROFILE":"baseline"}`. */
  readonly serviceSettings: Record<string, string>;
  readonly stageName: string;
  readonly logRetentionDays: number;
  readonly throttleRateLimit: number;
  readonly throttleBurstLimit: number;
  readonly graphCacheTtlSeconds: number;
  readonly nodeCacheTtlSeconds: number;
  readonly sweepIntervalMinutes: number;
  readonly cleanupGraceSeconds: number;
  readonly api: FunctionSizing;
  readonly cleanup: FunctionSizing;
  readonly similarity: FunctionSizing;
  readonly events: FunctionSizing;
  /** The WebSocket API's integration: `$connect`, `$disconnect` and `$default`. */
  readonly realtimeConnections: FunctionSizing;
  /** Fed by the realtime queue: posts each change to the user's open connections. */
  readonly realtimeBroadcast: FunctionSizing;
  /** Default route throttling of the WebSocket API's stage: connects and messages a second. */
  readonly realtimeThrottleRateLimit: number;
  readonly realtimeThrottleBurstLimit: number;
  /** See `SharedCacheConfig`. */
  readonly sharedCache: SharedCacheConfig;
  /** Subscribed to the alarm topic when given. */
  readonly alarmEmail?: string;
  /** Prefix of runbook links in alarm descriptions, e.g. a repository's web address of docs/runbooks. */
  readonly runbookBaseUrl: string;
}

/** Settings the stack owns: set from the resources it creates, never from context. */
export const STACK_OWNED_SETTINGS: readonly string[] = [
  'BRAIN2_TABLE',
  'BRAIN2_EVENT_BUS',
  'BRAIN2_EVENTS_DLQ_URL',
  'BRAIN2_EVENT_DELIVERY',
  'BRAIN2_STREAM_FAILURES_QUEUE_URL',
  'BRAIN2_AUTH_MODE',
  'BRAIN2_JWT_SECRET',
  'BRAIN2_CLEANUP_GRACE_SECONDS',
  'BRAIN2_REQUEST_DEADLINE_MS',
  'BRAIN2_CACHE_URL',
  'BRAIN2_REALTIME_ENDPOINT',
];

/** Settings a deployed function refuses to start with (local measurement only). */
export const LOCAL_ONLY_SETTINGS: readonly string[] = [
  'BRAIN2_SIM_RTT_MS',
  'BRAIN2_SIM_RTT_JITTER_MS',
  'BRAIN2_SIM_CACHE_RTT_MS',
  'BRAIN2_FAULTS',
];

/** Executions of the cleanup function kept free of SQS batches for the scheduled sweep. */
export const SWEEP_SLOTS = 1;

// Only names are checked here; the service checks the values when it starts.
const SETTING_NAME = /^BRAIN2_[A-Z0-9_]+$|^RUST_LOG$/;

class ContextReader {
  constructor(private readonly node: Node) {}

  private raw(key: string): unknown {
    return this.node.tryGetContext(key);
  }

  string(key: string, fallback: string): string {
    const value = this.raw(key);
    if (value === undefined || value === null || value === '') return fallback;
    if (typeof value !== 'string') throw new Error(`context ${key} must be a string, got ${JSON.stringify(value)}`);
    return value;
  }

  optionalString(key: string): string | undefined {
    const value = this.raw(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') throw new Error(`context ${key} must be a string, got ${JSON.stringify(value)}`);
    return value;
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    const value = this.raw(key);
    if (value === undefined || value === null || value === '') return fallback;
    const parsed = typeof value === 'number' ? value : Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new Error(`context ${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
    }
    return parsed;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.raw(key);
    if (value === undefined || value === null || value === '') return fallback;
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    throw new Error(`context ${key} must be true or false, got ${JSON.stringify(value)}`);
  }

  oneOf<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
    const value = this.string(key, fallback);
    if (!(allowed as readonly string[]).includes(value)) {
      throw new Error(`context ${key} must be one of ${allowed.join(', ')}, got ${value}`);
    }
    return value as T;
  }

  settings(key: string): Record<string, string> {
    const value = this.raw(key);
    if (value === undefined || value === null || value === '') return {};
    const parsed = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error(`context ${key} must be a JSON object of setting names to values`);
    }
    const settings: Record<string, string> = {};
    for (const [name, setting] of Object.entries(parsed as Record<string, unknown>)) {
      if (!SETTING_NAME.test(name)) throw new Error(`context ${key}: ${name} is not a BRAIN2_* setting`);
      if (STACK_OWNED_SETTINGS.includes(name)) throw new Error(`context ${key}: ${name} is set by the stack`);
      if (LOCAL_ONLY_SETTINGS.includes(name)) throw new Error(`context ${key}: ${name} is refused in Lambda`);
      if (typeof setting !== 'string' && typeof setting !== 'number' && typeof setting !== 'boolean') {
        throw new Error(`context ${key}: ${name} must be a string`);
      }
      settings[name] = String(setting);
    }
    return settings;
  }
}

/** CloudWatch Logs accepts only certain retention periods. */
function retentionDays(days: number): number {
  const allowed = Object.values(logs.RetentionDays).filter((value): value is number => typeof value === 'number' && value > 0);
  if (!allowed.includes(days)) {
    throw new Error(`context logRetentionDays must be one of ${allowed.join(', ')}, got ${days}`);
  }
  return days;
}

/**
 * A queue-fed worker's reserved concurrency, which also bounds its SQS event source (at
 * least 2 pollers): 0 leaves the function in the shared pool. `spare` slots stay free for
 * other invocations (the cleanup function's scheduled sweep); `fallback` applies when the
 * context does not set it.
 */
function workerConcurrency(context: ContextReader, key: string, spare: number, fallback = 5): number {
  const value = context.integer(key, fallback, 0, 1000);
  if (value !== 0 && value < 2 + spare) throw new Error(`context ${key} must be 0 (shared pool) or at least ${2 + spare}`);
  return value;
}

/** The shared cache's settings; its limits' ranges are ElastiCache Serverless's own. */
function sharedCache(context: ContextReader, target: DeployTarget): SharedCacheConfig {
  const enabled = context.boolean('sharedCache', false);
  if (enabled && target !== 'aws') {
    throw new Error(`context sharedCache needs target aws: the ${target} target has no functions to use it`);
  }
  return {
    enabled,
    maxDataStorageGb: context.integer('sharedCacheMaxDataGb', 1, 1, 5000),
    maxEcpuPerSecond: context.integer('sharedCacheMaxEcpuPerSecond', 5000, 1000, 15_000_000),
  };
}

export function readConfig(node: Node): Brain2Config {
  const context = new ContextReader(node);
  const target = context.oneOf<DeployTarget>('target', 'aws', DEPLOY_TARGETS);
  const prefix = context.string('prefix', 'brain2');
  if (!/^[a-z][a-z0-9-]{1,30}$/.test(prefix)) {
    throw new Error(`context prefix must be 2-31 lower-case letters, digits or dashes, got ${prefix}`);
  }
  const lambdaAssets = context.optionalString('lambdaAssets') ?? process.env.BRAIN2_LAMBDA_ASSETS;
  return {
    target,
    prefix,
    lambdaAssets: lambdaAssets ? path.resolve(REPO_ROOT, lambdaAssets) : DEFAULT_LAMBDA_ASSETS,
    allowStubAssets: context.boolean('allowStubAssets', false),
    architecture: context.oneOf<Architecture>('architecture', 'arm64', ['arm64', 'x86_64']),
    authMode: context.oneOf<AuthMode>('authMode', 'cognito', ['cognito', 'jwt']),
    eventDelivery: context.oneOf<EventDelivery>('eventDelivery', 'outbox', EVENT_DELIVERIES),
    jwtSecretName: context.optionalString('jwtSecretName'),
    serviceSettings: context.settings('serviceSettings'),
    stageName: context.string('stageName', 'prod'),
    logRetentionDays: retentionDays(context.integer('logRetentionDays', 30, 1, 3653)),
    throttleRateLimit: context.integer('throttleRateLimit', 100, 1, 10000),
    throttleBurstLimit: context.integer('throttleBurstLimit', 200, 1, 5000),
    graphCacheTtlSeconds: context.integer('graphCacheTtlSeconds', 300, 0, 3600),
    nodeCacheTtlSeconds: context.integer('nodeCacheTtlSeconds', 60, 0, 3600),
    sweepIntervalMinutes: context.integer('sweepIntervalMinutes', 15, 1, 1440),
    cleanupGraceSeconds: context.integer('cleanupGraceSeconds', 300, 0, 86400),
    api: {
      memoryMb: context.integer('apiMemoryMb', 512, 128, 10240),
      // Below API Gateway's 29 s integration limit, above the SDK's 12 s per operation; the
      // request deadline is derived from it (see `requestDeadlineMs`).
      timeoutSeconds: context.integer('apiTimeoutSeconds', 25, 1, 29),
      reservedConcurrency: context.integer('apiReservedConcurrency', 50, 0, 1000),
    },
    cleanup: {
      memoryMb: context.integer('cleanupMemoryMb', 256, 128, 10240),
      timeoutSeconds: context.integer('cleanupTimeoutSeconds', 120, 1, 900),
      reservedConcurrency: workerConcurrency(context, 'cleanupReservedConcurrency', SWEEP_SLOTS),
    },
    similarity: {
      memoryMb: context.integer('similarityMemoryMb', 256, 128, 10240),
      timeoutSeconds: context.integer('similarityTimeoutSeconds', 60, 1, 900),
      reservedConcurrency: workerConcurrency(context, 'similarityReservedConcurrency', 0),
    },
    // Fed by the table's stream: one batch at a time per shard (parallelization factor 1),
    // so it needs as many executions as the stream has shards. None are reserved by default;
    // a reservation below the shard count leaves shards waiting, and their events late.
    events: {
      memoryMb: context.integer('eventsMemoryMb', 256, 128, 10240),
      timeoutSeconds: context.integer('eventsTimeoutSeconds', 60, 1, 900),
      reservedConcurrency: context.integer('eventsReservedConcurrency', 0, 0, 1000),
    },
    // Each connect, disconnect and message is one short invocation; API Gateway waits 29 s
    // at most for a WebSocket integration.
    realtimeConnections: {
      memoryMb: context.integer('realtimeConnectionsMemoryMb', 256, 128, 10240),
      timeoutSeconds: context.integer('realtimeConnectionsTimeoutSeconds', 10, 1, 29),
      reservedConcurrency: context.integer('realtimeConnectionsReservedConcurrency', 0, 0, 1000),
    },
    // A batch is ten messages, each posted to a user's few connections. None reserved by
    // default: a reservation would cap how fast a burst of changes reaches clients.
    realtimeBroadcast: {
      memoryMb: context.integer('realtimeBroadcastMemoryMb', 256, 128, 10240),
      timeoutSeconds: context.integer('realtimeBroadcastTimeoutSeconds', 30, 1, 900),
      reservedConcurrency: workerConcurrency(context, 'realtimeBroadcastReservedConcurrency', 0, 0),
    },
    // Clients connect once and send a subscription and an occasional ping: far fewer
    // messages than REST requests, but a deploy or a network change reconnects them all at once.
    realtimeThrottleRateLimit: context.integer('realtimeThrottleRateLimit', 100, 1, 10000),
    realtimeThrottleBurstLimit: context.integer('realtimeThrottleBurstLimit', 200, 1, 5000),
    sharedCache: sharedCache(context, target),
    alarmEmail: context.optionalString('alarmEmail'),
    runbookBaseUrl: context.string('runbookBaseUrl', 'docs/runbooks').replace(/\/+$/, ''),
  };
}

/** Time the API function keeps after a request's deadline to answer it and flush its telemetry. */
export const DEADLINE_RESERVE_MS = 2000;

/**
 * The API's end-to-end request deadline (`BRAIN2_REQUEST_DEADLINE_MS`): the function's
 * timeout less a reserve, so a request out of time answers 503 with `Retry-After` before
 * Lambda kills the invocation or API Gateway gives up at 29 s.
 */
export function requestDeadlineMs(api: FunctionSizing): number {
  return Math.max(1000, api.timeoutSeconds * 1000 - DEADLINE_RESERVE_MS);
}
