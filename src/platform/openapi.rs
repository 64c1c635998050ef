//! `GET /openapi.json`: the platform API's own OpenAPI 3.1 document, generated from the
//! code with `utoipa` — never written by hand.
//!
//! Each platform handler carries a `#[utoipa::path(...)]` attribute (method, path, tag,
//! parameters, body, answers) and the types it reads and writes derive `ToSchema`;
//! [`PlatformApi`] gathers them with the parts that belong to no one handler: the bearer
//! security scheme, the error schema (its codes taken from the [`Code`] table) and the error
//! answers shared by every route. The JSON text is built once, on first use (with two
//! touches `utoipa` leaves to do, in [`finish`]), and served as it is. A unit test in
//! `platform` checks that every route of `platform::router` is in the document and nothing
//! else; `tests/api/platform_openapi.rs` validates the document with
//! `openapi-spec-validator` and checks real answers against its schemas.

use std::borrow::Cow;
use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::error::{Code, FieldError};

/// The platform API's document: every route of `platform::router`, by its handler.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchyard platform API",
        version = env!("CARGO_PKG_VERSION"),
        description = "The API of a Switchyard node itself: accounts and API tokens \
            (`/auth`), projects and everything in them (`/admin`), and the node's health and \
            traffic. Projects' own APIs, under `/{owner}/{project}`, are not in this document.\n\n\
            Send a login session or an API token as `Authorization: Bearer …`. Bodies are JSON \
            unless a route says otherwise. Every error answer is the `Error` object, with the \
            right status. Every change answers with the project's new revision in the body and \
            as `ETag`; `If-Match` makes it conditional and `?dry_run=true` only shows what it \
            would do.",
    ),
    paths(
        super::root,
        super::health,
        super::ready,
        openapi_json,
        super::pages::swagger_ui,
        super::pages::redoc,
        super::pages::asset,
        super::stats::instance,
        super::stats::reset_instance,
        super::stats::metrics,
        super::auth::register,
        super::auth::login,
        super::auth::logout,
        super::auth::me,
        super::auth::list_tokens,
        super::auth::create_token,
        super::auth::delete_token,
        super::admin::list_projects,
        super::admin::create_project,
        super::admin::get_project,
        super::admin::replace_project,
        super::admin::update_project,
        super::admin::delete_project,
        super::push::push_folder,
        super::admin::list_endpoints,
        super::admin::create_endpoint,
        super::admin::get_endpoint,
        super::admin::replace_endpoint,
        super::admin::patch_endpoint,
        super::admin::delete_endpoint,
        super::admin::list_changes,
        super::backends::list_backends,
        super::backends::get_backend,
        super::backends::put_backend,
        super::backends::delete_backend,
        super::script::get_script,
        super::script::put_script,
        super::script::delete_script,
        super::datasets::list_datasets,
        super::datasets::get_dataset,
        super::datasets::get_dataset_file,
        super::datasets::put_dataset,
        super::datasets::delete_dataset,
        super::import::import,
        super::keys::list_keys,
        super::keys::create_key,
        super::keys::delete_key,
        super::explain::explain,
        super::journal::list,
        super::journal::clear,
        super::stats::project,
        super::stats::reset_project,
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadRequest,
            Unauthorized,
            LoginFailed,
            Forbidden,
            NotFound,
            RequestTimeout,
            Conflict,
            PreconditionFailed,
            PayloadTooLarge,
            UnsupportedMediaType,
            ValidationFailed,
            ImportRefused,
            TooManyRequests,
            ServiceUnavailable,
        ),
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Accounts, logins and the caller's long-lived API tokens."),
        (name = "projects", description = "Projects: create, read, change settings, replace \
            whole, delete; their change history."),
        (name = "endpoints", description = "A project's endpoints (mock, proxy, dataset), and \
            which endpoint would answer a request."),
        (name = "script", description = "A project's JavaScript app, whose routes it serves \
            beside its endpoints."),
        (name = "backends", description = "A project's backends: the upstream groups its proxy \
            endpoints forward to."),
        (name = "datasets", description = "A project's datasets: uploaded tables its dataset \
            endpoints query."),
        (name = "keys", description = "A project's API keys, for its `api_key` auth policy."),
        (name = "stats", description = "Traffic counts and latency: the node's, a project's, \
            and the Prometheus exposition."),
        (name = "journal", description = "A project's recent requests."),
        (name = "health", description = "Liveness, readiness and the service's root."),
        (name = "docs", description = "This document."),
    ),
)]
pub struct PlatformApi;

/// The document as JSON text, built on first use and kept.
pub fn document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        let document = serde_json::to_value(PlatformApi::openapi())
            .map(finish)
            .and_then(|document| serde_json::to_string(&document));
        document.unwrap_or_else(|error| {
            // A document of plain strings and maps always serialises; if it ever did not,
            // the answer is an empty object, which no validator accepts.
            tracing::error!(%error, "the platform's OpenAPI document does not serialise");
            "{}".to_owned()
        })
    });
    &DOCUMENT
}

/// What `utoipa` leaves to do on the JSON: a flattened type whose schema refuses unknown
/// fields (`deny_unknown_fields` gives `additionalProperties: false`) is merged with the
/// fields beside it into one object, since `allOf` would refuse those fields; and rustdoc
/// links in descriptions (``[`Name`]``) become plain code.
fn finish(mut document: Value) -> Value {
    let schemas = document["components"]["schemas"].clone();
    merge_closed_all_of(&mut document, &schemas);
    plain_descriptions(&mut document);
    document
}

/// Replaces, anywhere in `value`, an `allOf` of object schemas one of which is closed by
/// one object with all their properties.
fn merge_closed_all_of(value: &mut Value, schemas: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(parts)) = map.get("allOf")
                && let Some(merged) = merged_object(parts, schemas)
            {
                map.remove("allOf");
                for (key, part) in merged {
                    if key != "description" || !map.contains_key("description") {
                        map.insert(key, part);
                    }
                }
            }
            for part in map.values_mut() {
                merge_closed_all_of(part, schemas);
            }
        }
        Value::Array(items) => {
            for item in items {
                merge_closed_all_of(item, schemas);
            }
        }
        _ => {}
    }
}

/// The one object `parts` describe together, if one of them is closed and each is a plain
/// object schema (directly or by `$ref`).
fn merged_object(parts: &[Value], schemas: &Value) -> Option<serde_json::Map<String, Value>> {
    let resolved: Vec<&Value> = parts
        .iter()
        .map(|part| match part["$ref"].as_str() {
            Some(reference) => reference
                .strip_prefix("#/components/schemas/")
                .map(|name| &schemas[name]),
            None => Some(part),
        })
        .collect::<Option<_>>()?;
    let plain = |part: &&Value| {
        part["type"] == "object"
            && part.get("allOf").is_none()
            && part.get("oneOf").is_none()
            && part.get("anyOf").is_none()
    };
    let closed = |part: &&Value| part["additionalProperties"] == Value::Bool(false);
    if !resolved.iter().all(plain) || !resolved.iter().any(closed) {
        return None;
    }
    let mut properties = serde_json::Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in &resolved {
        if let Some(fields) = part["properties"].as_object() {
            properties.extend(fields.clone());
        }
        for name in part["required"].as_array().into_iter().flatten() {
            if !required.contains(name) {
                required.push(name.clone());
            }
        }
    }
    let mut merged = serde_json::Map::new();
    merged.insert("type".into(), "object".into());
    if let Some(description) = resolved.iter().find_map(|part| part.get("description")) {
        merged.insert("description".into(), description.clone());
    }
    if !required.is_empty() {
        merged.insert("required".into(), Value::Array(required));
    }
    merged.insert("properties".into(), Value::Object(properties));
    if resolved.iter().all(closed) {
        merged.insert("additionalProperties".into(), Value::Bool(false));
    }
    Some(merged)
}

/// Turns rustdoc links (``[`Name`]``) in every `description` into plain code (`` `Name` ``).
fn plain_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, part) in map.iter_mut() {
                match part {
                    Value::String(text) if key == "description" => *text = unlink(text),
                    _ => plain_descriptions(part),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(plain_descriptions),
        _ => {}
    }
}

/// ``[`Name`]`` to `` `Name` `` where `Name` is one word.
fn unlink(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("[`") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find("`]") {
            Some(end)
                if end > 0
                    && !after[..end].contains(|c: char| c.is_whitespace() || c == '`')
                    && !after[end + 2..].starts_with('(') =>
            {
                out.push('`');
                out.push_str(&after[..end]);
                out.push('`');
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str("[`");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// This document: the platform API in OpenAPI 3.1, generated from the code.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "docs",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of the platform API",
            content_type = "application/json", body = Object),
    ),
)]
pub(super) async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document(),
    )
        .into_response()
}

/// The `bearer` security scheme the routes that need a login name.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A login session (`POST /auth/login`'s `access_token`) or a long-lived \
                         API token (`POST /auth/tokens`'s `token`), as `Authorization: Bearer …`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The `200` answers of changes that answer `200` when they are made too: the resource as
/// changed, or with `?dry_run=true` what the change would do. Schemas only: the handlers
/// write one or the other.
macro_rules! or_dry_run {
    ($($name:ident => $what:ty,)*) => {
        $(
            /// The resource as changed, or with `?dry_run=true` what the change would do.
            #[derive(ToSchema)]
            #[serde(untagged)]
            #[allow(dead_code, reason = "a schema only: the handlers write one or the other")]
            pub(super) enum $name {
                Done($what),
                DryRun(super::admin::DryRunBody),
            }
        )*
    };
}

or_dry_run! {
    ProjectOrDryRun => super::admin::ProjectAnswer<'static>,
    EndpointOrDryRun => super::admin::EndpointAnswer<'static>,
    BackendOrDryRun => crate::model::Backend,
    DatasetOrDryRun => super::datasets::DatasetAnswer<'static>,
    ScriptOrDryRun => super::script::ScriptAnswer,
}

/// The body of every error answer, as `error::render` writes it:
/// `{"error": {"code", "message", "request_id", "details"?}}`.
pub struct ErrorBody;

impl PartialSchema for ErrorBody {
    fn schema() -> RefOr<Schema> {
        let codes = Code::ALL
            .iter()
            .map(|code| {
                format!(
                    "- `{}` ({}): {}",
                    code.as_str(),
                    code.status().as_u16(),
                    code.meaning()
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let code = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Code::ALL.iter().map(|code| code.as_str())))
            .description(Some(format!(
                "What went wrong, as a stable snake_case name; each is always sent with the \
                 same status:\n\n{codes}"
            )));
        let details = ArrayBuilder::new()
            .items(Ref::from_schema_name(FieldError::name()))
            .description(Some(
                "For `validation_failed` only: each bad field of the body or parameters.",
            ));
        let inner = ObjectBuilder::new()
            .property("code", code)
            .required("code")
            .property(
                "message",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("What went wrong, as a sentence.")),
            )
            .required("message")
            .property(
                "request_id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("The request's id, also sent as `x-request-id`.")),
            )
            .required("request_id")
            .property("details", details);
        ObjectBuilder::new()
            .description(Some(
                "Every error Switchyard answers, with the status its `code` goes with.",
            ))
            .property("error", inner)
            .required("error")
            .into()
    }
}

impl ToSchema for ErrorBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Error")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((FieldError::name().into_owned(), FieldError::schema()));
        <FieldError as ToSchema>::schemas(schemas);
    }
}

/// The error answers routes share, one per status: each lists the codes the platform API
/// answers with that status, with their meanings, from the [`Code`] table.
macro_rules! error_responses {
    ($($name:ident => ($status:literal, $what:literal, [$($code:ident),+ $(,)?]),)*) => {
        $(
            #[doc = $what]
            pub struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                    (stringify!($name), error_response($what, &[$(Code::$code),+]).into())
                }
            }
        )*

        /// Every shared error answer: its name, status and codes.
        #[cfg(test)]
        pub const ERROR_RESPONSES: &[(&str, u16, &[Code])] =
            &[$((stringify!($name), $status, &[$(Code::$code),+])),*];
    };
}

error_responses! {
    BadRequest => (400, "The request is malformed.", [BadRequest, MalformedJson]),
    Unauthorized => (401, "No valid bearer token.", [Unauthorized]),
    LoginFailed => (401, "Unknown user or wrong password.", [InvalidCredentials]),
    Forbidden => (403, "The caller may not do this, or a quota would be exceeded.",
        [Forbidden, RegistrationClosed, QuotaExceeded]),
    NotFound => (404, "No such resource.", [NotFound, ProjectNotFound, EndpointNotFound,
        BackendNotFound, TokenNotFound, ScriptNotFound, DatasetNotFound, KeyNotFound]),
    RequestTimeout => (408, "The body did not arrive in time; the connection is closed.",
        [RequestTimeout]),
    Conflict => (409, "The change conflicts with the project as it is.", [UsernameTaken,
        ProjectExists, RouteConflict, EndpointExists, KeyExists, BackendInUse, DatasetMissing,
        ProjectBroken, Conflict]),
    PreconditionFailed => (412, "`If-Match` named a revision that is no longer current.",
        [RevisionMismatch]),
    PayloadTooLarge => (413, "The body is larger than the limit.", [PayloadTooLarge]),
    UnsupportedMediaType => (415, "The body's content type is not one this route takes.",
        [UnsupportedMediaType]),
    ValidationFailed => (422, "The body or parameters are well-formed but wrong; `details` \
        names each bad field.", [ValidationFailed]),
    ImportRefused => (422, "The options are wrong (`details` names each), or the body is not \
        an OpenAPI 3.0 or 3.1 document.", [ValidationFailed, InvalidDocument]),
    TooManyRequests => (429, "Too many failed logins; `Retry-After` says when to try again.",
        [TooManyRequests]),
    ServiceUnavailable => (503, "The node cannot answer now; retry (after `Retry-After` if \
        given).", [StoreUnavailable, ServerBusy]),
}

/// A shared error answer: `what`, then each code with its meaning; the body is `Error`.
fn error_response(what: &str, codes: &[Code]) -> utoipa::openapi::Response {
    let codes = codes
        .iter()
        .map(|code| format!("- `{}`: {}", code.as_str(), code.meaning()))
        .collect::<Vec<_>>()
        .join("\n");
    ResponseBuilder::new()
        .description(format!("{what}\n\n{codes}"))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document_value() -> serde_json::Value {
        serde_json::from_str(document()).expect("the document is JSON")
    }

    #[test]
    fn the_document_is_openapi_3_1_with_its_title_and_version() {
        let doc = document_value();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "Switchyard platform API");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn the_error_schema_lists_every_code_of_the_table() {
        let doc = document_value();
        let listed: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]
            ["properties"]["code"]["enum"]
            .as_array()
            .expect("an enum of codes")
            .iter()
            .filter_map(|code| code.as_str())
            .collect();
        let table: Vec<&str> = Code::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(listed, table);
    }

    #[test]
    fn the_error_schema_has_the_fields_render_writes() {
        let doc = document_value();
        let schema = &doc["components"]["schemas"]["Error"]["properties"]["error"];
        let error = crate::error::ApiError::validation(vec![FieldError::new("name", "bad")]);
        let response = crate::error::render(&error, "req-1");
        let crate::body::Body::Full(Some(bytes)) = response.into_body() else {
            panic!("error bodies are full");
        };
        let written: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let written = written["error"].as_object().expect("an error object");
        let documented = schema["properties"].as_object().unwrap();
        for key in written.keys() {
            assert!(documented.contains_key(key), "`{key}` is not documented");
        }
        for key in schema["required"].as_array().unwrap() {
            assert!(
                written.contains_key(key.as_str().unwrap()),
                "{key} is required but not written"
            );
        }
        let detail = &doc["components"]["schemas"]["FieldError"]["properties"];
        for key in written["details"][0].as_object().unwrap().keys() {
            assert!(
                detail.get(key).is_some(),
                "details' `{key}` is not documented"
            );
        }
    }

    #[test]
    fn rustdoc_links_become_code_and_other_brackets_stay() {
        assert_eq!(
            unlink("at most [`MAX_DELAY_MS`]."),
            "at most `MAX_DELAY_MS`."
        );
        assert_eq!(unlink("`[a-z0-9][a-z0-9_-]*`"), "`[a-z0-9][a-z0-9_-]*`");
        assert_eq!(unlink("[`a b`] and [`x`](url)"), "[`a b`] and [`x`](url)");
    }

    #[test]
    fn a_flattened_closed_schema_is_merged_with_its_neighbours() {
        let schemas = serde_json::json!({
            "Closed": {"type": "object", "required": ["a"],
                       "properties": {"a": {"type": "string"}}, "additionalProperties": false},
            "Open": {"type": "object", "properties": {"c": {"type": "string"}}},
        });
        let mut closed = serde_json::json!({"allOf": [
            {"$ref": "#/components/schemas/Closed"},
            {"type": "object", "required": ["b"], "properties": {"b": {"type": "integer"}}},
        ], "description": "outer"});
        merge_closed_all_of(&mut closed, &schemas);
        assert_eq!(
            closed,
            serde_json::json!({"description": "outer", "type": "object",
                "required": ["a", "b"],
                "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}})
        );
        let mut open = serde_json::json!({"allOf": [
            {"$ref": "#/components/schemas/Open"},
            {"type": "object", "properties": {"b": {"type": "integer"}}},
        ]});
        let before = open.clone();
        merge_closed_all_of(&mut open, &schemas);
        assert_eq!(open, before, "an allOf of open schemas stays");
        let doc = document_value();
        assert!(
            !document().contains("\"allOf\":[{\"$ref\":\"#/components/schemas/EndpointSpec\""),
            "the endpoint answer is one object"
        );
        assert_eq!(doc["components"]["schemas"]["Endpoint"]["type"], "object");
    }

    #[test]
    fn operations_have_unique_ids_and_one_line_summaries() {
        let doc = document_value();
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap_or("");
                assert!(
                    ids.insert(id.to_owned()),
                    "{method} {path}: operationId `{id}` twice"
                );
                let summary = operation["summary"].as_str().unwrap_or("");
                assert!(
                    !summary.is_empty() && !summary.contains('\n') && summary.len() <= 100,
                    "{method} {path}: the summary (the doc comment's first paragraph) should \
                     be one line of at most 100 bytes: {summary:?}"
                );
                assert!(
                    operation["tags"]
                        .as_array()
                        .is_some_and(|tags| tags.len() == 1),
                    "{method} {path} has one tag"
                );
            }
        }
    }

    #[test]
    fn each_shared_error_answer_lists_codes_of_its_own_status() {
        let doc = document_value();
        for (name, status, codes) in ERROR_RESPONSES {
            for code in *codes {
                assert_eq!(
                    code.status().as_u16(),
                    *status,
                    "{name} lists `{}`, a code of another status",
                    code.as_str()
                );
            }
            assert!(
                doc["components"]["responses"][name].is_object(),
                "{name} is not in the document's components"
            );
        }
    }

    #[test]
    fn every_error_status_a_route_documents_has_a_body() {
        // Any 4xx or 5xx of any operation is answered with the error schema.
        let doc = document_value();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, answer) in operation["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        let reference = answer["$ref"].as_str().unwrap_or("");
                        let schema = answer["content"]["application/json"]["schema"]["$ref"]
                            .as_str()
                            .unwrap_or("");
                        assert!(
                            reference.starts_with("#/components/responses/")
                                || schema == "#/components/schemas/Error",
                            "{method} {path} answers {status} without the error schema"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn routes_that_need_a_login_say_so_and_answer_401() {
        let doc = document_value();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let secured = operation["security"].as_array().is_some_and(|list| {
                    list.iter()
                        .any(|requirement| requirement.get("bearer").is_some())
                });
                let has_401 =
                    operation["responses"]["401"]["$ref"] == "#/components/responses/Unauthorized";
                assert_eq!(
                    secured, has_401,
                    "{method} {path}: a bearer route answers 401 unauthorized, and only those"
                );
            }
        }
    }
}
