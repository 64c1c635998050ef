//! The `jwt` auth policy as users write it (JSON), and its validation.

use serde::{Deserialize, Serialize};

use super::jwk::{self, JwkSet};
use crate::error::FieldError;

/// The default clock leeway, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// The largest clock leeway a policy may give, in seconds.
pub const MAX_LEEWAY_SECS: u64 = 600;
/// The default floor on JWKS refetches, in seconds.
pub const DEFAULT_JWKS_REFRESH_MIN_SECS: u64 = 30;
/// The default JWKS fetch timeout, in milliseconds.
pub const DEFAULT_JWKS_TIMEOUT_MS: u64 = 3000;
/// The default age after which a fetched JWKS is due for a refetch, in seconds.
pub const DEFAULT_JWKS_MAX_AGE_SECS: u64 = 3600;
/// The shortest HMAC secret, in bytes (RFC 7518 §3.2 asks for at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;
/// The allowed JWKS fetch timeouts, in milliseconds.
pub const JWKS_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=30_000;
/// The allowed floor on JWKS refetches, in seconds.
pub const JWKS_REFRESH_MIN_SECS: std::ops::RangeInclusive<u64> = 1..=86_400;
/// The allowed JWKS maximum ages, in seconds.
pub const JWKS_MAX_AGE_SECS: std::ops::RangeInclusive<u64> = 60..=604_800;
/// The most audiences a policy may list.
pub const MAX_AUDIENCES: usize = 32;

/// A JWS signature algorithm a policy may accept. `none` is not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in declaration order.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The name used in a token's `alg` header and in policies (`RS256`, `EdDSA`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// The algorithm of an `alg` header value (exact, case-sensitive), if it is one of ours.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    /// Whether this is an HMAC algorithm (a shared secret rather than a public key).
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    pub(super) fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The accepted audience: one string or a list of strings, serialized back as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
#[derive(utoipa::ToSchema)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// The audiences as a slice.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Audience::One(one) => std::slice::from_ref(one),
            Audience::Many(many) => many,
        }
    }
}

/// A project's `jwt` auth policy: which tokens a project accepts.
///
/// HMAC policies (`HS*`) give a `secret`; public-key policies give their keys inline
/// (`jwks`, a JSON Web Key Set `{"keys": [...]}`) or a `jwks_url` fetched by the node. A
/// policy uses one kind only. [`JwtPolicy::validate`] checks everything serde cannot.
///
/// The secret is serialized (the admin API round-trips definitions); use
/// [`JwtPolicy::redacted`] before logging a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct JwtPolicy {
    /// The algorithms a token may be signed with; a token's `alg` must be one of them.
    pub algorithms: Vec<Algorithm>,
    /// The shared secret of `HS*` algorithms (at least 32 bytes, used as UTF-8 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// An inline JSON Web Key Set, `{"keys": [...]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where to fetch the JSON Web Key Set (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// The required `iss` claim.
    pub issuer: String,
    /// The accepted audiences: a token's `aud` must contain one of them.
    pub audience: Audience,
    /// Clock leeway for `exp`, `nbf` and `iat`, in seconds (at most 600).
    #[serde(default = "default_leeway")]
    #[schema(default = default_leeway)]
    pub leeway_secs: u64,
    /// The floor on JWKS refetches: never more often than this, in seconds.
    #[serde(default = "default_refresh_min")]
    #[schema(default = default_refresh_min)]
    pub jwks_refresh_min_secs: u64,
    /// The JWKS fetch timeout, in milliseconds.
    #[serde(default = "default_timeout")]
    #[schema(default = default_timeout)]
    pub jwks_timeout_ms: u64,
    /// The age after which a fetched JWKS is due for a refetch, in seconds.
    #[serde(default = "default_max_age")]
    #[schema(default = default_max_age)]
    pub jwks_max_age_secs: u64,
    /// Proxy endpoints send the verified `sub` to their upstream in this header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_header: Option<String>,
}

fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECS
}

fn default_refresh_min() -> u64 {
    DEFAULT_JWKS_REFRESH_MIN_SECS
}

fn default_timeout() -> u64 {
    DEFAULT_JWKS_TIMEOUT_MS
}

fn default_max_age() -> u64 {
    DEFAULT_JWKS_MAX_AGE_SECS
}

/// The placeholder [`JwtPolicy::redacted`] puts in place of the secret.
pub const REDACTED: &str = "<redacted>";

impl JwtPolicy {
    /// A copy fit for logs: the secret, if any, replaced by `"<redacted>"`.
    pub fn redacted(&self) -> JwtPolicy {
        JwtPolicy {
            secret: self.secret.as_ref().map(|_| REDACTED.to_owned()),
            ..self.clone()
        }
    }

    /// Whether the policy's algorithms are HMAC ones.
    pub fn is_hmac(&self) -> bool {
        self.algorithms.first().is_some_and(|alg| alg.is_hmac())
    }

    /// Checks what serde cannot, pushing one [`FieldError`] per bad field; `prefix` is the
    /// policy's place in the body including its dot (`auth.`), so errors name
    /// `auth.algorithms`, `auth.jwks.keys[2]` and so on. Messages never hold the secret.
    pub fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        let field = |name: &str| format!("{prefix}{name}");
        let hmac = self.algorithms.iter().any(|alg| alg.is_hmac());
        let public = self.algorithms.iter().any(|alg| !alg.is_hmac());
        if self.algorithms.is_empty() {
            errors.push(FieldError::new(
                field("algorithms"),
                "list at least one algorithm, such as RS256",
            ));
        } else if hmac && public {
            errors.push(FieldError::new(
                field("algorithms"),
                "do not mix HMAC (HS256, HS384, HS512) and public-key algorithms in one policy",
            ));
        } else if let Some(twice) = self
            .algorithms
            .iter()
            .enumerate()
            .find(|(index, alg)| self.algorithms[..*index].contains(alg))
        {
            errors.push(FieldError::new(
                field("algorithms"),
                format!("{} is listed twice", twice.1),
            ));
        }

        if hmac && !public {
            match &self.secret {
                None => errors.push(FieldError::new(
                    field("secret"),
                    format!("HMAC algorithms need a secret of at least {MIN_SECRET_BYTES} bytes"),
                )),
                Some(secret) if secret.len() < MIN_SECRET_BYTES => errors.push(FieldError::new(
                    field("secret"),
                    format!("the secret must be at least {MIN_SECRET_BYTES} bytes long"),
                )),
                Some(_) => {}
            }
            for (name, set) in [
                ("jwks", self.jwks.is_some()),
                ("jwks_url", self.jwks_url.is_some()),
            ] {
                if set {
                    errors.push(FieldError::new(
                        field(name),
                        "HMAC algorithms use the secret; remove the key set",
                    ));
                }
            }
        }

        if public && !hmac {
            if self.secret.is_some() {
                errors.push(FieldError::new(
                    field("secret"),
                    "only HMAC algorithms (HS256, HS384, HS512) use a secret",
                ));
            }
            match (&self.jwks, &self.jwks_url) {
                (None, None) => errors.push(FieldError::new(
                    field("jwks_url"),
                    "public-key algorithms need their keys: give jwks_url or an inline jwks",
                )),
                (Some(_), Some(_)) => errors.push(FieldError::new(
                    field("jwks_url"),
                    "give jwks or jwks_url, not both",
                )),
                (Some(jwks), None) => self.validate_jwks(jwks, &field("jwks"), errors),
                (None, Some(url)) => {
                    if let Err(message) = check_url(url) {
                        errors.push(FieldError::new(field("jwks_url"), message));
                    }
                }
            }
        }

        if self.issuer.is_empty() || self.issuer.len() > 1024 {
            errors.push(FieldError::new(
                field("issuer"),
                "give the issuer tokens must name in `iss` (1 to 1024 bytes)",
            ));
        }
        let audiences = self.audience.as_slice();
        if audiences.is_empty() || audiences.len() > MAX_AUDIENCES {
            errors.push(FieldError::new(
                field("audience"),
                format!("list 1 to {MAX_AUDIENCES} audiences"),
            ));
        }
        for (index, audience) in audiences.iter().enumerate().take(MAX_AUDIENCES) {
            if audience.is_empty() || audience.len() > 1024 {
                let name = match self.audience {
                    Audience::One(_) => field("audience"),
                    Audience::Many(_) => field(&format!("audience[{index}]")),
                };
                errors.push(FieldError::new(name, "an audience is 1 to 1024 bytes"));
            }
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            errors.push(FieldError::new(
                field("leeway_secs"),
                format!("at most {MAX_LEEWAY_SECS} seconds"),
            ));
        }
        for (name, value, range) in [
            ("jwks_timeout_ms", self.jwks_timeout_ms, JWKS_TIMEOUT_MS),
            (
                "jwks_refresh_min_secs",
                self.jwks_refresh_min_secs,
                JWKS_REFRESH_MIN_SECS,
            ),
            (
                "jwks_max_age_secs",
                self.jwks_max_age_secs,
                JWKS_MAX_AGE_SECS,
            ),
        ] {
            if !range.contains(&value) {
                errors.push(FieldError::new(
                    field(name),
                    format!("between {} and {}", range.start(), range.end()),
                ));
            }
        }
    }

    fn validate_jwks(&self, jwks: &serde_json::Value, field: &str, errors: &mut Vec<FieldError>) {
        let set = match JwkSet::parse_value(jwks) {
            Ok(set) => set,
            Err(message) => {
                errors.push(FieldError::new(field, message));
                return;
            }
        };
        if set.keys.is_empty() {
            errors.push(FieldError::new(
                format!("{field}.keys"),
                "list at least one key",
            ));
        }
        for (index, key) in set.keys.iter().enumerate() {
            if let Err(message) = jwk::check_inline(key, &self.algorithms) {
                errors.push(FieldError::new(format!("{field}.keys[{index}]"), message));
            }
        }
    }
}

/// Whether `url` is an absolute http or https URL with a host.
pub(super) fn check_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| "not a URL: write an absolute http or https URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("write an absolute http or https URL".to_owned());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the URL must not hold credentials".to_owned());
    }
    Ok(parsed)
}
