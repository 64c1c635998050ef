//! OpenAPI: each project's own document and its docs pages (`document`, `pages`), import of
//! OpenAPI 3.0 and 3.1 documents into mock endpoints (`import`), request validation against
//! an endpoint's schemas (`validate`), and the schema toolkit they stand on (`schema`: pure
//! functions on `serde_json::Value`, no IO). docs/openapi.md is the user's side.

pub mod document;
pub mod import;
pub mod pages;
pub mod schema;
pub mod validate;

pub use document::{DocsCache, Document};
pub use pages::{Page, PagesConfig};
