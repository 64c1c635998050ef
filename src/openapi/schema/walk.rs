//! Where subschemas sit inside a JSON Schema 2020-12 object, so that walking one visits
//! schemas only: a `"$ref"` inside an `enum`, `const` or `examples` value is data, and a
//! property named `$ref` is a name.

use serde_json::{Map, Value};

/// Keywords whose value is one subschema.
pub(crate) const SINGLE: &[&str] = &[
    "additionalProperties",
    "items",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];

/// Keywords whose value is an array of subschemas.
pub(crate) const LIST: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];

/// Keywords whose value is an object of subschemas.
pub(crate) const MAP: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// Calls `f` on every schema object in `schema`, itself first.
pub(crate) fn each_schema(schema: &Value, f: &mut impl FnMut(&Map<String, Value>)) {
    let Value::Object(map) = schema else { return };
    f(map);
    for (key, value) in map {
        let key = key.as_str();
        if SINGLE.contains(&key) {
            each_schema(value, f);
        } else if LIST.contains(&key) {
            for item in value.as_array().into_iter().flatten() {
                each_schema(item, f);
            }
        } else if MAP.contains(&key) {
            for item in value.as_object().into_iter().flat_map(|m| m.values()) {
                each_schema(item, f);
            }
        }
    }
}

/// Calls `f` on every schema object in `schema`, itself first, allowing changes.
pub(crate) fn each_schema_mut(schema: &mut Value, f: &mut impl FnMut(&mut Map<String, Value>)) {
    let Value::Object(map) = schema else { return };
    f(map);
    for (key, value) in map.iter_mut() {
        let key = key.as_str();
        if SINGLE.contains(&key) {
            each_schema_mut(value, f);
        } else if LIST.contains(&key) {
            for item in value.as_array_mut().into_iter().flatten() {
                each_schema_mut(item, f);
            }
        } else if MAP.contains(&key) {
            for item in value
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                each_schema_mut(item, f);
            }
        }
    }
}

/// Every `$ref` in `schema`, in the order met.
pub(crate) fn refs(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    each_schema(schema, &mut |map| {
        if let Some(Value::String(reference)) = map.get("$ref") {
            out.push(reference.clone());
        }
    });
    out
}
