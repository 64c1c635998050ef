//! Docker backends: a backend that selects containers by label (`match_labels` in the
//! gateway file, `{"docker": {"match_labels": […]}}` in the admin API), against the real
//! Docker engine (`DOCKER_HOST`, or /var/run/docker.sock). What is checked: a container with
//! every label is served and one with only some never; matching containers share the
//! traffic; a container started later gets traffic, a stopped one leaves within a second and
//! comes back when started, an unhealthy one gets none; `switchyard.port` reaches a container
//! on its bridge address; a project backend does the same through the admin API; an engine
//! that cannot be reached gives 503 without stopping the gateway, and is found when it
//! answers again.
//!
//! The containers run `tests/docker/echo.rs`, built once per test process into the image
//! `switchyard-test-echo:<hash of the source>` (`FROM scratch`: nothing is pulled): it answers
//! every request with `{"container": NAME, "path": TARGET}`. Every container of a test carries
//! a label unique to that test, which every selector of the test includes, so tests running
//! side by side never see each other's containers; a container is removed when its guard is
//! dropped. Without Docker these tests fail, saying so: `scripts/test` installs and starts
//! the engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard::config::Config;
use switchyard::server::{self, Server};
use tempfile::TempDir;

use crate::helpers::{Process, TestApp, assert_invalid, json_body, spawn_app};
use crate::upstream::Upstream;

/// The image's repository; its tag is a hash of the echo server's source and build.
const REPOSITORY: &str = "switchyard-test-echo";
/// The label every test container carries, to find leftovers.
const MARK: &str = "switchyard-test=echo";
/// The label saying when a test container was created (Unix seconds).
const CREATED: &str = "switchyard-test.created";
/// A test container this old is a leftover of a killed test run, removed on sight.
const STALE_AFTER: Duration = Duration::from_secs(600);
/// The port the echo server listens on inside its container.
const PORT: u16 = 8080;

/// How soon a container that stops, or turns unhealthy, gets no more traffic: the
/// contract's second, and half a second of slack for a loaded machine.
const LEAVES_WITHIN: Duration = Duration::from_millis(1500);
/// How soon a container that starts, or turns healthy, gets traffic: the second of the
/// contract, and a second of slack. (Shorter than the discovery's safety-net listing, every
/// 5 s: it takes the engine's events to pass.)
const JOINS_WITHIN: Duration = Duration::from_secs(2);
/// How long a new gateway may take to serve a container that runs before it starts.
const STARTS_WITHIN: Duration = Duration::from_secs(5);
/// How long the engine takes at most to run a health check and report its result.
const HEALTH_WITHIN: Duration = Duration::from_secs(10);
/// How long a container may take to answer once started.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// How long one `docker` command may take.
const DOCKER_WITHIN: Duration = Duration::from_secs(30);
/// The pause between two probes of a poll.
const PROBE_EVERY: Duration = Duration::from_millis(20);

// The image.

/// The echo image, built on first use in this process (kept when the engine already has
/// it). Fails the test, saying why, when there is no Docker engine.
fn image() -> &'static str {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    match IMAGE.get_or_init(build_image) {
        Ok(tag) => tag,
        Err(error) => panic!("{error}"),
    }
}

fn build_image() -> Result<String, String> {
    docker_sync(&["version", "--format", "{{.Server.Version}}"]).map_err(|error| {
        format!(
            "the Docker tests need the `docker` CLI and a running Docker engine (DOCKER_HOST, \
             or /var/run/docker.sock); scripts/test installs and starts one.\n{error}"
        )
    })?;
    remove_stale_containers();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/docker/echo.rs");
    let text = std::fs::read(&source).map_err(|e| format!("{}: {e}", source.display()))?;
    let rustc_args = [
        "--edition",
        "2024",
        "-O",
        "-C",
        "target-feature=+crt-static",
        "-C",
        "strip=symbols",
    ];
    let mut hash = Sha256::new();
    hash.update(&text);
    hash.update(rustc_args.join(" "));
    let tag = format!("{REPOSITORY}:{}", &format!("{:x}", hash.finalize())[..16]);
    if docker_sync(&["image", "inspect", "--format", "{{.Id}}", &tag]).is_ok() {
        return Ok(tag);
    }

    // A statically linked binary, as /echo and as /bin/sh (for `--health-cmd`), in a tar
    // imported as a one-layer image: nothing to pull.
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let binary = dir.path().join("echo");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    run_sync(
        std::process::Command::new(&rustc)
            .args(rustc_args)
            .arg("-o")
            .arg(&binary)
            .arg(&source),
        &format!("{rustc} {}", source.display()),
    )?;
    std::fs::create_dir(dir.path().join("bin")).map_err(|e| format!("mkdir bin: {e}"))?;
    std::fs::copy(&binary, dir.path().join("bin/sh")).map_err(|e| format!("copy: {e}"))?;
    let archive = dir.path().join("image.tar");
    run_sync(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .arg("-cf")
            .arg(&archive)
            .args(["echo", "bin"]),
        "tar",
    )?;
    let archive = archive
        .to_str()
        .ok_or("a temporary path that is not UTF-8")?;
    docker_sync(&["import", "-c", r#"ENTRYPOINT ["/echo"]"#, archive, &tag])?;
    remove_old_images(&tag);
    Ok(tag)
}

/// Removes the images of earlier versions of the source, once a day old (a test run from
/// another checkout may be using a newer one).
fn remove_old_images(current: &str) {
    let format = "{{.Repository}}:{{.Tag}}";
    let Ok(tags) = docker_sync(&["images", "--format", format, REPOSITORY]) else {
        return;
    };
    for old in tags.lines().filter(|old| *old != current) {
        let Ok(created) = docker_sync(&["image", "inspect", "--format", "{{.Created}}", old])
        else {
            continue;
        };
        let age = chrono::DateTime::parse_from_rfc3339(&created)
            .map(|created| chrono::Utc::now().signed_duration_since(created));
        if age.is_ok_and(|age| age > chrono::TimeDelta::days(1)) {
            let _ = docker_sync(&["rmi", old]);
        }
    }
}

/// Removes test containers left behind by test processes that were killed (a guard that is
/// dropped removes its own).
fn remove_stale_containers() {
    let format = format!("{{{{.ID}}}} {{{{.Label \"{CREATED}\"}}}}");
    let filter = format!("label={MARK}");
    let Ok(list) = docker_sync(&["ps", "-a", "--filter", &filter, "--format", &format]) else {
        return;
    };
    let now = unix_now();
    for line in list.lines() {
        let Some((id, created)) = line.split_once(' ') else {
            continue;
        };
        let created: u64 = created.trim().parse().unwrap_or(0);
        if now.saturating_sub(created) > STALE_AFTER.as_secs() {
            let _ = docker_sync(&["rm", "-f", "-v", id]);
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs `command` to its end: its trimmed stdout, or what went wrong, stderr included.
fn run_sync(command: &mut std::process::Command, what: &str) -> Result<String, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{what}` cannot run: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{what}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn docker_sync(args: &[&str]) -> Result<String, String> {
    run_sync(
        std::process::Command::new("docker").args(args),
        &format!("docker {}", args.join(" ")),
    )
}

/// Runs `docker args` without blocking the test's runtime (the server under test shares
/// it) and gives its trimmed stdout; fails the test when it fails.
async fn docker(args: &[&str]) -> String {
    let what = format!("docker {}", args.join(" "));
    let output = tokio::time::timeout(
        DOCKER_WITHIN,
        tokio::process::Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("`{what}` took more than {DOCKER_WITHIN:?}"))
    .unwrap_or_else(|e| panic!("`{what}` cannot run: {e}"));
    assert!(
        output.status.success(),
        "`{what}` failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

// Containers.

/// One test's containers: each carries the test's own label, which each selector of the
/// test includes.
struct Scope {
    id: String,
    image: &'static str,
}

impl Scope {
    fn new() -> Scope {
        Scope {
            id: uuid::Uuid::now_v7().simple().to_string(),
            image: image(),
        }
    }

    /// The label only this test's containers carry.
    fn label(&self) -> String {
        format!("switchyard-test.id={}", self.id)
    }

    /// A selector: `labels` and the test's own label.
    fn selector(&self, labels: &[&str]) -> Vec<String> {
        let mut selector: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
        selector.push(self.label());
        selector
    }

    /// Creates (without starting) a container echoing `name`, carrying `labels` and the
    /// test's label, with port 8080 published on 127.0.0.1 when `publish`; `extra` goes
    /// to `docker create` as is.
    async fn create(
        &self,
        name: &str,
        labels: &[&str],
        publish: bool,
        extra: &[&str],
    ) -> Container {
        let container_name = format!("switchyard-test-{}-{name}", self.id);
        let env = format!("NAME={name}");
        let created = format!("{CREATED}={}", unix_now());
        let mut args = vec!["create", "--name", &container_name, "-e", &env];
        let own = [MARK.to_owned(), created, self.label()];
        for label in labels.iter().copied().chain(own.iter().map(String::as_str)) {
            args.extend(["--label", label]);
        }
        let publish_spec = format!("127.0.0.1::{PORT}");
        if publish {
            args.extend(["-p", &publish_spec]);
        }
        args.extend_from_slice(extra);
        args.push(self.image);
        let id = docker(&args).await;
        Container {
            id,
            name: name.to_owned(),
            publish,
        }
    }

    /// Runs a container (see [`Scope::create`]) and waits until it answers.
    async fn run(&self, name: &str, labels: &[&str], publish: bool) -> Container {
        let container = self.create(name, labels, publish, &[]).await;
        container.start().await;
        container
    }
}

/// A test container; removed (`docker rm -f`) when dropped.
struct Container {
    id: String,
    /// What it answers in `container`.
    name: String,
    publish: bool,
}

impl Container {
    /// Starts it and waits until it answers on its address.
    async fn start(&self) {
        docker(&["start", &self.id]).await;
        self.wait_ready().await;
    }

    /// Stops it (the echo server exits on SIGTERM at once).
    async fn stop(&self) {
        docker(&["stop", "--time", "5", &self.id]).await;
    }

    /// Where it can be reached from here while it runs: its published port, or its
    /// bridge address.
    async fn addr(&self) -> String {
        if self.publish {
            let ports = docker(&["port", &self.id, &format!("{PORT}/tcp")]).await;
            ports
                .lines()
                .next()
                .unwrap_or_else(|| panic!("container {} publishes no port", self.name))
                .to_owned()
        } else {
            let format = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}";
            let ips = docker(&["inspect", "--format", format, &self.id]).await;
            let ip = ips
                .split_whitespace()
                .next()
                .unwrap_or_else(|| panic!("container {} has no network address", self.name));
            format!("{ip}:{PORT}")
        }
    }

    /// Waits until it answers a request on its address, for [`READY_WITHIN`].
    async fn wait_ready(&self) {
        let url = format!("http://{}/ready", self.addr().await);
        let client = client();
        let start = Instant::now();
        loop {
            let answer = client.get(&url).send().await;
            let last = match answer {
                Ok(response) if response.status() == StatusCode::OK => {
                    let echo: Value = response.json().await.unwrap_or_default();
                    if echo["container"] == self.name.as_str() {
                        return;
                    }
                    format!("{echo}")
                }
                Ok(response) => format!("status {}", response.status()),
                Err(error) => error.to_string(),
            };
            assert!(
                start.elapsed() < READY_WITHIN,
                "container {} does not answer at {url} within {READY_WITHIN:?}: {last}",
                self.name
            );
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }

    /// The engine's health status: `starting`, `healthy`, `unhealthy`, or empty without a
    /// health check.
    async fn health(&self) -> String {
        let format = "{{if .State.Health}}{{.State.Health.Status}}{{end}}";
        docker(&["inspect", "--format", format, &self.id]).await
    }

    /// Waits until the engine reports health `status`, for [`HEALTH_WITHIN`].
    async fn wait_health(&self, status: &str) {
        let start = Instant::now();
        loop {
            let health = self.health().await;
            if health == status {
                return;
            }
            assert!(
                start.elapsed() < HEALTH_WITHIN,
                "container {} is still `{health}` after {HEALTH_WITHIN:?}, not `{status}`",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Marks it unhealthy (`true`) or healthy for its health check (a non-empty or an empty
    /// `/unhealthy`: see tests/docker/echo.rs).
    async fn mark_unhealthy(&self, unhealthy: bool) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("unhealthy");
        std::fs::write(&file, if unhealthy { "1" } else { "" }).expect("write the marker");
        let file = file.to_str().expect("a UTF-8 path");
        docker(&["cp", file, &format!("{}:/unhealthy", self.id)]).await;
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Err(error) = docker_sync(&["rm", "-f", "-v", &self.id]) {
            eprintln!("removing container {}: {error}", self.name);
        }
    }
}

/// `docker create` arguments for a health check that runs every half second and turns the
/// container unhealthy at its first failure.
const HEALTH_CHECK: &[&str] = &[
    "--health-cmd",
    "probe",
    "--health-interval",
    "500ms",
    "--health-timeout",
    "2s",
    "--health-retries",
    "1",
];

// Requests.

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

/// What one request answered.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: String,
    json: Value,
}

impl Answer {
    /// The container that answered with a 200 echo.
    fn container(&self) -> Option<&str> {
        (self.status == StatusCode::OK)
            .then(|| self.json["container"].as_str())
            .flatten()
    }

    fn is_unavailable(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE
            && self.json["error"]["code"] == "upstream_unavailable"
    }
}

/// `GET url`; fails the test when no answer comes.
async fn get(client: &reqwest::Client, url: &str) -> Answer {
    send(client.get(url), "GET", url).await
}

/// `POST url` with a small body: a request the proxy never tries on a second target.
async fn post(client: &reqwest::Client, url: &str) -> Answer {
    send(client.post(url).body("x".repeat(100)), "POST", url).await
}

async fn send(request: reqwest::RequestBuilder, method: &str, url: &str) -> Answer {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: no answer: {e}"));
    let status = response.status();
    let body = response.text().await.expect("body");
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Answer { status, body, json }
}

/// Polls `GET url` until container `name` answers it, for `within`; gives the time it took.
async fn wait_served_by(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let answer = get(client, url).await;
        if answer.container() == Some(name) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "GET {url} is not answered by container {name} within {within:?}; last: {} {}",
            answer.status,
            answer.body
        );
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Polls `GET url` until it answers 503 `upstream_unavailable`, for `within`; gives the time
/// it took.
async fn wait_unavailable(client: &reqwest::Client, url: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let answer = get(client, url).await;
        if answer.is_unavailable() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "GET {url} does not answer 503 upstream_unavailable within {within:?}; last: {} {}",
            answer.status,
            answer.body
        );
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Sends `GET url` `n` times, each of which must be a 200 echo, and counts the answers by
/// container.
async fn tally(client: &reqwest::Client, url: &str, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for i in 0..n {
        let answer = get(client, url).await;
        let name = answer.container().unwrap_or_else(|| {
            panic!("GET {url} (request {i}): {} {}", answer.status, answer.body)
        });
        *counts.entry(name.to_owned()).or_insert(0) += 1;
    }
    counts
}

// Gateways.

/// A gateway in this process, started on a file in a temporary directory.
struct Gateway {
    client: reqwest::Client,
    base: String,
    _dir: TempDir,
    _server: Server,
}

impl Gateway {
    async fn start(yaml: &str) -> Gateway {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("routes.yml");
        std::fs::write(&file, yaml).expect("write the routes file");
        let mut config = Config::new(String::new());
        config.port = 0;
        config.shutdown_timeout = Duration::from_secs(2);
        let server = server::start_gateway(config, file)
            .await
            .unwrap_or_else(|error| panic!("the gateway starts: {error}\n{yaml}"));
        Gateway {
            client: client(),
            base: format!("http://{}", server.addr()),
            _dir: dir,
            _server: server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A gateway file routing `/api/payment` to backend `payment`, which selects `selector`.
fn payment_routes(selector: &[String]) -> String {
    format!(
        "routes:\n  - path_prefix: /api/payment\n    backend: payment\nbackends:\n  - name: \
         payment\n    match_labels: {}\n",
        json!(selector)
    )
}

// Selection.

#[tokio::test]
async fn a_container_with_every_label_is_served_and_one_with_some_of_them_never() {
    let scope = Scope::new();
    let _pay = scope
        .run("pay", &["app_name=payment", "env=production"], true)
        .await;
    let _half = scope.run("half", &["app_name=payment"], true).await;
    let _staging = scope
        .run("staging", &["app_name=payment", "env=staging"], true)
        .await;
    let gw = Gateway::start(&payment_routes(
        &scope.selector(&["app_name=payment", "env=production"]),
    ))
    .await;

    let url = gw.url("/api/payment/charges/7?full=1");
    wait_served_by(&gw.client, &url, "pay", STARTS_WITHIN).await;
    let answer = get(&gw.client, &url).await;
    assert_eq!(
        answer.json["path"], "/api/payment/charges/7?full=1",
        "the full path and query reach the container: {}",
        answer.body
    );
    let counts = tally(&gw.client, &url, 20).await;
    assert_eq!(counts, HashMap::from([("pay".to_owned(), 20)]));
}

#[tokio::test]
async fn matching_containers_share_the_traffic() {
    let scope = Scope::new();
    let labels = ["app_name=payment", "env=production"];
    let _a = scope.run("a", &labels, true).await;
    let _b = scope.run("b", &labels, true).await;
    let gw = Gateway::start(&payment_routes(&scope.selector(&labels))).await;

    let url = gw.url("/api/payment");
    wait_served_by(&gw.client, &url, "a", STARTS_WITHIN).await;
    wait_served_by(&gw.client, &url, "b", STARTS_WITHIN).await;
    let counts = tally(&gw.client, &url, 100).await;
    assert_eq!(counts.values().sum::<usize>(), 100, "{counts:?}");
    assert!(
        counts.get("a").is_some_and(|&n| n > 0) && counts.get("b").is_some_and(|&n| n > 0),
        "both containers answer some of 100 requests (policy random): {counts:?}"
    );
}

// Changes, followed from the engine's events.

#[tokio::test]
async fn a_container_started_after_the_gateway_gets_traffic() {
    let scope = Scope::new();
    let labels = ["app_name=payment"];
    let _a = scope.run("a", &labels, true).await;
    let gw = Gateway::start(&payment_routes(&scope.selector(&labels))).await;
    let url = gw.url("/api/payment");
    wait_served_by(&gw.client, &url, "a", STARTS_WITHIN).await;

    let _b = scope.run("b", &labels, true).await;
    let took = wait_served_by(&gw.client, &url, "b", JOINS_WITHIN).await;
    eprintln!("a container started after the gateway got traffic after {took:?}");
    let counts = tally(&gw.client, &url, 100).await;
    assert!(counts.get("a").is_some_and(|&n| n > 0), "{counts:?}");
}

#[tokio::test]
async fn a_stopped_container_leaves_within_a_second_and_comes_back_when_started() {
    let scope = Scope::new();
    let labels = ["app_name=payment"];
    let pay = scope.run("pay", &labels, true).await;
    let gw = Gateway::start(&payment_routes(&scope.selector(&labels))).await;
    let url = gw.url("/api/payment");
    wait_served_by(&gw.client, &url, "pay", STARTS_WITHIN).await;
    let before = pay.addr().await;

    pay.stop().await;
    let took = wait_unavailable(&gw.client, &url, LEAVES_WITHIN).await;
    eprintln!("the stopped container's route answered 503 after {took:?}");
    for _ in 0..5 {
        let answer = get(&gw.client, &url).await;
        assert!(answer.is_unavailable(), "after the stop: {answer:?}");
    }

    // Started again, it is published on a new host port, which the gateway must learn.
    pay.start().await;
    let after = pay.addr().await;
    let took = wait_served_by(&gw.client, &url, "pay", JOINS_WITHIN).await;
    eprintln!(
        "the container (at {before}, then {after}) was served again {took:?} after it answered"
    );
    let counts = tally(&gw.client, &url, 10).await;
    assert_eq!(counts, HashMap::from([("pay".to_owned(), 10)]));
}

#[tokio::test]
async fn a_stopped_container_gets_no_more_requests_while_another_serves() {
    let scope = Scope::new();
    let labels = ["app_name=payment"];
    let a = scope.run("a", &labels, true).await;
    let _b = scope.run("b", &labels, true).await;
    let gw = Gateway::start(&payment_routes(&scope.selector(&labels))).await;
    let url = gw.url("/api/payment");
    wait_served_by(&gw.client, &url, "a", STARTS_WITHIN).await;
    wait_served_by(&gw.client, &url, "b", STARTS_WITHIN).await;

    // A request with a body is not tried again elsewhere when its target refuses it, so
    // one sent to the stopped container would fail: past the second, none may be. (A
    // target kept in the set is tried again whenever its passive-health back-off ends: a
    // static backend in its place fails such requests about 1 s and 3 s after the stop.)
    a.stop().await;
    let stopped = Instant::now();
    let watch = LEAVES_WITHIN + Duration::from_millis(2500);
    let (mut checked, mut early_failures) = (0, 0);
    while stopped.elapsed() < watch {
        let sent = stopped.elapsed();
        let answer = post(&gw.client, &url).await;
        if sent < LEAVES_WITHIN {
            early_failures += usize::from(answer.container() != Some("b"));
        } else {
            assert_eq!(
                answer.container(),
                Some("b"),
                "POST {sent:?} after the stop of a: {answer:?}"
            );
            checked += 1;
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    eprintln!("{early_failures} requests failed in the first {LEAVES_WITHIN:?} after the stop");
    assert!(checked > 10, "only {checked} requests checked");
}

#[tokio::test]
async fn only_healthy_containers_get_traffic_when_they_have_a_health_check() {
    let scope = Scope::new();
    let labels = ["app_name=payment"];
    let _plain = scope.run("plain", &labels, true).await;
    // Unhealthy from its first check on.
    let checked = scope.create("checked", &labels, true, HEALTH_CHECK).await;
    checked.mark_unhealthy(true).await;
    checked.start().await;
    checked.wait_health("unhealthy").await;

    let gw = Gateway::start(&payment_routes(&scope.selector(&labels))).await;
    let url = gw.url("/api/payment");
    wait_served_by(&gw.client, &url, "plain", STARTS_WITHIN).await;
    let counts = tally(&gw.client, &url, 30).await;
    assert_eq!(
        counts,
        HashMap::from([("plain".to_owned(), 30)]),
        "an unhealthy container gets no traffic, though it answers"
    );

    checked.mark_unhealthy(false).await;
    checked.wait_health("healthy").await;
    let took = wait_served_by(&gw.client, &url, "checked", JOINS_WITHIN).await;
    eprintln!("the container was served {took:?} after the engine reported it healthy");

    checked.mark_unhealthy(true).await;
    checked.wait_health("unhealthy").await;
    // Gone when 30 answers in a row come from the other one (both would answer some, by
    // random choice, with a chance of 2^-30 otherwise).
    let start = Instant::now();
    let mut streak: Option<(Instant, usize)> = None;
    loop {
        let sent = Instant::now();
        let answer = get(&gw.client, &url).await;
        match answer.container() {
            Some("plain") => {
                let (first, n) = streak.unwrap_or((sent, 0));
                streak = Some((first, n + 1));
            }
            Some("checked") => streak = None,
            _ => panic!("GET {url}: {answer:?}"),
        }
        if let Some((first, 30)) = streak {
            let took = first.duration_since(start);
            eprintln!("the unhealthy container left {took:?} after the engine reported it");
            assert!(
                took <= LEAVES_WITHIN,
                "an unhealthy container still got traffic {took:?} after the engine said so"
            );
            break;
        }
        assert!(
            start.elapsed() < LEAVES_WITHIN + Duration::from_secs(3),
            "an unhealthy container still gets traffic {:?} after the engine said so",
            start.elapsed()
        );
    }
}

// Addresses.

#[tokio::test]
async fn the_switchyard_port_label_reaches_a_container_on_its_bridge_address() {
    let scope = Scope::new();
    let bridge = scope
        .run(
            "bridge",
            &["app_name=internal", "switchyard.port=8080"],
            false,
        )
        .await;
    // Matches too, but publishes no port and names none: nowhere to send to.
    let _closed = scope.run("closed", &["app_name=internal"], false).await;
    let gw = Gateway::start(&payment_routes(&scope.selector(&["app_name=internal"]))).await;

    let url = gw.url("/api/payment/x");
    let took = wait_served_by(&gw.client, &url, "bridge", STARTS_WITHIN).await;
    eprintln!(
        "served on the bridge address {} after {took:?}",
        bridge.addr().await
    );
    let counts = tally(&gw.client, &url, 20).await;
    assert_eq!(counts, HashMap::from([("bridge".to_owned(), 20)]));
}

// Project backends, through the admin API.

async fn put_backend(app: &TestApp, token: &str, name: &str, body: &Value) -> reqwest::Response {
    app.call(
        Method::PUT,
        &format!("/admin/projects/alice/shop/backends/{name}"),
        Some(token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_project_backend_selects_containers_through_the_admin_api() {
    let scope = Scope::new();
    let _pay = scope
        .run("pay", &["app_name=payment", "env=production"], true)
        .await;
    let _staging = scope
        .run("staging", &["app_name=payment", "env=staging"], true)
        .await;
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "shop").await;

    let invalid = json!({"docker": {"match_labels": []}});
    assert_invalid(
        put_backend(&app, &alice.token, "pay", &invalid).await,
        "docker.match_labels",
    )
    .await;

    let production = scope.selector(&["app_name=payment", "env=production"]);
    let body = json!({"docker": {"match_labels": production}});
    let response = put_backend(&app, &alice.token, "pay", &body).await;
    let status = response.status();
    assert_eq!(status, StatusCode::CREATED, "{}", json_body(response).await);
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/backends/pay",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let stored = json_body(response).await;
    assert_eq!(
        stored["docker"]["match_labels"],
        json!(production),
        "{stored}"
    );
    let endpoint = json!({"method": "ANY", "path": "/pay", "proxy": {"backend": "pay"}});
    let response = app.post_endpoint(&alice, "alice/shop", &endpoint).await;
    let status = response.status();
    assert_eq!(status, StatusCode::CREATED, "{}", json_body(response).await);

    let client = client();
    let url = app.url("/alice/shop/pay/charges?n=1");
    wait_served_by(&client, &url, "pay", STARTS_WITHIN).await;
    let answer = get(&client, &url).await;
    assert_eq!(answer.json["path"], "/pay/charges?n=1", "{}", answer.body);
    let counts = tally(&client, &url, 20).await;
    assert_eq!(counts, HashMap::from([("pay".to_owned(), 20)]));

    // A new selector switches the traffic.
    let staging = scope.selector(&["app_name=payment", "env=staging"]);
    let body = json!({"docker": {"match_labels": staging}});
    let response = put_backend(&app, &alice.token, "pay", &body).await;
    let status = response.status();
    assert_eq!(status, StatusCode::OK, "{}", json_body(response).await);
    let took = wait_served_by(&client, &url, "staging", JOINS_WITHIN).await;
    eprintln!("the new selector was served after {took:?}");
    let counts = tally(&client, &url, 20).await;
    assert_eq!(counts, HashMap::from([("staging".to_owned(), 20)]));
}

// The engine out of reach.

/// A gateway file with a static route `/static` to `static_url` and `/api/payment` to a
/// Docker backend selecting `selector`.
fn mixed_routes(static_url: &str, selector: &[String]) -> String {
    format!(
        "routes:
  - path_prefix: /static
    backend: static
  - path_prefix: /api/payment
    backend: payment
backends:
  - name: static
    urls: [\"{static_url}\"]
  - name: payment
    match_labels: {}
",
        json!(selector)
    )
}

#[tokio::test]
async fn an_unreachable_engine_answers_503_and_the_gateway_serves_on() {
    // Needs no engine: the gateway is pointed at a socket that does not exist.
    let upstream = Upstream::start("static").await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("routes.yml");
    let selector = ["app_name=payment".to_owned()];
    std::fs::write(&file, mixed_routes(&upstream.url(), &selector)).expect("write");
    let nowhere = format!("unix://{}", dir.path().join("nonexistent.sock").display());
    let (process, stderr) = Process::gateway(
        &file,
        &["--log-level", "info"],
        &[("DOCKER_HOST", &nowhere)],
    )
    .await;
    let client = client();

    let health = get(&client, &format!("{}/health", process.base)).await;
    assert_eq!(health.status, StatusCode::OK, "{health:?}");
    let url = format!("{}/api/payment/x", process.base);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        let sent = Instant::now();
        let answer = get(&client, &url).await;
        assert!(
            answer.is_unavailable(),
            "without an engine: {answer:?}\n{:#?}",
            stderr.lock()
        );
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "a 503 without an engine took {:?}",
            sent.elapsed()
        );
        let echoed = get(&client, &format!("{}/static", process.base)).await;
        assert_eq!(
            (echoed.status, &echoed.json["upstream"]),
            (StatusCode::OK, &json!("static")),
            "a static route is served without an engine: {echoed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    process.terminate().await;
}

/// Where the engine the `docker` CLI talks to listens: `DOCKER_HOST`, or the local socket.
enum Engine {
    Unix(PathBuf),
    Tcp(String),
}

fn engine() -> Engine {
    match std::env::var("DOCKER_HOST") {
        Err(_) => Engine::Unix(PathBuf::from("/var/run/docker.sock")),
        Ok(host) if host.is_empty() => Engine::Unix(PathBuf::from("/var/run/docker.sock")),
        Ok(host) => {
            if let Some(path) = host.strip_prefix("unix://") {
                Engine::Unix(PathBuf::from(path))
            } else if let Some(addr) = host.strip_prefix("tcp://") {
                Engine::Tcp(addr.trim_end_matches('/').to_owned())
            } else {
                panic!("DOCKER_HOST={host}: this test forwards unix:// and tcp:// engines only")
            }
        }
    }
}

/// Forwards every connection to `socket` to the engine, from now on.
fn forward_to_engine(socket: &Path) {
    let listener = tokio::net::UnixListener::bind(socket).expect("bind the socket");
    tokio::spawn(async move {
        while let Ok((mut incoming, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = match engine() {
                    Engine::Unix(path) => match tokio::net::UnixStream::connect(path).await {
                        Ok(mut out) => tokio::io::copy_bidirectional(&mut incoming, &mut out).await,
                        Err(error) => Err(error),
                    },
                    Engine::Tcp(addr) => match tokio::net::TcpStream::connect(addr).await {
                        Ok(mut out) => tokio::io::copy_bidirectional(&mut incoming, &mut out).await,
                        Err(error) => Err(error),
                    },
                };
            });
        }
    });
}

#[tokio::test]
async fn discovery_finds_the_engine_when_it_answers_again() {
    let scope = Scope::new();
    let labels = ["app_name=payment"];
    let _pay = scope.run("pay", &labels, true).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("routes.yml");
    std::fs::write(&file, payment_routes(&scope.selector(&labels))).expect("write");
    // The gateway's engine is a socket of this test, which answers only from a point on.
    let socket = dir.path().join("docker.sock");
    let (process, stderr) = Process::gateway(
        &file,
        &["--log-level", "info"],
        &[("DOCKER_HOST", &format!("unix://{}", socket.display()))],
    )
    .await;
    let client = client();
    let url = format!("{}/api/payment", process.base);
    for _ in 0..5 {
        let answer = get(&client, &url).await;
        assert!(answer.is_unavailable(), "no engine yet: {answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    forward_to_engine(&socket);
    let within = Duration::from_secs(10);
    let start = Instant::now();
    loop {
        let answer = get(&client, &url).await;
        if answer.container() == Some("pay") {
            break;
        }
        assert!(
            start.elapsed() < within,
            "the engine answers again, yet {url} is not served within {within:?}: {answer:?}\n\
             {:#?}",
            stderr.lock()
        );
        tokio::time::sleep(PROBE_EVERY).await;
    }
    eprintln!(
        "served {:?} after the engine could be reached again",
        start.elapsed()
    );
    process.terminate().await;
}
