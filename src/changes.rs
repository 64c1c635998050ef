//! The change path: validate, commit, compile, swap.
//!
//! Every admin change to a project goes through [`Changes`]: it takes the node's change lock,
//! checks `If-Match`, applies the edit to a copy of the live definition, validates it,
//! compiles the new project off to the side (route conflicts are found here, before anything
//! is written), commits it in one store transaction as revision + 1, and only then publishes
//! it to the route table with one atomic swap. A failure at any step leaves both the store
//! and the served project exactly as they were. `?dry_run=true` stops before the commit and
//! reports what would change.
//!
//! Invariant: the live route table is the node's copy of the store; the two change together
//! under the lock, so reading a project from the table reads the last committed revision.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::accounts::now_ms;
use crate::error::FieldError;
use crate::handlers::Handler;
use crate::model::{
    Endpoint, EndpointSpec, MAX_ENDPOINTS, Mode, Project, ProjectDefinition, new_endpoint_id,
};
use crate::routing::{CompileError, CompiledProject, Routes, retire};
use crate::store::{Commit, EndpointOps, NewProject, Store, StoreError};

/// Why a change was refused. Nothing was written when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no project `{0}`")]
    ProjectNotFound(String),
    #[error("no endpoint `{0}` in this project")]
    EndpointNotFound(String),
    #[error("an endpoint with id `{0}` exists in this project")]
    EndpointExists(String),
    #[error("the owner already has a project named `{0}`")]
    ProjectExists(String),
    #[error("the project is at revision {current}, not {expected}")]
    RevisionMismatch { expected: i64, current: i64 },
    #[error("the definition is invalid")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    RouteConflict(String),
    #[error("the stored project cannot be edited piecewise: {0}; replace it whole with PUT")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One line of what a change does.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
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
}

/// How an endpoint write treats an existing endpoint with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// POST: the id must be new.
    CreateOnly,
    /// PUT: replace it, or create it with that id.
    CreateOrReplace,
}

/// The edit an operation makes to a copy of the live project.
struct Edit {
    project: Project,
    handlers: Vec<Arc<Handler>>,
    ops: OwnedOps,
    summary: String,
    diff: Vec<DiffItem>,
}

impl Edit {
    fn new(
        project: Project,
        handlers: Vec<Arc<Handler>>,
        ops: OwnedOps,
        diff: Vec<DiffItem>,
    ) -> Edit {
        Edit {
            project,
            handlers,
            ops,
            summary: summary_of(&diff),
            diff,
        }
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
    /// Serialises changes on this node, so each edit starts from the last committed
    /// revision and the table swap cannot lose another change's update. The request path
    /// never takes it.
    lock: tokio::sync::Mutex<()>,
}

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

fn compile_handler(endpoint: &Endpoint, prefix: &str) -> Result<Arc<Handler>, ChangeError> {
    Handler::compile(&endpoint.spec).map(Arc::new).map_err(|e| {
        ChangeError::Invalid(vec![FieldError::new(
            format!("{prefix}response"),
            e.to_string(),
        )])
    })
}

fn compile(project: Project, handlers: Vec<Arc<Handler>>) -> Result<CompiledProject, ChangeError> {
    CompiledProject::build(Arc::new(project), handlers).map_err(conflict)
}

fn conflict(error: CompileError) -> ChangeError {
    match error {
        CompileError::Conflict { .. } => ChangeError::RouteConflict(error.to_string()),
    }
}

/// The same compiled project, its definition carrying the id the store gave it.
fn with_store_id(compiled: CompiledProject, id: i64) -> Arc<CompiledProject> {
    let mut def = Arc::unwrap_or_clone(compiled.def);
    def.id = id;
    Arc::new(CompiledProject {
        def: Arc::new(def),
        handlers: compiled.handlers,
        router: compiled.router,
    })
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

/// The handlers of a live project, recompiled if it was loaded broken.
fn live_handlers(current: &CompiledProject) -> Result<Vec<Arc<Handler>>, ChangeError> {
    if current.handlers.len() == current.def.endpoints.len() {
        return Ok(current.handlers.clone());
    }
    current
        .def
        .endpoints
        .iter()
        .map(|e| Handler::compile(&e.spec).map(Arc::new))
        .collect::<Result<_, _>>()
        .map_err(|e| ChangeError::Unavailable(e.to_string()))
}

/// Endpoints and their handlers, as parallel vectors.
type Prepared = (Vec<Arc<Endpoint>>, Vec<Arc<Handler>>);

/// Validates a whole list of endpoints (as in a project create or replace), reusing the
/// handlers of endpoints that did not change.
fn prepare_all(
    specs: Vec<EndpointSpec>,
    previous: Option<&CompiledProject>,
) -> Result<Prepared, ChangeError> {
    if specs.len() > MAX_ENDPOINTS {
        return Err(ChangeError::Invalid(vec![FieldError::new(
            "endpoints",
            format!("at most {MAX_ENDPOINTS} endpoints per project"),
        )]));
    }
    let reusable: HashMap<&str, (&Arc<Endpoint>, &Arc<Handler>)> = match previous {
        Some(p) if p.handlers.len() == p.def.endpoints.len() => p
            .def
            .endpoints
            .iter()
            .zip(&p.handlers)
            .map(|(e, h)| (e.id.as_str(), (e, h)))
            .collect(),
        _ => HashMap::new(),
    };
    let mut errors = Vec::new();
    let mut endpoints = Vec::with_capacity(specs.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
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
                endpoints.push(endpoint);
            }
            Err(mut more) => errors.append(&mut more),
        }
    }
    if !errors.is_empty() {
        return Err(ChangeError::Invalid(errors));
    }
    let mut handlers = Vec::with_capacity(endpoints.len());
    let mut shared = Vec::with_capacity(endpoints.len());
    for (index, endpoint) in endpoints.into_iter().enumerate() {
        match reusable.get(endpoint.id.as_str()) {
            Some((old, handler)) if old.spec == endpoint.spec => {
                shared.push(Arc::clone(old));
                handlers.push(Arc::clone(handler));
            }
            _ => {
                handlers.push(compile_handler(&endpoint, &format!("endpoints[{index}]."))?);
                shared.push(Arc::new(endpoint));
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
    diff
}

fn endpoints_diff(before: &[Arc<Endpoint>], after: &[Arc<Endpoint>]) -> Vec<DiffItem> {
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

impl Changes {
    pub fn new(store: Arc<dyn Store>, routes: Arc<Routes>) -> Changes {
        Changes {
            store,
            routes,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn routes(&self) -> &Arc<Routes> {
        &self.routes
    }

    /// Creates a project at revision 1.
    pub async fn create_project(
        &self,
        actor: Actor<'_>,
        owner: Actor<'_>,
        settings: SettingsEdit,
        endpoints: Vec<EndpointSpec>,
        dry_run: bool,
    ) -> Result<Outcome, ChangeError> {
        let name = settings.name.clone().unwrap_or_default();
        let key = format!("{}/{}", owner.username, name);
        let (endpoints, handlers) = prepare_all(endpoints, None)?;
        let _guard = self.lock.lock().await;
        if self.routes.load().get(&key).is_some() {
            return Err(ChangeError::ProjectExists(name));
        }
        let now = now_ms();
        let mut project = Project {
            id: 0,
            owner: owner.username.to_owned(),
            name,
            description: String::new(),
            mode: Mode::default(),
            revision: 1,
            created_at: now,
            updated_at: now,
            endpoints,
        };
        apply_settings(&mut project, settings);
        let mut diff = vec![DiffItem {
            op: "add",
            target: "project".into(),
            id: None,
            detail: project.mount(),
        }];
        diff.extend(endpoints_diff(&[], &project.endpoints));
        // Compile first: a conflict must refuse the change before anything is written.
        let compiled = compile(project, handlers)?;
        if dry_run {
            return Ok(Outcome {
                project: Arc::new(compiled),
                diff,
                dry_run,
            });
        }
        let project = &compiled.def;
        let id = self
            .store
            .create_project(
                &NewProject {
                    owner_id: owner.user_id,
                    owner: owner.username,
                    name: &project.name,
                    description: &project.description,
                    mode: project.mode,
                    endpoints: &project.endpoints,
                    now,
                },
                Some(actor.user_id),
            )
            .await
            .map_err(|e| match e {
                StoreError::ProjectExists => ChangeError::ProjectExists(project.name.clone()),
                other => ChangeError::Store(other),
            })?;
        // The store's id is known only now; the router and handlers stay as compiled.
        let compiled = with_store_id(compiled, id);
        retire(self.routes.publish(None, Some(compiled.clone())));
        Ok(Outcome {
            project: compiled,
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
        self.apply(actor, target, |current| {
            let mut project = current.def.as_ref().clone();
            apply_settings(&mut project, settings);
            let diff = settings_diff(&current.def, &project);
            Ok(Edit::new(
                project,
                live_handlers(current)?,
                OwnedOps::None,
                diff,
            ))
        })
        .await
    }

    /// Replaces settings and all endpoints at once (`PUT` of a whole project).
    pub async fn replace_project(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        definition: ProjectDefinition,
    ) -> Result<Outcome, ChangeError> {
        self.apply(actor, target, |current| {
            let (endpoints, handlers) = prepare_all(definition.endpoints, Some(current))?;
            let mut project = current.def.as_ref().clone();
            apply_settings(
                &mut project,
                SettingsEdit {
                    name: None,
                    description: Some(definition.description.unwrap_or_default()),
                    mode: Some(definition.mode.unwrap_or_default()),
                },
            );
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
        let endpoint = prepare_endpoint(spec, "", id).map_err(ChangeError::Invalid)?;
        let handler = compile_handler(&endpoint, "")?;
        let endpoint = Arc::new(endpoint);
        self.apply(actor, target, move |current| {
            let mut project = current.def.as_ref().clone();
            let mut handlers = live_handlers(current)?;
            let existing = project.endpoints.iter().position(|e| e.id == endpoint.id);
            let diff = match (existing, mode) {
                (Some(_), Upsert::CreateOnly) => {
                    return Err(ChangeError::EndpointExists(endpoint.id.clone()));
                }
                (Some(index), _) => {
                    let unchanged = project.endpoints[index].spec == endpoint.spec;
                    project.endpoints[index] = endpoint.clone();
                    handlers[index] = handler;
                    if unchanged {
                        Vec::new()
                    } else {
                        vec![DiffItem::endpoint("change", &endpoint)]
                    }
                }
                (None, _) => {
                    if project.endpoints.len() >= MAX_ENDPOINTS {
                        return Err(ChangeError::Invalid(vec![FieldError::new(
                            "endpoints",
                            format!("a project holds at most {MAX_ENDPOINTS} endpoints"),
                        )]));
                    }
                    project.endpoints.push(endpoint.clone());
                    handlers.push(handler);
                    vec![DiffItem::endpoint("add", &endpoint)]
                }
            };
            Ok(Edit::new(
                project,
                handlers,
                OwnedOps::Upsert(endpoint),
                diff,
            ))
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
        self.apply(actor, target, |current| {
            let index = index_of(current, id)?;
            let before = &current.def.endpoints[index];
            let mut document = serde_json::to_value(&before.spec)
                .map_err(|e| ChangeError::Invalid(vec![FieldError::new("body", e.to_string())]))?;
            merge_patch(&mut document, patch);
            let spec: EndpointSpec =
                serde_path_to_error::deserialize(document).map_err(|error| {
                    let path = error.path().to_string();
                    ChangeError::Invalid(vec![FieldError::from_serde(
                        &path,
                        error.into_inner().to_string(),
                    )])
                })?;
            let endpoint =
                Arc::new(prepare_endpoint(spec, "", Some(id)).map_err(ChangeError::Invalid)?);
            let handler = compile_handler(&endpoint, "")?;
            let mut project = current.def.as_ref().clone();
            let mut handlers = live_handlers(current)?;
            let diff = if endpoint.spec == before.spec {
                Vec::new()
            } else {
                vec![DiffItem::endpoint("change", &endpoint)]
            };
            project.endpoints[index] = endpoint.clone();
            handlers[index] = handler;
            Ok(Edit::new(
                project,
                handlers,
                OwnedOps::Upsert(endpoint),
                diff,
            ))
        })
        .await
    }

    pub async fn delete_endpoint(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        id: &str,
    ) -> Result<Outcome, ChangeError> {
        self.apply(actor, target, |current| {
            let index = index_of(current, id)?;
            let mut project = current.def.as_ref().clone();
            let mut handlers = live_handlers(current)?;
            let removed = project.endpoints.remove(index);
            handlers.remove(index);
            let diff = vec![DiffItem::endpoint("remove", &removed)];
            Ok(Edit::new(
                project,
                handlers,
                OwnedOps::Delete(id.to_owned()),
                diff,
            ))
        })
        .await
    }

    /// Deletes a project; its name and mount are free as soon as this returns.
    pub async fn delete_project(&self, target: Target<'_>) -> Result<Outcome, ChangeError> {
        let _guard = self.lock.lock().await;
        let current = self.current(target.key, target.expected)?;
        let dry_run = target.dry_run;
        let diff = vec![DiffItem {
            op: "remove",
            target: "project".into(),
            id: None,
            detail: current.def.mount(),
        }];
        if !dry_run {
            self.store.delete_project(current.def.id).await?;
            retire(self.routes.publish(Some(target.key), None));
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

    /// The shared steps of every edit of an existing project.
    async fn apply(
        &self,
        actor: Actor<'_>,
        target: Target<'_>,
        edit: impl FnOnce(&CompiledProject) -> Result<Edit, ChangeError>,
    ) -> Result<Outcome, ChangeError> {
        let _guard = self.lock.lock().await;
        let current = self.current(target.key, target.expected)?;
        let dry_run = target.dry_run;
        let Edit {
            mut project,
            handlers,
            ops,
            summary,
            diff,
        } = edit(&current)?;
        if diff.is_empty() {
            // Nothing changes: answer the current revision and write nothing, so a repeated
            // PUT is idempotent and does not grow the history.
            return Ok(Outcome {
                project: current,
                diff,
                dry_run,
            });
        }
        let renamed = project.name != current.def.name;
        if renamed && self.routes.load().get(&project.mount_key()).is_some() {
            return Err(ChangeError::ProjectExists(project.name));
        }
        let now = now_ms();
        project.revision = current.def.revision + 1;
        project.updated_at = now;
        // Edits that keep every method and path share the live router.
        let compiled = Arc::new(
            current
                .next(Arc::new(project), handlers)
                .map_err(conflict)?,
        );
        if dry_run {
            return Ok(Outcome {
                project: compiled,
                diff,
                dry_run,
            });
        }
        let def = &compiled.def;
        let endpoints = match &ops {
            OwnedOps::None => EndpointOps::None,
            OwnedOps::Upsert(endpoint) => EndpointOps::Upsert(endpoint),
            OwnedOps::Delete(id) => EndpointOps::Delete(id),
            OwnedOps::ReplaceAll => EndpointOps::ReplaceAll(&def.endpoints),
        };
        // The store commits only on top of `base_revision` (a second node on a shared
        // database may have moved it), so the new revision is `def.revision`.
        self.store
            .commit(&Commit {
                project_id: def.id,
                base_revision: current.def.revision,
                name: &def.name,
                description: &def.description,
                mode: def.mode,
                endpoints,
                actor_id: Some(actor.user_id),
                summary: &summary,
                now,
            })
            .await
            .map_err(|e| match e {
                StoreError::ProjectExists => ChangeError::ProjectExists(def.name.clone()),
                other => ChangeError::Store(other),
            })?;
        let replaced = self
            .routes
            .publish(renamed.then_some(target.key), Some(compiled.clone()));
        retire((replaced, current));
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
        let Err(ChangeError::Invalid(errors)) = prepare_all(vec![spec("/a"), spec("/b")], None)
        else {
            panic!("duplicate ids must be refused");
        };
        assert_eq!(errors[0].field, "endpoints[1].id");
    }

    #[test]
    fn summaries_shorten_long_diffs() {
        let many: Vec<Arc<Endpoint>> = (0..5)
            .map(|i| endpoint(&format!("e{i}"), &format!("/{i}"), 200))
            .collect();
        let summary = summary_of(&endpoints_diff(&[], &many));
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
            revision: 1,
            created_at: 0,
            updated_at: 0,
            endpoints,
        }
    }

    fn handlers_of(endpoints: &[Arc<Endpoint>]) -> Vec<Arc<Handler>> {
        endpoints
            .iter()
            .map(|e| Arc::new(Handler::compile(&e.spec).unwrap()))
            .collect()
    }

    #[test]
    fn an_edit_that_keeps_methods_and_paths_shares_the_router() {
        let endpoints = vec![endpoint("a", "/a", 200), endpoint("b", "/b/{x}", 200)];
        let first = compile(project_of(endpoints.clone()), handlers_of(&endpoints)).unwrap();
        let router = |p: &CompiledProject| p.router.as_ref().ok().cloned().unwrap();

        let mut edited = endpoints.clone();
        edited[1] = endpoint("b", "/b/{x}", 503);
        let next = first
            .next(Arc::new(project_of(edited.clone())), handlers_of(&edited))
            .unwrap();
        assert!(
            Arc::ptr_eq(&router(&first), &router(&next)),
            "same routes share the router"
        );
        let crate::routing::ProjectLookup::Found { handler, .. } =
            next.lookup(&http::Method::GET, "/b/1")
        else {
            panic!("/b/1 is served");
        };
        let crate::handlers::Reply::Now(response) = handler.respond() else {
            panic!("no delay");
        };
        assert_eq!(response.status(), 503, "the new response is served");

        let mut moved = endpoints.clone();
        moved[1] = endpoint("b", "/c/{x}", 200);
        let rebuilt = first
            .next(Arc::new(project_of(moved.clone())), handlers_of(&moved))
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
    fn an_endpoint_added_at_the_end_extends_the_router_and_conflicts_are_caught() {
        let endpoints = vec![endpoint("a", "/a", 200), endpoint("b", "/b/{x}", 200)];
        let first = compile(project_of(endpoints.clone()), handlers_of(&endpoints)).unwrap();
        let mut more = endpoints.clone();
        more.push(endpoint("c", "/c", 201));
        let next = first
            .next(Arc::new(project_of(more.clone())), handlers_of(&more))
            .unwrap();
        for (path, status) in [("/a", 200), ("/b/1", 200), ("/c", 201)] {
            let crate::routing::ProjectLookup::Found { handler, .. } =
                next.lookup(&http::Method::GET, path)
            else {
                panic!("{path} is served");
            };
            let crate::handlers::Reply::Now(response) = handler.respond() else {
                panic!("no delay");
            };
            assert_eq!(response.status(), status, "{path}");
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
        let Err(error) = first.next(Arc::new(project_of(clash.clone())), handlers_of(&clash))
        else {
            panic!("the same method and shape must conflict");
        };
        let message = conflict(error).to_string();
        assert!(
            message.contains("`d`") && message.contains("`b`"),
            "{message}"
        );
    }
}
