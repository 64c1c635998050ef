//! `switchyard login`: a token kept in the user's configuration directory, so that `push`,
//! `pull` and `dataset import` need no `--token` afterwards.
//!
//! The file is `$XDG_CONFIG_HOME/switchyard/credentials.json` (else
//! `~/.config/switchyard/credentials.json`), written with mode 0600: one token per server,
//! and the server logged in to last, which commands use when no `--server` is given. A
//! token given with `--token` or `SWITCHYARD_TOKEN` always wins over the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Client, RemoteError};

/// The server commands talk to when none is given nor stored.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The stored logins.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Credentials {
    /// The server logged in to last.
    #[serde(default)]
    pub(crate) current: Option<String>,
    #[serde(default)]
    pub(crate) servers: BTreeMap<String, Login>,
}

/// One server's login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Login {
    pub(crate) username: String,
    pub(crate) token: String,
}

/// Where the logins are kept, if the environment says where home is.
pub(crate) fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })?;
    Some(base.join("switchyard").join("credentials.json"))
}

impl Credentials {
    /// The stored logins; none when there is no file (a file that cannot be read is an
    /// error: it is never silently replaced).
    pub(crate) fn load() -> Result<Credentials, RemoteError> {
        let Some(path) = path() else {
            return Ok(Credentials::default());
        };
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RemoteError::File {
                path,
                cause: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Ok(Credentials::default())
            }
            Err(cause) => Err(RemoteError::File { path, cause }),
        }
    }

    /// Writes the logins (mode 0600, through a file beside moved into place).
    pub(crate) fn save(&self) -> Result<PathBuf, RemoteError> {
        let path = path().ok_or_else(|| RemoteError::File {
            path: PathBuf::from("~/.config/switchyard"),
            cause: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "neither XDG_CONFIG_HOME nor HOME is set",
            ),
        })?;
        let error = |cause| RemoteError::File {
            path: path.clone(),
            cause,
        };
        let folder = path.parent().map(PathBuf::from).unwrap_or_default();
        std::fs::create_dir_all(&folder).map_err(error)?;
        let text = serde_json::to_vec_pretty(self).map_err(|e| error(std::io::Error::other(e)))?;
        let mut file = tempfile::NamedTempFile::new_in(&folder).map_err(error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(error)?;
        }
        std::io::Write::write_all(&mut file, &text).map_err(error)?;
        file.persist(&path).map_err(|e| error(e.error))?;
        Ok(path)
    }

    /// The server and token a command uses: those given, else the stored ones (the token
    /// stored for the server used; the server logged in to last).
    pub(crate) fn resolve(
        &self,
        server: Option<String>,
        token: Option<String>,
    ) -> (String, Option<String>) {
        let server = server
            .filter(|s| !s.trim().is_empty())
            .or_else(|| self.current.clone())
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let token = token.or_else(|| {
            self.servers
                .get(key(&server).as_str())
                .map(|login| login.token.clone())
        });
        (server, token)
    }

    /// Keeps `login` for `server` and makes it the current one.
    pub(crate) fn remember(&mut self, server: &str, login: Login) {
        let key = key(server);
        self.current = Some(key.clone());
        self.servers.insert(key, login);
    }
}

/// Servers are kept without a trailing `/`.
fn key(server: &str) -> String {
    server.trim().trim_end_matches('/').to_owned()
}

impl Client {
    /// Logs in with a user name and password (`POST /auth/login`) and answers the token.
    pub(crate) async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<String, RemoteError> {
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
        }
        let request = self
            .request(reqwest::Method::POST, self.url(&["auth", "login"]))
            .json(&serde_json::json!({"username": username, "password": password}));
        let answer: Answer = self.expect(request, "login").await?.json()?;
        Ok(answer.access_token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_values_win_then_the_stored_ones_then_the_default() {
        let mut stored = Credentials::default();
        assert_eq!(
            stored.resolve(None, None),
            (DEFAULT_SERVER.to_owned(), None)
        );
        stored.remember(
            "http://a:1/",
            Login {
                username: "alice".into(),
                token: "ta".into(),
            },
        );
        stored.remember(
            "http://b:2",
            Login {
                username: "bob".into(),
                token: "tb".into(),
            },
        );
        assert_eq!(
            stored.resolve(None, None),
            ("http://b:2".to_owned(), Some("tb".to_owned()))
        );
        assert_eq!(
            stored.resolve(Some("http://a:1".into()), None),
            ("http://a:1".to_owned(), Some("ta".to_owned()))
        );
        assert_eq!(
            stored.resolve(Some("http://a:1".into()), Some("given".into())),
            ("http://a:1".to_owned(), Some("given".to_owned()))
        );
        assert_eq!(stored.resolve(Some("http://c:3".into()), None).1, None);
    }
}
