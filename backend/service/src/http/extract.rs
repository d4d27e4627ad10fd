//! What handlers read of a request, each refusal a problem+json that names the field.
//!
//! | input | refused with |
//! |---|---|
//! | body over its type's byte limit | 413 `body-too-large` |
//! | body without a JSON content type (or a charset other than UTF-8) | 415 `unsupported-media-type` |
//! | body that is not UTF-8 | 400 `invalid-utf8` |
//! | body that is not JSON | 400 `malformed-json` |
//! | a field the type does not have | 400 `unknown-field` |
//! | a field missing or of the wrong type | 422 `invalid-body` |
//! | query string not UTF-8 once decoded | 400 `invalid-utf8` |
//! | query parameter missing, of the wrong type or repeated | 400 `invalid-query` |

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;

use super::problem::ApiError;

/// A JSON request body type and the largest body it may come in.
pub trait RequestBody: DeserializeOwned {
    /// Bytes, as sent (whitespace and escapes count).
    const MAX_BYTES: usize;
}

/// A `T` read from a JSON object and nothing else. serde's derived structs also read a JSON
/// array as their fields in order (`["text"]` would be a note); the contract says object.
#[derive(Debug)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData)).map(Object)
    }
}

/// A JSON body of type `T`, read within `T::MAX_BYTES`.
pub struct ApiJson<T>(pub T);

/// Query parameters of type `T`.
pub struct ApiQuery<T>(pub T);

/// Path parameters; a rejection is 400 `invalid-path`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

fn unsupported_media_type(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", detail).field("Content-Type")
}

/// `application/json` or `application/<anything>+json`, UTF-8 if a charset is named.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let expected = "send the body as JSON, with Content-Type: application/json";
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| unsupported_media_type(expected))?;
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"));
    if !json {
        return Err(unsupported_media_type(expected));
    }
    for parameter in parts {
        if let Some((name, value)) = parameter.split_once('=')
            && name.trim().eq_ignore_ascii_case("charset")
            && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err(unsupported_media_type("JSON bodies are UTF-8; charset must be utf-8 when named"));
        }
    }
    Ok(())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        format!("the body is larger than this operation's limit of {limit} bytes"),
    )
    .field("body")
}

fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = error.source();
    }
    false
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: RequestBody,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        check_content_type(request.headers())?;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > T::MAX_BYTES as u64) {
            // Refused before a byte of it is read.
            return Err(too_large(T::MAX_BYTES));
        }
        let bytes = axum::body::to_bytes(request.into_body(), T::MAX_BYTES).await.map_err(|error| {
            let error = error.into_inner();
            if is_length_limit(error.as_ref()) {
                too_large(T::MAX_BYTES)
            } else {
                ApiError::bad_request("unreadable-body", format!("the body could not be read: {error}")).field("body")
            }
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|error| {
            ApiError::bad_request(
                "invalid-utf8",
                format!("the body is not UTF-8: invalid bytes at offset {}", error.valid_up_to()),
            )
            .field("body")
        })?;
        parse_json::<Object<T>>(text).map(|Object(body)| ApiJson(body))
    }
}

/// The body's JSON as `T`, or the problem naming where it went wrong.
pub fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(body_error)?;
    deserializer.end().map_err(|error| malformed(&error))?;
    Ok(value)
}

fn malformed(error: &serde_json::Error) -> ApiError {
    ApiError::bad_request("malformed-json", format!("the body is not valid JSON: {error}")).field("body")
}

/// The name serde quotes after `prefix`, as in "unknown field `userId`, expected ...".
fn quoted_name<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(name, _)| name)
}

/// `parent.name`, or `name` at the root (serde_path_to_error writes the root as `.`).
fn join_path(parent: &str, name: &str) -> String {
    match parent {
        "" | "." => name.to_owned(),
        parent if parent == name || parent.ends_with(&format!(".{name}")) => parent.to_owned(),
        parent => format!("{parent}.{name}"),
    }
}

fn body_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.inner();
    if !matches!(inner.classify(), Category::Data) {
        return malformed(inner);
    }
    let message = inner.to_string();
    if let Some(name) = quoted_name(&message, "unknown field `") {
        let field = join_path(&path, name);
        return ApiError::bad_request("unknown-field", format!("{field}: unknown field; {message}")).field(field);
    }
    let field = match quoted_name(&message, "missing field `") {
        Some(name) => join_path(&path, name),
        None if path == "." => "body".to_owned(),
        None => path,
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body", format!("{field}: {message}")).field(field)
}

/// The query string percent-decoded as `application/x-www-form-urlencoded` does, checked
/// to be UTF-8 (the decoder itself would replace invalid bytes silently).
fn check_query_utf8(query: &str) -> Result<(), ApiError> {
    let bytes = query.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match (bytes[index], hex(index + 1), hex(index + 2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                index += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).map(|_| ()).map_err(|_| {
        ApiError::bad_request("invalid-utf8", "the query string is not UTF-8 once percent-decoded").field("query")
    })
}

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        check_query_utf8(query)?;
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(ApiQuery).map_err(|error| {
            let path = error.path().to_string();
            let message = error.inner().to_string();
            let field =
                match quoted_name(&message, "missing field `").or_else(|| quoted_name(&message, "duplicate field `")) {
                    Some(name) => name.to_owned(),
                    None if path == "." => "query".to_owned(),
                    None => path,
                };
            ApiError::bad_request("invalid-query", format!("{field}: {message}")).field(field)
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Item {
        content: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Bulk {
        nodes: Vec<Object<Item>>,
    }

    fn refusal<T: DeserializeOwned + std::fmt::Debug>(json: &str) -> (u16, &'static str, Option<String>) {
        let error = parse_json::<T>(json).unwrap_err();
        (error.status.as_u16(), error.code, error.field)
    }

    #[test]
    fn body_errors_name_the_field() {
        let unknown = refusal::<Item>(r#"{"content":"x","userId":"bob"}"#);
        assert_eq!(unknown, (400, "unknown-field", Some("userId".to_owned())));
        let nested = refusal::<Bulk>(r#"{"nodes":[{"content":"x"},{"content":"y","extra":1}]}"#);
        assert_eq!(nested, (400, "unknown-field", Some("nodes[1].extra".to_owned())));
        assert_eq!(refusal::<Item>(r#"{"tags":[]}"#), (422, "invalid-body", Some("content".to_owned())));
        assert_eq!(refusal::<Item>(r#"{"content":5}"#), (422, "invalid-body", Some("content".to_owned())));
        let wrong_item = refusal::<Bulk>(r#"{"nodes":[{"content":"x","tags":[1]}]}"#);
        assert_eq!(wrong_item, (422, "invalid-body", Some("nodes[0].tags[0]".to_owned())));
        assert_eq!(refusal::<Object<Item>>(r#"["x"]"#), (422, "invalid-body", Some("body".to_owned())));
        let array_item = refusal::<Object<Bulk>>(r#"{"nodes":[["x"]]}"#);
        assert_eq!(array_item, (422, "invalid-body", Some("nodes[0]".to_owned())));
        assert!(parse_json::<Object<Item>>(r#"{"content":"x"}"#).is_ok());
        assert_eq!(refusal::<Item>("{not json").1, "malformed-json");
        assert_eq!(refusal::<Item>(r#"{"content":"x"} trailing"#).1, "malformed-json");
        assert_eq!(refusal::<Item>(r#"{"content":"\ud800"}"#).1, "malformed-json");
    }

    #[test]
    fn content_types() {
        let accepts = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            check_content_type(&headers).is_ok()
        };
        assert!(accepts("application/json"));
        assert!(accepts("Application/JSON; charset=UTF-8"));
        assert!(accepts("application/vnd.brain2.v1+json"));
        assert!(!accepts("text/plain"));
        assert!(!accepts("application/json; charset=latin1"));
        assert!(check_content_type(&HeaderMap::new()).is_err());
    }

    #[test]
    fn query_strings_must_decode_to_utf8() {
        assert!(check_query_utf8("keyword=caf%C3%A9&limit=2").is_ok());
        assert!(check_query_utf8("keyword=%FF").is_err());
        assert!(check_query_utf8("keyword=%E2%82").is_err());
        assert!(check_query_utf8("odd=%%zz%").is_ok(), "bad escapes are kept as they are, as the decoder does");
    }
}
