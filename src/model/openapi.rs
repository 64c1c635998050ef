//! The OpenAPI side of a definition, as users write it (docs/openapi.md).
//!
//! An endpoint may describe its operation the way an OpenAPI document does: `operation_id`,
//! `parameters` (OpenAPI Parameter Objects), `request_body` (a Request Body Object),
//! `responses` (a Responses Object) and `openapi` (any other field of the Operation Object:
//! `callbacks`, `security`, `deprecated`, `x-…`), plus `validate` (which requests and
//! answers are checked against those schemas). A project may carry `openapi`: the parts of
//! its document that belong to no operation (`info`, `tags`, `components`, `security`,
//! `externalDocs`, `x-…`); endpoint schemas refer to its `#/components/…` by `$ref`.
//!
//! Schemas are JSON Schema 2020-12, as OpenAPI 3.1 has them. The objects are kept as
//! written, checked here for their shape only; whether a schema compiles is found when the
//! revision is compiled (`openapi::validate`), before anything is stored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::FieldError;

/// Where a parameter is, as OpenAPI's `in` says.
pub const PARAMETER_PLACES: &[&str] = &["path", "query", "header", "cookie"];

/// Operation Object fields that have a field of their own in a definition, and may not be
/// given again under `openapi`, with the field to use.
const OWN_FIELDS: &[(&str, &str)] = &[
    ("summary", "summary"),
    ("description", "description"),
    ("tags", "tags"),
    ("operationId", "operation_id"),
    ("parameters", "parameters"),
    ("requestBody", "request_body"),
    ("responses", "responses"),
];

/// Top-level document fields a project's `openapi` may give.
const PROJECT_FIELDS: &[&str] = &[
    "info",
    "tags",
    "components",
    "security",
    "externalDocs",
    "jsonSchemaDialect",
];

/// Which requests and answers an endpoint checks against its schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// Requests are checked before the handler runs (422 with the failing fields) when the
    /// endpoint has schemas for them. On unless turned off.
    #[serde(default = "yes")]
    pub request: bool,
    /// Answers are checked against `responses` in a project in `development` mode; a
    /// mismatch is logged and flagged in the journal, and the answer is sent as it is.
    #[serde(default)]
    pub response: bool,
}

fn yes() -> bool {
    true
}

impl Default for Validation {
    fn default() -> Validation {
        Validation {
            request: true,
            response: false,
        }
    }
}

/// An endpoint's OpenAPI operation, beyond its summary, description and tags.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Operation {
    pub operation_id: Option<Box<str>>,
    /// Parameter Objects, as written.
    pub parameters: Vec<Value>,
    /// A Request Body Object, as written.
    pub request_body: Option<Value>,
    /// A Responses Object (status or range or `default` → Response Object), as written.
    pub responses: Option<Map<String, Value>>,
    /// The Operation Object's other fields, copied into the project's document.
    pub extra: Option<Map<String, Value>>,
    pub validate: Validation,
}

impl Operation {
    /// Whether nothing is given (all defaults).
    pub fn is_empty(&self) -> bool {
        *self == Operation::default()
    }

    /// The parameters with their place, name and the object itself; malformed ones (which
    /// validation refuses) are skipped.
    pub fn parameters(&self) -> impl Iterator<Item = (&str, &str, &Map<String, Value>)> {
        self.parameters.iter().filter_map(|p| {
            let object = p.as_object()?;
            Some((
                object.get("in")?.as_str()?,
                object.get("name")?.as_str()?,
                object,
            ))
        })
    }

    /// Every problem of this operation, each naming its field under `prefix`. `path_params`
    /// are the names the endpoint's path template declares.
    pub fn validate(&self, prefix: &str, path_params: &[&str], errors: &mut Vec<FieldError>) {
        let field = |name: &str| format!("{prefix}{name}");
        if let Some(id) = &self.operation_id
            && (id.is_empty() || id.len() > 256 || id.chars().any(char::is_control))
        {
            errors.push(FieldError::new(
                field("operation_id"),
                "must be 1 to 256 characters, without control characters",
            ));
        }
        if self.parameters.len() > 256 {
            errors.push(FieldError::new(
                field("parameters"),
                "at most 256 parameters",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, parameter) in self.parameters.iter().enumerate() {
            let at = field(&format!("parameters[{i}]"));
            let Some(object) = parameter.as_object() else {
                errors.push(FieldError::new(at, "must be an OpenAPI Parameter Object"));
                continue;
            };
            let name = object.get("name").and_then(Value::as_str);
            let place = object.get("in").and_then(Value::as_str);
            let (Some(name), Some(place)) = (name, place) else {
                errors.push(FieldError::new(
                    at,
                    "needs `name` and `in` (path, query, header or cookie)",
                ));
                continue;
            };
            if name.is_empty() || name.len() > 256 {
                errors.push(FieldError::new(
                    format!("{at}.name"),
                    "must be 1 to 256 characters",
                ));
            }
            if !PARAMETER_PLACES.contains(&place) {
                errors.push(FieldError::new(
                    format!("{at}.in"),
                    format!("`{place}` is not one of path, query, header, cookie"),
                ));
            }
            if place == "header" && http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(FieldError::new(
                    format!("{at}.name"),
                    format!("`{name}` is not a valid header name"),
                ));
            }
            if place == "path" && !path_params.contains(&name) {
                errors.push(FieldError::new(
                    format!("{at}.name"),
                    format!("the path has no parameter `{{{name}}}`"),
                ));
            }
            let key = (
                place,
                if place == "header" {
                    name.to_ascii_lowercase()
                } else {
                    name.to_owned()
                },
            );
            if !seen.insert(key) {
                errors.push(FieldError::new(
                    at.clone(),
                    format!("`{name}` in {place} is given twice"),
                ));
            }
            check_schema_field(object, "schema", &at, errors);
            if let Some(required) = object.get("required")
                && !required.is_boolean()
            {
                errors.push(FieldError::new(
                    format!("{at}.required"),
                    "must be true or false",
                ));
            }
        }
        if let Some(body) = &self.request_body {
            let at = field("request_body");
            match body.as_object() {
                None => errors.push(FieldError::new(
                    at,
                    "must be an OpenAPI Request Body Object",
                )),
                Some(object) => check_content(object, &at, errors),
            }
        }
        if let Some(responses) = &self.responses {
            if responses.len() > 128 {
                errors.push(FieldError::new(field("responses"), "at most 128 responses"));
            }
            for (status, response) in responses {
                let at = field(&format!("responses.{status}"));
                if !is_response_key(status) {
                    errors.push(FieldError::new(
                        at.clone(),
                        "a response key is a status (100 to 599), a range such as `2XX`, or `default`",
                    ));
                }
                match response.as_object() {
                    None => errors.push(FieldError::new(at, "must be an OpenAPI Response Object")),
                    Some(object) if object.contains_key("$ref") => {}
                    Some(object) => check_content(object, &at, errors),
                }
            }
        }
        if let Some(extra) = &self.extra {
            for (key, _) in extra {
                if let Some((_, own)) = OWN_FIELDS.iter().find(|(name, _)| name == key) {
                    errors.push(FieldError::new(
                        field(&format!("openapi.{key}")),
                        format!("give it as the endpoint's `{own}`"),
                    ));
                }
            }
        }
    }
}

/// A Responses Object key: `200`, `2XX` or `default`.
pub fn is_response_key(key: &str) -> bool {
    if key == "default" {
        return true;
    }
    let bytes = key.as_bytes();
    if bytes.len() != 3 || !(b'1'..=b'5').contains(&bytes[0]) {
        return false;
    }
    bytes[1..].iter().all(u8::is_ascii_digit) || bytes[1..].eq_ignore_ascii_case(b"XX")
}

/// Checks `content` (media type → object with an optional `schema`) of a request body or
/// response.
fn check_content(object: &Map<String, Value>, at: &str, errors: &mut Vec<FieldError>) {
    let Some(content) = object.get("content") else {
        return;
    };
    let Some(content) = content.as_object() else {
        errors.push(FieldError::new(
            format!("{at}.content"),
            "must map media types to Media Type Objects",
        ));
        return;
    };
    for (media, value) in content {
        let at = format!("{at}.content.{media}");
        match value.as_object() {
            None => errors.push(FieldError::new(at, "must be an OpenAPI Media Type Object")),
            Some(object) => check_schema_field(object, "schema", &at, errors),
        }
    }
}

fn check_schema_field(
    object: &Map<String, Value>,
    key: &str,
    at: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(schema) = object.get(key)
        && !schema.is_object()
        && !schema.is_boolean()
    {
        errors.push(FieldError::new(
            format!("{at}.{key}"),
            "a schema is a JSON object (or true / false)",
        ));
    }
}

/// The parts of a project's OpenAPI document that belong to no operation.
///
/// Held as a JSON object `Value`, so that schemas' `$ref`s resolve in it as it is (a
/// document of 4 MB is never copied to check a request's schema).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct ProjectDocs(Value);

impl Default for ProjectDocs {
    fn default() -> ProjectDocs {
        ProjectDocs(Value::Object(Map::new()))
    }
}

impl<'de> Deserialize<'de> for ProjectDocs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(ProjectDocs::new)
    }
}

impl ProjectDocs {
    pub fn new(fields: Map<String, Value>) -> ProjectDocs {
        ProjectDocs(Value::Object(fields))
    }

    /// The fields, as written.
    pub fn fields(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        self.0.as_object().unwrap_or(&EMPTY)
    }

    /// The settings as a document root, where `#/components/…` references resolve.
    pub fn root(&self) -> &Value {
        &self.0
    }

    pub fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        for (key, value) in self.fields() {
            let at = format!("{prefix}{key}");
            if !PROJECT_FIELDS.contains(&key.as_str()) && !key.starts_with("x-") {
                errors.push(FieldError::new(
                    at,
                    format!(
                        "a project's `openapi` may give {} and `x-…` fields (paths come from its endpoints)",
                        PROJECT_FIELDS.join(", ")
                    ),
                ));
                continue;
            }
            let object = matches!(key.as_str(), "info" | "components" | "externalDocs");
            let list = matches!(key.as_str(), "tags" | "security");
            if (object && !value.is_object()) || (list && !value.is_array()) {
                errors.push(FieldError::new(
                    at,
                    if object {
                        "must be an object"
                    } else {
                        "must be a list"
                    },
                ));
            }
        }
    }

    /// `components.schemas`, `components.parameters`… as written.
    pub fn components(&self) -> Option<&Map<String, Value>> {
        self.fields().get("components").and_then(Value::as_object)
    }
}

/// An ordered rule of a mock: when the request matches `when`, `response` answers instead
/// of the mock's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub when: When,
    /// A mock response, without rules of its own.
    #[schema(no_recursion)]
    pub response: crate::model::MockSpec,
}

/// A mock's rules, in order. Behind one pointer in a [`MockSpec`](crate::model::MockSpec):
/// most mocks have none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Vec<Rule>)]
pub struct Rules(pub Vec<Rule>);

/// What a rule asks of a request; every condition given must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Query parameters (decoded) by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub query: std::collections::BTreeMap<String, Condition>,
    /// Headers by name (any case).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, Condition>,
}

/// A condition on one value: a string is shorthand for `{"equals": …}`; `{"matches": …}`
/// is a regular expression (Rust `regex` syntax, unanchored: `^…$` for the whole value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Condition {
    Equals(String),
    Is(ConditionForm),
}

/// The long form of a [`Condition`]: exactly one of `equals` and `matches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionForm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
}

/// What a [`Condition`] asks of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test<'a> {
    Equals(&'a str),
    Matches(&'a str),
}

/// The longest value or pattern a condition may give.
pub const MAX_CONDITION: usize = 4096;

impl Condition {
    /// A condition that the value matches `pattern`.
    pub fn matching(pattern: impl Into<String>) -> Condition {
        Condition::Is(ConditionForm {
            equals: None,
            matches: Some(pattern.into()),
        })
    }

    /// What it asks; `None` for a long form with neither or both of its fields (refused
    /// by validation).
    pub fn test(&self) -> Option<Test<'_>> {
        match self {
            Condition::Equals(value) => Some(Test::Equals(value)),
            Condition::Is(ConditionForm {
                equals: Some(value),
                matches: None,
            }) => Some(Test::Equals(value)),
            Condition::Is(ConditionForm {
                equals: None,
                matches: Some(pattern),
            }) => Some(Test::Matches(pattern)),
            Condition::Is(_) => None,
        }
    }

    /// The value it must equal, if that is what it asks.
    pub fn equals(&self) -> Option<&str> {
        match self.test() {
            Some(Test::Equals(value)) => Some(value),
            _ => None,
        }
    }

    /// The compiled pattern of a `matches` condition (bounded in size).
    pub fn regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
        regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
    }
}

/// The most rules one mock may have.
pub const MAX_RULES: usize = 256;

impl When {
    pub fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        if self.query.is_empty() && self.headers.is_empty() {
            errors.push(FieldError::new(
                prefix.trim_end_matches('.'),
                "a rule needs at least one condition (`query` or `headers`)",
            ));
        }
        for name in self.headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(FieldError::new(
                    format!("{prefix}headers.{name}"),
                    "is not a valid header name",
                ));
            }
        }
        let all = (self.query.iter().map(|c| ("query", c)))
            .chain(self.headers.iter().map(|c| ("headers", c)));
        for (place, (name, condition)) in all {
            let at = format!("{prefix}{place}.{name}");
            match condition.test() {
                None => errors.push(FieldError::new(
                    at,
                    "give exactly one of `equals` and `matches`",
                )),
                Some(Test::Equals(value) | Test::Matches(value))
                    if name.is_empty() || value.len() > MAX_CONDITION =>
                {
                    errors.push(FieldError::new(
                        at,
                        format!("a name of at least one byte and a value of at most {MAX_CONDITION} bytes"),
                    ));
                }
                Some(Test::Matches(pattern)) => {
                    if let Err(error) = Condition::regex(pattern) {
                        errors.push(FieldError::new(
                            format!("{at}.matches"),
                            format!("is not a regular expression: {error}"),
                        ));
                    }
                }
                Some(Test::Equals(_)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_keys_are_statuses_ranges_or_default() {
        for good in ["200", "404", "2XX", "5xx", "default", "101"] {
            assert!(is_response_key(good), "{good}");
        }
        for bad in ["600", "20", "2000", "XXX", "Default", "", "0XX", "2X0"] {
            assert!(!is_response_key(bad), "{bad}");
        }
    }

    #[test]
    fn conditions_take_a_string_or_the_long_form() {
        let when: When = serde_json::from_value(serde_json::json!(
            {"query": {"method": "a"}, "headers": {"x-t": {"equals": "b"}}}
        ))
        .unwrap();
        assert_eq!(when.query["method"].equals(), Some("a"));
        assert_eq!(when.headers["x-t"].equals(), Some("b"));
        let when: When = serde_json::from_value(serde_json::json!(
            {"headers": {"accept": {"matches": "^text/"}}}
        ))
        .unwrap();
        assert_eq!(when.headers["accept"].test(), Some(Test::Matches("^text/")));
        let mut errors = Vec::new();
        let bad: When = serde_json::from_value(serde_json::json!(
            {"query": {"a": {"matches": "("}, "b": {}, "c": {"equals": "x", "matches": "y"}}}
        ))
        .unwrap();
        bad.validate("", &mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["query.a.matches", "query.b", "query.c"]);
        assert!(serde_json::from_value::<When>(serde_json::json!({"query": {"a": 1}})).is_err());
        assert!(serde_json::from_value::<When>(serde_json::json!({"body": {}})).is_err());
    }

    #[test]
    fn operations_are_checked_for_shape() {
        let operation = Operation {
            operation_id: Some("".into()),
            parameters: vec![
                serde_json::json!({"name": "id", "in": "path", "schema": {"type": "integer"}}),
                serde_json::json!({"name": "nope", "in": "path"}),
                serde_json::json!({"name": "q", "in": "body"}),
                serde_json::json!({"name": "id", "in": "path"}),
                serde_json::json!({"name": "x", "in": "query", "schema": 3}),
                serde_json::json!("text"),
            ],
            request_body: Some(serde_json::json!({"content": {"application/json": 1}})),
            responses: Some(
                serde_json::json!({"200": {}, "99": {}, "4XX": {"content": []}})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
            extra: Some(
                serde_json::json!({"operationId": "x", "callbacks": {}})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
            validate: Validation::default(),
        };
        let mut errors = Vec::new();
        operation.validate("", &["id"], &mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "operation_id",
                "parameters[1].name",
                "parameters[2].in",
                "parameters[3]",
                "parameters[4].schema",
                "parameters[5]",
                "request_body.content.application/json",
                "responses.99",
                "responses.4XX.content",
                "openapi.operationId",
            ]
        );
    }

    #[test]
    fn project_docs_take_only_document_level_fields() {
        let docs: ProjectDocs = serde_json::from_value(serde_json::json!(
            {"info": {"title": "t"}, "components": {"schemas": {}}, "x-logo": 1,
             "paths": {}, "tags": {}}
        ))
        .unwrap();
        let mut errors = Vec::new();
        docs.validate("openapi.", &mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["openapi.paths", "openapi.tags"]);
        assert!(docs.components().unwrap().contains_key("schemas"));
    }
}
