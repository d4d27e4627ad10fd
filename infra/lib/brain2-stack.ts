import * as path from 'path';
import { Annotations, Aws, CfnOutput, CfnRule, Fn, Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { AlarmSpec, loadAlarms } from './alarm-spec';
import { LambdaAssets } from './assets';
import { Brain2Config, DeployTarget } from './config';
import { Api } from './constructs/api';
import { Authentication } from './constructs/auth';
import { Compute, visibilityTimeout } from './constructs/compute';
import { Messaging } from './constructs/messaging';
import { Observability } from './constructs/observability';
import { Realtime } from './constructs/realtime';
import { SharedCache } from './constructs/shared-cache';
import { Brain2Table } from './constructs/table';
import { DASHBOARDS_DIR } from './paths';
import { Placeholders } from './placeholders';
import { TableSchema, indexNamed, loadTableSchema } from './schema';
import { synthesizerFor } from './synthesizer';

export interface Brain2StackProps extends StackProps {
  readonly config: Brain2Config;
  /** Where stub function code is written when a zip is missing and stubs are allowed. */
  readonly stubDir: string;
  readonly schema?: TableSchema;
  readonly alarms?: AlarmSpec[];
  readonly dashboardsDir?: string;
}

/** The stack's description on each target. */
export const STACK_DESCRIPTIONS: Readonly<Record<DeployTarget, string>> = {
  aws: 'Brain2 knowledge graph backend: table, API, events, workers, dashboards and alarms',
  localstack: 'Brain2 data plane for LocalStack: table, event bus, rules, worker queues and dead-letter queues',
};

/**
 * What runs the service's code and what fronts and watches it: the functions, the
 * authentication, the REST API in front of them, the WebSocket API of real-time updates, and
 * the dashboards and alarms. Only the `aws` target has it.
 */
export interface ServicePlane {
  readonly auth: Authentication;
  /** With `sharedCache` on only. */
  readonly sharedCache?: SharedCache;
  readonly assets: LambdaAssets;
  readonly compute: Compute;
  readonly api: Api;
  /**
   * With `authMode=jwt` only: `$connect` verifies the HS256 tokens of that mode alone, so
   * with Cognito the WebSocket API is left out (with a warning).
   */
  readonly realtime?: Realtime;
  readonly placeholders: Placeholders;
  readonly observability: Observability;
}

/**
 * Brain2 in one stack: the table (schema/table.json), the bus with the workers' queues,
 * the four functions of the graph service (the events function consumes the table's
 * stream), the REST API, the WebSocket API of real-time updates with its two functions (with
 * `authMode=jwt` only), and the dashboards and alarms of dashboards/ and alarms/; with
 * `sharedCache` on, the shared
 * read cache and the VPC the graph service's functions then run in. Each concern is one
 * construct; later ones (more stream consumers, the chat endpoint) take the ones they need
 * as props.
 *
 * The `localstack` target builds the table and the messaging alone, with the same
 * constructs, and deploys without `cdk bootstrap` (`synthesizerFor`).
 */
export class Brain2Stack extends Stack {
  readonly target: DeployTarget;
  readonly data: Brain2Table;
  readonly messaging: Messaging;
  /** Undefined on the `localstack` target. */
  readonly service?: ServicePlane;

  constructor(scope: Construct, id: string, props: Brain2StackProps) {
    super(scope, id, { ...props, synthesizer: props.synthesizer ?? synthesizerFor(props.config.target) });
    const { config } = props;
    const schema = props.schema ?? loadTableSchema();
    this.target = config.target;

    this.data = new Brain2Table(this, 'Data', { schema });
    this.messaging = new Messaging(this, 'Messaging', {
      prefix: config.prefix,
      cleanupVisibilityTimeout: visibilityTimeout(config.cleanup),
      similarityVisibilityTimeout: visibilityTimeout(config.similarity),
      realtimeVisibilityTimeout: visibilityTimeout(config.realtimeBroadcast),
    });
    if (config.target === 'aws') {
      this.service = this.servicePlane(props, schema);
    }
    this.outputs();
  }

  /** The constructs of the service plane, created directly in the stack (their logical ids depend on it). */
  private servicePlane(props: Brain2StackProps, schema: TableSchema): ServicePlane {
    const { config } = props;
    const auth = new Authentication(this, 'Auth', {
      prefix: config.prefix,
      mode: config.authMode,
      jwtSecretName: config.jwtSecretName,
    });
    const assets = new LambdaAssets(config.lambdaAssets, config.allowStubAssets, props.stubDir);
    const sharedCache = config.sharedCache.enabled
      ? new SharedCache(this, 'SharedCache', {
          prefix: config.prefix,
          config: config.sharedCache,
          logRetentionDays: config.logRetentionDays,
        })
      : undefined;
    const compute = new Compute(this, 'Compute', {
      config,
      assets,
      table: this.data,
      messaging: this.messaging,
      auth,
      sharedCache,
    });
    const api = new Api(this, 'Api', { config, handler: compute.api.function, auth });
    // The connections function verifies on `$connect` the HS256 tokens of `authMode=jwt`
    // alone: it cannot check a Cognito ID token, so with Cognito there is no WebSocket API.
    const realtime =
      config.authMode === 'jwt'
        ? new Realtime(this, 'Realtime', {
            config,
            assets,
            table: this.data,
            messaging: this.messaging,
            auth,
            accountLogging: api.accountLogging,
          })
        : undefined;
    if (!realtime) {
      // Info, not a warning: synth with the AwsSolutions plugin (bin/brain2.ts) fails on any
      // warning not acknowledged, and an acknowledged one is no longer reported.
      Annotations.of(this).addInfo(
        `The WebSocket API of real-time updates (and its functions, dashboard and alarms) is left out: its $connect verifies only the HS256 tokens of authMode=jwt, not the user pool's (deploy with -c authMode=jwt to have it)`,
      );
    }

    const placeholders = new Placeholders(this.placeholderValues(schema, compute, api, realtime, sharedCache));
    const observability = new Observability(this, 'Observability', {
      prefix: config.prefix,
      placeholders,
      alarms: props.alarms ?? loadAlarms(),
      dashboardsDir: props.dashboardsDir ?? DASHBOARDS_DIR,
      runbookBaseUrl: config.runbookBaseUrl,
      alarmEmail: config.alarmEmail,
    });

    if (assets.stubs.length > 0) {
      // CloudFormation evaluates rules before it changes anything: a template built from
      // stubs is refused by any deploy, whatever command started it.
      new CfnRule(this, 'RefuseStubAssets', {
        assertions: [
          {
            assert: Fn.conditionEquals('stub', 'built'),
            assertDescription: `Built with stub function code for ${assets.stubs.join(', ')}: run make deploy, which builds the zips`,
          },
        ],
      });
    }
    return { auth, sharedCache, assets, compute, api, realtime, placeholders, observability };
  }

  /**
   * Every name the dashboard and alarm files may use as `${Name}`; those of the shared cache
   * have no value when it is off, and those of the WebSocket API when it is left out, which
   * leaves out what uses them. The realtime queue's names go with the WebSocket API: the
   * queue stays (the rule feeds it on every deployment), but without the broadcast function
   * nothing reads it, so its alarms and widgets would only report that.
   */
  private placeholderValues(
    schema: TableSchema,
    compute: Compute,
    api: Api,
    realtime?: Realtime,
    sharedCache?: SharedCache,
  ): Record<string, string | undefined> {
    const { messaging, data } = this;
    return {
      Region: Aws.REGION,
      ApiFunctionName: compute.api.function.functionName,
      CleanupFunctionName: compute.cleanup.function.functionName,
      SimilarityFunctionName: compute.similarity.function.functionName,
      EventsFunctionName: compute.events.function.functionName,
      RealtimeConnectionsFunctionName: realtime?.connections.function.functionName,
      RealtimeBroadcastFunctionName: realtime?.broadcast.function.functionName,
      ApiLogGroupName: compute.api.logGroup.logGroupName,
      CleanupLogGroupName: compute.cleanup.logGroup.logGroupName,
      SimilarityLogGroupName: compute.similarity.logGroup.logGroupName,
      EventsLogGroupName: compute.events.logGroup.logGroupName,
      RealtimeConnectionsLogGroupName: realtime?.connections.logGroup.logGroupName,
      RealtimeBroadcastLogGroupName: realtime?.broadcast.logGroup.logGroupName,
      ApiAccessLogGroupName: api.accessLogs.logGroupName,
      RestApiName: api.restApi.restApiName,
      StageName: api.stage.stageName,
      RealtimeApiId: realtime?.webSocketApi.apiId,
      RealtimeStageName: realtime?.stage.stageName,
      RealtimeAccessLogGroupName: realtime?.accessLogs.logGroupName,
      TableName: data.table.tableName,
      KeywordIndexName: indexNamed(schema, 'keyword').name,
      DeletionQueueIndexName: indexNamed(schema, 'deletionQueue').name,
      UserTimeIndexName: indexNamed(schema, 'userTime').name,
      EventBusName: messaging.bus.eventBusName,
      CleanupRuleName: messaging.cleanup.rule.ruleName,
      SimilarityRuleName: messaging.similarity.rule.ruleName,
      RealtimeRuleName: messaging.realtime.rule.ruleName,
      SweepRuleName: compute.sweepRule.ruleName,
      CleanupQueueName: messaging.cleanup.queue.queueName,
      CleanupDlqName: messaging.cleanup.deadLetterQueue.queueName,
      SimilarityQueueName: messaging.similarity.queue.queueName,
      SimilarityDlqName: messaging.similarity.deadLetterQueue.queueName,
      RealtimeQueueName: realtime && messaging.realtime.queue.queueName,
      RealtimeDlqName: realtime && messaging.realtime.deadLetterQueue.queueName,
      PublishDlqName: messaging.publishDeadLetterQueue.queueName,
      StreamFailuresQueueName: messaging.streamFailuresQueue.queueName,
      SharedCacheName: sharedCache?.cacheName,
      // Usage limits, for alarms on the share of them in use.
      SharedCacheMaxEcpuPerSecond: sharedCache && String(sharedCache.config.maxEcpuPerSecond),
      SharedCacheMaxDataGb: sharedCache && String(sharedCache.config.maxDataStorageGb),
    };
  }

  /**
   * The outputs scripts read from `cdk deploy --outputs-file`: the data plane's on both
   * targets, then the service plane's, or on `localstack` the worker queues' URLs.
   */
  private outputs(): void {
    const { data, messaging } = this;
    new CfnOutput(this, 'TableName', {
      value: data.table.tableName,
      description: 'CLOUDWATCH_TABLE of make loadtest CLOUDWATCH=1',
    });
    new CfnOutput(this, 'EventBusName', { value: messaging.bus.eventBusName });
    new CfnOutput(this, 'PublishDeadLetterQueueUrl', { value: messaging.publishDeadLetterQueue.queueUrl });
    new CfnOutput(this, 'StreamFailuresQueueUrl', {
      value: messaging.streamFailuresQueue.queueUrl,
      description: 'BRAIN2_STREAM_FAILURES_QUEUE_URL: stream records the events function could not publish',
    });
    if (this.service) {
      this.serviceOutputs(this.service);
    } else {
      // No function consumes these queues here: whatever runs against this stack reads them
      // in the workers' place.
      const channels = { Cleanup: messaging.cleanup, Similarity: messaging.similarity, Realtime: messaging.realtime };
      for (const [name, channel] of Object.entries(channels)) {
        new CfnOutput(this, `${name}QueueUrl`, { value: channel.queue.queueUrl });
        new CfnOutput(this, `${name}DeadLetterQueueUrl`, { value: channel.deadLetterQueue.queueUrl });
      }
    }
  }

  private serviceOutputs({ api, compute, realtime, auth, observability, sharedCache }: ServicePlane): void {
    new CfnOutput(this, 'ApiUrl', {
      value: `${api.restApi.url}api/v1`,
      description: 'Base URL of the API (TARGET_URL of make loadtest)',
    });
    new CfnOutput(this, 'ApiFunctionName', {
      value: compute.api.function.functionName,
      description: 'CLOUDWATCH_FUNCTION of make loadtest CLOUDWATCH=1',
    });
    new CfnOutput(this, 'RestApiName', {
      value: api.restApi.restApiName,
      description: 'CLOUDWATCH_API of make loadtest CLOUDWATCH=1',
    });
    new CfnOutput(this, 'StageName', {
      value: api.stage.stageName,
      description: 'CLOUDWATCH_STAGE of make loadtest CLOUDWATCH=1',
    });
    if (realtime) {
      new CfnOutput(this, 'RealtimeUrl', {
        value: realtime.url,
        description: 'WebSocket URL of real-time updates: clients connect to it with ?token=<the API bearer token>',
      });
      new CfnOutput(this, 'RealtimeApiId', {
        value: realtime.webSocketApi.apiId,
        description: 'The WebSocket API (ApiId of its AWS/ApiGateway metrics, with Stage live)',
      });
    }
    new CfnOutput(this, 'AlarmTopicArn', { value: observability.topic.topicArn });
    if (auth.userPool && auth.userPoolClient) {
      new CfnOutput(this, 'UserPoolId', { value: auth.userPool.userPoolId });
      new CfnOutput(this, 'UserPoolClientId', { value: auth.userPoolClient.userPoolClientId });
    }
    if (auth.jwtSecretId) {
      new CfnOutput(this, 'JwtSecret', {
        value: auth.jwtSecretId,
        description: 'Secrets Manager secret that signs bearer tokens (read it to run brain2 token)',
      });
    }
    const dashboards = [...observability.dashboards.values()].map((dashboard) => dashboard.dashboardName!);
    new CfnOutput(this, 'Dashboards', { value: dashboards.join(', ') });
    if (sharedCache) {
      new CfnOutput(this, 'SharedCacheEndpoint', {
        value: sharedCache.url,
        description: 'BRAIN2_CACHE_URL of the functions: reachable from the stack\'s VPC only',
      });
    }
  }
}

/** `Brain2` for the default prefix, `Brain2-<prefix>` for another deployment in the same account. */
export function stackNameFor(prefix: string): string {
  return prefix === 'brain2' ? 'Brain2' : `Brain2-${prefix}`;
}

/** The directory stubs go to for an app writing into `outdir`. */
export function stubDirFor(outdir: string): string {
  return path.join(outdir, 'stub-lambda');
}
