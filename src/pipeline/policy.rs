//! Stage 2 of the pipeline: the project's policy, checked on the request head before any
//! handler runs.
//!
//! A project whose policy is `none` costs one branch here: nothing of the request is looked
//! at, so its credentials reach the handler untouched. Otherwise `auth::ProjectAuth::check`
//! verifies the caller against the policy and the endpoint's own requirements and gives the
//! [`Identity`] the handler's context carries; then the project's rate limit, if it has
//! one (`auth::limit`). A refusal is an [`ApiError`] (401, 403, 429) that the pipeline
//! renders and counts like any other answer. CORS preflights are answered before the
//! endpoint lookup, and CORS headers added to every answer, by the pipeline itself.

use std::net::SocketAddr;

use http::request::Parts;

use crate::accounts::Accounts;
use crate::auth::Checked;
use crate::auth::limit::too_many_requests;
use crate::error::ApiError;
use crate::routing::{CompiledProject, script_route};

/// Whether `project` lets this request from `peer` to its endpoint `index` (as the lookup
/// gave it) through, and as whom.
#[inline]
pub fn check(
    project: &CompiledProject,
    index: usize,
    head: &Parts,
    peer: SocketAddr,
    accounts: Option<&Accounts>,
) -> Result<Checked, ApiError> {
    if project.auth.is_open() && project.limiter.is_none() {
        return Ok(Checked::Now(None));
    }
    checked(project, index, head, peer, accounts)
}

#[cold]
fn checked(
    project: &CompiledProject,
    index: usize,
    head: &Parts,
    peer: SocketAddr,
    accounts: Option<&Accounts>,
) -> Result<Checked, ApiError> {
    // A script's routes have no requirements of their own: the project's policy applies.
    let endpoint = match script_route(index) {
        Some(_) => None,
        None => project
            .def
            .endpoints
            .get(index)
            .and_then(|e| e.spec.auth.as_deref()),
    };
    let checked = project.auth.check_from(
        endpoint,
        head,
        crate::accounts::now_ms(),
        peer.ip(),
        accounts,
    )?;
    // Then the rate limit, per verified caller where it counts by key or subject.
    let Some(limiter) = &project.limiter else {
        return Ok(checked);
    };
    match checked {
        Checked::Now(identity) => {
            let caller = identity.as_ref().map(|i| &*i.subject);
            limiter
                .check(caller, peer.ip())
                .map_err(too_many_requests)?;
            Ok(Checked::Now(identity))
        }
        Checked::Later(pending) => {
            let limiter = limiter.clone();
            Ok(Checked::Later(Box::pin(async move {
                let identity = pending.await?;
                let caller = identity.as_ref().map(|i| &*i.subject);
                limiter
                    .check(caller, peer.ip())
                    .map_err(too_many_requests)?;
                Ok(identity)
            })))
        }
    }
}
