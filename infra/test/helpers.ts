import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Brain2Stack, Brain2StackProps, ServicePlane, stubDirFor } from '../lib/brain2-stack';
import { readConfig } from '../lib/config';
import { REPO_ROOT } from '../lib/paths';

/** The context of cdk.json (feature flags included), as `cdk synth` passes it to the app. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'));
  return cdkJson.context;
}

export function tempDir(prefix = 'brain2-infra-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Resources of one CloudFormation type, by logical id. */
export type Resources = Record<string, { Type: string; Properties: any; DeletionPolicy?: string; [key: string]: any }>;

export interface Synthesized {
  readonly app: App;
  readonly stack: Brain2Stack;
  readonly template: Template;
  readonly json: { Resources: Resources; Parameters?: Record<string, any>; Rules?: Record<string, any>; Outputs?: Record<string, any> };
  readonly outdir: string;
}

/**
 * Synthesizes the stack as `make synth` does (cdk.json context, stub function code in the
 * app's output directory) with `context` on top. One call per test file: it takes seconds.
 */
export function synthesize(context: Record<string, unknown> = {}, props: Partial<Brain2StackProps> = {}): Synthesized {
  const outdir = tempDir();
  const app = new App({
    outdir,
    context: {
      ...cdkJsonContext(),
      allowStubAssets: 'true',
      lambdaAssets: path.join(outdir, 'no-function-zips'),
      ...context,
    },
  });
  const stack = new Brain2Stack(app, 'Brain2', {
    config: readConfig(app.node),
    stubDir: stubDirFor(outdir),
    ...props,
  });
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() as Synthesized['json'], outdir };
}

/** The service plane of a stack of the `aws` target; throws for a target without one. */
export function serviceOf(synth: Synthesized): ServicePlane {
  if (!synth.stack.service) throw new Error(`the ${synth.stack.target} target has no service plane`);
  return synth.stack.service;
}

export function ofType(json: Synthesized['json'], type: string): Resources {
  return Object.fromEntries(Object.entries(json.Resources).filter(([, resource]) => resource.Type === type));
}

export function only<T>(items: Record<string, T>, what: string): [string, T] {
  const entries = Object.entries(items);
  if (entries.length !== 1) throw new Error(`expected one ${what}, found ${entries.length}`);
  return entries[0];
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalId(stack: Stack, construct: { node: { defaultChild?: unknown } } | unknown): string {
  const resource = (construct as { node: { defaultChild?: unknown } }).node.defaultChild ?? construct;
  return stack.getLogicalId(resource as never);
}

export function repoFile(...parts: string[]): string {
  return fs.readFileSync(path.join(REPO_ROOT, ...parts), 'utf8');
}

/** Every logical id that a CloudFormation value refers to with Ref or Fn::GetAtt. */
export function references(value: unknown, found: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) {
    value.forEach((item) => references(item, found));
  } else if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (typeof record.Ref === 'string') found.add(record.Ref);
    if (Array.isArray(record['Fn::GetAtt'])) found.add(String(record['Fn::GetAtt'][0]));
    Object.values(record).forEach((item) => references(item, found));
  }
  return found;
}

/** Whether a string or a number appears anywhere in a value, as a value of its own. */
export function containsValue(value: unknown, wanted: string | number): boolean {
  if (typeof value === 'string' || typeof value === 'number') return value === wanted;
  if (Array.isArray(value)) return value.some((item) => containsValue(item, wanted));
  if (value !== null && typeof value === 'object') return Object.values(value).some((item) => containsValue(item, wanted));
  return false;
}

/** Statements of every IAM policy attached to a role, by the role's logical id. */
export function roleStatements(json: Synthesized['json'], roleId: string): any[] {
  const statements: any[] = [];
  for (const policy of Object.values(ofType(json, 'AWS::IAM::Policy'))) {
    const roles: any[] = policy.Properties.Roles ?? [];
    if (roles.some((role) => role.Ref === roleId)) {
      statements.push(...policy.Properties.PolicyDocument.Statement);
    }
  }
  const role = json.Resources[roleId];
  for (const inline of role.Properties.Policies ?? []) {
    statements.push(...inline.PolicyDocument.Statement);
  }
  return statements;
}

export function asList<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** The pseudo parameters CloudFormation defines, which a Ref may name besides resources. */
export const PSEUDO_PARAMETERS = ['AWS::Region', 'AWS::AccountId', 'AWS::Partition', 'AWS::URLSuffix', 'AWS::StackName', 'AWS::StackId'];

/**
 * The indexes of a table resource are exactly those of schema/table.json (as parsed JSON),
 * each with its keys, projection type and projected attributes.
 */
export function expectIndexesOfSchema(table: { Properties: any }, indexes: any[]): void {
  const gsis: any[] = table.Properties.GlobalSecondaryIndexes;
  expect(gsis.map((gsi) => gsi.IndexName).sort()).toEqual(indexes.map((index) => index.name).sort());
  for (const index of indexes) {
    const gsi = gsis.find((candidate) => candidate.IndexName === index.name);
    expect(gsi.KeySchema).toEqual([
      { AttributeName: index.partitionKey, KeyType: 'HASH' },
      { AttributeName: index.sortKey, KeyType: 'RANGE' },
    ]);
    expect(gsi.Projection.ProjectionType).toBe(index.projection);
    expect([...(gsi.Projection.NonKeyAttributes ?? [])].sort()).toEqual([...(index.nonKeyAttributes ?? [])].sort());
  }
}
