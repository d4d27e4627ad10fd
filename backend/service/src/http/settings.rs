//! Settings of the HTTP layer: who callers are, what the API announces about its version,
//! and whether responses carry their AWS costs.

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{ArgAction, Args, ValueEnum};

use super::auth::{Authenticator, DEVELOPMENT_SECRET, TokenPolicy};
use super::cursor::CursorKey;
use super::limits::{DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_SECOND, Overload, RateLimit};
use super::middleware::VersionPolicy;
use crate::config::{rfc3339, switch};

/// A deadline of at least one millisecond.
fn deadline(raw: &str) -> Result<Duration, String> {
    crate::config::milliseconds(raw).and_then(|value| {
        if value.is_zero() { Err("a request deadline must be at least 1 ms".to_owned()) } else { Ok(value) }
    })
}

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
    /// How long one request may take in all, retries included, in milliseconds; then it
    /// answers 503 with `Retry-After`. Keep it under the function timeout (and API
    /// Gateway's 29 s) in Lambda.
    #[arg(long = "request-deadline-ms", env = "BRAIN2_REQUEST_DEADLINE_MS", value_name = "MS", value_parser = deadline, default_value = "20000")]
    pub request_deadline: Duration,
    /// Requests per second each user may make on average (per instance); 0 turns the
    /// rate limit off. Beyond it, 429 with `Retry-After`.
    #[arg(long, env = "BRAIN2_RATE_LIMIT_PER_SECOND", value_name = "N", default_value_t = DEFAULT_RATE_LIMIT_PER_SECOND)]
    pub rate_limit_per_second: u32,
    /// Requests each user may make at once, on top of the average rate.
    #[arg(long, env = "BRAIN2_RATE_LIMIT_BURST", value_name = "N", default_value_t = DEFAULT_RATE_LIMIT_BURST)]
    pub rate_limit_burst: u32,
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

    /// The per-user rate limit, or `None` when it is off.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        let per_second = NonZeroU32::new(self.rate_limit_per_second)?;
        // A burst below the rate would refuse requests the rate allows.
        let burst = NonZeroU32::new(self.rate_limit_burst.max(self.rate_limit_per_second))?;
        Some(RateLimit { per_second, burst })
    }

    pub fn overload(&self) -> Overload {
        Overload::new(self.request_deadline, self.rate_limit())
    }

    pub fn version_policy(&self) -> VersionPolicy {
        VersionPolicy { deprecated_at: self.api_v1_deprecated_at, sunset_at: self.api_v1_sunset_at }
    }
}
