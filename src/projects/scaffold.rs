//! Writing project folders: a new one from a template, a rename, a new router. Each
//! refuses to overwrite anything and leaves nothing half done: a new folder is written
//! under a temporary name and moved into place at the end.

use std::path::{Path, PathBuf};

use super::{DATA, ENV_FILE, MANIFEST, ROUTERS, SCRIPT};

/// What a new project starts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// Mock endpoints with a described, validated request body.
    Mock,
    /// A script (`app.js`) with routes, a validated body and `kv`.
    Script,
    /// A proxy to a backend, with a mock answer of its own.
    Gateway,
    /// The iris dataset with its standard query, stats and schema endpoints.
    Dataset,
}

impl Template {
    pub const ALL: [Template; 4] = [
        Template::Mock,
        Template::Script,
        Template::Gateway,
        Template::Dataset,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Template::Mock => "mock",
            Template::Script => "script",
            Template::Gateway => "gateway",
            Template::Dataset => "dataset",
        }
    }
}

/// Why a folder could not be written or changed. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{0} already exists; a folder is never overwritten")]
    Exists(PathBuf),
    #[error("{0} is not a project folder (it has no {MANIFEST})")]
    NotAProject(PathBuf),
    #[error("{0}")]
    BadName(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ScaffoldError {
    /// What to do about it, for the command line.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ScaffoldError::Exists(_) => {
                Some("choose another name, or move the existing one away first")
            }
            ScaffoldError::NotAProject(_) => {
                Some("a project folder holds switchyard.yaml; make one with `switchyard new NAME`")
            }
            ScaffoldError::BadName(_) | ScaffoldError::Io { .. } => None,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError + '_ {
    move |source| ScaffoldError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a new project folder `name` under `parent` from `template`, its `.env` naming it
/// (mode `development`). Returns the folder.
pub fn new_project(
    parent: &Path,
    name: &str,
    template: Template,
) -> Result<PathBuf, ScaffoldError> {
    crate::model::check_project_name(name)
        .map_err(|message| ScaffoldError::BadName(format!("`{name}`: {message}")))?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    // Written beside, then moved in: a failure leaves no half-made project.
    let staging = parent.join(format!(".{name}.new-{}", std::process::id()));
    let written = write_template(&staging, name, template);
    if let Err(error) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(ScaffoldError::Exists(dir));
    }
    std::fs::rename(&staging, &dir).map_err(io(&dir))?;
    Ok(dir)
}

fn write_template(dir: &Path, name: &str, template: Template) -> Result<(), ScaffoldError> {
    std::fs::create_dir_all(dir.join(ROUTERS)).map_err(io(dir))?;
    let write = |file: &str, text: &str| {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(io(&path))
    };
    let own = match template {
        Template::Script => "GREETING=\"Hello from Switchyard\"\n",
        _ => "",
    };
    write(ENV_FILE, &format!("{}{own}", env_file(name)))?;
    write(&format!("{ROUTERS}/.keep"), "")?;
    match template {
        Template::Mock => write(MANIFEST, &manifest(name, MOCK_MANIFEST))?,
        Template::Script => {
            write(MANIFEST, &manifest(name, SCRIPT_MANIFEST))?;
            write(SCRIPT, SCRIPT_SOURCE)?;
        }
        Template::Gateway => write(MANIFEST, &manifest(name, GATEWAY_MANIFEST))?,
        Template::Dataset => {
            write(MANIFEST, &manifest(name, DATASET_MANIFEST))?;
            std::fs::create_dir_all(dir.join(DATA)).map_err(io(dir))?;
            write(&format!("{DATA}/iris.csv"), IRIS)?;
        }
    }
    Ok(())
}

/// Renames the project folder `old` to `new` (a sibling), and its name in the manifest and
/// `.env`; every other setting, comment and file stays as it was.
pub fn rename(old: &Path, new: &str) -> Result<PathBuf, ScaffoldError> {
    crate::model::check_project_name(new)
        .map_err(|message| ScaffoldError::BadName(format!("`{new}`: {message}")))?;
    let manifest_path = old.join(MANIFEST);
    if !manifest_path.is_file() {
        return Err(ScaffoldError::NotAProject(old.to_path_buf()));
    }
    let parent = old.parent().unwrap_or(Path::new("."));
    let target = parent.join(new);
    if target.exists() {
        return Err(ScaffoldError::Exists(target));
    }
    // Both files are made first; nothing is written until both are.
    let manifest = std::fs::read_to_string(&manifest_path).map_err(io(&manifest_path))?;
    let manifest = set_top_level(&manifest, "name", new);
    let env_path = old.join(ENV_FILE);
    let env = match std::fs::read_to_string(&env_path) {
        Ok(text) => Some(set_env(&text, "APP_NAME", new)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(io(&env_path)(error)),
    };
    std::fs::rename(old, &target).map_err(io(&target))?;
    let written = std::fs::write(target.join(MANIFEST), manifest).and_then(|()| match &env {
        Some(env) => std::fs::write(target.join(ENV_FILE), env),
        None => Ok(()),
    });
    if let Err(error) = written {
        // Put the folder back as it was found.
        let _ = std::fs::rename(&target, old);
        return Err(io(&target)(error));
    }
    Ok(target)
}

/// Adds `routers/NAME.yaml` to the project folder `project`, under `prefix` (`/NAME` by
/// default), with one example endpoint. Returns the router's file.
pub fn add_router(
    project: &Path,
    name: &str,
    prefix: Option<&str>,
) -> Result<PathBuf, ScaffoldError> {
    super::check_router_name(name).map_err(ScaffoldError::BadName)?;
    if !project.join(MANIFEST).is_file() {
        return Err(ScaffoldError::NotAProject(project.to_path_buf()));
    }
    let prefix = prefix.map_or_else(|| format!("/{name}"), str::to_owned);
    if !prefix.starts_with('/') || prefix.contains(['{', '}', '?', '#', ' ']) {
        return Err(ScaffoldError::BadName(format!(
            "prefix `{prefix}` must start with `/` and be plain text, such as /{name}"
        )));
    }
    let routers = project.join(ROUTERS);
    std::fs::create_dir_all(&routers).map_err(io(&routers))?;
    let file = routers.join(format!("{name}.yaml"));
    if file.exists() || routers.join(format!("{name}.yml")).exists() {
        return Err(ScaffoldError::Exists(file));
    }
    let text = ROUTER_TEMPLATE
        .replace("{{name}}", name)
        .replace("{{prefix}}", &prefix);
    // `create_new`: never overwrite a file that appeared meanwhile.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .map_err(io(&file))?;
    std::io::Write::write_all(&mut out, text.as_bytes()).map_err(io(&file))?;
    Ok(file)
}

/// `key: value` as the top-level line of a YAML text (replaced where it is, else added
/// first).
fn set_top_level(text: &str, key: &str, value: &str) -> String {
    let wanted = format!("{key}:");
    let line = format!("{key}: {value}");
    replace_line(text, |l| l.starts_with(&wanted), &line, true)
}

/// `NAME=value` in a `.env` text (replaced where it is, else added last).
fn set_env(text: &str, name: &str, value: &str) -> String {
    let named = |line: &str| {
        let bare = line.trim_start().trim_start_matches("export ").trim_start();
        bare.split_once('=').is_some_and(|(n, _)| n.trim() == name)
    };
    replace_line(text, named, &format!("{name}={value}"), false)
}

/// `text` with its first line that `is` replaced by `new`, or `new` added (first or last)
/// when none is; every other line kept as it was.
fn replace_line(text: &str, is: impl Fn(&str) -> bool, new: &str, first: bool) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    match lines.iter().position(|line| is(line)) {
        Some(at) => lines[at] = new,
        None if first => lines.insert(0, new),
        None => lines.push(new),
    }
    let mut joined = lines.join("\n");
    joined.push('\n');
    joined
}

fn env_file(name: &str) -> String {
    format!(
        "# Values for this project. APP_NAME and MODE set its name and mode (development,\n\
         # staging or production); the others reach its script as `env`. The process\n\
         # environment overrides them.\n\
         APP_NAME={name}\nMODE=development\n"
    )
}

fn manifest(name: &str, body: &str) -> String {
    format!(
        "# A Switchyard project folder (docs/projects.md).\n\
         name: {name}\nmode: development\n{body}"
    )
}

const MOCK_MANIFEST: &str = r#"description: Mock endpoints, described and validated.
endpoints:
  - method: GET
    path: /hello
    summary: Say hello
    response:
      json: {message: Hello from Switchyard}
  - method: GET
    path: /items/{id}
    summary: One item
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer, minimum: 1}}
    response:
      json: {id: 1, name: First item}
  - method: POST
    path: /items
    summary: Add an item
    request_body:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [name]
            properties:
              name: {type: string, minLength: 1}
    response:
      status: 201
      json: {id: 2, name: Second item}
"#;

const SCRIPT_MANIFEST: &str = r#"description: A script handler (app.js) keeping items in kv.
"#;

const SCRIPT_SOURCE: &str = r#"// The project's script (docs/scripts.md): routes beside the manifest's endpoints.
// `env` holds the values of .env (GREETING) and of the environment that override them.
app.get("/hello", { summary: "Say hello" }, () => ({ message: env.GREETING ?? "Hello" }));

app.get("/items/{id}", { summary: "One item" }, (req) => {
  const item = kv.get("item:" + req.params.id);
  return item === null ? { status: 404, json: { error: "no such item" } } : item;
});

app.post("/items", {
  summary: "Add an item",
  request_body: { required: true, content: { "application/json": { schema: {
    type: "object", required: ["id", "name"],
    properties: { id: { type: "string" }, name: { type: "string" } } } } } },
}, (req) => {
  kv.set("item:" + req.body.id, req.body);
  return { status: 201, json: req.body };
});
"#;

const GATEWAY_MANIFEST: &str = r#"description: A gateway in front of a backend.
backends:
  - name: api
    urls: ["http://127.0.0.1:9000"]
    timeout_ms: 5000
endpoints:
  - method: ANY
    path: /api
    summary: Everything under /api goes to the backend
    proxy: {backend: api}
  - method: GET
    path: /status
    summary: The gateway's own answer
    response:
      json: {status: ok}
"#;

const DATASET_MANIFEST: &str = r#"description: The iris dataset, queried and summarised.
datasets:
  - name: iris
    file: data/iris.csv
    endpoints: default
    category: species
"#;

const IRIS: &str = include_str!("../dataset/testdata/iris.csv");

const ROUTER_TEMPLATE: &str = r#"# Router {{name}}: its endpoints are served under {{prefix}} (docs/projects.md#routers).
prefix: {{prefix}}
endpoints:
  - method: GET
    path: /
    summary: List the {{name}}
    response:
      json: []
"#;
