#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { Brain2Stack, stackNameFor, stubDirFor } from '../lib/brain2-stack';
import { readConfig } from '../lib/config';

const app = new App();
const config = readConfig(app.node);
const stack = new Brain2Stack(app, stackNameFor(config.prefix), {
  config,
  stubDir: stubDirFor(app.outdir),
  description: 'Brain2 knowledge graph backend: table, API, events, workers, dashboards and alarms',
  // No env: the template is the same whoever synthesizes it, and deploys to the
  // account and region of the credentials in use.
});
if (stack.assets.stubs.length > 0) {
  process.stderr.write(
    `brain2: stub code for ${stack.assets.stubs.join(', ')} (no zip in ${config.lambdaAssets}); ` +
      'this template cannot be deployed\n',
  );
}
// Synth fails on any AwsSolutions finding not acknowledged, with its reason, where it applies.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
