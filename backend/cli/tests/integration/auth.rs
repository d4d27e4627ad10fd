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

fn unsigned(header: serde_json::Value, claims: serde_json::Value) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}.", engine.encode(header.to_string()), engine.encode(claims.to_string()))
}

/// A token whose header names `alg` but whose signature is HS256's with the right secret:
/// only the algorithm is wrong.
fn with_algorithm_header(alg: &str, claims: serde_json::Value) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let genuine = sign(Header::new(Algorithm::HS256), claims.clone(), TEST_SECRET);
    let signature = genuine.rsplit('.').next().unwrap();
    let header = engine.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
    format!("{header}.{}.{signature}", engine.encode(claims.to_string()))
}

const CHALLENGE: &str = "Bearer realm=\"brain2\"";

/// Every way a caller can fail to authenticate is a 401 problem with a `WWW-Authenticate`
/// challenge: without an error code when no credentials came, `invalid_token` when a token
/// was refused, and the reason in the detail.
#[tokio::test]
async fn every_authentication_failure_is_a_401_with_a_bearer_challenge() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let now = chrono::Utc::now().timestamp();
    let valid_claims = json!({"sub": user, "exp": now + 600, "iat": now});
    let hs256 = |claims: serde_json::Value| sign(Header::new(Algorithm::HS256), claims, TEST_SECRET);
    let other_secret =
        token::issue("some-other-secret-some-other-secret", &UserId::parse(&user).unwrap(), 600).unwrap();

    // (case, Authorization header, code, words of the detail)
    let cases: Vec<(&str, Option<String>, &str, &str)> = vec![
        ("missing", None, "missing-token", "Authorization"),
        ("another scheme", Some("Basic dTpw".to_owned()), "missing-token", "Bearer"),
        ("empty bearer", Some("Bearer ".to_owned()), "missing-token", "Bearer"),
        ("malformed", Some("Bearer not.a.jwt".to_owned()), "invalid-token", "malformed"),
        ("not even dotted", Some("Bearer garbage".to_owned()), "invalid-token", "malformed"),
        (
            "expired",
            Some(format!("Bearer {}", hs256(json!({"sub": user, "exp": now - 3600, "iat": now - 7200})))),
            "invalid-token",
            "expired",
        ),
        (
            "not valid yet (nbf)",
            Some(format!("Bearer {}", hs256(json!({"sub": user, "exp": now + 7200, "nbf": now + 3600})))),
            "invalid-token",
            "not valid yet",
        ),
        ("signed with another secret", Some(format!("Bearer {other_secret}")), "invalid-token", "signature"),
        (
            "HS512 where HS256 is expected",
            Some(format!("Bearer {}", sign(Header::new(Algorithm::HS512), valid_claims.clone(), TEST_SECRET))),
            "invalid-token",
            "algorithm",
        ),
        (
            "RS256 header",
            Some(format!("Bearer {}", with_algorithm_header("RS256", valid_claims.clone()))),
            "invalid-token",
            "algorithm",
        ),
        (
            "alg: none",
            Some(format!("Bearer {}", unsigned(json!({"alg": "none", "typ": "JWT"}), valid_claims.clone()))),
            "invalid-token",
            "malformed",
        ),
        ("no exp", Some(format!("Bearer {}", hs256(json!({"sub": user})))), "invalid-token", "exp"),
        ("no sub", Some(format!("Bearer {}", hs256(json!({"exp": now + 600})))), "invalid-token", "sub"),
        (
            "a subject that is no user id",
            Some(format!("Bearer {}", hs256(json!({"sub": "a#b", "exp": now + 600})))),
            "invalid-subject",
            "subject",
        ),
    ];
    for (case, authorization, code, words) in cases {
        let mut request = Request::builder().uri("/api/v1/nodes");
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let refused = app.send(request.body(Body::empty()).unwrap()).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{case}: {}", refused.body);
        refused.assert_problem(401, code);
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{case}: the detail {detail:?} does not say {words:?}");
        let challenge = refused.header("www-authenticate").unwrap_or_else(|| panic!("{case}: no challenge"));
        if code == "missing-token" {
            assert_eq!(challenge, CHALLENGE, "{case}");
        } else {
            assert!(challenge.starts_with(&format!("{CHALLENGE}, error=\"invalid_token\"")), "{case}: {challenge}");
        }
    }

    let valid = app.send(with_bearer(&crate::support::token(&user))).await;
    assert_eq!(valid.status, StatusCode::OK, "the same request with a valid token passes: {}", valid.body);
}

/// With `BRAIN2_JWT_ISSUER` and `BRAIN2_JWT_AUDIENCE` set, a token must carry an accepted
/// `iss` and `aud`; unset, neither is checked (a token for some audience is still accepted).
#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let issuer = "https://issuer.example/brain2";
    let app = TestApp::spawn_with(settings_with(&[
        "--jwt-issuer",
        &format!("{issuer},https://other-issuer.example"),
        "--jwt-audience",
        "brain2-api",
    ]))
    .await;
    let user = unique_user();
    let now = chrono::Utc::now().timestamp();
    let claims = |extra: serde_json::Value| {
        let mut claims = json!({"sub": user, "exp": now + 600});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        sign(Header::new(Algorithm::HS256), claims, TEST_SECRET)
    };
    let accepted = [
        claims(json!({"iss": issuer, "aud": "brain2-api"})),
        claims(json!({"iss": "https://other-issuer.example", "aud": ["brain2-api", "another-api"]})),
    ];
    for token in accepted {
        let response = app.send(with_bearer(&token)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }
    let refused = [
        (claims(json!({"aud": "brain2-api"})), "iss"),
        (claims(json!({"iss": "https://elsewhere.example", "aud": "brain2-api"})), "issuer"),
        (claims(json!({"iss": issuer})), "aud"),
        (claims(json!({"iss": issuer, "aud": "another-api"})), "audience"),
    ];
    for (token, words) in refused {
        let response = app.send(with_bearer(&token)).await;
        response.assert_problem(401, "invalid-token");
        assert!(response.body["detail"].as_str().unwrap().contains(words), "{}", response.body);
    }
    // `brain2 token` with the same settings mints a token this deployment accepts.
    let policy = app.settings.http.token_policy();
    let minted = token::issue_for(TEST_SECRET, &UserId::parse(&user).unwrap(), 600, &policy).unwrap();
    assert_eq!(app.send(with_bearer(&minted)).await.status, StatusCode::OK);

    let unconfigured = TestApp::spawn().await;
    let for_some_audience = claims(json!({"iss": "https://anyone.example", "aud": "some-api"}));
    assert_eq!(unconfigured.send(with_bearer(&for_some_audience)).await.status, StatusCode::OK);
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
