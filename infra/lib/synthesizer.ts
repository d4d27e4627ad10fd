import {
  DockerImageAssetLocation,
  DockerImageAssetSource,
  FileAssetLocation,
  FileAssetSource,
  ISynthesisSession,
  IStackSynthesizer,
  StackSynthesizer,
} from 'aws-cdk-lib';
import { DeployTarget } from './config';

/**
 * The largest template CloudFormation accepts inline (`TemplateBody`). A larger one has to be
 * uploaded to S3 first, which needs the bucket `cdk bootstrap` creates.
 */
export const INLINE_TEMPLATE_LIMIT_BYTES = 51_200;

/**
 * A stack deployed with the credentials of whoever runs `cdk deploy` and with nothing
 * `cdk bootstrap` creates: no role to assume, no CloudFormation execution role, no
 * `BootstrapVersion` parameter or rule, and the template sent inline. Assets (function
 * code, images) would need the bootstrap bucket or repository, so adding one fails the
 * synth instead of the deploy.
 *
 * `BootstraplessSynthesizer` is not this: it still names the bootstrap deploy and
 * execution roles, which the CLI then assumes. `DefaultStackSynthesizer` with
 * `generateBootstrapVersionRule: false` still uploads the template to the bootstrap
 * bucket and reads the bootstrap version from SSM.
 */
export class CallerCredentialsSynthesizer extends StackSynthesizer {
  addFileAsset(asset: FileAssetSource): FileAssetLocation {
    throw new Error(`${this.refusal()} (file asset ${asset.fileName ?? asset.sourceHash})`);
  }

  addDockerImageAsset(asset: DockerImageAssetSource): DockerImageAssetLocation {
    throw new Error(`${this.refusal()} (image asset ${asset.directoryName ?? asset.sourceHash})`);
  }

  synthesize(session: ISynthesisSession): void {
    this.synthesizeTemplate(session);
    // No options: no role to assume, no template in S3, no bootstrap version to check.
    this.emitArtifact(session);
  }

  private refusal(): string {
    return `${this.boundStack.stackName} deploys without cdk bootstrap and so cannot have assets`;
  }
}

/**
 * The synthesizer of a target; undefined keeps the app's default (`DefaultStackSynthesizer`,
 * which needs `cdk bootstrap`). The `localstack` target has no assets and LocalStack may not
 * offer what bootstrap creates (S3 bucket, SSM parameter, ECR repository, IAM roles).
 */
export function synthesizerFor(target: DeployTarget): IStackSynthesizer | undefined {
  return target === 'localstack' ? new CallerCredentialsSynthesizer() : undefined;
}
