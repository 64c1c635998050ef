//! JWT verification for a project's `jwt` auth policy.
//!
//! A [`JwtPolicy`] is what a user writes (JSON); [`JwtPolicy::validate`] names each bad
//! field. [`Verifier::new`] compiles a valid policy once — HMAC keys, or the public keys
//! of an inline JSON Web Key Set by `kid` — and [`Verifier::verify`] checks a compact JWS
//! token synchronously, without a lock on the key set (an `ArcSwap`); a well-formed token
//! allocates nothing before its signature has been checked:
//!
//! 1. the token is split into three base64url parts (else [`Rejection::Malformed`]);
//! 2. a token seen before under the same key set is answered from the verified-token
//!    cache (whole token compared; `exp`, `nbf` and `iat` checked again against `now`);
//! 3. the header's `alg` must be one of the policy's algorithms — `none`, and an HMAC
//!    token sent to a public-key policy, are [`Reason::DisallowedAlgorithm`]; a `crit`
//!    header is refused;
//! 4. the key is the one named by `kid` (keys without a `kid` are tried when none has
//!    it; a token without `kid` tries up to four keys), of the algorithm's family, and the
//!    signature is checked with `ring`;
//! 5. only then are the claims parsed: `exp` is required and, with `nbf` and an `iat` in
//!    the future, checked with the policy's leeway; `iss` must equal the issuer, and `aud`
//!    (a string or an array) must hold one of the audiences.
//!
//! The result is a [`Verified`] (one `Arc`): subject, scopes (the space-separated `scope`
//! claim, or `scp` as an array or string), permissions (the `permissions` array) and all
//! claims. Messages never hold the token or key material; header values they quote (an
//! `alg`, a `kid`) are cut to printable ASCII.
//!
//! Keys by URL (`jwks_url`): [`Verifier::load`] fetches the set before returning;
//! [`Verifier::refresh`] fetches again (async, `reqwest`, the policy's timeout), never
//! more often than `jwks_refresh_min_secs` — concurrent callers share one fetch — and
//! swaps the new set in; a failed fetch keeps the old set and is remembered
//! ([`Verifier::last_jwks_error`]). The caller refreshes when a rejection
//! [`needs_refresh`](Rejection::needs_refresh) (a `kid` not in the set) and then verifies
//! again, and when [`Verifier::jwks_due`] says the set is older than `jwks_max_age_secs`.
//!
//! Why not `jsonwebtoken`: its v10 `CryptoProvider` is one process-wide default
//! (`install_default` succeeds once per process), its claim checks read the system clock
//! themselves (here `verify` takes `now`, so tests and the pipeline's coarse clock decide),
//! `decode` builds a boxed verifier and decodes the signature into a `Vec` per token and
//! deserializes the claims twice, and nothing checks an `iat` in the future; its bundled
//! backends are aws-lc (another C library) or RustCrypto (4–6 times slower than `ring`,
//! which rustls already brings). The compact form and the registered claims are small
//! enough to check here, with the tests beside this module.

mod cache;
mod jwk;
mod jwks;
mod policy;
mod token;

#[cfg(test)]
mod jwks_tests;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use serde_json::{Map, Value};

use crate::error::FieldError;
use cache::Cache;
use jwk::Key;
pub use jwks::JwksError;
use jwks::Remote;
pub use policy::{
    Algorithm, Audience, DEFAULT_JWKS_MAX_AGE_SECS, DEFAULT_JWKS_REFRESH_MIN_SECS,
    DEFAULT_JWKS_TIMEOUT_MS, DEFAULT_LEEWAY_SECS, JwtPolicy, MAX_LEEWAY_SECS, MIN_SECRET_BYTES,
    REDACTED,
};

/// The most keys a token without `kid` is tried against.
const MAX_KEYS_TRIED: usize = 4;

/// Why a token was refused. Messages never hold the token or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not three base64url parts, or a header or payload that is not the JSON expected.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    /// A well-formed token that does not pass.
    #[error("{0}")]
    Invalid(Reason),
}

impl Rejection {
    /// Whether a JWKS refresh may help: the token names a key the set does not hold and
    /// the policy's keys come from a URL. Refresh, then verify again.
    pub fn needs_refresh(&self) -> bool {
        matches!(
            self,
            Rejection::Invalid(Reason::UnknownKid {
                refreshable: true,
                ..
            })
        )
    }
}

/// Why a well-formed token does not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// `exp` is past (beyond the leeway).
    #[error("the token expired")]
    Expired,
    /// `nbf`, or `iat`, is in the future (beyond the leeway).
    #[error("the token is not yet valid")]
    NotYetValid,
    /// The token has no `exp` claim.
    #[error("the token has no expiry (`exp`)")]
    MissingExpiry,
    /// `iss` is missing or not the policy's issuer.
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    /// `aud` is missing or holds none of the policy's audiences.
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// The signature does not verify with the key (or the key is not of the alg's family).
    #[error("the token's signature is invalid")]
    BadSignature,
    /// The header's `alg` (printable ASCII, cut short) is not one the policy accepts.
    #[error("the token's algorithm `{0}` is not accepted")]
    DisallowedAlgorithm(Box<str>),
    /// No key has the header's `kid` (printable ASCII, cut short; empty without a `kid`);
    /// `refreshable` when the policy's keys come from a URL.
    #[error("the token's signing key `{kid}` is unknown")]
    UnknownKid { kid: Box<str>, refreshable: bool },
}

/// What a verified token says. Cheap to clone (one `Arc`); derefs to [`VerifiedToken`].
#[derive(Debug, Clone)]
pub struct Verified(Arc<VerifiedToken>);

impl std::ops::Deref for Verified {
    type Target = VerifiedToken;

    fn deref(&self) -> &VerifiedToken {
        &self.0
    }
}

/// The claims of a verified token, and the parts a policy looks at.
#[derive(Debug)]
pub struct VerifiedToken {
    /// `sub`, when it is a string.
    pub subject: Option<Arc<str>>,
    /// The space-separated `scope` claim; without it, `scp` (an array, or a string).
    pub scopes: Box<[Box<str>]>,
    /// The `permissions` array claim (its strings).
    pub permissions: Box<[Box<str>]>,
    /// Every claim.
    pub claims: Map<String, Value>,
    /// `exp`, in seconds since the epoch.
    pub expires_at: u64,
    /// The later of `nbf` and `iat` (0 without them).
    valid_from: u64,
}

impl VerifiedToken {
    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|one| **one == *scope)
    }

    /// Whether the token holds `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|one| **one == *permission)
    }
}

/// Why a policy could not be compiled or its keys loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The policy does not validate (the fields are named without a prefix).
    #[error("the jwt policy is invalid: {}", describe(.0))]
    Policy(Vec<FieldError>),
    /// The first fetch of the policy's `jwks_url` failed.
    #[error(transparent)]
    Jwks(#[from] JwksError),
}

fn describe(errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|error| format!("{}: {}", error.field, error.message))
        .collect();
    parts.join("; ")
}

/// A key set in use: its keys and its generation (cache entries of another generation are
/// not trusted); `fetched` is when a remote set was fetched.
pub(super) struct KeySet {
    keys: Box<[Key]>,
    generation: u64,
    fetched: Option<Instant>,
}

enum Keys {
    /// The policy's HMAC keys, by algorithm (`HS256`, `HS384`, `HS512`).
    Hmac(Box<[Option<ring::hmac::Key>; 3]>),
    /// Public keys, inline (`remote` is `None`) or fetched from a URL.
    Public {
        set: ArcSwap<KeySet>,
        remote: Option<Box<Remote>>,
    },
}

/// A compiled `jwt` policy: verifies tokens synchronously, caching the verified ones.
pub struct Verifier {
    /// The policy's algorithms, one bit each ([`Algorithm::bit`]).
    allowed: u16,
    keys: Keys,
    issuer: Box<str>,
    audiences: Box<[Box<str>]>,
    leeway: u64,
    cache: Cache,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Compiles `policy` (validating it first). Keys from a `jwks_url` are not fetched:
    /// the set starts empty (every token [`needs_refresh`](Rejection::needs_refresh))
    /// until [`Verifier::refresh`]; [`Verifier::load`] does both.
    pub fn new(policy: &JwtPolicy) -> Result<Verifier, JwtError> {
        let mut errors = Vec::new();
        policy.validate("", &mut errors);
        if !errors.is_empty() {
            return Err(JwtError::Policy(errors));
        }
        let allowed = policy
            .algorithms
            .iter()
            .fold(0, |bits, alg| bits | alg.bit());
        let keys = if policy.is_hmac() {
            let secret = policy.secret.as_deref().unwrap_or_default().as_bytes();
            let key = |alg: Algorithm, hmac: ring::hmac::Algorithm| {
                policy
                    .algorithms
                    .contains(&alg)
                    .then(|| ring::hmac::Key::new(hmac, secret))
            };
            Keys::Hmac(Box::new([
                key(Algorithm::HS256, ring::hmac::HMAC_SHA256),
                key(Algorithm::HS384, ring::hmac::HMAC_SHA384),
                key(Algorithm::HS512, ring::hmac::HMAC_SHA512),
            ]))
        } else {
            let (keys, remote) = match (&policy.jwks, &policy.jwks_url) {
                (Some(jwks), _) => {
                    let keys =
                        jwk::compile_inline(jwks, &policy.algorithms).map_err(|message| {
                            JwtError::Policy(vec![FieldError::new("jwks", message)])
                        })?;
                    (keys, None)
                }
                (None, Some(_)) => (
                    Vec::new(),
                    Some(Remote::new(policy).map(Box::new).map_err(|message| {
                        JwtError::Policy(vec![FieldError::new("jwks_url", message)])
                    })?),
                ),
                (None, None) => (Vec::new(), None),
            };
            Keys::Public {
                set: ArcSwap::from_pointee(KeySet {
                    keys: keys.into_boxed_slice(),
                    generation: 0,
                    fetched: None,
                }),
                remote,
            }
        };
        Ok(Verifier {
            allowed,
            keys,
            issuer: policy.issuer.as_str().into(),
            audiences: policy
                .audience
                .as_slice()
                .iter()
                .map(|one| one.as_str().into())
                .collect(),
            leeway: policy.leeway_secs,
            cache: Cache::new(),
        })
    }

    /// [`Verifier::new`], then the first fetch of a `jwks_url` (an error if it fails).
    pub async fn load(policy: &JwtPolicy, client: &reqwest::Client) -> Result<Verifier, JwtError> {
        let verifier = Verifier::new(policy)?;
        if verifier.remote().is_some() {
            verifier.refresh(client).await?;
        }
        Ok(verifier)
    }

    fn remote(&self) -> Option<&Remote> {
        match &self.keys {
            Keys::Public { remote, .. } => remote.as_deref(),
            Keys::Hmac(_) => None,
        }
    }

    /// Verifies `token` (without the `Bearer ` prefix) at `now_secs` (seconds since the
    /// epoch). Synchronous; no lock but a cache shard's, held for a comparison.
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Verified, Rejection> {
        let parts = token::split(token)?;
        // Read before `check` loads the set: a token checked under a set swapped in
        // meanwhile is cached under the older generation, a miss, never the reverse.
        let generation = self.generation();
        if let Some(hit) = self.cache.get(token, generation) {
            token::check_window(hit.expires_at, hit.valid_from, now_secs, self.leeway)?;
            return Ok(hit);
        }
        let verified = self.check(&parts, now_secs)?;
        self.cache.insert(token, generation, verified.clone());
        Ok(verified)
    }

    /// [`Verifier::verify`] without the verified-token cache (neither read nor filled):
    /// for measurements.
    #[doc(hidden)]
    pub fn verify_uncached(&self, token: &str, now_secs: u64) -> Result<Verified, Rejection> {
        self.check(&token::split(token)?, now_secs)
    }

    /// The generation of the key set in use (0 for HMAC keys).
    fn generation(&self) -> u64 {
        match &self.keys {
            Keys::Public { set, .. } => set.load().generation,
            Keys::Hmac(_) => 0,
        }
    }

    /// The full check of a token not found in the cache.
    fn check(&self, parts: &token::Parts<'_>, now_secs: u64) -> Result<Verified, Rejection> {
        let mut header_buffer = [0u8; token::HEADER_BUFFER];
        let header = token::decode_header(parts.header, &mut header_buffer)?;
        let header = token::parse_header(header)?;
        let alg = Algorithm::from_name(&header.alg)
            .filter(|alg| self.allowed & alg.bit() != 0)
            .ok_or_else(|| {
                Rejection::Invalid(Reason::DisallowedAlgorithm(token::printable(
                    &header.alg,
                    16,
                )))
            })?;
        if header.crit.is_some() {
            return Err(Rejection::Malformed(
                "critical header extensions are not supported",
            ));
        }
        let mut signature_buffer = [0u8; token::SIGNATURE_BUFFER];
        let signature = token::decode_signature(parts.signature, &mut signature_buffer)?;
        let message = parts.signed.as_bytes();

        let good = match &self.keys {
            Keys::Hmac(keys) => {
                let key = match alg {
                    Algorithm::HS256 => keys[0].as_ref(),
                    Algorithm::HS384 => keys[1].as_ref(),
                    Algorithm::HS512 => keys[2].as_ref(),
                    _ => None,
                };
                key.is_some_and(|key| ring::hmac::verify(key, message, signature).is_ok())
            }
            Keys::Public { set, remote } => self.verify_public(
                &set.load(),
                remote.is_some(),
                header.kid.as_deref(),
                alg,
                message,
                signature,
            )?,
        };
        if !good {
            return Err(Rejection::Invalid(Reason::BadSignature));
        }

        let claims = token::parse_claims(parts.payload)?;
        let times = token::check_times(&claims, now_secs, self.leeway)?;
        token::check_issuer(&claims, &self.issuer)?;
        token::check_audience(&claims, &self.audiences)?;
        Ok(Verified(Arc::new(token::identity(claims, times))))
    }

    fn verify_public(
        &self,
        set: &KeySet,
        refreshable: bool,
        kid: Option<&str>,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, Rejection> {
        let unknown = || {
            Rejection::Invalid(Reason::UnknownKid {
                kid: token::printable(kid.unwrap_or_default(), 64),
                refreshable,
            })
        };
        let named = |key: &&Key| kid.is_some() && key.kid.as_deref() == kid;
        if let Some(kid) = kid
            && set.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
        {
            // The key named: it must be of the alg's family.
            return Ok(set
                .keys
                .iter()
                .filter(named)
                .filter(|key| key.fits(alg))
                .any(|key| key.verify(alg, message, signature)));
        }
        // No key of that name (or no name): keys without a `kid` (any key, for a token
        // without one) of the alg's family, a few at most.
        let mut candidates = set
            .keys
            .iter()
            .filter(|key| (kid.is_none() || key.kid.is_none()) && key.fits(alg))
            .take(MAX_KEYS_TRIED)
            .peekable();
        if candidates.peek().is_none() {
            return Err(unknown());
        }
        Ok(candidates.any(|key| key.verify(alg, message, signature)))
    }

    /// Fetches the policy's `jwks_url` again and swaps the new key set in, unless it was
    /// fetched less than `jwks_refresh_min_secs` ago (then the last fetch's outcome is
    /// returned); callers arriving during a fetch wait for it and share its outcome. On
    /// failure the current set stays. Without a `jwks_url`, does nothing.
    ///
    /// The URL is the project owner's: `client`'s redirect, proxy and resolver settings
    /// are what keeps the fetch away from addresses the node must not reach.
    /// Makes the key set look fetched `by` earlier than it was (tests of refresh by age).
    #[cfg(test)]
    pub(crate) fn age_keys(&self, by: std::time::Duration) {
        if let Keys::Public { set, .. } = &self.keys {
            let now = set.load();
            set.store(Arc::new(KeySet {
                keys: now.keys.clone(),
                generation: now.generation,
                fetched: now.fetched.and_then(|at| at.checked_sub(by)),
            }));
        }
    }

    pub async fn refresh(&self, client: &reqwest::Client) -> Result<(), JwksError> {
        let Keys::Public {
            set,
            remote: Some(remote),
        } = &self.keys
        else {
            return Ok(());
        };
        remote
            .refresh(client, |keys, fetched| {
                let generation = set.load().generation + 1;
                set.store(Arc::new(KeySet {
                    keys: keys.into_boxed_slice(),
                    generation,
                    fetched: Some(fetched),
                }));
            })
            .await
    }

    /// Whether the fetched key set is due for a refresh: never fetched successfully, or
    /// older than `jwks_max_age_secs`. Always `false` without a `jwks_url`.
    pub fn jwks_due(&self) -> bool {
        match &self.keys {
            Keys::Public {
                set,
                remote: Some(remote),
            } => set
                .load()
                .fetched
                .is_none_or(|fetched| fetched.elapsed() >= remote.max_age()),
            _ => false,
        }
    }

    /// The error of the last JWKS fetch, if it failed.
    pub fn last_jwks_error(&self) -> Option<JwksError> {
        self.remote().and_then(Remote::last_error)
    }
}
