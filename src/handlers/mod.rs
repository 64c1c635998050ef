//! Endpoint handlers: the closed set of things an endpoint can do.
//!
//! [`Handler`] is one enum with one variant per kind (`mock` now; `script`, `proxy` and
//! `dataset` in later issues), compiled once from a validated definition when the project
//! changes, and dispatched with one `match` on the request path. A handler never touches the
//! store or the route table; it is handed what it needs.

pub(crate) mod mock;

use std::time::Duration;

use crate::body::Body;
use crate::model::EndpointSpec;

/// Why a definition could not be compiled into a handler. Validation catches these first;
/// compiling re-checks so that a stored definition that somehow went bad is reported, not
/// served wrong.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("mock response: {0}")]
    Mock(String),
}

/// A compiled endpoint handler.
#[derive(Debug)]
pub enum Handler {
    Mock(mock::MockHandler),
}

/// What a handler answers: a response now, or after a delay.
pub enum Reply {
    Now(http::Response<Body>),
    After(Duration, http::Response<Body>),
}

impl Handler {
    pub fn compile(spec: &EndpointSpec) -> Result<Handler, HandlerError> {
        mock::MockHandler::compile(&spec.response).map(Handler::Mock)
    }

    /// Answers a request. Synchronous work only: the caller may hold the route table.
    pub fn respond(&self) -> Reply {
        match self {
            Handler::Mock(mock) => mock.respond(),
        }
    }
}
