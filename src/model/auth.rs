//! Per-project auth as users write it (docs/auth.md): a project's `auth` policy — who may
//! call it — and an endpoint's `auth` — what a caller must hold to call that endpoint, or
//! `public` for anyone. Checked on every request by the pipeline's policy stage
//! (`pipeline::policy`); API keys themselves are made through the admin API, never written
//! in a definition.

use serde::{Deserialize, Serialize};

pub use crate::auth::cors::CorsPolicy;
pub use crate::auth::jwt::JwtPolicy;
pub use crate::auth::limit::RateLimit;
use crate::error::FieldError;
use crate::observe::logs::is_secret_name;

/// The header an `api_key` policy reads when it names neither a header nor a query
/// parameter.
pub const DEFAULT_KEY_HEADER: &str = "x-api-key";

/// Who may call a project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub enum AuthPolicy {
    /// Anyone: requests are never inspected, their credentials pass through untouched.
    #[default]
    None,
    /// An API key made through the admin API, in a header (default `x-api-key`) or a query
    /// parameter.
    ApiKey {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
        /// Proxy endpoints send the verified caller's subject to their upstream in this
        /// header (replacing any the caller sent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject_header: Option<String>,
    },
    /// A bearer JSON Web Token, verified against a shared secret (HS*) or public keys
    /// (a JWKS inline or by URL), with its issuer and audience.
    Jwt(JwtPolicy),
    /// Switchyard's own users, by a platform token (`/auth/login`, `/auth/tokens`): any of
    /// them, or only the project's owner.
    Platform {
        #[serde(default)]
        owner_only: bool,
    },
    /// HTTP Basic: user names and passwords, kept as argon2id hashes.
    Basic {
        /// The `realm` of the challenge; the project's mount without it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        realm: Option<String>,
        users: Vec<BasicUser>,
    },
}

/// A user of a `basic` policy. Written with its `password`, which the admin API hashes
/// (argon2id) before anything is stored; read back, and stored, as `password_hash` only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    pub username: String,
    /// Taken in, never shown or stored: the admin API and a folder node replace it with
    /// `password_hash` before anything is kept, so only a client's own definition (a folder
    /// being pushed) serializes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

/// [`BasicUser`]'s schema by hand (platform API docs): serde only reads `password`, so a
/// derived schema would leave out the one field users write.
impl utoipa::PartialSchema for BasicUser {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .description(Some(
                "A user of a `basic` policy: written with its `password`, which is hashed \
                 (argon2id) before anything is stored; read back with its `password_hash` only.",
            ))
            .property("username", text("1 to 64 characters, without `:`."))
            .required("username")
            .property(
                "password",
                text("1 to 1024 bytes; taken in, never shown or stored.")
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
                    .write_only(true),
            )
            .property(
                "password_hash",
                text("An argon2id hash in PHC form, as read back; send `password` instead to have one made."),
            )
            .into()
    }
}

impl utoipa::ToSchema for BasicUser {}

/// The most users a `basic` policy may list.
pub const MAX_BASIC_USERS: usize = 100;

impl AuthPolicy {
    pub fn is_none(&self) -> bool {
        matches!(self, AuthPolicy::None)
    }

    /// The policy's name, as its `type` gives it.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthPolicy::None => "none",
            AuthPolicy::ApiKey { .. } => "api_key",
            AuthPolicy::Jwt(_) => "jwt",
            AuthPolicy::Basic { .. } => "basic",
            AuthPolicy::Platform { .. } => "platform",
        }
    }

    /// Every problem of this policy, each naming its field under `prefix` (`auth.`).
    pub fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        match self {
            AuthPolicy::None | AuthPolicy::Platform { .. } => {}
            AuthPolicy::Jwt(policy) => {
                policy.validate(prefix, errors);
                check_subject_header(policy.subject_header.as_deref(), prefix, errors);
            }
            AuthPolicy::Basic { realm, users } => {
                if realm.as_deref().is_some_and(|r| {
                    r.is_empty()
                        || r.len() > 128
                        || r.contains(['"', '\\'])
                        || r.chars().any(char::is_control)
                }) {
                    errors.push(FieldError::new(
                        format!("{prefix}realm"),
                        "1 to 128 characters, without quotes, backslashes or control characters",
                    ));
                }
                if users.is_empty() || users.len() > MAX_BASIC_USERS {
                    errors.push(FieldError::new(
                        format!("{prefix}users"),
                        format!("list 1 to {MAX_BASIC_USERS} users"),
                    ));
                }
                for (i, user) in users.iter().enumerate() {
                    let at = |field: &str| format!("{prefix}users[{i}].{field}");
                    if user.username.is_empty()
                        || user.username.len() > 64
                        || user.username.contains(':')
                        || user.username.chars().any(char::is_control)
                    {
                        errors.push(FieldError::new(
                            at("username"),
                            "1 to 64 characters, without `:` or control characters",
                        ));
                    } else if users[..i].iter().any(|u| u.username == user.username) {
                        errors.push(FieldError::new(at("username"), "is listed twice"));
                    }
                    match (&user.password, &user.password_hash) {
                        (Some(password), None) => {
                            if password.is_empty() || password.len() > 1024 {
                                errors.push(FieldError::new(at("password"), "1 to 1024 bytes"));
                            }
                        }
                        (None, Some(hash)) => {
                            let argon2id = argon2::PasswordHash::new(hash)
                                .is_ok_and(|h| h.algorithm.as_str() == "argon2id");
                            if !argon2id {
                                errors.push(FieldError::new(
                                    at("password_hash"),
                                    "an argon2id hash in PHC form (`$argon2id$…`); send `password` to have one made",
                                ));
                            }
                        }
                        _ => errors.push(FieldError::new(
                            at("password"),
                            "give the user's `password` (or a `password_hash` read back earlier), one of the two",
                        )),
                    }
                }
            }
            AuthPolicy::ApiKey {
                header,
                query,
                subject_header,
            } => {
                check_subject_header(subject_header.as_deref(), prefix, errors);
                if header.is_some() && query.is_some() {
                    errors.push(FieldError::new(
                        format!("{prefix}query"),
                        "give the key's `header` or its `query` parameter, not both",
                    ));
                }
                if let Some(header) = header {
                    let lower = header.to_ascii_lowercase();
                    let message = if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                        Some(format!("`{header}` is not a header name"))
                    } else if matches!(
                        lower.as_str(),
                        "authorization"
                            | "proxy-authorization"
                            | "cookie"
                            | "host"
                            | "content-length"
                    ) {
                        Some(format!(
                            "`{header}` cannot carry an API key; use a header of its own such as `x-api-key`"
                        ))
                    } else if !is_secret_name(header) {
                        Some(format!(
                            "`{header}` does not look like a credential's name, so logs and journals would show the key: name it with `key`, `token` or `secret` (`x-api-key`)"
                        ))
                    } else {
                        None
                    };
                    if let Some(message) = message {
                        errors.push(FieldError::new(format!("{prefix}header"), message));
                    }
                }
                if let Some(query) = query
                    && (query.is_empty() || query.len() > 64)
                {
                    errors.push(FieldError::new(
                        format!("{prefix}query"),
                        "a query parameter name of 1 to 64 bytes",
                    ));
                } else if let Some(query) = query
                    && !is_secret_name(query)
                {
                    errors.push(FieldError::new(
                        format!("{prefix}query"),
                        format!("`{query}` does not look like a credential's name, so logs and journals would show the key: name it with `key` or `token` (`api_key`)"),
                    ));
                }
            }
        }
    }
}

/// What a caller must hold to call one endpoint, under its project's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct EndpointAuth {
    /// Anyone may call it: no credentials are asked for, and the caller's own
    /// (`Authorization`, cookies) pass through untouched.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
    /// Every one of these scopes (an API key's `scopes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Every one of these permissions (a JWT's `permissions` claim; an API key has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// Only these subjects (an API key's name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

impl EndpointAuth {
    /// Every problem, each naming its field under `prefix` (`auth.`).
    pub fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        if self.public && self.restricts() {
            errors.push(FieldError::new(
                format!("{prefix}public"),
                "a public endpoint asks for nothing: leave out `scopes`, `permissions` and `subjects`",
            ));
        }
        for (field, list) in [
            ("scopes", &self.scopes),
            ("permissions", &self.permissions),
            ("subjects", &self.subjects),
        ] {
            if list.len() > 64 || list.iter().any(|s| s.is_empty() || s.len() > 256) {
                errors.push(FieldError::new(
                    format!("{prefix}{field}"),
                    "at most 64 entries of 1 to 256 bytes",
                ));
            } else if field == "scopes" && list.iter().any(|s| s.contains(char::is_whitespace)) {
                errors.push(FieldError::new(
                    format!("{prefix}{field}"),
                    "a scope has no spaces",
                ));
            }
        }
    }

    /// Whether anything beyond a valid credential is asked for.
    pub fn restricts(&self) -> bool {
        !self.scopes.is_empty() || !self.permissions.is_empty() || !self.subjects.is_empty()
    }
}

/// A `subject_header` must be a header name of its own: not one that means something to
/// HTTP or that carries credentials.
fn check_subject_header(name: Option<&str>, prefix: &str, errors: &mut Vec<FieldError>) {
    let Some(name) = name else { return };
    let lower = name.to_ascii_lowercase();
    let reserved = matches!(
        lower.as_str(),
        "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "upgrade"
            | "te"
            | "trailer"
            | "keep-alive"
            | "authorization"
            | "proxy-authorization"
            | "cookie"
    ) || lower.starts_with("x-forwarded-")
        || lower == "x-request-id";
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() || reserved {
        errors.push(FieldError::new(
            format!("{prefix}subject_header"),
            format!("`{name}` cannot carry the subject; use a header of its own such as `x-switchyard-subject`"),
        ));
    }
}

/// Names of API keys follow the project name rules.
pub fn check_key_name(name: &str) -> Result<(), String> {
    super::check_backend_name(name).map_err(|_| {
        "a key name is 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
            .into()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn policies_read_and_write_by_type() {
        let policy: AuthPolicy = serde_json::from_value(json!({"type": "api_key"})).unwrap();
        assert_eq!(
            policy,
            AuthPolicy::ApiKey {
                header: None,
                query: None,
                subject_header: None,
            }
        );
        assert_eq!(
            serde_json::to_value(&policy).unwrap(),
            json!({"type": "api_key"})
        );
        let none: AuthPolicy = serde_json::from_value(json!({"type": "none"})).unwrap();
        assert!(none.is_none());
        assert!(
            serde_json::from_value::<AuthPolicy>(json!({"type": "api_key", "heder": "x"})).is_err()
        );
        assert!(serde_json::from_value::<AuthPolicy>(json!({"type": "magic"})).is_err());
    }

    #[test]
    fn bad_policies_name_their_fields() {
        let check = |policy: AuthPolicy| {
            let mut errors = Vec::new();
            policy.validate("auth.", &mut errors);
            errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        let key = |header: Option<&str>, query: Option<&str>| AuthPolicy::ApiKey {
            header: header.map(str::to_owned),
            query: query.map(str::to_owned),
            subject_header: None,
        };
        let forward = |name: &str| AuthPolicy::ApiKey {
            header: None,
            query: None,
            subject_header: Some(name.into()),
        };
        assert!(check(forward("x-switchyard-subject")).is_empty());
        assert_eq!(check(forward("host")), ["auth.subject_header"]);
        assert_eq!(check(forward("X-Forwarded-For")), ["auth.subject_header"]);
        assert_eq!(check(forward("bad name")), ["auth.subject_header"]);
        assert!(check(key(None, None)).is_empty());
        assert!(check(key(Some("x-key"), None)).is_empty());
        assert!(check(key(Some("X-Shop-Token"), None)).is_empty());
        assert_eq!(check(key(Some("x-key"), Some("api_key"))), ["auth.query"]);
        assert_eq!(check(key(Some("bad header"), None)), ["auth.header"]);
        assert_eq!(check(key(Some("Authorization"), None)), ["auth.header"]);
        assert_eq!(check(key(None, Some(""))), ["auth.query"]);
        assert_eq!(check(key(Some("x-client"), None)), ["auth.header"]);
        assert_eq!(check(key(None, Some("page"))), ["auth.query"]);
        assert!(check(key(None, Some("api_key"))).is_empty());
    }

    #[test]
    fn endpoint_auth_is_checked() {
        let check = |auth: EndpointAuth| {
            let mut errors = Vec::new();
            auth.validate("auth.", &mut errors);
            errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert!(check(EndpointAuth::default()).is_empty());
        let public_with_scopes = EndpointAuth {
            public: true,
            scopes: vec!["read".into()],
            ..EndpointAuth::default()
        };
        assert_eq!(check(public_with_scopes), ["auth.public"]);
        let spaced = EndpointAuth {
            scopes: vec!["read write".into()],
            ..EndpointAuth::default()
        };
        assert_eq!(check(spaced), ["auth.scopes"]);
    }
}
