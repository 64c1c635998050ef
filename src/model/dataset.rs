//! Dataset endpoints as users write them: `dataset: {name, action, category?, label_key?,
//! op?}` (docs/datasets.md). The dataset itself is uploaded apart (`datasets`); an endpoint
//! only names it.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// What a dataset endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[derive(utoipa::ToSchema)]
pub enum DatasetAction {
    /// Rows filtered by category and bounds, paginated.
    Query,
    /// Per-category statistics of the numeric columns (`op` fixed or from the path).
    Stats,
    /// The dataset's columns, their types and the row count.
    Schema,
}

/// The statistics a `stats` endpoint computes.
pub const STATS_OPS: &[&str] = &["mean", "min", "max", "sum", "count", "median", "std"];

/// The path parameter a `stats` endpoint without a fixed `op` takes it from.
pub const OP_PARAM: &str = "op";

/// A dataset endpoint: which dataset, what it answers, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct DatasetSpec {
    /// The dataset's name in the project.
    pub name: String,
    pub action: DatasetAction,
    /// The category column: filtered by value, and what `stats` groups by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The key the category is answered under (default `label`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_key: Option<String>,
    /// For `stats`: the statistic, when the path has no `{op}` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
}

/// The key the category is answered under when `label_key` is not given.
pub const DEFAULT_LABEL_KEY: &str = "label";

impl DatasetSpec {
    /// The key the category is answered under.
    pub fn label_key(&self) -> &str {
        self.label_key.as_deref().unwrap_or(DEFAULT_LABEL_KEY)
    }

    /// Every problem of this definition, each naming its field under `prefix`; `path` is
    /// the endpoint's path (a `stats` endpoint takes its op from it or from `op`).
    pub fn validate(&self, prefix: &str, path: &str, errors: &mut Vec<FieldError>) {
        let field = |name: &str| format!("{prefix}{name}");
        if let Err(message) = crate::datasets::check_name(&self.name) {
            errors.push(FieldError::new(field("name"), message));
        }
        if let Some(category) = &self.category
            && (category.is_empty() || category.len() > 256)
        {
            errors.push(FieldError::new(
                field("category"),
                "a column name of 1 to 256 bytes",
            ));
        }
        if let Some(key) = &self.label_key
            && (key.is_empty() || key.len() > 64)
        {
            errors.push(FieldError::new(field("label_key"), "1 to 64 bytes"));
        }
        let op_in_path = path.contains(&format!("{{{OP_PARAM}}}"));
        match (self.action, &self.op) {
            (DatasetAction::Stats, Some(op)) if !STATS_OPS.contains(&op.as_str()) => {
                errors.push(FieldError::new(
                    field("op"),
                    format!("`{op}` is not a statistic; one of {}", STATS_OPS.join(", ")),
                ));
            }
            (DatasetAction::Stats, Some(_)) if op_in_path => errors.push(FieldError::new(
                field("op"),
                format!("the path takes the statistic from `{{{OP_PARAM}}}`; leave `op` out or the parameter"),
            )),
            (DatasetAction::Stats, None) if !op_in_path => errors.push(FieldError::new(
                field("op"),
                format!(
                    "a stats endpoint needs its statistic: give `op` ({}) or put `{{{OP_PARAM}}}` in the path",
                    STATS_OPS.join(", ")
                ),
            )),
            (DatasetAction::Query | DatasetAction::Schema, Some(_)) => errors.push(
                FieldError::new(field("op"), "only a stats endpoint takes `op`"),
            ),
            _ => {}
        }
    }
}
