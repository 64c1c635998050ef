//! OpenAPI: reading real-world OpenAPI 3.0 and 3.1 documents. `schema` turns their Schema
//! Objects into JSON Schema 2020-12 for validation and into example values for mocks.

pub mod schema;
