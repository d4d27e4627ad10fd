import * as path from 'path';
import { Aws, CfnOutput, CfnRule, Fn, Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { AlarmSpec, loadAlarms } from './alarm-spec';
import { LambdaAssets } from './assets';
import { Brain2Config } from './config';
import { Api } from './constructs/api';
import { Authentication } from './constructs/auth';
import { Compute, visibilityTimeout } from './constructs/compute';
import { Messaging } from './constructs/messaging';
import { Observability } from './constructs/observability';
import { Brain2Table } from './constructs/table';
import { DASHBOARDS_DIR } from './paths';
import { Placeholders } from './placeholders';
import { TableSchema, indexNamed, loadTableSchema } from './schema';

export interface Brain2StackProps extends StackProps {
  readonly config: Brain2Config;
  /** Where stub function code is written when a zip is missing and stubs are allowed. */
  readonly stubDir: string;
  readonly schema?: TableSchema;
  readonly alarms?: AlarmSpec[];
  readonly dashboardsDir?: string;
}

/**
 * Brain2 in one stack: the table (schema/table.json), the bus with the workers' queues,
 * the three functions, the REST API, and the dashboards and alarms of dashboards/ and
 * alarms/. Each concern is one construct; later ones (stream consumers, a WebSocket API,
 * a cache, the chat endpoint) take the ones they need as props.
 */
export class Brain2Stack extends Stack {
  readonly data: Brain2Table;
  readonly messaging: Messaging;
  readonly auth: Authentication;
  readonly compute: Compute;
  readonly api: Api;
  readonly observability: Observability;
  readonly placeholders: Placeholders;
  readonly assets: LambdaAssets;

  constructor(scope: Construct, id: string, props: Brain2StackProps) {
    super(scope, id, props);
    const { config } = props;
    const schema = props.schema ?? loadTableSchema();

    this.data = new Brain2Table(this, 'Data', { schema });
    this.messaging = new Messaging(this, 'Messaging', {
      prefix: config.prefix,
      cleanupVisibilityTimeout: visibilityTimeout(config.cleanup),
      similarityVisibilityTimeout: visibilityTimeout(config.similarity),
    });
    this.auth = new Authentication(this, 'Auth', {
      prefix: config.prefix,
      mode: config.authMode,
      jwtSecretName: config.jwtSecretName,
    });
    this.assets = new LambdaAssets(config.lambdaAssets, config.allowStubAssets, props.stubDir);
    this.compute = new Compute(this, 'Compute', {
      config,
      assets: this.assets,
      table: this.data,
      messaging: this.messaging,
      auth: this.auth,
    });
    this.api = new Api(this, 'Api', { config, handler: this.compute.api.function, auth: this.auth });

    this.placeholders = new Placeholders(this.placeholderValues(schema));
    this.observability = new Observability(this, 'Observability', {
      prefix: config.prefix,
      placeholders: this.placeholders,
      alarms: props.alarms ?? loadAlarms(),
      dashboardsDir: props.dashboardsDir ?? DASHBOARDS_DIR,
      runbookBaseUrl: config.runbookBaseUrl,
      alarmEmail: config.alarmEmail,
    });

    if (this.assets.stubs.length > 0) {
      // CloudFormation evaluates rules before it changes anything: a template built from
      // stubs is refused by any deploy, whatever command started it.
      new CfnRule(this, 'RefuseStubAssets', {
        assertions: [
          {
            assert: Fn.conditionEquals('stub', 'built'),
            assertDescription: `Built with stub function code for ${this.assets.stubs.join(', ')}: run make deploy, which builds the zips`,
          },
        ],
      });
    }
    this.outputs();
  }

  /** Every name the dashboard and alarm files may use as `${Name}`. */
  private placeholderValues(schema: TableSchema): Record<string, string> {
    const { compute, messaging, api, data } = this;
    return {
      Region: Aws.REGION,
      ApiFunctionName: compute.api.function.functionName,
      CleanupFunctionName: compute.cleanup.function.functionName,
      SimilarityFunctionName: compute.similarity.function.functionName,
      ApiLogGroupName: compute.api.logGroup.logGroupName,
      CleanupLogGroupName: compute.cleanup.logGroup.logGroupName,
      SimilarityLogGroupName: compute.similarity.logGroup.logGroupName,
      ApiAccessLogGroupName: api.accessLogs.logGroupName,
      RestApiName: api.restApi.restApiName,
      StageName: api.stage.stageName,
      TableName: data.table.tableName,
      KeywordIndexName: indexNamed(schema, 'keyword').name,
      DeletionQueueIndexName: indexNamed(schema, 'deletionQueue').name,
      UserTimeIndexName: indexNamed(schema, 'userTime').name,
      EventBusName: messaging.bus.eventBusName,
      CleanupRuleName: messaging.cleanup.rule.ruleName,
      SimilarityRuleName: messaging.similarity.rule.ruleName,
      SweepRuleName: compute.sweepRule.ruleName,
      CleanupQueueName: messaging.cleanup.queue.queueName,
      CleanupDlqName: messaging.cleanup.deadLetterQueue.queueName,
      SimilarityQueueName: messaging.similarity.queue.queueName,
      SimilarityDlqName: messaging.similarity.deadLetterQueue.queueName,
      PublishDlqName: messaging.publishDeadLetterQueue.queueName,
    };
  }

  private outputs(): void {
    const url = `${this.api.restApi.url}api/v1`;
    new CfnOutput(this, 'ApiUrl', { value: url, description: 'Base URL of the API (TARGET_URL of make loadtest)' });
    new CfnOutput(this, 'TableName', {
      value: this.data.table.tableName,
      description: 'CLOUDWATCH_TABLE of make loadtest CLOUDWATCH=1',
    });
    new CfnOutput(this, 'ApiFunctionName', {
      value: this.compute.api.function.functionName,
      description: 'CLOUDWATCH_FUNCTION of make loadtest CLOUDWATCH=1',
    });
    new CfnOutput(this, 'RestApiName', {
      value: this.api.restApi.restApiName,
      description: 'CLOUDWATCH_API of make loadtest CLOUDWATCH=1',
    });
    new CfnOutput(this, 'StageName', {
      value: this.api.stage.stageName,
      description: 'CLOUDWATCH_STAGE of make loadtest CLOUDWATCH=1',
    });
    new CfnOutput(this, 'EventBusName', { value: this.messaging.bus.eventBusName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.observability.topic.topicArn });
    new CfnOutput(this, 'PublishDeadLetterQueueUrl', { value: this.messaging.publishDeadLetterQueue.queueUrl });
    if (this.auth.userPool && this.auth.userPoolClient) {
      new CfnOutput(this, 'UserPoolId', { value: this.auth.userPool.userPoolId });
      new CfnOutput(this, 'UserPoolClientId', { value: this.auth.userPoolClient.userPoolClientId });
    }
    if (this.auth.jwtSecretId) {
      new CfnOutput(this, 'JwtSecret', {
        value: this.auth.jwtSecretId,
        description: 'Secrets Manager secret that signs bearer tokens (read it to run brain2 token)',
      });
    }
    const dashboards = [...this.observability.dashboards.values()].map((dashboard) => dashboard.dashboardName!);
    new CfnOutput(this, 'Dashboards', { value: dashboards.join(', ') });
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
