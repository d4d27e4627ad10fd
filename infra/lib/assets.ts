import * as fs from 'fs';
import * as path from 'path';
import * as lambda from 'aws-cdk-lib/aws-lambda';

/** The cargo `[[bin]]` names of backend/lambda, one per function. */
export type FunctionBinary =
  | 'brain2-lambda'
  | 'brain2-cleanup'
  | 'brain2-similarity'
  | 'brain2-events'
  | 'brain2-realtime-connections'
  | 'brain2-realtime-broadcast';

/** Marks a stub asset, so nothing mistakes it for a build. */
export const STUB_MARKER = 'BRAIN2_STUB_ASSET';

/**
 * Where each function's code comes from: `<assets>/<bin>/bootstrap.zip`, as
 * `cargo lambda build --release --arm64 --output-format zip` writes it. When a zip is
 * missing and stubs are allowed (synth and tests), a stub directory under `stubDir` stands
 * in: a `bootstrap` that exits at once, so a stack built from it cannot serve. `make deploy`
 * never allows stubs, so it cannot ship one.
 */
export class LambdaAssets {
  private readonly stubbed: FunctionBinary[] = [];

  constructor(
    private readonly assetsDir: string,
    private readonly allowStubs: boolean,
    private readonly stubDir: string,
  ) {}

  code(binary: FunctionBinary): lambda.Code {
    const zip = path.join(this.assetsDir, binary, 'bootstrap.zip');
    if (fs.existsSync(zip)) {
      return lambda.Code.fromAsset(zip);
    }
    if (!this.allowStubs) {
      throw new Error(
        `${zip} is missing: build the functions first ` +
          '(cargo lambda build --release --arm64 --output-format zip -p brain2-lambda), ' +
          'or pass -c lambdaAssets=DIR; stubs are only for synth and tests (-c allowStubAssets=true)',
      );
    }
    this.stubbed.push(binary);
    return lambda.Code.fromAsset(this.writeStub(binary));
  }

  /** The functions that got a stub instead of a build. */
  get stubs(): readonly FunctionBinary[] {
    return this.stubbed;
  }

  private writeStub(binary: FunctionBinary): string {
    const dir = path.join(this.stubDir, binary);
    fs.mkdirSync(dir, { recursive: true });
    const bootstrap = path.join(dir, 'bootstrap');
    fs.writeFileSync(
      bootstrap,
      `#!/bin/sh\n# ${STUB_MARKER}: synthesized without target/lambda/${binary}/bootstrap.zip; not deployable.\n` +
        `echo "${binary}: stub asset, build it with cargo lambda and deploy again" >&2\nexit 1\n`,
      { mode: 0o755 },
    );
    return dir;
  }
}
