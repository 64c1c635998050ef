//! The one way tests start Switchyard: the real server on 127.0.0.1:0 with a fresh SQLite
//! file in a temporary directory, spoken to over plain HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use switchyard::config::Config;
use switchyard::server::{self, Server};
use tempfile::TempDir;

/// A running server and a client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub dir: TempDir,
    pub config: Config,
    server: Option<Server>,
}

/// A registered, logged-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub password: String,
    pub token: String,
}

pub const PASSWORD: &str = "correct horse battery";

/// Starts a server with default settings on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server after `adjust` has changed the default settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = Config::new(db_url(&dir.path().join("switchyard.db")));
    config.port = 0;
    config.shutdown_timeout = std::time::Duration::from_secs(2);
    adjust(&mut config);
    start_in(dir, config).await
}

pub fn db_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn start_in(dir: TempDir, config: Config) -> TestApp {
    let server = server::start(config.clone()).await.expect("server starts");
    TestApp {
        addr: server.addr(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        dir,
        config,
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("switchyard.db")
    }

    /// Stops the server gracefully and starts a new one on the same database.
    pub async fn restart(mut self) -> TestApp {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let mut config = self.config.clone();
        config.port = 0;
        start_in(self.dir, config).await
    }

    /// Stops the server gracefully and hands back its directory, database included.
    pub async fn stop(mut self) -> TempDir {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.dir
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Sends `method path` with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    pub async fn register(&self, name: &str, password: &str) -> Response {
        self.call(
            Method::POST,
            "/auth/register",
            None,
            Some(&json!({"username": name, "password": password})),
        )
        .await
    }

    pub async fn login(&self, name: &str, password: &str) -> Response {
        self.call(
            Method::POST,
            "/auth/login",
            None,
            Some(&json!({"username": name, "password": password})),
        )
        .await
    }

    /// Registers `name` and logs in.
    pub async fn user(&self, name: &str) -> User {
        let response = self.register(name, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED, "register {name}");
        let response = self.login(name, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "login {name}");
        let body: Value = response.json().await.expect("login body");
        User {
            name: name.to_owned(),
            password: PASSWORD.to_owned(),
            token: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
        }
    }

    pub async fn create_project(&self, user: &User, name: &str) -> Response {
        self.call(
            Method::POST,
            "/admin/projects",
            Some(&user.token),
            Some(&json!({"name": name})),
        )
        .await
    }

    /// Creates `user`'s project `name` holding `endpoints`, which must succeed.
    pub async fn create_project_with(&self, user: &User, name: &str, endpoints: Value) {
        self.create_project_from(user, name, json!({ "endpoints": endpoints }))
            .await;
    }

    /// Creates `user`'s project `name` from a whole definition (`body`, its `name` set
    /// here), which must succeed.
    pub async fn create_project_from(&self, user: &User, name: &str, body: Value) {
        let mut body = body;
        body["name"] = json!(name);
        let response = self
            .call(
                Method::POST,
                "/admin/projects",
                Some(&user.token),
                Some(&body),
            )
            .await;
        let status = response.status();
        assert_eq!(status, StatusCode::CREATED, "{}", json_body(response).await);
    }

    /// `user`'s read of the journal of their project `key` (`owner/name`), with `query`
    /// (`?status=4xx`, or empty), which must succeed.
    pub async fn journal(&self, user: &User, key: &str, query: &str) -> Value {
        let response = self
            .call(
                Method::GET,
                &format!("/admin/projects/{key}/journal{query}"),
                Some(&user.token),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{query}");
        json_body(response).await
    }

    /// Adds an endpoint to `owner/project` and returns the answer.
    pub async fn post_endpoint(&self, user: &User, project: &str, endpoint: &Value) -> Response {
        self.call(
            Method::POST,
            &format!("/admin/projects/{project}/endpoints"),
            Some(&user.token),
            Some(endpoint),
        )
        .await
    }

    /// Adds `GET path` answering `json` and returns the endpoint's id.
    pub async fn add_json_endpoint(
        &self,
        user: &User,
        project: &str,
        path: &str,
        json: Value,
    ) -> String {
        let response = self
            .post_endpoint(
                user,
                project,
                &json!({"method": "GET", "path": path, "response": {"json": json}}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("endpoint body");
        body["id"].as_str().expect("id").to_owned()
    }
}

/// Reads a JSON body, failing the test with the text when it is not JSON.
pub async fn json_body(response: Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts the documented error format and code, and returns the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id on every answer")
        .to_str()
        .expect("ascii")
        .to_owned();
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], code, "code in {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    assert_eq!(
        body["error"]["request_id"], request_id,
        "request id in {body}"
    );
    body
}

/// The value of header `name`, failing the test when it is absent or not text.
pub fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no `{name}` header"))
        .to_str()
        .expect("header text")
        .to_owned()
}

impl TestApp {
    /// Sends `method path` with an optional bearer token, extra headers and a raw body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        request.send().await.expect("request")
    }

    /// Sends a JSON body with one extra header, such as `If-Match`.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        header: (&str, &str),
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header(header.0, header.1);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    /// Creates `user`'s project `name`, asserting 201, and returns its body.
    pub async fn project(&self, user: &User, name: &str) -> Value {
        let response = self.create_project(user, name).await;
        assert_eq!(response.status(), StatusCode::CREATED, "create {name}");
        json_body(response).await
    }

    /// Reads project `owner/name` as `user`, asserting 200.
    pub async fn read_project(&self, user: &User, key: &str) -> Value {
        let response = self
            .call(
                Method::GET,
                &format!("/admin/projects/{key}"),
                Some(&user.token),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "read {key}");
        json_body(response).await
    }

    /// The current revision of project `owner/name`, as `user` reads it.
    pub async fn revision(&self, user: &User, key: &str) -> i64 {
        self.read_project(user, key).await["revision"]
            .as_i64()
            .expect("revision")
    }

    /// GETs `path` and returns its status and body text.
    pub async fn fetch(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.text().await.expect("body"))
    }
}

/// Asserts a 422 whose first detail names `field`, and returns the body.
pub async fn assert_invalid(response: Response, field: &str) -> Value {
    let body = assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        body["error"]["details"][0]["field"], field,
        "details in {body}"
    );
    body
}

/// An answer read off a raw socket: the head as text and the body bytes.
pub struct RawAnswer {
    pub head: String,
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// The status code of the answer's status line.
    pub fn status(&self) -> u16 {
        self.head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {:?}", self.head))
    }

    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Reads one answer (with a `content-length` body, or none) from a raw socket; bytes read
/// past it stay in `pending` for the next call. `None` when the server closed the
/// connection first. Fails the test after 10 s.
pub async fn read_raw_answer(
    stream: &mut tokio::net::TcpStream,
    pending: &mut Vec<u8>,
) -> Option<RawAnswer> {
    use tokio::io::AsyncReadExt;
    let read = async {
        loop {
            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&pending[..end]).into_owned();
                let answer = RawAnswer {
                    head,
                    body: Vec::new(),
                };
                let length: usize = answer
                    .header("content-length")
                    .map_or(0, |v| v.parse().expect("content-length"));
                if pending.len() >= end + 4 + length {
                    let body = pending[end + 4..end + 4 + length].to_vec();
                    pending.drain(..end + 4 + length);
                    return Some(RawAnswer { body, ..answer });
                }
            }
            let mut buffer = [0u8; 4096];
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => pending.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("an answer or a close within 10 s")
}

/// Waits until the server closes `stream` (a read returns 0 or fails), reading what it
/// sends meanwhile; `None` when it is still open after `within`.
pub async fn wait_for_close(
    stream: &mut tokio::net::TcpStream,
    within: std::time::Duration,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let read = async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(seen)
}

/// The real binary, started on port 0, with the address it printed: for tests that kill
/// it, signal it, or read its memory (its own, not the test runner's).
pub struct Process {
    pub child: tokio::process::Child,
    pub base: String,
}

impl Process {
    /// Starts `switchyard serve` on `db` with extra `args`; it logs errors only.
    pub async fn start(db: &str, args: &[&str]) -> Process {
        let mut all = vec!["--log-level", "error"];
        all.extend_from_slice(args);
        Process::start_with_logs(db, &all).await
    }

    /// Like [`Process::start`], with the binary's own log settings unless `args` set them.
    pub async fn start_with_logs(db: &str, args: &[&str]) -> Process {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--port", "0", "--db", db])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let base = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("stdout line") {
                if let Some(url) = line.strip_prefix("Switchyard listening on ") {
                    return url.to_owned();
                }
            }
            panic!("the binary exited before listening");
        })
        .await
        .expect("the binary listens within 30 s");
        Process { child, base }
    }

    /// Starts `switchyard gateway -c file -p 0` with extra `args` and environment `envs`
    /// (a process of its own, so that its environment is its own), and collects every line
    /// it writes to stderr as it comes (so that it never blocks on a full pipe).
    pub async fn gateway(
        file: &std::path::Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> (Process, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let file = file.to_str().expect("a UTF-8 path");
        let mut all = vec!["gateway", "-c", file, "-p", "0"];
        all.extend_from_slice(args);
        Process::spawn(None, &all, envs).await
    }

    /// Starts the binary with `args` (a command that serves, on port 0) in `dir`, with the
    /// environment `envs` added, and waits for the first line on stdout that gives its URL
    /// (`… http://ADDRESS…`). Every line on stderr is collected as it comes (so that it
    /// never blocks on a full pipe).
    pub async fn spawn(
        dir: Option<&std::path::Path>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> (Process, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::AsyncBufReadExt;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let mut child = command
            .args(args)
            .envs(envs.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
        let logged = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                logged.lock().expect("stderr lines").push(line);
            }
        });
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("stdout line") {
                if let Some(at) = line.find("http://") {
                    let url = line[at..].split_whitespace().next().unwrap_or_default();
                    return url.trim_end_matches('/').to_owned();
                }
            }
            panic!("the binary exited before listening: {:#?}", stderr.lock());
        })
        .await
        .expect("the binary listens within 30 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (Process { child, base }, stderr)
    }

    /// Sends SIGTERM and waits (up to 15 s) for a clean exit.
    pub async fn terminate(mut self) {
        let pid = self.child.id().expect("a pid").to_string();
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(signalled.success());
        let status = tokio::time::timeout(std::time::Duration::from_secs(15), self.child.wait())
            .await
            .expect("the process exits")
            .expect("exit status");
        assert!(status.success(), "exit status {status}");
    }

    /// A `/proc/PID/status` figure in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let pid = self.child.id().expect("the binary runs");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
    }
}

/// Runs the `switchyard` binary with `args` in `dir`, with only the given environment and
/// no input, and waits (at most 60 s) for it to end.
pub async fn run_binary(
    dir: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env_clear()
        .envs(envs.iter().copied())
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(60), child)
        .await
        .expect("the command ends within 60 s")
        .expect("the binary runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
