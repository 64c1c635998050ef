//! Switchyard: many small HTTP APIs in one fast binary, changed at runtime.
//!
//! Modules in reading order: how a node starts (`cli`, `config`, `server`, and `gateway`
//! for gateway mode; `remote` is the CLI's client of a running server), how a request is
//! answered (`routing`, `pipeline`, `handlers`, `backends`, `script`, `dataset`, `body`,
//! `observe`), how a change is made (`platform`, `changes`, `scripts`, `datasets`, `store`),
//! and
//! the vocabulary all of them share (`model`, `accounts`, `auth`, `error`).
//! See ARCHITECTURE.md for the map.

pub mod cli;
pub mod config;
pub(crate) mod gateway;
pub(crate) mod remote;
pub mod server;

pub(crate) mod backends;
pub(crate) mod body;
pub mod dataset;
pub(crate) mod handlers;
pub(crate) mod observe;
pub mod openapi;
pub(crate) mod pipeline;
pub(crate) mod routing;
pub mod script;

pub(crate) mod background;
pub(crate) mod changes;
pub(crate) mod datasets;
pub(crate) mod demo;
pub(crate) mod platform;
pub mod projects;
pub(crate) mod scripts;
pub mod store;

pub(crate) mod accounts;
pub mod auth;
pub mod error;
pub(crate) mod model;

/// Test hook for the change path; see `config::Config::commit_gate`.
#[doc(hidden)]
pub use changes::CommitGate;
