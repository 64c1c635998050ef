//! The `mock` handler: a fixed status, headers and body, optionally after a delay.
//!
//! Everything is rendered once, at compile time: the body is one `Bytes` and the headers
//! are parsed names and values, so answering costs the response head and reference-count
//! increments, and no serialisation. It must not read the request body or touch any state.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};

use super::{HandlerError, Reply};
use crate::body::Body;
use crate::model::MockSpec;

/// A pre-rendered mock response.
#[derive(Debug)]
pub struct MockHandler {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    delay: Option<Duration>,
}

impl MockHandler {
    pub fn compile(spec: &MockSpec) -> Result<MockHandler, HandlerError> {
        let status =
            StatusCode::from_u16(spec.status).map_err(|e| HandlerError::Mock(e.to_string()))?;
        let (body, default_type) = if let Some(json) = &spec.json {
            let bytes = serde_json::to_vec(json).map_err(|e| HandlerError::Mock(e.to_string()))?;
            (Bytes::from(bytes), Some("application/json"))
        } else if let Some(text) = &spec.body {
            (Bytes::from(text.clone()), Some("text/plain; charset=utf-8"))
        } else if let Some(encoded) = &spec.body_base64 {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| HandlerError::Mock(format!("body_base64: {e}")))?;
            (Bytes::from(bytes), Some("application/octet-stream"))
        } else {
            (Bytes::new(), None)
        };
        let mut headers = Vec::with_capacity(spec.headers.len() + 1);
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
        if let Some(content_type) = default_type
            && !headers.iter().any(|(name, _)| name == header::CONTENT_TYPE)
        {
            headers.push((header::CONTENT_TYPE, HeaderValue::from_static(content_type)));
        }
        Ok(MockHandler {
            status,
            headers,
            body,
            delay: spec.delay_ms.filter(|d| *d > 0).map(Duration::from_millis),
        })
    }

    pub fn respond(&self) -> Reply {
        let mut response = http::Response::new(Body::full(self.body.clone()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        // One reservation for ours plus the request id the edge adds.
        headers.reserve(self.headers.len() + 1);
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        match self.delay {
            Some(delay) => Reply::After(delay, response),
            None => Reply::Now(response),
        }
    }
}
