import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { Architecture, FunctionSizing } from '../config';

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
}

/**
 * One Rust function of the service on `provided.al2023`: its own log group with a
 * retention, its own role with nothing attached but writing to that log group and X-Ray
 * (callers grant the rest), active tracing, and a reserved concurrency when sized so.
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
    });
    const policy = this.role.node.tryFindChild('DefaultPolicy');
    const unscoped = props.unscopedActions;
    Validations.of(policy ?? this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: unscoped
        ? `xray:PutTraceSegments and xray:PutTelemetryRecords, added by active tracing, and ${unscoped.actions.join(', ')} ` +
          `(${unscoped.reason}) support no resource-level permissions`
        : 'xray:PutTraceSegments and xray:PutTelemetryRecords, added by active tracing, support no resource-level permissions',
    });
  }
}
