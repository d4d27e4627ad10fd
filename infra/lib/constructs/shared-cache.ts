import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { SharedCacheConfig } from '../config';
import { FunctionNetwork } from './service-function';

/**
 * The cache's endpoint port. Its reader endpoint (6380, reads from replicas) stays closed:
 * the service reads and writes through the one endpoint of `BRAIN2_CACHE_URL`.
 */
export const CACHE_PORT = 6379;

const HTTPS = ec2.Port.tcp(443);

/**
 * The AWS APIs the functions' code calls (the SDK clients of backend/service/src/adapters/aws),
 * each with its way out of the VPC:
 * - DynamoDB: the gateway endpoint, a route in the subnets' route tables, free of charge;
 * - EventBridge (PutEvents, DescribeEventBus) and SQS (SendMessage to the dead-letter and
 *   stream failures queues): an interface endpoint each, whose private DNS names answer for
 *   the services' regional names, so the SDKs need no setting.
 * Nothing else goes out: Lambda itself polls the worker queues and reads the table's stream
 * (event source mappings), takes the logs and the EMF metrics from stdout, and sends the
 * X-Ray segments of active tracing; the function code calls none of those APIs.
 */
const INTERFACE_ENDPOINTS: Readonly<Record<string, ec2.InterfaceVpcEndpointAwsService>> = {
  EventBridge: ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
  Sqs: ec2.InterfaceVpcEndpointAwsService.SQS,
};

export interface SharedCacheProps {
  readonly prefix: string;
  readonly config: SharedCacheConfig;
  readonly logRetentionDays: number;
}

/**
 * The shared tier of the service's read cache: an ElastiCache Serverless cache (Valkey 8,
 * TLS only) behind each function's in-process cache, and the network that reaches it.
 *
 * The cache is an optimisation, never a dependency: when it is slow, throttled or down the
 * service reads DynamoDB, so requests get slower and the table does more work, but none
 * fails for it.
 *
 * ElastiCache Serverless lives in a VPC, so the functions join one: two AZs of isolated
 * subnets with no NAT gateway and no internet gateway. They reach DynamoDB through a gateway
 * endpoint and the other APIs they call through interface endpoints (`INTERFACE_ENDPOINTS`).
 * Three security groups, none open to anything else:
 * - the cache's: TCP 6379 in from the functions' group;
 * - the interface endpoints': TCP 443 in from the functions' group;
 * - the functions': TCP 6379 out to the cache's group, TCP 443 out. The 443 rule names no
 *   destination because DynamoDB's gateway endpoint is reached at DynamoDB's public addresses,
 *   whose managed prefix list has no identifier a region-agnostic template can name; the
 *   subnets route nowhere but to the VPC and that endpoint, so 443 reaches the endpoints alone.
 * A flow log keeps the rejected connections, which is what a wrong rule looks like.
 */
export class SharedCache extends Construct {
  readonly config: SharedCacheConfig;
  readonly vpc: ec2.Vpc;
  readonly cache: elasticache.CfnServerlessCache;
  /** Its name, which is also its metrics' `clusterId` dimension. */
  readonly cacheName: string;
  /** `BRAIN2_CACHE_URL`: `rediss://` (TLS, which ElastiCache Serverless requires), address and port. */
  readonly url: string;
  readonly functionsSecurityGroup: ec2.SecurityGroup;
  readonly cacheSecurityGroup: ec2.SecurityGroup;
  readonly endpointsSecurityGroup: ec2.SecurityGroup;
  /** Where the functions run. */
  readonly functionNetwork: FunctionNetwork;

  constructor(scope: Construct, id: string, props: SharedCacheProps) {
    super(scope, id);
    this.config = props.config;
    const subnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    const flowLogs = new logs.LogGroup(this, 'RejectedTraffic', {
      logGroupName: `/aws/vpc/${props.prefix}-shared-cache/rejected`,
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      // Restricting the default security group takes a custom resource, a Node.js function
      // outside the VPC; nothing here uses that group.
      restrictDefaultSecurityGroup: false,
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });

    const group = (groupId: string, description: string) =>
      new ec2.SecurityGroup(this, groupId, { vpc: this.vpc, description, allowAllOutbound: false });
    this.functionsSecurityGroup = group('FunctionsSecurityGroup', `${props.prefix} functions: the shared cache and AWS APIs over TLS`);
    this.cacheSecurityGroup = group('CacheSecurityGroup', `${props.prefix} shared cache: Valkey from the functions only`);
    this.endpointsSecurityGroup = group('EndpointsSecurityGroup', `${props.prefix} interface endpoints: HTTPS from the functions only`);

    const valkey = ec2.Port.tcp(CACHE_PORT);
    this.cacheSecurityGroup.addIngressRule(this.functionsSecurityGroup, valkey, 'Valkey from the functions');
    this.functionsSecurityGroup.addEgressRule(this.cacheSecurityGroup, valkey, 'Valkey to the shared cache');
    this.endpointsSecurityGroup.addIngressRule(this.functionsSecurityGroup, HTTPS, 'AWS APIs from the functions');
    this.functionsSecurityGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      HTTPS,
      'AWS APIs: the interface endpoints, and DynamoDB through the gateway endpoint (the subnets route nowhere else)',
    );

    this.vpc.addGatewayEndpoint('DynamoDb', { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets: [subnets] });
    for (const [endpointId, service] of Object.entries(INTERFACE_ENDPOINTS)) {
      this.vpc.addInterfaceEndpoint(endpointId, {
        service,
        subnets,
        privateDnsEnabled: true,
        securityGroups: [this.endpointsSecurityGroup],
        // Not the default rule from the whole VPC: the one from the functions above.
        open: false,
      });
    }

    // At most 37 characters with the longest prefix; ElastiCache takes 40.
    this.cacheName = `${props.prefix}-cache`;
    this.cache = new elasticache.CfnServerlessCache(this, 'ServerlessCache', {
      serverlessCacheName: this.cacheName,
      description: `${props.prefix}: shared read cache of the functions (BRAIN2_CACHE_URL)`,
      engine: 'valkey',
      majorEngineVersion: '8',
      subnetIds: this.vpc.selectSubnets(subnets).subnetIds,
      securityGroupIds: [this.cacheSecurityGroup.securityGroupId],
      cacheUsageLimits: {
        dataStorage: { maximum: props.config.maxDataStorageGb, unit: 'GB' },
        ecpuPerSecond: { maximum: props.config.maxEcpuPerSecond },
      },
    });
    this.url = `rediss://${this.cache.attrEndpointAddress}:${this.cache.attrEndpointPort}`;
    this.functionNetwork = { vpc: this.vpc, subnets, securityGroup: this.functionsSecurityGroup };
  }
}
