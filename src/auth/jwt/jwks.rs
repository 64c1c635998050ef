//! Fetching a policy's `jwks_url`: the slow path, off the request path.
//!
//! One `tokio::sync::Mutex` serializes fetches; it is never taken by `verify`. A caller
//! that waited while another fetched shares that fetch's outcome, and a fetch less than
//! the floor (`jwks_refresh_min_secs`) after the last one is not made.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::jwk::{self, Key};
use super::policy::{Algorithm, JwtPolicy, check_url};

/// The largest key set fetched, in bytes.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Why fetching a JWKS failed. Messages name the problem, not the URL's query or the keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// No answer within the policy's `jwks_timeout_ms`.
    #[error("fetching the JWKS timed out after {0} ms")]
    Timeout(u64),
    /// The connection or the HTTP exchange failed.
    #[error("fetching the JWKS failed: {0}")]
    Fetch(String),
    /// The server answered with a status other than 2xx.
    #[error("the JWKS server answered {0}")]
    Status(u16),
    /// The body was larger than 1 MiB.
    #[error("the JWKS is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// The body is not a key set, or holds no usable key.
    #[error("the JWKS is unusable: {0}")]
    Invalid(String),
}

struct FetchState {
    /// When the last fetch began.
    started: Option<Instant>,
    /// How it ended.
    outcome: Result<(), JwksError>,
}

/// A policy's key set URL and fetch settings.
pub(super) struct Remote {
    url: reqwest::Url,
    algorithms: Vec<Algorithm>,
    timeout: Duration,
    floor: Duration,
    max_age: Duration,
    gate: tokio::sync::Mutex<FetchState>,
    last_error: ArcSwapOption<JwksError>,
}

impl Remote {
    pub fn new(policy: &JwtPolicy) -> Result<Remote, String> {
        let url = check_url(policy.jwks_url.as_deref().unwrap_or_default())?;
        Ok(Remote {
            url,
            algorithms: policy.algorithms.clone(),
            timeout: Duration::from_millis(policy.jwks_timeout_ms),
            floor: Duration::from_secs(policy.jwks_refresh_min_secs),
            max_age: Duration::from_secs(policy.jwks_max_age_secs),
            gate: tokio::sync::Mutex::new(FetchState {
                started: None,
                outcome: Ok(()),
            }),
            last_error: ArcSwapOption::empty(),
        })
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    pub fn last_error(&self) -> Option<JwksError> {
        self.last_error.load().as_deref().cloned()
    }

    /// Fetches unless a fetch began after this call did or within the floor; `install`
    /// swaps the new keys in (with the time they were fetched).
    pub async fn refresh(
        &self,
        client: &reqwest::Client,
        install: impl FnOnce(Vec<Key>, Instant),
    ) -> Result<(), JwksError> {
        let asked = Instant::now();
        let mut state = self.gate.lock().await;
        if let Some(started) = state.started
            && (started >= asked || started.elapsed() < self.floor)
        {
            return state.outcome.clone();
        }
        let started = Instant::now();
        state.started = Some(started);
        let outcome = self.fetch(client).await.map(|keys| install(keys, started));
        match &outcome {
            Ok(()) => self.last_error.store(None),
            Err(error) => self.last_error.store(Some(Arc::new(error.clone()))),
        }
        state.outcome = outcome.clone();
        outcome
    }

    async fn fetch(&self, client: &reqwest::Client) -> Result<Vec<Key>, JwksError> {
        let millis = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let body = tokio::time::timeout(self.timeout, self.get(client))
            .await
            .map_err(|_| JwksError::Timeout(millis))??;
        jwk::compile_fetched(&body, &self.algorithms).map_err(JwksError::Invalid)
    }

    async fn get(&self, client: &reqwest::Client) -> Result<Vec<u8>, JwksError> {
        let millis = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let failed = |error: reqwest::Error| {
            if error.is_timeout() {
                JwksError::Timeout(millis)
            } else {
                JwksError::Fetch(describe(&error.without_url()))
            }
        };
        let mut response = client
            .get(self.url.clone())
            .header(http::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(failed)?;
        if !response.status().is_success() {
            return Err(JwksError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
        {
            return Err(JwksError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// An error and its sources, joined with `: `.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
