//! The Lambda adapter fed with real API Gateway event shapes (REST v1 and HTTP API v2).

use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{TestApp, read_response, settings_with, token, unique_user};

fn http_api_v2_event(method: &str, path: &str, headers: Value, body: Option<String>, claims: Option<Value>) -> String {
    let mut context = json!({
        "accountId": "123456789012",
        "apiId": "api-id",
        "domainName": "id.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "id",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "test"},
        "requestId": "v2-request-id",
        "routeKey": "$default",
        "stage": "$default",
        "time": "12/Mar/2026:19:03:58 +0000",
        "timeEpoch": 1_773_342_238_000_u64
    });
    if let Some(claims) = claims {
        context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

fn rest_v1_event(method: &str, path: &str, headers: Value, body: Option<String>, claims: Option<Value>) -> String {
    let mut authorizer = json!({});
    if let Some(claims) = claims {
        authorizer = json!({"claims": claims});
    }
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc123",
            "stage": "prod",
            "requestId": "v1-request-id",
            "identity": {"sourceIp": "192.0.2.1"},
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "apiId": "api-id",
            "path": format!("/prod{path}"),
            "authorizer": authorizer
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

async fn invoke(app: &TestApp, event: &str) -> crate::support::TestResponse {
    let request = lambda_http::request::from_str(event).expect("event parses");
    let response = brain2_lambda::service(app.router.clone()).oneshot(request).await.unwrap();
    read_response(response.map(axum::body::Body::new)).await
}

#[tokio::test]
async fn http_api_v2_events_reach_the_router() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let health = invoke(&app, &http_api_v2_event("GET", "/api/v1/health", json!({}), None, None)).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.body["status"], "up");

    let headers = json!({"authorization": format!("Bearer {}", token(&user)), "content-type": "application/json"});
    let body = Some(json!({"content": "Sent through HTTP API"}).to_string());
    let created = invoke(&app, &http_api_v2_event("POST", "/api/v1/nodes", headers.clone(), body, None)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let fetched = invoke(&app, &http_api_v2_event("GET", &format!("/api/v1/nodes/{id}"), headers, None, None)).await;
    assert_eq!(fetched.body, created.body);
}

#[tokio::test]
async fn rest_v1_events_reach_the_router() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let headers = json!({"Authorization": format!("Bearer {}", token(&user)), "Content-Type": "application/json"});
    let body = Some(json!({"content": "Sent through a REST API"}).to_string());
    let created = invoke(&app, &rest_v1_event("POST", "/api/v1/nodes", headers.clone(), body, None)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let listed = invoke(&app, &rest_v1_event("GET", "/api/v1/nodes", headers, None, None)).await;
    assert_eq!(listed.body["items"][0], created.body);
    assert!(listed.header("x-request-id").is_some());
    let anonymous = invoke(&app, &rest_v1_event("GET", "/api/v1/nodes", json!({}), None, None)).await;
    anonymous.assert_problem(401, "missing-token");
}

#[tokio::test]
async fn authorizer_claims_identify_the_user_in_gateway_mode() {
    let settings = settings_with(&["--auth-mode=apigateway"]);
    let app = TestApp::spawn_with(settings).await;
    let user = unique_user();
    let json_headers = json!({"content-type": "application/json"});

    let body = Some(json!({"content": "Claimed by a JWT authorizer"}).to_string());
    let v2 = http_api_v2_event("POST", "/api/v1/nodes", json_headers.clone(), body, Some(json!({"sub": user})));
    assert_eq!(invoke(&app, &v2).await.status, 201);
    let body = Some(json!({"content": "Claimed by a Cognito authorizer"}).to_string());
    let v1 = rest_v1_event("POST", "/api/v1/nodes", json_headers.clone(), body, Some(json!({"sub": user})));
    assert_eq!(invoke(&app, &v1).await.status, 201);

    let listed =
        invoke(&app, &http_api_v2_event("GET", "/api/v1/nodes", json!({}), None, Some(json!({"sub": user})))).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    // Without authorizer claims, a bearer header alone gets nowhere.
    let headers = json!({"authorization": format!("Bearer {}", token(&user))});
    invoke(&app, &http_api_v2_event("GET", "/api/v1/nodes", headers, None, None))
        .await
        .assert_problem(401, "missing-claims");
}
