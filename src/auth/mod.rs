//! Per-project auth: the rules a project sets for who may call its endpoints and how
//! often, checked synchronously on the request head in the pipeline's policy stage.
//! [`cors`] answers CORS preflights and adds the CORS headers to answers; [`limit`] keeps
//! rate limits per project, per caller or per client address.

pub mod cors;
pub mod limit;
