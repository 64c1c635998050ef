//! Extractors that turn bad input into our own error answers.
//!
//! axum's stock `Json`, `Form`, `Path` and `Query` reject in their own plain-text format;
//! these wrappers answer in the documented JSON format instead: malformed bodies are 400,
//! well-formed but wrong ones are 422 naming the field, oversized ones 413, and bodies of a
//! type the route does not take 415. All rejections live in this file.

use axum::extract::{FromRequest, FromRequestParts, Request};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use super::AppState;
use crate::accounts::Principal;
use crate::error::{ApiError, Code, FieldError};

/// What kind of body a request says it carries.
enum BodyKind {
    Json,
    Form,
    Other(String),
}

fn body_kind(headers: &HeaderMap) -> BodyKind {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        // No content type: assume JSON, as curl users and scripts often omit it.
        return BodyKind::Json;
    };
    let value = value.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence == "application/json" || essence.ends_with("+json") {
        BodyKind::Json
    } else if essence == "application/x-www-form-urlencoded" {
        BodyKind::Form
    } else {
        BodyKind::Other(essence.to_owned())
    }
}

/// Reads the whole body, refusing (413) more than the admin body limit, and giving up (408,
/// closing the connection) when it has not all arrived within the body read timeout.
async fn read_body(request: Request, state: &AppState) -> Result<Bytes, ApiError> {
    read_body_up_to(request, state, state.config.admin_body_limit).await
}

/// [`read_body`] with another limit.
async fn read_body_up_to(
    request: Request,
    state: &AppState,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let timeout = state.config.body_read_timeout;
    let too_large = || ApiError::payload_too_large(limit);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    // The deadline covers the whole read, not each chunk: a client trickling one byte at a
    // time must not hold the request (and its connection) open for ever.
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(request.into_body(), limit))
        .await
        .map_err(|_| ApiError::body_timeout(timeout))?;
    read.map_err(|error| {
        let inner = error.into_inner();
        let limited =
            std::iter::successors(Some(&*inner as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .any(|e| e.is::<http_body_util::LengthLimitError>());
        if limited {
            too_large()
        } else {
            ApiError::new(
                Code::BadRequest,
                format!("could not read the body: {inner}"),
            )
        }
    })
}

/// Parses JSON, telling apart malformed input (400) from well-formed input of the wrong
/// shape (422, naming the field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                // serde stops at the first wrong field, maybe before a syntax error further
                // on; a body that is not JSON at all is 400 whatever its shape.
                if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                    return malformed(&syntax);
                }
                ApiError::validation(vec![FieldError::from_serde(
                    &path,
                    strip_position(&inner.to_string()),
                )])
            }
            _ => malformed(&inner),
        }
    })?;
    deserializer.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(error: &serde_json::Error) -> ApiError {
    ApiError::new(
        Code::MalformedJson,
        format!("the body is not valid JSON: {error}"),
    )
}

/// Deserialises an already parsed JSON value, naming the bad field on failure (422).
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        ApiError::validation(vec![FieldError::from_serde(
            &path,
            strip_position(&error.into_inner().to_string()),
        )])
    })
}

/// serde's messages end in "at line 1 column 42", which means nothing for a field error.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(bytes));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        ApiError::validation(vec![FieldError::from_serde(
            &path,
            error.into_inner().to_string(),
        )])
    })
}

/// A JSON body, parsed into `T` with our error answers.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(request, state).await?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON body, read (415, 413, 408 as for [`Json`]) but not parsed yet: for routes that must
/// check who asks before they look at what was sent, and that parse large bodies straight
/// into their types.
pub struct JsonBytes(pub Bytes);

impl FromRequest<AppState> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match body_kind(request.headers()) {
            BodyKind::Json => {}
            BodyKind::Form => {
                return Err(unsupported(
                    "application/x-www-form-urlencoded",
                    "application/json",
                ));
            }
            BodyKind::Other(other) => return Err(unsupported(&other, "application/json")),
        }
        read_body(request, state).await.map(JsonBytes)
    }
}

/// A script's source (`PUT …/script`): the body itself, as JavaScript (or plain text, or
/// with no content type), or the `file` field of a `multipart/form-data` body. 415 for other
/// types, 400 for text that is not UTF-8 or a form without a `file`, 413 and 408 as for
/// [`Json`].
pub struct ScriptSource(pub String);

/// The content types a script may be sent as, besides a form.
const SCRIPT_TYPES: [&str; 5] = [
    "application/javascript",
    "text/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "text/plain",
];

impl FromRequest<AppState> for ScriptSource {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap_or("").to_owned());
        let essence = content_type
            .as_deref()
            .and_then(|value| value.split(';').next())
            .map(|value| value.trim().to_ascii_lowercase());
        let boundary = match essence.as_deref() {
            None => None,
            Some(kind) if SCRIPT_TYPES.contains(&kind) => None,
            Some("multipart/form-data") => {
                let value = content_type.as_deref().unwrap_or("");
                Some(multer::parse_boundary(value).map_err(|error| {
                    ApiError::new(Code::BadRequest, format!("a bad multipart body: {error}"))
                })?)
            }
            Some(other) => return Err(unsupported(other, "application/javascript")),
        };
        let bytes = read_body(request, state).await?;
        let bytes = match boundary {
            None => bytes,
            Some(boundary) => file_field(bytes, boundary).await?,
        };
        String::from_utf8(bytes.to_vec())
            .map(ScriptSource)
            .map_err(|_| ApiError::new(Code::BadRequest, "the script is not valid UTF-8"))
    }
}

/// The `file` field of a multipart body already read.
async fn file_field(body: Bytes, boundary: String) -> Result<Bytes, ApiError> {
    let bad = |error: multer::Error| {
        ApiError::new(Code::BadRequest, format!("a bad multipart body: {error}"))
    };
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    while let Some(field) = form.next_field().await.map_err(bad)? {
        if field.name() == Some("file") {
            return field.bytes().await.map_err(bad);
        }
    }
    Err(ApiError::new(
        Code::BadRequest,
        "the multipart body has no `file` field with the script",
    ))
}

/// Path parameters; a segment that is not valid (bad percent-encoding) is 400.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|rejection| ApiError::new(Code::BadRequest, rejection.body_text()))
    }
}

/// A body that may be JSON or an HTML/OAuth2 form, as `/auth/register` and `/auth/login`
/// take.
pub struct JsonOrForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonOrForm<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let kind = body_kind(request.headers());
        if let BodyKind::Other(other) = &kind {
            return Err(unsupported(
                other,
                "application/json or application/x-www-form-urlencoded",
            ));
        }
        let bytes = read_body(request, state).await?;
        match kind {
            BodyKind::Form => parse_form(&bytes).map(JsonOrForm),
            _ => parse_json(&bytes).map(JsonOrForm),
        }
    }
}

fn unsupported(given: &str, wanted: &str) -> ApiError {
    ApiError::new(
        Code::UnsupportedMediaType,
        format!("this route takes {wanted}, not `{given}`"),
    )
}

/// Query parameters, parsed into `T`; a bad one is 422 naming it.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Query)
            .map_err(|error| {
                let path = error.path().to_string();
                ApiError::validation(vec![FieldError::new(
                    format!("query.{}", path.trim_start_matches('.')),
                    error.into_inner().to_string(),
                )])
            })
    }
}

/// The caller, from `Authorization: Bearer …`; 401 when absent, unknown or expired.
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match MaybePrincipal::from_request_parts(parts, state).await?.0 {
            Some(principal) => Ok(principal),
            None => Err(ApiError::unauthorized(
                Code::Unauthorized,
                "send a bearer token from /auth/login or /auth/tokens",
            )),
        }
    }
}

/// The caller if a token was sent; a token that was sent but is not valid is still 401.
pub struct MaybePrincipal(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybePrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(secret) = bearer_secret(&parts.headers)? else {
            return Ok(MaybePrincipal(None));
        };
        match state.accounts.authenticate(secret).await? {
            Some(principal) => Ok(MaybePrincipal(Some(principal))),
            None => Err(ApiError::unauthorized(
                Code::Unauthorized,
                "the bearer token is unknown, expired or revoked",
            )),
        }
    }
}

/// The secret of an `Authorization: Bearer` header, if there is one.
pub fn bearer_secret(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        ApiError::unauthorized(
            Code::Unauthorized,
            "the Authorization header is not readable",
        )
    })?;
    match value.split_once(' ') {
        Some((scheme, secret))
            if scheme.eq_ignore_ascii_case("bearer") && !secret.trim().is_empty() =>
        {
            Ok(Some(secret.trim()))
        }
        _ => Err(ApiError::unauthorized(
            Code::Unauthorized,
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

/// `If-Match` as a revision: `"3"`, `W/"3"`, `3` or `*` (any).
#[derive(utoipa::IntoParams)]
#[into_params(names("If-Match"), parameter_in = Header)]
pub struct IfMatch(
    /// Apply the change only if the project is still at this revision (the `ETag` a read or
    /// change answered: `"3"`; `W/"3"`, `3` and `*` are taken too); else `412
    /// revision_mismatch`.
    #[param(value_type = String, required = false, example = "\"3\"")]
    pub Option<i64>,
);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let bad = || {
            ApiError::new(
                Code::BadRequest,
                "If-Match must be a revision as the ETag gives it, e.g. \"3\"",
            )
        };
        let text = value.to_str().map_err(|_| bad())?.trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let text = text.strip_prefix("W/").unwrap_or(text);
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        text.parse::<i64>()
            .map(|r| IfMatch(Some(r)))
            .map_err(|_| bad())
    }
}

/// The largest OpenAPI document an import reads (GitHub's is under 6 MiB).
pub const DOCUMENT_LIMIT: usize = 64 * 1024 * 1024;

/// An OpenAPI document as a body: JSON or YAML (`application/json`, `application/yaml`,
/// `application/x-yaml`, `text/yaml`, `text/plain`, or no content type), up to
/// [`DOCUMENT_LIMIT`]; anything else is 415.
pub struct DocumentBody(pub Bytes);

impl FromRequest<AppState> for DocumentBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let essence = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let taken = match essence.as_deref() {
            None | Some("") => true,
            Some(essence) => {
                essence == "application/json"
                    || essence.ends_with("+json")
                    || essence.ends_with("/yaml")
                    || essence.ends_with("/x-yaml")
                    || essence.ends_with("+yaml")
                    || essence == "text/plain"
            }
        };
        if !taken {
            return Err(ApiError::new(
                Code::UnsupportedMediaType,
                format!(
                    "an import takes an OpenAPI document as JSON or YAML (`application/json`, `application/yaml`), not `{}`",
                    essence.unwrap_or_default()
                ),
            ));
        }
        read_body_up_to(request, state, DOCUMENT_LIMIT)
            .await
            .map(DocumentBody)
    }
}

/// `?dry_run=true`: validate and report, apply nothing.
#[derive(serde::Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DryRun {
    /// Validate the change and answer what it would do (`200` with a `DryRun` body),
    /// changing nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// The path of a project: `/admin/projects/{owner}/{name}…`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    /// The project's owner (a user name).
    pub owner: String,
    /// The project's name.
    pub name: String,
}

/// The path of one endpoint of a project.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EndpointPath {
    /// The project's owner (a user name).
    pub owner: String,
    /// The project's name.
    pub name: String,
    /// The endpoint's id (chosen by the client, or generated: `ep_…`).
    pub id: String,
}

/// The path of one backend of a project.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BackendPath {
    /// The project's owner (a user name).
    pub owner: String,
    /// The project's name.
    pub name: String,
    /// The backend's name.
    pub backend: String,
}

/// The path of one dataset of a project.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DatasetPath {
    /// The project's owner (a user name).
    pub owner: String,
    /// The project's name.
    pub name: String,
    /// The dataset's name.
    pub dataset: String,
}

/// The path of one API key of a project.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// The project's owner (a user name).
    pub owner: String,
    /// The project's name.
    pub name: String,
    /// The key's id, as listed.
    pub id: String,
}

/// The path of one of the caller's API tokens.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// The token's id, as listed.
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn malformed_json_is_400_and_wrong_shapes_are_422_with_the_field() {
        let error = parse_json::<Sample>(b"{\"name\": ").unwrap_err();
        assert_eq!(error.code, Code::MalformedJson);
        let error = parse_json::<Sample>(b"{\"name\": \"a\"} trailing").unwrap_err();
        assert_eq!(error.code, Code::MalformedJson);
        let error = parse_json::<Sample>(br#"{"name": "a", "inner": {"count": "x"}}"#).unwrap_err();
        assert_eq!(error.code, Code::ValidationFailed);
        assert_eq!(error.details[0].field, "inner.count");
        assert!(!error.details[0].message.contains("line"));
        let error = parse_json::<Sample>(br#"{"nmae": "a"}"#).unwrap_err();
        assert_eq!(error.code, Code::ValidationFailed);
        assert!(error.details[0].message.contains("nmae"));
        let error = parse_json::<Sample>(b"{}").unwrap_err();
        assert!(error.details[0].message.contains("name"));
    }
}
