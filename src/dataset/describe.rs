//! What a dataset endpoint takes and answers, as JSON Schema: the query body, one row, one
//! statistics group, the schema answer. Made from the dataset's own columns and types, for
//! the project's generated OpenAPI document (the GET form's parameters are
//! [`get_parameters`](super::get_parameters)). Nothing here is on the request path.

use serde_json::{Map, Value, json};

use super::query::QuerySettings;
use super::{ColumnType, Dataset, Op};

fn json_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Integer => "integer",
        ColumnType::Number => "number",
        ColumnType::Text => "string",
        ColumnType::Boolean => "boolean",
    }
}

fn typed(ty: &'static str, nullable: bool) -> Value {
    if nullable {
        json!({"type": [ty, "null"]})
    } else {
        json!({"type": ty})
    }
}

fn numeric(ty: ColumnType) -> bool {
    matches!(ty, ColumnType::Integer | ColumnType::Number)
}

/// The JSON Schema of a query body: the category (a value or a non-empty list of values),
/// `lower` and `upper` (numbers by numeric column), `page` and `per_page`. No other key.
pub fn body_schema(ds: &Dataset, s: &QuerySettings) -> Value {
    let table = ds.table();
    let mut properties = Map::new();
    let category = s.category.as_deref().and_then(|name| {
        let index = table.column_index(name)?;
        Some(&table.columns()[index])
    });
    if let Some(column) = category {
        let one = json!({"type": json_type(column.ty)});
        properties.insert(
            column.name.clone(),
            json!({
                "description": format!("Keep only rows whose `{}` is this value, or one of these values.", column.name),
                "oneOf": [one, {"type": "array", "items": one, "minItems": 1}],
            }),
        );
    }
    let bounds: Map<String, Value> = table
        .columns()
        .iter()
        .filter(|c| numeric(c.ty))
        .map(|c| (c.name.clone(), json!({"type": "number"})))
        .collect();
    for (key, what) in [("lower", "at least"), ("upper", "at most")] {
        properties.insert(
            key.to_owned(),
            json!({
                "description": format!("Keep only rows whose column is {what} this number (inclusive; a null never matches)."),
                "type": "object",
                "properties": bounds,
                "additionalProperties": false,
            }),
        );
    }
    properties.insert(
        "page".into(),
        json!({"type": "integer", "minimum": 1, "description": "The page, from 1; used only with `per_page`."}),
    );
    properties.insert(
        "per_page".into(),
        json!({"type": "integer", "minimum": 1, "maximum": s.max_per_page,
               "description": "Items per page; without it the whole answer is returned."}),
    );
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

/// The JSON Schema of one row of a `query` answer: every column in file order, the
/// category under the label key.
pub fn row_schema(ds: &Dataset, s: &QuerySettings) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for column in ds.table().columns() {
        let key = if s.category.as_deref() == Some(column.name.as_str()) {
            s.label_key.clone()
        } else {
            column.name.clone()
        };
        properties.insert(key.clone(), typed(json_type(column.ty), column.nullable));
        required.push(Value::String(key));
    }
    json!({"type": "object", "properties": properties, "required": required})
}

/// The JSON Schema of one group of a `stats` answer for `op`: `<op>_<column>` for every
/// numeric column but the category, then the category under the label key.
pub fn group_schema(ds: &Dataset, s: &QuerySettings, op: Op) -> Value {
    let mut properties = Map::new();
    let table = ds.table();
    for column in table.columns() {
        if !numeric(column.ty) || s.category.as_deref() == Some(column.name.as_str()) {
            continue;
        }
        let ty = match (op, column.ty) {
            (Op::Count, _) => "integer",
            (Op::Min | Op::Max | Op::Sum, ColumnType::Integer) => "integer",
            _ => "number",
        };
        properties.insert(format!("{}_{}", op.as_str(), column.name), typed(ty, true));
    }
    if let Some(column) = s
        .category
        .as_deref()
        .and_then(|name| table.column_index(name))
        .map(|i| &table.columns()[i])
    {
        properties.insert(s.label_key.clone(), typed(json_type(column.ty), true));
    }
    json!({"type": "object", "properties": properties})
}

/// The JSON Schema of a `schema` answer.
pub fn schema_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "rows": {"type": "integer", "minimum": 0},
            "columns": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "type": {"enum": ["integer", "number", "text", "boolean"]},
                    "nullable": {"type": "boolean"},
                    "declared": {"type": "boolean"},
                },
            }},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Format, Importer, Limits};

    fn iris() -> Dataset {
        let mut importer = Importer::new(Format::Csv, Vec::new(), Limits::default());
        importer
            .feed(include_bytes!("testdata/iris.csv"))
            .expect("iris parses");
        Dataset::new(importer.finish().expect("iris parses"))
    }

    fn settings() -> QuerySettings {
        QuerySettings {
            category: Some("species".into()),
            ..QuerySettings::default()
        }
    }

    #[test]
    fn the_body_schema_names_the_category_and_the_numeric_columns() {
        let schema = body_schema(&iris(), &settings());
        let properties = &schema["properties"];
        assert_eq!(properties["species"]["oneOf"][1]["items"]["type"], "string");
        let lower = properties["lower"]["properties"].as_object().unwrap();
        let names: Vec<&str> = lower.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        );
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(properties["per_page"]["maximum"], 1000);
    }

    #[test]
    fn rows_and_groups_use_the_label_key_and_the_op() {
        let ds = iris();
        let row = row_schema(&ds, &settings());
        assert_eq!(row["properties"]["label"]["type"], "string");
        assert!(row["properties"].get("species").is_none());
        let group = group_schema(&ds, &settings(), Op::Count);
        assert_eq!(
            group["properties"]["count_sepal_length"]["type"],
            json!(["integer", "null"])
        );
        assert_eq!(group["properties"].as_object().unwrap().len(), 5);
    }
}
