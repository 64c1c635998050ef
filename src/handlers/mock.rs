//! The `mock` handler: a fixed status, headers and body, optionally after a delay.
//!
//! Everything is rendered once, at compile time: the body is one `Bytes` and the headers
//! are parsed names and values, so answering costs the response head and reference-count
//! increments, and no serialisation. It must not read the request body or touch any state.
//! JSON and text bodies are the definition's own bytes, shared, not copied: a project of
//! 100,000 mocks holds each body once.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};

use super::{HandlerError, Reply};
use crate::body::Body;
use crate::model::{MockSpec, shared_text};

/// A pre-rendered mock response.
#[derive(Debug)]
pub struct MockHandler {
    status: StatusCode,
    /// The `content-type` the body kind implies, unless a header of the mock sets one. Kept
    /// out of `headers` so that the usual mock (no headers of its own) needs no vector.
    content_type: Option<HeaderValue>,
    headers: Box<[(HeaderName, HeaderValue)]>,
    body: Bytes,
    delay: Option<Duration>,
}

impl MockHandler {
    pub fn compile(spec: &MockSpec) -> Result<MockHandler, HandlerError> {
        let status =
            StatusCode::from_u16(spec.status).map_err(|e| HandlerError::Mock(e.to_string()))?;
        let (body, default_type) = if let Some(json) = &spec.json {
            (json.bytes(), Some("application/json"))
        } else if let Some(text) = &spec.body {
            (shared_text(text), Some("text/plain; charset=utf-8"))
        } else if let Some(encoded) = &spec.body_base64 {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| HandlerError::Mock(format!("body_base64: {e}")))?;
            (Bytes::from(bytes), Some("application/octet-stream"))
        } else {
            (Bytes::new(), None)
        };
        let mut headers = Vec::with_capacity(spec.headers.len());
        for (name, values) in &spec.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HandlerError::Mock(format!("invalid header name `{name}`")))?;
            for value in values.iter() {
                let value = HeaderValue::from_str(value).map_err(|_| {
                    HandlerError::Mock(format!("invalid value for header `{name}`"))
                })?;
                headers.push((name.clone(), value));
            }
        }
        let content_type = default_type
            .filter(|_| !headers.iter().any(|(name, _)| name == header::CONTENT_TYPE))
            .map(HeaderValue::from_static);
        Ok(MockHandler {
            status,
            content_type,
            headers: headers.into_boxed_slice(),
            body,
            delay: spec.delay_ms.filter(|d| *d > 0).map(Duration::from_millis),
        })
    }

    pub fn respond(&self) -> Reply {
        let mut response = http::Response::new(Body::full(self.body.clone()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        // One reservation for ours plus the request id the edge adds.
        headers.reserve(self.headers.len() + usize::from(self.content_type.is_some()) + 1);
        for (name, value) in self.headers.iter() {
            headers.append(name.clone(), value.clone());
        }
        if let Some(content_type) = &self.content_type {
            headers.append(header::CONTENT_TYPE, content_type.clone());
        }
        match self.delay {
            Some(delay) => Reply::After(delay, response),
            None => Reply::Now(response),
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
        let handler = MockHandler::compile(&json.response).unwrap();
        let text = json.response.json.as_ref().unwrap().get();
        assert_eq!(&handler.body[..], br#"{"message":"hello"}"#);
        assert_eq!(handler.body.as_ptr(), text.as_ptr());
        let plain = spec(serde_json::json!(
            {"method": "GET", "path": "/", "response": {"body": "hi"}}
        ));
        let handler = MockHandler::compile(&plain.response).unwrap();
        assert_eq!(
            handler.body.as_ptr(),
            plain.response.body.as_ref().unwrap().as_ptr()
        );
    }

    #[test]
    fn the_implied_content_type_yields_to_a_header_of_the_mock() {
        let plain = spec(serde_json::json!(
            {"method": "GET", "path": "/", "response": {"json": 1}}
        ));
        let Reply::Now(response) = MockHandler::compile(&plain.response).unwrap().respond() else {
            panic!("no delay was asked for");
        };
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let typed = spec(serde_json::json!(
            {"method": "GET", "path": "/", "response": {"json": 1,
             "headers": {"content-type": "application/problem+json", "x-a": ["1", "2"]}}}
        ));
        let Reply::Now(response) = MockHandler::compile(&typed.response).unwrap().respond() else {
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
