import { CfnElement, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, IDependable } from 'constructs';
import { REALTIME_BROADCAST_TABLE_ACCESS, REALTIME_CONNECTIONS_TABLE_ACCESS } from '../access';
import { LambdaAssets } from '../assets';
import { Brain2Config } from '../config';
import { Authentication } from './auth';
import { NO_CALLERS, commonEnvironment, consume, functionDefaults, grantTable } from './compute';
import { Messaging } from './messaging';
import { ServiceFunction } from './service-function';
import { Brain2Table } from './table';

/** The WebSocket API's one stage: clients connect to `wss://<api>.execute-api.<region>.<suffix>/live`. */
export const REALTIME_STAGE_NAME = 'live';

/**
 * The WebSocket API's routes, every one to the connections function. Only `$default`
 * (subscribe and ping messages) answers the client through its integration; API Gateway
 * sends nothing back from `$connect` (a refused connection is a failed handshake) or
 * `$disconnect`.
 */
export const REALTIME_ROUTES = ['$connect', '$disconnect', '$default'] as const;

/**
 * Changes go to clients as soon as they reach the realtime queue: a batching window would
 * hold each one back for its length, and every message should reach clients within a second.
 */
export const REALTIME_BATCHING_WINDOW = Duration.seconds(0);

/** What the broadcast function does through the management API: post a frame to a connection. */
export const MANAGEMENT_ROUTE = 'POST/@connections/*';

export interface RealtimeProps {
  readonly config: Brain2Config;
  readonly assets: LambdaAssets;
  readonly table: Brain2Table;
  readonly messaging: Messaging;
  readonly auth: Authentication;
  /**
   * The account's API Gateway logging role (the REST API's `cloudWatchRole`): WebSocket
   * stages write their access logs with it, so the stage waits for it on a first deploy.
   */
  readonly accountLogging: IDependable;
}

/**
 * Real-time updates over WebSocket, as `brain2 serve` serves them locally:
 * - the WebSocket API `<prefix>-realtime`, whose `$connect`, `$disconnect` and `$default`
 *   routes go to the connections function (`brain2-realtime-connections`). It checks the
 *   token a client connects with (`?token=`, or a `Sec-WebSocket-Protocol` value) as the API
 *   does in `authMode=jwt`, the one mode it can verify (`Authentication.realtimeSettings`;
 *   the stack makes this construct in that mode only), and keeps one connection item per connection
 *   under its user, with a lookup item by connection id;
 * - its stage `live`, throttled by default route settings, with access logs that leave out
 *   the query string (the token travels in it) and no data tracing;
 * - the broadcast function (`brain2-realtime-broadcast`), fed by the realtime queue (every
 *   node and edge change on the bus): it writes each change to the user's event log, posts it
 *   to the user's connections through the stage's management API (`BRAIN2_REALTIME_ENDPOINT`)
 *   and deletes the connections that are gone.
 * Neither function reads the graph, so neither uses the shared cache: they run on Lambda's own
 * network, which reaches the management API (the cache's VPC has no way out).
 */
export class Realtime extends Construct {
  readonly connections: ServiceFunction;
  readonly broadcast: ServiceFunction;
  readonly webSocketApi: apigwv2.WebSocketApi;
  readonly stage: apigwv2.WebSocketStage;
  readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RealtimeProps) {
    super(scope, id);
    const { config, assets, table, messaging, auth } = props;
    const common = commonEnvironment(config, table, messaging);
    const everyFunction = functionDefaults(config);

    this.connections = new ServiceFunction(this, 'Connections', {
      functionName: `${config.prefix}-realtime-connections`,
      description: "Brain2 realtime connections: the WebSocket API's $connect, $disconnect and $default (brain2-realtime-connections)",
      code: assets.code('brain2-realtime-connections'),
      ...everyFunction,
      sizing: config.realtimeConnections,
      environment: { ...common, ...auth.realtimeSettings() },
    });

    // One integration for the three routes; each route gets its own invoke permission.
    const integration = new WebSocketLambdaIntegration('Connections', this.connections.function);
    this.webSocketApi = new apigwv2.WebSocketApi(this, 'Api', {
      apiName: `${config.prefix}-realtime`,
      description: 'Brain2 real-time updates: node and edge changes of the signed-in user (connect with ?token=)',
      connectRouteOptions: { integration },
      disconnectRouteOptions: { integration },
      defaultRouteOptions: { integration, returnResponse: true },
    });

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      logGroupName: `/aws/apigateway/${config.prefix}-realtime/access`,
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new apigwv2.WebSocketStage(this, 'Stage', {
      webSocketApi: this.webSocketApi,
      stageName: REALTIME_STAGE_NAME,
      autoDeploy: true,
      throttle: { rateLimit: config.realtimeThrottleRateLimit, burstLimit: config.realtimeThrottleBurstLimit },
      accessLogSettings: { destination: new apigwv2.LogGroupLogDestination(this.accessLogs), format: accessLogFormat() },
    });
    // Frames carry users' notes: they never go to the logs.
    (this.stage.node.defaultChild as apigwv2.CfnStage).addPropertyOverride('DefaultRouteSettings.DataTraceEnabled', false);
    this.stage.node.addDependency(props.accountLogging);

    this.broadcast = new ServiceFunction(this, 'Broadcast', {
      functionName: `${config.prefix}-realtime-broadcast`,
      description: "Brain2 realtime broadcast: node and edge changes to the user's WebSocket connections (brain2-realtime-broadcast)",
      code: assets.code('brain2-realtime-broadcast'),
      ...everyFunction,
      sizing: config.realtimeBroadcast,
      environment: { ...common, ...NO_CALLERS, BRAIN2_REALTIME_ENDPOINT: this.managementEndpoint },
    });

    grantTable(this.connections, table, REALTIME_CONNECTIONS_TABLE_ACCESS);
    grantTable(this.broadcast, table, REALTIME_BROADCAST_TABLE_ACCESS);
    const managementArn = this.webSocketApi.arnForExecuteApiV2(MANAGEMENT_ROUTE, this.stage.stageName);
    this.broadcast.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['execute-api:ManageConnections'], resources: [managementArn] }),
    );
    consume(this.broadcast, messaging.realtime.queue, config.realtimeBroadcast, 0, REALTIME_BATCHING_WINDOW);

    this.acknowledge();
  }

  /** Where clients connect: `wss://<api>.execute-api.<region>.<suffix>/<stage>`, with `?token=<token>`. */
  get url(): string {
    return this.stage.url;
  }

  /** The stage's management API (`https://…/<stage>`), where the broadcast function posts to connections. */
  get managementEndpoint(): string {
    return this.stage.callbackUrl;
  }

  get all(): ServiceFunction[] {
    return [this.connections, this.broadcast];
  }

  private acknowledge(): void {
    const stack = Stack.of(this);
    const apiId = stack.resolve(stack.getLogicalId(this.webSocketApi.node.defaultChild as CfnElement));
    Validations.of(this.broadcast.role.node.findChild('DefaultPolicy')).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiId}>/${REALTIME_STAGE_NAME}/${MANAGEMENT_ROUTE}]`,
      reason: 'Connection ids exist only at run time: the grant names this API, its stage and POST to @connections, and nothing else',
    });
    const routes = Object.fromEntries(
      REALTIME_ROUTES.map((routeKey) => [routeKey, this.webSocketApi.node.findChild(`${routeKey}-Route`)]),
    );
    Validations.of(routes.$connect).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'The connections function verifies the token of ?token= (or Sec-WebSocket-Protocol) as the API does, and refuses the handshake without a valid one',
    });
    for (const routeKey of ['$disconnect', '$default'] as const) {
      Validations.of(routes[routeKey]).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason: `${routeKey} runs on a connection that $connect authenticated; API Gateway takes an authorizer on $connect only`,
      });
    }
  }
}

/**
 * One JSON object per connect, message and disconnect, with what on-call looks for first. No
 * field holds the query string or the request's headers: the token travels in them.
 */
function accessLogFormat(): apigw.AccessLogFormat {
  const F = apigw.AccessLogField;
  return apigw.AccessLogFormat.custom(
    JSON.stringify({
      requestId: F.contextRequestId(),
      extendedRequestId: F.contextExtendedRequestId(),
      requestTime: F.contextRequestTime(),
      requestTimeEpoch: F.contextRequestTimeEpoch(),
      connectionId: F.contextConnectionId(),
      eventType: F.contextEventType(),
      routeKey: F.contextRouteKey(),
      ip: F.contextIdentitySourceIp(),
      userAgent: F.contextIdentityUserAgent(),
      status: F.contextStatus(),
      integrationStatus: F.contextIntegrationStatus(),
      integrationLatency: F.contextIntegrationLatency(),
      // The WebSocket API's name for the integration's error message.
      integrationError: '$context.integration.error',
      errorMessage: F.contextErrorMessage(),
      errorType: F.contextErrorResponseType(),
    }),
  );
}
