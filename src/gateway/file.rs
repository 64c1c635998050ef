//! The gateway's YAML file: routes by path prefix, a default response and backends, in the
//! format existing label-routing gateways read (`routes`, `default_response`, `backends`),
//! and what it means as a project definition.
//!
//! Shape errors (YAML syntax, an unknown or missing field, a wrong type) come from the
//! parser with their line and column; meaning errors (a route naming no backend, two routes
//! with one prefix, a bad URL) name the line of the route or backend at fault.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::model::{
    Backend, Balance, DockerSelector, EndpointSpec, HandlerSpec, HealthCheck, MethodSpec, MockSpec,
    ProxySpec, check_backend_name,
};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    #[serde(default)]
    pub routes: Vec<Spanned<Route>>,
    #[serde(default)]
    pub default_response: Option<Spanned<DefaultResponse>>,
    #[serde(default)]
    pub backends: Vec<Spanned<BackendEntry>>,
}

/// One route: requests whose path starts with `path_prefix` (on a segment boundary) go to
/// `backend`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub path_prefix: String,
    pub backend: String,
    /// Forward the path without the prefix.
    #[serde(default)]
    pub strip_prefix: bool,
}

/// What a request no route takes gets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultResponse {
    #[serde(default)]
    pub body: String,
    #[serde(default = "not_found")]
    pub status_code: u16,
}

fn not_found() -> u16 {
    404
}

/// A backend: static `urls`, or Docker containers selected by `match_labels`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendEntry {
    pub name: String,
    #[serde(default)]
    pub match_labels: Option<Vec<String>>,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    #[serde(default)]
    pub policy: Option<Balance>,
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Active health checks of every target (`path`, and optionally `interval_ms`,
    /// `timeout_ms`, `unhealthy_after`, `healthy_after`).
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
}

/// The id the default response's endpoint has in stats and metrics.
pub const DEFAULT_RESPONSE_ID: &str = "default_response";

/// An endpoint definition and the line of the file it comes from.
pub type Sourced = (EndpointSpec, usize);

impl GatewayFile {
    /// Parses the text of a file; the error names the line and column.
    pub fn parse(text: &str) -> Result<GatewayFile, String> {
        serde_saphyr::from_str::<GatewayFile>(text).map_err(|error| {
            // The parser's own text starts with `error: ` and goes on with a snippet of
            // the file; the first line says it all.
            let text = error.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_owned()
        })
    }

    /// The project definition this file stands for: one `ANY` proxy endpoint per route,
    /// the default response as a mock below `/`, and the backends; each problem names its
    /// line.
    pub fn definition(&self) -> Result<(Vec<Sourced>, Vec<Backend>), String> {
        let backends = self.backends()?;
        let mut endpoints = Vec::with_capacity(self.routes.len() + 1);
        let mut prefixes: HashMap<String, usize> = HashMap::new();
        let mut ids: HashMap<String, usize> = HashMap::new();
        for route in &self.routes {
            let line = route.referenced.line() as usize;
            let at = |message: String| format!("line {line}: {message}");
            let value = &route.value;
            if !value.path_prefix.starts_with('/') {
                return Err(at(format!(
                    "path_prefix `{}` must start with `/`",
                    value.path_prefix
                )));
            }
            // Prefixes are plain text, as in the gateways this file format comes from: no
            // `{parameter}` patterns (project endpoints have those).
            if value.path_prefix.contains(['{', '}']) {
                return Err(at(format!(
                    "path_prefix `{}` is plain text; `{{` and `}}` are not allowed in it",
                    value.path_prefix
                )));
            }
            // A prefix is matched on segment boundaries: `/api/` and `/api` are one prefix.
            let prefix = match value.path_prefix.trim_end_matches('/') {
                "" => "/",
                trimmed => trimmed,
            };
            if let Some(first) = prefixes.insert(prefix.to_owned(), line) {
                return Err(at(format!(
                    "path_prefix `{prefix}` is also the prefix of the route at line {first}"
                )));
            }
            if !backends.iter().any(|b| b.name == value.backend) {
                return Err(at(format!(
                    "backend `{}` is not defined under `backends`",
                    value.backend
                )));
            }
            let spec = EndpointSpec {
                id: Some(route_id(prefix, &mut ids)),
                method: MethodSpec::Any,
                path: Arc::from(prefix),
                handler: HandlerSpec::Proxy(Box::new(ProxySpec {
                    backend: value.backend.clone(),
                    strip_prefix: value.strip_prefix,
                })),
                docs: None,
                auth: None,
            };
            endpoints.push((spec, line));
        }
        // Under a route at `/` nothing is left for a default response to answer.
        if let Some(default) = &self.default_response
            && !prefixes.contains_key("/")
        {
            let spec = EndpointSpec {
                id: Some(DEFAULT_RESPONSE_ID.into()),
                method: MethodSpec::Any,
                path: Arc::from("/{*rest}"),
                handler: HandlerSpec::Mock(MockSpec {
                    status: default.value.status_code,
                    headers: Default::default(),
                    json: None,
                    body: Some(Arc::from(default.value.body.as_str())),
                    body_base64: None,
                    delay_ms: None,
                    rules: None,
                }),
                docs: None,
                auth: None,
            };
            endpoints.push((spec, default.referenced.line() as usize));
        }
        Ok((endpoints, backends))
    }

    /// The backends, checked.
    fn backends(&self) -> Result<Vec<Backend>, String> {
        let mut backends: Vec<Backend> = Vec::with_capacity(self.backends.len());
        let mut lines: HashMap<&str, usize> = HashMap::new();
        for entry in &self.backends {
            let line = entry.referenced.line() as usize;
            let at = |message: String| format!("line {line}: {message}");
            let value = &entry.value;
            check_backend_name(&value.name).map_err(|m| at(format!("backend name: {m}")))?;
            if let Some(first) = lines.insert(&value.name, line) {
                return Err(at(format!(
                    "a backend named `{}` is defined at line {first} already",
                    value.name
                )));
            }
            let (urls, docker) = match (&value.urls, &value.match_labels) {
                (Some(urls), None) => (urls.clone(), None),
                (None, Some(labels)) => (
                    Vec::new(),
                    Some(DockerSelector {
                        match_labels: labels.clone(),
                    }),
                ),
                (Some(_), Some(_)) => {
                    return Err(at(format!(
                        "backend `{}` gives both `urls` and `match_labels`; give one",
                        value.name
                    )));
                }
                (None, None) => {
                    return Err(at(format!(
                        "backend `{}` needs `urls` or `match_labels`",
                        value.name
                    )));
                }
            };
            let defaults = Backend::with_urls(value.name.clone(), urls);
            let backend = Backend {
                docker,
                policy: value.policy.unwrap_or(defaults.policy),
                connect_timeout_ms: value
                    .connect_timeout_ms
                    .unwrap_or(defaults.connect_timeout_ms),
                timeout_ms: value.timeout_ms.unwrap_or(defaults.timeout_ms),
                health_check: value.health_check.clone(),
                ..defaults
            };
            let mut errors = Vec::new();
            backend.validate("", &mut errors);
            if let Some(error) = errors.first() {
                return Err(at(format!(
                    "backend `{}`: {}: {}",
                    value.name, error.field, error.message
                )));
            }
            backends.push(backend);
        }
        Ok(backends)
    }
}

/// A readable, stable id for a route's endpoint (its stats and metrics follow it across
/// reloads): the prefix's characters that ids allow, `-` for the others (`/api/payment` is
/// `api-payment`, `/` is `root`), numbered when two routes would share one.
fn route_id(prefix: &str, taken: &mut HashMap<String, usize>) -> String {
    let mut id: String = prefix
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.is_empty() {
        id.push_str("root");
    }
    id.truncate(56);
    let count = taken.entry(id.clone()).or_insert(0);
    *count += 1;
    if *count > 1 {
        id.push_str(&format!("-{count}"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
routes:
  - path_prefix: /api/payment
    backend: payment
  - path_prefix: /api/orders/
    backend: orders
    strip_prefix: true
default_response:
  body: \"This is not reachable\"
  status_code: 403
backends:
  - name: payment
    urls: [\"http://127.0.0.1:9000\"]
  - name: orders
    urls: [\"http://127.0.0.1:9001/base\"]
    policy: round_robin
";

    #[test]
    fn routes_become_proxy_endpoints_and_the_default_a_mock_below_the_root() {
        let file = GatewayFile::parse(EXAMPLE).unwrap();
        let (endpoints, backends) = file.definition().unwrap();
        let shown: Vec<_> = endpoints
            .iter()
            .map(|(spec, line)| (spec.id.clone().unwrap(), spec.path.to_string(), *line))
            .collect();
        assert_eq!(
            shown,
            [
                ("api-payment".into(), "/api/payment".into(), 2),
                ("api-orders".into(), "/api/orders".into(), 4),
                (DEFAULT_RESPONSE_ID.into(), "/{*rest}".into(), 8),
            ]
        );
        assert!(endpoints[1].0.handler.proxy().unwrap().strip_prefix);
        assert_eq!(backends[1].policy, Balance::RoundRobin);
        assert_eq!(backends[0].timeout_ms, 60_000);
    }

    #[test]
    fn shape_errors_name_their_line() {
        let error =
            GatewayFile::parse("routes:\n  - path_prefix: /a\n    backnd: x\n").unwrap_err();
        assert!(error.starts_with("line 3 column 5"), "{error}");
        assert!(error.contains("backnd"), "{error}");
    }

    #[test]
    fn meaning_errors_name_the_line_of_the_route_or_backend() {
        let cases = [
            (
                "routes:\n  - path_prefix: /a\n    backend: nope\n",
                "line 2: backend `nope`",
            ),
            (
                "routes:\n  - path_prefix: /a\n    backend: b\n  - path_prefix: /a/\n    backend: b\nbackends:\n  - name: b\n    urls: [\"http://x\"]\n",
                "line 4: path_prefix `/a` is also the prefix of the route at line 2",
            ),
            (
                "routes:\n  - path_prefix: a\n    backend: b\n",
                "line 2: path_prefix `a`",
            ),
            (
                "backends:\n  - name: b\n    urls: [\"ftp://x\"]\n",
                "line 2: backend `b`: urls[0]",
            ),
            (
                "backends:\n  - name: b\n    match_labels: [\"=b\"]\n",
                "line 2: backend `b`: docker.match_labels[0]",
            ),
            (
                "backends:\n  - name: b\n",
                "line 2: backend `b` needs `urls` or `match_labels`",
            ),
            (
                "backends:\n  - name: b\n    urls: [\"http://x\"]\n  - name: b\n    urls: [\"http://y\"]\n",
                "line 4: a backend named `b` is defined at line 2",
            ),
        ];
        for (text, expected) in cases {
            let error = GatewayFile::parse(text)
                .unwrap()
                .definition()
                .map(|_| ())
                .unwrap_err();
            assert!(error.starts_with(expected), "{error}\nexpected: {expected}");
        }
    }

    #[test]
    fn a_backend_may_have_a_health_check() {
        let text = "backends:\n  - name: b\n    urls: [\"http://x\"]\n    health_check:\n      path: /healthz\n      interval_ms: 250\n  - name: c\n    urls: [\"http://y\"]\n";
        let (_, backends) = GatewayFile::parse(text).unwrap().definition().unwrap();
        let check = backends[0].health_check.as_ref().unwrap();
        assert_eq!(check.path, "/healthz");
        assert_eq!(check.interval_ms, 250);
        assert_eq!(check.timeout_ms, HealthCheck::of_path("/").timeout_ms);
        assert_eq!(backends[1].health_check, None);
        let cases = [
            (
                "backends:\n  - name: b\n    urls: [\"http://x\"]\n    health_check:\n      path: healthz\n",
                "line 2: backend `b`: health_check.path",
            ),
            (
                "backends:\n  - name: b\n    urls: [\"http://x\"]\n  - name: c\n    match_labels: [\"a=b\"]\n    health_check: {path: /h, interval_ms: 50}\n",
                "line 4: backend `c`: health_check.interval_ms: must be from 100 to 600000",
            ),
            (
                "backends:\n  - name: b\n    urls: [\"http://x\"]\n    health_check: {path: /h, healthy_after: 11}\n",
                "line 2: backend `b`: health_check.healthy_after",
            ),
        ];
        for (text, expected) in cases {
            let error = GatewayFile::parse(text)
                .unwrap()
                .definition()
                .map(|_| ())
                .unwrap_err();
            assert!(error.starts_with(expected), "{error}\nexpected: {expected}");
        }
        // Shape errors come from the parser, with their line.
        let error = GatewayFile::parse(
            "backends:\n  - name: b\n    urls: [\"http://x\"]\n    health_check:\n      interval_ms: 100\n",
        )
        .unwrap_err();
        assert!(
            error.contains("line 5") && error.contains("path"),
            "{error}"
        );
    }

    #[test]
    fn a_route_at_the_root_leaves_no_default_response() {
        let text = "routes:\n  - path_prefix: /\n    backend: b\ndefault_response:\n  body: x\nbackends:\n  - name: b\n    urls: [\"http://x\"]\n";
        let (endpoints, _) = GatewayFile::parse(text).unwrap().definition().unwrap();
        assert_eq!(endpoints.len(), 1);
        assert_eq!(endpoints[0].0.id.as_deref(), Some("root"));
    }

    #[test]
    fn route_ids_are_readable_and_unique() {
        let mut taken = HashMap::new();
        assert_eq!(route_id("/api/payment", &mut taken), "api-payment");
        assert_eq!(route_id("/api.payment", &mut taken), "api-payment-2");
        assert_eq!(route_id("/", &mut taken), "root");
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,200}") {
            if let Ok(file) = GatewayFile::parse(&text) {
                let _ = file.definition();
            }
        }
    }
}
