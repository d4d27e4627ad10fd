//! Development tokens: HS256 JWTs for a user, signed with the configured secret, as the
//! service's `jwt` authentication mode verifies them.

use brain2::domain::UserId;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: i64,
    exp: i64,
}

/// Signs a token for `user`, valid for `ttl_seconds`.
pub fn issue(secret: &str, user: &UserId, ttl_seconds: i64) -> Result<String, jsonwebtoken::errors::Error> {
    let now = Utc::now().timestamp();
    let claims = Claims { sub: user.as_str(), iat: now, exp: now + ttl_seconds };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
}
