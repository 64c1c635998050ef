//! Per-project auth on the request path (docs/auth.md): a project's policy
//! (`model::AuthPolicy`) and its API keys compiled into a [`ProjectAuth`] once per revision,
//! and checked by the pipeline's policy stage against the endpoint's own requirements
//! (`model::EndpointAuth`).
//!
//! Under the policy `none`, and on a `public` endpoint, nothing of the request is looked at:
//! its `Authorization` header and cookies reach the handler untouched. Otherwise the check
//! gives the caller's verified [`Identity`], or the refusal to answer: 401 with
//! `WWW-Authenticate` for missing or invalid credentials (RFC 7235, RFC 6750's
//! `error="invalid_token"`), 403 `insufficient_scope` naming what is required. No message
//! ever repeats a credential.

pub mod cors;
pub mod jwt;
pub mod keys;
pub mod limit;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::header::WWW_AUTHENTICATE;
use http::request::Parts;
use http::{HeaderName, HeaderValue};

use std::net::IpAddr;

use base64::Engine as _;

use crate::accounts::{AccountError, Accounts};
use crate::error::{ApiError, Code};
use crate::model::{AuthPolicy, DEFAULT_KEY_HEADER, EndpointAuth};
use keys::{KeyRefusal, KeySet};

/// Who a request comes from, once its credentials are verified. Cheap to make and clone:
/// it shares what the key or the verified token holds.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The key's name (an API key), the token's `sub` (a JWT; empty without one).
    pub subject: Arc<str>,
    /// How the caller proved it: `api_key` or `jwt`.
    pub method: &'static str,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    /// An API key's scopes.
    Key(Arc<[Box<str>]>),
    Token(jwt::Verified),
    /// A user (`basic`, `platform`): no scopes, permissions or claims.
    User,
}

impl Identity {
    /// A caller with an API key named `name` granting `scopes`.
    pub fn key(name: Arc<str>, scopes: Arc<[Box<str>]>) -> Identity {
        Identity {
            subject: name,
            method: "api_key",
            source: Source::Key(scopes),
        }
    }

    /// A user of a `basic` or `platform` policy (`method`).
    fn user(name: Arc<str>, method: &'static str) -> Identity {
        Identity {
            subject: name,
            method,
            source: Source::User,
        }
    }

    fn token(verified: jwt::Verified) -> Identity {
        Identity {
            subject: verified.subject.clone().unwrap_or_else(|| Arc::from("")),
            method: "jwt",
            source: Source::Token(verified),
        }
    }

    pub fn scopes(&self) -> &[Box<str>] {
        match &self.source {
            Source::Key(scopes) => scopes,
            Source::Token(token) => &token.scopes,
            Source::User => &[],
        }
    }

    /// A token's `permissions`; an API key has none.
    pub fn permissions(&self) -> &[Box<str>] {
        match &self.source {
            Source::Key(_) | Source::User => &[],
            Source::Token(token) => &token.permissions,
        }
    }

    /// A token's claims; `None` for an API key.
    pub fn claims(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        match &self.source {
            Source::Key(_) | Source::User => None,
            Source::Token(token) => Some(&token.claims),
        }
    }
}

/// A check that has to wait (for a key set to be fetched): it gives the caller, or the
/// refusal. Only such checks are boxed; every other one answers at once.
pub type Pending = Pin<Box<dyn Future<Output = Result<Option<Identity>, ApiError>> + Send>>;

/// What a check found.
pub enum Checked {
    /// The caller (`None`: nobody needs to be identified).
    Now(Option<Identity>),
    /// The answer after a wait.
    Later(Pending),
}

/// A project's policy as the request path checks it.
#[derive(Debug, Clone)]
pub struct ProjectAuth {
    rule: Rule,
    /// Where proxy endpoints put the verified subject for their upstream.
    subject_header: Option<HeaderName>,
    keys: Arc<KeySet>,
    /// `realm="owner/project"`, for `WWW-Authenticate`.
    realm: Box<str>,
    /// Invalid keys and tokens per client address (`basic` counts with the login limits).
    failures: Arc<Failures>,
    /// Set while a key set older than its policy's `jwks_max_age_secs` is fetched again.
    refreshing: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug, Clone)]
enum Rule {
    Open,
    ApiKey(KeyPlace),
    Jwt(Arc<jwt::Verifier>),
    Basic(Arc<BasicRule>),
    Platform(Arc<PlatformRule>),
    /// A stored policy that does not compile (it validated when it was written): every
    /// request is refused, and the owner can see why in the log.
    Unusable,
}

#[derive(Debug, Clone)]
enum KeyPlace {
    Header(HeaderName),
    Query(Box<str>),
}

impl ProjectAuth {
    /// `policy` of the project mounted at `mount` (`owner/project`), with its `keys`. A
    /// policy reaches here validated; a header name that does not parse falls back to the
    /// default one.
    pub fn compile(policy: &AuthPolicy, mount: &str, keys: Arc<KeySet>) -> ProjectAuth {
        let mount = mount.trim_start_matches('/');
        let rule = match policy {
            AuthPolicy::None => Rule::Open,
            AuthPolicy::ApiKey {
                query: Some(query), ..
            } => Rule::ApiKey(KeyPlace::Query(query.as_str().into())),
            AuthPolicy::ApiKey { header, .. } => Rule::ApiKey(KeyPlace::Header(
                header
                    .as_deref()
                    .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                    .unwrap_or(HeaderName::from_static(DEFAULT_KEY_HEADER)),
            )),
            AuthPolicy::Platform { owner_only } => Rule::Platform(Arc::new(PlatformRule {
                owner: owner_only.then(|| mount.split('/').next().unwrap_or_default().into()),
                seen: parking_lot::Mutex::new(std::collections::HashMap::new()),
            })),
            AuthPolicy::Basic { users, .. } => Rule::Basic(Arc::new(BasicRule::new(users, mount))),
            AuthPolicy::Jwt(policy) => match jwt::Verifier::new(policy) {
                Ok(verifier) => Rule::Jwt(Arc::new(verifier)),
                Err(error) => {
                    tracing::error!(project = mount, %error, "a stored jwt policy does not compile; its requests are refused");
                    Rule::Unusable
                }
            },
        };
        let subject_header = match policy {
            AuthPolicy::ApiKey {
                subject_header: Some(name),
                ..
            } => HeaderName::from_bytes(name.as_bytes()).ok(),
            AuthPolicy::Jwt(policy) => policy
                .subject_header
                .as_deref()
                .and_then(|name| HeaderName::from_bytes(name.as_bytes()).ok()),
            _ => None,
        };
        ProjectAuth {
            rule,
            subject_header,
            keys,
            realm: match policy {
                AuthPolicy::Basic {
                    realm: Some(realm), ..
                } => realm.as_str().into(),
                _ => mount.into(),
            },
            failures: Arc::new(Failures::new()),
            refreshing: Arc::default(),
        }
    }

    /// The same policy with another set of keys.
    pub fn with_keys(&self, keys: Arc<KeySet>) -> ProjectAuth {
        ProjectAuth {
            keys,
            ..self.clone()
        }
    }

    /// The policy's JWT verifier (tests of refresh by age).
    #[cfg(test)]
    pub(crate) fn verifier(&self) -> Option<&Arc<jwt::Verifier>> {
        match &self.rule {
            Rule::Jwt(verifier) => Some(verifier),
            _ => None,
        }
    }

    /// The header proxy endpoints send the verified subject in, if the policy asks.
    #[inline]
    pub fn subject_header(&self) -> Option<&HeaderName> {
        self.subject_header.as_ref()
    }

    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// Whether every request passes unlooked-at (the policy `none`).
    #[inline]
    pub fn is_open(&self) -> bool {
        matches!(self.rule, Rule::Open)
    }

    /// [`ProjectAuth::check_from`] for a caller on the loopback address, without the
    /// node's accounts (which only `basic` needs).
    pub fn check(
        self: &Arc<Self>,
        endpoint: Option<&EndpointAuth>,
        head: &Parts,
        now_ms: i64,
    ) -> Result<Checked, ApiError> {
        self.check_from(endpoint, head, now_ms, IpAddr::from([127, 0, 0, 1]), None)
    }

    /// Checks a request from `client` for an endpoint with requirements `endpoint` at
    /// `now_ms`: `None` when nobody needs to be identified (an open project, a public
    /// endpoint). `accounts` hash and count passwords (`basic`).
    pub fn check_from(
        self: &Arc<Self>,
        endpoint: Option<&EndpointAuth>,
        head: &Parts,
        now_ms: i64,
        client: IpAddr,
        accounts: Option<&Accounts>,
    ) -> Result<Checked, ApiError> {
        if matches!(self.rule, Rule::Open) || endpoint.is_some_and(|e| e.public) {
            return Ok(Checked::Now(None));
        }
        if let Rule::Basic(basic) = &self.rule {
            // Its failures count with the login limits, per user too.
            return self.check_basic(basic, endpoint, head, client, accounts);
        }
        // An address that sent too many invalid keys or tokens lately waits, unchecked.
        if let Some(wait) = self.failures.blocked(client) {
            return Err(too_many_failures(wait));
        }
        let checked = match &self.rule {
            Rule::ApiKey(place) => self.check_key(place, endpoint, head, now_ms),
            Rule::Jwt(verifier) => self.check_token(verifier, endpoint, head, now_ms),
            Rule::Platform(platform) => self.check_platform(platform, endpoint, head, accounts),
            Rule::Basic(basic) => self.check_basic(basic, endpoint, head, client, accounts),
            Rule::Open => Ok(Checked::Now(None)),
            Rule::Unusable => Err(self.challenge(
                Code::InvalidToken,
                "this project's auth policy cannot be used; its owner must fix it".into(),
                Some("invalid_token"),
            )),
        };
        match checked {
            Err(error) => Err(self.failures.counted(client, error)),
            Ok(Checked::Later(pending)) => {
                let failures = self.failures.clone();
                Ok(Checked::Later(Box::pin(async move {
                    pending
                        .await
                        .map_err(|error| failures.counted(client, error))
                })))
            }
            now => now,
        }
    }

    /// An API key in its header or query parameter.
    fn check_key(
        &self,
        place: &KeyPlace,
        endpoint: Option<&EndpointAuth>,
        head: &Parts,
        now_ms: i64,
    ) -> Result<Checked, ApiError> {
        let presented = match place {
            KeyPlace::Header(name) => head.headers.get(name).and_then(|v| v.to_str().ok()),
            KeyPlace::Query(name) => head.uri.query().and_then(|q| query_value(q, name)),
        };
        let Some(presented) = presented.filter(|p| !p.is_empty()) else {
            let message = match place {
                KeyPlace::Header(name) => {
                    format!("this project asks for an API key in the `{name}` header")
                }
                KeyPlace::Query(name) => {
                    format!("this project asks for an API key in the `{name}` query parameter")
                }
            };
            return Err(self.challenge(Code::CredentialsRequired, message, None));
        };
        let entry = self
            .keys
            .check(presented.trim(), now_ms)
            .map_err(|refusal: KeyRefusal| {
                self.challenge(
                    Code::InvalidToken,
                    refusal.to_string(),
                    Some("invalid_token"),
                )
            })?;
        let identity = Identity::key(entry.name.clone(), entry.scopes.clone());
        self.admit(identity, endpoint).map(Checked::Now)
    }

    /// A bearer token under a `jwt` policy. A token that names a key the set does not hold
    /// (a `jwks_url` not fetched yet, or a key rotated in) waits for one fetch of the set
    /// (shared with concurrent requests, never more often than the policy's floor).
    fn check_token(
        self: &Arc<Self>,
        verifier: &Arc<jwt::Verifier>,
        endpoint: Option<&EndpointAuth>,
        head: &Parts,
        now_ms: i64,
    ) -> Result<Checked, ApiError> {
        let Some(token) = bearer(head) else {
            return Err(self.challenge(
                Code::CredentialsRequired,
                "this project asks for a bearer token (a JWT) in the `Authorization` header".into(),
                None,
            ));
        };
        let now = u64::try_from(now_ms / 1000).unwrap_or(0);
        match verifier.verify(token, now) {
            Ok(verified) => {
                if verifier.jwks_due() {
                    self.refresh_soon(verifier);
                }
                self.admit(Identity::token(verified), endpoint)
                    .map(Checked::Now)
            }
            Err(rejection) if rejection.needs_refresh() => {
                let (this, verifier) = (self.clone(), verifier.clone());
                let (token, required) = (token.to_owned(), endpoint.cloned());
                Ok(Checked::Later(Box::pin(async move {
                    let fetched = verifier.refresh(jwks_client()).await;
                    // Checked at the request's time (the fetch takes a timeout at most).
                    match verifier.verify(&token, now) {
                        Ok(verified) => this.admit(Identity::token(verified), required.as_ref()),
                        Err(rejection) => {
                            let mut message = rejection.to_string();
                            if let Err(error) = fetched {
                                message.push_str(&format!(
                                    " (the key set could not be fetched: {error})"
                                ));
                            }
                            Err(this.challenge(Code::InvalidToken, message, Some("invalid_token")))
                        }
                    }
                })))
            }
            Err(rejection) => Err(self.challenge(
                Code::InvalidToken,
                rejection.to_string(),
                Some("invalid_token"),
            )),
        }
    }

    /// Fetches a key set that has grown older than its policy's `jwks_max_age_secs` again,
    /// in the background (one fetch at a time; requests go on with the keys held), so that a
    /// key the provider withdrew stops being accepted.
    fn refresh_soon(&self, verifier: &Arc<jwt::Verifier>) {
        use std::sync::atomic::Ordering;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (verifier, refreshing) = (verifier.clone(), self.refreshing.clone());
        runtime.spawn(async move {
            if let Err(error) = verifier.refresh(jwks_client()).await {
                tracing::warn!(%error, "a key set due for a refresh could not be fetched; the old one is kept");
            }
            refreshing.store(false, Ordering::Release);
        });
    }

    /// `Authorization: Basic` under a `basic` policy. A user and password seen before are
    /// known at once; a new pair waits for argon2id on the hashing threads, counted against
    /// the client's and the user's failed attempts (429 over the login limits).
    fn check_basic(
        self: &Arc<Self>,
        basic: &Arc<BasicRule>,
        endpoint: Option<&EndpointAuth>,
        head: &Parts,
        client: IpAddr,
        accounts: Option<&Accounts>,
    ) -> Result<Checked, ApiError> {
        let Some((user, password)) = basic_credentials(head) else {
            return Err(self.challenge(
                Code::CredentialsRequired,
                "this project asks for a user name and password (HTTP Basic)".into(),
                None,
            ));
        };
        let seen = basic.seen_key(&user, &password);
        if let Some(name) = basic.seen(&seen) {
            return self
                .admit(Identity::user(name, "basic"), endpoint)
                .map(Checked::Now);
        }
        let Some(accounts) = accounts.cloned() else {
            return Err(ApiError::internal(
                &"a basic policy without the node's accounts",
            ));
        };
        let hash = basic.users.get(user.as_str()).map(|h| h.to_string());
        let (this, basic, required) = (self.clone(), basic.clone(), endpoint.cloned());
        let counted = format!("{}/{user}", basic.mount);
        Ok(Checked::Later(Box::pin(async move {
            match accounts
                .check_project_password(client, &counted, password, hash)
                .await
            {
                Ok(true) => {
                    let name: Arc<str> = user.into();
                    basic.remember(seen, name.clone());
                    this.admit(Identity::user(name, "basic"), required.as_ref())
                }
                Ok(false) => Err(this.challenge(
                    Code::InvalidToken,
                    "unknown user or wrong password".into(),
                    None,
                )),
                Err(AccountError::TooManyAttempts(wait)) => Err(ApiError::retry_after(
                    Code::TooManyRequests,
                    "too many failed attempts from this address or for this user; retry later",
                    wait,
                )),
                Err(AccountError::Busy(wait)) => Err(ApiError::retry_after(
                    Code::ServerBusy,
                    "too many passwords are being checked; retry shortly",
                    wait,
                )),
                Err(error) => Err(ApiError::internal(&error)),
            }
        })))
    }

    /// A Switchyard token under a `platform` policy. A token seen within the last
    /// [`PLATFORM_SEEN_SECS`] is known at once; another is looked up in the store after the
    /// request path lets go (logging out takes at most that long to reach this policy).
    fn check_platform(
        self: &Arc<Self>,
        platform: &Arc<PlatformRule>,
        endpoint: Option<&EndpointAuth>,
        head: &Parts,
        accounts: Option<&Accounts>,
    ) -> Result<Checked, ApiError> {
        let Some(token) = bearer(head) else {
            return Err(self.challenge(
                Code::CredentialsRequired,
                "this project asks for a Switchyard token (from /auth/login or /auth/tokens) in the `Authorization` header".into(),
                None,
            ));
        };
        let key: [u8; 32] = {
            use sha2::Digest;
            sha2::Sha256::digest(token.as_bytes()).into()
        };
        if let Some(user) = platform.seen(&key) {
            return self
                .platform_identity(platform, user, endpoint)
                .map(Checked::Now);
        }
        let Some(accounts) = accounts.cloned() else {
            return Err(ApiError::internal(
                &"a platform policy without the node's accounts",
            ));
        };
        let (this, platform, required) = (self.clone(), platform.clone(), endpoint.cloned());
        let token = token.to_owned();
        Ok(Checked::Later(Box::pin(async move {
            match accounts.authenticate(&token).await {
                Ok(Some(principal)) => {
                    let user: Arc<str> = principal.username.into();
                    platform.remember(key, user.clone());
                    this.platform_identity(&platform, user, required.as_ref())
                }
                Ok(None) => Err(this.challenge(
                    Code::InvalidToken,
                    "the token is not a live Switchyard token (unknown, expired or logged out)"
                        .into(),
                    Some("invalid_token"),
                )),
                Err(error) => Err(ApiError::from(error)),
            }
        })))
    }

    /// The caller `user` of a `platform` policy, if the policy (owner only?) and the
    /// endpoint let them in.
    fn platform_identity(
        &self,
        platform: &PlatformRule,
        user: Arc<str>,
        endpoint: Option<&EndpointAuth>,
    ) -> Result<Option<Identity>, ApiError> {
        if let Some(owner) = &platform.owner
            && **owner != *user
        {
            return Err(ApiError::new(
                Code::Forbidden,
                format!("only the project's owner `{owner}` may call it; the caller is `{user}`"),
            ));
        }
        self.admit(Identity::user(user, "platform"), endpoint)
    }

    /// `identity`, if it holds what the endpoint requires (`None`: nothing).
    fn admit(
        &self,
        identity: Identity,
        endpoint: Option<&EndpointAuth>,
    ) -> Result<Option<Identity>, ApiError> {
        if let Some(required) = endpoint {
            self.require(required, &identity)?;
        }
        Ok(Some(identity))
    }

    /// 403 unless `identity` holds everything `required` asks for.
    fn require(&self, required: &EndpointAuth, identity: &Identity) -> Result<(), ApiError> {
        let missing = |wanted: &[String], held: &[Box<str>]| -> Vec<String> {
            wanted
                .iter()
                .filter(|w| !held.iter().any(|h| **h == ***w))
                .cloned()
                .collect()
        };
        let scopes = missing(&required.scopes, identity.scopes());
        if !scopes.is_empty() {
            let message = format!(
                "this endpoint needs the scope{} {}",
                if scopes.len() == 1 { "" } else { "s" },
                quoted(&scopes)
            );
            return Err(self.insufficient(message, &required.scopes.join(" ")));
        }
        let permissions = missing(&required.permissions, identity.permissions());
        if !permissions.is_empty() {
            let message = format!(
                "this endpoint needs the permission{} {}",
                if permissions.len() == 1 { "" } else { "s" },
                quoted(&permissions)
            );
            return Err(self.insufficient(message, &required.scopes.join(" ")));
        }
        if !required.subjects.is_empty()
            && !required.subjects.iter().any(|s| **s == *identity.subject)
        {
            return Err(self.insufficient(
                format!(
                    "this endpoint is only for {}; the caller is `{}`",
                    quoted(&required.subjects),
                    identity.subject
                ),
                &required.scopes.join(" "),
            ));
        }
        Ok(())
    }

    /// The scheme of `WWW-Authenticate` for this policy.
    fn scheme(&self) -> &'static str {
        match &self.rule {
            Rule::Open | Rule::ApiKey(_) => "ApiKey",
            Rule::Jwt(_) | Rule::Platform(_) | Rule::Unusable => "Bearer",
            Rule::Basic(_) => "Basic",
        }
    }

    /// A 401 with its challenge: `<scheme> realm="o/p"[, error="…"]`.
    fn challenge(&self, code: Code, message: String, error: Option<&str>) -> ApiError {
        let mut value = format!("{} realm=\"{}\"", self.scheme(), self.realm);
        match &self.rule {
            Rule::ApiKey(KeyPlace::Header(name)) => {
                value.push_str(&format!(", header=\"{name}\""));
            }
            Rule::ApiKey(KeyPlace::Query(name)) => {
                value.push_str(&format!(", query=\"{name}\""));
            }
            Rule::Basic(_) => value.push_str(", charset=\"UTF-8\""),
            _ => {}
        }
        if let Some(error) = error {
            value.push_str(&format!(", error=\"{error}\""));
        }
        with_challenge(ApiError::new(code, message), value)
    }

    /// A 403 `insufficient_scope`, naming the scopes the endpoint requires.
    fn insufficient(&self, message: String, scope: &str) -> ApiError {
        let mut value = format!(
            "{} realm=\"{}\", error=\"insufficient_scope\"",
            self.scheme(),
            self.realm
        );
        if !scope.is_empty() {
            value.push_str(&format!(", scope=\"{scope}\""));
        }
        with_challenge(ApiError::new(Code::InsufficientScope, message), value)
    }
}

/// The user and password of an `Authorization: Basic …` header (RFC 7617, UTF-8).
fn basic_credentials(head: &Parts) -> Option<(String, String)> {
    let value = head
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// A `basic` policy's users, and the pairs already verified (argon2id is slow on purpose:
/// a client that sends the same right password again must not pay for it each time).
#[derive(Debug)]
pub struct BasicRule {
    /// User name → argon2id hash.
    users: std::collections::HashMap<Box<str>, Box<str>>,
    /// SHA-256 of (salt, user, password) → user, for pairs verified by this policy.
    verified: parking_lot::Mutex<std::collections::HashMap<[u8; 32], Arc<str>>>,
    salt: [u8; 16],
    /// `owner/project`: failed attempts are counted per user of this project.
    mount: Box<str>,
}

/// Invalid keys or tokens one client address may send per minute before its requests wait.
pub const FAILURES_PER_MINUTE: u32 = 30;

/// Invalid credentials per client address: past [`FAILURES_PER_MINUTE`], an address's
/// requests are answered 429 without being checked until its wait is over. Costs one atomic
/// load per request while no address is held back.
#[derive(Debug)]
struct Failures {
    limiter: limit::Limiter,
    /// Addresses held back, until when.
    blocked: parking_lot::Mutex<std::collections::HashMap<IpAddr, std::time::Instant>>,
    held: std::sync::atomic::AtomicUsize,
}

impl Failures {
    fn new() -> Failures {
        Failures {
            limiter: limit::Limiter::new(&limit::RateLimit {
                requests: FAILURES_PER_MINUTE,
                per_secs: 60,
                burst: None,
                by: limit::By::Client,
            }),
            blocked: parking_lot::Mutex::new(std::collections::HashMap::new()),
            held: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How long `client` must still wait, if it is held back.
    #[inline]
    fn blocked(&self, client: IpAddr) -> Option<std::time::Duration> {
        use std::sync::atomic::Ordering;
        if self.held.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut blocked = self.blocked.lock();
        let until = *blocked.get(&client)?;
        let now = std::time::Instant::now();
        if until > now {
            return Some(until - now);
        }
        // Its wait is over; the others' are swept when the next address is held back.
        blocked.remove(&client);
        self.held.store(blocked.len(), Ordering::Relaxed);
        None
    }

    /// `error` as answered to `client`: an invalid credential is counted, and the one over
    /// the limit is a 429 that holds the address back.
    fn counted(&self, client: IpAddr, error: ApiError) -> ApiError {
        use std::sync::atomic::Ordering;
        if error.code != Code::InvalidToken {
            return error;
        }
        match self.limiter.check(None, client) {
            Ok(()) => error,
            Err(wait) => {
                let mut blocked = self.blocked.lock();
                let now = std::time::Instant::now();
                blocked.retain(|_, until| *until > now);
                if blocked.len() < 65_536 {
                    blocked.insert(client, now + wait);
                }
                self.held.store(blocked.len(), Ordering::Relaxed);
                too_many_failures(wait)
            }
        }
    }
}

fn too_many_failures(wait: std::time::Duration) -> ApiError {
    ApiError::retry_after(
        Code::TooManyRequests,
        "too many invalid credentials from this address; retry later",
        wait,
    )
}

/// How long a `platform` policy trusts a token it looked up, in seconds.
pub const PLATFORM_SEEN_SECS: u64 = 10;

/// A `platform` policy: who may call (any user, or the owner), and the tokens looked up
/// lately (SHA-256 → user, when).
#[derive(Debug)]
pub struct PlatformRule {
    owner: Option<Box<str>>,
    #[expect(clippy::type_complexity, reason = "one private map")]
    seen: parking_lot::Mutex<std::collections::HashMap<[u8; 32], (Arc<str>, std::time::Instant)>>,
}

impl PlatformRule {
    fn seen(&self, key: &[u8; 32]) -> Option<Arc<str>> {
        let seen = self.seen.lock();
        let (user, at) = seen.get(key)?;
        (at.elapsed().as_secs() < PLATFORM_SEEN_SECS).then(|| user.clone())
    }

    fn remember(&self, key: [u8; 32], user: Arc<str>) {
        let mut seen = self.seen.lock();
        if seen.len() >= REMEMBERED {
            seen.retain(|_, (_, at)| at.elapsed().as_secs() < PLATFORM_SEEN_SECS);
            if seen.len() >= REMEMBERED {
                seen.clear();
            }
        }
        seen.insert(key, (user, std::time::Instant::now()));
    }
}

/// Verified `basic` pairs, or looked-up `platform` tokens, a policy remembers at most.
const REMEMBERED: usize = 4096;

impl BasicRule {
    fn new(users: &[crate::model::BasicUser], mount: &str) -> BasicRule {
        let mut salt = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
        BasicRule {
            users: users
                .iter()
                .filter_map(|u| {
                    Some((
                        u.username.as_str().into(),
                        u.password_hash.as_deref()?.into(),
                    ))
                })
                .collect(),
            verified: parking_lot::Mutex::new(std::collections::HashMap::new()),
            salt,
            mount: mount.into(),
        }
    }

    fn seen_key(&self, user: &str, password: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(self.salt);
        hasher.update(user.as_bytes());
        hasher.update([0]);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    fn seen(&self, key: &[u8; 32]) -> Option<Arc<str>> {
        self.verified.lock().get(key).cloned()
    }

    fn remember(&self, key: [u8; 32], user: Arc<str>) {
        let mut verified = self.verified.lock();
        if verified.len() >= REMEMBERED {
            verified.clear();
        }
        verified.insert(key, user);
    }
}

/// The token of an `Authorization: Bearer …` header (the scheme in any case).
fn bearer(head: &Parts) -> Option<&str> {
    let value = head
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The client that fetches key sets (`jwks_url`): no redirects, its own timeouts per fetch.
fn jwks_client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    })
}

fn with_challenge(error: ApiError, value: String) -> ApiError {
    match HeaderValue::try_from(value) {
        Ok(value) => error.with_header(WWW_AUTHENTICATE, value),
        Err(_) => error,
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The raw value of the first parameter `name` in `query` (keys need no decoding: their
/// characters are all URL-safe).
fn query_value<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests;
