//! The paths `switchyard serve --projects` answers itself: gateway mode's `/health`,
//! `/ready`, `/stats` and `/metrics`, and one OpenAPI document of every project served
//! (`/openapi.json`, with Swagger UI at `/docs` and Redoc at `/redoc`).
//!
//! The combined document is made from each project's own document (as its
//! `/{name}/openapi.json` gives it; projects in `production` mode show none): every path is
//! prefixed with the project's mount, every operation is tagged with the project's name and
//! its `operationId` prefixed by it (`shop.listOrders`), and the project's components are
//! renamed the same way (`shop.Order`), with every `$ref` and security requirement that
//! names them.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::model::Mode;
use crate::observe::Telemetry;
use crate::openapi::{Page, PagesConfig, pages};
use crate::routing::{CompiledProject, Routes};

#[derive(Clone)]
struct FoldersState {
    routes: Arc<Routes>,
    pages: Arc<PagesConfig>,
}

/// The routes of a node serving project folders.
pub fn router(routes: Arc<Routes>, telemetry: Arc<Telemetry>, pages: Arc<PagesConfig>) -> Router {
    let docs = Router::new()
        .route("/openapi.json", get(document))
        .route("/docs", get(swagger_ui))
        .route("/redoc", get(redoc))
        .route("/docs/assets/{file}", get(super::pages::asset))
        .with_state(FoldersState {
            routes: routes.clone(),
            pages,
        });
    super::gateway::router(routes, telemetry).merge(docs)
}

/// The routes of a node serving one project folder at `/`: only the docs pages' assets
/// (the project answers everything else, its `/docs` included).
pub fn assets_router() -> Router {
    Router::new()
        .route("/docs/assets/{file}", get(super::pages::asset))
        .fallback(super::fallback)
}

async fn document(State(state): State<FoldersState>) -> Response {
    let table = state.routes.load();
    let mut projects: Vec<&Arc<CompiledProject>> = table.projects().collect();
    projects.sort_by(|a, b| a.def.name.cmp(&b.def.name));
    axum::Json(combined(&projects)).into_response()
}

async fn swagger_ui(State(state): State<FoldersState>, headers: HeaderMap) -> Response {
    page(&state, &headers, Page::SwaggerUi)
}

async fn redoc(State(state): State<FoldersState>, headers: HeaderMap) -> Response {
    page(&state, &headers, Page::Redoc)
}

fn page(state: &FoldersState, headers: &HeaderMap, which: Page) -> Response {
    let prefix = pages::forwarded_prefix(headers);
    pages::page(which, TITLE, "/openapi.json", prefix, &state.pages)
        .map(axum::body::Body::new)
        .into_response()
}

const TITLE: &str = "Switchyard projects";

/// The HTTP methods an OpenAPI path item may hold operations for.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One document of `projects` (in this order), as the module's doc says.
fn combined(projects: &[&Arc<CompiledProject>]) -> Value {
    let mut paths = Map::new();
    let mut components: Map<String, Value> = Map::new();
    let mut tags = Vec::new();
    for project in projects {
        if project.def.mode == Mode::Production {
            continue;
        }
        let mount = project.def.mount();
        let text = project.docs.get(project).text(None, &mount);
        let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(&text) else {
            continue;
        };
        let name = project.def.name.as_str();
        let renamed = |component: &str| format!("{name}.{component}");
        let mut description = project.def.description.clone();
        if description.is_empty() {
            description = format!("The project at {mount}/");
        }
        tags.push(json!({"name": name, "description": description}));
        let security = doc.remove("security");
        if let Some(Value::Object(kinds)) = doc.remove("components") {
            for (kind, entries) in kinds {
                let Value::Object(entries) = entries else {
                    continue;
                };
                let target = components
                    .entry(kind)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(target) = target {
                    for (key, mut value) in entries {
                        rename_refs(&mut value, name);
                        target.insert(renamed(&key), value);
                    }
                }
            }
        }
        let Some(Value::Object(items)) = doc.remove("paths") else {
            continue;
        };
        for (path, mut item) in items {
            rename_refs(&mut item, name);
            if let Value::Object(item) = &mut item {
                for method in METHODS {
                    if let Some(Value::Object(operation)) = item.get_mut(method) {
                        prefix_operation(operation, name, method, &path, security.as_ref());
                    }
                }
            }
            paths.insert(format!("{mount}{path}"), item);
        }
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": "1",
            "description": "Every project this node serves from its folder, each under its own prefix.",
        },
        "tags": tags,
        "paths": paths,
    });
    if !components.is_empty() {
        doc["components"] = Value::Object(components);
    }
    doc
}

/// Gives an operation of project `name` its tag, a unique `operationId`, and its security
/// requirements (the document's, when it has none of its own) under the renamed schemes.
fn prefix_operation(
    operation: &mut Map<String, Value>,
    name: &str,
    method: &str,
    path: &str,
    security: Option<&Value>,
) {
    let id = match operation.get("operationId").and_then(Value::as_str) {
        Some(id) => format!("{name}.{id}"),
        None => format!("{name}.{method}{}", path.replace(['/', '{', '}'], "_")),
    };
    operation.insert("operationId".into(), Value::String(id));
    let mut tags = vec![Value::String(name.to_owned())];
    if let Some(Value::Array(own)) = operation.remove("tags") {
        tags.extend(own);
    }
    operation.insert("tags".into(), Value::Array(tags));
    let requirements = operation.remove("security").or_else(|| security.cloned());
    if let Some(Value::Array(requirements)) = requirements {
        let renamed = requirements
            .into_iter()
            .map(|requirement| match requirement {
                Value::Object(schemes) => Value::Object(
                    schemes
                        .into_iter()
                        .map(|(scheme, scopes)| (format!("{name}.{scheme}"), scopes))
                        .collect(),
                ),
                other => other,
            })
            .collect();
        operation.insert("security".into(), Value::Array(renamed));
    }
}

/// Points every `$ref` to a component at its renamed copy.
fn rename_refs(value: &mut Value, name: &str) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "$ref"
                    && let Value::String(target) = value
                    && let Some(rest) = target.strip_prefix("#/components/")
                    && let Some((kind, component)) = rest.split_once('/')
                {
                    *target = format!("#/components/{kind}/{name}.{component}");
                } else {
                    rename_refs(value, name);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, name)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_to_components_are_renamed_and_others_kept() {
        let mut value = json!({
            "a": {"$ref": "#/components/schemas/Order"},
            "b": [{"$ref": "#/components/responses/Missing"}],
            "c": {"$ref": "https://example.test/schema.json"},
        });
        rename_refs(&mut value, "shop");
        assert_eq!(
            value,
            json!({
                "a": {"$ref": "#/components/schemas/shop.Order"},
                "b": [{"$ref": "#/components/responses/shop.Missing"}],
                "c": {"$ref": "https://example.test/schema.json"},
            })
        );
    }

    #[test]
    fn operations_get_the_project_tag_an_id_and_renamed_security() {
        let mut operation = Map::new();
        operation.insert("tags".into(), json!(["orders"]));
        let security = json!([{"bearer": []}]);
        prefix_operation(
            &mut operation,
            "shop",
            "get",
            "/orders/{id}",
            Some(&security),
        );
        assert_eq!(operation["operationId"], "shop.get_orders__id_");
        assert_eq!(operation["tags"], json!(["shop", "orders"]));
        assert_eq!(operation["security"], json!([{"shop.bearer": []}]));
        let mut named = Map::new();
        named.insert("operationId".into(), json!("listOrders"));
        named.insert("security".into(), json!([]));
        prefix_operation(&mut named, "shop", "get", "/orders", Some(&security));
        assert_eq!(named["operationId"], "shop.listOrders");
        // An operation that says it needs nothing keeps saying so.
        assert_eq!(named["security"], json!([]));
    }
}
