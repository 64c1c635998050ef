//! `switchyard push` and `switchyard pull`: a project folder sent to a server as one
//! revision, and a server's project written back as a folder that pushes back unchanged.
//!
//! A push reads the folder as `validate` does, asks the server for the project's datasets
//! (their SHA-256, format and declared types), and sends one
//! `PUT /admin/projects/{owner}/{name}/folder` form: the definition, the script and the
//! dataset list, then only the dataset files the server does not have as they are. The
//! server applies all of it as one revision, or none of it.
//!
//! A pull reads the project, its script and its datasets (each file checked against its
//! SHA-256) and writes them as `switchyard.yaml` (every endpoint, with its id), `app.js`,
//! `data/NAME.EXT` and `.env` (`APP_NAME`, `MODE` and the project's `env`), into a new
//! folder made beside and moved into place when whole.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{Client, Format, ProjectRef, Refusal, RemoteError};
use crate::projects::{DatasetFile, Folder};

/// What a push did.
#[derive(Debug)]
pub(crate) struct Pushed {
    pub(crate) owner: String,
    pub(crate) name: String,
    /// The project's revision before (none: it was created) and after.
    pub(crate) before: Option<i64>,
    pub(crate) after: i64,
    /// The changes a dry run would make (a real push does not list them).
    pub(crate) changes: Vec<String>,
    /// The dataset files sent.
    pub(crate) sent: Vec<String>,
    pub(crate) dry_run: bool,
}

impl std::fmt::Display for Pushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let project = format!("{}/{}", self.owner, self.name);
        if self.dry_run {
            if self.changes.is_empty() {
                return writeln!(f, "{project}: no change (dry run; revision {})", self.after);
            }
            writeln!(
                f,
                "{project}: {} change{} (dry run; nothing was changed):",
                self.changes.len(),
                if self.changes.len() == 1 { "" } else { "s" }
            )?;
            for change in &self.changes {
                writeln!(f, "  {change}")?;
            }
            return Ok(());
        }
        let files = if self.sent.is_empty() {
            String::new()
        } else {
            format!(" (sent {})", self.sent.join(", "))
        };
        match self.before {
            None => writeln!(f, "{project}: created at revision {}{files}", self.after),
            Some(before) if before == self.after => {
                writeln!(f, "{project}: no change (revision {})", self.after)
            }
            Some(before) => writeln!(f, "{project}: revision {before} → {}{files}", self.after),
        }
    }
}

/// A dataset as the server lists it.
#[derive(Debug, Deserialize)]
struct ServerDataset {
    name: String,
    format: String,
    sha256: String,
    #[serde(default)]
    columns: Vec<ServerColumn>,
}

#[derive(Debug, Deserialize)]
struct ServerColumn {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    declared: bool,
}

impl ServerDataset {
    /// The declared column types, as `types` writes them.
    fn declared(&self) -> BTreeSet<String> {
        self.columns
            .iter()
            .filter(|c| c.declared)
            .map(|c| format!("{}:{}", c.name, c.ty))
            .collect()
    }
}

/// The declared column types of `types` (`zip:text, age:integer`), tidied.
fn declared(types: Option<&str>) -> BTreeSet<String> {
    types
        .unwrap_or("")
        .split(',')
        .filter_map(|item| {
            let (column, ty) = item.rsplit_once(':')?;
            Some(format!(
                "{}:{}",
                column.trim(),
                ty.trim().to_ascii_lowercase()
            ))
        })
        .collect()
}

/// A dataset file of the folder, ready to send.
struct Local<'a> {
    file: &'a DatasetFile,
    path: PathBuf,
    format: Format,
    sha256: String,
    len: u64,
}

/// The SHA-256 of a file, read in pieces on a blocking thread.
async fn file_digest(path: &Path) -> Result<(String, u64), RemoteError> {
    let owned = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
        use std::io::Read;
        let mut file = std::fs::File::open(&owned)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut len = 0u64;
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            len += read as u64;
            hasher.update(&buffer[..read]);
        }
        Ok((hex(&hasher.finalize()), len))
    })
    .await;
    match result {
        Ok(Ok(digest)) => Ok(digest),
        Ok(Err(cause)) => Err(RemoteError::File {
            path: path.to_path_buf(),
            cause,
        }),
        Err(error) => Err(RemoteError::File {
            path: path.to_path_buf(),
            cause: std::io::Error::other(error.to_string()),
        }),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
        out
    })
}

impl Client {
    /// The user the token is of (`GET /auth/me`).
    pub(crate) async fn whoami(&self) -> Result<String, RemoteError> {
        #[derive(Deserialize)]
        struct Me {
            username: String,
        }
        let me: Me = self.get_json(&["auth", "me"], "login").await?;
        Ok(me.username)
    }

    /// Pushes `folder` to project `owner/{folder.name}` (see the module's doc).
    pub(crate) async fn push(
        &self,
        folder: &Folder,
        owner: &str,
        dry_run: bool,
    ) -> Result<Pushed, RemoteError> {
        let name = folder.name.as_str();
        // The project's datasets and revision; none if it does not exist yet.
        let answer = self
            .exchange(self.request(
                Method::GET,
                self.url(&["admin", "projects", owner, name, "datasets"]),
            ))
            .await?;
        let (before, server): (Option<i64>, Vec<ServerDataset>) = if answer.status.is_success() {
            (answer.revision, answer.json()?)
        } else {
            let refusal = Refusal::parse(answer.status, &answer.body);
            if answer.status == StatusCode::NOT_FOUND
                && refusal.code.as_deref() == Some("project_not_found")
            {
                (None, Vec::new())
            } else {
                return Err(answer.refusal("push"));
            }
        };
        let mut locals = Vec::new();
        for file in &folder.datasets {
            let path = folder.dir.join(&file.file);
            let format = match file.format.as_deref() {
                Some("csv") => Format::Csv,
                Some("json") => Format::Json,
                Some("jsonl" | "ndjson") => Format::JsonLines,
                _ => Format::from_path(&file.file)
                    .ok_or_else(|| RemoteError::UnknownFormat(path.clone()))?,
            };
            let (sha256, len) = file_digest(&path).await?;
            locals.push(Local {
                file,
                path,
                format,
                sha256,
                len,
            });
        }
        let datasets: Vec<Value> = locals
            .iter()
            .map(|local| {
                json!({
                    "name": local.file.name,
                    "sha256": local.sha256,
                    "format": local.format.name(),
                    "types": local.file.types,
                    "endpoints": local.file.endpoints,
                    "category": local.file.category,
                    "prefix": local.file.prefix,
                })
            })
            .collect();
        let project = json!({
            "definition": folder.definition,
            "script": folder.script,
            "datasets": datasets,
        });
        let text = serde_json::to_string(&project).map_err(|e| RemoteError::Unexpected {
            status: 0,
            cause: e.to_string(),
        })?;
        let part = Part::text(text)
            .mime_str("application/json")
            .map_err(|e| self.transport(&e))?;
        let mut form = Form::new().part("project", part);
        let mut sent = Vec::new();
        for local in &locals {
            let same = server.iter().any(|s| {
                s.name == local.file.name
                    && s.sha256 == local.sha256
                    && s.format == local.format.name()
                    && s.declared() == declared(local.file.types.as_deref())
            });
            if same {
                continue;
            }
            let file =
                tokio::fs::File::open(&local.path)
                    .await
                    .map_err(|cause| RemoteError::File {
                        path: local.path.clone(),
                        cause,
                    })?;
            let file_name = local
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| local.file.name.clone());
            let part = Part::stream_with_length(reqwest::Body::from(file), local.len)
                .file_name(file_name)
                .mime_str(local.format.content_type())
                .map_err(|e| self.transport(&e))?;
            form = form.part(format!("dataset:{}", local.file.name), part);
            sent.push(local.file.file.display().to_string());
        }
        let mut url = self.url(&["admin", "projects", owner, name, "folder"]);
        if dry_run {
            url.set_query(Some("dry_run=true"));
        }
        let reply = self
            .expect(self.request(Method::PUT, url).multipart(form), "push")
            .await?;
        let answer: Value = reply.json()?;
        let after = reply
            .revision
            .or_else(|| answer.get("revision").and_then(Value::as_i64))
            .unwrap_or_default();
        let changes = answer
            .get("changes")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(describe_change).collect())
            .unwrap_or_default();
        Ok(Pushed {
            owner: owner.to_owned(),
            name: name.to_owned(),
            before,
            after,
            changes,
            sent,
            dry_run,
        })
    }

    /// Writes project `project` as a new folder at `dir` (see the module's doc); answers
    /// what it wrote.
    pub(crate) async fn pull(
        &self,
        project: &ProjectRef,
        dir: &Path,
    ) -> Result<Pulled, RemoteError> {
        let segments = ["admin", "projects", &project.owner, &project.name];
        let definition: Value = self.get_json(&segments, "pull").await?;
        let mut script_at = segments.to_vec();
        script_at.push("script");
        let script = self.get_text(&script_at).await?;
        let mut datasets_at = segments.to_vec();
        datasets_at.push("datasets");
        let datasets: Vec<ServerDataset> = self.get_json(&datasets_at, "pull").await?;
        let mut files = Vec::new();
        for dataset in &datasets {
            let mut at = datasets_at.clone();
            at.push(&dataset.name);
            at.push("file");
            let bytes = self
                .expect(self.request(Method::GET, self.url(&at)), "pull")
                .await?
                .body;
            let digest = hex(&Sha256::digest(&bytes));
            if digest != dataset.sha256 {
                return Err(RemoteError::Unexpected {
                    status: 200,
                    cause: format!(
                        "dataset `{}` arrived with SHA-256 {digest}, not {}",
                        dataset.name, dataset.sha256
                    ),
                });
            }
            files.push(bytes);
        }
        let folder = FolderText::of(&definition, script, &datasets, files);
        let written = folder.write(dir).map_err(|cause| RemoteError::File {
            path: dir.to_path_buf(),
            cause,
        })?;
        Ok(Pulled {
            project: format!("{}/{}", project.owner, project.name),
            dir: dir.to_path_buf(),
            revision: definition
                .get("revision")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            files: written,
        })
    }

    /// GETs `segments` as text; `None` when the server has none (404).
    async fn get_text(&self, segments: &[&str]) -> Result<Option<String>, RemoteError> {
        let answer = self
            .exchange(self.request(Method::GET, self.url(segments)))
            .await?;
        match answer.status {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => {
                Ok(Some(String::from_utf8_lossy(&answer.body).into_owned()))
            }
            _ => Err(answer.refusal("pull")),
        }
    }
}

/// One line of a dry run's change list: `add endpoint GET-hello: GET /hello`.
fn describe_change(change: &Value) -> String {
    let text = |key: &str| change.get(key).and_then(Value::as_str).unwrap_or("");
    let mut line = format!("{} {}", text("op"), text("target"));
    if !text("id").is_empty() {
        line.push(' ');
        line.push_str(text("id"));
    }
    if !text("detail").is_empty() {
        line.push_str(": ");
        line.push_str(text("detail"));
    }
    line
}

/// What a pull wrote.
#[derive(Debug)]
pub(crate) struct Pulled {
    pub(crate) project: String,
    pub(crate) dir: PathBuf,
    pub(crate) revision: i64,
    pub(crate) files: Vec<PathBuf>,
}

impl std::fmt::Display for Pulled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "pulled {} (revision {}) into {}: {}",
            self.project,
            self.revision,
            self.dir.display(),
            self.files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The settings of a project answer that a manifest holds, in the manifest's order.
const MANIFEST_FIELDS: [&str; 10] = [
    "name",
    "mode",
    "description",
    "auth",
    "cors",
    "rate_limit",
    "openapi",
    "journal_size",
    "backends",
    "endpoints",
];

/// Fields of an endpoint answer that are the server's, not the definition's.
const ENDPOINT_READ_ONLY: [&str; 2] = ["url", "revision"];

/// A pulled project's files, as text.
struct FolderText {
    manifest: String,
    env: String,
    script: Option<String>,
    /// Relative path and bytes.
    data: Vec<(PathBuf, bytes::Bytes)>,
}

impl FolderText {
    fn of(
        project: &Value,
        script: Option<String>,
        datasets: &[ServerDataset],
        files: Vec<bytes::Bytes>,
    ) -> FolderText {
        let mut manifest = Map::new();
        for field in MANIFEST_FIELDS {
            let Some(value) = project.get(field) else {
                continue;
            };
            let mut value = value.clone();
            drop_empty(&mut value);
            if field == "endpoints"
                && let Value::Array(endpoints) = &mut value
            {
                for endpoint in endpoints {
                    if let Value::Object(map) = endpoint {
                        for key in ENDPOINT_READ_ONLY {
                            map.remove(key);
                        }
                    }
                }
            }
            let empty = match &value {
                Value::Null => true,
                Value::String(s) => s.is_empty() && field != "name",
                Value::Array(items) => items.is_empty(),
                Value::Object(map) => map.is_empty(),
                _ => false,
            };
            // `auth: none` is the default.
            let default_auth = field == "auth" && value == json!({"type": "none"});
            if !empty && !default_auth {
                manifest.insert(field.to_owned(), value);
            }
        }
        let mut data = Vec::new();
        let mut entries = Vec::new();
        for (dataset, bytes) in datasets.iter().zip(files) {
            let extension = match dataset.format.as_str() {
                "json" => "json",
                "jsonl" => "jsonl",
                _ => "csv",
            };
            let file =
                PathBuf::from(crate::projects::DATA).join(format!("{}.{extension}", dataset.name));
            let mut entry = Map::new();
            entry.insert("name".into(), json!(dataset.name));
            entry.insert("file".into(), json!(file.to_string_lossy()));
            let types = dataset.declared();
            if !types.is_empty() {
                let types: Vec<String> = types.into_iter().collect();
                entry.insert("types".into(), json!(types.join(",")));
            }
            entries.push(Value::Object(entry));
            data.push((file, bytes));
        }
        if !entries.is_empty() {
            manifest.insert("datasets".into(), Value::Array(entries));
        }
        let yaml = serde_saphyr::to_string(&Value::Object(manifest)).unwrap_or_default();
        let name = project.get("name").and_then(Value::as_str).unwrap_or("");
        let mode = project
            .get("mode")
            .and_then(Value::as_str)
            .unwrap_or("development");
        let mut env = format!(
            "# Pulled with switchyard pull. APP_NAME and MODE set the project's name and mode;\n\
             # the others reach its script as `env`.\nAPP_NAME={name}\nMODE={mode}\n"
        );
        if let Some(Value::Object(values)) = project.get("env") {
            for (key, value) in values {
                if let Some(value) = value.as_str() {
                    env.push_str(&format!("{key}={}\n", dotenv_quote(value)));
                }
            }
        }
        FolderText {
            manifest: format!(
                "# A Switchyard project folder (docs/projects.md), pulled from a server.\n{yaml}"
            ),
            env,
            script,
            data,
        }
    }

    /// Writes the folder at `dir`, which must not exist: into a new folder beside it, moved
    /// into place when whole. Answers the files written, relative to `dir`.
    fn write(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        if dir.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "it exists already; a pull never writes over a folder",
            ));
        }
        let parent = match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)?;
        let staging = tempfile::Builder::new()
            .prefix(".switchyard-pull-")
            .tempdir_in(&parent)?;
        let mut written = Vec::new();
        let mut put = |file: PathBuf, bytes: &[u8]| -> std::io::Result<()> {
            let path = staging.path().join(&file);
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder)?;
            }
            std::fs::write(path, bytes)?;
            written.push(file);
            Ok(())
        };
        put(
            PathBuf::from(crate::projects::MANIFEST),
            self.manifest.as_bytes(),
        )?;
        put(
            PathBuf::from(crate::projects::ENV_FILE),
            self.env.as_bytes(),
        )?;
        if let Some(script) = &self.script {
            put(PathBuf::from(crate::projects::SCRIPT), script.as_bytes())?;
        }
        for (file, bytes) in &self.data {
            put(file.clone(), bytes)?;
        }
        let staged = staging.keep();
        if let Err(error) = std::fs::rename(&staged, dir) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(error);
        }
        Ok(written)
    }
}

/// Removes `null` members of objects, everywhere below `value`: the manifest leaves out
/// what is not set.
fn drop_empty(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_empty);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_empty),
        _ => {}
    }
}

/// A `.env` value, quoted so that dotenv reads it back as it is.
fn dotenv_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@+,".contains(&b));
    if plain {
        value.to_owned()
    } else if !value.contains('\'') && !value.contains('\n') {
        format!("'{value}'")
    } else {
        let mut quoted = String::from("\"");
        for c in value.chars() {
            match c {
                '"' => quoted.push_str("\\\""),
                '\\' => quoted.push_str("\\\\"),
                '\n' => quoted.push_str("\\n"),
                '$' => quoted.push_str("\\$"),
                c => quoted.push(c),
            }
        }
        quoted.push('"');
        quoted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_values_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let values = [
            "plain",
            "with spaces",
            "it's \"quoted\"",
            "a\nnew line",
            "dollar $HOME",
            "",
            "back\\slash",
        ];
        let text: String = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("V{i}={}\n", dotenv_quote(v)))
            .collect();
        let path = dir.path().join(".env");
        std::fs::write(&path, text).unwrap();
        let read: Vec<(String, String)> = dotenvy::from_path_iter(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (i, value) in values.iter().enumerate() {
            assert_eq!(read[i], (format!("V{i}"), value.to_string()), "{value:?}");
        }
    }

    #[test]
    fn declared_types_compare_tidied() {
        assert_eq!(
            declared(Some("zip: TEXT, age:integer")),
            ["age:integer", "zip:text"]
                .into_iter()
                .map(String::from)
                .collect()
        );
        assert!(declared(None).is_empty());
    }
}
