import { Duration, RemovalPolicy, Size, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, IConstruct } from 'constructs';
import { Brain2Config } from '../config';
import { Authentication } from './auth';

/** Responses at least this large are gzip/deflate-compressed by API Gateway for clients that accept it. */
export const MIN_COMPRESSION_BYTES = 1000;

/**
 * The cache key parameter that keeps one user's cached response from ever reaching
 * another: the bearer token is part of every cached GET's key.
 */
export const AUTHORIZATION_CACHE_KEY = 'method.request.header.Authorization';

/** The stage's cache cluster, the smallest there is. */
export const CACHE_CLUSTER_SIZE = '0.5';

export interface ApiProps {
  readonly config: Brain2Config;
  readonly handler: lambda.IFunction;
  readonly auth: Authentication;
}

/**
 * The REST API in front of the API function, a Lambda proxy for everything under
 * `/api/v1` (the router in backend/service/src/http answers unknown routes itself):
 *
 *   /api/v1/health               ANY, no authorizer (the health check is public)
 *   /api/v1/graph-data           GET cached (graphCacheTtlSeconds), ANY
 *   /api/v1/nodes                ANY
 *   /api/v1/nodes/{id}           GET cached (nodeCacheTtlSeconds), ANY (PUT, DELETE, bulk)
 *   /api/v1/nodes/{id}/{proxy+}  ANY (neighbors)
 *   /api/v1/{proxy+}             ANY (edges, search, and whatever the router adds)
 *
 * Each explicit resource carries ANY as well, because API Gateway does not fall back to
 * a parent's greedy path when a more specific resource lacks the method. Cached GETs key
 * on the Authorization header (and the path id), so a response is only ever served
 * again to a caller with the same token.
 */
export class Api extends Construct {
  readonly restApi: apigw.RestApi;
  readonly stage: apigw.Stage;
  readonly accessLogs: logs.LogGroup;
  readonly usagePlan: apigw.UsagePlan;
  readonly authorizer?: apigw.CognitoUserPoolsAuthorizer;
  /**
   * The account's API Gateway settings, which name the logging role (`cloudWatchRole`): what
   * a stage that writes logs, such as the WebSocket API's, must be created after.
   */
  readonly accountLogging: IConstruct;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const { config, handler, auth } = props;
    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      logGroupName: `/aws/apigateway/${config.prefix}-api/access`,
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const cached = (ttlSeconds: number): apigw.MethodDeploymentOptions => ({
      cachingEnabled: true,
      cacheTtl: Duration.seconds(ttlSeconds),
      cacheDataEncrypted: true,
    });
    this.restApi = new apigw.RestApi(this, 'RestApi', {
      restApiName: `${config.prefix}-api`,
      description: 'Brain2 knowledge graph API',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      minCompressionSize: Size.bytes(MIN_COMPRESSION_BYTES),
      // Execution logging (ERROR) needs the account's API Gateway logging role.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: config.stageName,
        cacheClusterEnabled: true,
        cacheClusterSize: CACHE_CLUSTER_SIZE,
        cachingEnabled: false,
        throttlingRateLimit: config.throttleRateLimit,
        throttlingBurstLimit: config.throttleBurstLimit,
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: false,
        tracingEnabled: true,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogs),
        accessLogFormat: accessLogFormat(),
        methodOptions: {
          '/api/v1/graph-data/GET': cached(config.graphCacheTtlSeconds),
          '/api/v1/nodes/{id}/GET': cached(config.nodeCacheTtlSeconds),
        },
      },
    });
    this.stage = this.restApi.deploymentStage;
    this.accountLogging = this.restApi.node.findChild('Account');

    if (auth.userPool) {
      this.authorizer = new apigw.CognitoUserPoolsAuthorizer(this, 'Authorizer', {
        authorizerName: `${config.prefix}-cognito`,
        cognitoUserPools: [auth.userPool],
        identitySource: 'method.request.header.Authorization',
        resultsCacheTtl: Duration.minutes(5),
      });
    }
    const authorized: apigw.MethodOptions = this.authorizer
      ? { authorizer: this.authorizer, authorizationType: apigw.AuthorizationType.COGNITO }
      : { authorizationType: apigw.AuthorizationType.NONE };
    const proxy = new apigw.LambdaIntegration(handler, { proxy: true, allowTestInvoke: false });
    const cachedProxy = (keys: string[]) =>
      new apigw.LambdaIntegration(handler, { proxy: true, allowTestInvoke: false, cacheKeyParameters: keys });

    const v1 = this.restApi.root.addResource('api').addResource('v1');
    const methods: apigw.Method[] = [];
    const anyMethod = (resource: apigw.IResource, options: apigw.MethodOptions = authorized) =>
      methods.push(resource.addMethod('ANY', proxy, options));

    const health = v1.addResource('health');
    const publicHealth = health.addMethod('ANY', proxy, { authorizationType: apigw.AuthorizationType.NONE });

    const graph = v1.addResource('graph-data');
    methods.push(
      graph.addMethod('GET', cachedProxy([AUTHORIZATION_CACHE_KEY]), {
        ...authorized,
        requestParameters: { [AUTHORIZATION_CACHE_KEY]: false },
      }),
    );
    anyMethod(graph);

    const nodes = v1.addResource('nodes');
    anyMethod(nodes);
    const node = nodes.addResource('{id}');
    methods.push(
      node.addMethod('GET', cachedProxy([AUTHORIZATION_CACHE_KEY, 'method.request.path.id']), {
        ...authorized,
        requestParameters: { [AUTHORIZATION_CACHE_KEY]: false, 'method.request.path.id': true },
      }),
    );
    anyMethod(node);
    anyMethod(node.addResource('{proxy+}'));
    anyMethod(v1.addResource('{proxy+}'));

    this.usagePlan = this.restApi.addUsagePlan('UsagePlan', {
      name: `${config.prefix}-api`,
      description: 'Stage-wide limits; per-client limits apply to API keys added to this plan',
      throttle: { rateLimit: config.throttleRateLimit, burstLimit: config.throttleBurstLimit },
      apiStages: [{ api: this.restApi, stage: this.stage }],
    });

    this.acknowledge(publicHealth, methods);
  }

  private acknowledge(publicHealth: apigw.Method, methods: apigw.Method[]): void {
    const healthReason = 'GET /api/v1/health is the public health check: it names component states and no user data';
    Validations.of(publicHealth).acknowledge({ id: 'AwsSolutions-APIG4', reason: healthReason });
    Validations.of(publicHealth).acknowledge({ id: 'AwsSolutions-COG4', reason: healthReason });
    if (!this.authorizer) {
      const jwtReason =
        'jwt mode: the function verifies every bearer token itself (HS256, secret from Secrets Manager) and answers 401 problem+json';
      for (const method of methods) {
        Validations.of(method).acknowledge({ id: 'AwsSolutions-APIG4', reason: jwtReason });
        Validations.of(method).acknowledge({ id: 'AwsSolutions-COG4', reason: jwtReason });
      }
    }
    Validations.of(this.restApi).acknowledge({
      id: 'AwsSolutions-APIG2',
      reason: 'The service validates bodies and parameters and answers application/problem+json with stable codes; a gateway validator would answer differently',
    });
    const cloudWatchRole = this.restApi.node.tryFindChild('CloudWatchRole');
    if (cloudWatchRole) {
      Validations.of(cloudWatchRole).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason: "API Gateway's account-level logging role; the AWS managed policy is the documented one and names only log actions",
      });
    }
    Validations.of(this.restApi.deploymentStage).acknowledge({
      id: 'AwsSolutions-APIG3',
      reason: 'No WAF web ACL yet: stage throttling and the usage plan limit request rates; a web ACL can be associated with the stage later',
    });
  }
}

/** One JSON object per request, with what on-call looks for first. */
function accessLogFormat(): apigw.AccessLogFormat {
  const F = apigw.AccessLogField;
  return apigw.AccessLogFormat.custom(
    JSON.stringify({
      requestId: F.contextRequestId(),
      extendedRequestId: F.contextExtendedRequestId(),
      requestTime: F.contextRequestTime(),
      ip: F.contextIdentitySourceIp(),
      userAgent: F.contextIdentityUserAgent(),
      httpMethod: F.contextHttpMethod(),
      resourcePath: F.contextResourcePath(),
      path: F.contextPath(),
      protocol: F.contextProtocol(),
      status: F.contextStatus(),
      responseLength: F.contextResponseLength(),
      responseLatency: F.contextResponseLatency(),
      integrationLatency: F.contextIntegrationLatency(),
      integrationStatus: F.contextIntegrationStatus(),
      errorMessage: F.contextErrorMessage(),
      errorType: F.contextErrorResponseType(),
      authorizerError: F.contextAuthorizerError(),
      user: F.contextAuthorizerClaims('sub'),
      xrayTraceId: F.contextXrayTraceId(),
    }),
  );
}
