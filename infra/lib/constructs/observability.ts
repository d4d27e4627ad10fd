import * as fs from 'fs';
import * as path from 'path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { AlarmSpec, MetricSpec } from '../alarm-spec';
import { REPO_ROOT } from '../paths';
import { Placeholders } from '../placeholders';

export interface ObservabilityProps {
  readonly prefix: string;
  readonly placeholders: Placeholders;
  readonly alarms: AlarmSpec[];
  readonly dashboardsDir: string;
  readonly runbookBaseUrl: string;
  readonly alarmEmail?: string;
}

/** `api-5xx-rate` -> `Api5xxRate`, for construct ids. */
function pascal(name: string): string {
  return name
    .split('-')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
}

/**
 * What on-call sees: the dashboards of dashboards/ and the alarms of alarms/, both with
 * the stack's names put in for their placeholders, and the SNS topic every alarm (and its
 * return to OK) notifies. The topic is encrypted with a customer managed key, because
 * CloudWatch alarms cannot publish to a topic under the AWS managed SNS key.
 *
 * An alarm or a dashboard widget that names a part the deployment leaves out (a placeholder
 * without a value, see `Placeholders`) is left out too, and so is a dashboard left with no
 * widget: the template of a deployment without that part is the one it would be without
 * those files.
 */
export class Observability extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: Map<string, cloudwatch.Alarm> = new Map();
  readonly dashboards: Map<string, cloudwatch.CfnDashboard> = new Map();

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const key = new kms.Key(this, 'AlarmTopicKey', {
      description: `${props.prefix} alarm notifications`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    this.topic = new sns.Topic(this, 'AlarmTopic', {
      topicName: `${props.prefix}-alarms`,
      displayName: `${props.prefix} alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    if (props.alarmEmail) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    const dashboardFiles = fs
      .readdirSync(props.dashboardsDir)
      .filter((file) => file.endsWith('.json'))
      .sort();
    for (const file of dashboardFiles) {
      this.addDashboard(props, file);
    }
    for (const spec of props.alarms) {
      for (const dashboard of spec.dashboards) {
        if (!dashboardFiles.includes(`${dashboard}.json`)) {
          throw new Error(`alarms/${spec.name}.json names dashboard ${dashboard}, which dashboards/ does not have`);
        }
      }
      this.addAlarm(props, spec);
    }
  }

  private addDashboard(props: ObservabilityProps, file: string): void {
    const where = path.relative(REPO_ROOT, path.join(props.dashboardsDir, file));
    let body: unknown;
    try {
      body = JSON.parse(fs.readFileSync(path.join(props.dashboardsDir, file), 'utf8'));
    } catch (error) {
      throw new Error(`${where} is not valid JSON: ${(error as Error).message}`);
    }
    const widgets = (body as { widgets?: unknown }).widgets;
    if (!Array.isArray(widgets) || widgets.length === 0) {
      throw new Error(`${where} has no widgets`);
    }
    const present = widgets.filter((widget) => !props.placeholders.usesAbsent(widget));
    if (present.length === 0) return;
    const shown = { ...(body as Record<string, unknown>), widgets: present };
    const name = path.basename(file, '.json');
    const dashboard = new cloudwatch.CfnDashboard(this, `${pascal(name)}Dashboard`, {
      dashboardName: `${props.prefix}-${name}`,
      dashboardBody: Stack.of(this).toJsonString(props.placeholders.substituteJson(shown, where)),
    });
    this.dashboards.set(name, dashboard);
  }

  private addAlarm(props: ObservabilityProps, given: AlarmSpec): void {
    const spec = withoutAbsentTerms(props.placeholders, given);
    if (props.placeholders.usesAbsent(spec)) return;
    const where = `alarms/${spec.name}.json`;
    const period = Duration.seconds(spec.period);
    const metric = (input: MetricSpec, statistic: string): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: input.namespace,
        metricName: input.name,
        dimensionsMap: props.placeholders.substituteJson(input.dimensions, where),
        statistic,
        period,
      });
    const measured: cloudwatch.IMetric = spec.metric
      ? metric(spec.metric, spec.statistic!)
      : new cloudwatch.MathExpression({
          expression: props.placeholders.substitute(spec.math!.expression, where),
          label: spec.math!.label,
          period,
          usingMetrics: Object.fromEntries(
            Object.entries(spec.math!.metrics).map(([id, input]) => [id, metric(input, input.statistic!)]),
          ),
        });
    const alarm = new cloudwatch.Alarm(this, `${pascal(spec.name)}Alarm`, {
      alarmName: `${props.prefix}-${spec.name}`,
      alarmDescription:
        `[${spec.severity}] ${spec.description} ` +
        `Runbook: ${props.runbookBaseUrl}/${spec.name}.md. Dashboards: ${spec.dashboards.map((d) => `${props.prefix}-${d}`).join(', ')}.`,
      metric: measured,
      threshold: spec.threshold,
      comparisonOperator: spec.comparison as cloudwatch.ComparisonOperator,
      evaluationPeriods: spec.evaluationPeriods,
      datapointsToAlarm: spec.datapointsToAlarm,
      treatMissingData: spec.treatMissingData as cloudwatch.TreatMissingData,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    alarm.addOkAction(new actions.SnsAction(this.topic));
    this.alarms.set(spec.name, alarm);
  }
}

/**
 * A math alarm that sums its metrics (`FILL(a, 0) + FILL(b, 0) + …`, as lambda-throttles
 * does over every function) without the terms whose metric names a part the deployment
 * leaves out: the sum over the parts that are there. Any other alarm is returned as it is
 * (and is left out whole if it names such a part).
 */
export function withoutAbsentTerms(placeholders: Placeholders, spec: AlarmSpec): AlarmSpec {
  if (!spec.math) return spec;
  const absent = Object.keys(spec.math.metrics).filter((id) => placeholders.usesAbsent(spec.math!.metrics[id]));
  if (absent.length === 0 || absent.length === Object.keys(spec.math.metrics).length) return spec;
  const terms = topLevelTerms(spec.math.expression);
  if (!terms) return spec;
  const mentions = (term: string, id: string) => new RegExp(`\\b${id}\\b`).test(term);
  const kept = terms.filter((term) => !absent.some((id) => mentions(term, id)));
  if (kept.length === 0 || kept.length === terms.length) return spec;
  return {
    ...spec,
    math: {
      ...spec.math,
      expression: kept.join(' + '),
      metrics: Object.fromEntries(Object.entries(spec.math.metrics).filter(([id]) => !absent.includes(id))),
    },
  };
}

/** The summands of an expression that is a sum at its top level, or undefined if it is not one. */
function topLevelTerms(expression: string): string[] | undefined {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expression.length; i += 1) {
    const c = expression[i];
    if (c === '(') depth += 1;
    else if (c === ')') depth -= 1;
    else if (depth === 0 && c === '+') {
      terms.push(expression.slice(start, i).trim());
      start = i + 1;
    } else if (depth === 0 && /[-*/]/.test(c)) {
      return undefined;
    }
  }
  terms.push(expression.slice(start).trim());
  return terms.every((term) => term.length > 0) ? terms : undefined;
}
