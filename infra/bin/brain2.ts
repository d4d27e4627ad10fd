#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { Brain2Stack, STACK_DESCRIPTIONS, stackNameFor, stubDirFor } from '../lib/brain2-stack';
import { readConfig } from '../lib/config';

const app = new App();
const config = readConfig(app.node);
const stack = new Brain2Stack(app, stackNameFor(config.prefix), {
  config,
  stubDir: stubDirFor(app.outdir),
  description: STACK_DESCRIPTIONS[config.target],
  // No env: the template is the same whoever synthesizes it, and deploys to the
  // account and region of the credentials in use.
});
const stubs = stack.service?.assets.stubs ?? [];
if (stubs.length > 0) {
  process.stderr.write(
    `brain2: stub code for ${stubs.join(', ')} (no zip in ${config.lambdaAssets}); ` +
      'this template cannot be deployed\n',
  );
}
// Synth fails on any AwsSolutions finding not acknowledged, with its reason, where it applies.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
