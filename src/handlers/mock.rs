//! The `mock` handler: a fixed status, headers and body, optionally after a delay.
//!
//! Everything is rendered once, at compile time: the body is one `Bytes` and the headers
//! are parsed names and values, so answering costs the response head and reference-count
//! increments, and no serialisation. It must not read the request body or touch any state.
//! JSON and text bodies are the definition's own bytes, shared, not copied: a project of
//! 100,000 mocks holds each body once.
//!
//! A mock with `rules` checks them in order against the request's query and headers (the
//! only mocks that read the request head), and the first that holds answers with its own
//! pre-rendered response.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::{HandlerError, Reply};
use crate::body::Body;
use crate::model::{MAX_DELAY_MS, MockSpec, shared_text};
use crate::observe;

/// The response headers of a mock that sets none of its own, for each body kind: a
/// placeholder `x-request-id` first (the edge puts the request's id in its place without a
/// hash lookup, `observe::set_request_id`), then the implied `content-type`. Built once per
/// node and shared by every such mock: a mock's answer clones its template map, which costs
/// two allocations and no hashing.
static PLAIN: LazyLock<Arc<HeaderMap>> = LazyLock::new(|| Kind::Empty.template());
static JSON: LazyLock<Arc<HeaderMap>> = LazyLock::new(|| Kind::Json.template());
static TEXT: LazyLock<Arc<HeaderMap>> = LazyLock::new(|| Kind::Text.template());
static OCTET: LazyLock<Arc<HeaderMap>> = LazyLock::new(|| Kind::Binary.template());

/// A mock's response headers: the placeholder request id, the mock's own headers (but any
/// `x-request-id`: the edge sets that one), and `content_type` unless the mock sets one.
fn template(
    content_type: Option<HeaderValue>,
    own: &[(HeaderName, HeaderValue)],
) -> Arc<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(own.len() + 2);
    headers.append(observe::REQUEST_ID, observe::REQUEST_ID_PLACEHOLDER);
    for (name, value) in own {
        if *name != observe::REQUEST_ID {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(content_type) = content_type
        && !headers.contains_key(header::CONTENT_TYPE)
    {
        headers.append(header::CONTENT_TYPE, content_type);
    }
    Arc::new(headers)
}

/// A pre-rendered mock response. One is held per endpoint, so it is kept small.
#[derive(Debug, Clone)]
pub struct MockHandler {
    status: StatusCode,
    /// Milliseconds to wait before answering; 0 for none ([`MAX_DELAY_MS`] fits).
    delay_ms: u32,
    /// The response headers, cloned for each answer: a shared template for mocks without
    /// headers of their own (most), the mock's own map otherwise.
    headers: Arc<HeaderMap>,
    body: Bytes,
    /// The mock's rules, compiled; `None` for a mock without any (one pointer).
    rules: Option<Box<CompiledRules>>,
}

/// A mock's compiled rules, in order.
#[derive(Debug, Clone)]
struct CompiledRules(Box<[CompiledRule]>);

/// A rule: its conditions and the response it answers with.
#[derive(Debug, Clone)]
struct CompiledRule {
    /// Query parameters that must be present with a (decoded) value that passes.
    query: Box<[(Box<str>, Matcher)]>,
    /// Headers that must be present with a value that passes.
    headers: Box<[(HeaderName, Matcher)]>,
    response: MockHandler,
}

/// One condition's test of a value.
#[derive(Debug, Clone)]
enum Matcher {
    Equals(Box<[u8]>),
    Regex(regex::Regex),
}

impl Matcher {
    fn compile(condition: &crate::model::Condition) -> Result<Matcher, HandlerError> {
        use crate::model::Test;
        match condition.test() {
            Some(Test::Equals(value)) => Ok(Matcher::Equals(value.as_bytes().into())),
            Some(Test::Matches(pattern)) => crate::model::Condition::regex(pattern)
                .map(Matcher::Regex)
                .map_err(|e| HandlerError::Mock(format!("invalid pattern `{pattern}`: {e}"))),
            None => Err(HandlerError::Mock(
                "a condition gives neither or both of `equals` and `matches`".into(),
            )),
        }
    }

    fn passes(&self, value: &[u8]) -> bool {
        match self {
            Matcher::Equals(wanted) => **wanted == *value,
            Matcher::Regex(regex) => std::str::from_utf8(value).is_ok_and(|v| regex.is_match(v)),
        }
    }
}

impl CompiledRule {
    fn holds(&self, query: Option<&str>, headers: &HeaderMap) -> bool {
        self.headers.iter().all(|(name, matcher)| {
            headers
                .get_all(name)
                .iter()
                .any(|v| matcher.passes(v.as_bytes()))
        }) && self.query.iter().all(|(name, matcher)| {
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .any(|(n, v)| *n == **name && matcher.passes(v.as_bytes()))
        })
    }
}

/// The body kinds a mock can have, for their implied `content-type`.
#[derive(Clone, Copy)]
enum Kind {
    Empty,
    Json,
    Text,
    Binary,
}

impl Kind {
    /// The `content-type` this kind of body implies, if any.
    fn content_type(self) -> Option<HeaderValue> {
        match self {
            Kind::Empty => None,
            Kind::Json => Some(HeaderValue::from_static("application/json")),
            Kind::Text => Some(HeaderValue::from_static("text/plain; charset=utf-8")),
            Kind::Binary => Some(HeaderValue::from_static("application/octet-stream")),
        }
    }

    /// The headers of a mock of this kind with none of its own.
    fn template(self) -> Arc<HeaderMap> {
        template(self.content_type(), &[])
    }

    /// The node's shared copy of [`Kind::template`].
    fn shared(self) -> &'static Arc<HeaderMap> {
        match self {
            Kind::Empty => &PLAIN,
            Kind::Json => &JSON,
            Kind::Text => &TEXT,
            Kind::Binary => &OCTET,
        }
    }
}

impl MockHandler {
    pub fn compile(spec: &MockSpec) -> Result<MockHandler, HandlerError> {
        let status =
            StatusCode::from_u16(spec.status).map_err(|e| HandlerError::Mock(e.to_string()))?;
        let (body, kind) = if let Some(json) = &spec.json {
            (json.bytes(), Kind::Json)
        } else if let Some(text) = &spec.body {
            (shared_text(text), Kind::Text)
        } else if let Some(encoded) = &spec.body_base64 {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|e| HandlerError::Mock(format!("body_base64: {e}")))?;
            (Bytes::from(bytes), Kind::Binary)
        } else {
            (Bytes::new(), Kind::Empty)
        };
        let mut own = Vec::with_capacity(spec.headers.len());
        for (name, values) in spec.headers.iter() {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HandlerError::Mock(format!("invalid header name `{name}`")))?;
            for value in values.iter() {
                let value = HeaderValue::from_str(value).map_err(|_| {
                    HandlerError::Mock(format!("invalid value for header `{name}`"))
                })?;
                own.push((name.clone(), value));
            }
        }
        let headers = if own.is_empty() {
            Arc::clone(kind.shared())
        } else {
            template(kind.content_type(), &own)
        };
        let delay_ms = match spec.delay_ms {
            None => 0,
            Some(ms) => u32::try_from(ms)
                .ok()
                .filter(|_| ms <= MAX_DELAY_MS)
                .ok_or_else(|| HandlerError::Mock(format!("delay_ms {ms} is out of range")))?,
        };
        let rules = match &spec.rules {
            None => None,
            Some(rules) => Some(Box::new(CompiledRules(
                rules
                    .0
                    .iter()
                    .map(|rule| {
                        let headers = rule
                            .when
                            .headers
                            .iter()
                            .map(|(name, condition)| {
                                let name =
                                    HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                                        HandlerError::Mock(format!("invalid header name `{name}`"))
                                    })?;
                                Ok((name, Matcher::compile(condition)?))
                            })
                            .collect::<Result<_, HandlerError>>()?;
                        let query = rule
                            .when
                            .query
                            .iter()
                            .map(|(name, condition)| {
                                Ok((name.as_str().into(), Matcher::compile(condition)?))
                            })
                            .collect::<Result<_, HandlerError>>()?;
                        Ok(CompiledRule {
                            query,
                            headers,
                            response: MockHandler::compile(&rule.response)?,
                        })
                    })
                    .collect::<Result<Box<[_]>, HandlerError>>()?,
            ))),
        };
        Ok(MockHandler {
            status,
            delay_ms,
            headers,
            body,
            rules,
        })
    }

    /// Whether the mock has rules (and so reads the request's query and headers).
    #[inline]
    pub fn has_rules(&self) -> bool {
        self.rules.is_some()
    }

    /// Answers with the first rule that holds for this request, or the mock's own response.
    pub fn respond_to(&self, query: Option<&str>, headers: &HeaderMap) -> Reply {
        let chosen = self
            .rules
            .iter()
            .flat_map(|rules| rules.0.iter())
            .find(|rule| rule.holds(query, headers))
            .map_or(self, |rule| &rule.response);
        chosen.respond()
    }

    /// The response headers of every answer (the request id's placeholder first).
    pub fn headers(&self) -> &Arc<HeaderMap> {
        &self.headers
    }

    #[inline]
    pub fn respond(&self) -> Reply {
        let mut response = http::Response::new(Body::full(self.body.clone()));
        *response.status_mut() = self.status;
        let empty = std::mem::replace(response.headers_mut(), HeaderMap::clone(&self.headers));
        // `Response::new` made an empty map, which owns no memory (`HeaderMap::new` does not
        // allocate): nothing to free, so skip its drop glue.
        debug_assert_eq!(empty.capacity(), 0);
        std::mem::forget(empty);
        match self.delay_ms {
            0 => Reply::Now(response),
            ms => Reply::After(Duration::from_millis(u64::from(ms)), response),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EndpointSpec;

    fn spec(json: serde_json::Value) -> EndpointSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn json_and_text_bodies_are_the_definitions_own_bytes() {
        let json = spec(serde_json::json!(
            {"method": "GET", "path": "/", "response": {"json": {"message": "hello"}}}
        ));
        let handler = MockHandler::compile(json.handler.mock().unwrap()).unwrap();
        let text = json.handler.mock().unwrap().json.as_ref().unwrap().get();
        assert_eq!(&handler.body[..], br#"{"message":"hello"}"#);
        assert_eq!(handler.body.as_ptr(), text.as_ptr());
        let plain = spec(serde_json::json!(
            {"method": "GET", "path": "/", "response": {"body": "hi"}}
        ));
        let handler = MockHandler::compile(plain.handler.mock().unwrap()).unwrap();
        assert_eq!(
            handler.body.as_ptr(),
            plain
                .handler
                .mock()
                .unwrap()
                .body
                .as_ref()
                .unwrap()
                .as_ptr()
        );
    }

    #[test]
    fn a_handler_stays_small() {
        // One is compiled per endpoint: 100,000 endpoints hold 100,000 of these.
        assert!(std::mem::size_of::<MockHandler>() <= 64);
        assert!(std::mem::size_of::<super::super::Handler>() <= 64);
    }

    #[test]
    fn delays_are_kept_in_milliseconds() {
        let slow = spec(serde_json::json!(
            {"method": "GET", "path": "/", "response": {"delay_ms": 250}}
        ));
        let Reply::After(delay, _) = MockHandler::compile(slow.handler.mock().unwrap())
            .unwrap()
            .respond()
        else {
            panic!("a delay was asked for");
        };
        assert_eq!(delay, Duration::from_millis(250));
        let mut bad = slow.handler.mock().unwrap().clone();
        bad.delay_ms = Some(u64::MAX);
        assert!(MockHandler::compile(&bad).is_err());
        let none = spec(serde_json::json!(
            {"method": "GET", "path": "/", "response": {"delay_ms": 0}}
        ));
        let reply = MockHandler::compile(none.handler.mock().unwrap())
            .unwrap()
            .respond();
        assert!(matches!(reply, Reply::Now(_)));
    }

    #[test]
    fn the_implied_content_type_yields_to_a_header_of_the_mock() {
        let plain = spec(serde_json::json!(
            {"method": "GET", "path": "/", "response": {"json": 1}}
        ));
        let Reply::Now(response) = MockHandler::compile(plain.handler.mock().unwrap())
            .unwrap()
            .respond()
        else {
            panic!("no delay was asked for");
        };
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let typed = spec(serde_json::json!(
            {"method": "GET", "path": "/", "response": {"json": 1,
             "headers": {"content-type": "application/problem+json", "x-a": ["1", "2"]}}}
        ));
        let Reply::Now(response) = MockHandler::compile(typed.handler.mock().unwrap())
            .unwrap()
            .respond()
        else {
            panic!("no delay was asked for");
        };
        let types: Vec<_> = response
            .headers()
            .get_all(header::CONTENT_TYPE)
            .iter()
            .collect();
        assert_eq!(types, ["application/problem+json"]);
        assert_eq!(response.headers().get_all("x-a").iter().count(), 2);
    }
}
