use axum::body::Body;
use brain2::domain::UserId;
use brain2::http::auth::AuthorizerClaims;
use brain2_cli::token;
use http::{Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::support::{TEST_SECRET, TestApp, settings_with, unique_user};

fn with_bearer(token: &str) -> Request<Body> {
    Request::builder()
        .uri("/api/v1/nodes")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn sign(header: Header, claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

#[tokio::test]
async fn tokens_are_required_and_verified() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let now = chrono::Utc::now().timestamp();

    let anonymous = app.send(Request::builder().uri("/api/v1/nodes").body(Body::empty()).unwrap()).await;
    anonymous.assert_problem(401, "missing-token");
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    let basic =
        Request::builder().uri("/api/v1/graph-data").header("authorization", "Basic dTpw").body(Body::empty()).unwrap();
    app.send(basic).await.assert_problem(401, "missing-token");

    let valid = app.send(with_bearer(&crate::support::token(&user))).await;
    assert_eq!(valid.status, StatusCode::OK);

    let expired =
        sign(Header::new(Algorithm::HS256), json!({"sub": user, "exp": now - 3600, "iat": now - 7200}), TEST_SECRET);
    let refused = app.send(with_bearer(&expired)).await;
    refused.assert_problem(401, "invalid-token");
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    let not_yet_valid = json!({"sub": user, "exp": now + 7200, "nbf": now + 3600, "iat": now});
    let not_yet_valid = sign(Header::new(Algorithm::HS256), not_yet_valid, TEST_SECRET);
    app.send(with_bearer(&not_yet_valid)).await.assert_problem(401, "invalid-token");
    let other_secret =
        token::issue("some-other-secret-some-other-secret", &UserId::parse(&user).unwrap(), 600).unwrap();
    app.send(with_bearer(&other_secret)).await.assert_problem(401, "invalid-token");
    let no_exp = sign(Header::new(Algorithm::HS256), json!({"sub": user}), TEST_SECRET);
    app.send(with_bearer(&no_exp)).await.assert_problem(401, "invalid-token");
    let no_sub = sign(Header::new(Algorithm::HS256), json!({"exp": now + 600}), TEST_SECRET);
    app.send(with_bearer(&no_sub)).await.assert_problem(401, "invalid-token");
    let hs512 = sign(Header::new(Algorithm::HS512), json!({"sub": user, "exp": now + 600}), TEST_SECRET);
    app.send(with_bearer(&hs512)).await.assert_problem(401, "invalid-token");
    let bad_subject = sign(Header::new(Algorithm::HS256), json!({"sub": "a#b", "exp": now + 600}), TEST_SECRET);
    app.send(with_bearer(&bad_subject)).await.assert_problem(401, "invalid-subject");

    // An unsigned token (`alg: none`) with a valid-looking payload.
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = format!(
        "{}.{}.",
        engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(json!({"sub": user, "exp": now + 600}).to_string())
    );
    app.send(with_bearer(&unsigned)).await.assert_problem(401, "invalid-token");
    app.send(with_bearer("not.a.jwt")).await.assert_problem(401, "invalid-token");
}

#[tokio::test]
async fn gateway_authorizer_mode_trusts_only_platform_claims() {
    let settings = settings_with(&["--auth-mode=apigateway"]);
    let app = TestApp::spawn_with(settings).await;
    let user = unique_user();

    // A bearer token is not enough: the claims must come from the platform.
    app.send(with_bearer(&crate::support::token(&user))).await.assert_problem(401, "missing-claims");

    let mut request = Request::builder()
        .method("POST")
        .uri("/api/v1/nodes")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"content":"Authorized by the gateway"}"#))
        .unwrap();
    request.extensions_mut().insert(AuthorizerClaims { subject: Some(user.clone()) });
    let created = app.send(request).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["content"], "Authorized by the gateway");
}
