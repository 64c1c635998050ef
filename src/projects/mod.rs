//! Project folders: a project kept as files a team can review, diff and version.
//!
//! ```text
//! shop/
//!   switchyard.yaml      the manifest: name, mode, description, auth, endpoints, backends, datasets…
//!   app.js               the project's script, if it has one
//!   routers/orders.yaml  a router: endpoints under a prefix (/orders), one file each
//!   data/iris.csv        dataset files the manifest lists
//!   .env                 APP_NAME, MODE and other values
//! ```
//!
//! [`read`] turns a folder into what the admin API's whole project definition says, with
//! the file and line each part came from ([`Folder`]); [`scaffold`] writes new folders
//! from templates, renames them and adds routers. The format is documented in
//! docs/projects.md; [`schema`] describes the manifest and router files for editors
//! (`switchyard schema`, committed in docs/schema/).

mod folder;
pub mod host;
pub mod scaffold;
pub mod schema;

pub use folder::{DatasetFile, Folder, FolderError, Origin, Overrides, Router, read, read_with};

/// The manifest's file name.
pub const MANIFEST: &str = "switchyard.yaml";
/// The script's file name.
pub const SCRIPT: &str = "app.js";
/// The folder of routers.
pub const ROUTERS: &str = "routers";
/// The folder of dataset files, by convention.
pub const DATA: &str = "data";
/// The file of values.
pub const ENV_FILE: &str = ".env";

/// Router names: 1–64 characters of `[a-z0-9][a-z0-9_-]*` (they name a file and a prefix).
pub fn check_router_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !first_ok
        || name.len() > 64
        || !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "`{name}` is not a router name: 1 to 64 characters of a-z, 0-9, `_` and `-`, starting with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
