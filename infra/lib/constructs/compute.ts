import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaEvents from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { API_TABLE_ACCESS, CLEANUP_TABLE_ACCESS, EVENTS_TABLE_ACCESS, SIMILARITY_TABLE_ACCESS, TableAccess } from '../access';
import { LambdaAssets } from '../assets';
import { Brain2Config, FunctionSizing, SWEEP_SLOTS, requestDeadlineMs } from '../config';
import { indexNamed } from '../schema';
import { Authentication } from './auth';
import { Messaging } from './messaging';
import { FunctionNetwork, ServiceFunction } from './service-function';
import { SharedCache } from './shared-cache';
import { Brain2Table } from './table';

/** SQS messages per worker invocation: what one batch response can report on. */
export const WORKER_BATCH_SIZE = 10;

/** What the scheduled rule sends the cleanup function: anything but an SQS batch means "sweep". */
export const SWEEP_EVENT = { sweep: 'deletion-queue' };

/**
 * How the events function reads the table's stream. A batch is retried (halved each time,
 * and from the first record the function reports as failed) up to `retryAttempts` times or
 * until its oldest record is `maxRecordAge` old; then Lambda sends what it gave up on (the
 * shard and the sequence numbers, not the records) to the stream failures queue and moves on.
 */
export const STREAM_CONSUMER = {
  startingPosition: lambda.StartingPosition.TRIM_HORIZON,
  batchSize: 100,
  bisectBatchOnError: true,
  reportBatchItemFailures: true,
  retryAttempts: 10,
  maxRecordAge: Duration.hours(1),
  parallelizationFactor: 1,
} as const;

/**
 * The items that yield an event: nodes and edges, `entity` in the service's items
 * (backend/service/src/adapters/dynamodb/items.rs). A record whose new image (a write) or
 * old image (a delete) is one of them invokes the function; postings, counters and the
 * applied-event items never do.
 */
export const STREAM_ENTITIES: readonly string[] = ['node', 'edge'];

export interface ComputeProps {
  readonly config: Brain2Config;
  readonly assets: LambdaAssets;
  readonly table: Brain2Table;
  readonly messaging: Messaging;
  readonly auth: Authentication;
  /** When given, every function runs in its VPC and gets its address (`BRAIN2_CACHE_URL`). */
  readonly sharedCache?: SharedCache;
}

/**
 * The settings every function of the service gets: the stack's table and bus, the profile,
 * the delivery mode, the shared cache's address when the function reads through it, and the
 * deployment's own `serviceSettings`.
 */
export function commonEnvironment(
  config: Brain2Config,
  table: Brain2Table,
  messaging: Messaging,
  sharedCache?: SharedCache,
): Record<string, string> {
  return {
    BRAIN2_TABLE: table.table.tableName,
    BRAIN2_EVENT_BUS: messaging.bus.eventBusName,
    BRAIN2_PROFILE: 'optimized',
    BRAIN2_EVENT_DELIVERY: config.eventDelivery,
    ...(sharedCache && { BRAIN2_CACHE_URL: sharedCache.url }),
    ...config.serviceSettings,
  };
}

/** The `ServiceFunction` settings every function shares, and its network when it runs in a VPC. */
export function functionDefaults(config: Brain2Config, network?: FunctionNetwork) {
  return { architecture: config.architecture, logRetentionDays: config.logRetentionDays, network };
}

/** The workers authenticate nobody; this mode lets them start without a token secret. */
export const NO_CALLERS: Readonly<Record<string, string>> = { BRAIN2_AUTH_MODE: 'apigateway' };

/** A worker's SQS visibility timeout: six times its function's timeout, as Lambda recommends. */
export function visibilityTimeout(sizing: FunctionSizing): Duration {
  return Duration.seconds(6 * sizing.timeoutSeconds);
}

/**
 * The four functions of the graph service in backend/lambda (the two realtime functions are
 * `Realtime`'s) and what each may touch:
 * - the API (`brain2-lambda`): the table, PutEvents on the bus, the publisher's
 *   dead-letter queue;
 * - cleanup (`brain2-cleanup`): the table and its queue, plus a scheduled sweep of the
 *   DeletionQueue index for deletes whose message never came;
 * - similarity (`brain2-similarity`): the table and its queue, and, because it announces
 *   the edges it draws (`edge.created`), PutEvents and the publisher's dead-letter queue;
 * - events (`brain2-events`): the table's stream (no item), PutEvents, the publisher's
 *   dead-letter queue and the stream failures queue. It publishes the events of node and
 *   edge writes when the service delivers them through the table (`eventDelivery` `outbox`);
 *   in the other modes its stream event source is disabled.
 * Every function gets the delivery mode (`BRAIN2_EVENT_DELIVERY`) and, with the shared cache,
 * the cache's address (`BRAIN2_CACHE_URL`) and a place in its VPC: each runs the service with
 * its read cache, whose second tier they share.
 * Queue- and stream-fed functions report partial batch failures, so only failed messages or
 * records return.
 */
export class Compute extends Construct {
  readonly api: ServiceFunction;
  readonly cleanup: ServiceFunction;
  readonly similarity: ServiceFunction;
  readonly events: ServiceFunction;
  readonly sweepRule: events.Rule;

  constructor(scope: Construct, id: string, props: ComputeProps) {
    super(scope, id);
    const { config, assets, table, messaging, auth, sharedCache } = props;
    const common = commonEnvironment(config, table, messaging, sharedCache);
    const everyFunction = functionDefaults(config, sharedCache?.functionNetwork);
    const publishing = { BRAIN2_EVENTS_DLQ_URL: messaging.publishDeadLetterQueue.queueUrl };

    this.api = new ServiceFunction(this, 'Api', {
      functionName: `${config.prefix}-api`,
      description: 'Brain2 API behind API Gateway (brain2-lambda)',
      code: assets.code('brain2-lambda'),
      ...everyFunction,
      sizing: config.api,
      environment: {
        // API Gateway compresses responses (minimumCompressionSize), after its cache: cached
        // bodies stay unencoded and no client gets an encoding it did not ask for.
        BRAIN2_FLAG_COMPRESSION: 'off',
        ...common,
        ...publishing,
        ...auth.apiSettings(),
        BRAIN2_REQUEST_DEADLINE_MS: String(requestDeadlineMs(config.api)),
      },
    });
    this.cleanup = new ServiceFunction(this, 'Cleanup', {
      functionName: `${config.prefix}-cleanup`,
      description: 'Brain2 cleanup worker: node.deleted messages and the DeletionQueue sweep (brain2-cleanup)',
      code: assets.code('brain2-cleanup'),
      ...everyFunction,
      sizing: config.cleanup,
      environment: { ...common, ...NO_CALLERS, BRAIN2_CLEANUP_GRACE_SECONDS: String(config.cleanupGraceSeconds) },
    });
    this.similarity = new ServiceFunction(this, 'Similarity', {
      functionName: `${config.prefix}-similarity`,
      description: 'Brain2 similarity worker: note changes, keyword frequencies, similarity edges (brain2-similarity)',
      code: assets.code('brain2-similarity'),
      ...everyFunction,
      sizing: config.similarity,
      environment: { ...common, ...publishing, ...NO_CALLERS },
    });
    this.events = new ServiceFunction(this, 'Events', {
      functionName: `${config.prefix}-events`,
      description: 'Brain2 events publisher: node and edge changes from the table stream to the bus (brain2-events)',
      code: assets.code('brain2-events'),
      ...everyFunction,
      sizing: config.events,
      environment: {
        ...common,
        ...publishing,
        ...NO_CALLERS,
        BRAIN2_STREAM_FAILURES_QUEUE_URL: messaging.streamFailuresQueue.queueUrl,
      },
      unscopedActions: { actions: ['dynamodb:ListStreams'], reason: 'granted by the DynamoDB stream event source, as Lambda requires' },
    });

    grantTable(this.api, table, API_TABLE_ACCESS);
    grantTable(this.cleanup, table, CLEANUP_TABLE_ACCESS);
    grantTable(this.similarity, table, SIMILARITY_TABLE_ACCESS);
    grantTable(this.events, table, EVENTS_TABLE_ACCESS);
    for (const publisher of [this.api, this.similarity, this.events]) {
      messaging.bus.grantPutEventsTo(publisher.role);
      messaging.publishDeadLetterQueue.grantSendMessages(publisher.role);
    }
    // The health check describes the bus.
    this.api.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['events:DescribeEventBus'], resources: [messaging.bus.eventBusArn] }),
    );

    consume(this.cleanup, messaging.cleanup.queue, config.cleanup, SWEEP_SLOTS);
    consume(this.similarity, messaging.similarity.queue, config.similarity, 0);

    // Malformed records are sent here by the function itself; Lambda sends here what it
    // gives up on. Both need SendMessage (the event source's destination grants it as well).
    messaging.streamFailuresQueue.grantSendMessages(this.events.role);
    this.events.function.addEventSource(
      new lambdaEvents.DynamoEventSource(table.table, {
        ...STREAM_CONSUMER,
        onFailure: new lambdaEvents.SqsDlq(messaging.streamFailuresQueue),
        enabled: config.eventDelivery === 'outbox',
        filters: (['NewImage', 'OldImage'] as const).map((image) =>
          lambda.FilterCriteria.filter({ dynamodb: { [image]: { entity: { S: lambda.FilterRule.or(...STREAM_ENTITIES) } } } }),
        ),
      }),
    );

    this.sweepRule = new events.Rule(this, 'SweepSchedule', {
      ruleName: `${config.prefix}-cleanup-sweep`,
      description: 'Purges soft-deleted nodes older than the grace period whose node.deleted message never arrived',
      schedule: events.Schedule.rate(Duration.minutes(config.sweepIntervalMinutes)),
    });
    this.sweepRule.addTarget(
      new targets.LambdaFunction(this.cleanup.function, {
        event: events.RuleTargetInput.fromObject(SWEEP_EVENT),
        retryAttempts: 2,
        maxEventAge: Duration.minutes(config.sweepIntervalMinutes),
      }),
    );
  }

  get all(): ServiceFunction[] {
    return [this.api, this.cleanup, this.similarity, this.events];
  }
}

/** Grants a function its `TableAccess`: the item actions on the table, Query on each named index. */
export function grantTable(fn: ServiceFunction, table: Brain2Table, access: TableAccess): void {
  if (access.tableActions.length > 0) {
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: [...access.tableActions], resources: [table.table.tableArn] }),
    );
  }
  if (access.queriedIndexes.length > 0) {
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:Query'],
        resources: access.queriedIndexes.map((key) => table.indexArn(indexNamed(table.schema, key))),
      }),
    );
  }
}

/** How long Lambda gathers messages into a batch before it invokes a worker, unless told otherwise. */
const WORKER_BATCHING_WINDOW = Duration.seconds(1);

/**
 * Feeds a queue to a worker. With a reserved concurrency the event source never runs more
 * batches than the function may (less `spare`): a throttled batch would count as a
 * receive and could reach the dead-letter queue without ever being handled.
 */
export function consume(
  fn: ServiceFunction,
  queue: sqs.IQueue,
  sizing: FunctionSizing,
  spare: number,
  batchingWindow: Duration = WORKER_BATCHING_WINDOW,
): void {
  const reserved = sizing.reservedConcurrency;
  fn.function.addEventSource(
    new lambdaEvents.SqsEventSource(queue, {
      batchSize: WORKER_BATCH_SIZE,
      maxBatchingWindow: batchingWindow,
      reportBatchItemFailures: true,
      maxConcurrency: reserved > 0 ? reserved - spare : undefined,
    }),
  );
}
