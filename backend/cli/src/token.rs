//! Development tokens: HS256 JWTs for a user, signed with the configured secret, as the
//! service's `jwt` authentication mode verifies them.

use brain2::domain::UserId;
use brain2::http::auth::TokenPolicy;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Signs a token for `user`, valid for `ttl_seconds`.
pub fn issue(secret: &str, user: &UserId, ttl_seconds: i64) -> Result<String, jsonwebtoken::errors::Error> {
    issue_for(secret, user, ttl_seconds, &TokenPolicy::default())
}

/// Signs a token that a service with this issuer and audience policy accepts: with the
/// first accepted issuer as `iss` and the first accepted audience as `aud`, when there are.
pub fn issue_for(
    secret: &str,
    user: &UserId,
    ttl_seconds: i64,
    policy: &TokenPolicy,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: user.as_str(),
        iat: now,
        exp: now + ttl_seconds,
        iss: policy.issuers.first().map(String::as_str),
        aud: policy.audiences.first().map(String::as_str),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
}
