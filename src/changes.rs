//! The change path: validate, compile, commit, publish.
//!
//! Every admin change to a project goes through [`Changes`]: it takes *that project's*
//! change lock (changes to different projects run side by side), checks `If-Match`,
//! applies the edit to a copy of the live definition, validates it, compiles the new
//! project off to the side (on a blocking thread when it is large; route conflicts and
//! quotas are found here, before anything is written), then commits it in one store
//! transaction as revision + 1 and publishes it to the route table with one atomic swap.
//! `?dry_run=true` stops before the commit and reports what would change.
//!
//! The commit and the publish run in a task of their own that owns the project's lock:
//! once a change is handed to the store, it is published whatever happens to the caller's
//! connection. When the store refuses a commit because the project moved on (another node,
//! or a commit whose outcome was unknown), the node reloads the project from the store and
//! publishes it, then retries the edit for a caller that sent no `If-Match`.
//!
//! Invariants: a started commit is always published; the route table never goes back to
//! an older revision of a project; a project that could not be loaded whole takes no change
//! but a whole replacement or a delete.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::accounts::now_ms;
use crate::backends::Registry;
use crate::config::Quotas;
use crate::datasets::{DatasetSet, LoadedDataset};
use crate::error::FieldError;
use crate::handlers::Handler;
use crate::model::{
    Backend, Endpoint, EndpointList, EndpointSpec, Mode, Project, ProjectDefinition,
    check_backend_count, new_endpoint_id, validate_backends,
};
use crate::observe::Telemetry;
use crate::routing::{
    CompileError, CompiledEndpoint, CompiledProject, HandlerList, Publish, RouteEdit, Routes,
    ScriptRoutes, retire,
};
use crate::script::Script;
use crate::scripts::ScriptHost;
use crate::store::{
    ApiKeyRecord, Commit, DatasetOps, EndpointOps, KeyOps, NewProject, Store, StoreError,
};
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore};

/// Why a change was refused. Nothing was written when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no project `{0}`")]
    ProjectNotFound(String),
    #[error("no endpoint `{0}` in this project")]
    EndpointNotFound(String),
    #[error("an endpoint with id `{0}` exists in this project")]
    EndpointExists(String),
    #[error("no backend `{0}` in this project")]
    BackendNotFound(String),
    #[error("this project has no script")]
    ScriptNotFound,
    #[error("no dataset `{0}` in this project")]
    DatasetNotFound(String),
    #[error("no API key `{0}` in this project")]
    KeyNotFound(String),
    #[error("the project has an API key named `{0}`")]
    KeyExists(String),
    #[error("endpoint `{endpoint}` forwards to backend `{backend}`; change or delete it first")]
    BackendInUse { backend: String, endpoint: String },
    #[error("the owner already has a project named `{0}`")]
    ProjectExists(String),
    #[error("the project is at revision {current}, not {expected}")]
    RevisionMismatch { expected: i64, current: i64 },
    #[error("the definition is invalid")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    RouteConflict(String),
    #[error(
        "the stored project could not be loaded ({0}); replace it whole with PUT, or DELETE it"
    )]
    Broken(String),
    #[error("{0}")]
    Quota(String),
    /// The store refused the commit: the project moved on since the edit started. The node
    /// has reloaded it; `current` is the revision it now serves.
    #[error("the project changed meanwhile; it is now at revision {current}")]
    Stale { current: i64 },
    #[error("the change task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One line of what a change does.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DiffItem {
    /// `add`, `remove` or `change`.
    pub op: &'static str,
    /// `project`, `endpoint` or a settings field (`description`, `mode`, `name`).
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// For endpoints, `METHOD /path`; for settings, the new value.
    pub detail: String,
}

impl DiffItem {
    fn endpoint(op: &'static str, endpoint: &Endpoint) -> DiffItem {
        DiffItem {
            op,
            target: "endpoint".into(),
            id: Some(endpoint.id.clone()),
            detail: format!("{} {}", endpoint.spec.method.as_str(), endpoint.spec.path),
        }
    }

    fn script(op: &'static str, routes: usize) -> DiffItem {
        DiffItem {
            op,
            target: "script".into(),
            id: None,
            detail: format!("{routes} route{}", if routes == 1 { "" } else { "s" }),
        }
    }

    fn dataset(op: &'static str, dataset: &LoadedDataset) -> DiffItem {
        let rows = dataset.rows();
        DiffItem {
            op,
            target: "dataset".into(),
            id: Some(dataset.name.to_string()),
            detail: format!("{rows} row{}", if rows == 1 { "" } else { "s" }),
        }
    }

    fn key(op: &'static str, name: &str, id: &str) -> DiffItem {
        DiffItem {
            op,
            target: "key".into(),
            id: Some(id.to_owned()),
            detail: name.to_owned(),
        }
    }

    fn backend(op: &'static str, backend: &Backend) -> DiffItem {
        DiffItem {
            op,
            target: "backend".into(),
            id: Some(backend.name.clone()),
            detail: backend.urls.join(" "),
        }
    }

    fn setting(target: &str, value: &str) -> DiffItem {
        DiffItem {
            op: "change",
            target: target.into(),
            id: None,
            detail: value.into(),
        }
    }
}

/// What a change produced: the project as served after it (or as it would be, for a dry
/// run), and the list of what changed.
pub struct Outcome {
    pub project: Arc<CompiledProject>,
    pub diff: Vec<DiffItem>,
    pub dry_run: bool,
}

/// The owner a change acts for, and who makes it.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user_id: i64,
    pub username: &'a str,
    /// Admins are not held to quotas.
    pub admin: bool,
}

/// Which project a change is for, the revision it expects (`If-Match`), and whether it is
/// only a dry run.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The mount key, `owner/name`.
    pub key: &'a str,
    pub expected: Option<i64>,
    pub dry_run: bool,
}

/// Settings a change may set; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct SettingsEdit {
    pub name: Option<String>,
    pub description: Option<String>,
    pub mode: Option<Mode>,
    /// `Some(None)`: back to the node's default.
    pub journal_size: Option<Option<u32>>,
    pub auth: Option<crate::model::AuthPolicy>,
    /// `Some(None)`: no CORS policy any more.
    pub cors: Option<Option<crate::model::CorsPolicy>>,
    /// `Some(None)`: no rate limit any more.
    pub rate_limit: Option<Option<crate::model::RateLimit>>,
    /// `Some(None)`: no OpenAPI settings any more.
    pub openapi: Option<Option<crate::model::ProjectDocs>>,
    /// The whole new set of environment values (empty: none).
    pub env: Option<crate::model::Env>,
}

impl SettingsEdit {
    /// Every setting of a whole definition (an absent description or mode: the default),
    /// with `name` as given (`None`: keep the project's).
    pub fn whole(name: Option<String>, definition: &ProjectDefinition) -> SettingsEdit {
        SettingsEdit {
            name,
            description: Some(definition.description.clone().unwrap_or_default()),
            mode: Some(definition.mode.unwrap_or_default()),
            journal_size: Some(definition.journal_size),
            auth: Some(definition.auth.clone()),
            cors: Some(definition.cors.clone()),
            rate_limit: Some(definition.rate_limit.clone()),
            openapi: Some(definition.openapi.clone()),
            env: Some(definition.env.clone()),
        }
    }
}

/// How an endpoint write treats an existing endpoint with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// POST: the id must be new.
    CreateOnly,
    /// PUT: replace it, or create it with that id.
    CreateOrReplace,
}

/// A whole project, as a project folder gives it (see [`Changes::replace_whole`]).
#[derive(Debug, Clone)]
pub struct Whole {
    pub definition: ProjectDefinition,
    pub script: WholeScript,
    /// Every dataset the project has after the change; `None` keeps them as they are.
    pub datasets: Option<Vec<WholeDataset>>,
}

/// What a whole replacement does to the project's script.
#[derive(Debug, Clone)]
pub enum WholeScript {
    Keep,
    /// This source (nothing changes if it is the one served).
    Set(String),
    /// No script (nothing changes if there is none).
    Remove,
}

/// One dataset of a whole project.
#[derive(Debug, Clone)]
pub struct WholeDataset {
    pub name: String,
    /// A new version, uploaded and parsed before the change; `None`: the current one.
    pub upload: Option<Arc<LoadedDataset>>,
    /// Its standard endpoints (as `?endpoints=default` makes them), if wanted.
    pub endpoints: Option<StandardEndpoints>,
}

/// Where a dataset's standard endpoints go: under `prefix`, grouped by `category`.
#[derive(Debug, Clone, Default)]
pub struct StandardEndpoints {
    pub category: Option<String>,
    pub prefix: Option<String>,
}

impl StandardEndpoints {
    /// The standard endpoints of `dataset`, the `i`th of a whole project's; none, and its
    /// problems listed in `errors`, when a setting does not fit it.
    fn of(&self, i: usize, dataset: &LoadedDataset, errors: &mut Vec<FieldError>) -> Vec<Endpoint> {
        crate::datasets::default_endpoints(
            dataset,
            self.category.as_deref(),
            self.prefix.as_deref(),
        )
        .unwrap_or_else(|found| {
            errors.extend(found.into_iter().map(|e| {
                let field = e.field.strip_prefix("query.").unwrap_or(&e.field);
                FieldError::new(format!("datasets[{i}].{field}"), e.message)
            }));
            Vec::new()
        })
    }
}

/// The datasets of a whole replacement: what changes in the store (new versions, and the
/// current datasets it does not list, removed), with the standard endpoints wanted merged
/// into `list`. A dataset listed without a new version must be one the project has.
fn whole_datasets(
    current: &CompiledProject,
    wanted: &[WholeDataset],
    list: &mut EndpointList,
) -> Result<(DatasetEdit, Vec<DiffItem>), ChangeError> {
    let mut edit = DatasetEdit::default();
    let mut diff = Vec::new();
    let mut errors = Vec::new();
    let mut standard = Vec::new();
    for (i, dataset) in wanted.iter().enumerate() {
        let live = current.datasets.get(&dataset.name);
        let version = match (&dataset.upload, live) {
            (Some(upload), live) => {
                diff.push(DiffItem::dataset(
                    if live.is_some() { "change" } else { "add" },
                    upload,
                ));
                edit.put.push(upload.clone());
                upload
            }
            (None, Some(live)) => live,
            (None, None) => {
                errors.push(FieldError::new(
                    format!("datasets[{i}]"),
                    format!(
                        "the project has no dataset `{}`; send its file",
                        dataset.name
                    ),
                ));
                continue;
            }
        };
        if let Some(wanted) = &dataset.endpoints {
            let endpoints = wanted.of(i, version, &mut errors);
            standard.extend(endpoints.into_iter().map(Arc::new));
        }
    }
    for live in current.datasets.iter() {
        if !wanted.iter().any(|d| *d.name == *live.name) {
            diff.push(DiffItem::dataset("remove", live));
            edit.remove.push(live.name.to_string());
        }
    }
    if !errors.is_empty() {
        return Err(ChangeError::Invalid(errors));
    }
    merge_by_id(list, &standard);
    Ok((edit, diff))
}

/// The most API keys a project may have.
pub const MAX_KEYS: usize = 1000;

/// The edit an operation makes to a copy of the live project.
struct Edit {
    project: Project,
    handlers: HandlerList,
    routes: RouteEdit,
    ops: OwnedOps,
    summary: String,
    diff: Vec<DiffItem>,
    script: ScriptEdit,
    datasets: DatasetEdit,
    keys: KeyEdit,
}

/// What an edit does to the project's API keys.
#[derive(Clone)]
enum KeyEdit {
    Keep,
    Add(ApiKeyRecord),
    /// Revoke the key with this id.
    Revoke(String),
}

/// What an edit does to the project's datasets: the versions (uploaded and parsed before
/// the edit) added or replacing the current one of their name, then the names removed.
#[derive(Clone, Default)]
struct DatasetEdit {
    put: Vec<Arc<LoadedDataset>>,
    remove: Vec<String>,
}

impl DatasetEdit {
    fn put(dataset: Arc<LoadedDataset>) -> DatasetEdit {
        DatasetEdit {
            put: vec![dataset],
            remove: Vec::new(),
        }
    }

    fn remove(name: String) -> DatasetEdit {
        DatasetEdit {
            put: Vec::new(),
            remove: vec![name],
        }
    }

    fn is_empty(&self) -> bool {
        self.put.is_empty() && self.remove.is_empty()
    }

    /// `set` after the edit.
    fn apply(&self, set: &DatasetSet) -> DatasetSet {
        let set = self
            .put
            .iter()
            .fold(set.clone(), |set, d| set.with(d.clone()));
        self.remove.iter().fold(set, |set, name| set.without(name))
    }

    /// The store's operations (see [`DatasetOps`]).
    fn ops(&self) -> Vec<DatasetOps<'_>> {
        let put = self.put.iter().map(|dataset| DatasetOps::Put {
            name: &dataset.name,
            version: dataset.version,
            rows: dataset.rows() as i64,
            bytes: dataset.bytes as i64,
        });
        put.chain(self.remove.iter().map(|name| DatasetOps::Delete(name)))
            .collect()
    }
}

/// What an edit does to the project's compiled script.
#[derive(Clone)]
enum ScriptEdit {
    /// The script stays as it is.
    Keep,
    /// This script (compiled before the edit, off the project's lock) replaces it.
    Set(Arc<Script>),
    /// The same script, compiled again for the project's new environment values.
    Again(Arc<Script>),
    Remove,
}

/// A script compiled again, under the project's lock, for environment values an edit gives
/// the project: its source and the script (see [`compute`]).
type Recompiled = (Arc<str>, Arc<Script>);

/// What computing an edit came to.
enum Step {
    /// The edit changes nothing.
    Unchanged,
    Ready(Box<Computed>),
    /// The script the edit would serve was compiled with other environment values than the
    /// project's after the edit (`env` changed, or changed while a new script compiled): it
    /// must be compiled again for `project` first, then the edit computed again with it.
    /// `field` is what a failure is about (`env` or `script`).
    Rescript {
        project: Arc<Project>,
        source: Arc<str>,
        field: &'static str,
    },
}

impl Edit {
    fn new(project: Project, handlers: HandlerList, ops: OwnedOps, diff: Vec<DiffItem>) -> Edit {
        Edit {
            project,
            handlers,
            routes: RouteEdit::Unknown,
            ops,
            summary: summary_of(&diff),
            diff,
            script: ScriptEdit::Keep,
            datasets: DatasetEdit::default(),
            keys: KeyEdit::Keep,
        }
    }

    /// An edit of what a project keeps beside its definition (datasets, API keys): the
    /// definition, handlers and routes as they are.
    fn side_table(current: &CompiledProject, diff: Vec<DiffItem>) -> Edit {
        Edit::new(
            current.def.as_ref().clone(),
            current.handlers.clone(),
            OwnedOps::None,
            diff,
        )
        .routes(RouteEdit::Kept)
    }

    /// Sets what the edit does to the API keys.
    fn keys(self, keys: KeyEdit) -> Edit {
        Edit { keys, ..self }
    }

    /// Sets what the edit does to the datasets.
    fn datasets(self, datasets: DatasetEdit) -> Edit {
        Edit { datasets, ..self }
    }

    /// Sets what the edit does to the compiled script.
    fn script(self, script: ScriptEdit) -> Edit {
        Edit { script, ..self }
    }

    /// Tells the compiler what the edit did to methods and paths (see [`RouteEdit`]).
    fn routes(self, routes: RouteEdit) -> Edit {
        Edit { routes, ..self }
    }
}

enum OwnedOps {
    None,
    Upsert(Arc<Endpoint>),
    Delete(String),
    ReplaceAll,
}

/// The change path of this node.
pub struct Changes {
    store: Arc<dyn Store>,
    routes: Arc<Routes>,
    quotas: Quotas,
    locks: Arc<ProjectLocks>,
    gate: Option<Arc<CommitGate>>,
    /// Where commit latencies are counted.
    telemetry: Arc<Telemetry>,
    /// The node's live upstreams, which compiled projects take theirs from.
    registry: Arc<Registry>,
    /// Compiles projects' scripts.
    scripts: ScriptHost,
}

/// One change lock per project, by store id (stable across renames). The request path
/// never takes them.
#[derive(Default)]
struct ProjectLocks {
    locks: std::sync::Mutex<HashMap<i64, Arc<Mutex<()>>>>,
}

impl ProjectLocks {
    fn get(&self, id: i64) -> Arc<Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(id).or_default().clone()
    }

    fn forget(&self, id: i64) {
        self.locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
    }
}

/// Test hook: holds every change between its commit and its publish until released, so
/// that a test can drop the client exactly there. Never set outside tests.
#[doc(hidden)]
#[derive(Debug)]
pub struct CommitGate {
    committed: Semaphore,
    release: Semaphore,
}

impl Default for CommitGate {
    fn default() -> Self {
        CommitGate {
            committed: Semaphore::new(0),
            release: Semaphore::new(0),
        }
    }
}

#[doc(hidden)]
impl CommitGate {
    /// Waits until a change has been committed and is being held.
    pub async fn wait_committed(&self) {
        if let Ok(permit) = self.committed.acquire().await {
            permit.forget();
        }
    }

    /// Lets one held change go on to its publish.
    pub fn release(&self) {
        self.release.add_permits(1);
    }

    async fn hold(&self) {
        self.committed.add_permits(1);
        if let Ok(permit) = self.release.acquire().await {
            permit.forget();
        }
    }
}

/// Whole projects (a create or a `PUT`) of at least this many endpoints are validated and
/// compiled on a blocking thread, so that a large change never stalls an async worker.
const BLOCKING_FROM: usize = 2_000;

/// An edit of one endpoint or of settings is made on a blocking thread only in projects of
/// at least this many endpoints. Below it the edit costs O(log n) (the endpoint and handler
/// lists are persistent) plus one copy of the router's flat buffers when a route is added,
/// about 0.3 ms at 20,000 endpoints: less than the two thread hand-offs would add.
const EDIT_BLOCKING_FROM: usize = 20_000;

/// Validates one endpoint definition and gives it its id: the one in the URL, the one in
/// the body, or a new one.
pub fn prepare_endpoint(
    mut spec: EndpointSpec,
    prefix: &str,
    id: Option<&str>,
) -> Result<Endpoint, Vec<FieldError>> {
    let mut errors = spec.validate(prefix);
    if let (Some(url_id), Some(body_id)) = (id, spec.id.as_deref())
        && url_id != body_id
    {
        errors.push(FieldError::new(
            format!("{prefix}id"),
            format!("is `{body_id}` but the URL names `{url_id}`"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = id
        .map(str::to_owned)
        .or_else(|| spec.id.take())
        .unwrap_or_else(new_endpoint_id);
    spec.id = None;
    Endpoint::new(id, spec)
        .map_err(|e| vec![FieldError::new(format!("{prefix}path"), e.to_string())])
}

fn compile_handler(endpoint: &Endpoint, prefix: &str) -> Result<Handler, ChangeError> {
    Handler::compile(&endpoint.spec).map_err(|e| {
        ChangeError::Invalid(vec![FieldError::new(
            format!("{prefix}response"),
            e.to_string(),
        )])
    })
}

/// Whether an endpoint's schemas are held to [`crate::openapi::validate::lint`]: those
/// written for it are; those of an imported document, and those only recompiled because
/// the project's `openapi` settings changed, are taken as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lint {
    Strict,
    Lenient,
}

/// The request checks of an endpoint's schemas, whose `$ref`s resolve in the project's
/// `openapi` settings `docs`; a schema that does not compile is a 422 naming its field.
fn compile_checks(
    endpoint: &Endpoint,
    docs: Option<&crate::model::ProjectDocs>,
    prefix: &str,
    lint: Lint,
) -> Result<Option<Box<crate::openapi::validate::Checks>>, ChangeError> {
    let invalid = |error: crate::openapi::validate::SchemaError| {
        ChangeError::Invalid(vec![FieldError::new(
            format!("{prefix}{}", error.at),
            error.message,
        )])
    };
    if lint == Lint::Strict {
        crate::openapi::validate::lint(&endpoint.spec, docs).map_err(invalid)?;
    }
    crate::openapi::validate::Checks::compile(&endpoint.spec, docs)
        .map(|checks| checks.map(Box::new))
        .map_err(invalid)
}

/// Whether an endpoint's compiled form depends on the project's `openapi` settings (its
/// schemas may refer to their components).
fn uses_project_docs(endpoint: &Endpoint) -> bool {
    endpoint.spec.docs.as_deref().is_some_and(|d| {
        let o = &d.operation;
        o.validate.request && (!o.parameters.is_empty() || o.request_body.is_some())
    })
}

/// Puts `incoming` into `list`: each endpoint replaces the one with its id in place, or is
/// appended. Answers what changed (an endpoint equal to the one it replaces is no change).
fn merge_by_id<'a>(
    list: &mut EndpointList,
    incoming: impl IntoIterator<Item = &'a Arc<Endpoint>>,
) -> Vec<DiffItem> {
    let at: HashMap<String, usize> = list
        .iter()
        .enumerate()
        .map(|(index, e)| (e.id.clone(), index))
        .collect();
    let mut diff = Vec::new();
    for endpoint in incoming {
        match at.get(&endpoint.id) {
            Some(&index) if list[index].spec == endpoint.spec => {}
            Some(&index) => {
                diff.push(DiffItem::endpoint("change", endpoint));
                list.set(index, endpoint.clone());
            }
            None => {
                diff.push(DiffItem::endpoint("add", endpoint));
                list.push_back(endpoint.clone());
            }
        }
    }
    diff
}

fn conflict(error: CompileError) -> ChangeError {
    match error {
        CompileError::Conflict { .. } | CompileError::ScriptConflict { .. } => {
            ChangeError::RouteConflict(error.to_string())
        }
        CompileError::Template { .. } => {
            ChangeError::Invalid(vec![FieldError::new("path", error.to_string())])
        }
        CompileError::ScriptTemplate { .. } | CompileError::ScriptSchema { .. } => {
            ChangeError::Invalid(vec![FieldError::new("script", error.to_string())])
        }
    }
}

/// The same compiled project, its definition carrying the id the store gave it.
fn with_store_id(compiled: CompiledProject, id: i64) -> Arc<CompiledProject> {
    let mut def = Arc::unwrap_or_clone(compiled.def);
    def.id = id;
    Arc::new(CompiledProject {
        def: Arc::new(def),
        ..compiled
    })
}

/// What replacing endpoint `before` by `after`, in place, does to the project's routes.
fn route_edit_of(before: &Endpoint, after: &Endpoint) -> RouteEdit {
    if before.spec.method == after.spec.method && before.spec.path == after.spec.path {
        RouteEdit::Kept
    } else {
        RouteEdit::Unknown
    }
}

/// Where endpoint `id` is in the live project.
fn index_of(current: &CompiledProject, id: &str) -> Result<usize, ChangeError> {
    current
        .def
        .endpoints
        .iter()
        .position(|e| e.id == id)
        .ok_or_else(|| ChangeError::EndpointNotFound(id.to_owned()))
}

fn too_many_endpoints(limit: usize) -> ChangeError {
    ChangeError::Quota(format!(
        "a project holds at most {limit} endpoints on this instance"
    ))
}

/// Validates a whole list of endpoints (as in a project create or replace) and gives each
/// its id; duplicate ids are refused by field.
fn prepare_specs(specs: Vec<EndpointSpec>, limit: usize) -> Result<EndpointList, ChangeError> {
    if specs.len() > limit {
        return Err(too_many_endpoints(limit));
    }
    let mut errors = Vec::new();
    let mut endpoints = EndpointList::new();
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(specs.len());
    for (index, spec) in specs.into_iter().enumerate() {
        let prefix = format!("endpoints[{index}].");
        match prepare_endpoint(spec, &prefix, None) {
            Ok(endpoint) => {
                if let Some(first) = seen.insert(endpoint.id.clone(), index) {
                    errors.push(FieldError::new(
                        format!("{prefix}id"),
                        format!("`{}` is also the id of endpoints[{first}]", endpoint.id),
                    ));
                }
                endpoints.push_back(Arc::new(endpoint));
            }
            Err(mut more) => errors.append(&mut more),
        }
    }
    if !errors.is_empty() {
        return Err(ChangeError::Invalid(errors));
    }
    Ok(endpoints)
}

/// Endpoints and their handlers, as parallel vectors.
type Prepared = (EndpointList, HandlerList);

/// Gives prepared endpoints their handlers, sharing the endpoint and handler of `previous`
/// wherever an endpoint did not change (and, for endpoints with schemas, neither did the
/// project's `docs` they resolve in), and compiling the others.
fn share_or_compile(
    endpoints: &EndpointList,
    previous: Option<&CompiledProject>,
    docs: Option<&Arc<crate::model::ProjectDocs>>,
    lint: Lint,
) -> Result<Prepared, ChangeError> {
    let same_docs = previous.is_some_and(|p| p.def.openapi.as_deref() == docs.map(|d| &**d));
    let reusable: HashMap<&str, (&Arc<Endpoint>, &Arc<CompiledEndpoint>)> = match previous {
        Some(p) if p.problem.is_none() => p
            .def
            .endpoints
            .iter()
            .zip(&p.handlers)
            .map(|(e, h)| (e.id.as_str(), (e, h)))
            .collect(),
        _ => HashMap::new(),
    };
    let mut handlers = HandlerList::new();
    let mut shared = EndpointList::new();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let previous = reusable.get(endpoint.id.as_str());
        match previous {
            Some((old, compiled))
                if old.spec == endpoint.spec && (same_docs || !uses_project_docs(endpoint)) =>
            {
                shared.push_back(Arc::clone(old));
                handlers.push_back(Arc::clone(compiled));
            }
            _ => {
                let prefix = format!("endpoints[{index}].");
                let handler = compile_handler(endpoint, &prefix)?;
                // Only an endpoint that changed is held to the lint.
                let lint = match previous {
                    Some((old, _)) if old.spec == endpoint.spec => Lint::Lenient,
                    _ => lint,
                };
                let checks = compile_checks(endpoint, docs.map(|d| &**d), &prefix, lint)?;
                // A changed endpoint keeps counting where its previous version stopped.
                let previous = previous.map(|(_, compiled)| compiled.as_ref());
                handlers.push_back(CompiledEndpoint::checked(handler, checks, previous));
                shared.push_back(Arc::clone(endpoint));
            }
        }
    }
    Ok((shared, handlers))
}

/// RFC 7386: objects merge key by key, `null` removes a key, anything else replaces.
fn merge_patch(target: &mut serde_json::Value, patch: serde_json::Value) {
    match patch {
        serde_json::Value::Object(changes) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(serde_json::Map::new());
            }
            if let serde_json::Value::Object(map) = target {
                for (key, value) in changes {
                    if value.is_null() {
                        map.remove(&key);
                    } else {
                        merge_patch(map.entry(key).or_insert(serde_json::Value::Null), value);
                    }
                }
            }
        }
        other => *target = other,
    }
}

fn settings_diff(before: &Project, after: &Project) -> Vec<DiffItem> {
    let mut diff = Vec::new();
    if before.name != after.name {
        diff.push(DiffItem::setting("name", &after.name));
    }
    if before.description != after.description {
        diff.push(DiffItem::setting("description", &after.description));
    }
    if before.mode != after.mode {
        diff.push(DiffItem::setting("mode", after.mode.as_str()));
    }
    if before.journal_size != after.journal_size {
        let size = after
            .journal_size
            .map_or_else(|| "default".to_owned(), |size| size.to_string());
        diff.push(DiffItem::setting("journal_size", &size));
    }
    if before.auth != after.auth {
        diff.push(DiffItem::setting("auth", after.auth.kind()));
    }
    if before.cors != after.cors {
        let detail = if after.cors.is_some() { "set" } else { "none" };
        diff.push(DiffItem::setting("cors", detail));
    }
    if before.rate_limit != after.rate_limit {
        let detail = after.rate_limit.as_ref().map_or_else(
            || "none".to_owned(),
            |l| format!("{} per {} s by {}", l.requests, l.per_secs, l.by.as_str()),
        );
        diff.push(DiffItem::setting("rate_limit", &detail));
    }
    if before.openapi != after.openapi {
        let detail = if after.openapi.is_some() {
            "set"
        } else {
            "none"
        };
        diff.push(DiffItem::setting("openapi", detail));
    }
    if before.env != after.env {
        // Names only: values may be secrets, and the summary is kept in the history.
        diff.push(DiffItem::setting(
            "env",
            &after.env.describe_change(&before.env),
        ));
    }
    diff
}

fn backends_diff(before: &[Backend], after: &[Backend]) -> Vec<DiffItem> {
    let mut diff = Vec::new();
    for backend in after {
        match before.iter().find(|b| b.name == backend.name) {
            None => diff.push(DiffItem::backend("add", backend)),
            Some(previous) if previous != backend => {
                diff.push(DiffItem::backend("change", backend))
            }
            Some(_) => {}
        }
    }
    for backend in before {
        if !after.iter().any(|b| b.name == backend.name) {
            diff.push(DiffItem::backend("remove", backend));
        }
    }
    diff
}

/// Refuses a proxy endpoint whose backend is not among `backends`; `prefix` names the
/// endpoint in the request body (`""`, or `endpoints[3].`).
fn check_backend_of(
    endpoint: &Endpoint,
    backends: &[Backend],
    prefix: &str,
) -> Result<(), FieldError> {
    match endpoint.spec.handler.proxy() {
        Some(proxy) if !backends.iter().any(|b| b.name == proxy.backend) => Err(FieldError::new(
            format!("{prefix}proxy.backend"),
            format!(
                "the project has no backend `{}`; define it first (PUT …/backends/{})",
                proxy.backend, proxy.backend
            ),
        )),
        _ => Ok(()),
    }
}

/// A non-admin's `jwt` policy fetches its key set only from a host `--proxy-allow` lets
/// non-admins reach, as their backends do: the node makes that request.
fn check_auth_allowed(
    auth: &crate::model::AuthPolicy,
    allow: &crate::backends::allow::ProxyAllow,
) -> Result<(), ChangeError> {
    let crate::model::AuthPolicy::Jwt(policy) = auth else {
        return Ok(());
    };
    let Some(url) = &policy.jwks_url else {
        return Ok(());
    };
    let host = url
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_owned))
        .unwrap_or_default();
    if allow.permits_host(&host) {
        return Ok(());
    }
    Err(ChangeError::Invalid(vec![FieldError::new(
        "auth.jwks_url",
        format!(
            "`{host}` is not a host this instance lets non-admins reach (--proxy-allow: {})",
            allow.describe()
        ),
    )]))
}

/// What `--proxy-allow` refuses in the backends of a restricted project (a non-admin's):
/// Docker selectors, and target hosts the list does not permit. `prefix` names the
/// backends' place in the body (`""` for one backend, `backends[2].` in a project).
fn check_allowed(
    backends: &[Backend],
    allow: &crate::backends::allow::ProxyAllow,
    prefix: impl Fn(usize) -> String,
) -> Result<(), ChangeError> {
    let mut errors = Vec::new();
    for (index, backend) in backends.iter().enumerate() {
        let at = prefix(index);
        if backend.docker.is_some() {
            errors.push(FieldError::new(
                format!("{at}docker"),
                "only an admin's projects may select Docker containers",
            ));
        }
        for (n, url) in backend.urls.iter().enumerate() {
            let host = url
                .parse::<http::Uri>()
                .ok()
                .and_then(|uri| uri.host().map(str::to_owned))
                .unwrap_or_default();
            if !allow.permits_host(&host) {
                errors.push(FieldError::new(
                    format!("{at}urls[{n}]"),
                    format!(
                        "`{host}` is not a host this instance lets non-admins proxy to (--proxy-allow: {})",
                        allow.describe()
                    ),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ChangeError::Invalid(errors))
    }
}

/// The edit that gives `current` the script `source` (none with `None`). A project broken
/// by anything but its script takes no such edit; one broken by its script alone (it did
/// not compile when loaded) is whole otherwise, and gets its endpoints' handlers back.
fn script_edit(
    current: &CompiledProject,
    source: Option<Arc<str>>,
    diff: Vec<DiffItem>,
    script: ScriptEdit,
) -> Result<Edit, ChangeError> {
    let mut handlers = current.handlers.clone();
    if let Some(problem) = &current.problem {
        if !problem.is_script() {
            return Err(ChangeError::Broken(problem.message().to_owned()));
        }
        handlers = share_or_compile(
            &current.def.endpoints,
            None,
            current.def.openapi.as_ref(),
            Lint::Lenient,
        )?
        .1;
    }
    let mut project = current.def.as_ref().clone();
    project.script = source;
    Ok(Edit::new(project, handlers, OwnedOps::None, diff)
        .routes(RouteEdit::Kept)
        .script(script))
}

/// Checks a whole definition's backends, and that every proxy endpoint names one of them.
fn check_backends(backends: &[Backend], endpoints: &EndpointList) -> Result<(), ChangeError> {
    let mut errors = Vec::new();
    validate_backends(backends, &mut errors);
    for (index, endpoint) in endpoints.iter().enumerate() {
        if let Err(error) = check_backend_of(endpoint, backends, &format!("endpoints[{index}].")) {
            errors.push(error);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ChangeError::Invalid(errors))
    }
}

fn endpoints_diff(before: &EndpointList, after: &EndpointList) -> Vec<DiffItem> {
    let old: HashMap<&str, &Arc<Endpoint>> = before.iter().map(|e| (e.id.as_str(), e)).collect();
    let new_ids: HashSet<&str> = after.iter().map(|e| e.id.as_str()).collect();
    let mut diff = Vec::new();
    for endpoint in after {
        match old.get(endpoint.id.as_str()) {
            None => diff.push(DiffItem::endpoint("add", endpoint)),
            Some(previous) if previous.spec != endpoint.spec => {
                diff.push(DiffItem::endpoint("change", endpoint))
            }
            Some(_) => {}
        }
    }
    for endpoint in before {
        if !new_ids.contains(endpoint.id.as_str()) {
            diff.push(DiffItem::endpoint("remove", endpoint));
        }
    }
    diff
}

fn apply_settings(project: &mut Project, settings: SettingsEdit) {
    if let Some(name) = settings.name {
        project.name = name;
    }
    if let Some(description) = settings.description {
        project.description = description;
    }
    if let Some(mode) = settings.mode {
        project.mode = mode;
    }
    if let Some(size) = settings.journal_size {
        project.journal_size = size;
    }
    if let Some(auth) = settings.auth {
        project.auth = auth;
    }
    if let Some(cors) = settings.cors {
        project.cors = cors;
    }
    if let Some(limit) = settings.rate_limit {
        project.rate_limit = limit;
    }
    if let Some(docs) = settings.openapi {
        project.openapi = docs.map(Arc::new);
    }
    if let Some(env) = settings.env {
        project.env = env;
    }
}

fn summary_of(diff: &[DiffItem]) -> String {
    let mut text = diff
        .iter()
        .take(3)
        .map(|d| format!("{} {} {}", d.op, d.target, d.detail))
        .collect::<Vec<_>>()
        .join("; ");
    if diff.len() > 3 {
        text.push_str(&format!("; and {} more", diff.len() - 3));
    }
    if text.is_empty() {
        text.push_str("no change");
    }
    text
}

/// An edit of the live project. It may run twice (when the node had to reload a project
/// the store had moved on) and on a blocking thread, so it borrows nothing.
type EditFn = dyn Fn(&CompiledProject) -> Result<Edit, ChangeError> + Send + Sync;

/// A computed change, ready to commit.
struct Computed {
    compiled: Arc<CompiledProject>,
    ops: OwnedOps,
    datasets: DatasetEdit,
    keys: KeyEdit,
    summary: String,
    diff: Vec<DiffItem>,
}

/// Runs `work` on a blocking thread: large edits and compilations must not hold an async
/// worker that serves requests.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ChangeError> + Send + 'static,
) -> Result<T, ChangeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ChangeError::Task(e.to_string()))?
}

/// Runs the end of a change (commit and publish) as a task of its own and waits for it.
/// The task does not belong to the caller's request: when the client goes away and the
/// request's future is dropped, the commit that was started is still published.
async fn run_to_end<T: Send + 'static>(
    work: impl Future<Output = Result<T, ChangeError>> + Send + 'static,
) -> Result<T, ChangeError> {
    tokio::spawn(work)
        .await
        .map_err(|e| ChangeError::Task(e.to_string()))?
}

/// Refuses a router in which one node has more pattern children than the quota allows
/// (the matcher tries them in turn). A router shared with `previous` was already checked.
fn check_patterns(
    compiled: &CompiledProject,
    previous: Option<&CompiledProject>,
    limit: usize,
) -> Result<(), ChangeError> {
    if previous.is_some_and(|p| Arc::ptr_eq(&p.router, &compiled.router)) {
        return Ok(());
    }
    let widest = compiled.router.widest_patterns();
    if widest > limit {
        return Err(ChangeError::Quota(format!(
            "{widest} pattern segments (such as `{{id}}.json` or `v{{n}}`) would stand side by \
             side at one place of this project's paths; at most {limit} may on this instance"
        )));
    }
    Ok(())
}

/// Applies `edit` to `current` and compiles the result as the next revision.
///
/// The script a revision serves always has the project's environment values: when the
/// script the edit would serve was compiled with others, the answer is [`Step::Rescript`],
/// unless `recompiled` is that script compiled for them.
fn compute(
    current: &CompiledProject,
    edit: &EditFn,
    now: i64,
    quotas: &Quotas,
    registry: &Registry,
    recompiled: Option<&Recompiled>,
) -> Result<Step, ChangeError> {
    let Edit {
        mut project,
        handlers,
        routes,
        ops,
        summary,
        diff,
        script,
        datasets,
        keys,
    } = edit(current)?;
    if diff.is_empty() {
        return Ok(Step::Unchanged);
    }
    if current.restricted && project.auth != current.def.auth {
        check_auth_allowed(&project.auth, registry.allow())?;
    }
    let count = project.endpoints.len();
    // A lowered quota does not stop edits of a project that is already over it, as long as
    // they do not add to it.
    if count > quotas.endpoints_per_project && count > current.def.endpoints.len() {
        return Err(too_many_endpoints(quotas.endpoints_per_project));
    }
    project.revision = current.def.revision + 1;
    project.updated_at = now;
    // Edits that keep every method and path share the live router.
    // A broken project has no upstreams: the revision that repairs it gets them even when
    // its backends are the ones that could be read.
    let backends_changed =
        !Arc::ptr_eq(&project.backends, &current.def.backends) || current.problem.is_some();
    let mut compiled = current
        .next(Arc::new(project), handlers, routes)
        .map_err(conflict)?;
    let docs = compiled.def.openapi.clone();
    let env = &compiled.def.env;
    let stale = match &script {
        ScriptEdit::Set(script) | ScriptEdit::Again(script) => {
            (script.env() != env).then_some("script")
        }
        ScriptEdit::Keep => current
            .script
            .as_ref()
            .filter(|routes| routes.script.env() != env)
            .map(|_| "env"),
        ScriptEdit::Remove => None,
    };
    let script = match stale {
        None => script,
        Some(field) => {
            let Some(source) = compiled.def.script.clone() else {
                return Err(ChangeError::Task(
                    "a script to compile again has no source".into(),
                ));
            };
            match recompiled {
                Some((compiled_source, again))
                    if *compiled_source == source && again.env() == env =>
                {
                    match script {
                        // A script sent now is checked as one.
                        ScriptEdit::Set(_) => ScriptEdit::Set(again.clone()),
                        _ => ScriptEdit::Again(again.clone()),
                    }
                }
                _ => {
                    return Ok(Step::Rescript {
                        project: compiled.def.clone(),
                        source,
                        field,
                    });
                }
            }
        }
    };
    compiled = match script {
        // New `openapi` settings: the routes' schemas may refer to their components.
        ScriptEdit::Keep => match &current.script {
            Some(routes)
                if docs != current.def.openapi
                    && routes.script.routes().iter().any(|r| r.docs.is_some()) =>
            {
                let again = ScriptRoutes::compile(
                    Arc::clone(&routes.script),
                    Some(routes),
                    docs.as_deref(),
                    false,
                )
                .map_err(conflict)?;
                compiled
                    .with_script(Some(Arc::new(again)))
                    .map_err(conflict)?
            }
            _ => compiled,
        },
        ScriptEdit::Set(script) => {
            let routes =
                ScriptRoutes::compile(script, current.script.as_deref(), docs.as_deref(), true)
                    .map_err(conflict)?;
            compiled
                .with_script(Some(Arc::new(routes)))
                .map_err(conflict)?
        }
        ScriptEdit::Again(script) => {
            let routes =
                ScriptRoutes::compile(script, current.script.as_deref(), docs.as_deref(), false)
                    .map_err(conflict)?;
            compiled
                .with_script(Some(Arc::new(routes)))
                .map_err(conflict)?
        }
        ScriptEdit::Remove => compiled.with_script(None).map_err(conflict)?,
    };
    if !datasets.is_empty() {
        compiled = compiled.with_datasets(datasets.apply(&current.datasets));
    }
    compiled = match &keys {
        KeyEdit::Keep => compiled,
        KeyEdit::Add(record) => {
            let set = current.auth.keys().with(record);
            compiled.with_keys(Arc::new(set))
        }
        KeyEdit::Revoke(id) => {
            let set = current.auth.keys().without(id);
            compiled.with_keys(Arc::new(set))
        }
    };
    if backends_changed {
        compiled = compiled.with_upstreams(registry);
    }
    check_patterns(&compiled, Some(current), quotas.pattern_siblings)?;
    Ok(Step::Ready(Box::new(Computed {
        compiled: Arc::new(compiled),
        ops,
        datasets,
        keys,
        summary,
        diff,
    })))
}

/// Reads project `id` back from the store and publishes it, or unmounts it if the store no
/// longer has it: the node's copy follows the store. Returns the revision now stored.
async fn reload(
    store: &dyn Store,
    routes: &Routes,
    registry: &Arc<Registry>,
    scripts: &ScriptHost,
    id: i64,
) -> Option<i64> {
    match store.load_project(id).await {
        Ok(Some(mut loaded)) => {
            loaded.project.layout = routes.layout();
            let script = scripts.compile_stored(&loaded.project).await;
            let revision = loaded.project.revision;
            // The served revision's stats go on with the reloaded one.
            let served = routes.load().projects().find(|p| p.def.id == id).cloned();
            let datasets = match crate::datasets::load_project(
                store,
                id,
                served.as_ref().map(|s| &s.datasets),
            )
            .await
            {
                Ok(datasets) => datasets,
                Err(error) => {
                    tracing::error!(%error, project_id = id, "could not reload a project's datasets");
                    served
                        .as_ref()
                        .map(|s| s.datasets.clone())
                        .unwrap_or_default()
                }
            };
            let registry = registry.clone();
            let compiled = tokio::task::spawn_blocking(move || {
                let compiled = CompiledProject::load(loaded, &registry, script, datasets);
                match served {
                    Some(served) => compiled.counting_as(&served),
                    None => compiled,
                }
            })
            .await
            .ok()?;
            retire(routes.publish(Publish::Mount(Arc::new(compiled))));
            tracing::warn!(
                project_id = id,
                revision,
                "reloaded a project whose stored revision differed from the served one"
            );
            Some(revision)
        }
        Ok(None) => {
            retire(routes.publish(Publish::Unmount(id)));
            None
        }
        Err(error) => {
            tracing::error!(%error, project_id = id, "could not reload a project from the store");
            None
        }
    }
}

/// The end of an edit: everything its commit and publish need, owned, so that it can run
/// as a task of its own (see [`run_to_end`]).
struct Finish {
    store: Arc<dyn Store>,
    routes: Arc<Routes>,
    registry: Arc<Registry>,
    scripts: ScriptHost,
    gate: Option<Arc<CommitGate>>,
    telemetry: Arc<Telemetry>,
    compiled: Arc<CompiledProject>,
    base_revision: i64,
    ops: OwnedOps,
    datasets: DatasetEdit,
    keys: KeyEdit,
    summary: String,
    actor_id: i64,
    now: i64,
    /// The project's change lock, held until the publish is done.
    guard: OwnedMutexGuard<()>,
}

impl Finish {
    async fn run(self) -> Result<(), ChangeError> {
        let def = &self.compiled.def;
        let endpoints = match &self.ops {
            OwnedOps::None => EndpointOps::None,
            OwnedOps::Upsert(endpoint) => EndpointOps::Upsert(endpoint),
            OwnedOps::Delete(id) => EndpointOps::Delete(id),
            OwnedOps::ReplaceAll => EndpointOps::ReplaceAll(&def.endpoints),
        };
        let dataset_ops = self.datasets.ops();
        let datasets = match dataset_ops.as_slice() {
            [] => DatasetOps::None,
            [one] => *one,
            many => DatasetOps::Many(many),
        };
        let keys = match &self.keys {
            KeyEdit::Keep => KeyOps::None,
            KeyEdit::Add(record) => KeyOps::Add(record),
            KeyEdit::Revoke(id) => KeyOps::Delete(id),
        };
        // The store commits only on top of `base_revision` (a second node on a shared
        // database may have moved it), so the new revision is `def.revision`.
        let started = crate::observe::Stamp::now();
        let committed = self
            .store
            .commit(&Commit {
                project_id: def.id,
                base_revision: self.base_revision,
                name: &def.name,
                description: &def.description,
                mode: def.mode,
                journal_size: def.journal_size,
                endpoints,
                backends: &def.backends,
                script: def.script.as_deref(),
                datasets,
                auth: &def.auth,
                cors: def.cors.as_ref(),
                rate_limit: def.rate_limit.as_ref(),
                openapi: def.openapi.as_deref(),
                env: &def.env,
                keys,
                actor_id: Some(self.actor_id),
                summary: &self.summary,
                now: self.now,
            })
            .await;
        self.telemetry.record_commit(committed.is_ok(), started);
        match committed {
            Ok(_) => {
                if let Some(gate) = &self.gate {
                    gate.hold().await;
                }
                retire(self.routes.publish(Publish::Mount(self.compiled.clone())));
                drop(self.guard);
                Ok(())
            }
            // Refused by a unique index inside the transaction: nothing was written.
            Err(StoreError::ProjectExists) => Err(ChangeError::ProjectExists(def.name.clone())),
            Err(error) => {
                // Refused as stale, or failed with an outcome we cannot know (the COMMIT may
                // have happened): the store is the truth, so serve what it holds.
                let stored = reload(
                    &*self.store,
                    &self.routes,
                    &self.registry,
                    &self.scripts,
                    def.id,
                )
                .await;
                match error {
                    StoreError::RevisionConflict { .. } => Err(ChangeError::Stale {
                        current: stored.unwrap_or(self.base_revision),
                    }),
                    other => Err(other.into()),
                }
            }
        }
    }
}

impl Changes {
    pub fn new(
        store: Arc<dyn Store>,
        routes: Arc<Routes>,
        quotas: Quotas,
        gate: Option<Arc<CommitGate>>,
        telemetry: Arc<Telemetry>,
        registry: Arc<Registry>,
        scripts: ScriptHost,
    ) -> Changes {
        Changes {
            store,
            routes,
            quotas,
            locks: Arc::new(ProjectLocks::default()),
            gate,
            telemetry,
            registry,
            scripts,
        }
    }

    pub fn routes(&self) -> &Arc<Routes> {
        &self.routes
    }

    /// The store changes are committed to (dataset uploads stream their bytes into it
    /// before the change that swaps them in).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Creates a project at revision 1.
    pub async fn create_project(
        &self,
        actor: Actor<'_>,
        owner: Actor<'_>,
        settings: SettingsEdit,
        endpoints: Vec<EndpointSpec>,
        backends: Vec<Backend>,
        dry_run: bool,
    ) -> Result<Outcome, ChangeError> {
        let name = settings.name.clone().unwrap_or_default();
        let key = format!("{}/{}", owner.username, name);
        {
            let table = self.routes.load();
            if table.get(&key).is_some() {
                return Err(ChangeError::ProjectExists(name));
            }
            let owned = table
                .projects()
                .filter(|p| p.def.owner == owner.username)
                .count();
            let limit = self.quotas.projects_per_user;
            if !actor.admin && owned >= limit {
                return Err(ChangeError::Quota(format!(
                    "`{}` owns {owned} projects; one user may own at most {limit} on this instance",
                    owner.username
                )));
            }
        }
        let large = endpoints.len() >= BLOCKING_FROM;
        let now = now_ms();
        let mut project = Project {
            id: 0,
            owner: owner.username.to_owned(),
            name,
            description: String::new(),
            mode: Mode::default(),
            journal_size: None,
            revision: 1,
            created_at: now,
            updated_at: now,
            endpoints: EndpointList::new(),
            backends: backends.into(),
            script: None,
            auth: crate::model::AuthPolicy::None,
            cors: None,
            rate_limit: None,
            openapi: None,
            env: crate::model::Env::EMPTY,
            layout: self.routes.layout(),
        };
        apply_settings(&mut project, settings);
        let mut diff = vec![DiffItem {
            op: "add",
            target: "project".into(),
            id: None,
            detail: project.mount(),
        }];
        let quotas = self.quotas.clone();
        let registry = self.registry.clone();
        // A non-admin's backends are bounded by `--proxy-allow`.
        let restricted = !owner.admin;
        // Validate and compile first: a conflict must refuse the change before anything is
        // written.
        let compile = move || -> Result<(CompiledProject, Vec<DiffItem>), ChangeError> {
            let endpoints = prepare_specs(endpoints, quotas.endpoints_per_project)?;
            check_backends(&project.backends, &endpoints)?;
            if restricted {
                check_allowed(&project.backends, registry.allow(), |i| {
                    format!("backends[{i}].")
                })?;
                check_auth_allowed(&project.auth, registry.allow())?;
            }
            let mut added = backends_diff(&[], &project.backends);
            added.extend(endpoints_diff(&EndpointList::new(), &endpoints));
            let (endpoints, handlers) =
                share_or_compile(&endpoints, None, project.openapi.as_ref(), Lint::Strict)?;
            project.endpoints = endpoints;
            let compiled = CompiledProject::build(Arc::new(project), handlers)
                .map_err(conflict)?
                .restricted(restricted)
                .with_upstreams(&registry);
            check_patterns(&compiled, None, quotas.pattern_siblings)?;
            Ok((compiled, added))
        };
        let (compiled, added) = if large {
            off_thread(compile).await?
        } else {
            compile()?
        };
        diff.extend(added);
        if dry_run {
            return Ok(Outcome {
                project: Arc::new(compiled),
                diff,
                dry_run,
            });
        }
        let store = self.store.clone();
        let routes = self.routes.clone();
        let telemetry = self.telemetry.clone();
        let (owner_id, owner_name, actor_id) =
            (owner.user_id, owner.username.to_owned(), actor.user_id);
        let project = run_to_end(async move {
            let def = &compiled.def;
            let started = crate::observe::Stamp::now();
            let created = store
                .create_project(
                    &NewProject {
                        owner_id,
                        owner: &owner_name,
                        name: &def.name,
                        description: &def.description,
                        mode: def.mode,
                        journal_size: def.journal_size,
                        endpoints: &def.endpoints,
                        backends: &def.backends,
                        script: def.script.as_deref(),
                        auth: &def.auth,
                        cors: def.cors.as_ref(),
                        rate_limit: def.rate_limit.as_ref(),
                        openapi: def.openapi.as_deref(),
                        env: &def.env,
                        now,
                    },
                    Some(actor_id),
                )
                .await;
            telemetry.record_commit(created.is_ok(), started);
            let id = created.map_err(|e| match e {
                StoreError::ProjectExists => ChangeError::ProjectExists(def.name.clone()),
                other => ChangeError::Store(other),
            })?;
            // The store's id is known only now; the router and handlers stay as compiled.
            let compiled = with_store_id(compiled, id);
            retire(routes.publish(Publish::Mount(compiled.clone())));
            Ok(compiled)
        })
        .await?;
        Ok(Outcome {
            project,
            diff,
            dry_run,
        })
    }

    /// Changes settings (name, description, mode); a new name moves the mount.
    pub async fn update_settings(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        settings: SettingsEdit,
    ) -> Result<Outcome, ChangeError> {
        self.apply(actor, target, false, move |current| {
            let mut project = current.def.as_ref().clone();
            apply_settings(&mut project, settings.clone());
            let diff = settings_diff(&current.def, &project);
            // New `openapi` settings: endpoints whose schemas refer to them are compiled
            // again (the others are shared).
            let handlers = if project.openapi == current.def.openapi {
                current.handlers.clone()
            } else {
                share_or_compile(
                    &project.endpoints,
                    Some(current),
                    project.openapi.as_ref(),
                    Lint::Lenient,
                )?
                .1
            };
            Ok(Edit::new(project, handlers, OwnedOps::None, diff).routes(RouteEdit::Kept))
        })
        .await
    }

    /// Replaces settings and all endpoints at once (`PUT` of a whole project), keeping the
    /// script and the datasets. The only edit a broken project takes.
    pub async fn replace_project(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        definition: ProjectDefinition,
    ) -> Result<Outcome, ChangeError> {
        self.replace_whole(
            actor,
            target,
            Whole {
                definition,
                script: WholeScript::Keep,
                datasets: None,
            },
        )
        .await
    }

    /// Replaces a whole project as one revision (a project folder): settings, endpoints,
    /// backends, and, as `whole` says, the script and the datasets. New dataset versions
    /// were uploaded before (`datasets::receive`); when the change is refused, or is a dry
    /// run, they are dropped from the store again. Like [`Changes::replace_project`], it
    /// repairs a broken project.
    pub async fn replace_whole(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        whole: Whole,
    ) -> Result<Outcome, ChangeError> {
        let uploads: Vec<i64> = whole
            .datasets
            .iter()
            .flatten()
            .filter_map(|d| d.upload.as_ref().map(|u| u.version))
            .collect();
        let result = self.replace_whole_kept(actor, target, whole).await;
        if result.as_ref().map_or(true, |outcome| outcome.dry_run) {
            for version in uploads {
                crate::datasets::abandon(&*self.store, version).await;
            }
        }
        result
    }

    async fn replace_whole_kept(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        whole: Whole,
    ) -> Result<Outcome, ChangeError> {
        let Whole {
            definition,
            script: wanted,
            datasets,
        } = whole;
        let settings = SettingsEdit::whole(None, &definition);
        let limit = self.quotas.endpoints_per_project;
        let specs = definition.endpoints;
        let endpoints = if specs.len() >= BLOCKING_FROM {
            off_thread(move || prepare_specs(specs, limit)).await?
        } else {
            prepare_specs(specs, limit)?
        };
        check_backends(&definition.backends, &endpoints)?;
        let backends: Arc<[Backend]> = definition.backends.into();
        let registry = self.registry.clone();
        // A script is compiled here, off the project's lock, with the environment values
        // the project is about to have: one sent that is not the one served, or, when the
        // script is kept, one that broke the project (limits may have been raised since it
        // was loaded; one that still does not compile is refused, so that the repaired
        // project never holds a script it does not serve).
        let live = self.current(target.key, None)?;
        let served = |source: &str| {
            live.def.script.as_deref() == Some(source)
                && live.script.is_some()
                && live.problem.is_none()
        };
        let (source, hint) = match &wanted {
            WholeScript::Set(source) if !served(source) => (Some(source.clone()), false),
            WholeScript::Keep => match (&live.problem, &live.def.script) {
                (Some(problem), Some(source)) if problem.is_script() => {
                    (Some(source.to_string()), true)
                }
                _ => (None, false),
            },
            _ => (None, false),
        };
        let compiled_script = match source {
            Some(source) => {
                let mut def = live.def.as_ref().clone();
                def.env = definition.env.clone();
                let script = self.scripts.compile(&def, &source).await.map_err(|error| {
                    let message = if hint {
                        format!(
                            "the project's script does not compile ({error}); send a new one \
                             with PUT …/script, or remove it with DELETE …/script"
                        )
                    } else {
                        error.to_string()
                    };
                    ChangeError::Invalid(vec![FieldError::new("script", message)])
                })?;
                Some((Arc::<str>::from(source), script))
            }
            None => None,
        };
        self.apply(actor, target, true, move |current| {
            if current.restricted {
                check_allowed(&backends, registry.allow(), |i| format!("backends[{i}]."))?;
            }
            let mut project = current.def.as_ref().clone();
            apply_settings(&mut project, settings.clone());
            let mut list = endpoints.clone();
            let (datasets, dataset_diff) = match &datasets {
                Some(wanted) => whole_datasets(current, wanted, &mut list)?,
                None => (DatasetEdit::default(), Vec::new()),
            };
            let (endpoints, handlers) =
                share_or_compile(&list, Some(current), project.openapi.as_ref(), Lint::Strict)?;
            project.endpoints = endpoints;
            let mut diff = settings_diff(&current.def, &project);
            diff.extend(backends_diff(&current.def.backends, &backends));
            if current.def.backends[..] != backends[..] {
                project.backends = backends.clone();
            }
            diff.extend(endpoints_diff(&current.def.endpoints, &project.endpoints));
            // The script compiled above, if it is still to be set (a kept one: if it is
            // still the project's and not served).
            let script = match (&wanted, &compiled_script) {
                (WholeScript::Keep, Some((source, script))) => {
                    if current.script.is_none() && current.def.script.as_ref() == Some(source) {
                        ScriptEdit::Set(script.clone())
                    } else {
                        ScriptEdit::Keep
                    }
                }
                (WholeScript::Set(_), Some((source, script))) => {
                    let op = if current.def.script.is_some() {
                        "change"
                    } else {
                        "add"
                    };
                    diff.push(DiffItem::script(op, script.routes().len()));
                    project.script = Some(source.clone());
                    ScriptEdit::Set(script.clone())
                }
                (WholeScript::Remove, _) if current.def.script.is_some() => {
                    let routes = current.script.as_ref().map_or(0, |s| s.ids.len());
                    diff.push(DiffItem::script("remove", routes));
                    project.script = None;
                    ScriptEdit::Remove
                }
                _ => ScriptEdit::Keep,
            };
            diff.extend(dataset_diff);
            if diff.is_empty() && current.problem.is_some() {
                // Replacing a broken project with what could be read of it still repairs
                // it: the new revision is whole.
                diff.push(DiffItem::setting("status", "ok"));
            }
            Ok(Edit::new(project, handlers, OwnedOps::ReplaceAll, diff)
                .script(script)
                .datasets(datasets))
        })
        .await
    }

    /// The dry run of a whole project that does not exist yet (a folder pushed to a new
    /// name): what [`Changes::create_project`] would make of `whole`'s settings, endpoints
    /// (with the standard endpoints of its datasets) and backends, with its script compiled
    /// and routed beside them (a conflict is the `409` it would be) and its datasets, which
    /// must all be uploads, parsed and stored nowhere (`datasets::parse`). Nothing is written
    /// or mounted; the answer is a dry run whatever `whole` holds.
    pub async fn preview_whole(
        &self,
        actor: Actor<'_>,
        owner: Actor<'_>,
        name: &str,
        whole: Whole,
    ) -> Result<Outcome, ChangeError> {
        let Whole {
            definition,
            script,
            datasets,
        } = whole;
        let settings = SettingsEdit::whole(Some(name.to_owned()), &definition);
        let mut specs = definition.endpoints;
        let mut uploads = Vec::new();
        let mut errors = Vec::new();
        for (i, dataset) in datasets.iter().flatten().enumerate() {
            let Some(upload) = &dataset.upload else {
                errors.push(FieldError::new(
                    format!("datasets[{i}]"),
                    format!(
                        "the project has no dataset `{}`; send its file",
                        dataset.name
                    ),
                ));
                continue;
            };
            uploads.push(upload.clone());
            let Some(wanted) = &dataset.endpoints else {
                continue;
            };
            let standard = wanted.of(i, upload, &mut errors);
            // As `replace_whole` merges them: in place of an endpoint of the same id.
            for endpoint in standard {
                let Endpoint { id, mut spec, .. } = endpoint;
                spec.id = Some(id);
                match specs.iter().position(|s| s.id == spec.id) {
                    Some(at) => specs[at] = spec,
                    None => specs.push(spec),
                }
            }
        }
        if !errors.is_empty() {
            return Err(ChangeError::Invalid(errors));
        }
        let created = self
            .create_project(actor, owner, settings, specs, definition.backends, true)
            .await?;
        let Outcome {
            project, mut diff, ..
        } = created;
        let mut compiled = Arc::into_inner(project)
            .ok_or_else(|| ChangeError::Task("a dry run's project was shared".into()))?;
        match script {
            WholeScript::Set(source) => {
                let script =
                    self.scripts
                        .compile(&compiled.def, &source)
                        .await
                        .map_err(|error| {
                            ChangeError::Invalid(vec![FieldError::new("script", error.to_string())])
                        })?;
                diff.push(DiffItem::script("add", script.routes().len()));
                let routes =
                    ScriptRoutes::compile(script, None, compiled.def.openapi.as_deref(), true)
                        .map_err(conflict)?;
                let mut def = compiled.def.as_ref().clone();
                def.script = Some(Arc::from(source));
                compiled.def = Arc::new(def);
                compiled = compiled
                    .with_script(Some(Arc::new(routes)))
                    .map_err(conflict)?;
            }
            WholeScript::Keep | WholeScript::Remove => {}
        }
        diff.extend(uploads.iter().map(|d| DiffItem::dataset("add", d)));
        let compiled = compiled.with_datasets(DatasetSet::from_list(uploads));
        Ok(Outcome {
            project: Arc::new(compiled),
            diff,
            dry_run: true,
        })
    }

    /// Applies an OpenAPI import as one revision: the project's `openapi` settings become
    /// `openapi`, and `endpoints` replace all of the project's (`replace`) or are added to
    /// them, each replacing the endpoint with its id in place. Everything else (auth,
    /// backends, script, datasets) is kept.
    pub async fn import(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        openapi: crate::model::ProjectDocs,
        endpoints: Vec<EndpointSpec>,
        replace: bool,
    ) -> Result<Outcome, ChangeError> {
        let limit = self.quotas.endpoints_per_project;
        let imported = if endpoints.len() >= BLOCKING_FROM {
            off_thread(move || prepare_specs(endpoints, limit)).await?
        } else {
            prepare_specs(endpoints, limit)?
        };
        let openapi = Arc::new(openapi);
        let admin = actor.admin;
        self.apply(actor, target, false, move |current| {
            let list = if replace {
                imported.clone()
            } else {
                let mut list = current.def.endpoints.clone();
                merge_by_id(&mut list, imported.iter());
                list
            };
            if !admin && list.len() > limit {
                return Err(too_many_endpoints(limit));
            }
            let (endpoints, handlers) =
                share_or_compile(&list, Some(current), Some(&openapi), Lint::Lenient)?;
            let mut project = current.def.as_ref().clone();
            project.openapi = Some(openapi.clone());
            project.endpoints = endpoints;
            let mut diff = settings_diff(&current.def, &project);
            diff.extend(endpoints_diff(&current.def.endpoints, &project.endpoints));
            Ok(Edit::new(project, handlers, OwnedOps::ReplaceAll, diff))
        })
        .await
    }

    /// Adds or replaces one endpoint. `id` is the one in the URL, if any.
    pub async fn put_endpoint(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        id: Option<&str>,
        spec: EndpointSpec,
        mode: Upsert,
    ) -> Result<Outcome, ChangeError> {
        // A fresh UUIDv7 is in no project: no need to look for it among thousands of ids.
        let generated = id.is_none() && spec.id.is_none();
        let endpoint = prepare_endpoint(spec, "", id).map_err(ChangeError::Invalid)?;
        let handler = compile_handler(&endpoint, "")?;
        let endpoint = Arc::new(endpoint);
        self.apply(actor, target, false, move |current| {
            check_backend_of(&endpoint, &current.def.backends, "")
                .map_err(|error| ChangeError::Invalid(vec![error]))?;
            let mut project = current.def.as_ref().clone();
            let mut handlers = current.handlers.clone();
            let existing = if generated {
                None
            } else {
                project.endpoints.iter().position(|e| e.id == endpoint.id)
            };
            let (diff, routes) = match (existing, mode) {
                (Some(_), Upsert::CreateOnly) => {
                    return Err(ChangeError::EndpointExists(endpoint.id.clone()));
                }
                (Some(index), _) => {
                    let before = project.endpoints.set(index, endpoint.clone());
                    let previous = current.handlers.get(index).map(AsRef::as_ref);
                    let lint = if before.spec == endpoint.spec {
                        Lint::Lenient
                    } else {
                        Lint::Strict
                    };
                    let docs = current.def.openapi.as_deref();
                    let checks = compile_checks(&endpoint, docs, "", lint)?;
                    handlers.set(
                        index,
                        CompiledEndpoint::checked(handler.clone(), checks, previous),
                    );
                    let diff = if before.spec == endpoint.spec {
                        Vec::new()
                    } else {
                        vec![DiffItem::endpoint("change", &endpoint)]
                    };
                    (diff, route_edit_of(&before, &endpoint))
                }
                (None, _) => {
                    project.endpoints.push_back(endpoint.clone());
                    let docs = current.def.openapi.as_deref();
                    let checks = compile_checks(&endpoint, docs, "", Lint::Strict)?;
                    handlers.push_back(CompiledEndpoint::checked(handler.clone(), checks, None));
                    (
                        vec![DiffItem::endpoint("add", &endpoint)],
                        RouteEdit::Appended,
                    )
                }
            };
            Ok(
                Edit::new(project, handlers, OwnedOps::Upsert(endpoint.clone()), diff)
                    .routes(routes),
            )
        })
        .await
    }

    /// Applies a JSON merge patch (RFC 7386) to one endpoint's definition.
    pub async fn patch_endpoint(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        id: &str,
        patch: serde_json::Value,
    ) -> Result<Outcome, ChangeError> {
        let id = id.to_owned();
        self.apply(actor, target, false, move |current| {
            let index = index_of(current, &id)?;
            let before = &current.def.endpoints[index];
            let mut document = serde_json::to_value(&before.spec)
                .map_err(|e| ChangeError::Invalid(vec![FieldError::new("body", e.to_string())]))?;
            merge_patch(&mut document, patch.clone());
            let spec: EndpointSpec =
                serde_path_to_error::deserialize(document).map_err(|error| {
                    let path = error.path().to_string();
                    ChangeError::Invalid(vec![FieldError::from_serde(
                        &path,
                        error.into_inner().to_string(),
                    )])
                })?;
            let endpoint =
                Arc::new(prepare_endpoint(spec, "", Some(&id)).map_err(ChangeError::Invalid)?);
            check_backend_of(&endpoint, &current.def.backends, "")
                .map_err(|error| ChangeError::Invalid(vec![error]))?;
            let handler = compile_handler(&endpoint, "")?;
            let mut project = current.def.as_ref().clone();
            let mut handlers = current.handlers.clone();
            let (diff, lint) = if endpoint.spec == before.spec {
                (Vec::new(), Lint::Lenient)
            } else {
                (vec![DiffItem::endpoint("change", &endpoint)], Lint::Strict)
            };
            let routes = route_edit_of(before, &endpoint);
            project.endpoints.set(index, endpoint.clone());
            let previous = current.handlers.get(index).map(AsRef::as_ref);
            let checks = compile_checks(&endpoint, current.def.openapi.as_deref(), "", lint)?;
            handlers.set(index, CompiledEndpoint::checked(handler, checks, previous));
            Ok(Edit::new(project, handlers, OwnedOps::Upsert(endpoint), diff).routes(routes))
        })
        .await
    }

    pub async fn delete_endpoint(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        id: &str,
    ) -> Result<Outcome, ChangeError> {
        let id = id.to_owned();
        self.apply(actor, target, false, move |current| {
            let index = index_of(current, &id)?;
            let mut project = current.def.as_ref().clone();
            let mut handlers = current.handlers.clone();
            let removed = project.endpoints.remove(index);
            handlers.remove(index);
            let diff = vec![DiffItem::endpoint("remove", &removed)];
            Ok(Edit::new(
                project,
                handlers,
                OwnedOps::Delete(id.clone()),
                diff,
            ))
        })
        .await
    }

    /// Adds or replaces one backend (`backend.name` is its name). Proxy endpoints that name
    /// it forward to the new targets from this revision on.
    pub async fn put_backend(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        backend: Backend,
    ) -> Result<Outcome, ChangeError> {
        let mut errors = Vec::new();
        backend.validate("", &mut errors);
        if !errors.is_empty() {
            return Err(ChangeError::Invalid(errors));
        }
        let registry = self.registry.clone();
        self.apply(actor, target, false, move |current| {
            if current.restricted {
                check_allowed(std::slice::from_ref(&backend), registry.allow(), |_| {
                    String::new()
                })?;
            }
            let mut project = current.def.as_ref().clone();
            let mut backends = project.backends.to_vec();
            let diff = match backends.iter_mut().find(|b| b.name == backend.name) {
                Some(existing) if *existing == backend => Vec::new(),
                Some(existing) => {
                    *existing = backend.clone();
                    vec![DiffItem::backend("change", &backend)]
                }
                None => {
                    // The new backend is valid (above) and its name is new: only the
                    // project's count can refuse it.
                    let mut errors = Vec::new();
                    check_backend_count(backends.len() + 1, &mut errors);
                    if !errors.is_empty() {
                        return Err(ChangeError::Invalid(errors));
                    }
                    backends.push(backend.clone());
                    vec![DiffItem::backend("add", &backend)]
                }
            };
            project.backends = backends.into();
            Ok(
                Edit::new(project, current.handlers.clone(), OwnedOps::None, diff)
                    .routes(RouteEdit::Kept),
            )
        })
        .await
    }

    /// Removes one backend; refused while a proxy endpoint names it.
    pub async fn delete_backend(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        name: &str,
    ) -> Result<Outcome, ChangeError> {
        let name = name.to_owned();
        self.apply(actor, target, false, move |current| {
            let Some(removed) = current.def.backend(&name) else {
                return Err(ChangeError::BackendNotFound(name.clone()));
            };
            if let Some(user) = current
                .def
                .endpoints
                .iter()
                .find(|e| e.spec.handler.proxy().is_some_and(|p| p.backend == name))
            {
                return Err(ChangeError::BackendInUse {
                    backend: name.clone(),
                    endpoint: user.id.clone(),
                });
            }
            let diff = vec![DiffItem::backend("remove", removed)];
            let mut project = current.def.as_ref().clone();
            project.backends = project
                .backends
                .iter()
                .filter(|b| b.name != name)
                .cloned()
                .collect();
            Ok(
                Edit::new(project, current.handlers.clone(), OwnedOps::None, diff)
                    .routes(RouteEdit::Kept),
            )
        })
        .await
    }

    /// Sets the project's script: compiled first, off the project's lock (a script that
    /// does not compile is a 422 naming its line and column, and nothing changes), then
    /// swapped in with its routes as one revision. A route with an endpoint's method and
    /// path is a conflict (409). The only edit besides a whole replacement that a project
    /// broken by its script alone takes.
    pub async fn put_script(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        source: String,
    ) -> Result<Outcome, ChangeError> {
        // A stale `If-Match` is refused before anything is compiled.
        let live = self.current(target.key, target.expected)?;
        if live.def.script.as_deref() == Some(source.as_str())
            && live.problem.is_none()
            && live.script.is_some()
        {
            // The same script: nothing changes, and nothing is written (a repeated PUT is
            // idempotent, as for the rest of a project).
            return Ok(Outcome {
                project: live,
                diff: Vec::new(),
                dry_run: target.dry_run,
            });
        }
        let script = self
            .scripts
            .compile(&live.def, &source)
            .await
            .map_err(|error| {
                ChangeError::Invalid(vec![FieldError::new("script", error.to_string())])
            })?;
        let source: Arc<str> = Arc::from(source);
        self.apply(actor, target, true, move |current| {
            let op = if current.def.script.is_some() {
                "change"
            } else {
                "add"
            };
            let diff = vec![DiffItem::script(op, script.routes().len())];
            script_edit(
                current,
                Some(source.clone()),
                diff,
                ScriptEdit::Set(script.clone()),
            )
        })
        .await
    }

    /// Removes the project's script and its routes.
    pub async fn delete_script(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
    ) -> Result<Outcome, ChangeError> {
        self.apply(actor, target, true, move |current| {
            if current.def.script.is_none() {
                return Err(ChangeError::ScriptNotFound);
            }
            let routes = current.script.as_ref().map_or(0, |s| s.ids.len());
            let diff = vec![DiffItem::script("remove", routes)];
            script_edit(current, None, diff, ScriptEdit::Remove)
        })
        .await
    }

    /// Swaps in an uploaded dataset version (see `datasets::receive`) as one revision,
    /// with `endpoints` added or, where one of the same id exists, replaced (the standard
    /// endpoints of `?endpoints=default`). Queries keep being answered from the version
    /// they started on. When the change is refused, or is a dry run, the uploaded version
    /// is dropped from the store again.
    pub async fn put_dataset(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        dataset: Arc<LoadedDataset>,
        endpoints: Vec<Endpoint>,
    ) -> Result<Outcome, ChangeError> {
        let version = dataset.version;
        let endpoints: Vec<Arc<Endpoint>> = endpoints.into_iter().map(Arc::new).collect();
        let result = self
            .apply(actor, target, false, move |current| {
                let op = if current.datasets.get(&dataset.name).is_some() {
                    "change"
                } else {
                    "add"
                };
                let mut diff = vec![DiffItem::dataset(op, &dataset)];
                let mut project = current.def.as_ref().clone();
                let mut list = project.endpoints.clone();
                diff.extend(merge_by_id(&mut list, &endpoints));
                let (ops, handlers) = if list == project.endpoints {
                    (OwnedOps::None, current.handlers.clone())
                } else {
                    let (shared, handlers) = share_or_compile(
                        &list,
                        Some(current),
                        current.def.openapi.as_ref(),
                        Lint::Lenient,
                    )?;
                    list = shared;
                    (OwnedOps::ReplaceAll, handlers)
                };
                let routes = if matches!(ops, OwnedOps::None) {
                    RouteEdit::Kept
                } else {
                    RouteEdit::Unknown
                };
                project.endpoints = list;
                Ok(Edit::new(project, handlers, ops, diff)
                    .routes(routes)
                    .datasets(DatasetEdit::put(dataset.clone())))
            })
            .await;
        if result.as_ref().map_or(true, |outcome| outcome.dry_run) {
            crate::datasets::abandon(&*self.store, version).await;
        }
        result
    }

    /// Removes a dataset. Endpoints that read it stay, answering `409 dataset_missing`
    /// until it is uploaded again or they are changed.
    pub async fn delete_dataset(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        name: &str,
    ) -> Result<Outcome, ChangeError> {
        let name = name.to_owned();
        self.apply(actor, target, false, move |current| {
            let Some(dataset) = current.datasets.get(&name) else {
                return Err(ChangeError::DatasetNotFound(name.clone()));
            };
            let diff = vec![DiffItem::dataset("remove", dataset)];
            Ok(Edit::side_table(current, diff).datasets(DatasetEdit::remove(name.clone())))
        })
        .await
    }

    /// Adds an API key (made by `auth::keys::generate`; only its hash is kept) as one
    /// revision. Names are unique in a project.
    pub async fn add_key(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        record: ApiKeyRecord,
    ) -> Result<Outcome, ChangeError> {
        self.apply(actor, target, false, move |current| {
            let keys = current.auth.keys();
            if keys.name_taken(&record.name) {
                return Err(ChangeError::KeyExists(record.name.clone()));
            }
            if keys.len() >= MAX_KEYS {
                return Err(ChangeError::Quota(format!(
                    "a project has at most {MAX_KEYS} API keys; revoke one first"
                )));
            }
            let diff = vec![DiffItem::key("add", &record.name, &record.id)];
            Ok(Edit::side_table(current, diff).keys(KeyEdit::Add(record.clone())))
        })
        .await
    }

    /// Revokes the API key `id` as one revision: requests with it are refused from then on.
    pub async fn revoke_key(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        id: &str,
    ) -> Result<Outcome, ChangeError> {
        let id = id.to_owned();
        self.apply(actor, target, false, move |current| {
            let Some(key) = current.auth.keys().get(&id) else {
                return Err(ChangeError::KeyNotFound(id.clone()));
            };
            let diff = vec![DiffItem::key("remove", &key.name, &id)];
            Ok(Edit::side_table(current, diff).keys(KeyEdit::Revoke(id.clone())))
        })
        .await
    }

    /// Deletes a project; its name and mount are free as soon as this returns.
    pub async fn delete_project(&self, target: Target<'_>) -> Result<Outcome, ChangeError> {
        let (guard, current) = self.lock_project(target.key, target.expected).await?;
        let dry_run = target.dry_run;
        let diff = vec![DiffItem {
            op: "remove",
            target: "project".into(),
            id: None,
            detail: current.def.mount(),
        }];
        if !dry_run {
            let (store, routes, locks, registry, scripts) = (
                self.store.clone(),
                self.routes.clone(),
                self.locks.clone(),
                self.registry.clone(),
                self.scripts.clone(),
            );
            let id = current.def.id;
            run_to_end(async move {
                let _guard = guard;
                match store.delete_project(id).await {
                    // Gone already (another node): unmounting is all there is to do.
                    Ok(()) | Err(StoreError::NotFound) => {}
                    Err(error) => {
                        reload(&*store, &routes, &registry, &scripts, id).await;
                        return Err(error.into());
                    }
                }
                retire(routes.publish(Publish::Unmount(id)));
                locks.forget(id);
                Ok(())
            })
            .await?;
        }
        Ok(Outcome {
            project: current,
            diff,
            dry_run,
        })
    }

    fn current(
        &self,
        key: &str,
        expected: Option<i64>,
    ) -> Result<Arc<CompiledProject>, ChangeError> {
        let current = self
            .routes
            .load()
            .get(key)
            .cloned()
            .ok_or_else(|| ChangeError::ProjectNotFound(key.to_owned()))?;
        if let Some(expected) = expected
            && expected != current.def.revision
        {
            return Err(ChangeError::RevisionMismatch {
                expected,
                current: current.def.revision,
            });
        }
        Ok(current)
    }

    /// Takes the change lock of the project mounted at `key` and reads it as it is under
    /// the lock. Should the mount change hands while we wait (the project was deleted and
    /// another created at its name), the lock of the one now there is taken instead.
    async fn lock_project(
        &self,
        key: &str,
        expected: Option<i64>,
    ) -> Result<(OwnedMutexGuard<()>, Arc<CompiledProject>), ChangeError> {
        loop {
            let id = self.current(key, None)?.def.id;
            let guard = self.locks.get(id).lock_owned().await;
            let current = self.current(key, expected)?;
            if current.def.id == id {
                return Ok((guard, current));
            }
        }
    }

    /// The shared steps of every edit of an existing project; `whole` for a replacement of
    /// everything, the only edit a broken project takes.
    async fn apply(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        whole: bool,
        edit: impl Fn(&CompiledProject) -> Result<Edit, ChangeError> + Send + Sync + 'static,
    ) -> Result<Outcome, ChangeError> {
        let edit: Arc<EditFn> = Arc::new(edit);
        // A stale commit makes the node reload the project; a caller without `If-Match`
        // asked for the edit whatever the revision, so it is made again on what was
        // reloaded. Twice is plenty: staleness needs another writer on the same database.
        let mut retries = 2;
        loop {
            match self
                .apply_once(actor.user_id, target, whole, edit.clone())
                .await
            {
                Err(ChangeError::Stale { current }) => match target.expected {
                    Some(expected) => {
                        return Err(ChangeError::RevisionMismatch { expected, current });
                    }
                    None if retries > 0 => retries -= 1,
                    None => return Err(ChangeError::Stale { current }),
                },
                other => return other,
            }
        }
    }

    /// Computes `edit` on `current` (on a blocking thread when `large`), with the script
    /// `recompiled` for it if one was.
    async fn compute_step(
        &self,
        current: &Arc<CompiledProject>,
        edit: &Arc<EditFn>,
        now: i64,
        large: bool,
        recompiled: Option<Recompiled>,
    ) -> Result<Step, ChangeError> {
        let work = {
            let (current, edit) = (current.clone(), edit.clone());
            let (quotas, registry) = (self.quotas.clone(), self.registry.clone());
            move || {
                compute(
                    &current,
                    &*edit,
                    now,
                    &quotas,
                    &registry,
                    recompiled.as_ref(),
                )
            }
        };
        if large {
            off_thread(work).await
        } else {
            work()
        }
    }

    /// The script `source` compiled for `project` as an edit leaves it (with its environment
    /// values); one that does not compile is a 422 naming `field`.
    async fn rescript(
        &self,
        project: &Project,
        source: Arc<str>,
        field: &'static str,
    ) -> Result<Recompiled, ChangeError> {
        match self.scripts.compile(project, &source).await {
            Ok(script) => Ok((source, script)),
            Err(error) => {
                let message = if field == "env" {
                    format!("the project's script does not compile with these values: {error}")
                } else {
                    error.to_string()
                };
                Err(ChangeError::Invalid(vec![FieldError::new(field, message)]))
            }
        }
    }

    async fn apply_once(
        &self,
        actor_id: i64,
        target: Target<'_>,
        whole: bool,
        edit: Arc<EditFn>,
    ) -> Result<Outcome, ChangeError> {
        let (guard, current) = self.lock_project(target.key, target.expected).await?;
        if let Some(problem) = &current.problem
            && !whole
        {
            return Err(ChangeError::Broken(problem.message().to_owned()));
        }
        let dry_run = target.dry_run;
        let now = now_ms();
        let large = whole || current.def.endpoints.len() >= EDIT_BLOCKING_FROM;
        let mut recompiled: Option<Recompiled> = None;
        let computed = loop {
            let step = self
                .compute_step(&current, &edit, now, large, recompiled.clone())
                .await?;
            match step {
                Step::Unchanged => break None,
                Step::Ready(computed) => break Some(*computed),
                // Compiled again (under the lock, so that nothing changes the project
                // meanwhile) with the environment values the edit gives it, then the edit
                // is computed once more with it.
                Step::Rescript {
                    project,
                    source,
                    field,
                } if recompiled.is_none() => {
                    recompiled = Some(self.rescript(&project, source, field).await?);
                }
                Step::Rescript { .. } => {
                    return Err(ChangeError::Task(
                        "the script compiled again for the project's environment values was \
                         still out of date"
                            .into(),
                    ));
                }
            }
        };
        let Some(Computed {
            compiled,
            ops,
            datasets,
            keys,
            summary,
            diff,
        }) = computed
        else {
            // Nothing changes: answer the current revision and write nothing, so a repeated
            // PUT is idempotent and does not grow the history.
            return Ok(Outcome {
                project: current,
                diff: Vec::new(),
                dry_run,
            });
        };
        let renamed = compiled.def.name != current.def.name;
        if renamed && self.routes.load().get(&compiled.def.mount_key()).is_some() {
            return Err(ChangeError::ProjectExists(compiled.def.name.clone()));
        }
        if dry_run {
            return Ok(Outcome {
                project: compiled,
                diff,
                dry_run,
            });
        }
        let finish = Finish {
            store: self.store.clone(),
            routes: self.routes.clone(),
            registry: self.registry.clone(),
            scripts: self.scripts.clone(),
            gate: self.gate.clone(),
            telemetry: self.telemetry.clone(),
            compiled: compiled.clone(),
            base_revision: current.def.revision,
            ops,
            datasets,
            keys,
            summary,
            actor_id,
            now,
            guard,
        };
        run_to_end(finish.run()).await?;
        // The replaced revision may be large; free it off the change path.
        retire(current);
        Ok(Outcome {
            project: compiled,
            diff,
            dry_run,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        // The examples of RFC 7386, section 3.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, patch.clone());
            assert_eq!(target, expected, "patch {patch}");
        }
    }

    fn endpoint(id: &str, path: &str, status: u16) -> Arc<Endpoint> {
        let spec: EndpointSpec = serde_json::from_value(json!({
            "method": "GET", "path": path, "response": {"status": status}
        }))
        .unwrap();
        Arc::new(Endpoint::new(id.into(), spec).unwrap())
    }

    #[test]
    fn endpoint_diffs_name_adds_changes_and_removals() {
        let before = vec![
            endpoint("a", "/a", 200),
            endpoint("b", "/b", 200),
            endpoint("c", "/c", 200),
        ];
        let after = vec![
            endpoint("a", "/a", 200),
            endpoint("b", "/b", 500),
            endpoint("d", "/d", 200),
        ];
        let (before, after): (EndpointList, EndpointList) = (before.into(), after.into());
        let diff = endpoints_diff(&before, &after);
        let ops: Vec<(&str, &str)> = diff
            .iter()
            .map(|d| (d.op, d.id.as_deref().unwrap()))
            .collect();
        assert_eq!(ops, [("change", "b"), ("add", "d"), ("remove", "c")]);
        assert_eq!(diff[0].detail, "GET /b");
        assert!(endpoints_diff(&before, &before).is_empty());
    }

    #[test]
    fn duplicate_ids_in_a_whole_project_are_refused_by_field() {
        let spec = |path: &str| -> EndpointSpec {
            serde_json::from_value(
                json!({"id": "same", "method": "GET", "path": path, "response": {}}),
            )
            .unwrap()
        };
        let Err(ChangeError::Invalid(errors)) = prepare_specs(vec![spec("/a"), spec("/b")], 10)
        else {
            panic!("duplicate ids must be refused");
        };
        assert_eq!(errors[0].field, "endpoints[1].id");
    }

    #[test]
    fn summaries_shorten_long_diffs() {
        let many: EndpointList = (0..5)
            .map(|i| endpoint(&format!("e{i}"), &format!("/{i}"), 200))
            .collect();
        let summary = summary_of(&endpoints_diff(&EndpointList::new(), &many));
        assert!(summary.ends_with("; and 2 more"), "{summary}");
        assert_eq!(summary_of(&[]), "no change");
    }

    fn project_of(endpoints: Vec<Arc<Endpoint>>) -> Project {
        Project {
            id: 1,
            owner: "o".into(),
            name: "p".into(),
            description: String::new(),
            mode: Mode::Development,
            journal_size: None,
            revision: 1,
            created_at: 0,
            updated_at: 0,
            endpoints: endpoints.into(),
            backends: Arc::from([]),
            script: None,
            auth: crate::model::AuthPolicy::None,
            cors: None,
            rate_limit: None,
            openapi: None,
            env: crate::model::Env::EMPTY,
            layout: crate::model::Layout::Owner,
        }
    }

    fn compile(project: Project, handlers: HandlerList) -> Result<CompiledProject, CompileError> {
        CompiledProject::build(Arc::new(project), handlers)
    }

    /// The status `project` answers a GET of `path` with.
    fn served(project: &CompiledProject, path: &str) -> u16 {
        let crate::routing::ProjectLookup::Found { endpoint, .. } =
            project.lookup(&http::Method::GET, path)
        else {
            panic!("{path} is served");
        };
        let Handler::Mock(mock) = &endpoint.handler else {
            panic!("{path} is a mock");
        };
        let crate::handlers::Reply::Now(response) = mock.respond() else {
            panic!("no delay");
        };
        response.status().as_u16()
    }

    fn handlers_of(endpoints: &[Arc<Endpoint>]) -> HandlerList {
        endpoints
            .iter()
            .map(|e| CompiledEndpoint::new(Handler::compile(&e.spec).unwrap(), None))
            .collect()
    }

    #[test]
    fn an_edit_that_keeps_methods_and_paths_shares_the_router() {
        let endpoints = vec![endpoint("a", "/a", 200), endpoint("b", "/b/{x}", 200)];
        let first = compile(project_of(endpoints.clone()), handlers_of(&endpoints)).unwrap();
        let router = |p: &CompiledProject| p.router.clone();

        let mut edited = endpoints.clone();
        edited[1] = endpoint("b", "/b/{x}", 503);
        let next = first
            .next(
                Arc::new(project_of(edited.clone())),
                handlers_of(&edited),
                RouteEdit::Unknown,
            )
            .unwrap();
        assert!(
            Arc::ptr_eq(&router(&first), &router(&next)),
            "same routes share the router"
        );
        assert_eq!(served(&next, "/b/1"), 503, "the new response is served");

        let mut moved = endpoints.clone();
        moved[1] = endpoint("b", "/c/{x}", 200);
        let rebuilt = first
            .next(
                Arc::new(project_of(moved.clone())),
                handlers_of(&moved),
                RouteEdit::Unknown,
            )
            .unwrap();
        assert!(
            !Arc::ptr_eq(&router(&first), &router(&rebuilt)),
            "a new path needs a new router"
        );
        assert!(matches!(
            rebuilt.lookup(&http::Method::GET, "/b/1"),
            crate::routing::ProjectLookup::NotFound
        ));
    }

    #[test]
    fn route_edit_hints_skip_the_comparison() {
        let endpoints = vec![endpoint("a", "/a", 200), endpoint("b", "/b/{x}", 200)];
        let first = compile(project_of(endpoints.clone()), handlers_of(&endpoints)).unwrap();
        let mut edited = endpoints.clone();
        edited[0] = endpoint("a", "/a", 404);
        let kept = first
            .next(
                Arc::new(project_of(edited.clone())),
                handlers_of(&edited),
                RouteEdit::Kept,
            )
            .unwrap();
        assert!(Arc::ptr_eq(&first.router, &kept.router));
        let mut more = endpoints.clone();
        more.push(endpoint("c", "/c/{y}.json", 201));
        let appended = first
            .next(
                Arc::new(project_of(more.clone())),
                handlers_of(&more),
                RouteEdit::Appended,
            )
            .unwrap();
        assert_eq!(appended.router.len(), 3);
        assert_eq!(appended.router.widest_patterns(), 1);
        assert!(matches!(
            appended.lookup(&http::Method::GET, "/c/1.json"),
            crate::routing::ProjectLookup::Found { .. }
        ));
    }

    #[test]
    fn an_endpoint_added_at_the_end_extends_the_router_and_conflicts_are_caught() {
        let endpoints = vec![endpoint("a", "/a", 200), endpoint("b", "/b/{x}", 200)];
        let first = compile(project_of(endpoints.clone()), handlers_of(&endpoints)).unwrap();
        let mut more = endpoints.clone();
        more.push(endpoint("c", "/c", 201));
        let next = first
            .next(
                Arc::new(project_of(more.clone())),
                handlers_of(&more),
                RouteEdit::Unknown,
            )
            .unwrap();
        for (path, status) in [("/a", 200), ("/b/1", 200), ("/c", 201)] {
            assert_eq!(served(&next, path), status, "{path}");
        }
        assert!(
            matches!(
                first.lookup(&http::Method::GET, "/c"),
                crate::routing::ProjectLookup::NotFound
            ),
            "the live revision is untouched"
        );

        let mut clash = endpoints.clone();
        clash.push(endpoint("d", "/b/{y}", 200));
        let Err(error) = first.next(
            Arc::new(project_of(clash.clone())),
            handlers_of(&clash),
            RouteEdit::Appended,
        ) else {
            panic!("the same method and shape must conflict");
        };
        let message = conflict(error).to_string();
        assert!(
            message.contains("`d`") && message.contains("`b`"),
            "{message}"
        );
    }
}
