//! The OpenAPI 3.1 document of the API, generated from the code: the routes and their
//! handlers' `#[utoipa::path]` (through `utoipa_axum`'s `OpenApiRouter`, so a route cannot
//! exist without its description), the DTOs' schemas, and here the answers every operation
//! shares. Served at `GET /api/v1/openapi.json`; a copy is checked in at `docs/openapi.json`
//! and a test fails when that copy is stale (`make openapi` rewrites it).

use std::sync::OnceLock;

use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Components, Content, Ref, RefOr, Response};
use utoipa_axum::router::OpenApiRouter;

use super::dto::{MAX_BODY_BYTES, MAX_BULK_BODY_BYTES};
use super::problem::{PROBLEM_CONTENT_TYPE, Problem};
use super::{API_PREFIX, AppState};

/// The name of the bearer JWT security scheme.
pub const BEARER_SCHEME: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Brain2 API",
        description = "A personal knowledge graph: notes, the keywords extracted from them, and the links between \
                       them.\n\n\
                       **Callers.** Every operation but `/health` and `/openapi.json` needs `Authorization: Bearer \
                       <JWT>`; the user is the token's `sub` and nothing else, so a client never names a user. \
                       Another user's notes do not exist for a caller (404, or empty results).\n\n\
                       **Errors** are `application/problem+json` (RFC 9457) with a stable `code` and, when one \
                       field of the request is to blame, its name in `field` (a body path such as `nodes[2].tags`, \
                       a parameter or a header).\n\n\
                       **Limits.** Bodies: 64 KiB (5 MiB for `POST /nodes/bulk`), or 413 `body-too-large`. \
                       Request bodies are JSON in UTF-8 with `Content-Type: application/json` (else 415); a field \
                       a body does not have, such as `userId`, is a 400 `unknown-field`; a missing field or one of \
                       the wrong type is a 422 `invalid-body`. Per note: content 1 to 10,000 characters, at most \
                       10 tags of 1 to 50 characters. Bulk requests: 1 to 100 items. Pages: `limit` 1 to 200. \
                       Cursors are valid only for the user they were returned to (else 400 `invalid-cursor`).\n\n\
                       **Load.** A caller that sends too much is answered 429 with `Retry-After`; a request that \
                       cannot finish in time is answered 503 with `Retry-After`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    tags(
        (name = "nodes", description = "Notes"),
        (name = "edges", description = "Links between notes"),
        (name = "graph", description = "The whole graph"),
        (name = "search", description = "Keyword search"),
        (name = "service", description = "Health and this document"),
    ),
    components(schemas(Problem)),
)]
struct ApiDoc;

fn problem_content() -> Content {
    Content::new(Some(Ref::from_schema_name("Problem")))
}

fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(PROBLEM_CONTENT_TYPE, problem_content())
}

fn seconds_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0))))
        .description(Some(description))
        .build()
}

fn retry_after(builder: ResponseBuilder) -> Response {
    builder.header("Retry-After", seconds_header("Seconds to wait before retrying")).build()
}

/// The answers shared by operations, by name in `components.responses`, with the status they
/// answer and which operations can give them.
struct Shared {
    name: &'static str,
    status: &'static str,
    applies: fn(&Operation) -> bool,
    response: fn() -> Response,
}

fn always(_: &Operation) -> bool {
    true
}

fn has_body(operation: &Operation) -> bool {
    operation.request_body.is_some()
}

/// Whether the operation requires a token (an empty requirement means anonymous is allowed).
fn needs_token(operation: &Operation) -> bool {
    let requirements = operation.security.as_deref().unwrap_or_default();
    !requirements.is_empty()
        && requirements
            .iter()
            .all(|requirement| serde_json::to_value(requirement).is_ok_and(|v| v != serde_json::json!({})))
}

const SHARED: &[Shared] = &[
    Shared {
        name: "Unauthorized",
        status: "401",
        applies: needs_token,
        response: || {
            problem_response(
                "No bearer token (`missing-token`), or one that was refused (`invalid-token`): malformed, expired, \
                 not valid yet, signed with another key or algorithm, unsigned, or with an issuer or audience \
                 this deployment does not accept",
            )
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .description(Some(
                        "`Bearer realm=\"brain2\"`, with `error=\"invalid_token\"` when a token was refused",
                    ))
                    .build(),
            )
            .build()
        },
    },
    Shared {
        name: "NotAcceptable",
        status: "406",
        applies: always,
        response: || {
            problem_response("`Accept` asks for an API version this service does not speak (`unsupported-version`)")
                .build()
        },
    },
    Shared {
        name: "PayloadTooLarge",
        status: "413",
        applies: has_body,
        response: || problem_response("The body is over the operation's limit (`body-too-large`)").build(),
    },
    Shared {
        name: "UnsupportedMediaType",
        status: "415",
        applies: has_body,
        response: || {
            problem_response("The body is not sent as `application/json` in UTF-8 (`unsupported-media-type`)").build()
        },
    },
    Shared {
        name: "UnprocessableContent",
        status: "422",
        applies: has_body,
        response: || {
            problem_response("A field is missing or of the wrong type (`invalid-body`); `field` names it").build()
        },
    },
    Shared {
        name: "TooManyRequests",
        status: "429",
        applies: always,
        response: || retry_after(problem_response("The caller sent more requests than its rate allows")),
    },
    Shared {
        name: "InternalError",
        status: "500",
        applies: always,
        response: || problem_response("An internal error (`internal`); details are in the service's log").build(),
    },
    Shared {
        name: "Unavailable",
        status: "503",
        applies: always,
        response: || {
            retry_after(problem_response(
                "The store is throttling (`throttled`) or the request could not finish in time; nothing is lost by \
                 retrying",
            ))
        },
    },
];

/// The `/api/v1` routes with the router they describe, before any state or layer.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest(API_PREFIX, super::api_routes())
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = routes().into_openapi();
    let components = document.components.get_or_insert_with(Components::new);
    components.security_schemes.insert(
        BEARER_SCHEME.to_owned(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An HS256 JWT with `sub` (the user id) and `exp`; `nbf`, `iss` and `aud` are checked when \
                     present or configured. `brain2 token --user <id>` prints one for local use.",
                ))
                .build(),
        )),
    );
    for shared in SHARED {
        components.responses.insert(shared.name.to_owned(), RefOr::T((shared.response)()));
    }
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            let applicable: Vec<&Shared> = SHARED.iter().filter(|shared| (shared.applies)(operation)).collect();
            for shared in applicable {
                operation
                    .responses
                    .responses
                    .entry(shared.status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(shared.name)));
            }
        }
    }
    document
}

/// The document as served and checked in: pretty JSON with a final newline.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut json = serde_json::to_string_pretty(&document()).expect("the document serialises");
        json.push('\n');
        json
    })
}

/// The limits the document states in words, so a test can hold them to the code's.
pub const STATED_BODY_LIMITS: (usize, usize) = (MAX_BODY_BYTES, MAX_BULK_BODY_BYTES);

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::Value;

    use super::*;
    use crate::app::service::{MAX_BULK_ITEMS, MAX_PAGE_SIZE};
    use crate::domain::node::{MAX_CONTENT_CHARS, MAX_TAG_CHARS, MAX_TAGS};

    const UPDATE_VARIABLE: &str = "BRAIN2_UPDATE_OPENAPI";

    fn checked_in_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    fn document_value() -> Value {
        serde_json::from_str(json()).unwrap()
    }

    fn operations(document: &Value) -> Vec<(String, String, Value)> {
        let mut found = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                found.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
        found
    }

    /// `docs/openapi.json` is what the code generates; with BRAIN2_UPDATE_OPENAPI=1 the test
    /// rewrites it instead (`make openapi`).
    #[test]
    fn the_checked_in_document_is_current() {
        let path = checked_in_path();
        if std::env::var_os(UPDATE_VARIABLE).is_some_and(|v| v == "1") {
            std::fs::write(&path, json()).expect("docs/openapi.json is writable");
            return;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        if checked_in != json() {
            let first_difference = checked_in
                .lines()
                .zip(json().lines())
                .position(|(old, new)| old != new)
                .map_or_else(|| "in its length".to_owned(), |line| format!("from line {}", line + 1));
            panic!(
                "docs/openapi.json is stale (it differs {first_difference}): regenerate it with `make openapi` \
                 ({UPDATE_VARIABLE}=1 cargo test -p brain2 --lib http::openapi) and commit it"
            );
        }
    }

    #[test]
    fn it_is_openapi_3_1_and_lists_every_route() {
        let document = document_value();
        assert_eq!(document["openapi"], "3.1.0");
        let mut listed: Vec<String> =
            operations(&document).into_iter().map(|(method, path, _)| format!("{method} {path}")).collect();
        listed.sort();
        let expected = [
            "DELETE /api/v1/edges/{source}/{target}",
            "DELETE /api/v1/nodes/bulk",
            "DELETE /api/v1/nodes/{id}",
            "GET /api/v1/graph-data",
            "GET /api/v1/health",
            "GET /api/v1/nodes",
            "GET /api/v1/nodes/{id}",
            "GET /api/v1/nodes/{id}/neighbors",
            "GET /api/v1/openapi.json",
            "GET /api/v1/search",
            "POST /api/v1/edges",
            "POST /api/v1/nodes",
            "POST /api/v1/nodes/bulk",
            "PUT /api/v1/nodes/{id}",
        ];
        assert_eq!(listed, expected);
    }

    #[test]
    fn every_operation_documents_its_shared_answers() {
        let document = document_value();
        for (method, path, operation) in operations(&document) {
            let responses = operation["responses"].as_object().unwrap();
            let anonymous = path.ends_with("/health") || path.ends_with("/openapi.json");
            let mut expected = vec!["406", "429", "500", "503"];
            if !anonymous {
                expected.push("401");
                assert_eq!(operation["security"], serde_json::json!([{ "bearer": [] }]), "{method} {path}");
            }
            if operation.get("requestBody").is_some() {
                expected.extend(["413", "415", "422"]);
            }
            for status in expected {
                assert!(responses.contains_key(status), "{method} {path} does not document {status}");
            }
            for (status, response) in responses {
                if status.starts_with('4') || status == "500" {
                    let text = response.to_string();
                    assert!(
                        text.contains("Problem") || text.contains("#/components/responses/"),
                        "{method} {path} {status}"
                    );
                }
            }
        }
        for name in ["TooManyRequests", "Unavailable"] {
            assert!(document["components"]["responses"][name]["headers"]["Retry-After"].is_object());
        }
        assert!(document["components"]["responses"]["Unauthorized"]["headers"]["WWW-Authenticate"].is_object());
    }

    #[test]
    fn the_documented_limits_are_the_code_s() {
        let document = document_value();
        let schemas = &document["components"]["schemas"];
        let node = &schemas["NodeBody"]["properties"];
        assert_eq!(node["content"]["maxLength"], MAX_CONTENT_CHARS);
        assert_eq!(node["tags"]["maxItems"], MAX_TAGS);
        assert_eq!(node["tags"]["items"]["maxLength"], MAX_TAG_CHARS);
        assert_eq!(schemas["BulkCreateBody"]["properties"]["nodes"]["maxItems"], MAX_BULK_ITEMS);
        assert_eq!(schemas["BulkDeleteBody"]["properties"]["nodeIds"]["maxItems"], MAX_BULK_ITEMS);
        for body in ["NodeBody", "UpdateNodeBody", "BulkCreateBody", "BulkDeleteBody", "CreateEdgeBody"] {
            assert_eq!(schemas[body]["additionalProperties"], false, "{body} refuses unknown fields");
        }
        let list = &document["paths"]["/api/v1/nodes"]["get"]["parameters"];
        let limit = list.as_array().unwrap().iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!(limit["schema"]["maximum"], MAX_PAGE_SIZE);
        let description = document["info"]["description"].as_str().unwrap();
        let (small, bulk) = STATED_BODY_LIMITS;
        assert!(description.contains(&format!("{} KiB", small / 1024)), "the body limit in words");
        assert!(description.contains(&format!("{} MiB", bulk / (1024 * 1024))), "the bulk body limit in words");
        assert!(description.contains(&format!("{} to {}", 1, MAX_BULK_ITEMS)));
    }
}
