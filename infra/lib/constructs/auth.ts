import { Duration, RemovalPolicy, SecretValue, Validations } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { AuthMode } from '../config';

export interface AuthenticationProps {
  readonly prefix: string;
  readonly mode: AuthMode;
  /** jwt mode: an existing secret's name; unset creates one with a generated value. */
  readonly jwtSecretName?: string;
}

/**
 * Who callers are. The service reads its HS256 secret only from `BRAIN2_JWT_SECRET`, so:
 * - `cognito` (default): a user pool whose ID tokens a Cognito authorizer on the REST API
 *   verifies; the function trusts the authorizer's claims (`BRAIN2_AUTH_MODE=apigateway`)
 *   and never sees a secret.
 * - `jwt`: the function verifies tokens with a secret from Secrets Manager, passed as a
 *   CloudFormation dynamic reference that is resolved at deploy time, so the template and
 *   the cloud assembly hold no secret. A new secret value takes a redeploy.
 */
export class Authentication extends Construct {
  readonly mode: AuthMode;
  readonly userPool?: cognito.UserPool;
  readonly userPoolClient?: cognito.UserPoolClient;
  /** jwt mode: the secret's ARN (created here) or name (given). */
  readonly jwtSecretId?: string;
  private readonly jwtSecretValue?: SecretValue;

  constructor(scope: Construct, id: string, props: AuthenticationProps) {
    super(scope, id);
    this.mode = props.mode;
    if (props.mode === 'cognito') {
      this.userPool = new cognito.UserPool(this, 'UserPool', {
        userPoolName: `${props.prefix}-users`,
        selfSignUpEnabled: false,
        signInAliases: { email: true },
        passwordPolicy: {
          minLength: 12,
          requireLowercase: true,
          requireUppercase: true,
          requireDigits: true,
          requireSymbols: true,
          tempPasswordValidity: Duration.days(3),
        },
        mfa: cognito.Mfa.OPTIONAL,
        mfaSecondFactor: { otp: true, sms: false },
        accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
        // User ids in the table are the pool's `sub`s: the pool outlives the stack, like the table.
        deletionProtection: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      Validations.of(this.userPool).acknowledge({
        id: 'AwsSolutions-COG2',
        reason: 'MFA is optional (TOTP) so that scripted clients such as the load harness can sign in; users may enrol',
      });
      Validations.of(this.userPool).acknowledge({
        id: 'AwsSolutions-COG8',
        reason: 'Threat protection (the Plus feature plan) is billed per active user; the pool is invitation-only',
      });
      this.userPoolClient = this.userPool.addClient('Client', {
        userPoolClientName: `${props.prefix}-api`,
        authFlows: { userSrp: true, userPassword: true, adminUserPassword: true },
        generateSecret: false,
        preventUserExistenceErrors: true,
        idTokenValidity: Duration.hours(1),
        accessTokenValidity: Duration.hours(1),
      });
    } else if (props.jwtSecretName) {
      // By name: CloudFormation resolves the secret's current value when it deploys.
      this.jwtSecretId = props.jwtSecretName;
      this.jwtSecretValue = SecretValue.secretsManager(props.jwtSecretName);
    } else {
      const secret = new secretsmanager.Secret(this, 'JwtSecret', {
        secretName: `${props.prefix}/jwt-secret`,
        description: 'HS256 secret of Brain2 bearer tokens (BRAIN2_JWT_SECRET)',
        generateSecretString: { passwordLength: 64, excludePunctuation: true },
      });
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason: 'The function reads the secret from its environment at start; a rotation takes a redeploy, which is the rotation procedure in docs/deploy.md',
      });
      this.jwtSecretId = secret.secretArn;
      this.jwtSecretValue = secret.secretValue;
    }
  }

  /**
   * The authentication settings of the realtime connections function, which checks the token
   * a client connects with itself (a WebSocket `$connect` has no authorizer in front): the API
   * function's own, so a token the API takes opens a connection too. It verifies HS256 tokens
   * only, so jwt mode alone has it (the stack leaves the WebSocket API out with Cognito).
   */
  realtimeSettings(): Record<string, string> {
    if (this.mode !== 'jwt') {
      throw new Error('the realtime connections function verifies the HS256 tokens of authMode=jwt only');
    }
    return this.apiSettings();
  }

  /** The authentication settings of the API function. */
  apiSettings(): Record<string, string> {
    if (this.mode === 'cognito') {
      return { BRAIN2_AUTH_MODE: 'apigateway' };
    }
    return {
      BRAIN2_AUTH_MODE: 'jwt',
      // A `{{resolve:secretsmanager:...}}` reference, resolved by CloudFormation at deploy time.
      BRAIN2_JWT_SECRET: this.jwtSecretValue!.unsafeUnwrap(),
    };
  }
}
