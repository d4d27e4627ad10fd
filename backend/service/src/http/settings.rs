//! Settings of the HTTP layer: who callers are, what the API announces about its version,
//! and whether responses carry their AWS costs.

use chrono::{DateTime, Utc};
use clap::{ArgAction, Args, ValueEnum};

use super::auth::{Authenticator, DEVELOPMENT_SECRET, TokenPolicy};
use super::cursor::CursorKey;
use super::middleware::VersionPolicy;
use crate::config::{rfc3339, switch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Verify HS256 bearer tokens with BRAIN2_JWT_SECRET.
    Jwt,
    /// Trust the claims of the API Gateway JWT/Cognito authorizer in front of the function.
    Apigateway,
}

#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// How callers are authenticated.
    #[arg(long, env = "BRAIN2_AUTH_MODE", value_enum, default_value_t = AuthMode::Jwt)]
    pub auth_mode: AuthMode,
    /// HS256 secret of bearer tokens; unset means the published development secret,
    /// which a Lambda function refuses (32 bytes at least there).
    #[arg(long, env = "BRAIN2_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Accepted token issuers (`iss`), comma-separated; unset means `iss` is not checked.
    #[arg(long, env = "BRAIN2_JWT_ISSUER", value_delimiter = ',')]
    pub jwt_issuer: Vec<String>,
    /// Accepted token audiences (`aud`), comma-separated; unset means `aud` is not checked.
    #[arg(long, env = "BRAIN2_JWT_AUDIENCE", value_delimiter = ',')]
    pub jwt_audience: Vec<String>,
    /// Key of the MAC that binds cursors to their user; unset means a built-in key, which
    /// still binds them (reads are keyed by the caller whatever a cursor says), but lets
    /// whoever knows it forge positions in their own data.
    #[arg(long, env = "BRAIN2_CURSOR_KEY", hide_env_values = true)]
    pub cursor_key: Option<String>,
    /// When API v1 was deprecated (RFC 3339), announced in a `Deprecation` header.
    #[arg(long, env = "BRAIN2_API_V1_DEPRECATED_AT", value_parser = rfc3339)]
    pub api_v1_deprecated_at: Option<DateTime<Utc>>,
    /// When API v1 goes away (RFC 3339), announced in a `Sunset` header.
    #[arg(long, env = "BRAIN2_API_V1_SUNSET_AT", value_parser = rfc3339)]
    pub api_v1_sunset_at: Option<DateTime<Utc>>,
    /// How long one health report answers `/health`: each instance checks its dependencies
    /// at most once per period, however often it is asked.
    #[arg(long, env = "BRAIN2_HEALTH_REPORT_SECONDS", default_value_t = 5)]
    pub health_report_seconds: u64,
    /// Put each request's AWS costs in `x-brain2-aws-*` response headers.
    #[arg(long, env = "BRAIN2_EXPOSE_COSTS", value_name = "on|off", value_parser = switch, default_value = "off", action = ArgAction::Set)]
    pub expose_costs: bool,
}

impl HttpSettings {
    /// The secret tokens are verified with; locally the development default.
    pub fn jwt_secret(&self) -> &str {
        self.jwt_secret.as_deref().unwrap_or(DEVELOPMENT_SECRET)
    }

    /// Whether bearer tokens are checked with the published development secret, with which
    /// anyone can sign a token for any user.
    pub fn uses_development_secret(&self) -> bool {
        self.auth_mode == AuthMode::Jwt && self.jwt_secret() == DEVELOPMENT_SECRET
    }

    pub fn authenticator(&self) -> Authenticator {
        match self.auth_mode {
            AuthMode::Apigateway => Authenticator::GatewayAuthorizer,
            AuthMode::Jwt => Authenticator::shared_secret_with(self.jwt_secret(), &self.token_policy()),
        }
    }

    /// The `iss` and `aud` checks configured (empty lists: none).
    pub fn token_policy(&self) -> TokenPolicy {
        let values = |list: &[String]| list.iter().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect();
        TokenPolicy { issuers: values(&self.jwt_issuer), audiences: values(&self.jwt_audience) }
    }

    pub fn cursor_key(&self) -> CursorKey {
        match self.cursor_key.as_deref() {
            Some(secret) if !secret.is_empty() => CursorKey::from_secret(secret.as_bytes()),
            _ => CursorKey::built_in(),
        }
    }

    pub fn version_policy(&self) -> VersionPolicy {
        VersionPolicy { deprecated_at: self.api_v1_deprecated_at, sunset_at: self.api_v1_sunset_at }
    }
}
