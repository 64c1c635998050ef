//! OpenAPI: each project's own document and its docs pages (`document`, `pages`), the
//! platform's pages, and (later in this module) importing documents into mocks and
//! validating requests against an endpoint's schemas. docs/openapi.md is the user's side.

pub mod document;
pub mod pages;
pub mod schema;

pub use document::{DocsCache, Document};
pub use pages::{Page, PagesConfig};
