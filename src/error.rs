//! The one table of error codes, and the one place an error becomes an HTTP answer.
//!
//! Every error Switchyard sends is `{"error": {"code", "message", "request_id"}}` (plus
//! `details` for validation failures). Each layer has its own `thiserror` enum and maps into
//! an [`ApiError`]; the JSON body is written only by [`render`], at the edge, where the
//! request id is known. `docs/errors.md` lists the same rows as [`Code::ALL`], and a test
//! checks that the two agree. A released code never changes meaning.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::body::Body;

macro_rules! codes {
    ($($variant:ident => ($name:literal, $status:ident, $meaning:literal),)*) => {
        /// Every error code Switchyard answers with: its name, HTTP status and meaning.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code { $($variant,)* }

        impl Code {
            /// All codes, in the order `docs/errors.md` lists them.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The snake_case string sent in `error.code`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// The HTTP status this code is always sent with.
            pub fn status(self) -> StatusCode {
                match self { $(Code::$variant => StatusCode::$status,)* }
            }

            /// One sentence on what the code means, as documented.
            pub fn meaning(self) -> &'static str {
                match self { $(Code::$variant => $meaning,)* }
            }
        }
    };
}

codes! {
    BadRequest => ("bad_request", BAD_REQUEST, "The request is malformed: a bad query string, header or path."),
    MalformedJson => ("malformed_json", BAD_REQUEST, "The body is not well-formed JSON (or form data)."),
    Unauthorized => ("unauthorized", UNAUTHORIZED, "No valid bearer token was given, or it expired or was revoked."),
    InvalidCredentials => ("invalid_credentials", UNAUTHORIZED, "Unknown user or wrong password (the same answer for both)."),
    CredentialsRequired => ("credentials_required", UNAUTHORIZED, "The project asks for credentials (its auth policy: an API key, Basic, a bearer token) and the request has none; `WWW-Authenticate` says which and where."),
    InvalidToken => ("invalid_token", UNAUTHORIZED, "The credentials given to a project are not valid: an unknown, revoked or expired key, a wrong password, a token that is expired, not yet valid, badly signed or for another issuer or audience; the message says which, never the credential."),
    InsufficientScope => ("insufficient_scope", FORBIDDEN, "Valid credentials that lack a scope, permission or subject the endpoint requires; the message and `WWW-Authenticate` name what is required."),
    CorsRefused => ("cors_refused", FORBIDDEN, "A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) asked for an origin, method or header the project's CORS policy does not allow; the message names which."),
    Forbidden => ("forbidden", FORBIDDEN, "The caller may not touch this resource (not its owner, not an admin)."),
    RegistrationClosed => ("registration_closed", FORBIDDEN, "This instance does not allow self-registration; an admin must create the account."),
    QuotaExceeded => ("quota_exceeded", FORBIDDEN, "A configured quota (projects or API tokens per user, endpoints per project, pattern siblings) would be exceeded; the message names it and its limit."),
    NotFound => ("not_found", NOT_FOUND, "No route or resource at this path."),
    ProjectNotFound => ("project_not_found", NOT_FOUND, "No such project."),
    EndpointNotFound => ("endpoint_not_found", NOT_FOUND, "No endpoint with this id in the project."),
    BackendNotFound => ("backend_not_found", NOT_FOUND, "No backend with this name in the project."),
    TokenNotFound => ("token_not_found", NOT_FOUND, "No API token with this id belongs to the caller."),
    ScriptNotFound => ("script_not_found", NOT_FOUND, "The project has no script."),
    DatasetNotFound => ("dataset_not_found", NOT_FOUND, "No dataset with this name in the project."),
    KeyNotFound => ("key_not_found", NOT_FOUND, "No API key with this id in the project (never made, or revoked)."),
    MethodNotAllowed => ("method_not_allowed", METHOD_NOT_ALLOWED, "The path exists but not for this method; `Allow` lists the methods it takes."),
    NotAcceptable => ("not_acceptable", NOT_ACCEPTABLE, "The `Accept` header allows none of the types this endpoint answers in (a dataset endpoint: `application/json`, `text/csv`, `application/x-ndjson`)."),
    RequestTimeout => ("request_timeout", REQUEST_TIMEOUT, "The request body did not arrive within the body read timeout; the connection is closed."),
    UsernameTaken => ("username_taken", CONFLICT, "A user with this name exists."),
    ProjectExists => ("project_exists", CONFLICT, "The owner already has a project with this name."),
    RouteConflict => ("route_conflict", CONFLICT, "Another endpoint of the project has the same method and path."),
    EndpointExists => ("endpoint_exists", CONFLICT, "An endpoint with this id exists in the project."),
    KeyExists => ("key_exists", CONFLICT, "The project has an API key with this name; names are unique in a project."),
    BackendInUse => ("backend_in_use", CONFLICT, "A proxy endpoint of the project names this backend; change or delete that endpoint first."),
    DatasetMissing => ("dataset_missing", CONFLICT, "A dataset endpoint names a dataset the project does not have (deleted, or not uploaded yet), or a category column the dataset lacks; upload it or change the endpoint."),
    ProjectBroken => ("project_broken", CONFLICT, "The project's stored definition could not be read; only a whole-project `PUT` or a `DELETE` is accepted until it is replaced."),
    Conflict => ("conflict", CONFLICT, "The request conflicts with the current state of the resource."),
    RevisionMismatch => ("revision_mismatch", PRECONDITION_FAILED, "`If-Match` named a revision that is no longer current."),
    PayloadTooLarge => ("payload_too_large", PAYLOAD_TOO_LARGE, "The body is larger than the configured limit."),
    UnsupportedMediaType => ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "The body's content type is not one this route takes."),
    ValidationFailed => ("validation_failed", UNPROCESSABLE_ENTITY, "The body or parameters are well-formed but wrong; `details` names each bad field."),
    InvalidDocument => ("invalid_document", UNPROCESSABLE_ENTITY, "An OpenAPI import was given something that is not an OpenAPI 3.0 or 3.1 document: not JSON or YAML, a Swagger 2.0 document (the message says how to convert it), or another version."),
    RequestInvalid => ("request_invalid", UNPROCESSABLE_ENTITY, "A request to an endpoint with schemas does not match them; `details` gives each failing place (`path.id`, `query.limit`, `header.x-key`, or `body` with a JSON pointer) and what was expected."),
    TooManyRequests => ("too_many_requests", TOO_MANY_REQUESTS, "Too many requests: a project's rate limit, or failed logins from this address or for this user; `Retry-After` says when to try again."),
    Internal => ("internal", INTERNAL_SERVER_ERROR, "An unexpected failure inside Switchyard; the cause is logged with the request id."),
    ScriptError => ("script_error", INTERNAL_SERVER_ERROR, "A script handler threw, ran out of its memory limit, or returned something that cannot be an answer; the message says which, with the line in `app.js`."),
    BadGateway => ("bad_gateway", BAD_GATEWAY, "An upstream failed: it closed or reset the connection, or answered with something that is not valid HTTP."),
    ProjectUnavailable => ("project_unavailable", SERVICE_UNAVAILABLE, "The project's stored definition could not be compiled; fix it through the admin API."),
    UpstreamUnavailable => ("upstream_unavailable", SERVICE_UNAVAILABLE, "A proxy endpoint's backend has no target that accepts connections (none listed or discovered, or every one refused)."),
    StoreUnavailable => ("store_unavailable", SERVICE_UNAVAILABLE, "The store did not answer; the request can be retried."),
    ServerBusy => ("server_busy", SERVICE_UNAVAILABLE, "Too much expensive work (password hashing) is already waiting; `Retry-After` says when to try again."),
    ScriptBusy => ("script_busy", SERVICE_UNAVAILABLE, "The project's script has too many requests waiting; retry shortly."),
    GatewayTimeout => ("gateway_timeout", GATEWAY_TIMEOUT, "An upstream did not answer in time."),
    ScriptTimeout => ("script_timeout", GATEWAY_TIMEOUT, "A script handler ran past its CPU-time limit and was stopped."),
}

/// One bad field of a 422 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Where the problem is, as a dotted path into the body (`endpoints[2].path`).
    pub field: String,
    /// What is wrong, as a sentence.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A field error from serde: `path` is where `serde_path_to_error` stopped (`.` for the
    /// top level). serde reports a missing field at its parent, so its own name is added,
    /// and an error about the whole document names `body`.
    pub fn from_serde(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let parent = if path == "." { "" } else { path };
        // serde names a missing field this way; our own conversions name a field they
        // refuse as `field `name`: …`.
        let missing = message
            .strip_prefix("missing field `")
            .or_else(|| message.strip_prefix("field `"))
            .and_then(|rest| rest.split('`').next());
        let field = match (parent, missing) {
            ("", Some(name)) => name.to_owned(),
            (parent, Some(name)) => format!("{parent}.{name}"),
            ("", None) => "body".to_owned(),
            (parent, None) => parent.to_owned(),
        };
        FieldError { field, message }
    }
}

/// An error on its way to becoming an HTTP answer: a code, a message safe to show the
/// caller, optional field details and headers (such as `Allow`).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub details: Vec<FieldError>,
    /// A header the answer must carry, such as `Allow` on a 405 or `WWW-Authenticate`.
    pub header: Option<Box<(HeaderName, HeaderValue)>>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: Vec::new(),
            header: None,
        }
    }

    /// A 422 naming each bad field.
    pub fn validation(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        ApiError {
            code: Code::ValidationFailed,
            message,
            details,
            header: None,
        }
    }

    /// A 500 whose cause is logged here, once, and never shown to the caller.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(Code::Internal, "internal error")
    }

    pub fn not_found() -> Self {
        ApiError::new(Code::NotFound, "no route matches this path")
    }

    pub fn method_not_allowed(allow: &str) -> Self {
        let error = ApiError::new(
            Code::MethodNotAllowed,
            format!("this path takes only {allow}"),
        );
        match HeaderValue::from_str(allow) {
            Ok(value) => error.with_header(header::ALLOW, value),
            Err(_) => error,
        }
    }

    /// The same error, answered with one more header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.header = Some(Box::new((name, value)));
        self
    }

    /// A 413 for a body over `limit` bytes.
    pub fn payload_too_large(limit: impl std::fmt::Display) -> Self {
        ApiError::new(
            Code::PayloadTooLarge,
            format!("the body is larger than the limit of {limit} bytes"),
        )
    }

    /// A 401 that tells the client to send a bearer token.
    pub fn unauthorized(code: Code, message: impl Into<String>) -> Self {
        ApiError::new(code, message)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// A 408 for a body that did not arrive in time. The answer closes the connection: the
    /// rest of the body may still be on its way, and reading it is what timed out.
    pub fn body_timeout(timeout: std::time::Duration) -> Self {
        ApiError::new(
            Code::RequestTimeout,
            format!(
                "the request body did not arrive within {} ms",
                timeout.as_millis()
            ),
        )
        .with_header(header::CONNECTION, HeaderValue::from_static("close"))
    }

    /// An answer that tells the client to try again after `wait` (429, 503): `Retry-After`
    /// in whole seconds, rounded up, at least 1.
    pub fn retry_after(code: Code, message: impl Into<String>, wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::new(code, message)
            .with_header(header::RETRY_AFTER, HeaderValue::from(secs.max(1)))
    }

    /// The error to send for a bare status from a lower layer that wrote no body.
    pub fn from_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => Code::BadRequest,
            StatusCode::UNAUTHORIZED => Code::Unauthorized,
            StatusCode::FORBIDDEN => Code::Forbidden,
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
            StatusCode::NOT_ACCEPTABLE => Code::NotAcceptable,
            StatusCode::REQUEST_TIMEOUT => Code::RequestTimeout,
            StatusCode::CONFLICT => Code::Conflict,
            StatusCode::PRECONDITION_FAILED => Code::RevisionMismatch,
            StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => Code::ValidationFailed,
            StatusCode::TOO_MANY_REQUESTS => Code::TooManyRequests,
            StatusCode::BAD_GATEWAY => Code::BadGateway,
            StatusCode::SERVICE_UNAVAILABLE => Code::StoreUnavailable,
            StatusCode::GATEWAY_TIMEOUT => Code::GatewayTimeout,
            _ => Code::Internal,
        };
        ApiError::new(
            code,
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase(),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'static str,
    message: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    details: &'a [FieldError],
}

/// Writes the documented JSON error answer. This is the only function that does.
pub fn render(error: &ApiError, request_id: &str) -> http::Response<Body> {
    let envelope = Envelope {
        error: Inner {
            code: error.code.as_str(),
            message: &error.message,
            request_id,
            details: &error.details,
        },
    };
    // Serialising plain strings into a Vec cannot fail; the fallback keeps that promise
    // without a panic path.
    let bytes = serde_json::to_vec(&envelope).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = http::Response::new(Body::full(Bytes::from(bytes)));
    *response.status_mut() = error.code.status();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(extra) = &error.header {
        let (name, value) = &**extra;
        headers.insert(name.clone(), value.clone());
    }
    response
}

/// Platform handlers return `Err(ApiError)`; axum turns it into a response that carries the
/// error in its extensions, and the edge (`server`) renders it with the request id.
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let mut response = axum::response::Response::new(axum::body::Body::empty());
        *response.status_mut() = self.code.status();
        response.extensions_mut().insert(Pending(self));
        response
    }
}

/// An [`ApiError`] not yet rendered, riding in a response's extensions to the edge.
#[derive(Debug, Clone)]
pub struct Pending(pub ApiError);

/// The request id as text for an error body (`unknown` if it is not valid text, which the
/// edge never lets happen).
pub fn id_str(id: &http::HeaderValue) -> &str {
    id.to_str().unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "duplicate code {name}");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name} is not snake_case"
            );
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn a_bare_status_keeps_its_status() {
        for code in Code::ALL {
            let status = code.status();
            assert_eq!(
                ApiError::from_status(status).code.status(),
                status,
                "a bare {status} must not turn into another status"
            );
        }
    }

    #[test]
    fn serde_errors_name_the_field_even_when_it_is_missing() {
        let at = |path: &str, message: &str| FieldError::from_serde(path, message).field;
        assert_eq!(at(".", "missing field `name`"), "name");
        assert_eq!(
            at("endpoints[0]", "missing field `path`"),
            "endpoints[0].path"
        );
        assert_eq!(at("response.status", "invalid type"), "response.status");
        assert_eq!(at(".", "invalid type: string, expected struct"), "body");
    }

    #[test]
    fn render_writes_the_documented_envelope() {
        let error = ApiError::validation(vec![FieldError::new("path", "must start with /")]);
        let response = render(&error, "req-1");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let Body::Full(Some(bytes)) = response.into_body() else {
            panic!("error bodies are full");
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["error"]["code"], "validation_failed");
        assert_eq!(value["error"]["request_id"], "req-1");
        assert_eq!(value["error"]["details"][0]["field"], "path");
    }
}
