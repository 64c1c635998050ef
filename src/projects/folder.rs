//! Reading a project folder: the manifest, the routers, the script, the dataset files and
//! `.env`, into what the admin API's whole project definition says (plus the script, the
//! datasets and the values), each part remembered with the file and line it came from.
//!
//! YAML is read as YAML 1.2 (`yes` and `on` stay strings). A file's shape errors (its
//! syntax, a field of the wrong type) name the line and column the parser gives; an entry
//! that does not make a valid endpoint, backend or dataset names the line where the entry
//! starts, and the field.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::model::{Backend, EndpointSpec, Env, ProjectDefinition};

use super::{ENV_FILE, MANIFEST, ROUTERS, SCRIPT};

/// A project folder, read.
#[derive(Debug, Clone)]
pub struct Folder {
    pub dir: PathBuf,
    /// `APP_NAME` of `.env`, else the manifest's `name`, else the folder's name.
    pub name: String,
    /// What the admin API's `PUT /admin/projects/{owner}/{name}` would take: the manifest's
    /// settings, its endpoints and every router's (paths under their prefix, ids given or
    /// derived from method and path), its backends.
    pub definition: ProjectDefinition,
    /// Where each of `definition.endpoints` was written.
    pub origins: Vec<Origin>,
    pub routers: Vec<Router>,
    /// `app.js`, if there is one.
    pub script: Option<String>,
    pub datasets: Vec<DatasetFile>,
    /// `.env`, as written (the process environment does not enter here).
    pub env: BTreeMap<String, String>,
}

/// Which process environment variables override a folder's `.env` values of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overrides {
    /// None: the folder as written (`validate`, `push`).
    None,
    /// Every name `.env` has, and `APP_NAME` and `MODE` (`switchyard run`: one project).
    All,
    /// As `All` but `APP_NAME`: a directory's projects keep their own names
    /// (`serve --projects`).
    AllButName,
}

impl Overrides {
    fn value(self, name: &str) -> Option<String> {
        match self {
            Overrides::None => None,
            Overrides::AllButName if name == APP_NAME => None,
            _ => std::env::var(name).ok(),
        }
    }
}

/// The `.env` names that are settings, not values for the script.
const APP_NAME: &str = "APP_NAME";
const MODE: &str = "MODE";

/// A place in a folder's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Relative to the folder (`switchyard.yaml`, `routers/orders.yaml`).
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// A router: a file of endpoints under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    pub name: String,
    pub prefix: String,
    pub endpoints: usize,
}

/// A dataset the manifest lists: a file of the folder, and how it is uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetFile {
    pub name: String,
    /// Relative to the folder (`data/iris.csv`).
    pub file: PathBuf,
    /// `csv`, `json` or `jsonl`, when the file's extension does not say.
    #[serde(default)]
    pub format: Option<String>,
    /// Declared column types, `col:type,…`.
    #[serde(default)]
    pub types: Option<String>,
    /// `default`: the dataset's standard endpoints; `none` (the default): none.
    #[serde(default)]
    pub endpoints: Option<String>,
    /// The category column of the standard endpoints.
    #[serde(default)]
    pub category: Option<String>,
    /// The path the standard endpoints are made under.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// What is wrong with a folder, at a place of one of its files when it is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct FolderError {
    /// The file (under the folder), or the folder itself.
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl FolderError {
    fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> FolderError {
        FolderError {
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn at(origin: &Origin, message: impl Into<String>) -> FolderError {
        FolderError {
            file: origin.file.clone(),
            line: Some(origin.line),
            column: Some(origin.column),
            message: message.into(),
        }
    }

    /// The same problem, its file named from `dir` (the folder) rather than inside it.
    pub fn under(self, dir: &Path) -> FolderError {
        FolderError {
            file: if self.file.is_absolute() || self.file.starts_with(dir) {
                self.file
            } else {
                dir.join(&self.file)
            },
            ..self
        }
    }

    /// `file:line:column: message`, as compilers write it.
    fn render(&self) -> String {
        let file = self.file.display();
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}: {}", self.message),
            (Some(line), None) => format!("{file}:{line}: {}", self.message),
            _ => format!("{file}: {}", self.message),
        }
    }
}

/// The manifest's settings (its lists are read one entry at a time, with their lines).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    mode: Option<crate::model::Mode>,
    #[serde(default)]
    auth: Option<crate::model::AuthPolicy>,
    #[serde(default)]
    cors: Option<crate::auth::cors::CorsPolicy>,
    #[serde(default)]
    rate_limit: Option<crate::auth::limit::RateLimit>,
    #[serde(default)]
    openapi: Option<crate::model::ProjectDocs>,
    #[serde(default)]
    journal_size: Option<u32>,
    // Read with their lines by `Lists`.
    #[serde(default, rename = "endpoints")]
    _endpoints: serde::de::IgnoredAny,
    #[serde(default, rename = "backends")]
    _backends: serde::de::IgnoredAny,
    #[serde(default, rename = "datasets")]
    _datasets: serde::de::IgnoredAny,
}

/// The lists of a manifest or router file, each entry with where it starts.
#[derive(Deserialize)]
struct Lists {
    #[serde(default)]
    endpoints: Vec<Spanned<Value>>,
    #[serde(default)]
    backends: Vec<Spanned<Value>>,
    #[serde(default)]
    datasets: Vec<Spanned<Value>>,
}

/// A router file's own fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouterFile {
    #[serde(default)]
    prefix: Option<String>,
    /// For people reading the file.
    #[serde(default, rename = "description")]
    _description: Option<String>,
    #[serde(default, rename = "endpoints")]
    _endpoints: serde::de::IgnoredAny,
}

/// Reads the folder at `dir`, as written. Every problem found is listed (a file that cannot
/// be read stops what depends on it).
pub fn read(dir: &Path) -> Result<Folder, Vec<FolderError>> {
    read_with(dir, Overrides::None)
}

/// Reads the folder at `dir`, the process environment overriding `.env` as `overrides`
/// says.
pub fn read_with(dir: &Path, overrides: Overrides) -> Result<Folder, Vec<FolderError>> {
    let manifest_path = dir.join(MANIFEST);
    if !manifest_path.is_file() {
        return Err(vec![FolderError::new(
            dir,
            format!("not a project folder: it has no {MANIFEST}"),
        )]);
    }
    let mut errors = Vec::new();
    let env = read_env(dir, &mut errors);
    let effective = |name: &str| overrides.value(name).or_else(|| env.get(name).cloned());
    let values = Env::new(
        env.keys()
            .filter(|name| *name != APP_NAME && *name != MODE)
            .filter_map(|name| Some((name.clone(), effective(name)?)))
            .collect(),
    );
    let manifest = read_text(dir, Path::new(MANIFEST), &mut errors);
    let Some(manifest) = manifest else {
        return Err(errors);
    };
    let file = PathBuf::from(MANIFEST);
    let Some((settings, lists)) = parse::<Settings>(&file, &manifest, &mut errors) else {
        return Err(errors);
    };
    let mut ids = Ids::default();
    let mut endpoints = Vec::new();
    let mut origins = Vec::new();
    read_endpoints(
        &file,
        &lists.endpoints,
        "",
        "endpoints",
        &mut ids,
        &mut endpoints,
        &mut origins,
        &mut errors,
    );
    let mut backends = Vec::new();
    for (i, entry) in lists.backends.iter().enumerate() {
        let origin = origin(&file, entry);
        match serde_json::from_value::<Backend>(entry.value.clone()) {
            Ok(backend) => {
                let mut found = Vec::new();
                backend.validate(&format!("backends[{i}]."), &mut found);
                errors.extend(
                    found
                        .into_iter()
                        .map(|e| FolderError::at(&origin, format!("{}: {}", e.field, e.message))),
                );
                backends.push(backend);
            }
            Err(error) => errors.push(FolderError::at(&origin, format!("backends[{i}]: {error}"))),
        }
    }
    let mut datasets = Vec::new();
    for (i, entry) in lists.datasets.iter().enumerate() {
        let origin = origin(&file, entry);
        match serde_json::from_value::<DatasetFile>(entry.value.clone()) {
            Ok(dataset) => {
                if let Err(message) = check_dataset_file(dir, &dataset) {
                    errors.push(FolderError::at(
                        &origin,
                        format!("datasets[{i}].file: {message}"),
                    ));
                }
                datasets.push(dataset);
            }
            Err(error) => errors.push(FolderError::at(&origin, format!("datasets[{i}]: {error}"))),
        }
    }
    let routers = read_routers(dir, &mut ids, &mut endpoints, &mut origins, &mut errors);
    let script = if dir.join(SCRIPT).is_file() {
        read_text(dir, Path::new(SCRIPT), &mut errors)
    } else {
        None
    };
    let name = effective(APP_NAME)
        .or_else(|| settings.name.clone())
        .or_else(|| folder_name(dir));
    let name = match name {
        Some(name) => name,
        None => {
            errors.push(FolderError::new(&file, "the project needs a `name`"));
            String::new()
        }
    };
    if let Err(message) = crate::model::check_project_name(&name) {
        errors.push(FolderError::new(&file, format!("name `{name}`: {message}")));
    }
    let mode = match effective(MODE) {
        Some(mode) => match serde_json::from_value(Value::String(mode)) {
            Ok(mode) => Some(mode),
            Err(error) => {
                errors.push(FolderError::new(ENV_FILE, format!("MODE: {error}")));
                settings.mode
            }
        },
        None => settings.mode,
    };
    let definition = ProjectDefinition {
        name: Some(name.clone()),
        description: settings.description,
        mode,
        auth: settings.auth.unwrap_or_default(),
        cors: settings.cors,
        rate_limit: settings.rate_limit,
        openapi: settings.openapi,
        journal_size: settings.journal_size,
        endpoints,
        backends,
        env: values,
    };
    let mut found = Vec::new();
    definition.validate_settings(&mut found);
    errors.extend(
        found
            .into_iter()
            .map(|e| match e.field.strip_prefix("env.") {
                Some(name) => FolderError::new(ENV_FILE, format!("{name}: {}", e.message)),
                None => FolderError::new(&file, format!("{}: {}", e.field, e.message)),
            }),
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Folder {
        dir: dir.to_path_buf(),
        name: name.clone(),
        definition,
        origins,
        routers,
        script,
        datasets,
        env,
    })
}

/// Taken endpoint ids: those written, then those derived.
#[derive(Default)]
struct Ids {
    taken: HashSet<String>,
}

/// Where a list entry starts.
fn origin(file: &Path, entry: &Spanned<Value>) -> Origin {
    Origin {
        file: file.to_path_buf(),
        line: usize::try_from(entry.referenced.line()).unwrap_or(0),
        column: usize::try_from(entry.referenced.column()).unwrap_or(0),
    }
}

/// A file of the folder as text; a problem reading it is listed.
fn read_text(dir: &Path, file: &Path, errors: &mut Vec<FolderError>) -> Option<String> {
    match std::fs::read(dir.join(file)) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(_) => {
                errors.push(FolderError::new(file, "is not UTF-8 text"));
                None
            }
        },
        Err(error) => {
            errors.push(FolderError::new(file, format!("cannot be read: {error}")));
            None
        }
    }
}

/// A YAML 1.2 file read twice: as `T` (shape errors with their place) and as its lists
/// with where each entry starts.
fn parse<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
    errors: &mut Vec<FolderError>,
) -> Option<(T, Lists)> {
    let options = || serde_saphyr::options! { strict_booleans: true };
    let located = |error: serde_saphyr::Error| {
        let text = error.to_string();
        let first = text.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first).to_owned();
        let location = error.location();
        FolderError {
            file: file.to_path_buf(),
            line: location.map(|l| usize::try_from(l.line()).unwrap_or(0)),
            column: location.map(|l| usize::try_from(l.column()).unwrap_or(0)),
            message,
        }
    };
    // An empty file is an empty manifest.
    let text = if text.trim().is_empty() { "{}" } else { text };
    let whole = serde_saphyr::from_str_with_options::<T>(text, options()).map_err(located);
    let lists = serde_saphyr::from_str_with_options::<Lists>(text, options()).map_err(located);
    match (whole, lists) {
        (Ok(whole), Ok(lists)) => Some((whole, lists)),
        (Err(error), _) | (_, Err(error)) => {
            errors.push(error);
            None
        }
    }
}

/// The endpoints of one file, their paths under `prefix`; ids not written are derived from
/// the method and the whole path.
#[expect(
    clippy::too_many_arguments,
    reason = "one file's entries and where they go"
)]
fn read_endpoints(
    file: &Path,
    entries: &[Spanned<Value>],
    prefix: &str,
    list: &str,
    ids: &mut Ids,
    endpoints: &mut Vec<EndpointSpec>,
    origins: &mut Vec<Origin>,
    errors: &mut Vec<FolderError>,
) {
    for (i, entry) in entries.iter().enumerate() {
        let origin = origin(file, entry);
        let field = format!("{list}[{i}]");
        let mut spec = match serde_json::from_value::<EndpointSpec>(entry.value.clone()) {
            Ok(spec) => spec,
            Err(error) => {
                errors.push(FolderError::at(&origin, format!("{field}: {error}")));
                continue;
            }
        };
        let found = spec.validate(&format!("{field}."));
        if !found.is_empty() {
            errors.extend(
                found
                    .into_iter()
                    .map(|e| FolderError::at(&origin, format!("{}: {}", e.field, e.message))),
            );
            continue;
        }
        if !prefix.is_empty() {
            spec.path = join(prefix, &spec.path).into();
        }
        match &spec.id {
            Some(id) if !ids.taken.insert(id.clone()) => {
                errors.push(FolderError::at(
                    &origin,
                    format!("{field}.id: `{id}` is the id of another endpoint of the project"),
                ));
                continue;
            }
            Some(_) => {}
            None => {
                let source = format!("{}-{}", spec.method.as_str(), spec.path);
                spec.id = Some(crate::model::derived_endpoint_id(&source, &mut ids.taken));
            }
        }
        endpoints.push(spec);
        origins.push(origin);
    }
}

/// A router's path under its prefix: `/` is the prefix itself.
fn join(prefix: &str, path: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    match path {
        "/" | "" if !prefix.is_empty() => prefix.to_owned(),
        _ => format!("{prefix}{path}"),
    }
}

/// The routers (`routers/*.yaml`, by name), their endpoints added after the manifest's.
fn read_routers(
    dir: &Path,
    ids: &mut Ids,
    endpoints: &mut Vec<EndpointSpec>,
    origins: &mut Vec<Origin>,
    errors: &mut Vec<FolderError>,
) -> Vec<Router> {
    let mut routers = Vec::new();
    let Ok(listing) = std::fs::read_dir(dir.join(ROUTERS)) else {
        return routers;
    };
    let mut files: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                )
        })
        .collect();
    files.sort();
    let mut prefixes: BTreeMap<String, String> = BTreeMap::new();
    for path in files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let file = Path::new(ROUTERS).join(path.file_name().unwrap_or_default());
        if let Err(message) = super::check_router_name(&name) {
            errors.push(FolderError::new(&file, message));
            continue;
        }
        let Some(text) = read_text(dir, &file, errors) else {
            continue;
        };
        let Some((router, lists)) = parse::<RouterFile>(&file, &text, errors) else {
            continue;
        };
        let prefix = router.prefix.unwrap_or_else(|| format!("/{name}"));
        if !prefix.starts_with('/') || prefix.contains(['{', '}', '?', '#']) {
            errors.push(FolderError::new(
                &file,
                format!("prefix `{prefix}` must start with `/` and be plain text"),
            ));
            continue;
        }
        if let Some(other) = prefixes.insert(prefix.clone(), name.clone()) {
            errors.push(FolderError::new(
                &file,
                format!("prefix `{prefix}` is also the prefix of router `{other}`"),
            ));
        }
        let before = endpoints.len();
        read_endpoints(
            &file,
            &lists.endpoints,
            &prefix,
            "endpoints",
            ids,
            endpoints,
            origins,
            errors,
        );
        routers.push(Router {
            name,
            prefix,
            endpoints: endpoints.len() - before,
        });
    }
    routers
}

/// `.env`: `NAME=value` lines (`#` comments, quotes, `export`), as dotenv files are written.
fn read_env(dir: &Path, errors: &mut Vec<FolderError>) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let path = dir.join(ENV_FILE);
    if !path.is_file() {
        return values;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let iter = match dotenvy::from_path_iter(&path) {
        Ok(iter) => iter,
        Err(error) => {
            errors.push(FolderError::new(
                ENV_FILE,
                format!("cannot be read: {error}"),
            ));
            return values;
        }
    };
    for item in iter {
        match item {
            Ok((name, value)) => {
                values.insert(name, value);
            }
            Err(dotenvy::Error::LineParse(line, at)) => {
                let number = text
                    .lines()
                    .position(|l| l.contains(line.trim()))
                    .map(|n| n + 1);
                errors.push(FolderError {
                    file: ENV_FILE.into(),
                    line: number,
                    column: Some(at + 1),
                    message: format!("cannot read `{}`: expected NAME=value", line.trim()),
                });
                break;
            }
            Err(error) => {
                errors.push(FolderError::new(ENV_FILE, error.to_string()));
                break;
            }
        }
    }
    values
}

/// A dataset's file exists inside the folder.
fn check_dataset_file(dir: &Path, dataset: &DatasetFile) -> Result<(), String> {
    if dataset.file.is_absolute()
        || dataset
            .file
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!(
            "`{}` must be a path inside the folder, such as data/{}.csv",
            dataset.file.display(),
            dataset.name
        ));
    }
    if !dir.join(&dataset.file).is_file() {
        return Err(format!(
            "`{}` is not a file of the folder",
            dataset.file.display()
        ));
    }
    Ok(())
}

/// The folder's own name, if it is one a project may have.
fn folder_name(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    dir.file_name()?.to_str().map(str::to_owned)
}
