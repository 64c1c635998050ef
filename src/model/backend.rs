//! Backends and proxy endpoints as users write them: a backend is a named group of upstream
//! targets with a balancing policy and timeouts; a proxy endpoint forwards to one backend
//! of its project. Validation only, no IO: the live side (pools, health) is `backends`.

use serde::{Deserialize, Serialize};

use super::FieldError;

/// The most backends one project may define.
pub const MAX_BACKENDS: usize = 64;
/// The most target URLs one backend may list.
pub const MAX_URLS: usize = 64;
/// The longest connect or response timeout a backend may ask for: ten minutes.
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// A named group of upstream targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct Backend {
    /// Unique in its project; may be left out where the name is given by the URL.
    #[serde(default)]
    pub name: String,
    /// Targets: absolute `http://` URLs, each with an optional base path. Empty for a
    /// Docker backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Targets found in the Docker engine instead: running containers with these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerSelector>,
    #[serde(default)]
    pub policy: Balance,
    /// How long connecting to a target may take.
    #[serde(default = "default_connect_timeout")]
    #[schema(default = default_connect_timeout)]
    pub connect_timeout_ms: u64,
    /// How long a target may take to send its response head once the request is sent.
    #[serde(default = "default_timeout")]
    #[schema(default = default_timeout)]
    pub timeout_ms: u64,
    /// Active health checks: every target probed with `GET path` every interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

impl Backend {
    /// A backend of these targets with the default policy and timeouts.
    pub fn with_urls(name: String, urls: Vec<String>) -> Backend {
        Backend {
            name,
            urls,
            docker: None,
            policy: Balance::default(),
            connect_timeout_ms: default_connect_timeout(),
            timeout_ms: default_timeout(),
            health_check: None,
        }
    }
}

fn default_connect_timeout() -> u64 {
    5_000
}

fn default_timeout() -> u64 {
    60_000
}

/// The containers a Docker backend sends to: every running (and, with a health check,
/// healthy) container that carries each of `match_labels` (`key=value`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct DockerSelector {
    pub match_labels: Vec<String>,
}

/// The most labels a Docker selector may require.
pub const MAX_LABELS: usize = 32;

impl DockerSelector {
    /// The labels as `(key, value)` pairs; a label without `=` requires an empty value.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.match_labels
            .iter()
            .map(|label| label.split_once('=').unwrap_or((label.as_str(), "")))
    }

    fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        if self.match_labels.is_empty() || self.match_labels.len() > MAX_LABELS {
            errors.push(FieldError::new(
                format!("{prefix}match_labels"),
                format!("list 1 to {MAX_LABELS} labels, each `key=value`"),
            ));
        }
        for (index, label) in self.match_labels.iter().enumerate().take(MAX_LABELS) {
            let key = label.split_once('=').map_or("", |(key, _)| key);
            if key.is_empty() || label.len() > 1024 || label.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    format!("{prefix}match_labels[{index}]"),
                    format!("`{label}` is not a label selector; write `key=value`"),
                ));
            }
        }
    }
}

/// The shortest and longest probe interval or probe timeout, in milliseconds.
pub const HEALTH_CHECK_MS: std::ops::RangeInclusive<u64> = 100..=600_000;
/// The fewest and most consecutive probe results that turn a target down or up.
pub const HEALTH_CHECK_THRESHOLD: std::ops::RangeInclusive<u32> = 1..=10;
/// The longest health check path.
pub const MAX_HEALTH_CHECK_PATH: usize = 1024;

/// A backend's active health check: each target gets `GET path` every `interval_ms`; an
/// answer of 2xx or 3xx within `timeout_ms` is a success, anything else a failure. After
/// `unhealthy_after` failures in a row a target is down, and stays down until
/// `healthy_after` successes in a row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct HealthCheck {
    /// The path (and query) probed, at the root of each target: a URL's base path is not
    /// put in front of it.
    pub path: String,
    #[serde(default = "default_check_interval")]
    #[schema(default = default_check_interval)]
    pub interval_ms: u64,
    #[serde(default = "default_check_timeout")]
    #[schema(default = default_check_timeout)]
    pub timeout_ms: u64,
    #[serde(default = "default_unhealthy_after")]
    #[schema(default = default_unhealthy_after)]
    pub unhealthy_after: u32,
    #[serde(default = "default_healthy_after")]
    #[schema(default = default_healthy_after)]
    pub healthy_after: u32,
}

fn default_check_interval() -> u64 {
    5_000
}

fn default_check_timeout() -> u64 {
    1_000
}

fn default_unhealthy_after() -> u32 {
    3
}

fn default_healthy_after() -> u32 {
    1
}

impl HealthCheck {
    /// A check of `path` with the default interval, timeout and thresholds.
    pub fn of_path(path: impl Into<String>) -> HealthCheck {
        HealthCheck {
            path: path.into(),
            interval_ms: default_check_interval(),
            timeout_ms: default_check_timeout(),
            unhealthy_after: default_unhealthy_after(),
            healthy_after: default_healthy_after(),
        }
    }

    fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        let field = |name: &str| format!("{prefix}{name}");
        let path_ok = self.path.starts_with('/')
            && self.path.len() <= MAX_HEALTH_CHECK_PATH
            && !self.path.contains('#')
            && self.path.parse::<http::uri::PathAndQuery>().is_ok();
        if !path_ok {
            errors.push(FieldError::new(
                field("path"),
                format!(
                    "`{}` is not a health check path: write a path starting with `/` (at most {MAX_HEALTH_CHECK_PATH} characters, no spaces or fragment), like `/healthz`",
                    self.path
                ),
            ));
        }
        for (name, value) in [
            ("interval_ms", self.interval_ms),
            ("timeout_ms", self.timeout_ms),
        ] {
            if !HEALTH_CHECK_MS.contains(&value) {
                errors.push(FieldError::new(
                    field(name),
                    format!(
                        "must be from {} to {}",
                        HEALTH_CHECK_MS.start(),
                        HEALTH_CHECK_MS.end()
                    ),
                ));
            }
        }
        for (name, value) in [
            ("unhealthy_after", self.unhealthy_after),
            ("healthy_after", self.healthy_after),
        ] {
            if !HEALTH_CHECK_THRESHOLD.contains(&value) {
                errors.push(FieldError::new(
                    field(name),
                    format!(
                        "must be from {} to {} probes in a row",
                        HEALTH_CHECK_THRESHOLD.start(),
                        HEALTH_CHECK_THRESHOLD.end()
                    ),
                ));
            }
        }
    }
}

/// How a backend picks one of its healthy targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum Balance {
    #[default]
    Random,
    RoundRobin,
}

/// A proxy endpoint: forward to `backend`, without (`strip_prefix`) or with the endpoint's
/// own path in front of the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct ProxySpec {
    pub backend: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strip_prefix: bool,
}

/// Backend names follow the project name rules: 1–64 of `[a-z0-9_-]`, starting with a
/// letter or digit.
pub fn check_backend_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err("a backend name is 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit".into())
    }
}

/// Checks one target URL: absolute `http://`, a host, no user info, query or fragment.
pub fn check_target_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(
                "https upstreams are not supported yet: give an http:// URL (a TLS-terminating sidecar can front an https service)"
                    .into(),
            );
        }
        Some(other) => {
            return Err(format!(
                "the scheme `{other}` is not supported; use http://"
            ));
        }
        None => {
            return Err(format!(
                "`{url}` is not an absolute URL; write http://host:port"
            ));
        }
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("`{url}` has no host"));
    };
    if authority.host().is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if authority.as_str().contains('@') {
        return Err("a target URL may not carry a user name or password".into());
    }
    if uri.query().is_some() || url.contains('#') {
        return Err("a target URL may not have a query or a fragment".into());
    }
    Ok(uri)
}

impl Backend {
    /// Every problem of this backend, each naming its field under `prefix`.
    pub fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        let field = |name: &str| format!("{prefix}{name}");
        if let Err(message) = check_backend_name(&self.name) {
            errors.push(FieldError::new(field("name"), message));
        }
        match &self.docker {
            Some(_) if !self.urls.is_empty() => errors.push(FieldError::new(
                field("urls"),
                "give `urls` or `docker`, not both",
            )),
            Some(docker) => docker.validate(&field("docker."), errors),
            None if self.urls.is_empty() || self.urls.len() > MAX_URLS => {
                errors.push(FieldError::new(
                    field("urls"),
                    format!(
                        "list 1 to {MAX_URLS} target URLs (or select containers with `docker`)"
                    ),
                ))
            }
            None => {}
        }
        for (index, url) in self.urls.iter().enumerate().take(MAX_URLS) {
            if let Err(message) = check_target_url(url) {
                errors.push(FieldError::new(field(&format!("urls[{index}]")), message));
            }
        }
        for (name, value) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("timeout_ms", self.timeout_ms),
        ] {
            if value == 0 || value > MAX_TIMEOUT_MS {
                errors.push(FieldError::new(
                    field(name),
                    format!("must be from 1 to {MAX_TIMEOUT_MS}"),
                ));
            }
        }
        if let Some(check) = &self.health_check {
            check.validate(&field("health_check."), errors);
        }
    }
}

/// Refuses a project of more than [`MAX_BACKENDS`] backends.
pub fn check_backend_count(count: usize, errors: &mut Vec<FieldError>) {
    if count > MAX_BACKENDS {
        errors.push(FieldError::new(
            "backends",
            format!("at most {MAX_BACKENDS} backends per project"),
        ));
    }
}

/// Checks a project's backends as a whole: each one, and no name twice.
pub fn validate_backends(backends: &[Backend], errors: &mut Vec<FieldError>) {
    check_backend_count(backends.len(), errors);
    for (index, backend) in backends.iter().enumerate() {
        backend.validate(&format!("backends[{index}]."), errors);
        if backends[..index].iter().any(|b| b.name == backend.name) {
            errors.push(FieldError::new(
                format!("backends[{index}].name"),
                format!("another backend is named `{}`", backend.name),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(json: serde_json::Value) -> Result<Backend, serde_json::Error> {
        serde_json::from_value(json)
    }

    fn fields(backend: &Backend) -> Vec<String> {
        let mut errors = Vec::new();
        backend.validate("", &mut errors);
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let b =
            backend(serde_json::json!({"name": "pay", "urls": ["http://127.0.0.1:9000"]})).unwrap();
        assert_eq!(b.policy, Balance::Random);
        assert_eq!((b.connect_timeout_ms, b.timeout_ms), (5_000, 60_000));
        assert!(fields(&b).is_empty());
        let rr =
            backend(serde_json::json!({"urls": ["http://a"], "policy": "round_robin"})).unwrap();
        assert_eq!(rr.policy, Balance::RoundRobin);
        assert!(backend(serde_json::json!({"urls": ["http://a"], "policy": "fastest"})).is_err());
        assert!(backend(serde_json::json!({"urls": ["http://a"], "weight": 1})).is_err());
    }

    #[test]
    fn bad_urls_are_named_by_index() {
        let b = backend(serde_json::json!({"name": "x", "urls": [
            "http://ok:1/base", "ftp://host", "http://", "https://secure", "http://u:p@host",
            "http://host/?q=1", "/relative", "not a url"
        ]}))
        .unwrap();
        assert_eq!(
            fields(&b),
            [
                "urls[1]", "urls[2]", "urls[3]", "urls[4]", "urls[5]", "urls[6]", "urls[7]"
            ]
        );
        let none = backend(serde_json::json!({"name": "x", "urls": []})).unwrap();
        assert_eq!(fields(&none), ["urls"]);
    }

    #[test]
    fn names_and_timeouts_are_checked() {
        let b = backend(serde_json::json!({"name": "Bad Name", "urls": ["http://a"],
            "connect_timeout_ms": 0, "timeout_ms": MAX_TIMEOUT_MS + 1}))
        .unwrap();
        assert_eq!(fields(&b), ["name", "connect_timeout_ms", "timeout_ms"]);
        let twice = [
            backend(serde_json::json!({"name": "a", "urls": ["http://a"]})).unwrap(),
            backend(serde_json::json!({"name": "a", "urls": ["http://b"]})).unwrap(),
        ];
        let mut errors = Vec::new();
        validate_backends(&twice, &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "backends[1].name");
    }

    #[test]
    fn a_health_check_needs_a_path_and_has_defaults_for_the_rest() {
        let b = backend(serde_json::json!({"name": "pay", "urls": ["http://a"]})).unwrap();
        assert_eq!(b.health_check, None);
        assert!(
            serde_json::to_value(&b)
                .unwrap()
                .get("health_check")
                .is_none()
        );
        let b = backend(serde_json::json!({"name": "pay", "urls": ["http://a"],
            "health_check": {"path": "/healthz"}}))
        .unwrap();
        let check = b.health_check.clone().unwrap();
        assert_eq!(check, HealthCheck::of_path("/healthz"));
        assert_eq!(
            (
                check.interval_ms,
                check.timeout_ms,
                check.unhealthy_after,
                check.healthy_after
            ),
            (5_000, 1_000, 3, 1)
        );
        assert!(fields(&b).is_empty());
        // Shown whole, defaults included.
        assert_eq!(
            serde_json::to_value(&b).unwrap()["health_check"],
            serde_json::json!({"path": "/healthz", "interval_ms": 5000, "timeout_ms": 1000,
                "unhealthy_after": 3, "healthy_after": 1})
        );
        for bad in [
            serde_json::json!({"interval_ms": 1000}),
            serde_json::json!({"path": "/h", "method": "HEAD"}),
            serde_json::json!({"path": "/h", "interval_ms": -1}),
            serde_json::json!("/healthz"),
        ] {
            let json = serde_json::json!({"urls": ["http://a"], "health_check": bad});
            assert!(backend(json).is_err(), "{bad}");
        }
    }

    #[test]
    fn health_check_fields_are_checked_and_named() {
        let check = |json: serde_json::Value| {
            let mut all = serde_json::json!({"name": "b", "urls": ["http://a"]});
            all["health_check"] = json;
            fields(&backend(all).unwrap())
        };
        for path in ["/", "/healthz", "/status?full=1", "/a/b-c_d.json"] {
            assert!(
                check(serde_json::json!({"path": path})).is_empty(),
                "{path}"
            );
        }
        let long = format!("/{}", "a".repeat(MAX_HEALTH_CHECK_PATH));
        for path in [
            "healthz",
            "",
            "/a b",
            "/h#frag",
            "http://a/h",
            long.as_str(),
        ] {
            assert_eq!(
                check(serde_json::json!({"path": path})),
                ["health_check.path"],
                "{path}"
            );
        }
        assert_eq!(
            check(
                serde_json::json!({"path": "/h", "interval_ms": 99, "timeout_ms": 600_001,
                "unhealthy_after": 0, "healthy_after": 11})
            ),
            [
                "health_check.interval_ms",
                "health_check.timeout_ms",
                "health_check.unhealthy_after",
                "health_check.healthy_after"
            ]
        );
        assert!(
            check(
                serde_json::json!({"path": "/h", "interval_ms": 100, "timeout_ms": 600_000,
                "unhealthy_after": 1, "healthy_after": 10})
            )
            .is_empty(),
            "the bounds are allowed"
        );
        let mut errors = Vec::new();
        let mut with = backend(serde_json::json!({"name": "b", "urls": ["http://a"]})).unwrap();
        with.health_check = Some(HealthCheck {
            interval_ms: 0,
            ..HealthCheck::of_path("/h")
        });
        validate_backends(&[with], &mut errors);
        assert_eq!(errors[0].field, "backends[0].health_check.interval_ms");
    }

    proptest::proptest! {
        #[test]
        fn url_checks_never_panic(url in "\\PC{0,60}") {
            let _ = check_target_url(&url);
        }
    }
}
