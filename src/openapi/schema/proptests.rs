//! Property tests: documents of random schemas from a small grammar (types, nested objects
//! and arrays, enums, formats, patterns, bounds, `allOf`, `oneOf`, `anyOf`, `nullable`,
//! references between components, recursive ones included), each sampled both ways and
//! checked with the validator callers build (formats asserted too).
//!
//! The grammar only writes satisfiable schemas: bounds in order, enough room for
//! `multipleOf` and `uniqueItems`, `oneOf` branches of different types, and references
//! that recurse only where the value can do without them (optional properties, arrays that
//! may be empty); a component may require only components after it.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::normalize::compile_with;
use super::*;

const COMPONENTS: usize = 4;

const PATTERNS: &[&str] = &[
    "^[a-z]+$",
    r"^[A-Z]{2,4}-\d+$",
    r"^(?=.*\d).{6,}$",
    r"^\p{L}+$",
    r"^\d{3}$",
    "/^ab+c$/i",
    "^(red|green|blue)$",
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    "[0-9]",
    r"^\w+@\w+\.com$",
];

const FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "url",
    "uuid",
    "byte",
    "binary",
    "password",
    "regex",
    "json-pointer",
];

fn name(component: usize) -> String {
    format!("S{component}")
}

fn reference(component: usize) -> Value {
    json!({ "$ref": format!("#/components/schemas/{}", name(component)) })
}

fn with_nullable(schema: Value, nullable: bool) -> Value {
    match schema {
        Value::Object(mut map) if nullable => {
            map.insert("nullable".into(), Value::Bool(true));
            Value::Object(map)
        }
        other => other,
    }
}

fn string_schema() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0usize..4, 0usize..8).prop_map(
            |(min, extra)| json!({"type": "string", "minLength": min, "maxLength": min + extra})
        ),
        (prop::sample::select(PATTERNS), any::<bool>()).prop_map(|(pattern, bounded)| {
            if bounded {
                json!({"type": "string", "pattern": pattern, "minLength": 1, "maxLength": 40})
            } else {
                json!({"type": "string", "pattern": pattern})
            }
        }),
        prop::sample::select(FORMATS)
            .prop_map(|format| json!({"type": "string", "format": format})),
        prop::collection::vec("[a-z]{1,6}", 1..4)
            .prop_map(|values| json!({"type": "string", "enum": values})),
        "[a-z]{1,8}".prop_map(|example| json!({"type": "string", "example": example})),
        Just(json!({"type": "string"})),
    ]
}

fn integer_schema() -> impl Strategy<Value = Value> {
    (
        prop::option::of(-50i64..50),
        0i64..40,
        any::<(bool, bool, bool)>(),
        prop::option::of(prop::sample::select(vec![2i64, 3, 5])),
        prop::option::of(prop::sample::select(vec!["int32", "int64"])),
    )
        .prop_map(
            |(min, width, (has_max, exclusive_min, exclusive_max), step, format)| {
                let mut map = Map::new();
                map.insert("type".into(), json!("integer"));
                let room = step.unwrap_or(1) * 3 + 2;
                if let Some(min) = min {
                    map.insert("minimum".into(), json!(min));
                    map.insert("exclusiveMinimum".into(), json!(exclusive_min));
                    if has_max {
                        map.insert("maximum".into(), json!(min + width + room));
                        map.insert("exclusiveMaximum".into(), json!(exclusive_max));
                    }
                } else if has_max {
                    map.insert("maximum".into(), json!(width - 20));
                }
                if let Some(step) = step {
                    map.insert("multipleOf".into(), json!(step));
                }
                if let Some(format) = format {
                    map.insert("format".into(), json!(format));
                }
                Value::Object(map)
            },
        )
}

fn number_schema() -> impl Strategy<Value = Value> {
    (
        prop::option::of(-20i32..20),
        1i32..20,
        any::<(bool, bool)>(),
        prop::option::of(prop::sample::select(vec![0.5f64, 0.25, 0.1])),
    )
        .prop_map(|(min, width, (exclusive_min, exclusive_max), step)| {
            let mut map = Map::new();
            map.insert("type".into(), json!("number"));
            if let Some(min) = min {
                let low = f64::from(min) / 4.0;
                map.insert("minimum".into(), json!(low));
                map.insert("exclusiveMinimum".into(), json!(exclusive_min));
                map.insert("maximum".into(), json!(low + f64::from(width) + 1.0));
                map.insert("exclusiveMaximum".into(), json!(exclusive_max));
            }
            if let Some(step) = step {
                map.insert("multipleOf".into(), json!(step));
            }
            Value::Object(map)
        })
}

/// Schemas whose values can be made distinct for `uniqueItems`.
fn varied_schema() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"type": "string"})),
        Just(json!({"type": "integer"})),
        Just(json!({"type": "integer", "minimum": 1, "multipleOf": 2})),
        prop::sample::select(FORMATS)
            .prop_map(|format| json!({"type": "string", "format": format})),
        Just(json!({"type": "string", "pattern": r"^\d{3}$"})),
        Just(json!({"type": "boolean"})),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    let typed = prop_oneof![
        4 => string_schema(),
        2 => integer_schema(),
        2 => number_schema(),
        1 => Just(json!({"type": "boolean"})),
        1 => Just(json!({"enum": ["x", 1, true]})),
        1 => Just(json!({})),
    ];
    (typed, prop::bool::weighted(0.2))
        .prop_map(|(schema, nullable)| with_nullable(schema, nullable))
}

/// A schema of component `me` (or of the top level when `me` is `COMPONENTS`): it may
/// require components after `me` and refer to any component where it can do without.
fn schema(me: usize) -> impl Strategy<Value = Value> {
    let required_ref = if me + 1 < COMPONENTS {
        ((me + 1)..COMPONENTS).prop_map(reference).boxed()
    } else {
        leaf().boxed()
    };
    let base = prop_oneof![6 => leaf(), 1 => required_ref];
    base.prop_recursive(4, 32, 5, move |inner| {
        let optional_ref =
            prop_oneof![3 => inner.clone(), 1 => (0..COMPONENTS).prop_map(reference)];
        prop_oneof![
            4 => object(inner.clone(), optional_ref.clone(), 0),
            2 => array(inner.clone(), optional_ref),
            1 => (object(inner.clone(), inner.clone(), 1), object(inner.clone(), inner.clone(), 2))
                .prop_map(|(a, b)| json!({"allOf": [a, b]})),
            1 => one_of(inner.clone()),
            1 => prop::collection::vec(inner, 1..3).prop_map(|branches| json!({"anyOf": branches})),
        ]
    })
}

/// An object of up to four properties named from a pool, some required, some `readOnly` or
/// `writeOnly`. `allOf` branches (pool 1 and 2) take names from different pools and say
/// nothing of other properties.
fn object(
    required: impl Strategy<Value = Value> + Clone,
    optional: impl Strategy<Value = Value> + Clone,
    pool: usize,
) -> impl Strategy<Value = Value> {
    let names: &'static [&'static str] = if pool == 2 {
        &["e", "f", "g", "h"]
    } else {
        &["a", "b", "c", "d"]
    };
    (
        prop::collection::vec((required, optional, 0u8..6), 0..4),
        prop_oneof![
            Just(None),
            Just(Some(json!(false))),
            Just(Some(json!({"type": "integer"})))
        ],
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(move |(properties, additional, wants_min, nullable)| {
            let mut declared = Map::new();
            let mut required_names = Vec::new();
            for (index, (required_schema, optional_schema, kind)) in
                properties.into_iter().enumerate()
            {
                let name = names[index];
                let schema = match kind {
                    0 | 1 => {
                        required_names.push(json!(name));
                        required_schema
                    }
                    2 => {
                        required_names.push(json!(name));
                        with_flag(required_schema, "readOnly")
                    }
                    3 => with_flag(optional_schema, "writeOnly"),
                    _ => optional_schema,
                };
                declared.insert(name.to_owned(), schema);
            }
            let count = declared.len();
            let mut map = Map::new();
            map.insert("type".into(), json!("object"));
            map.insert("properties".into(), Value::Object(declared));
            if !required_names.is_empty() {
                map.insert("required".into(), Value::Array(required_names));
            }
            let closed = additional == Some(json!(false));
            if pool == 0
                && let Some(additional) = additional
            {
                map.insert("additionalProperties".into(), additional);
            }
            // A closed object's properties may all be recursive: only an open one can be
            // asked for more than it declares.
            if wants_min && !(closed && pool == 0) {
                map.insert("minProperties".into(), json!(count.min(2) + 1));
            }
            with_nullable(Value::Object(map), nullable)
        })
}

fn with_flag(schema: Value, flag: &str) -> Value {
    match schema {
        Value::Object(mut map) if !map.contains_key("$ref") => {
            map.insert(flag.into(), Value::Bool(true));
            Value::Object(map)
        }
        other => json!({"allOf": [other], flag: true}),
    }
}

fn array(
    required: impl Strategy<Value = Value> + Clone,
    optional: impl Strategy<Value = Value> + Clone,
) -> impl Strategy<Value = Value> {
    prop_oneof![
        (required, 1usize..3, 0usize..3).prop_map(|(items, min, extra)| {
            json!({"type": "array", "items": items, "minItems": min, "maxItems": min + extra})
        }),
        optional.prop_map(|items| json!({"type": "array", "items": items})),
        (varied_schema(), 1usize..4).prop_map(|(items, min)| {
            let min = if items == json!({"type": "boolean"}) {
                min.min(2)
            } else {
                min
            };
            json!({"type": "array", "items": items, "minItems": min, "uniqueItems": true})
        }),
    ]
}

/// `oneOf` over branches of different types, so that exactly one accepts a value.
fn one_of(inner: impl Strategy<Value = Value> + Clone) -> impl Strategy<Value = Value> {
    let object_branch = object(inner.clone(), inner.clone(), 0);
    let array_branch = inner.prop_map(|items| json!({"type": "array", "items": items}));
    (
        prop::sample::subsequence(vec![0usize, 1, 2, 3, 4], 1..4),
        string_schema(),
        integer_schema(),
        object_branch,
        array_branch,
    )
        .prop_map(|(picked, string, integer, object, array)| {
            let strip = |v: Value| match v {
                Value::Object(mut map) => {
                    map.remove("nullable");
                    Value::Object(map)
                }
                other => other,
            };
            let branches: Vec<Value> = picked
                .into_iter()
                .map(|kind| match kind {
                    0 => string.clone(),
                    1 => integer.clone(),
                    2 => strip(object.clone()),
                    3 => array.clone(),
                    _ => json!({"type": "boolean"}),
                })
                .collect();
            json!({"oneOf": branches})
        })
}

fn document() -> impl Strategy<Value = (Value, Value)> {
    let components: Vec<_> = (0..COMPONENTS).map(schema).collect();
    (components, schema(COMPONENTS), any::<bool>()).prop_map(|(schemas, top, by_reference)| {
        let mut named = Map::new();
        for (index, schema) in schemas.into_iter().enumerate() {
            named.insert(name(index), schema);
        }
        let doc = json!({"openapi": "3.0.3", "components": {"schemas": named}});
        let top = if by_reference { reference(0) } else { top };
        (doc, top)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn samples_are_valid_and_deterministic(
        (doc, top) in document(),
        version in prop_oneof![Just(Version::V3_0), Just(Version::V3_1)],
        direction in prop_oneof![Just(Direction::Request), Just(Direction::Response)],
    ) {
        let first = sample(&top, &doc, version, direction);
        let second = sample(&top, &doc, version, direction);
        prop_assert_eq!(&first, &second);

        let document = normalize_document(&doc, version, direction);
        let normalized = normalize(&top, version, &doc, direction);
        let validator = compile_with(&normalized.schema, &document.schema, true);
        prop_assert!(validator.is_ok(), "{:?}", validator.err());
        let Ok(validator) = validator else { unreachable!() };
        let errors: Vec<String> = validator
            .iter_errors(&first.value)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        prop_assert!(errors.is_empty(), "sample {} of {} is not valid: {:?}; notes {:?}", first.value, normalized.schema, errors, first.notes);
        prop_assert!(first.notes.is_empty(), "notes {:?} for {}", first.notes, first.value);
    }
}
