import * as fs from 'fs';
import * as path from 'path';
import { ALARMS_DIR, REPO_ROOT } from './paths';

/** A CloudWatch metric as the alarm files name it; dimension values may hold placeholders. */
export interface MetricSpec {
  readonly namespace: string;
  readonly name: string;
  readonly dimensions: Record<string, string>;
  /** Only in `math.metrics`: the statistic of that input (a single-metric alarm has it at the top). */
  readonly statistic?: string;
}

export interface MathSpec {
  /** May hold placeholders, such as a usage limit the stack was deployed with. */
  readonly expression: string;
  readonly label: string;
  /** Inputs by the id the expression uses (lower-case first letter, as CloudWatch requires). */
  readonly metrics: Record<string, MetricSpec>;
}

export const SEVERITIES = ['critical', 'high', 'warning'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const COMPARISONS = [
  'GreaterThanThreshold',
  'GreaterThanOrEqualToThreshold',
  'LessThanThreshold',
  'LessThanOrEqualToThreshold',
] as const;
export type Comparison = (typeof COMPARISONS)[number];

export const MISSING_DATA = ['breaching', 'notBreaching', 'ignore', 'missing'] as const;
export type MissingData = (typeof MISSING_DATA)[number];

/**
 * One file of alarms/: an alarm on one metric (`metric` with `statistic`) or on metric
 * math (`math`), where it fires, how bad that is, and the runbook that says what to do.
 */
export interface AlarmSpec {
  /** Equals the file name without `.json`; the alarm is `<prefix>-<name>`. */
  readonly name: string;
  readonly description: string;
  readonly severity: Severity;
  /** `docs/runbooks/<name>.md`. */
  readonly runbook: string;
  readonly metric?: MetricSpec;
  readonly math?: MathSpec;
  readonly statistic?: string;
  /** Seconds. */
  readonly period: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm?: number;
  readonly threshold: number;
  readonly comparison: Comparison;
  readonly treatMissingData: MissingData;
  /** Which dashboards/ files to open first. */
  readonly dashboards: string[];
}

const STATISTIC = /^(SampleCount|Average|Sum|Minimum|Maximum|p\d{1,2}(\.\d+)?)$/;
const PERIODS = [10, 30, 60, 300, 900, 3600];

function fail(file: string, message: string): never {
  throw new Error(`${path.relative(REPO_ROOT, file)}: ${message}`);
}

function checkMetric(file: string, where: string, metric: MetricSpec, needsStatistic: boolean): void {
  for (const key of ['namespace', 'name'] as const) {
    if (typeof metric[key] !== 'string' || metric[key].length === 0) fail(file, `${where}.${key} must be a non-empty string`);
  }
  if (typeof metric.dimensions !== 'object' || metric.dimensions === null || Array.isArray(metric.dimensions)) {
    fail(file, `${where}.dimensions must be an object (empty for a metric without dimensions)`);
  }
  if (needsStatistic && !STATISTIC.test(metric.statistic ?? '')) fail(file, `${where}.statistic is missing or unknown`);
  if (!needsStatistic && metric.statistic !== undefined) fail(file, `${where} takes its statistic from the alarm`);
}

/** Parses and checks one alarm file; every mistake names the file. */
export function parseAlarm(file: string, json: string): AlarmSpec {
  const spec = JSON.parse(json) as AlarmSpec;
  const stem = path.basename(file, '.json');
  if (spec.name !== stem) fail(file, `name is ${spec.name}, the file says ${stem}`);
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(spec.name)) fail(file, 'name must be lower-case words joined by dashes');
  if (typeof spec.description !== 'string' || spec.description.length < 10) fail(file, 'description is missing');
  if (!SEVERITIES.includes(spec.severity)) fail(file, `severity must be one of ${SEVERITIES.join(', ')}`);
  if (spec.runbook !== `docs/runbooks/${spec.name}.md`) fail(file, `runbook must be docs/runbooks/${spec.name}.md`);
  if (!fs.existsSync(path.join(REPO_ROOT, spec.runbook))) fail(file, `${spec.runbook} does not exist`);
  if ((spec.metric === undefined) === (spec.math === undefined)) fail(file, 'give exactly one of metric and math');
  if (spec.metric) {
    checkMetric(file, 'metric', spec.metric, false);
    if (!STATISTIC.test(spec.statistic ?? '')) fail(file, 'statistic is missing or unknown');
  }
  if (spec.math) {
    if (spec.statistic !== undefined) fail(file, 'a math alarm names a statistic per input, not at the top');
    if (typeof spec.math.expression !== 'string' || typeof spec.math.label !== 'string') {
      fail(file, 'math needs an expression and a label');
    }
    const ids = Object.keys(spec.math.metrics ?? {});
    if (ids.length === 0) fail(file, 'math.metrics is empty');
    for (const id of ids) {
      if (!/^[a-z][a-zA-Z0-9_]*$/.test(id)) fail(file, `math.metrics id ${id} must start with a lower-case letter`);
      checkMetric(file, `math.metrics.${id}`, spec.math.metrics[id], true);
    }
  }
  if (!PERIODS.includes(spec.period)) fail(file, `period must be one of ${PERIODS.join(', ')} seconds`);
  if (!Number.isInteger(spec.evaluationPeriods) || spec.evaluationPeriods < 1) fail(file, 'evaluationPeriods must be >= 1');
  if (spec.datapointsToAlarm !== undefined && (spec.datapointsToAlarm < 1 || spec.datapointsToAlarm > spec.evaluationPeriods)) {
    fail(file, 'datapointsToAlarm must be from 1 to evaluationPeriods');
  }
  if (typeof spec.threshold !== 'number') fail(file, 'threshold must be a number');
  if (!COMPARISONS.includes(spec.comparison)) fail(file, `comparison must be one of ${COMPARISONS.join(', ')}`);
  if (!MISSING_DATA.includes(spec.treatMissingData)) fail(file, `treatMissingData must be one of ${MISSING_DATA.join(', ')}`);
  if (!Array.isArray(spec.dashboards) || spec.dashboards.length === 0) fail(file, 'dashboards must name at least one dashboard');
  return { ...spec, dashboards: [...spec.dashboards] };
}

/** Every alarm of alarms/, in file-name order. */
export function loadAlarms(dir: string = ALARMS_DIR): AlarmSpec[] {
  return fs
    .readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => parseAlarm(path.join(dir, file), fs.readFileSync(path.join(dir, file), 'utf8')));
}
