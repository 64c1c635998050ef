//! `POST /admin/projects/{owner}/{name}/import`: an OpenAPI 3.0 or 3.1 document (JSON or
//! YAML) into mock endpoints, as one revision (docs/openapi.md). A project that does not
//! exist is created. The document is read on a blocking thread (`openapi::import::plan`),
//! then applied by `Changes::import`; the answer is the import's report.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::admin::{actor, authorize, change_reply, resolve_owner};
use super::extract::{DocumentBody, IfMatch, Path, ProjectPath, Query};
use super::openapi::{
    BadRequest, Conflict, Forbidden, ImportRefused, NotFound, PayloadTooLarge, PreconditionFailed,
    RequestTimeout, ServiceUnavailable, Unauthorized, UnsupportedMediaType,
};
use crate::accounts::Principal;
use crate::changes::{SettingsEdit, Target};
use crate::error::{ApiError, Code, FieldError};
use crate::openapi::import::{self, ImportError, Options, Report};

/// The options of an import, as query parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ImportQuery {
    /// `merge` (the default: add, replacing endpoints with the same id) or `replace`.
    #[serde(default)]
    mode: Option<String>,
    /// Answer with this documented status where an operation has it (`201`, `4XX`).
    #[serde(default)]
    status: Option<String>,
    /// `false` turns request validation off on the imported endpoints.
    #[serde(default)]
    validate: Option<bool>,
    /// `true` checks the imported endpoints' answers against their documented responses
    /// in `development` mode (mismatches logged and flagged in the journal).
    #[serde(default)]
    validate_responses: Option<bool>,
    /// `keep` serves the paths under the first server URL's path; `drop` (the default) at
    /// the project's root.
    #[serde(default)]
    base_path: Option<String>,
    /// Check the document and answer what would change, changing nothing.
    #[serde(default)]
    dry_run: bool,
}

#[derive(Serialize)]
struct Answer<'a> {
    revision: i64,
    mode: &'static str,
    endpoints: usize,
    #[serde(flatten)]
    report: &'a Report,
}

/// Import an OpenAPI 3.0 or 3.1 document into mock endpoints.
///
/// One endpoint per operation, answering with the document's example for its chosen
/// response or a body generated from its schema, checking requests against its schemas; the
/// project is created if it does not exist. The answer accounts for every operation.
#[utoipa::path(
    post,
    path = "/admin/projects/{owner}/{name}/import",
    tag = "projects",
    params(ProjectPath, IfMatch, ImportQuery),
    request_body(content(
        (Object = "application/json"),
        (String = "application/yaml"),
    ), description = "The OpenAPI document, JSON or YAML (at most 64 MiB)"),
    responses(
        (status = 200, description = "Imported into the existing project (with `?dry_run=true`: what would change, under `result`)", body = Object,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 201, description = "Imported into a project created for it", body = Object,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ImportRefused),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn import(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
    IfMatch(expected): IfMatch,
    Query(query): Query<ImportQuery>,
    DocumentBody(body): DocumentBody,
) -> Result<Response, ApiError> {
    authorize(&principal, &owner)?;
    let mut errors = Vec::new();
    let replace = match query.mode.as_deref() {
        None | Some("merge") => false,
        Some("replace") => true,
        Some(other) => {
            errors.push(FieldError::new(
                "mode",
                format!("is `{other}`; use `merge` or `replace`"),
            ));
            false
        }
    };
    let keep_base_path = match query.base_path.as_deref() {
        None | Some("drop") => false,
        Some("keep") => true,
        Some(other) => {
            errors.push(FieldError::new(
                "base_path",
                format!("is `{other}`; use `keep` or `drop`"),
            ));
            false
        }
    };
    if let Some(status) = &query.status
        && !crate::model::is_response_key(status)
    {
        errors.push(FieldError::new(
            "status",
            "a status (200 to 599), a range such as `2XX`, or `default`",
        ));
    }
    if let Err(message) = crate::model::check_project_name(&name) {
        errors.push(FieldError::new("name", message));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let options = Options {
        replace,
        prefer: query.status,
        no_validation: query.validate == Some(false),
        validate_responses: query.validate_responses == Some(true),
        keep_base_path,
    };
    let plan = tokio::task::spawn_blocking(move || {
        let root = import::parse(&body)?;
        import::plan(&root, &options)
    })
    .await
    .map_err(|e| ApiError::new(Code::Internal, format!("the import stopped: {e}")))?
    .map_err(|error: ImportError| ApiError::new(Code::InvalidDocument, error.to_string()))?;
    let count = plan.endpoints.len();
    let key = format!("{owner}/{name}");
    let exists = state.changes.routes().load().get(&key).is_some();
    let (outcome, status) = if exists {
        let outcome = state
            .changes
            .import(
                actor(&principal),
                Target {
                    key: &key,
                    expected,
                    dry_run: query.dry_run,
                },
                plan.openapi,
                plan.endpoints,
                replace,
            )
            .await?;
        (outcome, StatusCode::OK)
    } else {
        if expected.is_some() {
            return Err(ApiError::new(
                Code::ProjectNotFound,
                format!("no project `{key}`"),
            ));
        }
        let description = plan
            .report
            .title
            .clone()
            .map(|t| t.chars().take(4096).collect());
        let (owner_id, owner_name, owner_admin) = resolve_owner(&state, &principal, owner).await?;
        let outcome = state
            .changes
            .create_project(
                actor(&principal),
                crate::changes::Actor {
                    user_id: owner_id,
                    username: &owner_name,
                    admin: owner_admin,
                },
                SettingsEdit {
                    name: Some(name),
                    description,
                    openapi: Some(Some(plan.openapi)),
                    ..SettingsEdit::default()
                },
                plan.endpoints,
                Vec::new(),
                query.dry_run,
            )
            .await?;
        (outcome, StatusCode::CREATED)
    };
    let answer = Answer {
        revision: outcome.project.def.revision,
        mode: if replace { "replace" } else { "merge" },
        endpoints: count,
        report: &plan.report,
    };
    Ok(change_reply(&outcome, status, answer))
}
