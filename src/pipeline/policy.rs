//! Stage 2 of the pipeline: the project's policy, checked on the request head before any
//! handler runs.
//!
//! Every project's policy is `none` today: every request passes. The per-project auth issue
//! fills this stage (API keys, Basic, JWT, CORS, rate limits) and attaches the verified
//! identity to the handler's context; a refusal is an [`ApiError`] (401, 403, 429) that the
//! pipeline renders and counts like any other answer.

use http::request::Parts;

use crate::error::ApiError;
use crate::routing::CompiledProject;

/// Whether `project` lets this request through.
#[inline]
pub fn check(project: &CompiledProject, head: &Parts) -> Result<(), ApiError> {
    let _ = (project, head);
    Ok(())
}
