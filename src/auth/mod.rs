//! Per-project auth: the policies a project's requests are checked against on the request
//! head (synchronously, before the handler). `jwt` verifies bearer JSON Web Tokens.

pub mod jwt;
