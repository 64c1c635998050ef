//! Gateway mode (`switchyard gateway -c routes.yml`): routes read from a YAML file, the
//! longest prefix on segment boundaries whatever the order, the default response, the four
//! reserved paths, start errors naming the file and line, and live reload (a valid edit
//! served within a second in one atomic swap, the last good config kept on a bad edit, a
//! deleted file or a directory in its place, stats that go on across reloads).
//!
//! Every test starts its own gateway in the test process (`server::start_gateway`, port 0)
//! from a file in a temporary directory, in front of real upstreams (`upstream`); an echo
//! names the upstream that answered.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value as Sample};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use switchyard::config::Config;
use switchyard::server::{self, Server};
use tempfile::TempDir;

use crate::helpers::{Process, assert_error, header, json_body};
use crate::upstream::{Upstream, refused_url};

/// How long a valid edit may take to be served: the contract's second (250 ms polls), and
/// a second of slack for a loaded test machine.
const APPLIED_WITHIN: Duration = Duration::from_secs(2);
/// How long an edit that must not apply is watched: eight of the gateway's 250 ms polls.
const HOLD: Duration = Duration::from_secs(2);
/// The pause between two probes of a poll.
const PROBE_EVERY: Duration = Duration::from_millis(20);

/// A gateway started from `file` (in `dir`), and a client for it.
struct Gw {
    addr: SocketAddr,
    client: reqwest::Client,
    dir: TempDir,
    file: PathBuf,
    /// Kept so the gateway runs as long as the test holds it.
    _server: Server,
}

/// What one request answered: its status, the upstream's name when an upstream echoed,
/// and the body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    upstream: Option<String>,
    body: String,
}

/// Requests answered with a success (status below 400) and with an error, as `/stats`
/// counts them.
type Tally = (u64, u64);

fn gateway_config() -> Config {
    let mut config = Config::new(String::new());
    config.port = 0;
    config.shutdown_timeout = Duration::from_secs(2);
    config
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// `error`'s message followed by those of its sources it does not already hold.
fn message(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Starts a gateway on `file`, or gives the start error's whole message.
async fn start_at(file: &Path) -> Result<Server, String> {
    server::start_gateway(gateway_config(), file.to_path_buf())
        .await
        .map_err(|error| message(&error))
}

/// Writes `yaml` to `routes.yml` in a new temporary directory and starts a gateway on it;
/// `Err` holds the start error's message and the file's path.
async fn try_gateway(yaml: &str) -> Result<Gw, (String, String)> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("routes.yml");
    std::fs::write(&file, yaml).expect("write the routes file");
    match start_at(&file).await {
        Ok(server) => Ok(Gw {
            addr: server.addr(),
            client: client(),
            dir,
            file,
            _server: server,
        }),
        Err(error) => Err((error, file.display().to_string())),
    }
}

/// Starts a gateway on `yaml`, which must succeed.
async fn spawn_gateway(yaml: &str) -> Gw {
    match try_gateway(yaml).await {
        Ok(gw) => gw,
        Err((error, _)) => panic!("the gateway starts: {error}\n{yaml}"),
    }
}

/// Starts a gateway on `yaml`, which must fail; gives the error and the file's path.
async fn start_error(yaml: &str) -> (String, String) {
    match try_gateway(yaml).await {
        Ok(_) => panic!("the gateway started on a file it must refuse:\n{yaml}"),
        Err(failure) => failure,
    }
}

/// Whether `text` says `line N` (and not `line N0`, `line N1`, …).
fn names_line(text: &str, line: usize) -> bool {
    let needle = format!("line {line}");
    text.match_indices(&needle)
        .any(|(at, _)| !text[at + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// Sends `GET url` and reads the answer; `Err` when no answer came.
async fn answer_at(client: &reqwest::Client, url: &str) -> Result<Answer, String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    let upstream = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|json| json["upstream"].as_str().map(str::to_owned));
    Ok(Answer {
        status,
        upstream,
        body,
    })
}

/// Sends `GET url` and gives the name of the upstream that answered it with a 200 echo,
/// or what went wrong.
async fn upstream_at(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let answer = answer_at(client, url).await?;
    match answer.upstream {
        Some(name) if answer.status == StatusCode::OK => Ok(name),
        _ => Err(format!("{}: {}", answer.status, answer.body)),
    }
}

impl Gw {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn call(&self, method: Method, path: &str) -> Response {
        self.client
            .request(method, self.url(path))
            .send()
            .await
            .expect("request")
    }

    async fn get(&self, path: &str) -> Response {
        self.call(Method::GET, path).await
    }

    async fn answer(&self, path: &str) -> Answer {
        answer_at(&self.client, &self.url(path))
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"))
    }

    /// GETs `path`, asserting a 200 echo, and returns it.
    async fn echo(&self, path: &str) -> Value {
        let answer = self.answer(path).await;
        assert_eq!(answer.status, StatusCode::OK, "GET {path}: {}", answer.body);
        serde_json::from_str(&answer.body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", answer.body))
    }

    /// The name of the upstream that answered `GET path` (with a 200 echo).
    async fn upstream_of(&self, path: &str) -> String {
        upstream_at(&self.client, &self.url(path))
            .await
            .unwrap_or_else(|error| panic!("GET {path}: no echo: {error}"))
    }

    /// Replaces the file atomically: `yaml` is written next to it, then renamed over it.
    fn rewrite(&self, yaml: &str) {
        let next = self.dir.path().join(".routes.yml.next");
        std::fs::write(&next, yaml).expect("write the next routes file");
        std::fs::rename(&next, &self.file).expect("rename over the routes file");
    }

    /// Polls `GET path` until `upstream` answers it, failing the test after
    /// [`APPLIED_WITHIN`]; gives the answers it got, the last one included.
    async fn wait_applied(&self, path: &str, upstream: &str) -> Tally {
        let start = Instant::now();
        let mut tally = (0, 0);
        loop {
            let answer = self.answer(path).await;
            if answer.status.as_u16() < 400 {
                tally.0 += 1;
            } else {
                tally.1 += 1;
            }
            if answer.status == StatusCode::OK && answer.upstream.as_deref() == Some(upstream) {
                return tally;
            }
            assert!(
                start.elapsed() < APPLIED_WITHIN,
                "GET {path} still answers {answer:?} {APPLIED_WITHIN:?} after the edit, not \
                 upstream {upstream}"
            );
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }

    /// Polls `GET path` for [`HOLD`]: every answer must come from `upstream`.
    async fn holds(&self, path: &str, upstream: &str, after: &str) {
        let start = Instant::now();
        while start.elapsed() < HOLD {
            let answer = self.answer(path).await;
            assert!(
                answer.status == StatusCode::OK && answer.upstream.as_deref() == Some(upstream),
                "after {after}, GET {path} answered {answer:?}, not the last good config's \
                 upstream {upstream}"
            );
            let ready = self.get("/ready").await.status();
            assert_eq!(ready, StatusCode::OK, "/ready after {after}");
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }

    /// `GET /stats`, asserting 200.
    async fn stats(&self) -> Value {
        let response = self.get("/stats").await;
        assert_eq!(response.status(), StatusCode::OK, "/stats");
        json_body(response).await
    }

    /// `GET /metrics` without a token, asserting 200, as text and parsed.
    async fn metrics(&self) -> (String, Scrape) {
        let response = self.get("/metrics").await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "/metrics without a token"
        );
        let text = response.text().await.expect("body");
        let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
            .unwrap_or_else(|e| panic!("/metrics is not Prometheus text ({e}): {text}"));
        (text, scrape)
    }

    /// The instance's (success, error) counts from `/stats`.
    async fn counts(&self) -> Tally {
        let report = self.stats().await;
        let counts = &report["requests_count"];
        assert_eq!(
            report["request_count"], *counts,
            "both keys carry the counts: {report}"
        );
        (
            counts["success"].as_u64().expect("success"),
            counts["error"].as_u64().expect("error"),
        )
    }
}

/// The value of the counter or gauge `name` whose labels include all of `labels`.
fn sample(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(scrape, name, labels)
        .into_iter()
        .next()
        .map(|(_, value)| value)
}

/// Every counter or gauge `name` whose labels include all of `labels`: (its labels, in
/// order, as text; its value).
fn samples(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<(String, f64)> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .filter_map(|s| match &s.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => {
                Some((s.labels.to_string(), *v))
            }
            _ => None,
        })
        .collect()
}

/// A `backends:` entry with static `urls`.
fn backend(name: &str, url: &str) -> String {
    format!("  - name: {name}\n    urls: [\"{url}\"]\n")
}

/// A `routes:` entry.
fn route(prefix: &str, backend: &str) -> String {
    format!("  - path_prefix: {prefix}\n    backend: {backend}\n")
}

/// A whole file: `routes` (prefix, backend) and `backends` (name, url), in the given order.
fn file(routes: &[(&str, &str)], backends: &[(&str, &str)]) -> String {
    let mut yaml = String::from("routes:\n");
    for (prefix, name) in routes {
        yaml.push_str(&route(prefix, name));
    }
    yaml.push_str("backends:\n");
    for (name, url) in backends {
        yaml.push_str(&backend(name, url));
    }
    yaml
}

// Routing.

#[tokio::test]
async fn the_design_example_routes_by_prefix_answers_the_default_and_counts() {
    let payment = Upstream::start("payment").await;
    let orders = Upstream::start("orders").await;
    let gw = spawn_gateway(&format!(
        "routes:
  - path_prefix: /api/payment
    backend: payment
    strip_prefix: false
  - path_prefix: /api/orders
    backend: orders
default_response:
  body: \"This is not reachable\"
  status_code: 403
backends:
  - name: payment
    urls: [\"{}\"]
    policy: round_robin
    connect_timeout_ms: 5000
    timeout_ms: 60000
  - name: orders
    urls: [\"{}\"]
",
        payment.url(),
        orders.url()
    ))
    .await;

    // The full path and query arrive upstream.
    let echoed = gw.echo("/api/payment").await;
    assert_eq!(
        (&echoed["upstream"], &echoed["path"], &echoed["query"]),
        (&json!("payment"), &json!("/api/payment"), &Value::Null)
    );
    let echoed = gw.echo("/api/payment/x?y=1").await;
    assert_eq!(
        (&echoed["upstream"], &echoed["path"], &echoed["query"]),
        (&json!("payment"), &json!("/api/payment/x"), &json!("y=1"))
    );
    let echoed = gw.echo("/api/orders/1").await;
    assert_eq!(
        (&echoed["upstream"], &echoed["path"]),
        (&json!("orders"), &json!("/api/orders/1"))
    );
    assert_eq!(payment.request_count(), 2);
    assert_eq!(orders.request_count(), 1);

    // No route: the default response, exactly, whatever the method.
    for (method, path) in [
        (Method::GET, "/api/paymentsX"),
        (Method::GET, "/nothing"),
        (Method::GET, "/"),
        (Method::POST, "/nothing/else"),
    ] {
        let response = gw.call(method.clone(), path).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(
            header(&response, "content-type"),
            "text/plain; charset=utf-8",
            "{method} {path}"
        );
        let body = response.text().await.expect("body");
        assert_eq!(body, "This is not reachable", "{method} {path}");
    }
    assert_eq!(payment.request_count() + orders.request_count(), 3);

    // Three proxied, four defaults; /health and /stats itself are not counted.
    assert_eq!(gw.get("/health").await.status(), StatusCode::OK);
    assert_eq!(gw.counts().await, (3, 4));
    assert_eq!(gw.counts().await, (3, 4), "/stats counted itself");
    let report = gw.stats().await;
    assert_eq!(report["status_classes"]["2xx"], 3, "{report}");
    assert_eq!(report["status_classes"]["4xx"], 4, "{report}");
}

#[tokio::test]
async fn the_longest_prefix_wins_in_either_order_and_slash_takes_the_rest() {
    let api = Upstream::start("api").await;
    let payment = Upstream::start("payment").await;
    let root = Upstream::start("root").await;
    let backends = [
        ("api", api.url()),
        ("payment", payment.url()),
        ("root", root.url()),
    ];
    let backends: Vec<(&str, &str)> = backends.iter().map(|(n, u)| (*n, u.as_str())).collect();
    let expected = [
        ("/api/payment", "payment"),
        ("/api/payment/", "payment"),
        ("/api/payment/1", "payment"),
        ("/api/paymentsX", "api"),
        ("/api", "api"),
        ("/api/", "api"),
        ("/api/x", "api"),
        ("/apix", "root"),
        ("/", "root"),
        ("/other/thing", "root"),
    ];
    for routes in [
        [("/api", "api"), ("/api/payment", "payment"), ("/", "root")],
        [("/", "root"), ("/api/payment", "payment"), ("/api", "api")],
    ] {
        let gw = spawn_gateway(&file(&routes, &backends)).await;
        for (path, upstream) in expected {
            assert_eq!(
                gw.upstream_of(path).await,
                upstream,
                "{path} with {routes:?}"
            );
        }
        assert_eq!(gw.echo("/api/payment/1").await["path"], "/api/payment/1");
    }

    // A trailing slash in a prefix is ignored: `/api/` is `/api`.
    let gw = spawn_gateway(&file(
        &[("/api/", "api"), ("/api/payment/", "payment")],
        &backends,
    ))
    .await;
    for (path, upstream) in [
        ("/api", "api"),
        ("/api/", "api"),
        ("/api/x", "api"),
        ("/api/paymentsX", "api"),
        ("/api/payment", "payment"),
        ("/api/payment/", "payment"),
        ("/api/payment/1", "payment"),
    ] {
        assert_eq!(gw.upstream_of(path).await, upstream, "{path} under `/api/`");
    }
    assert_eq!(gw.echo("/api").await["path"], "/api");
    assert_error(gw.get("/apix").await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_prefix_is_text_never_a_pattern() {
    let a = Upstream::start("a").await;
    let root = Upstream::start("root").await;
    // Braces are path templates in projects; in a gateway file a prefix is plain text, so
    // it either takes only itself or is refused with its line.
    for (prefix, other) in [
        ("/files/{name}", "/files/report"),
        ("/v{n}", "/v1"),
        ("/all/{*rest}", "/all/x/y"),
    ] {
        let yaml = file(
            &[(prefix, "a"), ("/", "root")],
            &[("a", &a.url()), ("root", &root.url())],
        );
        match try_gateway(&yaml).await {
            Err((error, _)) => assert!(names_line(&error, 2), "{prefix}: no `line 2` in: {error}"),
            Ok(gw) => {
                let answer = upstream_at(&gw.client, &gw.url(other)).await;
                assert_eq!(
                    answer.as_deref(),
                    Ok("root"),
                    "prefix {prefix} took {other} as a pattern"
                );
            }
        }
    }
}

#[tokio::test]
async fn strip_prefix_forwards_what_follows_the_prefix() {
    let a = Upstream::start("a").await;
    let gw = spawn_gateway(&format!(
        "routes:
  - path_prefix: /api/payment
    backend: a
    strip_prefix: true
  - path_prefix: /kept
    backend: a
backends:
{}",
        backend("a", &a.url())
    ))
    .await;
    let echoed = gw.echo("/api/payment/x/y?q=1").await;
    assert_eq!(
        (&echoed["path"], &echoed["query"]),
        (&json!("/x/y"), &json!("q=1"))
    );
    assert_eq!(gw.echo("/api/payment").await["path"], "/");
    assert_eq!(gw.echo("/kept/x").await["path"], "/kept/x");
}

#[tokio::test]
async fn round_robin_alternates_between_a_backends_urls() {
    let one = Upstream::start("one").await;
    let two = Upstream::start("two").await;
    let gw = spawn_gateway(&format!(
        "routes:
  - path_prefix: /
    backend: pair
backends:
  - name: pair
    urls: [\"{}\", \"{}\"]
    policy: round_robin
",
        one.url(),
        two.url()
    ))
    .await;
    let mut names = Vec::new();
    for _ in 0..6 {
        names.push(gw.upstream_of("/x").await);
    }
    assert!(
        names.windows(2).all(|w| w[0] != w[1]),
        "round robin does not alternate: {names:?}"
    );
    assert_eq!((one.request_count(), two.request_count()), (3, 3));
}

#[tokio::test]
async fn without_a_default_404_and_only_four_paths_are_reserved() {
    let a = Upstream::start("a").await;
    let gw = spawn_gateway(&file(&[("/api", "a")], &[("a", &a.url())])).await;
    for path in ["/nothing", "/admin/projects", "/auth/login", "/apiX"] {
        assert_error(gw.get(path).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    let response = gw
        .client
        .post(gw.url("/auth/login"))
        .json(&json!({"username": "alice", "password": "correct horse battery"}))
        .send()
        .await
        .expect("request");
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;

    let health = gw.get("/health").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(json_body(health).await, json!({"status": "ok"}));
    let ready = gw.get("/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(json_body(ready).await, json!({"status": "ready"}));
    assert_eq!(a.request_count(), 0);
    // The five 404s (reserved paths not counted), in /stats and in /metrics.
    assert_eq!(gw.counts().await, (0, 5));
    let (text, scrape) = gw.metrics().await;
    assert!(
        text.trim_end().ends_with("# EOF"),
        "not OpenMetrics: {text}"
    );
    let not_found = sample(&scrape, "switchyard_requests_total", &[("class", "4xx")]);
    assert_eq!(not_found, Some(5.0), "{text}");

    // With a `/` route, everything but the four reserved paths reaches the upstream.
    let gw = spawn_gateway(&file(&[("/", "a")], &[("a", &a.url())])).await;
    for path in [
        "/admin/projects",
        "/auth/login",
        "/auth/me",
        "/admin/explain",
    ] {
        let echoed = gw.echo(path).await;
        assert_eq!(
            (&echoed["upstream"], &echoed["path"]),
            (&json!("a"), &json!(path))
        );
    }
    let response = gw
        .client
        .post(gw.url("/auth/login"))
        .json(&json!({"username": "alice", "password": "correct horse battery"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = json_body(response).await;
    assert_eq!(
        (&echoed["method"], &echoed["path"]),
        (&json!("POST"), &json!("/auth/login"))
    );
    let seen = a.request_count();
    let health = gw.get("/health").await;
    assert_eq!(json_body(health).await, json!({"status": "ok"}));
    let ready = gw.get("/ready").await;
    assert_eq!(json_body(ready).await, json!({"status": "ready"}));
    assert_eq!(gw.counts().await, (5, 0));
    let (text, scrape) = gw.metrics().await;
    let proxied = sample(&scrape, "switchyard_requests_total", &[("class", "2xx")]);
    assert_eq!(proxied, Some(5.0), "{text}");
    assert_eq!(
        a.request_count(),
        seen,
        "a reserved path reached the upstream"
    );
}

#[tokio::test]
async fn a_dead_backend_is_503_not_the_default_and_counts_as_an_error() {
    let live = Upstream::start("live").await;
    let gw = spawn_gateway(&format!(
        "routes:
  - path_prefix: /dead
    backend: dead
  - path_prefix: /live
    backend: live
default_response:
  body: \"This is not reachable\"
  status_code: 403
backends:
{}{}",
        backend("dead", &refused_url()),
        backend("live", &live.url())
    ))
    .await;
    assert_error(
        gw.get("/dead/x").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream_unavailable",
    )
    .await;
    assert_eq!(gw.upstream_of("/live").await, "live");
    assert_eq!(gw.counts().await, (1, 1));
}

// Start errors.

#[tokio::test]
async fn a_missing_file_is_a_start_error_naming_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let missing = dir.path().join("no-such-routes.yml");
    let error = match start_at(&missing).await {
        Ok(_) => panic!("the gateway started without its file"),
        Err(error) => error,
    };
    let path = missing.display().to_string();
    assert!(error.contains(&path), "{path} not in: {error}");
}

#[tokio::test]
async fn a_bad_file_is_a_start_error_naming_the_file_and_line() {
    let url = "http://127.0.0.1:9";
    // (what is wrong, the file, the line to name, a fragment the message must hold)
    let cases: Vec<(&str, String, usize, &str)> = vec![
        (
            "malformed YAML",
            "routes:\n  - path_prefix: /api\n    backend: a: b\n".to_owned(),
            3,
            "",
        ),
        (
            "an unknown field",
            format!(
                "routes:\n  - path_prefix: /api\n    backnd: a\nbackends:\n{}",
                backend("a", url)
            ),
            3,
            "backnd",
        ),
        (
            "a wrong type",
            format!(
                "routes:\n{}    strip_prefix: sometimes\nbackends:\n{}",
                route("/api", "a"),
                backend("a", url)
            ),
            4,
            "",
        ),
        (
            "a route naming an undefined backend",
            format!(
                "routes:\n{}  - {{ path_prefix: /bad, backend: nope }}\nbackends:\n{}",
                route("/ok", "a"),
                backend("a", url)
            ),
            4,
            "nope",
        ),
        (
            "a duplicate path_prefix",
            format!(
                "routes:\n{}{}{}backends:\n{}",
                route("/dup", "a"),
                route("/other", "a"),
                route("/dup", "a"),
                backend("a", url)
            ),
            6,
            "/dup",
        ),
        (
            // Refused whether or not the build discovers Docker containers: the selector is
            // no `key=value`.
            "a match_labels backend with a bad selector",
            format!(
                "routes:\n{}{}backends:\n{}  - {{ name: orders, match_labels: [\"=orders\"] }}\n",
                route("/payment", "payment"),
                route("/orders", "orders"),
                backend("payment", url)
            ),
            9,
            "orders",
        ),
        (
            "a bad URL",
            format!(
                "routes:\n{}backends:\n{}  - {{ name: b, urls: [\"not a url\"] }}\n",
                route("/a", "a"),
                backend("a", url)
            ),
            7,
            "not a url",
        ),
        (
            "a path_prefix without a leading slash",
            format!(
                "routes:\n{}  - {{ path_prefix: api/x, backend: a }}\nbackends:\n{}",
                route("/a", "a"),
                backend("a", url)
            ),
            4,
            "api/x",
        ),
        (
            "a backend with neither urls nor match_labels",
            format!(
                "routes:\n{}backends:\n{}  - {{ name: empty }}\n",
                route("/a", "a"),
                backend("a", url)
            ),
            7,
            "empty",
        ),
    ];
    for (what, yaml, line, fragment) in cases {
        let (error, path) = start_error(&yaml).await;
        assert!(error.contains(&path), "{what}: {path} not in: {error}");
        assert!(
            names_line(&error, line),
            "{what}: `line {line}` not in: {error}"
        );
        assert!(
            error.contains(fragment),
            "{what}: `{fragment}` not in: {error}"
        );
    }
}

/// Runs `switchyard gateway -c FILE -p 0`, which must exit (within 10 s) with a failure;
/// gives its stderr.
async fn binary_refuses(file: &Path) -> String {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["gateway", "-c"])
        .arg(file)
        .args(["-p", "0"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the binary exits within 10 s")
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "exit status {}: {stderr}",
        output.status
    );
    stderr
}

#[tokio::test]
async fn the_binary_exits_non_zero_naming_a_missing_or_malformed_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let missing = dir.path().join("missing.yml");
    let stderr = binary_refuses(&missing).await;
    let path = missing.display().to_string();
    assert!(stderr.contains(&path), "{path} not on stderr: {stderr}");

    let malformed = dir.path().join("routes.yml");
    std::fs::write(
        &malformed,
        "routes:\n  - path_prefix: /api\n    backnd: a\n",
    )
    .expect("write");
    let stderr = binary_refuses(&malformed).await;
    let path = malformed.display().to_string();
    assert!(stderr.contains(&path), "{path} not on stderr: {stderr}");
    assert!(names_line(&stderr, 3), "`line 3` not on stderr: {stderr}");
}

// Live reload.

#[tokio::test]
async fn reload_applies_good_edits_and_keeps_the_last_good_config_otherwise() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let backends = [("a", a.url()), ("b", b.url())];
    let backends: Vec<(&str, &str)> = backends.iter().map(|(n, u)| (*n, u.as_str())).collect();
    let gw = spawn_gateway(&file(&[("/svc", "a")], &backends)).await;
    assert_eq!(gw.upstream_of("/svc").await, "a");

    // Edited in place: served within the second.
    std::fs::write(&gw.file, file(&[("/svc", "b")], &backends)).expect("edit");
    gw.wait_applied("/svc", "b").await;

    // A bad edit (a route to an undefined backend) keeps the last good config serving.
    gw.rewrite(&file(&[("/svc", "a"), ("/x", "nope")], &backends));
    gw.holds("/svc", "b", "a bad edit").await;
    gw.rewrite("routes: [\n");
    gw.holds("/svc", "b", "malformed YAML").await;

    // So do a deleted file and a directory in its place.
    std::fs::remove_file(&gw.file).expect("delete the file");
    gw.holds("/svc", "b", "deleting the file").await;
    std::fs::create_dir(&gw.file).expect("a directory at the file's path");
    gw.holds("/svc", "b", "a directory at the path").await;

    // A good file renamed over the path again is applied.
    std::fs::remove_dir(&gw.file).expect("remove the directory");
    gw.rewrite(&file(&[("/svc", "a")], &backends));
    gw.wait_applied("/svc", "a").await;
}

#[tokio::test]
async fn the_binary_logs_a_rejected_edit_and_serves_on() {
    let a = Upstream::start("a").await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("routes.yml");
    std::fs::write(&path, file(&[("/svc", "a")], &[("a", &a.url())])).expect("write");
    let (process, stderr) = Process::gateway(&path, &[], &[]).await;
    let client = client();
    let svc = format!("{}/svc", process.base);
    assert_eq!(upstream_at(&client, &svc).await.as_deref(), Ok("a"));

    let next = dir.path().join("next.yml");
    std::fs::write(&next, "routes:\n  - path_prefix: /svc\n    backnd: a\n").expect("write");
    std::fs::rename(&next, &path).expect("rename");
    let shown = path.display().to_string();
    let start = Instant::now();
    loop {
        let logged = stderr.lock().expect("stderr lines").clone();
        let rejection = logged
            .iter()
            .find(|line| line.contains(&shown) && names_line(line, 3) && line.contains("backnd"));
        if let Some(line) = rejection {
            assert!(line.contains("ERROR"), "not logged as an error: {line}");
            break;
        }
        assert!(
            start.elapsed() < APPLIED_WITHIN,
            "no rejection naming {shown} and line 3 logged: {logged:#?}"
        );
        tokio::time::sleep(PROBE_EVERY).await;
    }
    assert_eq!(upstream_at(&client, &svc).await.as_deref(), Ok("a"));
    process.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reloads_under_load_fail_no_request() {
    const CLIENTS: usize = 4;
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    // Each config has its own backend only: a reload also drops a backend and its pool.
    let config_a = file(&[("/svc", "a"), ("/", "a")], &[("a", &a.url())]);
    let config_b = file(&[("/svc", "b")], &[("b", &b.url())]);
    let gw = spawn_gateway(&config_a).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url, stop) = (client(), gw.url("/svc/load"), stop.clone());
        clients.push(tokio::spawn(async move {
            let (mut answers, mut failures) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match upstream_at(&client, &url).await {
                    Ok(name) if name == "a" || name == "b" => answers.push(name),
                    Ok(name) => failures.push(format!("answered by {name}")),
                    Err(error) => failures.push(error),
                }
            }
            (answers, failures)
        }));
    }
    for round in 0..5 {
        let (config, upstream) = if round % 2 == 0 {
            (&config_b, "b")
        } else {
            (&config_a, "a")
        };
        gw.rewrite(config);
        gw.wait_applied("/svc/load", upstream).await;
        // Some load on each config before the next edit.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut answers, mut failures) = (Vec::new(), Vec::new());
    for client in clients {
        let (seen, failed) = client.await.expect("client task");
        answers.extend(seen);
        failures.extend(failed);
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(answers.iter().any(|n| n == "a") && answers.iter().any(|n| n == "b"));
    assert!(
        answers.len() > 50,
        "too little load: {} answers",
        answers.len()
    );
}

/// `count` routes `/r0`… to `backend` at `url`; when `broken` is given, that route names
/// an undefined backend instead.
fn many_routes(count: usize, backend_name: &str, url: &str, broken: Option<usize>) -> String {
    let mut yaml = String::from("routes:\n");
    for i in 0..count {
        let name = if broken == Some(i) {
            "undefined"
        } else {
            backend_name
        };
        yaml.push_str(&route(&format!("/r{i}"), name));
    }
    yaml.push_str("backends:\n");
    yaml.push_str(&backend(backend_name, url));
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_routes_change_in_one_swap_and_a_bad_one_changes_none() {
    const ROUTES: usize = 50;
    const CLIENTS: usize = 4;
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let gw = spawn_gateway(&many_routes(ROUTES, "a", &a.url(), None)).await;

    // 49 good routes and one naming an undefined backend: nothing changes.
    gw.rewrite(&many_routes(ROUTES, "b", &b.url(), Some(ROUTES - 1)));
    let start = Instant::now();
    while start.elapsed() < HOLD {
        for i in 0..ROUTES {
            assert_eq!(
                gw.upstream_of(&format!("/r{i}/x")).await,
                "a",
                "/r{i} after a bad edit"
            );
        }
    }

    // Every route to b: once one answer came from b, no request sent after it gets a.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client_no in 0..CLIENTS {
        let (client, base, stop) = (client(), gw.url(""), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = client_no * ROUTES / CLIENTS;
            while !stop.load(Ordering::Relaxed) {
                let url = format!("{base}/r{}/x", i % ROUTES);
                let sent = Instant::now();
                let name = upstream_at(&client, &url).await;
                seen.push((sent, Instant::now(), i % ROUTES, name));
                i += 1;
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    gw.rewrite(&many_routes(ROUTES, "b", &b.url(), None));
    for i in 0..ROUTES {
        gw.wait_applied(&format!("/r{i}/x"), "b").await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for client in clients {
        seen.extend(client.await.expect("client task"));
    }
    for (_, _, route, name) in &seen {
        assert!(name.is_ok(), "/r{route}: {name:?}");
    }
    let first_b = seen
        .iter()
        .filter(|(_, _, _, name)| name.as_deref() == Ok("b"))
        .map(|(_, answered, _, _)| *answered)
        .min()
        .expect("the clients saw b");
    assert!(
        seen.iter()
            .any(|(_, _, _, name)| name.as_deref() == Ok("a")),
        "the clients saw no answer from a before the swap"
    );
    let mixed: Vec<_> = seen
        .iter()
        .filter(|(sent, _, _, name)| *sent > first_b && name.as_deref() == Ok("a"))
        .map(|(_, _, route, _)| format!("/r{route}"))
        .collect();
    assert!(mixed.is_empty(), "a answered after b had: {mixed:?}");
}

/// The routes of the order test: nested prefixes, siblings sharing a first letter, a
/// trailing slash, and `/`.
const PREFIXES: [&str; 8] = ["/", "/a", "/a/b", "/a/b/c", "/ab", "/a/bc", "/b", "/b/a/"];

/// The prefix that must take `path`: the longest that matches on a segment boundary.
fn longest_prefix(path: &str) -> &'static str {
    PREFIXES
        .iter()
        .copied()
        .filter(|prefix| {
            let prefix = prefix.trim_end_matches('/');
            path == prefix || path.starts_with(&format!("{prefix}/"))
        })
        .max_by_key(|prefix| prefix.trim_end_matches('/').len())
        .expect("`/` takes every path")
}

/// `items` shuffled by a xorshift generator seeded with `seed` (Fisher–Yates).
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = items.to_vec();
    for i in (1..out.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.swap(i, (state % (i as u64 + 1)) as usize);
    }
    out
}

#[tokio::test]
async fn the_order_of_routes_in_the_file_never_changes_who_answers() {
    let mut upstreams = Vec::new();
    for prefix in PREFIXES {
        upstreams.push(Upstream::start(prefix).await);
    }
    // Backend `rN` is upstream N, named after its prefix.
    let names: Vec<String> = (0..PREFIXES.len()).map(|i| format!("r{i}")).collect();
    let routes: Vec<(&str, &str)> = PREFIXES
        .iter()
        .copied()
        .zip(names.iter().map(String::as_str))
        .collect();
    let urls: Vec<String> = upstreams.iter().map(Upstream::url).collect();
    let backends: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(urls.iter().map(String::as_str))
        .collect();
    let paths = [
        "/", "/x", "/a", "/a/", "/a/x", "/ax", "/a/b", "/a/b/", "/a/bx", "/a/b/c", "/a/b/c/d",
        "/a/b/cd", "/a/bc", "/a/bc/d", "/a/bcd", "/ab", "/ab/c", "/abc", "/b", "/b/", "/b/a",
        "/b/a/", "/b/ab", "/b/a/c", "/ba",
    ];

    let mut orders = vec![routes.clone(), routes.iter().rev().copied().collect()];
    orders.extend((1..=6).map(|seed| shuffled(&routes, seed)));
    for (n, order) in orders.iter().enumerate() {
        let backends = shuffled(&backends, 100 + n as u64);
        let gw = spawn_gateway(&file(order, &backends)).await;
        for path in paths {
            assert_eq!(
                gw.upstream_of(path).await,
                longest_prefix(path),
                "{path} with the routes in the order {order:?}"
            );
        }
    }
}

/// The per-route request counter of `/metrics`.
const ENDPOINT_REQUESTS: &str = "switchyard_endpoint_requests_total";

#[tokio::test]
async fn stats_go_on_across_a_reload_that_keeps_the_route() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let gw = spawn_gateway(&file(&[("/keep", "a"), ("/gone", "a")], &[("a", &a.url())])).await;
    for _ in 0..3 {
        assert_eq!(gw.upstream_of("/keep").await, "a");
    }
    assert_eq!(gw.upstream_of("/gone").await, "a");
    assert_error(gw.get("/nothing").await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(gw.counts().await, (4, 1));
    // The route's own series, found by its count (its labels are the gateway's business).
    let (text, scrape) = gw.metrics().await;
    let keep: Vec<String> = samples(&scrape, ENDPOINT_REQUESTS, &[("class", "2xx")])
        .into_iter()
        .filter(|(_, value)| *value == 3.0)
        .map(|(labels, _)| labels)
        .collect();
    assert_eq!(keep.len(), 1, "one route answered 3 times: {text}");

    gw.rewrite(&file(
        &[("/keep", "a"), ("/new", "b")],
        &[("a", &a.url()), ("b", &b.url())],
    ));
    let polled = gw.wait_applied("/new", "b").await;
    for _ in 0..2 {
        assert_eq!(gw.upstream_of("/keep").await, "a");
    }
    assert_error(gw.get("/gone").await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(gw.counts().await, (4 + polled.0 + 2, 1 + polled.1 + 1));
    let (text, scrape) = gw.metrics().await;
    let kept = samples(&scrape, ENDPOINT_REQUESTS, &[("class", "2xx")])
        .into_iter()
        .find(|(labels, _)| *labels == keep[0]);
    assert_eq!(
        kept.map(|(_, value)| value),
        Some(5.0),
        "the kept route's series {} did not go on from 3: {text}",
        keep[0]
    );

    // `DELETE /stats` resets, without a token.
    let reset = gw.call(Method::DELETE, "/stats").await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(gw.counts().await, (0, 0));
    assert_eq!(gw.upstream_of("/keep").await, "a");
    assert_eq!(gw.counts().await, (1, 0));
}

#[tokio::test]
async fn the_latency_of_a_slow_upstream_shows_in_the_stats() {
    let a = Upstream::start("a").await;
    let gw = spawn_gateway(&file(&[("/api", "a")], &[("a", &a.url())])).await;
    for _ in 0..5 {
        assert_eq!(gw.get("/api/slow?ms=50").await.status(), StatusCode::OK);
    }
    let stats = gw.stats().await;
    let average = stats["latency_ms"]["average"].as_f64().expect("average");
    let p99 = stats["latency_ms"]["p99"].as_f64().expect("p99");
    assert!(average >= 50.0, "{stats}");
    assert!(p99 >= 50.0, "{stats}");
    assert_eq!(gw.counts().await, (5, 0));
}
