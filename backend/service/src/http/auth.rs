//! Who is calling. The user id is the verified JWT `sub` and nothing else: never a field
//! of the body or the path.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::AppState;
use super::problem::ApiError;
use crate::domain::UserId;

/// The secret that `brain2 serve` falls back to for local development. The Lambda refuses
/// to start with it.
pub const DEVELOPMENT_SECRET: &str = "brain2-local-development-secret";
/// Tolerated clock skew when checking `exp`.
const LEEWAY_SECONDS: u64 = 30;

/// What the service reads of a token; `exp` is checked by the decoder. `sub` is optional
/// here only so that a token without one is refused as such, not as unreadable.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
}

/// Claims that API Gateway's JWT or Cognito authorizer verified; put into the request
/// extensions by the Lambda entry point, never built from anything the client sends.
#[derive(Debug, Clone)]
pub struct AuthorizerClaims {
    pub subject: Option<String>,
}

#[derive(Clone)]
pub enum Authenticator {
    /// Verify HS256 bearer tokens with a shared secret.
    SharedSecret(Box<(DecodingKey, Validation)>),
    /// Trust the claims of the API Gateway authorizer in front of the function.
    GatewayAuthorizer,
}

/// What a token must say beyond `sub` and `exp`, when the deployment asks for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenPolicy {
    /// `iss` must be one of these; not checked when empty.
    pub issuers: Vec<String>,
    /// `aud` must name one of these; not checked when empty (a token's `aud` is then ignored).
    pub audiences: Vec<String>,
}

impl Authenticator {
    pub fn shared_secret(secret: &str) -> Self {
        Self::shared_secret_with(secret, &TokenPolicy::default())
    }

    pub fn shared_secret_with(secret: &str, policy: &TokenPolicy) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Only HS256: `alg: none` and every other algorithm are refused by the decoder.
        validation.algorithms = vec![Algorithm::HS256];
        let mut required = vec!["exp", "sub"];
        // A token that says it is not valid yet (`nbf`) is refused until it is; the decoder
        // ignores `nbf` unless asked.
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        if !policy.issuers.is_empty() {
            validation.set_issuer(&policy.issuers);
            required.push("iss");
        }
        if policy.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&policy.audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Self::SharedSecret(Box::new((DecodingKey::from_secret(secret.as_bytes()), validation)))
    }

    pub fn authenticate(&self, parts: &Parts) -> Result<UserId, ApiError> {
        match self {
            Self::SharedSecret(_) => self.verify_token(bearer_token(parts)?),
            Self::GatewayAuthorizer => {
                let subject = parts
                    .extensions
                    .get::<AuthorizerClaims>()
                    .and_then(|claims| claims.subject.clone())
                    .ok_or_else(|| unauthorized("missing-claims", "the request carries no authorizer claims"))?;
                user_of(&subject)
            }
        }
    }

    /// The user a token names, once its signature and claims are checked: for callers that
    /// cannot send an `Authorization` header (a browser's WebSocket).
    pub fn verify_token(&self, token: &str) -> Result<UserId, ApiError> {
        let Self::SharedSecret(verifier) = self else {
            return Err(unauthorized("token-not-accepted", "this deployment checks tokens at the gateway only"));
        };
        let (key, validation) = verifier.as_ref();
        let subject = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|error| unauthorized("invalid-token", refusal(error.kind())))?
            .claims
            .sub
            .ok_or_else(|| {
                unauthorized("invalid-token", refusal(&ErrorKind::MissingRequiredClaim("sub".to_owned())))
            })?;
        user_of(&subject)
    }
}

fn user_of(subject: &str) -> Result<UserId, ApiError> {
    UserId::parse(subject).map_err(|_| unauthorized("invalid-subject", "the token subject is not a valid user id"))
}

/// Why a token was refused, in words a client can act on (and nothing of the secret).
fn refusal(kind: &ErrorKind) -> String {
    let reason = match kind {
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::MissingAlgorithm => {
            "the token's algorithm is not accepted (HS256 only)".to_owned()
        }
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".to_owned(),
        ErrorKind::InvalidAudience => "the token's audience (aud) is not accepted".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's {claim} claim is malformed"),
        _ => "the token is malformed (not a signed JWT)".to_owned(),
    };
    format!("the bearer token was refused: {reason}")
}

fn unauthorized(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, detail)
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing-token", "send Authorization: Bearer <token>"))?;
    let value = header.to_str().map_err(|_| unauthorized("invalid-token", "the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(unauthorized("missing-token", "the Authorization header must use the Bearer scheme")),
    }
}

/// The authenticated caller; a handler that takes it cannot run for an anonymous request.
pub struct AuthUser(pub UserId);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        state.authenticator.authenticate(parts).map(AuthUser)
    }
}
