import { App, Stack, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { synthesize, Synthesized } from './helpers';

interface Acknowledgement {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

/**
 * Every acknowledgement of an AwsSolutions finding recorded in the app, with the construct it
 * is on. CDK acknowledges rules of its own template checks (`CloudFormation-Validate::...`) on
 * constructs it builds, such as a VPC's availability zones: those are not this stack's.
 */
function acknowledgements(root: IConstruct): Acknowledgement[] {
  const found: Acknowledgement[] = [];
  for (const construct of root.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        if (id.startsWith('CloudFormation-Validate::')) continue;
        found.push({ path: construct.node.path, id: id.replace(/^annotation::/i, ''), reason });
      }
    }
  }
  return found;
}

/** The findings of AwsSolutions with every acknowledgement ignored. */
function rawFindings(stack: Stack): { ruleName: string; path: string | undefined }[] {
  const pack = new AwsSolutionsChecks();
  (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
  return pack
    .validateScope(stack)
    .violations.flatMap((violation) => violation.violatingResources.map((resource) => ({ ruleName: violation.ruleName, path: resource.constructPath })));
}

describe.each([
  ['cognito mode', {}],
  ['jwt mode', { authMode: 'jwt' }],
  ['shared cache', { sharedCache: 'true' }],
  ['localstack target', { target: 'localstack' }],
])('cdk-nag AwsSolutions, %s', (_variant, context) => {
  let synth: Synthesized;
  beforeAll(() => {
    synth = synthesize(context);
  });

  test('reports nothing that is not acknowledged', () => {
    const report = new AwsSolutionsChecks().validateScope(synth.stack);
    const open = report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
    expect(open).toEqual([]);
  });

  test('every acknowledgement sits on the construct it excuses, names one rule, says why, and is needed', () => {
    const all = acknowledgements(synth.app);
    expect(all.length).toBeGreaterThan(0);
    const findings = rawFindings(synth.stack);
    for (const acknowledgement of all) {
      // Never the app or the whole stack: each one excuses specific resources.
      expect(acknowledgement.path.split('/').length).toBeGreaterThan(2);
      expect(acknowledgement.id).toMatch(/^AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
      expect(acknowledgement.reason.length).toBeGreaterThan(40);
      const used = findings.some((f) => f.ruleName === acknowledgement.id && (f.path === acknowledgement.path || !!f.path?.startsWith(`${acknowledgement.path}/`)));
      expect({ ...acknowledgement, used }).toEqual({ ...acknowledgement, used: true });
    }
  });
});

test('the app fails to synthesize when a finding is not acknowledged', () => {
  const { app, stack } = synthesizeWithPlugin();
  // A resource no acknowledgement covers: a queue without a dead-letter queue, TLS or encryption.
  new sqs.CfnQueue(stack, 'Unchecked', {});
  expect(() => app.synth({ force: true })).toThrow(/AwsSolutions-SQS3/);
});

test.each([
  ['aws', {}],
  ['localstack', { target: 'localstack' }],
])('the app as bin/brain2.ts builds it for the %s target synthesizes with the AwsSolutions plugin', (_target, context) => {
  const { app } = synthesizeWithPlugin(context);
  expect(() => app.synth({ force: true })).not.toThrow();
});

function synthesizeWithPlugin(context: Record<string, unknown> = {}): { app: App; stack: Stack } {
  const { app, stack } = synthesize(context);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
