//! `/admin/projects/{owner}/{name}/datasets[/{dataset}]`: a project's datasets
//! (docs/datasets.md). `PUT` uploads one — CSV, a JSON array or JSON lines, as the body or
//! the `file` field of a multipart form — streamed into the store and parsed beside the live
//! version, then swapped in as one revision (`If-Match`, `?dry_run=true`, `ETag`);
//! `?endpoints=default` adds the standard query, stats and schema endpoints in that same
//! revision. `GET` gives a dataset's schema, size and SHA-256, `DELETE` removes it, and
//! `GET …/{dataset}/file` streams back the bytes that were uploaded.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, TryStreamExt};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::admin::{DryRunBody, actor, change_reply, live_project, read_reply};
use super::extract::{DatasetPath, DryRun, IfMatch, Path, ProjectPath, Query};
use super::openapi::{
    BadRequest, Conflict, DatasetOrDryRun, Forbidden, NotFound, PayloadTooLarge,
    PreconditionFailed, RequestTimeout, ServiceUnavailable, Unauthorized, UnsupportedMediaType,
    ValidationFailed,
};
use crate::accounts::{Principal, now_ms};
use crate::changes::Target;
use crate::dataset::{Column, ColumnType, Format};
use crate::datasets::{self, LoadedDataset, Upload, UploadError, check_name, format_name};
use crate::error::{ApiError, Code, FieldError};
use crate::routing::CompiledProject;

/// The query parameters of an upload.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct UploadOptions {
    /// Read and check the upload and answer what would change, changing nothing.
    #[serde(default)]
    dry_run: bool,
    /// Declared column types: `zip:text,age:integer` (`integer`, `number`, `text`,
    /// `boolean`); the others are inferred.
    #[serde(default)]
    types: Option<String>,
    /// The format, when the content type does not say it: `csv`, `json` or `jsonl`
    /// (also `ndjson`).
    #[serde(default)]
    #[param(pattern = "^(csv|json|jsonl|ndjson)$")]
    format: Option<String>,
    /// `default`: add the standard endpoints (query, stats, schema) in the same revision;
    /// `none` (the default): add none.
    #[serde(default)]
    #[param(pattern = "^(default|none)$")]
    endpoints: Option<String>,
    /// The category column of the standard endpoints (default: the first text column).
    #[serde(default)]
    category: Option<String>,
    /// A path prefix for the standard endpoints (`/iris` → `/iris/range`).
    #[serde(default)]
    prefix: Option<String>,
}

/// A dataset as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = Dataset)]
pub(super) struct DatasetAnswer<'a> {
    name: &'a str,
    /// The format it was uploaded in: `csv`, `json` or `jsonl`.
    #[schema(value_type = String, example = "csv")]
    format: &'static str,
    rows: usize,
    /// The upload's size.
    bytes: u64,
    /// The SHA-256 of the upload's bytes, 64 lowercase hex digits: what `GET …/file` gives
    /// back, and its `ETag`.
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    sha256: String,
    /// Unix milliseconds.
    uploaded_at: i64,
    columns: &'a [Column],
    /// The endpoints that read it.
    endpoints: Vec<&'a str>,
}

fn answer<'a>(project: &'a CompiledProject, dataset: &'a LoadedDataset) -> DatasetAnswer<'a> {
    DatasetAnswer {
        name: &dataset.name,
        format: format_name(dataset.format),
        rows: dataset.rows(),
        bytes: dataset.bytes,
        sha256: dataset.sha256_hex(),
        uploaded_at: dataset.uploaded_at,
        columns: dataset.data.table().columns(),
        endpoints: project
            .def
            .endpoints
            .iter()
            .filter(|e| {
                e.spec
                    .handler
                    .dataset()
                    .is_some_and(|d| d.name == *dataset.name)
            })
            .map(|e| e.id.as_str())
            .collect(),
    }
}

/// List a project's datasets: each one's schema and size.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/datasets",
    tag = "datasets",
    params(ProjectPath),
    responses(
        (status = 200, description = "The datasets", body = Vec<DatasetAnswer>,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_datasets(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let list: Vec<DatasetAnswer<'_>> = project
        .datasets
        .iter()
        .map(|d| answer(&project, d))
        .collect();
    Ok(read_reply(project.def.revision, list))
}

/// Read one dataset's schema and size.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/datasets/{dataset}",
    tag = "datasets",
    params(DatasetPath),
    responses(
        (status = 200, description = "The dataset", body = DatasetAnswer,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get_dataset(
    State(state): State<AppState>,
    principal: Principal,
    Path(DatasetPath {
        owner,
        name,
        dataset,
    }): Path<DatasetPath>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let found = project
        .datasets
        .get(&dataset)
        .ok_or_else(|| not_found(&dataset))?;
    Ok(read_reply(project.def.revision, answer(&project, found)))
}

/// Download a dataset: the bytes of its current version, as they were uploaded.
///
/// The file is streamed from the store chunk by chunk, byte for byte what was uploaded, with
/// the content type of its format, its size as `Content-Length`, its SHA-256 (the dataset's
/// `sha256`) as `ETag`, and a file name `{dataset}.csv`, `.json` or `.jsonl`. A download that
/// a replacement or deletion of the dataset overtakes is cut short (the connection closes
/// before `Content-Length` bytes), never finished with other bytes.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/datasets/{dataset}/file",
    tag = "datasets",
    params(DatasetPath),
    responses(
        (status = 200, description = "The uploaded bytes, in the format they were uploaded in",
            content(
                (String = "text/csv"),
                (Vec<Object> = "application/json"),
                (String = "application/x-ndjson"),
            ),
            headers(
                ("ETag" = String, description = "The SHA-256 of the bytes, hex, quoted"),
                ("Content-Length" = u64, description = "The size of the upload"),
                ("Content-Disposition" = String,
                    description = "`attachment; filename=\"{dataset}.csv\"` (or `.json`, `.jsonl`)"),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get_dataset_file(
    State(state): State<AppState>,
    principal: Principal,
    Path(DatasetPath {
        owner,
        name,
        dataset,
    }): Path<DatasetPath>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let found = project
        .datasets
        .get(&dataset)
        .ok_or_else(|| not_found(&dataset))?;
    let version = found.version;
    let bytes = datasets::read_back(state.changes.store().clone(), found, crate::body::MAX_FRAME)
        .inspect_err(move |error| {
            tracing::warn!(%error, version, "a dataset download was cut short");
        });
    let extension = format_name(found.format);
    // A stored dataset's name is of `[a-z0-9_-]`: always a valid header value.
    let disposition = HeaderValue::try_from(format!(
        "attachment; filename=\"{}.{extension}\"",
        found.name
    ))
    .unwrap_or(HeaderValue::from_static("attachment"));
    let etag = HeaderValue::try_from(format!("\"{}\"", found.sha256_hex()))
        .unwrap_or(HeaderValue::from_static("\"\""));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(media_type(found.format)),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(found.bytes)),
            (header::ETAG, etag),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        axum::body::Body::from_stream(bytes),
    )
        .into_response())
}

/// The content type a dataset of `format` is given back with.
fn media_type(format: Format) -> &'static str {
    match format {
        Format::Csv => "text/csv",
        Format::Json => "application/json",
        Format::JsonLines => "application/x-ndjson",
    }
}

/// Upload a dataset, new or a new version of one.
///
/// The upload is streamed into the store and parsed beside the live version, then swapped
/// in as one revision. The body is CSV with a header row, a JSON array of objects, or JSON lines — or a
/// `multipart/form-data` form whose `file` field is one of them. Its format comes from
/// `?format=`, else the content type (of the body, or of the form's `file` field, or its
/// file name's extension). A bad row is a 422 naming its line and column.
#[utoipa::path(
    put,
    path = "/admin/projects/{owner}/{name}/datasets/{dataset}",
    tag = "datasets",
    params(DatasetPath, IfMatch, UploadOptions),
    request_body(
        description = "The table: CSV, a JSON array of objects, JSON lines, or a form's `file`",
        content(
            (String = "text/csv"),
            (Vec<Object> = "application/json"),
            (String = "application/x-ndjson"),
            (String = "application/jsonl"),
            (DatasetUpload = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 200, description = "The dataset as replaced, or with `?dry_run=true` what \
            would change", body = DatasetOrDryRun,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 201, description = "The dataset, new in the project", body = DatasetAnswer,
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
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn put_dataset(
    State(state): State<AppState>,
    principal: Principal,
    Path(DatasetPath {
        owner,
        name,
        dataset,
    }): Path<DatasetPath>,
    IfMatch(expected): IfMatch,
    Query(options): Query<UploadOptions>,
    request: Request,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    if let Err(message) = check_name(&dataset) {
        return Err(ApiError::validation(vec![FieldError::new("name", message)]));
    }
    // Refused before a byte is read: a stale upload would be thrown away at the end.
    if let Some(expected) = expected
        && expected != project.def.revision
    {
        return Err(ApiError::new(
            Code::RevisionMismatch,
            format!(
                "the project is at revision {}, not {expected}",
                project.def.revision
            ),
        ));
    }
    let declared =
        declared_types(options.types.as_deref(), "query.types").map_err(ApiError::validation)?;
    let defaults = standard_endpoints(options.endpoints.as_deref(), "query.endpoints")
        .map_err(|e| ApiError::validation(vec![e]))?;
    let forced = options
        .format
        .as_deref()
        .map(|name| format_named(name, "query.format"))
        .transpose()
        .map_err(|e| ApiError::validation(vec![e]))?;
    let settings = state.config.datasets;
    let store = state.changes.store().clone();
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let essence = content_type
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let now = now_ms();
    let loaded = if essence.as_deref() == Some("multipart/form-data") {
        let boundary = multer::parse_boundary(content_type.as_deref().unwrap_or(""))
            .map_err(|e| ApiError::new(Code::BadRequest, format!("a bad multipart body: {e}")))?;
        let mut form = multer::Multipart::new(request.into_body().into_data_stream(), boundary);
        let bad = |e: multer::Error| {
            ApiError::new(Code::BadRequest, format!("a bad multipart body: {e}"))
        };
        let field = loop {
            match form.next_field().await.map_err(bad)? {
                Some(field) if field.name() == Some("file") => break field,
                Some(_) => continue,
                None => {
                    return Err(ApiError::new(
                        Code::BadRequest,
                        "the multipart body has no `file` field with the dataset",
                    ));
                }
            }
        };
        let format = forced
            .or_else(|| {
                field
                    .content_type()
                    .and_then(|m| Format::from_content_type(m.as_ref()))
            })
            .or_else(|| field.file_name().and_then(Format::from_file_name))
            .ok_or_else(|| unsupported(field.content_type().map(|m| m.to_string())))?;
        let upload = Upload {
            project_id: project.def.id,
            name: dataset.clone(),
            format,
            declared,
        };
        receive(&*store, &upload, Box::pin(field), &settings, now).await?
    } else {
        let format = forced
            .or_else(|| essence.as_deref().and_then(Format::from_content_type))
            .ok_or_else(|| unsupported(essence.clone()))?;
        let upload = Upload {
            project_id: project.def.id,
            name: dataset.clone(),
            format,
            declared,
        };
        receive(
            &*store,
            &upload,
            request.into_body().into_data_stream(),
            &settings,
            now,
        )
        .await?
    };
    let endpoints = if defaults {
        match datasets::default_endpoints(
            &loaded,
            options.category.as_deref(),
            options.prefix.as_deref(),
        ) {
            Ok(endpoints) => endpoints,
            Err(errors) => {
                datasets::abandon(&*store, loaded.version).await;
                return Err(ApiError::validation(errors));
            }
        }
    } else {
        Vec::new()
    };
    let existed = project.datasets.get(&dataset).is_some();
    // The category columns the endpoints that will read it group by.
    let categories: Vec<String> = project
        .def
        .endpoints
        .iter()
        .map(|e| &**e)
        .chain(endpoints.iter())
        .filter_map(|e| e.spec.handler.dataset())
        .filter(|d| d.name == dataset)
        .filter_map(|d| d.category.clone())
        .collect();
    let loaded = std::sync::Arc::new(loaded);
    datasets::warm(&loaded, categories).await;
    let outcome = state
        .changes
        .put_dataset(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: options.dry_run,
            },
            loaded,
            endpoints,
        )
        .await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let project = &outcome.project;
    let body = project.datasets.get(&dataset).map(|d| answer(project, d));
    Ok(change_reply(&outcome, status, body))
}

/// Delete a dataset.
#[utoipa::path(
    delete,
    path = "/admin/projects/{owner}/{name}/datasets/{dataset}",
    tag = "datasets",
    params(DatasetPath, IfMatch, DryRun),
    responses(
        (status = 204, description = "The dataset is deleted",
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 200, description = "`?dry_run=true`: what would change", body = DryRunBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn delete_dataset(
    State(state): State<AppState>,
    principal: Principal,
    Path(DatasetPath {
        owner,
        name,
        dataset,
    }): Path<DatasetPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
) -> Result<Response, ApiError> {
    live_project(&state, &principal, &owner, &name)?;
    let outcome = state
        .changes
        .delete_dataset(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: dry.dry_run,
            },
            &dataset,
        )
        .await?;
    Ok(change_reply(&outcome, StatusCode::NO_CONTENT, Value::Null))
}

/// A dataset sent as a form.
#[derive(ToSchema)]
#[allow(dead_code, reason = "a schema only: the form is read field by field")]
pub(super) struct DatasetUpload {
    /// The table: CSV, a JSON array or JSON lines, by the field's content type or file name
    /// (or `?format=`).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The format an upload's options name: `csv`, `json`, `jsonl` (or `ndjson`); anything else
/// is an error at `field`.
pub(super) fn format_named(name: &str, field: &str) -> Result<Format, FieldError> {
    Format::from_name(name).ok_or_else(|| {
        FieldError::new(
            field,
            format!("`{name}` is not a format: csv, json or jsonl"),
        )
    })
}

/// Whether an upload's options ask for the standard endpoints: `default` yes, `none` or
/// nothing no; anything else is an error at `field`.
pub(super) fn standard_endpoints(given: Option<&str>, field: &str) -> Result<bool, FieldError> {
    match given {
        None | Some("none") => Ok(false),
        Some("default") => Ok(true),
        Some(other) => Err(FieldError::new(
            field,
            format!(
                "`{other}` is not a choice: `default` adds the standard endpoints, `none` none"
            ),
        )),
    }
}

/// The declared column types of an upload's options (`zip:text,age:integer`), the errors
/// at `field`.
pub(super) fn declared_types(
    given: Option<&str>,
    field: &str,
) -> Result<Vec<(String, ColumnType)>, Vec<FieldError>> {
    datasets::parse_types(given).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| FieldError::new(field, e.message))
            .collect()
    })
}

async fn receive<S, E>(
    store: &dyn crate::store::Store,
    upload: &Upload,
    body: S,
    settings: &datasets::UploadSettings,
    now: i64,
) -> Result<LoadedDataset, ApiError>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    datasets::receive(store, upload, body, settings, now)
        .await
        .map_err(upload_error)
}

/// The answer to an upload that was not taken: a bad row is a 422 naming its column (or
/// `body`), and the rest as for any body.
pub(super) fn upload_error(error: UploadError) -> ApiError {
    match error {
        UploadError::Import(error) => {
            let field = error.column.clone().unwrap_or_else(|| "body".to_owned());
            let message = error.to_string();
            ApiError::validation(vec![FieldError::new(field, message)])
        }
        UploadError::TooLarge(limit) => ApiError::payload_too_large(limit),
        UploadError::Stalled(after) => ApiError::body_timeout(after),
        UploadError::Body(message) => ApiError::new(Code::BadRequest, message),
        UploadError::Store(error) => crate::changes::ChangeError::Store(error).into(),
        UploadError::Internal => {
            tracing::error!("a dataset import thread ended unexpectedly");
            ApiError::new(Code::Internal, "internal error")
        }
        UploadError::Background(error) => ApiError::internal(&error),
    }
}

fn unsupported(given: Option<String>) -> ApiError {
    let wanted = "text/csv, application/json or application/x-ndjson (or multipart/form-data with a `file` field), or say the format with ?format=csv|json|jsonl";
    match given {
        Some(given) => ApiError::new(
            Code::UnsupportedMediaType,
            format!("this route takes {wanted}, not `{given}`"),
        ),
        None => ApiError::new(
            Code::UnsupportedMediaType,
            format!("the body has no content type; send {wanted}"),
        ),
    }
}

fn not_found(dataset: &str) -> ApiError {
    ApiError::new(
        Code::DatasetNotFound,
        format!("no dataset `{dataset}` in this project"),
    )
}
