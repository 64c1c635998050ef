//! CORS per project, with the semantics of the Fetch standard: which web pages (origins) may
//! call a project's endpoints from a browser, with which methods and headers.
//!
//! A [`CorsPolicy`] is what users write in a project's definition (`"cors": {...}`);
//! [`CorsPolicy::validate`] names each bad field. [`CompiledCors::new`] turns a policy into
//! the form the request path uses: header values built once, the allowed origins in a hash
//! set. Then, synchronously on the request head and without a lock:
//!
//! - [`CompiledCors::preflight`] answers a CORS preflight (`OPTIONS` with `Origin` and
//!   `Access-Control-Request-Method`): [`Preflight::Allowed`] with the headers of the `204`
//!   answer, [`Preflight::Refused`] with the reason (a `403 cors_refused` once made an
//!   [`ApiError`]), or [`Preflight::NotPreflight`] for any other request, which goes to the
//!   project's endpoints as usual.
//! - [`CompiledCors::apply`] adds the CORS headers to the answer of an actual request from
//!   an allowed origin.
//!
//! Rules:
//! - **Origins** are compared byte for byte with the request's `Origin`, as browsers send it
//!   (lowercase scheme and host, no default port); the policy's origins are lowercased once.
//!   `"*"` allows every origin and is answered `Access-Control-Allow-Origin: *`; it cannot go
//!   with `allow_credentials` (browsers refuse that answer). `null` cannot be allowed: any
//!   sandboxed page can send it.
//! - **Methods** are compared case-sensitively, as Fetch does (`fetch` uppercases only the
//!   standard methods, so `patch` stays `patch`). `"*"` allows any method; the answer then
//!   names the requested one, which browsers accept with and without credentials.
//! - **Request headers** (`Access-Control-Request-Headers`, a comma list) are compared
//!   case-insensitively; every one must be allowed. `"*"` allows any header; the answer then
//!   repeats the requested list, since a literal `*` neither covers `Authorization` nor
//!   works with credentials.
//! - **Vary**: a preflight answer varies by `Origin`, `Access-Control-Request-Method` and
//!   `Access-Control-Request-Headers`. With an explicit origin list, every actual answer gets
//!   `Vary: Origin` (appended to the handler's own `Vary`), also when the request had no
//!   `Origin` or an origin that is not allowed, so that a shared cache does not hand one
//!   origin's answer to another (the Fetch standard's advice). With `"*"` the answer does not
//!   depend on the origin and nothing is added.

use foldhash::HashSet;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code, FieldError};

/// The most entries each list of a policy may have.
pub const MAX_ENTRIES: usize = 64;
/// The longest `max_age_secs`: one day.
pub const MAX_AGE_SECS: u32 = 86_400;
/// The longest origin, method or header name a policy may list.
const MAX_ENTRY_LEN: usize = 256;
/// How much of a refused value a refusal's message shows.
const SHOWN_LEN: usize = 120;

/// A project's CORS rules, as written in its definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct CorsPolicy {
    /// Exact origins (`https://app.example.com`, `http://localhost:5173`), or `"*"` alone.
    pub allow_origins: Vec<String>,
    /// The methods a preflight may ask for; `"*"` for any.
    #[serde(default = "default_methods")]
    #[schema(default = default_methods)]
    pub allow_methods: Vec<String>,
    /// The request headers a preflight may ask for; `"*"` for any.
    #[serde(default = "default_headers")]
    #[schema(default = default_headers)]
    pub allow_headers: Vec<String>,
    /// The response headers a page may read beyond the safelisted ones; `"*"` for all
    /// (without credentials only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// Whether a page may send cookies or HTTP authentication and read the answer.
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long a browser may keep a preflight's answer; browsers use their own default
    /// (5 seconds) without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_secs: Option<u32>,
}

fn default_methods() -> Vec<String> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        .map(String::from)
        .to_vec()
}

fn default_headers() -> Vec<String> {
    ["content-type", "authorization", "x-api-key"]
        .map(String::from)
        .to_vec()
}

impl CorsPolicy {
    /// Every problem of this policy, each naming its field under `prefix` (such as
    /// `"cors."`).
    pub fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        let field = |name: &str| format!("{prefix}{name}");
        let origins = &self.allow_origins;
        if origins.is_empty() || origins.len() > MAX_ENTRIES {
            errors.push(FieldError::new(
                field("allow_origins"),
                format!("list 1 to {MAX_ENTRIES} origins (`scheme://host[:port]`), or `*` alone"),
            ));
        }
        for (index, origin) in origins.iter().enumerate().take(MAX_ENTRIES) {
            let at = || field(&format!("allow_origins[{index}]"));
            if origin == "*" {
                if self.allow_credentials {
                    errors.push(FieldError::new(
                        at(),
                        "`*` cannot go with `allow_credentials: true` (browsers refuse that \
                         answer); list the origins",
                    ));
                } else if origins.len() > 1 {
                    errors.push(FieldError::new(
                        at(),
                        "`*` allows every origin; list it alone",
                    ));
                }
            } else if let Err(message) = check_origin(origin) {
                errors.push(FieldError::new(at(), message));
            }
        }

        if self.allow_methods.is_empty() || self.allow_methods.len() > MAX_ENTRIES {
            errors.push(FieldError::new(
                field("allow_methods"),
                format!("list 1 to {MAX_ENTRIES} methods, or `*`"),
            ));
        }
        for (index, method) in self.allow_methods.iter().enumerate().take(MAX_ENTRIES) {
            if method.len() > MAX_ENTRY_LEN || Method::from_bytes(method.as_bytes()).is_err() {
                errors.push(FieldError::new(
                    field(&format!("allow_methods[{index}]")),
                    format!("`{}` is not a method name", shown(method.as_bytes())),
                ));
            }
        }

        for (name, list) in [
            ("allow_headers", &self.allow_headers),
            ("expose_headers", &self.expose_headers),
        ] {
            if list.len() > MAX_ENTRIES {
                errors.push(FieldError::new(
                    field(name),
                    format!("at most {MAX_ENTRIES} header names"),
                ));
            }
            for (index, header) in list.iter().enumerate().take(MAX_ENTRIES) {
                let at = || field(&format!("{name}[{index}]"));
                if header == "*" {
                    if name == "expose_headers" && self.allow_credentials {
                        errors.push(FieldError::new(
                            at(),
                            "`*` exposes nothing to a request with credentials (browsers read \
                             it as a header named `*`); list the headers",
                        ));
                    }
                } else if header.len() > MAX_ENTRY_LEN
                    || HeaderName::from_bytes(header.as_bytes()).is_err()
                {
                    errors.push(FieldError::new(
                        at(),
                        format!("`{}` is not a header name", shown(header.as_bytes())),
                    ));
                }
            }
        }

        if self.max_age_secs.is_some_and(|secs| secs > MAX_AGE_SECS) {
            errors.push(FieldError::new(
                field("max_age_secs"),
                format!("must be at most {MAX_AGE_SECS} (one day)"),
            ));
        }
    }
}

/// Checks that `origin` is `scheme://host[:port]` as a browser would send it, or says why
/// not.
fn check_origin(origin: &str) -> Result<(), String> {
    let show = shown(origin.as_bytes());
    if origin.eq_ignore_ascii_case("null") {
        return Err(
            "the `null` origin cannot be allowed: any sandboxed page or local file sends it".into(),
        );
    }
    if origin.len() > MAX_ENTRY_LEN {
        return Err(format!("an origin is at most {MAX_ENTRY_LEN} characters"));
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(format!(
            "`{show}` is not an origin: write `scheme://host[:port]`, such as \
             `https://app.example.com`"
        ));
    };
    let mut scheme_chars = scheme.chars();
    let scheme_ok = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(format!(
            "`{show}` does not start with a scheme such as `https://`"
        ));
    }
    if rest.contains(['/', '?', '#']) {
        return Err(format!(
            "`{show}` has a path: an origin is only `scheme://host[:port]`, without a `/` at the end"
        ));
    }
    if rest.contains('@') {
        return Err(format!("`{show}` has a user name: an origin cannot"));
    }
    if rest.contains('*') {
        return Err("an origin cannot hold a wildcard: list each origin, or give `*` alone".into());
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let Some((address, after)) = inner.split_once(']') else {
            return Err(format!("`{show}` has an unclosed `[`"));
        };
        if address.is_empty()
            || !address
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!(
                "`{show}` does not hold an IPv6 address between `[` and `]`"
            ));
        }
        match after {
            "" => (address, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (address, Some(port)),
                None => return Err(format!("`{show}` has text after the `]`")),
            },
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(format!("`{show}` has no host"));
    }
    if !host.is_ascii() {
        return Err(format!(
            "write the host of `{show}` in its ASCII form (`xn--…`), as browsers send it"
        ));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'))
    {
        return Err(format!("`{show}` has a character a host name cannot have"));
    }
    if let Some(port) = port {
        let number = match port.parse::<u16>() {
            Ok(number) if !port.starts_with('0') && port.bytes().all(|b| b.is_ascii_digit()) => {
                number
            }
            _ => {
                return Err(format!(
                    "`{show}` has a port that is not a number from 1 to 65535 (no leading zero)"
                ));
            }
        };
        let default = match scheme.to_ascii_lowercase().as_str() {
            "https" | "wss" => Some(443),
            "http" | "ws" => Some(80),
            _ => None,
        };
        if default == Some(number) {
            return Err(format!(
                "leave the default port out of `{show}`: browsers never send it"
            ));
        }
    }
    Ok(())
}

/// The outcome of [`CompiledCors::preflight`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// Not a CORS preflight (another method, or no `Origin` or
    /// `Access-Control-Request-Method`): the request goes to the project's endpoints.
    NotPreflight,
    /// An allowed preflight: answer `204 No Content` with these headers and an empty body.
    Allowed(Vec<(HeaderName, HeaderValue)>),
    /// A refused preflight: answer the refusal as an error (`ApiError::from`, a 403).
    Refused(Refusal),
}

/// Why a preflight was refused; each names the value it refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("CORS: the origin `{0}` is not allowed")]
    Origin(String),
    #[error("CORS: the method `{0}` is not allowed")]
    Method(String),
    #[error("CORS: the request header `{0}` is not allowed")]
    Header(String),
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        ApiError::new(Code::CorsRefused, refusal.to_string())
    }
}

/// A [`CorsPolicy`] made ready for the request path.
#[derive(Debug, Clone)]
pub struct CompiledCors {
    /// `None` for `*`, else the lowercased origins.
    origins: Option<HashSet<Box<[u8]>>>,
    /// `None` for `*`.
    methods: Option<Vec<Box<str>>>,
    /// `Access-Control-Allow-Methods` for a list of methods.
    methods_value: Option<HeaderValue>,
    /// `None` for `*`, else the lowercased names.
    headers: Option<Vec<Box<str>>>,
    /// `Access-Control-Allow-Headers` for a non-empty list of headers.
    headers_value: Option<HeaderValue>,
    expose_value: Option<HeaderValue>,
    max_age_value: Option<HeaderValue>,
    credentials: bool,
}

const ANY: HeaderValue = HeaderValue::from_static("*");
const TRUE: HeaderValue = HeaderValue::from_static("true");
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");
const VARY_PREFLIGHT: HeaderValue = HeaderValue::from_static(
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
);

impl CompiledCors {
    /// Compiles a policy. Meant for a validated policy; with any other it still never
    /// panics: entries that are not valid are left out, and credentials are never allowed
    /// together with `*` origins.
    pub fn new(policy: &CorsPolicy) -> Self {
        let any_origin = policy.allow_origins.iter().any(|origin| origin == "*");
        let origins = (!any_origin).then(|| {
            policy
                .allow_origins
                .iter()
                .map(|origin| origin.to_ascii_lowercase().into_bytes().into_boxed_slice())
                .collect()
        });
        let credentials = policy.allow_credentials && !any_origin;

        let (methods, methods_value) = if policy.allow_methods.iter().any(|m| m == "*") {
            (None, None)
        } else {
            let names: Vec<Box<str>> = policy
                .allow_methods
                .iter()
                .filter(|m| Method::from_bytes(m.as_bytes()).is_ok())
                .map(|m| Box::from(m.as_str()))
                .collect();
            let value = joined(&names);
            (Some(names), value)
        };

        let (headers, headers_value) = if policy.allow_headers.iter().any(|h| h == "*") {
            (None, None)
        } else {
            let names: Vec<Box<str>> = policy
                .allow_headers
                .iter()
                .filter(|h| HeaderName::from_bytes(h.as_bytes()).is_ok())
                .map(|h| Box::from(h.to_ascii_lowercase().as_str()))
                .collect();
            let value = joined(&names);
            (Some(names), value)
        };

        let expose: Vec<Box<str>> = policy
            .expose_headers
            .iter()
            .filter(|h| (*h == "*" && !credentials) || HeaderName::from_bytes(h.as_bytes()).is_ok())
            .map(|h| Box::from(h.to_ascii_lowercase().as_str()))
            .collect();

        CompiledCors {
            origins,
            methods,
            methods_value,
            headers,
            headers_value,
            expose_value: joined(&expose),
            max_age_value: policy
                .max_age_secs
                .map(|secs| HeaderValue::from(secs.min(MAX_AGE_SECS))),
            credentials,
        }
    }

    /// Answers a CORS preflight, or says the request is not one.
    pub fn preflight(&self, head: &http::request::Parts) -> Preflight {
        if head.method != Method::OPTIONS {
            return Preflight::NotPreflight;
        }
        let headers = &head.headers;
        let (Some(origin), Some(method)) = (
            headers.get(header::ORIGIN),
            headers.get(header::ACCESS_CONTROL_REQUEST_METHOD),
        ) else {
            return Preflight::NotPreflight;
        };
        let Some(allow_origin) = self.allow_origin(origin) else {
            return Preflight::Refused(Refusal::Origin(shown(origin.as_bytes())));
        };

        let method_ok = Method::from_bytes(method.as_bytes()).is_ok()
            && self.methods.as_ref().is_none_or(|names| {
                names
                    .iter()
                    .any(|name| name.as_bytes() == method.as_bytes())
            });
        if !method_ok {
            return Preflight::Refused(Refusal::Method(shown(method.as_bytes())));
        }
        let allow_methods = match &self.methods_value {
            Some(value) if self.methods.is_some() => value.clone(),
            _ => method.clone(),
        };

        let mut requested = 0;
        for value in headers.get_all(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            for name in value.as_bytes().split(|&b| b == b',') {
                let name = name.trim_ascii();
                if name.is_empty() {
                    continue;
                }
                let allowed = HeaderName::from_bytes(name).is_ok()
                    && self.headers.as_ref().is_none_or(|names| {
                        names
                            .iter()
                            .any(|known| known.as_bytes().eq_ignore_ascii_case(name))
                    });
                if !allowed {
                    return Preflight::Refused(Refusal::Header(shown(name)));
                }
                requested += 1;
            }
        }
        let allow_headers = match &self.headers {
            Some(_) => self.headers_value.clone(),
            None if requested == 0 => None,
            None => reflected_headers(headers),
        };

        let mut answer = Vec::with_capacity(6);
        answer.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin));
        answer.push((header::ACCESS_CONTROL_ALLOW_METHODS, allow_methods));
        if let Some(value) = allow_headers {
            answer.push((header::ACCESS_CONTROL_ALLOW_HEADERS, value));
        }
        if let Some(value) = &self.max_age_value {
            answer.push((header::ACCESS_CONTROL_MAX_AGE, value.clone()));
        }
        if self.credentials {
            answer.push((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE));
        }
        answer.push((header::VARY, VARY_PREFLIGHT));
        Preflight::Allowed(answer)
    }

    /// Adds the CORS headers to the answer of an actual (not preflight) request: with an
    /// allowed `Origin`, `Access-Control-Allow-Origin`, `Access-Control-Allow-Credentials`
    /// and `Access-Control-Expose-Headers` (replacing any the handler set); with an
    /// explicit origin list, `Vary: Origin` in every case (see the module's rules).
    pub fn apply(&self, request_headers: &HeaderMap, response_headers: &mut HeaderMap) {
        let allowed = request_headers
            .get(header::ORIGIN)
            .and_then(|origin| self.allow_origin(origin));
        if self.origins.is_some() {
            add_vary_origin(response_headers);
        }
        let Some(allow_origin) = allowed else {
            return;
        };
        response_headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        if self.credentials {
            response_headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        }
        if let Some(value) = &self.expose_value {
            response_headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value.clone());
        }
    }

    /// The `Access-Control-Allow-Origin` value for this request origin, if it is allowed.
    fn allow_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        match &self.origins {
            None => Some(ANY),
            Some(set) => set.contains(origin.as_bytes()).then(|| origin.clone()),
        }
    }
}

/// The names joined by `, ` as one header value, or `None` for no names.
fn joined(names: &[Box<str>]) -> Option<HeaderValue> {
    if names.is_empty() {
        return None;
    }
    HeaderValue::from_str(&names.join(", ")).ok()
}

/// The request's `Access-Control-Request-Headers` as the answer's allowed headers: the value
/// itself when it came in one line, else the lines joined.
fn reflected_headers(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut lines = headers
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter();
    let first = lines.next()?;
    let Some(second) = lines.next() else {
        return Some(first.clone());
    };
    let mut all = first.as_bytes().to_vec();
    for line in [second].into_iter().chain(lines) {
        all.extend_from_slice(b", ");
        all.extend_from_slice(line.as_bytes());
    }
    HeaderValue::from_bytes(&all).ok()
}

/// Appends `Vary: Origin` unless a `Vary` already names `Origin` or is `*`.
fn add_vary_origin(headers: &mut HeaderMap) {
    let present = headers.get_all(header::VARY).iter().any(|value| {
        value.as_bytes().split(|&b| b == b',').any(|token| {
            let token = token.trim_ascii();
            token == b"*" || token.eq_ignore_ascii_case(b"origin")
        })
    });
    if !present {
        headers.append(header::VARY, VARY_ORIGIN);
    }
}

/// A request's value as text for a message: lossy UTF-8, cut to [`SHOWN_LEN`] characters.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(SHOWN_LEN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: serde_json::Value) -> CorsPolicy {
        serde_json::from_value(json).unwrap()
    }

    fn compiled(json: serde_json::Value) -> CompiledCors {
        CompiledCors::new(&policy(json))
    }

    fn app() -> CompiledCors {
        compiled(serde_json::json!({
            "allow_origins": ["https://app.example.com", "http://localhost:5173"],
            "max_age_secs": 600
        }))
    }

    fn head(method: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::builder().method(method).uri("/o/p/items");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn allowed(outcome: Preflight) -> HeaderMap {
        let Preflight::Allowed(list) = outcome else {
            panic!("expected an allowed preflight, got {outcome:?}");
        };
        let mut map = HeaderMap::new();
        for (name, value) in list {
            assert!(!map.contains_key(&name), "{name} twice");
            map.insert(name, value);
        }
        map
    }

    fn get<'a>(map: &'a HeaderMap, name: &str) -> Option<&'a str> {
        map.get(name).map(|value| value.to_str().unwrap())
    }

    #[test]
    fn an_allowed_preflight_gets_every_header() {
        let answer = allowed(app().preflight(&head(
            "OPTIONS",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "content-type,x-api-key"),
            ],
        )));
        assert_eq!(
            get(&answer, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            get(&answer, "access-control-allow-methods"),
            Some("GET, HEAD, POST, PUT, PATCH, DELETE")
        );
        assert_eq!(
            get(&answer, "access-control-allow-headers"),
            Some("content-type, authorization, x-api-key")
        );
        assert_eq!(get(&answer, "access-control-max-age"), Some("600"));
        assert_eq!(get(&answer, "access-control-allow-credentials"), None);
        assert_eq!(
            get(&answer, "vary"),
            Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        );
    }

    #[test]
    fn a_preflight_from_another_origin_is_refused() {
        for origin in [
            "https://evil.example.com",
            "https://app.example.com.evil.com",
            "http://app.example.com",
            "null",
        ] {
            let outcome = app().preflight(&head(
                "OPTIONS",
                &[("origin", origin), ("access-control-request-method", "GET")],
            ));
            assert_eq!(outcome, Preflight::Refused(Refusal::Origin(origin.into())));
        }
        let error = ApiError::from(Refusal::Origin("https://evil.example.com".into()));
        assert_eq!(error.code, Code::CorsRefused);
        assert!(error.message.contains("https://evil.example.com"));
    }

    #[test]
    fn a_method_not_listed_is_refused_case_sensitively() {
        let cors = compiled(serde_json::json!({
            "allow_origins": ["https://app.example.com"],
            "allow_methods": ["GET", "POST"]
        }));
        for method in ["DELETE", "post", "PATCH"] {
            let outcome = cors.preflight(&head(
                "OPTIONS",
                &[
                    ("origin", "https://app.example.com"),
                    ("access-control-request-method", method),
                ],
            ));
            assert_eq!(outcome, Preflight::Refused(Refusal::Method(method.into())));
        }
    }

    #[test]
    fn a_header_not_listed_is_refused_and_named() {
        let outcome = app().preflight(&head(
            "OPTIONS",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type, x-secret"),
            ],
        ));
        assert_eq!(
            outcome,
            Preflight::Refused(Refusal::Header("x-secret".into()))
        );
        let error = ApiError::from(Refusal::Header("x-secret".into()));
        assert_eq!(
            error.message,
            "CORS: the request header `x-secret` is not allowed"
        );
    }

    #[test]
    fn requested_headers_are_compared_case_insensitively_in_any_list_form() {
        for list in [
            "Content-Type, X-API-Key",
            "  content-type ,x-api-key  ",
            "AUTHORIZATION,,content-type,",
            "",
        ] {
            allowed(app().preflight(&head(
                "OPTIONS",
                &[
                    ("origin", "https://app.example.com"),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", list),
                ],
            )));
        }
        // Two header lines are one list.
        let mut parts = head(
            "OPTIONS",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
        );
        parts.headers.append(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("X-Other"),
        );
        assert_eq!(
            app().preflight(&parts),
            Preflight::Refused(Refusal::Header("X-Other".into()))
        );
    }

    #[test]
    fn any_origin_is_answered_with_a_star() {
        let cors = compiled(serde_json::json!({"allow_origins": ["*"]}));
        let answer = allowed(cors.preflight(&head(
            "OPTIONS",
            &[
                ("origin", "https://anyone.example"),
                ("access-control-request-method", "DELETE"),
            ],
        )));
        assert_eq!(get(&answer, "access-control-allow-origin"), Some("*"));
        let mut response = HeaderMap::new();
        cors.apply(
            &head("GET", &[("origin", "https://anyone.example")]).headers,
            &mut response,
        );
        assert_eq!(get(&response, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&response, "vary"), None, "a star does not vary");
    }

    #[test]
    fn credentials_echo_the_origin_and_say_true() {
        let cors = compiled(serde_json::json!({
            "allow_origins": ["https://app.example.com"],
            "allow_credentials": true,
            "expose_headers": ["X-Total-Count", "etag"]
        }));
        let request = head(
            "OPTIONS",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
            ],
        );
        let answer = allowed(cors.preflight(&request));
        assert_eq!(
            get(&answer, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            get(&answer, "access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(get(&answer, "access-control-max-age"), None);

        let mut response = HeaderMap::new();
        cors.apply(&request.headers, &mut response);
        assert_eq!(
            get(&response, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            get(&response, "access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(
            get(&response, "access-control-expose-headers"),
            Some("x-total-count, etag")
        );

        // `*` with credentials never reaches a compiled policy unvalidated into a leak.
        let unvalidated = compiled(serde_json::json!({
            "allow_origins": ["*"],
            "allow_credentials": true
        }));
        let answer = allowed(unvalidated.preflight(&request));
        assert_eq!(get(&answer, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&answer, "access-control-allow-credentials"), None);
    }

    #[test]
    fn stars_in_methods_and_headers_reflect_the_request() {
        let cors = compiled(serde_json::json!({
            "allow_origins": ["https://app.example.com"],
            "allow_methods": ["*"],
            "allow_headers": ["*"],
            "allow_credentials": true
        }));
        let answer = allowed(cors.preflight(&head(
            "OPTIONS",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "PURGE"),
                ("access-control-request-headers", "authorization,x-anything"),
            ],
        )));
        assert_eq!(get(&answer, "access-control-allow-methods"), Some("PURGE"));
        assert_eq!(
            get(&answer, "access-control-allow-headers"),
            Some("authorization,x-anything")
        );
        // A requested "header" that is no header name is refused even so.
        let outcome = cors.preflight(&head(
            "OPTIONS",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-a, bad name"),
            ],
        ));
        assert_eq!(
            outcome,
            Preflight::Refused(Refusal::Header("bad name".into()))
        );
    }

    #[test]
    fn other_requests_are_not_preflights() {
        let cors = app();
        for parts in [
            head("OPTIONS", &[]),
            head("OPTIONS", &[("origin", "https://app.example.com")]),
            head("OPTIONS", &[("access-control-request-method", "GET")]),
            head(
                "GET",
                &[
                    ("origin", "https://app.example.com"),
                    ("access-control-request-method", "GET"),
                ],
            ),
        ] {
            assert_eq!(cors.preflight(&parts), Preflight::NotPreflight);
        }
    }

    #[test]
    fn apply_adds_headers_only_for_an_allowed_origin() {
        let cors = app();
        let mut response = HeaderMap::new();
        cors.apply(
            &head("GET", &[("origin", "http://localhost:5173")]).headers,
            &mut response,
        );
        assert_eq!(
            get(&response, "access-control-allow-origin"),
            Some("http://localhost:5173")
        );
        assert_eq!(get(&response, "access-control-allow-credentials"), None);
        assert_eq!(get(&response, "access-control-expose-headers"), None);
        assert_eq!(get(&response, "vary"), Some("Origin"));

        for request in [
            head("GET", &[("origin", "https://evil.example.com")]),
            head("GET", &[]),
        ] {
            let mut response = HeaderMap::new();
            cors.apply(&request.headers, &mut response);
            assert_eq!(response.len(), 1, "only Vary: {response:?}");
            assert_eq!(get(&response, "vary"), Some("Origin"));
        }

        let star = compiled(serde_json::json!({"allow_origins": ["*"]}));
        let mut response = HeaderMap::new();
        star.apply(&head("GET", &[]).headers, &mut response);
        assert!(response.is_empty());
    }

    #[test]
    fn vary_is_appended_not_replaced_nor_repeated() {
        let cors = app();
        let request = head("GET", &[("origin", "https://app.example.com")]);
        let mut response = HeaderMap::new();
        response.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        cors.apply(&request.headers, &mut response);
        let vary: Vec<_> = response.get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);

        for already in ["accept, ORIGIN", "*"] {
            let mut response = HeaderMap::new();
            response.insert(header::VARY, HeaderValue::from_static(already));
            cors.apply(&request.headers, &mut response);
            assert_eq!(response.get_all(header::VARY).iter().count(), 1);
        }
    }

    #[test]
    fn policy_defaults_and_unknown_fields() {
        let plain = policy(serde_json::json!({"allow_origins": ["https://a.example"]}));
        assert_eq!(plain.allow_methods.len(), 6);
        assert_eq!(
            plain.allow_headers,
            ["content-type", "authorization", "x-api-key"]
        );
        assert!(!plain.allow_credentials);
        assert_eq!(plain.max_age_secs, None);
        let mut errors = Vec::new();
        plain.validate("cors.", &mut errors);
        assert_eq!(errors, []);

        let unknown = serde_json::from_value::<CorsPolicy>(serde_json::json!({
            "allow_origins": ["*"],
            "allow_origin": ["*"]
        }));
        assert!(unknown.is_err());
        assert!(serde_json::from_value::<CorsPolicy>(serde_json::json!({})).is_err());
    }

    fn errors_of(json: serde_json::Value) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        policy(json).validate("cors.", &mut errors);
        errors
            .into_iter()
            .map(|error| (error.field, error.message))
            .collect()
    }

    fn fields_of(json: serde_json::Value) -> Vec<String> {
        errors_of(json)
            .into_iter()
            .map(|(field, _)| field)
            .collect()
    }

    #[test]
    fn origins_must_be_scheme_host_and_port() {
        for good in [
            "https://app.example.com",
            "http://localhost:5173",
            "HTTPS://App.Example.com",
            "http://[::1]:8080",
            "http://127.0.0.1",
            "chrome-extension://abcdefghijklmnop",
        ] {
            assert_eq!(check_origin(good), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("https://app.example.com/", "path"),
            ("https://app.example.com/x", "path"),
            ("app.example.com", "not an origin"),
            ("null", "null"),
            ("https://*.example.com", "wildcard"),
            ("https://app.example.com:443", "default port"),
            ("http://app.example.com:80", "default port"),
            ("https://app.example.com:0", "port"),
            ("https://app.example.com:x", "port"),
            ("https://app.example.com:08443", "port"),
            ("https://user@app.example.com", "user"),
            ("https://", "no host"),
            ("https://bücher.example", "ASCII"),
            ("https://a b", "character"),
            ("1http://a", "scheme"),
            ("http://[::1", "unclosed"),
            ("http://[::1]x", "after"),
        ] {
            let message = check_origin(bad).expect_err(bad);
            assert!(message.contains(says), "{bad}: {message}");
        }
    }

    #[test]
    fn validation_names_each_bad_field() {
        assert_eq!(
            fields_of(serde_json::json!({
                "allow_origins": ["https://a.example/", "*"],
                "allow_methods": ["GET", "BAD METHOD"],
                "allow_headers": ["x-ok", "bad:header", "*"],
                "expose_headers": ["*", "x ok"],
                "max_age_secs": 86_401
            })),
            [
                "cors.allow_origins[0]",
                "cors.allow_origins[1]",
                "cors.allow_methods[1]",
                "cors.allow_headers[1]",
                "cors.expose_headers[1]",
                "cors.max_age_secs",
            ]
        );
        let star_with_credentials = errors_of(serde_json::json!({
            "allow_origins": ["*"],
            "allow_credentials": true,
            "expose_headers": ["*"]
        }));
        assert_eq!(star_with_credentials.len(), 2);
        assert_eq!(star_with_credentials[0].0, "cors.allow_origins[0]");
        assert!(star_with_credentials[0].1.contains("allow_credentials"));
        assert_eq!(star_with_credentials[1].0, "cors.expose_headers[0]");

        let many: Vec<String> = (0..65).map(|i| format!("https://a{i}.example")).collect();
        assert_eq!(
            fields_of(serde_json::json!({
                "allow_origins": many,
                "allow_methods": [],
                "allow_headers": vec!["x-a"; 65]
            })),
            [
                "cors.allow_origins",
                "cors.allow_methods",
                "cors.allow_headers"
            ]
        );
        assert_eq!(
            fields_of(serde_json::json!({"allow_origins": []})),
            ["cors.allow_origins"]
        );
    }

    proptest::proptest! {
        #[test]
        fn preflight_and_apply_never_panic(
            origin in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            method in proptest::collection::vec(proptest::num::u8::ANY, 0..12),
            requested in "[ -~\t]{0,60}",
            vary in "[ -~]{0,30}",
            star in proptest::bool::ANY,
        ) {
            let cors = if star {
                compiled(serde_json::json!({
                    "allow_origins": ["*"],
                    "allow_methods": ["*"],
                    "allow_headers": ["*"],
                    "expose_headers": ["*"]
                }))
            } else {
                app()
            };
            let mut parts = head("OPTIONS", &[]);
            for (name, bytes) in [
                (header::ORIGIN, &origin[..]),
                (header::ACCESS_CONTROL_REQUEST_METHOD, &method[..]),
                (header::ACCESS_CONTROL_REQUEST_HEADERS, requested.as_bytes()),
            ] {
                if let Ok(value) = HeaderValue::from_bytes(bytes) {
                    parts.headers.insert(name, value);
                }
            }
            if let Preflight::Allowed(answer) = cors.preflight(&parts) {
                let allow_origin = &answer[0];
                proptest::prop_assert_eq!(&allow_origin.0, &header::ACCESS_CONTROL_ALLOW_ORIGIN);
                proptest::prop_assert!(
                    allow_origin.1 == "*" || Some(&allow_origin.1) == parts.headers.get(header::ORIGIN)
                );
            }
            let mut response = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&vary) {
                response.insert(header::VARY, value);
            }
            cors.apply(&parts.headers, &mut response);
        }
    }
}
