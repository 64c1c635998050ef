//! A project's environment values (`env`): names to text values, given to its script as the
//! global `env` (docs/scripts.md).
//!
//! Values may be secrets: they are shown to the project's owner (a project's `GET`) and to
//! its script, and nowhere else. `Debug` names the names only, and no error, log line or
//! change summary built here carries a value.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::FieldError;

/// The most values one project may have.
pub const MAX_ENV_ENTRIES: usize = 256;
/// The longest name, in bytes.
pub const MAX_ENV_NAME_BYTES: usize = 128;
/// The longest value, in bytes (64 KiB).
pub const MAX_ENV_VALUE_BYTES: usize = 64 * 1024;

/// A project's environment values, by name, in name order. Empty is none (and is stored as
/// NULL); a clone shares the map.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env(Option<Arc<BTreeMap<String, String>>>);

impl Env {
    /// No values.
    pub const EMPTY: Env = Env(None);

    /// These values; an empty map is no values.
    pub fn new(values: BTreeMap<String, String>) -> Env {
        if values.is_empty() {
            Env(None)
        } else {
            Env(Some(Arc::new(values)))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |values| values.len())
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .as_ref()
            .and_then(|values| values.get(name))
            .map(String::as_str)
    }

    /// Names and values, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .flat_map(|values| values.iter())
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(name, _)| name)
    }

    /// Checks the names, the sizes and the count; `prefix` is where the map is in the body
    /// (`env.`), each problem naming `{prefix}{name}` (or the map itself for the count).
    /// Messages never hold a value.
    pub fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        let map = prefix.strip_suffix('.').unwrap_or(prefix);
        if self.len() > MAX_ENV_ENTRIES {
            errors.push(FieldError::new(
                map,
                format!(
                    "has {} values; a project has at most {MAX_ENV_ENTRIES}",
                    self.len()
                ),
            ));
        }
        for (name, value) in self.iter() {
            if let Err(message) = check_env_name(name) {
                let field = if name.is_empty() {
                    map.to_owned()
                } else {
                    format!("{prefix}{name}")
                };
                errors.push(FieldError::new(field, message));
            }
            if value.len() > MAX_ENV_VALUE_BYTES {
                errors.push(FieldError::new(
                    format!("{prefix}{name}"),
                    format!(
                        "the value is {} bytes long; a value is at most {MAX_ENV_VALUE_BYTES} \
                         bytes (64 KiB)",
                        value.len()
                    ),
                ));
            }
        }
    }

    /// What changed from `before` to this, for the change history: the names added, changed
    /// and removed (never a value), at most a few of each.
    pub fn describe_change(&self, before: &Env) -> String {
        let mut added = Vec::new();
        let mut changed = Vec::new();
        for (name, value) in self.iter() {
            match before.get(name) {
                None => added.push(name),
                Some(old) if old != value => changed.push(name),
                Some(_) => {}
            }
        }
        let removed: Vec<&str> = before.names().filter(|n| self.get(n).is_none()).collect();
        let mut parts = Vec::new();
        for (what, names) in [("set", added), ("changed", changed), ("removed", removed)] {
            if !names.is_empty() {
                parts.push(format!("{what} {}", list_names(&names)));
            }
        }
        if parts.is_empty() {
            "no change".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// `A, B, C` or `A, B, C and 4 more`.
fn list_names(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    let mut text = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// Names: `^[A-Za-z_][A-Za-z0-9_]*$`, at most 128 bytes.
pub fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a name may not be empty".into());
    }
    if name.len() > MAX_ENV_NAME_BYTES {
        return Err(format!(
            "the name is {} bytes long; a name is at most {MAX_ENV_NAME_BYTES}",
            name.len()
        ));
    }
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(
            "a name may use only A-Z, a-z, 0-9 and '_', and may not start with a digit".into(),
        );
    }
    Ok(())
}

/// Names only: values may be secrets.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// A JSON object of strings; `{}` when empty.
impl Serialize for Env {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// A JSON object of strings; `null` is none, as `{}` is.
impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<BTreeMap<String, String>>::deserialize(deserializer)
            .map(|values| Env::new(values.unwrap_or_default()))
    }
}

impl utoipa::PartialSchema for Env {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .description(Some(
                "Environment values by name (`[A-Za-z_][A-Za-z0-9_]*`, at most 128 bytes), \
                 at most 256, each at most 64 KiB; the project's script reads them as `env`.",
            ))
            .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[A-Za-z_][A-Za-z0-9_]*$"))
                    .max_length(Some(MAX_ENV_NAME_BYTES)),
            ))
            .max_properties(Some(MAX_ENV_ENTRIES))
            .into()
    }
}

impl utoipa::ToSchema for Env {
    fn name() -> std::borrow::Cow<'static, str> {
        "Env".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::new(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn fields(env: &Env) -> Vec<String> {
        let mut errors = Vec::new();
        env.validate("env.", &mut errors);
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn names_follow_the_documented_form() {
        for good in ["A", "_", "_x", "GREETING", "a1_B2", &"N".repeat(128)] {
            assert!(check_env_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1BAD", "A-B", "A B", "é", "A.B", "$X", &"N".repeat(129)] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_field_and_never_the_value() {
        let secret = "s3cret-value";
        let bad = env(&[
            ("1BAD", secret),
            ("OK", secret),
            ("BIG", &"x".repeat(MAX_ENV_VALUE_BYTES + 1)),
            ("", secret),
        ]);
        let mut errors = Vec::new();
        bad.validate("env.", &mut errors);
        let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["env", "env.1BAD", "env.BIG"]);
        for error in &errors {
            assert!(!error.message.contains(secret), "{}", error.message);
            assert!(!error.message.contains("xxxx"), "{}", error.message);
        }
        let fits = env(&[("BIG", &"x".repeat(MAX_ENV_VALUE_BYTES))]);
        assert!(fields(&fits).is_empty());
    }

    #[test]
    fn at_most_256_values() {
        let names: Vec<String> = (0..=MAX_ENV_ENTRIES).map(|i| format!("V{i}")).collect();
        let many = Env::new(names.iter().map(|n| (n.clone(), "v".to_owned())).collect());
        assert_eq!(fields(&many), ["env"]);
        let fits = Env::new(
            names[..MAX_ENV_ENTRIES]
                .iter()
                .map(|n| (n.clone(), "v".to_owned()))
                .collect(),
        );
        assert!(fields(&fits).is_empty());
    }

    #[test]
    fn empty_and_null_are_none_and_json_round_trips() {
        let none: Env = serde_json::from_str("null").unwrap();
        let empty: Env = serde_json::from_str("{}").unwrap();
        assert!(none.is_empty() && empty.is_empty());
        assert_eq!(none, Env::default());
        assert_eq!(serde_json::to_string(&Env::default()).unwrap(), "{}");
        let some: Env = serde_json::from_str(r#"{"B": "2", "A": "1"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&some).unwrap(),
            r#"{"A":"1","B":"2"}"#
        );
        assert_eq!(some.get("B"), Some("2"));
        assert!(serde_json::from_str::<Env>(r#"{"A": 1}"#).is_err());
    }

    #[test]
    fn debug_and_change_descriptions_show_names_only() {
        let before = env(&[("KEEP", "same"), ("OLD", "gone-secret"), ("TOKEN", "one")]);
        let after = env(&[("KEEP", "same"), ("NEW", "new-secret"), ("TOKEN", "two")]);
        let debug = format!("{after:?}");
        assert_eq!(debug, r#"{"KEEP", "NEW", "TOKEN"}"#);
        assert_eq!(
            after.describe_change(&before),
            "set NEW, changed TOKEN, removed OLD"
        );
        assert_eq!(after.describe_change(&after), "no change");
    }
}
