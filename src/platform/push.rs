//! `PUT /admin/projects/{owner}/{name}/folder`: a whole project folder — definition, script
//! and datasets — sent as one `multipart/form-data` request (what `switchyard push` sends)
//! and applied as one revision through `Changes::replace_whole`.
//!
//! The form's first part, `project`, is JSON of at most the admin body limit: the definition
//! a project `PUT` takes (checked the same way: `admin::definition_errors`,
//! `Accounts::seal_passwords`), the script's source or `null`, and every dataset the project is
//! to have, each with the SHA-256 of its file. Then come the files the server lacks, as
//! parts `dataset:{name}`: each is streamed into the store beside the live version and
//! parsed as a dataset upload is (`datasets::receive`), and must hash to what the list says.
//! A listed dataset sent without its file must be the server's current version of that name
//! (same SHA-256, format and declared types). Datasets not listed are removed.
//!
//! A project that does not exist is created first, with the definition's settings alone (as
//! the project `PUT` creates one: owner, quotas), so that the files have a project to be
//! stored in; should anything after that fail — a bad file, a refused definition, a client
//! that went away — the project is deleted again, so that a failed push leaves nothing. The
//! dry run of a new project creates nothing: `Changes::preview_whole` compiles what would be
//! created, its files parsed and stored nowhere (`datasets::parse`). Nothing is written
//! before the ownership check, the body's shape and the dataset list have been checked.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http::{StatusCode, header};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::admin::{
    ProjectPut, actor, authorize, change_reply, definition_errors, project_json, resolve_owner,
};
use super::datasets::{declared_types, format_named, standard_endpoints, upload_error};
use super::extract::{DryRun, IfMatch, Path, ProjectPath, Query, parse_json};
use super::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed,
    ProjectOrDryRun, RequestTimeout, ServiceUnavailable, Unauthorized, UnsupportedMediaType,
    ValidationFailed,
};
use crate::accounts::{Principal, now_ms};
use crate::changes::{
    Actor, ChangeError, Changes, SettingsEdit, StandardEndpoints, Target, Whole, WholeDataset,
    WholeScript,
};
use crate::dataset::{ColumnType, Format};
use crate::datasets::{self, LoadedDataset, Upload, UploadError, check_name, format_name};
use crate::error::{ApiError, Code, FieldError};
use crate::model::ProjectDefinition;
use crate::routing::CompiledProject;

/// The `project` part of a push: the folder as JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PushProject {
    /// The whole definition (settings, endpoints, backends), exactly as
    /// `PUT /admin/projects/{owner}/{name}` takes it.
    #[schema(value_type = super::admin::ProjectPutFields)]
    definition: ProjectPut,
    /// The script's source (`app.js`); absent or null: the project has no script.
    #[serde(default)]
    script: Option<String>,
    /// Every dataset the project is to have; those it has and this does not list are
    /// removed. Absent: none.
    #[serde(default)]
    datasets: Vec<PushDataset>,
}

/// One dataset of a pushed folder.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PushDataset {
    /// The dataset's name: 1 to 64 of `a-z`, `0-9`, `_`, `-`, starting with a letter or digit.
    name: String,
    /// The SHA-256 of its file, 64 lowercase hex digits. Without a `dataset:{name}` part, the
    /// server's current version of the dataset must have this digest.
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    sha256: String,
    /// The file's format: `csv`, `json` or `jsonl` (also `ndjson`).
    #[schema(pattern = "^(csv|json|jsonl|ndjson)$")]
    format: String,
    /// Declared column types: `zip:text,age:integer`; the others are inferred.
    #[serde(default)]
    types: Option<String>,
    /// `default`: the standard query, stats and schema endpoints, in the same revision;
    /// `none` or null: none.
    #[serde(default)]
    #[schema(pattern = "^(default|none)$")]
    endpoints: Option<String>,
    /// The category column of the standard endpoints (default: the first text column).
    #[serde(default)]
    category: Option<String>,
    /// A path prefix for the standard endpoints (`/iris` → `/iris/range`).
    #[serde(default)]
    prefix: Option<String>,
}

/// The form of a push, part by part, in this order.
#[derive(ToSchema)]
#[allow(dead_code, reason = "a schema only: the form is read part by part")]
pub(super) struct PushForm {
    /// First: the folder as JSON (at most the admin body limit).
    project: PushProject,
    /// Then, as parts named `dataset:{name}`, the file of each listed dataset whose bytes
    /// the server does not have (in any order, each at most once), read in its listed
    /// `format`.
    #[serde(rename = "dataset:{name}", default)]
    #[schema(value_type = String, format = Binary)]
    dataset: Vec<u8>,
}

/// A listed dataset, checked.
struct Planned {
    name: String,
    sha256: String,
    format: Format,
    declared: Vec<(String, ColumnType)>,
    standard: Option<StandardEndpoints>,
}

/// Push a project folder: definition, script and datasets in one revision.
///
/// A `multipart/form-data` form: first the part `project` (the folder as JSON: the
/// definition a project `PUT` takes, the script, and every dataset with its file's SHA-256),
/// then a part `dataset:{name}` with the file of each listed dataset the server does not
/// have. Applied as one revision: datasets not listed are removed, a `null` script removes
/// the script, and a folder that changes nothing writes nothing and keeps the revision. A
/// project that does not exist is created (`201`), and deleted again if the push fails.
#[utoipa::path(
    put,
    path = "/admin/projects/{owner}/{name}/folder",
    tag = "projects",
    params(ProjectPath, IfMatch, DryRun),
    request_body(
        description = "The folder: the `project` part (JSON), then `dataset:{name}` files",
        content((PushForm = "multipart/form-data")),
    ),
    responses(
        (status = 200, description = "The project as pushed, or with `?dry_run=true` what \
            would change", body = ProjectOrDryRun,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 201, description = "The project, created", body = super::admin::ProjectAnswer,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn push_folder(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
    request: Request,
) -> Result<Response, ApiError> {
    // The owner is in the URL: a stranger is refused before a byte of the body is read.
    authorize(&principal, &owner)?;
    let boundary = boundary(request.headers())?;
    let mut form = multer::Multipart::new(request.into_body().into_data_stream(), boundary);
    let bytes = read_project_part(&state, &mut form).await?;
    let folder: PushProject = if bytes.len() >= super::admin::LARGE_BODY {
        tokio::task::spawn_blocking(move || parse_json(&bytes))
            .await
            .map_err(|e| ApiError::internal(&e))?
    } else {
        parse_json(&bytes)
    }
    .map_err(in_project_part)?;
    let PushProject {
        definition: ProjectPut(mut definition),
        script,
        datasets: listed,
    } = folder;
    let mut errors: Vec<FieldError> = definition_errors(&name, &definition)
        .into_iter()
        .map(in_definition)
        .collect();
    let plans = check_listed(&listed, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    state.accounts.seal_passwords(&mut definition.auth).await?;

    let key = format!("{owner}/{name}");
    let live = state.changes.routes().load().get(&key).cloned();
    match (&live, expected) {
        // Refused before a file is read: a stale push would be thrown away at the end.
        (Some(live), Some(expected)) if live.def.revision != expected => {
            return Err(ApiError::new(
                Code::RevisionMismatch,
                format!(
                    "the project is at revision {}, not {expected}",
                    live.def.revision
                ),
            ));
        }
        // As the project `PUT`: a revision of a project that does not exist.
        (None, Some(_)) => {
            return Err(ApiError::new(
                Code::ProjectNotFound,
                format!("no project `{key}`"),
            ));
        }
        _ => {}
    }
    let now = now_ms();
    let mut created: Option<Created> = None;
    let mut owner_of_new = None;
    let project_id = match &live {
        Some(live) => Some(live.def.id),
        None => {
            let owner = resolve_owner(&state, &principal, owner.clone()).await?;
            if dry.dry_run {
                owner_of_new = Some(owner);
                None
            } else {
                let (user_id, username, admin) = owner;
                let outcome = state
                    .changes
                    .create_project(
                        actor(&principal),
                        Actor {
                            user_id,
                            username: &username,
                            admin,
                        },
                        SettingsEdit::whole(Some(name.clone()), &definition),
                        Vec::new(),
                        Vec::new(),
                        false,
                    )
                    .await
                    .map_err(change_error)?;
                tracing::info!(project = %outcome.project.def.mount(), "project created by a push");
                created = Some(Created {
                    changes: state.changes.clone(),
                    key: Some(key.clone()),
                });
                Some(outcome.project.def.id)
            }
        }
    };

    // The files, then the datasets sent without one.
    let mut uploads: Vec<Option<Arc<LoadedDataset>>> = vec![None; plans.len()];
    let received = receive_files(&state, &mut form, &plans, project_id, now, &mut uploads).await;
    let current = state.changes.routes().load().get(&key).cloned();
    if received.is_ok() {
        // A file sent again that the server serves as it is listed changes nothing: the
        // version just stored is dropped again, so that a repeated push writes nothing.
        for (plan, upload) in plans.iter().zip(uploads.iter_mut()) {
            if upload.is_some() && served_as_listed(plan, current.as_deref()).is_ok() {
                let repeated = upload.take();
                if let (Some(repeated), Some(_)) = (repeated, project_id) {
                    datasets::abandon(&**state.changes.store(), repeated.version).await;
                }
            }
        }
    }
    let received = received.and_then(|()| check_unsent(&plans, &uploads, current.as_deref()));
    if let Err(error) = received {
        if project_id.is_some() {
            for upload in uploads.iter().flatten() {
                datasets::abandon(&**state.changes.store(), upload.version).await;
            }
        }
        if let Some(created) = created {
            created.delete().await;
        }
        return Err(error);
    }
    if !dry.dry_run {
        warm(&definition, &plans, &uploads).await;
    }
    let whole = Whole {
        definition,
        script: match script {
            Some(source) => WholeScript::Set(source),
            None => WholeScript::Remove,
        },
        datasets: Some(
            plans
                .into_iter()
                .zip(uploads)
                .map(|(plan, upload)| WholeDataset {
                    name: plan.name,
                    upload,
                    endpoints: plan.standard,
                })
                .collect(),
        ),
    };
    let outcome = match owner_of_new {
        // The dry run of a new project.
        Some((user_id, username, admin)) => {
            let owner = Actor {
                user_id,
                username: &username,
                admin,
            };
            state
                .changes
                .preview_whole(actor(&principal), owner, &name, whole)
                .await
        }
        None => {
            let target = Target {
                key: &key,
                expected,
                dry_run: dry.dry_run,
            };
            state
                .changes
                .replace_whole(actor(&principal), target, whole)
                .await
        }
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            if let Some(created) = created {
                created.delete().await;
            }
            return Err(change_error(error));
        }
    };
    let status = match created {
        Some(mut created) => {
            created.keep();
            StatusCode::CREATED
        }
        None if live.is_none() => StatusCode::CREATED,
        None => StatusCode::OK,
    };
    if !outcome.dry_run {
        tracing::info!(
            project = %outcome.project.def.mount(),
            revision = outcome.project.def.revision,
            changes = outcome.diff.len(),
            "folder pushed"
        );
    }
    let body = project_json(&outcome.project, true);
    Ok(change_reply(&outcome, status, body))
}

/// A project this push created: deleted again unless [`Created::keep`] is called, also when
/// the request is dropped half-way (its client went away), so that a failed push leaves
/// nothing.
struct Created {
    changes: Arc<Changes>,
    /// `None` once kept or deleted.
    key: Option<String>,
}

impl Created {
    fn keep(&mut self) {
        self.key = None;
    }

    async fn delete(mut self) {
        if let Some(key) = self.key.take() {
            delete_created(&self.changes, &key).await;
        }
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let changes = self.changes.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { delete_created(&changes, &key).await });
            }
            Err(_) => tracing::warn!(project = %key, "a failed push's project was left"),
        }
    }
}

async fn delete_created(changes: &Changes, key: &str) {
    let target = Target {
        key,
        expected: None,
        dry_run: false,
    };
    match changes.delete_project(target).await {
        Ok(_) => tracing::info!(project = %key, "the push failed: its new project is deleted"),
        Err(error) => {
            tracing::warn!(project = %key, %error, "could not delete a failed push's project");
        }
    }
}

/// The form's boundary; a body that is not `multipart/form-data` is a 415.
fn boundary(headers: &http::HeaderMap) -> Result<String, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "multipart/form-data" {
        let given = if essence.is_empty() {
            "a body without a content type".to_owned()
        } else {
            format!("`{essence}`")
        };
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!(
                "this route takes multipart/form-data (the part `project`, then `dataset:{{name}}` files), not {given}"
            ),
        ));
    }
    multer::parse_boundary(content_type)
        .map_err(|e| ApiError::new(Code::BadRequest, format!("a bad multipart body: {e}")))
}

fn bad_form(error: multer::Error) -> ApiError {
    ApiError::new(Code::BadRequest, format!("a bad multipart body: {error}"))
}

/// The first part, which must be `project`, read whole: at most the admin body limit
/// (413), within the body read timeout (408).
async fn read_project_part(
    state: &AppState,
    form: &mut multer::Multipart<'static>,
) -> Result<Bytes, ApiError> {
    let limit = state.config.admin_body_limit;
    let timeout = state.config.body_read_timeout;
    let read = async {
        let Some(mut field) = form.next_field().await.map_err(bad_form)? else {
            return Err(ApiError::new(
                Code::BadRequest,
                "the form is empty: its first part must be `project`, the folder as JSON",
            ));
        };
        if field.name() != Some("project") {
            return Err(ApiError::new(
                Code::BadRequest,
                format!(
                    "the form's first part is `{}`: it must be `project`, the folder as JSON, \
                     before any `dataset:{{name}}` file",
                    field.name().unwrap_or("")
                ),
            ));
        }
        let mut bytes = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::new(
                    Code::PayloadTooLarge,
                    format!("the `project` part is larger than the limit of {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes.freeze())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ApiError::body_timeout(timeout))?
}

/// Says "the `project` part" where the JSON parser's errors say "the body".
fn in_project_part(mut error: ApiError) -> ApiError {
    if error.code == Code::MalformedJson {
        error.message = error.message.replacen("the body", "the `project` part", 1);
    }
    error
}

/// A field of the definition as the `project` part names it: under `definition`.
fn in_definition(error: FieldError) -> FieldError {
    FieldError::new(format!("definition.{}", error.field), error.message)
}

/// A refused change as a push answers it: its fields named as in the `project` part
/// (those of the definition under `definition`; `script` and `datasets[…]` as they are).
fn change_error(error: ChangeError) -> ApiError {
    let error = ApiError::from(error);
    if error.code != Code::ValidationFailed {
        return error;
    }
    let details = error
        .details
        .into_iter()
        .map(|detail| {
            let ours = detail.field == "script"
                || detail.field.starts_with("script.")
                || detail.field.starts_with("datasets[");
            if ours { detail } else { in_definition(detail) }
        })
        .collect();
    ApiError::validation(details)
}

/// Checks the dataset list (names, digests, formats, types, endpoints), adding what is wrong
/// to `errors`.
fn check_listed(listed: &[PushDataset], errors: &mut Vec<FieldError>) -> Vec<Planned> {
    let mut plans = Vec::with_capacity(listed.len());
    for (i, dataset) in listed.iter().enumerate() {
        let at = |field: &str| format!("datasets[{i}].{field}");
        if let Err(message) = check_name(&dataset.name) {
            errors.push(FieldError::new(at("name"), message));
        } else if let Some(first) = listed[..i].iter().position(|d| d.name == dataset.name) {
            errors.push(FieldError::new(
                at("name"),
                format!("`{}` is listed twice (datasets[{first}])", dataset.name),
            ));
        }
        if !is_sha256(&dataset.sha256) {
            errors.push(FieldError::new(
                at("sha256"),
                "a SHA-256 is 64 lowercase hex digits",
            ));
        }
        let format = format_named(&dataset.format, &at("format")).map_err(|e| errors.push(e));
        let declared =
            declared_types(dataset.types.as_deref(), &at("types")).map_err(|e| errors.extend(e));
        let standard = standard_endpoints(dataset.endpoints.as_deref(), &at("endpoints"))
            .map_err(|e| errors.push(e));
        if let (Ok(format), Ok(declared), Ok(standard)) = (format, declared, standard) {
            plans.push(Planned {
                name: dataset.name.clone(),
                sha256: dataset.sha256.clone(),
                format,
                declared,
                standard: standard.then(|| StandardEndpoints {
                    category: dataset.category.clone(),
                    prefix: dataset.prefix.clone(),
                }),
            });
        }
    }
    plans
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Reads the `dataset:{name}` parts to the end of the form: each file stored as a new
/// version of project `project_id` and parsed (`None`: a dry run of a new project, parsed
/// only), into `uploads` at its place in `plans`. A file the list does not name, one sent
/// twice, or one whose SHA-256 is not the listed one is a 422.
async fn receive_files(
    state: &AppState,
    form: &mut multer::Multipart<'static>,
    plans: &[Planned],
    project_id: Option<i64>,
    now: i64,
    uploads: &mut [Option<Arc<LoadedDataset>>],
) -> Result<(), ApiError> {
    let settings = state.config.datasets;
    let store = state.changes.store().clone();
    loop {
        let next = tokio::time::timeout(settings.idle_timeout, form.next_field())
            .await
            .map_err(|_| ApiError::body_timeout(settings.idle_timeout))?;
        let Some(field) = next.map_err(bad_form)? else {
            return Ok(());
        };
        let part = field.name().unwrap_or("").to_owned();
        let Some(name) = part.strip_prefix("dataset:") else {
            let message = if part == "project" {
                "the form has a second `project` part".to_owned()
            } else {
                format!(
                    "the form has a part `{part}`: after `project` come only `dataset:{{name}}` files"
                )
            };
            return Err(ApiError::new(Code::BadRequest, message));
        };
        let Some(i) = plans.iter().position(|p| p.name == name) else {
            return Err(ApiError::validation(vec![FieldError::new(
                "datasets",
                format!("the form has a file for `{name}`, which `datasets` does not list"),
            )]));
        };
        let plan = &plans[i];
        if uploads[i].is_some() {
            return Err(ApiError::validation(vec![FieldError::new(
                format!("datasets[{i}]"),
                format!("the file of `{name}` was sent twice"),
            )]));
        }
        let upload = Upload {
            project_id: project_id.unwrap_or(0),
            name: plan.name.clone(),
            format: plan.format,
            declared: plan.declared.clone(),
        };
        let loaded = match project_id {
            Some(_) => datasets::receive(&*store, &upload, Box::pin(field), &settings, now).await,
            None => datasets::parse(&upload, Box::pin(field), &settings, now).await,
        }
        .map_err(|error| file_error(i, &plan.name, error))?;
        let sent = loaded.sha256_hex();
        uploads[i] = Some(Arc::new(loaded));
        if sent != plan.sha256 {
            return Err(ApiError::validation(vec![FieldError::new(
                format!("datasets[{i}].sha256"),
                format!(
                    "the file of `{name}` that arrived has the SHA-256 {sent}, not the one \
                     listed: its bytes did not arrive as they were sent"
                ),
            )]));
        }
    }
}

/// A file that was not taken: a bad row names the dataset (`datasets[i]`), its line and
/// column; the rest as for a dataset upload.
fn file_error(i: usize, name: &str, error: UploadError) -> ApiError {
    match error {
        UploadError::Import(error) => ApiError::validation(vec![FieldError::new(
            format!("datasets[{i}]"),
            format!("the file of `{name}`: {error}"),
        )]),
        other => upload_error(other),
    }
}

/// Checks that each listed dataset sent without its file is the server's current version:
/// the same SHA-256, read in the same format with the same declared types.
fn check_unsent(
    plans: &[Planned],
    uploads: &[Option<Arc<LoadedDataset>>],
    current: Option<&CompiledProject>,
) -> Result<(), ApiError> {
    let errors: Vec<FieldError> = plans
        .iter()
        .zip(uploads)
        .enumerate()
        .filter(|(_, (_, upload))| upload.is_none())
        .filter_map(|(i, (plan, _))| {
            let message = served_as_listed(plan, current).err()?;
            let send = format!("send its file as the part `dataset:{}`", plan.name);
            Some(FieldError::new(
                format!("datasets[{i}]"),
                format!("{message}; {send}"),
            ))
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Whether `current` (the live project) serves `plan`'s dataset as it is listed: the same
/// SHA-256, read in the same format with the same declared types; else how it differs.
fn served_as_listed(plan: &Planned, current: Option<&CompiledProject>) -> Result<(), String> {
    let name = &plan.name;
    match current.and_then(|p| p.datasets.get(name)) {
        None => Err(format!("the server has no dataset `{name}`")),
        Some(served) if served.sha256_hex() != plan.sha256 => Err(format!(
            "the server's copy of `{name}` differs (its SHA-256 is {})",
            served.sha256_hex()
        )),
        Some(served) if served.format != plan.format => Err(format!(
            "the server's copy of `{name}` was read as {}, not {}",
            format_name(served.format),
            format_name(plan.format)
        )),
        Some(served) if !same_declared(served, &plan.declared) => Err(format!(
            "the server's copy of `{name}` was read with other declared column types"
        )),
        Some(_) => Ok(()),
    }
}

/// Whether `dataset` was read with exactly the column types `declared`.
fn same_declared(dataset: &LoadedDataset, declared: &[(String, ColumnType)]) -> bool {
    let mut had: Vec<(&str, ColumnType)> = dataset
        .data
        .table()
        .columns()
        .iter()
        .filter(|c| c.declared)
        .map(|c| (c.name.as_str(), c.ty))
        .collect();
    let mut wanted: Vec<(&str, ColumnType)> =
        declared.iter().map(|(c, ty)| (c.as_str(), *ty)).collect();
    had.sort_by(|a, b| a.0.cmp(b.0));
    wanted.sort_by(|a, b| a.0.cmp(b.0));
    had == wanted
}

/// Builds the category indexes the new versions' endpoints will group by, before the swap
/// (as a dataset upload does).
async fn warm(
    definition: &ProjectDefinition,
    plans: &[Planned],
    uploads: &[Option<Arc<LoadedDataset>>],
) {
    for (plan, upload) in plans.iter().zip(uploads) {
        let Some(upload) = upload else { continue };
        let mut columns: Vec<String> = definition
            .endpoints
            .iter()
            .filter_map(|e| e.handler.dataset())
            .filter(|d| d.name == plan.name)
            .filter_map(|d| d.category.clone())
            .collect();
        columns.extend(plan.standard.as_ref().and_then(|s| s.category.clone()));
        if !columns.is_empty() {
            datasets::warm(upload, columns).await;
        }
    }
}
