//! Black-box tests of the real server over HTTP. One binary; one file per feature.
//! Every test starts its own server through `helpers::spawn_app()` (port 0, fresh SQLite).
//!
//! Where new tests go:
//! - `health`: /health, /ready, root, request ids.
//! - `accounts`: register, login, logout, me, API tokens, registration modes, admin bootstrap.
//! - `projects`: project create/list/read/update/replace/delete and ownership.
//! - `project_env`: the `staging` mode and a project's `env` values: set, shown, validated,
//!   stored, read by its script, kept out of logs.
//! - `endpoints`: endpoint CRUD through the admin API and what the project then serves.
//! - `routing`: the request path: templates, 404/405, HEAD, trailing slashes, mock responses.
//! - `revisions`: revisions, ETag, If-Match, dry runs, change history.
//! - `bodies`: request bodies sent to project endpoints.
//! - `connections`: connection limits (timeouts, the connection cap, head size) and
//!   keep-alive on raw sockets.
//! - `errors`: malformed, invalid, oversized and mistyped input.
//! - `swap`: changes under load: no failed request, never a mixed answer.
//! - `changes`: the change path under stress: dropped clients, broken projects, changes to
//!   different projects side by side.
//! - `quotas`: projects per user, endpoints per project, pattern siblings.
//! - `login_limits`: logins under load: bounded hashing (503), failed-login limits (429),
//!   the API token quota.
//! - `durability`: restart, kill -9 right after an acknowledged change, SIGTERM, broken
//!   stored projects.
//! - `stats`: `/stats` and project stats: counts, percentiles, resets, survival across edits.
//! - `logs`: the binary's logs: JSON lines, the access log, redaction, `--access-log off`.
//! - `metrics`: `/metrics`, parsed as Prometheus text.
//! - `explain`: `/admin/explain`: hits, wrong methods, near misses.
//! - `journal`: the request journal: entries, the cap, truncation, filters, counts.
//! - `proxy`: backends and proxy endpoints against real upstreams (`upstream` starts them):
//!   forwarding, streaming, errors, balancing, passive health.
//! - `proxy_allow`: `--proxy-allow`, where non-admins' backends may send.
//! - `gateway`: gateway mode from a YAML file: routing, the default response, start errors,
//!   live reload, atomic swaps, route order.
//! - `docker`: Docker backends against the real engine (`scripts/test` provides it).
//! - `health_checks`: active health checks of backends (`health_check`): targets left out
//!   and brought back by their probes, state kept across edits, gateway files, logs,
//!   validation.
//! - `scripts`: script handlers: upload, routes beside endpoints, atomic swaps, the sandbox's
//!   limits, `kv`.
//! - `demo`: `serve --demo` data.
//! - `dataset_cli`: `switchyard dataset import`, the binary against a server: the summary,
//!   errors and their hints.
//! - `docs`: docs/errors.md and the committed --help agree with the code.
//! - `validation`: request bodies checked for every handler kind (a proxy forwards only
//!   matching ones), and answers checked against documented responses in development mode.
//! - `push`: `PUT …/folder`, a whole project folder (definition, script, datasets) pushed as
//!   one multipart request and applied as one revision.
//! - `project_cli`: the project-folder commands (`new`, `rename`, `add-router`, `validate`,
//!   `completions`), the real binary in temporary directories.
//! - `platform_openapi`: `/openapi.json`, the platform API's own OpenAPI document: served,
//!   valid for `openapi-spec-validator`, and fitting what the routes really answer.
//! - `swagger_ui`: the docs pages in headless Chromium (`scripts/test` provides it): Swagger
//!   UI renders a project's operations and the platform's, in the DOM and a screenshot.

mod helpers;
mod upstream;

mod accounts;
mod auth;
mod bodies;
mod changes;
mod connections;
mod dataset_cli;
mod datasets;
mod demo;
mod docker;
mod docs;
mod durability;
mod endpoints;
mod errors;
mod explain;
mod gateway;
mod health;
mod health_checks;
mod import;
mod journal;
mod jwt;
mod login_limits;
mod logs;
mod metrics;
mod openapi;
mod platform_openapi;
mod project_cli;
mod project_env;
mod project_push;
mod project_serve;
mod projects;
mod proxy;
mod proxy_allow;
mod push;
mod quotas;
mod revisions;
mod routing;
mod scripts;
mod stats;
mod swagger_ui;
mod swap;
mod validation;
