import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { Architecture, FunctionSizing } from '../config';

/** Where a function attached to a VPC runs: its subnets and its one security group. */
export interface FunctionNetwork {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
}

/**
 * What Lambda does with the execution role of a function in a VPC: create, describe and
 * delete its network interfaces there (the EC2 actions of AWSLambdaVPCAccessExecutionRole).
 */
export const NETWORK_INTERFACE_ACTIONS: readonly string[] = [
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:DeleteNetworkInterface',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
];

export interface ServiceFunctionProps {
  readonly functionName: string;
  readonly description: string;
  readonly code: lambda.Code;
  readonly architecture: Architecture;
  readonly sizing: FunctionSizing;
  readonly logRetentionDays: number;
  readonly environment: Record<string, string>;
  /**
   * Actions besides X-Ray's that the caller will grant on `*` because they support no
   * resource-level permissions, and why the function needs them.
   */
  readonly unscopedActions?: { readonly actions: readonly string[]; readonly reason: string };
  /** Runs the function in a VPC; unset, it has Lambda's own network, with internet access. */
  readonly network?: FunctionNetwork;
}

/**
 * One Rust function of the service on `provided.al2023`: its own log group with a
 * retention, its own role with nothing attached but writing to that log group and X-Ray
 * (callers grant the rest), active tracing, a reserved concurrency when sized so, and, given
 * a network, its place in a VPC with the network interface actions Lambda needs for it.
 */
export class ServiceFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ServiceFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/lambda/${props.functionName}`,
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.functionName}: its log group, X-Ray, and what the stack grants it`,
    });
    this.logGroup.grantWrite(this.role);
    const network = props.network;
    if (network) {
      // CDK adds these only to roles it creates itself; Lambda checks them when it attaches
      // the function to the VPC.
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...NETWORK_INTERFACE_ACTIONS], resources: ['*'] }));
    }
    this.function = new lambda.Function(this, 'Function', {
      functionName: props.functionName,
      description: props.description,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      handler: 'bootstrap',
      code: props.code,
      architecture: props.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
      memorySize: props.sizing.memoryMb,
      timeout: Duration.seconds(props.sizing.timeoutSeconds),
      reservedConcurrentExecutions: props.sizing.reservedConcurrency > 0 ? props.sizing.reservedConcurrency : undefined,
      tracing: lambda.Tracing.ACTIVE,
      role: this.role,
      logGroup: this.logGroup,
      environment: props.environment,
      ...(network && { vpc: network.vpc, vpcSubnets: network.subnets, securityGroups: [network.securityGroup] }),
    });
    const unscoped = [
      ...(props.unscopedActions ? [`${props.unscopedActions.actions.join(', ')} (${props.unscopedActions.reason})`] : []),
      ...(network ? [`${NETWORK_INTERFACE_ACTIONS.join(', ')} (Lambda manages the function's network interfaces in the VPC)`] : []),
    ];
    const policy = this.role.node.tryFindChild('DefaultPolicy');
    Validations.of(policy ?? this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        `xray:PutTraceSegments and xray:PutTelemetryRecords, added by active tracing, ${unscoped.map((item) => `and ${item} `).join('')}` +
        'support no resource-level permissions',
    });
  }
}
