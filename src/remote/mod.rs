//! The CLI's client of a running server: `switchyard dataset import`, `push`, `pull` and
//! `login` (`folders`, `login`). It speaks the platform API over HTTP(S) with a bearer token, as any other
//! client does, and knows nothing of the server's insides: it shares no type with
//! `platform` or `dataset`, only the JSON the API documents.
//!
//! An import streams the file (never read whole into memory) through [`Upload`], which counts
//! the bytes and, for CSV and JSON lines, the records as they go out, for the progress line
//! on stderr. Before the upload a cheap authenticated read of the project checks the token
//! and the project, so a wrong token is told at once, not after gigabytes were sent.
//! Failures are a [`RemoteError`]: one line, and a hint where one helps.

mod folders;
mod login;

pub(crate) use login::{Credentials, Login};

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, ReadBuf};

/// Why a command against a server failed. Each renders as one line (the CLI prefixes
/// `switchyard: `); [`RemoteError::hint`] may add a second.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoteError {
    #[error("cannot read {}: {cause}", path.display())]
    File { path: PathBuf, cause: io::Error },
    #[error("{} is not a file", .0.display())]
    NotAFile(PathBuf),
    #[error(
        "cannot tell the format of {} from its name; pass --format csv, json or jsonl",
        .0.display()
    )]
    UnknownFormat(PathBuf),
    #[error("cannot make a dataset name from {}; pass --name", .0.display())]
    NoName(PathBuf),
    #[error("`{0}` is not a server URL (http://HOST:PORT or https://HOST)")]
    BadServer(String),
    #[error("cannot connect to {server}: {cause}")]
    Connect { server: String, cause: String },
    #[error("the request to {server} failed: {cause}")]
    Transport { server: String, cause: String },
    #[error(
        "the connection to {server} broke after {} of {} were sent: {cause}",
        human_bytes(*.sent),
        human_bytes(*.total)
    )]
    Broken {
        server: String,
        sent: u64,
        total: u64,
        cause: String,
    },
    #[error("{}", .0.line())]
    Refused(Refusal),
    #[error("the server's answer ({status}) is not what this client expects: {cause}")]
    Unexpected { status: u16, cause: String },
}

impl RemoteError {
    /// A second line telling what to do, where there is something to tell.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            RemoteError::Connect { server, .. } => {
                Some(format!("is the server running at {server}?"))
            }
            RemoteError::Broken { .. } => Some(
                "the server may have refused the upload before reading all of it; its log \
                 says why"
                    .to_owned(),
            ),
            RemoteError::Refused(refusal) => refusal.hint(),
            _ => None,
        }
    }
}

/// An error answer of the server, from its JSON error body
/// (`{"error": {"code", "message", "request_id", "details"}}`) or, for an answer that is
/// not one (a proxy in between), from its status and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) code: Option<String>,
    pub(crate) message: String,
    /// `(field, message)` pairs of a 422.
    pub(crate) details: Vec<(String, String)>,
    pub(crate) request_id: Option<String>,
    /// What was refused: `upload`, `push`, `pull`, `login`.
    pub(crate) action: &'static str,
}

impl Refusal {
    pub(crate) fn parse(status: StatusCode, body: &[u8]) -> Refusal {
        #[derive(Deserialize)]
        struct Answer {
            error: ErrorBody,
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            code: String,
            message: String,
            #[serde(default)]
            request_id: Option<String>,
            #[serde(default)]
            details: Vec<Detail>,
        }
        #[derive(Deserialize)]
        struct Detail {
            #[serde(default)]
            field: String,
            message: String,
        }
        match serde_json::from_slice::<Answer>(body) {
            Ok(Answer { error }) => Refusal {
                status: status.as_u16(),
                code: Some(error.code),
                message: error.message,
                details: error
                    .details
                    .into_iter()
                    .map(|d| (d.field, d.message))
                    .collect(),
                request_id: error.request_id,
                action: "upload",
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text = text.lines().map(str::trim).find(|l| !l.is_empty());
                let message = match text {
                    Some(text) => shorten(text, 200),
                    None => "(no explanation in the answer)".to_owned(),
                };
                Refusal {
                    status: status.as_u16(),
                    code: None,
                    message,
                    details: Vec::new(),
                    request_id: None,
                    action: "upload",
                }
            }
        }
    }

    /// `the server refused the upload (422 validation_failed): line 12, column …`.
    pub(crate) fn line(&self) -> String {
        let verb = if self.status >= 500 {
            "failed"
        } else {
            "refused"
        };
        let code = match &self.code {
            Some(code) => code.clone(),
            None => StatusCode::from_u16(self.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("unknown status")
                .to_owned(),
        };
        let mut line = format!(
            "the server {verb} the {} ({} {code}): ",
            self.action, self.status
        );
        // One detail that names its own field (a bad row: `line 12, column `x`: …`) says
        // it all, whether or not the message repeats it after the field's name.
        if let [(field, message)] = self.details.as_slice()
            && message.contains(&format!("`{field}`"))
            && self.message.ends_with(message.as_str())
        {
            line.push_str(message);
            return line;
        }
        line.push_str(&self.message);
        // Details the message does not already say ("2 fields are invalid" needs them).
        let extra: Vec<String> = self
            .details
            .iter()
            .filter(|(_, message)| !self.message.contains(message.as_str()))
            .map(|(field, message)| {
                if field.is_empty() {
                    message.clone()
                } else {
                    format!("{field}: {message}")
                }
            })
            .collect();
        if !extra.is_empty() {
            line.push_str(": ");
            line.push_str(&extra.join("; "));
        }
        if self.status >= 500
            && let Some(id) = &self.request_id
        {
            let _ = write!(line, " (request id {id})");
        }
        line
    }

    fn hint(&self) -> Option<String> {
        let code = self.code.as_deref().unwrap_or("");
        if self.action != "upload" {
            let hint = match (self.status, code) {
                (401, _) => "run switchyard login, or pass --token or set SWITCHYARD_TOKEN",
                (403, _) => "only the project's owner or an admin may change it",
                (404, "project_not_found") => {
                    "check OWNER/PROJECT (switchyard pull alice/shop DIR)"
                }
                (404 | 405, _) => {
                    "the server has no folder API at this path; is it a Switchyard recent enough \
                     for push and pull?"
                }
                (412, _) => "the project changed on the server meanwhile; pull it, or push again",
                (413, _) => "the server takes admin bodies up to its --admin-body-limit",
                _ => return None,
            };
            return Some(hint.to_owned());
        }
        let hint = match (self.status, code) {
            (401, _) => "log in and pass --token or set SWITCHYARD_TOKEN",
            (403, "forbidden") => "only the project's owner or an admin may change it",
            (404, "project_not_found") => {
                "create the project first (POST /admin/projects with {\"name\": \"…\"})"
            }
            (409, "route_conflict") => {
                "pass --prefix /PATH to put the dataset's endpoints beside the others"
            }
            (404 | 405, _) => {
                "the server has no dataset API at this path; is it a Switchyard recent enough \
                 for datasets?"
            }
            (413, _) => {
                "the server takes datasets up to its --dataset-max-bytes; raise that on the \
                 server, or upload a smaller file"
            }
            (415, _) => "pass --format csv, json or jsonl",
            _ => return None,
        };
        Some(hint.to_owned())
    }
}

/// `text` cut to `max` characters, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The innermost cause of a client error: `Connection refused (os error 111)` rather than
/// reqwest's `error sending request for url (…)`.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// `owner/project`, as `--project` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProjectRef {
    pub(crate) owner: String,
    pub(crate) name: String,
}

impl ProjectRef {
    pub(crate) fn parse(value: &str) -> Result<ProjectRef, String> {
        match value.split_once('/') {
            Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(ProjectRef {
                    owner: owner.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(format!(
                "`{value}` is not OWNER/PROJECT (such as alice/iris-demo)"
            )),
        }
    }
}

/// The format of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
    /// One JSON object per line.
    JsonLines,
}

impl Format {
    /// The format a file's extension names: `.csv`, `.json`, `.jsonl` or `.ndjson`.
    pub(crate) fn from_path(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Json => "application/json",
            Format::JsonLines => "application/x-ndjson",
        }
    }

    /// The name the `format` query parameter takes.
    fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::JsonLines => "jsonl",
        }
    }

    /// A counter of this format's records, where records can be counted from line ends.
    fn counter(self) -> Option<RecordCounter> {
        match self {
            Format::Csv => Some(RecordCounter::csv()),
            Format::JsonLines => Some(RecordCounter::lines()),
            Format::Json => None,
        }
    }
}

/// The dataset name of a file when `--name` is not given: its stem, lower-cased, with every
/// character but `a-z`, `0-9`, `_` and `-` made `-`, runs of `-` made one, and `-` and `_`
/// dropped from both ends (`My Data (v2).csv` is `my-data-v2`). `None` when nothing is left.
pub(crate) fn dataset_name(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_string_lossy().to_lowercase();
    let mut name = String::with_capacity(stem.len());
    for c in stem.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    let name = name.trim_matches(['-', '_']);
    (!name.is_empty()).then(|| name.to_owned())
}

/// Checks `--types` (`COLUMN:TYPE,…`, types integer, number, text or boolean) and gives it
/// back tidied (`zip:text,age:integer`).
pub(crate) fn parse_types(spec: &str) -> Result<String, String> {
    let mut declared = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((column, ty)) = item.rsplit_once(':') else {
            return Err(format!("`{item}` is not COLUMN:TYPE"));
        };
        let (column, ty) = (column.trim(), ty.trim().to_ascii_lowercase());
        if column.is_empty() {
            return Err(format!("`{item}` names no column"));
        }
        if !matches!(ty.as_str(), "integer" | "number" | "text" | "boolean") {
            return Err(format!(
                "`{ty}` (in `{item}`) is not a type: integer, number, text or boolean"
            ));
        }
        declared.push(format!("{column}:{ty}"));
    }
    if declared.is_empty() {
        return Err("expected COLUMN:TYPE, such as zip:text,age:integer".to_owned());
    }
    Ok(declared.join(","))
}

/// An answer of the server, read whole.
struct Answer {
    status: StatusCode,
    /// The project revision its `ETag` gives.
    revision: Option<i64>,
    body: Bytes,
}

impl Answer {
    fn json<T: DeserializeOwned>(&self) -> Result<T, RemoteError> {
        serde_json::from_slice(&self.body).map_err(|e| RemoteError::Unexpected {
            status: self.status.as_u16(),
            cause: e.to_string(),
        })
    }

    /// The refusal this answer is, as one of `action`.
    fn refusal(&self, action: &'static str) -> RemoteError {
        RemoteError::Refused(Refusal {
            action,
            ..Refusal::parse(self.status, &self.body)
        })
    }
}

/// A client of one server, as one user (or none).
pub(crate) struct Client {
    base: Url,
    /// The base URL as shown to the user, without a trailing `/`.
    shown: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client of the server at `server` (`http://HOST:PORT`, maybe with a path), sending
    /// `token` as a bearer token when there is one.
    pub(crate) fn new(server: &str, token: Option<String>) -> Result<Client, RemoteError> {
        let bad = || RemoteError::BadServer(server.to_owned());
        let mut base = Url::parse(server).map_err(|_| bad())?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad());
        }
        base.set_query(None);
        base.set_fragment(None);
        let shown = base.as_str().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // A streamed body cannot be sent again to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Transport {
                server: shown.clone(),
                cause: root_cause(&e),
            })?;
        let token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        Ok(Client {
            base,
            shown,
            token,
            http,
        })
    }

    /// The server's base URL, as shown.
    pub(crate) fn server(&self) -> &str {
        &self.shown
    }

    /// The URL of `segments` under the base, each segment escaped.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // Cannot fail: `new` refused bases that cannot take a path.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    fn transport(&self, error: &reqwest::Error) -> RemoteError {
        let cause = root_cause(error);
        if error.is_connect() {
            RemoteError::Connect {
                server: self.shown.clone(),
                cause,
            }
        } else {
            RemoteError::Transport {
                server: self.shown.clone(),
                cause,
            }
        }
    }

    /// Sends `request` and reads its answer whole.
    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Answer, RemoteError> {
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        // The revision an answer's `ETag` gives (`"12"`).
        let revision = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_start_matches("W/").trim_matches('"').parse().ok());
        let body = response.bytes().await.map_err(|e| self.transport(&e))?;
        Ok(Answer {
            status,
            revision,
            body,
        })
    }

    /// As [`Client::exchange`]; an answer other than a 2xx is a refusal of `action`.
    async fn expect(
        &self,
        request: reqwest::RequestBuilder,
        action: &'static str,
    ) -> Result<Answer, RemoteError> {
        let answer = self.exchange(request).await?;
        if !answer.status.is_success() {
            return Err(answer.refusal(action));
        }
        Ok(answer)
    }

    /// GETs `segments` and parses its JSON answer; any other answer than a 2xx is a
    /// refusal of `action`.
    async fn get_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        action: &'static str,
    ) -> Result<T, RemoteError> {
        self.expect(self.request(Method::GET, self.url(segments)), action)
            .await?
            .json()
    }

    /// Uploads `import.file` as `PUT /admin/projects/{o}/{p}/datasets/{name}`, drawing the
    /// progress on stderr (redrawn in place on a terminal, one line per tenth otherwise).
    pub(crate) async fn import_dataset(
        &self,
        import: &Import,
        terminal: bool,
    ) -> Result<Imported, RemoteError> {
        let file_error = |cause| RemoteError::File {
            path: import.file.clone(),
            cause,
        };
        let file = tokio::fs::File::open(&import.file)
            .await
            .map_err(file_error)?;
        let metadata = file.metadata().await.map_err(file_error)?;
        if !metadata.is_file() {
            return Err(RemoteError::NotAFile(import.file.clone()));
        }
        let format = match import.format {
            Some(format) => format,
            None => Format::from_path(&import.file)
                .ok_or_else(|| RemoteError::UnknownFormat(import.file.clone()))?,
        };
        let name = match &import.name {
            Some(name) => name.clone(),
            None => dataset_name(&import.file)
                .ok_or_else(|| RemoteError::NoName(import.file.clone()))?,
        };
        let project = &import.project;

        // The token and the project, checked with a small read before the upload: a server
        // refuses a bad token before reading the body, and a client still sending a large
        // one may then see only a broken connection.
        let _: serde::de::IgnoredAny = self
            .get_json(
                &[
                    "admin",
                    "projects",
                    &project.owner,
                    &project.name,
                    "datasets",
                ],
                "upload",
            )
            .await?;

        let total = metadata.len();
        let label = import.file.file_name().map_or_else(
            || import.file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let progress = Arc::new(Progress::new(label, total, format.counter().is_some()));
        let upload = Upload::new(file, total, format.counter(), progress.clone());

        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(types) = &import.types {
            query.push(("types", types));
        }
        if import.endpoints {
            query.push(("endpoints", "default"));
        }
        if let Some(category) = &import.category {
            query.push(("category", category));
        }
        if let Some(prefix) = &import.prefix {
            query.push(("prefix", prefix));
        }
        if import.format.is_some() {
            query.push(("format", format.name()));
        }
        if import.dry_run {
            query.push(("dry_run", "true"));
        }
        let url = self.url(&[
            "admin",
            "projects",
            &project.owner,
            &project.name,
            "datasets",
            &name,
        ]);
        let send = self
            .request(Method::PUT, url)
            .query(&query)
            .header(CONTENT_TYPE, format.content_type())
            .header(CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(upload))
            .send();
        let sent = tokio::select! {
            biased;
            sent = send => sent,
            never = show_progress(&progress, terminal) => match never {},
        };
        progress.close();
        let response = sent.map_err(|e| {
            let sent = progress.sent.load(Ordering::Relaxed);
            if sent < total && !e.is_connect() && !e.is_builder() {
                RemoteError::Broken {
                    server: self.shown.clone(),
                    sent,
                    total,
                    cause: root_cause(&e),
                }
            } else {
                self.transport(&e)
            }
        })?;
        let status = response.status();
        let revision = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.trim()
                    .trim_start_matches("W/")
                    .trim_matches('"')
                    .parse()
                    .ok()
            });
        let body = response.bytes().await.map_err(|e| self.transport(&e))?;
        if !status.is_success() {
            return Err(RemoteError::Refused(Refusal::parse(status, &body)));
        }
        let unexpected = |e: serde_json::Error| RemoteError::Unexpected {
            status: status.as_u16(),
            cause: e.to_string(),
        };
        if import.dry_run {
            let answer: DryRunAnswer = serde_json::from_slice(&body).map_err(unexpected)?;
            return Ok(Imported::DryRun(answer));
        }
        let dataset: DatasetAnswer = serde_json::from_slice(&body).map_err(unexpected)?;
        Ok(Imported::Stored { revision, dataset })
    }

    /// The endpoints of `project`: id, method, path and URL.
    async fn endpoints(&self, project: &ProjectRef) -> Result<Vec<EndpointInfo>, RemoteError> {
        #[derive(Deserialize)]
        struct List {
            endpoints: Vec<EndpointInfo>,
        }
        let list: List = self
            .get_json(
                &[
                    "admin",
                    "projects",
                    &project.owner,
                    &project.name,
                    "endpoints",
                ],
                "upload",
            )
            .await?;
        Ok(list.endpoints)
    }
}

/// What `dataset import` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct Import {
    pub(crate) file: PathBuf,
    pub(crate) project: ProjectRef,
    /// `None`: [`dataset_name`] of the file.
    pub(crate) name: Option<String>,
    /// `None`: from the file's extension, and no `format` parameter is sent.
    pub(crate) format: Option<Format>,
    /// Already checked by [`parse_types`].
    pub(crate) types: Option<String>,
    /// Also create the standard endpoints (`endpoints=default`).
    pub(crate) endpoints: bool,
    pub(crate) category: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) dry_run: bool,
}

/// The server's answer to an import.
#[derive(Debug)]
pub(crate) enum Imported {
    /// 201 (a new dataset) or 200 (one replaced).
    Stored {
        /// The project's revision, from `ETag`.
        revision: Option<i64>,
        dataset: DatasetAnswer,
    },
    DryRun(DryRunAnswer),
}

/// A dataset as the server describes it.
#[derive(Debug, Deserialize)]
pub(crate) struct DatasetAnswer {
    pub(crate) name: String,
    pub(crate) rows: u64,
    #[serde(default)]
    pub(crate) bytes: Option<u64>,
    pub(crate) columns: Vec<ColumnAnswer>,
    #[serde(default)]
    pub(crate) endpoints: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ColumnAnswer {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) ty: String,
    #[serde(default)]
    pub(crate) nullable: bool,
    #[serde(default)]
    pub(crate) declared: bool,
}

/// `{"dry_run": true, "revision", "changes", "result"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct DryRunAnswer {
    pub(crate) revision: i64,
    #[serde(default)]
    pub(crate) changes: Vec<ChangeAnswer>,
    #[serde(default)]
    pub(crate) result: Option<DatasetAnswer>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChangeAnswer {
    pub(crate) op: String,
    pub(crate) target: String,
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) detail: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct EndpointInfo {
    id: String,
    method: String,
    path: String,
    /// The endpoint's path on the server (`/{owner}/{project}{path}` unless the project is
    /// mounted elsewhere).
    #[serde(default)]
    url: Option<String>,
}

/// Runs `dataset import` and gives back what goes to stdout: the dataset, its columns and
/// its endpoints (or, for a dry run, what would change).
pub(crate) async fn import(
    client: &Client,
    import: &Import,
    terminal: bool,
) -> Result<String, RemoteError> {
    match client.import_dataset(import, terminal).await? {
        Imported::DryRun(answer) => Ok(render_dry_run(&import.project, &answer)),
        Imported::Stored { revision, dataset } => {
            let mut out = render_dataset(&import.project, &dataset, revision);
            if !dataset.endpoints.is_empty() {
                let listed = client.endpoints(&import.project).await;
                out.push_str(&render_endpoints(
                    client.server(),
                    &import.project,
                    &dataset.endpoints,
                    listed.as_deref().ok(),
                ));
            }
            Ok(out)
        }
    }
}

/// `dataset alice/iris-demo/iris: 150 rows, 5 columns (3.8 KiB), revision 7`, then a table
/// of the columns.
fn render_dataset(project: &ProjectRef, dataset: &DatasetAnswer, revision: Option<i64>) -> String {
    let mut out = format!(
        "dataset {}/{}/{}: {}, {}",
        project.owner,
        project.name,
        dataset.name,
        count(dataset.rows, "row", "rows"),
        count(dataset.columns.len() as u64, "column", "columns"),
    );
    if let Some(bytes) = dataset.bytes {
        let _ = write!(out, " ({})", human_bytes(bytes));
    }
    if let Some(revision) = revision {
        let _ = write!(out, ", revision {revision}");
    }
    out.push('\n');
    out.push_str(&render_columns(&dataset.columns));
    out
}

fn render_columns(columns: &[ColumnAnswer]) -> String {
    let rows: Vec<[&str; 4]> = columns
        .iter()
        .map(|c| {
            [
                c.name.as_str(),
                c.ty.as_str(),
                if c.declared { "declared" } else { "inferred" },
                if c.nullable { "yes" } else { "no" },
            ]
        })
        .collect();
    table(&["column", "type", "source", "nullable"], &rows)
}

/// The dataset's endpoints with their methods and URLs, as far as `listed` (the project's
/// endpoints, when they could be read) tells them.
fn render_endpoints(
    server: &str,
    project: &ProjectRef,
    ids: &[String],
    listed: Option<&[EndpointInfo]>,
) -> String {
    let mut out = String::from("endpoints:\n");
    let rows: Vec<[String; 3]> = ids
        .iter()
        .map(
            |id| match listed.and_then(|all| all.iter().find(|e| &e.id == id)) {
                Some(endpoint) => {
                    let url = endpoint.url.clone().unwrap_or_else(|| {
                        format!("/{}/{}{}", project.owner, project.name, endpoint.path)
                    });
                    [
                        id.clone(),
                        endpoint.method.clone(),
                        format!("{server}{url}"),
                    ]
                }
                None => [id.clone(), String::new(), String::new()],
            },
        )
        .collect();
    let rows: Vec<[&str; 3]> = rows
        .iter()
        .map(|[a, b, c]| [a.as_str(), b.as_str(), c.as_str()])
        .collect();
    for line in table_lines(&rows) {
        out.push_str("  ");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn render_dry_run(project: &ProjectRef, answer: &DryRunAnswer) -> String {
    let mut out = format!(
        "dry run: nothing was changed; the import would make revision {} of {}/{}:\n",
        answer.revision, project.owner, project.name
    );
    for change in &answer.changes {
        let _ = write!(out, "  {} {}", change.op, change.target);
        if let Some(id) = &change.id {
            let _ = write!(out, " {id}");
        }
        match &change.detail {
            serde_json::Value::Null => {}
            serde_json::Value::String(detail) => {
                let _ = write!(out, ": {detail}");
            }
            detail => {
                let _ = write!(out, ": {detail}");
            }
        }
        out.push('\n');
    }
    if let Some(result) = &answer.result {
        out.push_str(&render_dataset(project, result, None));
    }
    out
}

/// A table with a header row, each line indented by two spaces.
fn table<const N: usize>(header: &[&str; N], rows: &[[&str; N]]) -> String {
    let mut all = Vec::with_capacity(rows.len() + 1);
    all.push(*header);
    all.extend_from_slice(rows);
    let mut out = String::new();
    for line in table_lines(&all) {
        out.push_str("  ");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The rows with their cells padded to each column's width (the last one not padded).
fn table_lines<const N: usize>(rows: &[[&str; N]]) -> Vec<String> {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == N {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

/// `1 row`, `312,004 rows`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", grouped(n), if n == 1 { one } else { many })
}

/// `312004` as `312,004`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `512 B`, `3.8 KiB`, `12.3 MiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Counts the records of a CSV or JSON-lines body fed in chunks split anywhere, as the
/// server's importer reads them: for CSV, record ends outside quoted fields (LF, CRLF or
/// CR), blank lines skipped, the first record being the header; for JSON lines, lines that
/// are not blank.
#[derive(Debug, Clone)]
pub(crate) struct RecordCounter {
    csv: bool,
    state: CsvState,
    /// JSON lines: the current line has more than white space.
    line_has_content: bool,
    records: u64,
}

/// The states of the server's CSV reader that matter for where records end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvState {
    /// Between records, where blank lines are skipped.
    RecordStart,
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: an escaped quote or the field's end.
    QuoteInQuoted,
}

impl RecordCounter {
    pub(crate) fn csv() -> RecordCounter {
        RecordCounter {
            csv: true,
            state: CsvState::RecordStart,
            line_has_content: false,
            records: 0,
        }
    }

    pub(crate) fn lines() -> RecordCounter {
        RecordCounter {
            csv: false,
            ..RecordCounter::csv()
        }
    }

    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        if self.csv {
            for &b in chunk {
                self.csv_byte(b);
            }
        } else {
            for &b in chunk {
                if b == b'\n' {
                    self.records += u64::from(self.line_has_content);
                    self.line_has_content = false;
                } else if !b.is_ascii_whitespace() {
                    self.line_has_content = true;
                }
            }
        }
    }

    fn csv_byte(&mut self, b: u8) {
        use CsvState::*;
        let line_end = matches!(b, b'\r' | b'\n');
        self.state = match (self.state, b) {
            (RecordStart, _) if line_end => RecordStart,
            (RecordStart | FieldStart, b'"') => Quoted,
            (RecordStart | FieldStart | Unquoted | QuoteInQuoted, b',') => FieldStart,
            (FieldStart | Unquoted | QuoteInQuoted, _) if line_end => {
                self.records += 1;
                RecordStart
            }
            (Quoted, b'"') => QuoteInQuoted,
            (Quoted, _) => Quoted,
            (QuoteInQuoted, b'"') => Quoted,
            (RecordStart | FieldStart | Unquoted | QuoteInQuoted, _) => Unquoted,
        };
    }

    /// Counts a last record that has no line end. Counting may go on afterwards.
    pub(crate) fn finish(&mut self) {
        if self.csv {
            if self.state != CsvState::RecordStart {
                self.records += 1;
                self.state = CsvState::RecordStart;
            }
        } else {
            self.records += u64::from(self.line_has_content);
            self.line_has_content = false;
        }
    }

    /// The data rows counted so far: records, less the header for CSV.
    pub(crate) fn rows(&self) -> u64 {
        if self.csv {
            self.records.saturating_sub(1)
        } else {
            self.records
        }
    }
}

/// What the upload has done so far, shared by the body stream (which counts) and the
/// progress display (which reads).
struct Progress {
    /// The file's name, as shown.
    label: String,
    start: Instant,
    total: u64,
    counts_rows: bool,
    sent: AtomicU64,
    rows: AtomicU64,
    /// Every byte was handed to the connection.
    done: AtomicBool,
    finished: tokio::sync::Notify,
    /// A line was drawn in place (terminal) and not ended.
    line_open: AtomicBool,
    /// The line of the finished upload was drawn.
    done_shown: AtomicBool,
}

impl Progress {
    fn new(label: String, total: u64, counts_rows: bool) -> Progress {
        Progress {
            label,
            start: Instant::now(),
            total,
            counts_rows,
            sent: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            done: AtomicBool::new(total == 0),
            finished: tokio::sync::Notify::new(),
            line_open: AtomicBool::new(false),
            done_shown: AtomicBool::new(false),
        }
    }

    fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.finished.notify_one();
    }

    /// `uploading iris.csv: 12.3 MiB / 40.0 MiB (31 %), 312,004 rows, 8.1 MiB/s`.
    fn line(&self, sent: u64, rows: u64, rate: f64) -> String {
        let percent = (sent.saturating_mul(100))
            .checked_div(self.total)
            .unwrap_or(100);
        let mut line = format!(
            "uploading {}: {} / {} ({percent} %)",
            self.label,
            human_bytes(sent),
            human_bytes(self.total)
        );
        if self.counts_rows {
            let _ = write!(line, ", {}", count(rows, "row", "rows"));
        }
        let _ = write!(line, ", {}/s", human_bytes(rate as u64));
        line
    }

    /// Ends a line drawn in place, so that what follows starts on a line of its own.
    fn end_line(&self) {
        if self.line_open.swap(false, Ordering::Relaxed) {
            eprintln!();
        }
    }

    /// Once the answer came: ends the line drawn in place, and writes the line of the
    /// finished upload if the answer came before it was drawn.
    fn close(&self) {
        self.end_line();
        if self.done.load(Ordering::Acquire) && !self.done_shown.load(Ordering::Relaxed) {
            let sent = self.sent.load(Ordering::Relaxed);
            let seconds = self.start.elapsed().as_secs_f64().max(0.001);
            let rows = self.rows.load(Ordering::Relaxed);
            eprintln!("{}", self.line(sent, rows, sent as f64 / seconds));
        }
    }
}

/// Draws the progress until every byte is sent, then says `processing…` and waits forever
/// (it is dropped when the answer comes). On a terminal the line is redrawn in place ten
/// times a second; otherwise one line is written per tenth of the file, and at the end.
async fn show_progress(progress: &Progress, terminal: bool) -> std::convert::Infallible {
    const TICK: Duration = Duration::from_millis(100);
    const WINDOW: Duration = Duration::from_secs(2);
    let mut samples: VecDeque<(Instant, u64)> = VecDeque::from([(progress.start, 0)]);
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next_tenth = 1;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = progress.finished.notified() => {}
        }
        let done = progress.done.load(Ordering::Acquire);
        let sent = progress.sent.load(Ordering::Relaxed);
        let rows = progress.rows.load(Ordering::Relaxed);
        let now = Instant::now();
        samples.push_back((now, sent));
        while samples.len() > 2 && now.duration_since(samples[0].0) > WINDOW {
            samples.pop_front();
        }
        // The rate over the last two seconds, so that a stall shows.
        let (since, base) = samples[0];
        let seconds = now.duration_since(since).as_secs_f64().max(0.001);
        let rate = sent.saturating_sub(base) as f64 / seconds;
        let line = progress.line(sent, rows, rate);
        if terminal {
            eprint!("\r{line}\x1b[K");
            progress.line_open.store(true, Ordering::Relaxed);
        } else {
            let tenth = (sent.saturating_mul(10))
                .checked_div(progress.total)
                .unwrap_or(10);
            if done || tenth >= next_tenth {
                eprintln!("{line}");
                next_tenth = tenth + 1;
            }
        }
        if done {
            progress.done_shown.store(true, Ordering::Relaxed);
            progress.end_line();
            eprintln!("processing…");
            break;
        }
    }
    std::future::pending().await
}

/// The request body: the file read in chunks, counted as the connection takes them. It
/// ends after `total` bytes (the `Content-Length` sent): the connection does not ask for
/// more once that many are written.
struct Upload {
    file: tokio::fs::File,
    buffer: Vec<u8>,
    remaining: u64,
    counter: Option<RecordCounter>,
    progress: Arc<Progress>,
}

const CHUNK: usize = 64 * 1024;

impl Upload {
    fn new(
        file: tokio::fs::File,
        total: u64,
        counter: Option<RecordCounter>,
        progress: Arc<Progress>,
    ) -> Upload {
        Upload {
            file,
            buffer: vec![0; CHUNK],
            remaining: total,
            counter,
            progress,
        }
    }

    fn end(&mut self) {
        self.remaining = 0;
        if let Some(counter) = &mut self.counter {
            counter.finish();
            self.progress.rows.store(counter.rows(), Ordering::Relaxed);
        }
        self.progress.finish();
    }
}

impl Stream for Upload {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining).map_or(CHUNK, |r| r.min(CHUNK));
        let mut buffer = ReadBuf::new(&mut this.buffer[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut buffer) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => {
                this.remaining = 0;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(Ok(())) => {
                let chunk = buffer.filled();
                if chunk.is_empty() {
                    // The file shrank since its size was read; the connection reports the
                    // short body.
                    this.end();
                    return Poll::Ready(None);
                }
                let chunk = Bytes::copy_from_slice(chunk);
                this.remaining -= chunk.len() as u64;
                if let Some(counter) = &mut this.counter {
                    counter.feed(&chunk);
                    this.progress.rows.store(counter.rows(), Ordering::Relaxed);
                }
                this.progress
                    .sent
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if this.remaining == 0 {
                    this.end();
                }
                Poll::Ready(Some(Ok(chunk)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows_of(counter: RecordCounter, input: &[u8]) -> u64 {
        let mut counter = counter;
        counter.feed(input);
        counter.finish();
        counter.rows()
    }

    #[test]
    fn csv_rows_are_records_less_the_header() {
        assert_eq!(rows_of(RecordCounter::csv(), b"a,b\n1,2\n3,4\n"), 2);
        assert_eq!(rows_of(RecordCounter::csv(), b"a,b\n1,2\n3,4"), 2);
        assert_eq!(rows_of(RecordCounter::csv(), b"a,b\n"), 0);
        assert_eq!(rows_of(RecordCounter::csv(), b"a,b"), 0);
        assert_eq!(rows_of(RecordCounter::csv(), b""), 0);
    }

    #[test]
    fn csv_newlines_inside_quotes_do_not_end_a_record() {
        let input =
            b"name,note\n\"a\",\"two\nlines\"\n\"b\",\"say \"\"hi\"\"\nthere\"\nc,\"x,\ny\"\n";
        assert_eq!(rows_of(RecordCounter::csv(), input), 3);
        // A quote inside an unquoted field is text, and starts no quoted field.
        assert_eq!(rows_of(RecordCounter::csv(), b"a\nx\"y\nz\n"), 2);
    }

    #[test]
    fn csv_crlf_and_blank_lines_count_as_the_server_reads_them() {
        assert_eq!(rows_of(RecordCounter::csv(), b"a,b\r\n1,2\r\n3,4\r\n"), 2);
        assert_eq!(
            rows_of(RecordCounter::csv(), b"a,b\r\n\r\n1,2\r\n\n\n3,4"),
            2
        );
        // A lone CR ends a record too.
        assert_eq!(rows_of(RecordCounter::csv(), b"a\r1\r2\r"), 2);
        // `""` alone is a record (a null), an empty line is not.
        assert_eq!(rows_of(RecordCounter::csv(), b"a\n\"\"\n\n1\n"), 2);
    }

    #[test]
    fn json_lines_count_lines_that_are_not_blank() {
        let input = b"{\"a\":1}\n\n  \r\n{\"a\":2}\r\n{\"a\":3}";
        assert_eq!(rows_of(RecordCounter::lines(), input), 3);
        assert_eq!(
            rows_of(RecordCounter::lines(), b"{\"a\":1}\n{\"a\":2}\n"),
            2
        );
        assert_eq!(rows_of(RecordCounter::lines(), b"\n \n"), 0);
    }

    #[test]
    fn rows_count_up_as_chunks_arrive() {
        let mut counter = RecordCounter::csv();
        counter.feed(b"a,b\n1,\"x\n");
        assert_eq!(counter.rows(), 0, "inside a quoted field");
        counter.feed(b"y\"\n2,");
        assert_eq!(counter.rows(), 1);
        counter.feed(b"3");
        assert_eq!(counter.rows(), 1, "a record without its line end yet");
        counter.finish();
        assert_eq!(counter.rows(), 2);
    }

    /// Counts `input` fed in chunks cut at `cuts` (positions, taken modulo its length).
    fn rows_chunked(counter: RecordCounter, input: &[u8], cuts: &[usize]) -> u64 {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut counter = counter;
        let mut at = 0;
        for cut in cuts {
            counter.feed(&input[at..cut]);
            at = cut;
        }
        counter.feed(&input[at..]);
        counter.finish();
        counter.rows()
    }

    /// A CSV field, quoted when it has to be (or when `quote` says so).
    fn field() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(
                prop_oneof![
                    Just('a'),
                    Just('7'),
                    Just(' '),
                    Just(','),
                    Just('"'),
                    Just('\n'),
                    Just('\r'),
                ],
                0..6,
            ),
            any::<bool>(),
        )
            .prop_map(|(chars, quote)| {
                let text: String = chars.into_iter().collect();
                if quote || text.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", text.replace('"', "\"\""))
                } else {
                    text
                }
            })
    }

    /// A well-formed CSV file: a header and rows of `width` fields, LF or CRLF line ends,
    /// blank lines here and there, a final line end or not.
    fn csv_file() -> impl Strategy<Value = Vec<u8>> {
        (1usize..4).prop_flat_map(|width| {
            (
                proptest::collection::vec(
                    (
                        proptest::collection::vec(field(), width),
                        any::<bool>(),
                        0usize..3,
                    ),
                    0..8,
                ),
                any::<bool>(),
            )
                .prop_map(move |(rows, final_end)| {
                    let header: Vec<String> = (0..width).map(|i| format!("c{i}")).collect();
                    let mut out = header.join(",");
                    for (fields, crlf, blank) in rows {
                        let end = if crlf { "\r\n" } else { "\n" };
                        out.push_str(end);
                        for _ in 0..blank {
                            out.push_str(end);
                        }
                        out.push_str(&fields.join(","));
                    }
                    if final_end {
                        out.push('\n');
                    }
                    out.into_bytes()
                })
        })
    }

    proptest! {
        #[test]
        fn chunked_counting_matches_counting_at_once(
            input in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b','), Just(b'"'), Just(b'\r'), Just(b'\n'),
                    Just(b' '), Just(b'{')],
                0..64,
            ),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            for counter in [RecordCounter::csv(), RecordCounter::lines()] {
                let whole = rows_of(counter.clone(), &input);
                prop_assert_eq!(rows_chunked(counter, &input, &cuts), whole);
            }
        }

        #[test]
        fn csv_rows_match_the_importer(
            input in csv_file(),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut importer = crate::dataset::Importer::new(
                crate::dataset::Format::Csv,
                Vec::new(),
                crate::dataset::Limits::default(),
            );
            let imported = importer.feed(&input).and_then(|()| importer.finish());
            let table = imported.map_err(|e| {
                TestCaseError::fail(format!("{e} in {:?}", String::from_utf8_lossy(&input)))
            })?;
            prop_assert_eq!(
                rows_chunked(RecordCounter::csv(), &input, &cuts),
                table.row_count() as u64,
                "{:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    #[test]
    fn names_come_from_the_file_stem() {
        let name = |p: &str| dataset_name(Path::new(p));
        assert_eq!(name("iris.csv").as_deref(), Some("iris"));
        assert_eq!(name("data/Iris.CSV").as_deref(), Some("iris"));
        assert_eq!(name("My Data (v2).csv").as_deref(), Some("my-data-v2"));
        assert_eq!(
            name("sales_2024-q1.jsonl").as_deref(),
            Some("sales_2024-q1")
        );
        assert_eq!(name("a -- b.json").as_deref(), Some("a-b"));
        assert_eq!(name("_x.y.csv").as_deref(), Some("x-y"));
        assert_eq!(name("Ünïcode.csv").as_deref(), Some("n-code"));
        assert_eq!(name("(…).csv"), None);
        assert_eq!(name(""), None);
    }

    #[test]
    fn formats_come_from_the_extension() {
        let format = |p: &str| Format::from_path(Path::new(p));
        assert_eq!(format("a.csv"), Some(Format::Csv));
        assert_eq!(format("a.CSV"), Some(Format::Csv));
        assert_eq!(format("a.json"), Some(Format::Json));
        assert_eq!(format("a.jsonl"), Some(Format::JsonLines));
        assert_eq!(format("a.ndjson"), Some(Format::JsonLines));
        assert_eq!(format("a.txt"), None);
        assert_eq!(format("csv"), None);
    }

    #[test]
    fn projects_are_owner_slash_name() {
        assert_eq!(
            ProjectRef::parse("alice/iris-demo"),
            Ok(ProjectRef {
                owner: "alice".into(),
                name: "iris-demo".into()
            })
        );
        for bad in ["alice", "alice/", "/iris", "a/b/c", ""] {
            assert!(ProjectRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn types_are_checked_and_tidied() {
        assert_eq!(
            parse_types("zip:text, age:INTEGER,"),
            Ok("zip:text,age:integer".to_owned())
        );
        assert_eq!(parse_types("a:b:number"), Ok("a:b:number".to_owned()));
        assert!(parse_types("zip").is_err());
        assert!(parse_types(":text").is_err());
        assert!(parse_types("zip:string").is_err());
        assert!(parse_types(" , ").is_err());
    }

    #[test]
    fn a_refusal_is_one_line_from_the_json_error_body() {
        let body = br#"{"error": {"code": "validation_failed",
            "message": "line 12, column `sepal_length`: `abc` is not a number",
            "request_id": "r1",
            "details": [{"field": "sepal_length",
                         "message": "line 12, column `sepal_length`: `abc` is not a number"}]}}"#;
        let refusal = Refusal::parse(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(
            RemoteError::Refused(refusal.clone()).to_string(),
            "the server refused the upload (422 validation_failed): line 12, column \
             `sepal_length`: `abc` is not a number"
        );
        assert_eq!(RemoteError::Refused(refusal).hint(), None);
        // The same with the field's name before the message, as a one-detail 422 has it.
        let body = br#"{"error": {"code": "validation_failed",
            "message": "sepal_length: line 12, column `sepal_length`: `abc` is not a number",
            "request_id": "r1",
            "details": [{"field": "sepal_length",
                         "message": "line 12, column `sepal_length`: `abc` is not a number"}]}}"#;
        assert_eq!(
            Refusal::parse(StatusCode::UNPROCESSABLE_ENTITY, body).line(),
            "the server refused the upload (422 validation_failed): line 12, column \
             `sepal_length`: `abc` is not a number"
        );
        // A detail that does not name its field keeps the field's name.
        let body = br#"{"error": {"code": "validation_failed",
            "message": "body: line 3: expected 2 fields as in the header, found more",
            "details": [{"field": "body",
                         "message": "line 3: expected 2 fields as in the header, found more"}]}}"#;
        assert_eq!(
            Refusal::parse(StatusCode::UNPROCESSABLE_ENTITY, body).line(),
            "the server refused the upload (422 validation_failed): body: line 3: expected 2 \
             fields as in the header, found more"
        );
    }

    #[test]
    fn a_refusal_adds_the_details_its_message_does_not_say() {
        let body = br#"{"error": {"code": "validation_failed", "message": "2 fields are invalid",
            "request_id": "r1", "details": [
                {"field": "types", "message": "`zip`: unknown type"},
                {"field": "prefix", "message": "must start with `/`"}]}}"#;
        let refusal = Refusal::parse(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(
            refusal.line(),
            "the server refused the upload (422 validation_failed): 2 fields are invalid: \
             types: `zip`: unknown type; prefix: must start with `/`"
        );
    }

    #[test]
    fn refusals_hint_at_what_to_do() {
        let error = |status: u16, code: &str| {
            let body =
                format!(r#"{{"error": {{"code": "{code}", "message": "m", "request_id": "r"}}}}"#);
            let status = StatusCode::from_u16(status).expect("a status");
            RemoteError::Refused(Refusal::parse(status, body.as_bytes()))
        };
        assert_eq!(
            error(401, "unauthorized").hint().as_deref(),
            Some("log in and pass --token or set SWITCHYARD_TOKEN")
        );
        assert!(
            error(413, "payload_too_large")
                .hint()
                .is_some_and(|h| h.contains("--dataset-max-bytes"))
        );
        assert!(
            error(404, "project_not_found")
                .hint()
                .is_some_and(|h| h.contains("create the project"))
        );
        assert_eq!(error(409, "conflict").hint(), None);
        let connect = RemoteError::Connect {
            server: "http://127.0.0.1:9".into(),
            cause: "Connection refused (os error 111)".into(),
        };
        assert_eq!(
            connect.to_string(),
            "cannot connect to http://127.0.0.1:9: Connection refused (os error 111)"
        );
        assert_eq!(
            connect.hint().as_deref(),
            Some("is the server running at http://127.0.0.1:9?")
        );
    }

    #[test]
    fn a_server_error_names_its_request_id_and_a_foreign_answer_its_text() {
        let body = br#"{"error": {"code": "internal", "message": "internal error", "request_id": "0193"}}"#;
        assert_eq!(
            Refusal::parse(StatusCode::INTERNAL_SERVER_ERROR, body).line(),
            "the server failed the upload (500 internal): internal error (request id 0193)"
        );
        assert_eq!(
            Refusal::parse(StatusCode::BAD_GATEWAY, b"\n<html>bad gateway</html>\n").line(),
            "the server failed the upload (502 Bad Gateway): <html>bad gateway</html>"
        );
        assert_eq!(
            Refusal::parse(StatusCode::PAYLOAD_TOO_LARGE, b"").line(),
            "the server refused the upload (413 Payload Too Large): (no explanation in the answer)"
        );
    }

    #[test]
    fn sizes_and_counts_read_well() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(3858), "3.8 KiB");
        assert_eq!(human_bytes(40 << 20), "40.0 MiB");
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(312_004), "312,004");
        assert_eq!(grouped(1_000_000), "1,000,000");
        assert_eq!(count(1, "row", "rows"), "1 row");
        let progress = Progress::new("iris.csv".into(), 40 << 20, true);
        assert_eq!(
            progress.line(12_897_484, 312_004, 8.1 * 1024.0 * 1024.0),
            "uploading iris.csv: 12.3 MiB / 40.0 MiB (30 %), 312,004 rows, 8.1 MiB/s"
        );
    }

    #[test]
    fn the_summary_shows_the_dataset_and_its_columns() {
        let answer: DatasetAnswer = serde_json::from_str(
            r#"{"name": "iris", "format": "csv", "rows": 150, "bytes": 3858,
                "uploaded_at": 1733300000000,
                "columns": [
                  {"name": "sepal_length", "type": "number", "nullable": false, "declared": false},
                  {"name": "species", "type": "text", "nullable": true, "declared": true}],
                "endpoints": ["iris-range"]}"#,
        )
        .expect("an answer");
        let project = ProjectRef::parse("alice/iris-demo").expect("a project");
        assert_eq!(
            render_dataset(&project, &answer, Some(7)),
            "dataset alice/iris-demo/iris: 150 rows, 2 columns (3.8 KiB), revision 7\n\
             \x20 column        type    source    nullable\n\
             \x20 sepal_length  number  inferred  no\n\
             \x20 species       text    declared  yes\n"
        );
        let listed = [EndpointInfo {
            id: "iris-range".into(),
            method: "POST".into(),
            path: "/iris/range".into(),
            url: None,
        }];
        assert_eq!(
            render_endpoints(
                "http://127.0.0.1:8080",
                &project,
                &answer.endpoints,
                Some(&listed)
            ),
            "endpoints:\n  iris-range  POST  http://127.0.0.1:8080/alice/iris-demo/iris/range\n"
        );
    }

    #[test]
    fn server_urls_are_checked_and_paths_escaped() {
        assert!(matches!(
            Client::new("localhost:8080", None),
            Err(RemoteError::BadServer(_))
        ));
        assert!(matches!(
            Client::new("ftp://example.com", None),
            Err(RemoteError::BadServer(_))
        ));
        let client = Client::new("http://127.0.0.1:8080/", Some(" t \n".into())).expect("a client");
        assert_eq!(client.server(), "http://127.0.0.1:8080");
        assert_eq!(client.token.as_deref(), Some("t"));
        assert_eq!(
            client.url(&["admin", "projects", "a b", "c/d"]).as_str(),
            "http://127.0.0.1:8080/admin/projects/a%20b/c%2Fd"
        );
        let client = Client::new("http://host/base/", None).expect("a client");
        assert_eq!(client.url(&["x"]).as_str(), "http://host/base/x");
    }
}
