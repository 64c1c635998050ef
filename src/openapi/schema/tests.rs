//! Unit tests of `refs`, `normalize` and `sample`. Validation results come from the
//! `jsonschema` validator itself, built with `compile` the way callers build it.

use serde_json::{Value, json};

use super::normalize::compile_with;
use super::*;

/// A validator for `schema` of the document `doc`, built as callers build one.
fn validator(
    schema: &Value,
    doc: &Value,
    version: Version,
    direction: Direction,
) -> jsonschema::Validator {
    let document = normalize_document(doc, version, direction);
    let normalized = normalize(schema, version, doc, direction);
    match compile(&normalized.schema, &document.schema) {
        Ok(validator) => validator,
        Err(error) => panic!("{error}: {}", normalized.schema),
    }
}

fn empty_doc() -> Value {
    json!({"openapi": "3.0.3", "components": {"schemas": {}}})
}

mod refs_resolution {
    use super::*;

    fn doc() -> Value {
        json!({
            "components": {"schemas": {
                "Pet": {"type": "object", "properties": {"name": {"type": "string"}}},
                "Alias": {"$ref": "#/components/schemas/Pet"},
                "Alias2": {"$ref": "#/components/schemas/Alias"},
                "Loop1": {"$ref": "#/components/schemas/Loop2"},
                "Loop2": {"$ref": "#/components/schemas/Loop1"},
                "Self": {"$ref": "#/components/schemas/Self"},
                "a/b~c": {"type": "integer"},
                "100%": {"type": "boolean"},
                "Über": {"type": "null"},
            }},
            "paths": {"/users/{id}": {"get": {"parameters": [{"schema": {"type": "string"}}]}}},
        })
    }

    #[test]
    fn a_component_schema_is_found() {
        let doc = doc();
        assert_eq!(
            resolve(&doc, "#/components/schemas/Pet").ok(),
            doc.pointer("/components/schemas/Pet")
        );
    }

    #[test]
    fn tilde_escapes_are_decoded() {
        let doc = doc();
        assert_eq!(
            resolve(&doc, "#/components/schemas/a~1b~0c"),
            Ok(&json!({"type": "integer"}))
        );
    }

    #[test]
    fn path_keys_with_slashes_and_braces_are_found_raw_or_percent_encoded() {
        let doc = doc();
        let expected = Ok(&json!({"type": "string"}));
        assert_eq!(
            resolve(&doc, "#/paths/~1users~1{id}/get/parameters/0/schema"),
            expected
        );
        assert_eq!(
            resolve(&doc, "#/paths/~1users~1%7Bid%7D/get/parameters/0/schema"),
            expected
        );
        assert_eq!(
            resolve(
                &doc,
                "#/paths/%7E1users%7E1%7bid%7d/get/parameters/0/schema"
            ),
            expected
        );
    }

    #[test]
    fn percent_escapes_decode_to_utf8_and_percent_signs() {
        let doc = doc();
        assert_eq!(
            resolve(&doc, "#/components/schemas/100%25"),
            Ok(&json!({"type": "boolean"}))
        );
        assert_eq!(
            resolve(&doc, "#/components/schemas/%C3%9Cber"),
            Ok(&json!({"type": "null"}))
        );
        assert_eq!(
            resolve(&doc, "#/components/schemas/Über"),
            Ok(&json!({"type": "null"}))
        );
    }

    #[test]
    fn broken_percent_encoding_is_malformed() {
        let doc = doc();
        for reference in [
            "#/components/schemas/100%",
            "#/components/schemas/%zz",
            "#/components/schemas/%FF",
        ] {
            assert!(
                matches!(resolve(&doc, reference), Err(RefError::Malformed { .. })),
                "{reference}"
            );
        }
    }

    #[test]
    fn a_bad_tilde_escape_is_malformed() {
        assert!(matches!(
            resolve(&doc(), "#/components/schemas/a~2b"),
            Err(RefError::Malformed { .. })
        ));
    }

    #[test]
    fn chains_of_references_are_followed_to_the_end() {
        let doc = doc();
        assert_eq!(
            resolve(&doc, "#/components/schemas/Alias2").ok(),
            doc.pointer("/components/schemas/Pet")
        );
    }

    #[test]
    fn cycles_are_an_error_naming_the_chain() {
        let doc = doc();
        let Err(RefError::Cycle { reference, chain }) = resolve(&doc, "#/components/schemas/Loop1")
        else {
            panic!("expected a cycle");
        };
        assert_eq!(reference, "#/components/schemas/Loop1");
        assert_eq!(
            chain,
            [
                "#/components/schemas/Loop1",
                "#/components/schemas/Loop2",
                "#/components/schemas/Loop1"
            ]
        );
        assert!(matches!(
            resolve(&doc, "#/components/schemas/Self"),
            Err(RefError::Cycle { .. })
        ));
    }

    #[test]
    fn references_into_another_schemas_properties_are_followed() {
        let doc = doc();
        assert_eq!(
            resolve(&doc, "#/components/schemas/Pet/properties/name"),
            Ok(&json!({"type": "string"}))
        );
    }

    #[test]
    fn a_missing_target_names_where_the_search_stopped() {
        let error = resolve(&doc(), "#/components/schemas/Nope/properties/x").err();
        assert_eq!(
            error,
            Some(RefError::Missing {
                reference: "#/components/schemas/Nope/properties/x".into(),
                at: "#/components/schemas".into(),
                segment: "Nope".into(),
            })
        );
    }

    #[test]
    fn array_indexes_must_be_plain_numbers() {
        let doc = doc();
        assert!(resolve(&doc, "#/paths/~1users~1{id}/get/parameters/0").is_ok());
        assert!(matches!(
            resolve(&doc, "#/paths/~1users~1{id}/get/parameters/00"),
            Err(RefError::Missing { .. })
        ));
        assert!(matches!(
            resolve(&doc, "#/paths/~1users~1{id}/get/parameters/-"),
            Err(RefError::Missing { .. })
        ));
    }

    #[test]
    fn external_references_are_an_error_naming_them() {
        for reference in [
            "other.yaml#/components/schemas/Pet",
            "https://example.com/schemas/pet.json",
            "./pet.json",
        ] {
            let error = resolve(&doc(), reference).err();
            assert_eq!(
                error,
                Some(RefError::External {
                    reference: reference.into()
                })
            );
            let message = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(reference), "{message}");
        }
    }

    #[test]
    fn anchors_and_empty_references_are_malformed() {
        assert!(matches!(
            resolve(&doc(), "#pet"),
            Err(RefError::Malformed { .. })
        ));
        assert!(matches!(
            resolve(&doc(), ""),
            Err(RefError::Malformed { .. })
        ));
    }

    #[test]
    fn the_whole_document_is_the_empty_fragment() {
        let doc = doc();
        assert_eq!(resolve(&doc, "#"), Ok(&doc));
    }
}

mod normalizing {
    use super::*;

    fn norm30(schema: Value) -> Normalized {
        normalize(&schema, Version::V3_0, &empty_doc(), Direction::Request)
    }

    #[test]
    fn nullable_adds_null_to_type_and_enum() {
        let out = norm30(json!({"type": "string", "enum": ["a", "b"], "nullable": true}));
        assert_eq!(
            out.schema,
            json!({"type": ["string", "null"], "enum": ["a", "b", null]})
        );
        assert!(out.notes.is_empty());
    }

    #[test]
    fn nullable_false_is_dropped() {
        assert_eq!(
            norm30(json!({"type": "integer", "nullable": false})).schema,
            json!({"type": "integer"})
        );
    }

    #[test]
    fn nullable_moves_null_refusing_applicators_beside_null() {
        let doc = json!({"components": {"schemas": {"Pet": {"type": "object"}}}});
        let schema = json!({"nullable": true, "allOf": [{"$ref": "#/components/schemas/Pet"}], "description": "d"});
        let out = normalize(&schema, Version::V3_0, &doc, Direction::Request);
        assert_eq!(
            out.schema,
            json!({"description": "d", "anyOf": [{"allOf": [{"$ref": "#/components/schemas/Pet"}]}, {"type": "null"}]})
        );
        let v = validator(&schema, &doc, Version::V3_0, Direction::Request);
        assert!(v.is_valid(&json!(null)));
        assert!(v.is_valid(&json!({})));
        assert!(!v.is_valid(&json!(3)));
    }

    #[test]
    fn boolean_exclusive_bounds_become_numbers() {
        let out = norm30(
            json!({"type": "number", "minimum": 1, "exclusiveMinimum": true, "maximum": 9, "exclusiveMaximum": false}),
        );
        assert_eq!(
            out.schema,
            json!({"type": "number", "exclusiveMinimum": 1, "maximum": 9})
        );
        let v = validator(
            &json!({"type": "number", "minimum": 1, "exclusiveMinimum": true}),
            &empty_doc(),
            Version::V3_0,
            Direction::Request,
        );
        assert!(!v.is_valid(&json!(1)));
        assert!(v.is_valid(&json!(1.5)));
    }

    #[test]
    fn an_exclusive_flag_without_its_bound_is_dropped() {
        assert_eq!(norm30(json!({"exclusiveMaximum": true})).schema, json!({}));
    }

    #[test]
    fn ref_siblings_are_dropped_in_3_0_and_kept_in_3_1() {
        let doc = json!({"components": {"schemas": {"Name": {"type": "string"}}}});
        let schema =
            json!({"$ref": "#/components/schemas/Name", "maxLength": 2, "description": "kept"});
        let v30 = normalize(&schema, Version::V3_0, &doc, Direction::Request);
        assert_eq!(
            v30.schema,
            json!({"$ref": "#/components/schemas/Name", "description": "kept"})
        );
        let v31 = normalize(&schema, Version::V3_1, &doc, Direction::Request);
        assert_eq!(
            v31.schema,
            json!({"$ref": "#/components/schemas/Name", "maxLength": 2, "description": "kept"})
        );
        let v = validator(&schema, &doc, Version::V3_1, Direction::Request);
        assert!(!v.is_valid(&json!("abc")));
        assert!(
            validator(&schema, &doc, Version::V3_0, Direction::Request).is_valid(&json!("abc"))
        );
    }

    #[test]
    fn example_becomes_examples() {
        assert_eq!(
            norm30(json!({"type": "string", "example": "x"})).schema,
            json!({"type": "string", "examples": ["x"]})
        );
        let both = norm30(json!({"example": "x", "examples": ["y"]}));
        assert_eq!(both.schema, json!({"examples": ["y"]}));
        assert_eq!(
            norm30(json!({"examples": {"a": {"value": 1}}})).schema,
            json!({})
        );
    }

    #[test]
    fn openapi_keywords_are_kept_and_ignored_by_the_validator() {
        let schema = json!({
            "type": "object",
            "discriminator": {"propertyName": "kind"},
            "xml": {"name": "pet"},
            "externalDocs": {"url": "https://example.com"},
            "deprecated": true,
            "x-internal": {"anything": [1, 2]},
            "format": "int32",
        });
        let out = norm30(schema.clone());
        assert_eq!(out.schema, schema);
        let v = validator(&schema, &empty_doc(), Version::V3_0, Direction::Request);
        assert!(v.is_valid(&json!({})));
    }

    #[test]
    fn format_is_an_annotation() {
        let v = validator(
            &json!({"type": "string", "format": "email"}),
            &empty_doc(),
            Version::V3_0,
            Direction::Request,
        );
        assert!(v.is_valid(&json!("not an email")));
    }

    #[test]
    fn misshapen_keywords_are_dropped_and_noted() {
        let out = norm30(
            json!({"type": "file", "minimum": "5", "required": true, "minLength": -1, "multipleOf": 0}),
        );
        assert_eq!(out.schema, json!({}));
        let pointers: Vec<&str> = out.notes.iter().map(|n| n.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/type",
                "/minimum",
                "/required",
                "/minLength",
                "/multipleOf"
            ]
        );
    }

    #[test]
    fn duplicate_required_names_are_merged() {
        assert_eq!(
            norm30(json!({"required": ["a", "a", "b"]})).schema,
            json!({"required": ["a", "b"]})
        );
    }

    #[test]
    fn read_only_properties_are_not_required_in_requests() {
        let doc = json!({"components": {"schemas": {"Id": {"type": "integer", "readOnly": true}}}});
        let schema = json!({
            "type": "object",
            "required": ["id", "ref_id", "name", "secret"],
            "properties": {
                "id": {"type": "integer", "readOnly": true},
                "ref_id": {"$ref": "#/components/schemas/Id"},
                "name": {"type": "string"},
                "secret": {"type": "string", "writeOnly": true},
            }
        });
        let request = validator(&schema, &doc, Version::V3_0, Direction::Request);
        assert!(request.is_valid(&json!({"name": "a", "secret": "s"})));
        assert!(!request.is_valid(&json!({"id": 1, "name": "a"})));
        let response = validator(&schema, &doc, Version::V3_0, Direction::Response);
        assert!(response.is_valid(&json!({"id": 1, "ref_id": 2, "name": "a"})));
        assert!(!response.is_valid(&json!({"name": "a", "secret": "s"})));
    }

    #[test]
    fn read_only_properties_declared_in_another_all_of_branch_are_not_required() {
        let doc = json!({"components": {"schemas": {
            "Base": {"type": "object", "properties": {"id": {"type": "integer", "readOnly": true}}},
        }}});
        let schema =
            json!({"allOf": [{"$ref": "#/components/schemas/Base"}, {"required": ["id", "name"]}]});
        let request = validator(&schema, &doc, Version::V3_0, Direction::Request);
        assert!(request.is_valid(&json!({"name": "a"})));
        assert!(!request.is_valid(&json!({"id": 1})));
    }

    #[test]
    fn a_lookahead_pattern_is_enforced() {
        let v = validator(
            &json!({"type": "string", "pattern": r"^(?=.*\d).{8,}$"}),
            &empty_doc(),
            Version::V3_0,
            Direction::Request,
        );
        assert!(v.is_valid(&json!("abcdefg1")));
        assert!(!v.is_valid(&json!("abcdefgh")));
        assert!(!v.is_valid(&json!("abc1")));
    }

    #[test]
    fn a_unicode_property_pattern_is_enforced() {
        let v = validator(
            &json!({"type": "string", "pattern": r"^\p{L}+$"}),
            &empty_doc(),
            Version::V3_0,
            Direction::Request,
        );
        assert!(v.is_valid(&json!("Ünïcödé")));
        assert!(v.is_valid(&json!("日本語")));
        assert!(!v.is_valid(&json!("abc1")));
    }

    #[test]
    fn a_pattern_literal_with_the_i_flag_is_its_inner_pattern_ignoring_case() {
        let out = norm30(json!({"pattern": "/^abc$/i"}));
        assert_eq!(out.schema, json!({"pattern": "(?i)^abc$"}));
        let v = validator(
            &json!({"type": "string", "pattern": "/^abc$/i"}),
            &empty_doc(),
            Version::V3_0,
            Direction::Request,
        );
        assert!(v.is_valid(&json!("ABC")));
        assert!(v.is_valid(&json!("abc")));
        assert!(!v.is_valid(&json!("abcd")));
        assert_eq!(
            norm30(json!({"pattern": "/^a.c$/gu"})).schema,
            json!({"pattern": "^a.c$"})
        );
        assert_eq!(
            norm30(json!({"pattern": "/path/to"})).schema,
            json!({"pattern": "/path/to"})
        );
    }

    #[test]
    fn a_bad_pattern_is_reported_and_the_rest_still_enforced() {
        let schema = json!({
            "type": "object",
            "required": ["code"],
            "properties": {"code": {"type": "string", "pattern": "(", "maxLength": 3}},
        });
        let out = norm30(schema.clone());
        assert_eq!(out.notes.len(), 1);
        assert_eq!(out.notes[0].pointer, "/properties/code/pattern");
        assert!(
            out.notes[0].reason.contains("not a regular expression"),
            "{}",
            out.notes[0].reason
        );
        let v = validator(&schema, &empty_doc(), Version::V3_0, Direction::Request);
        assert!(v.is_valid(&json!({"code": "(("})));
        assert!(!v.is_valid(&json!({"code": "toolong"})));
        assert!(!v.is_valid(&json!({})));
    }

    #[test]
    fn a_bad_pattern_properties_key_is_reported() {
        let out = norm30(
            json!({"patternProperties": {"[": {"type": "string"}, "^x-": {"type": "integer"}}}),
        );
        assert_eq!(
            out.schema,
            json!({"patternProperties": {"^x-": {"type": "integer"}}})
        );
        assert_eq!(out.notes[0].pointer, "/patternProperties/[");
    }

    #[test]
    fn unresolvable_references_are_noted_and_accept_anything() {
        let doc = json!({"components": {"schemas": {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}}}});
        let schema = json!({"type": "object", "properties": {
            "ext": {"$ref": "other.yaml#/Pet"},
            "gone": {"$ref": "#/components/schemas/Gone"},
            "loop": {"$ref": "#/components/schemas/A"},
        }});
        let out = normalize(&schema, Version::V3_0, &doc, Direction::Request);
        let pointers: Vec<&str> = out.notes.iter().map(|n| n.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/properties/ext/$ref",
                "/properties/gone/$ref",
                "/properties/loop/$ref"
            ]
        );
        assert!(out.notes[0].reason.contains("other.yaml#/Pet"));
        let v = validator(&schema, &doc, Version::V3_0, Direction::Request);
        assert!(v.is_valid(&json!({"ext": 1, "gone": "x", "loop": []})));
    }

    #[test]
    fn references_are_reencoded_as_uri_fragments() {
        let doc = json!({"paths": {"/u/{id}": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"type": "integer"}}}}}}}}});
        let schema =
            json!({"$ref": "#/paths/~1u~1{id}/get/responses/200/content/application~1json/schema"});
        let out = normalize(&schema, Version::V3_0, &doc, Direction::Response);
        assert_eq!(
            out.schema,
            json!({"$ref": "#/paths/~1u~1%7Bid%7D/get/responses/200/content/application~1json/schema"})
        );
        let v = validator(&schema, &doc, Version::V3_0, Direction::Response);
        assert!(v.is_valid(&json!(3)));
        assert!(!v.is_valid(&json!("3")));
    }

    #[test]
    fn recursive_schemas_compile_and_validate() {
        let doc = json!({"openapi": "3.0.3", "components": {"schemas": {"Node": {
            "type": "object",
            "required": ["value"],
            "properties": {
                "value": {"type": "integer"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                "parent": {"$ref": "#/components/schemas/Node", "nullable": true},
            },
        }}}});
        let v = validator(
            &json!({"$ref": "#/components/schemas/Node"}),
            &doc,
            Version::V3_0,
            Direction::Request,
        );
        assert!(v.is_valid(&json!({"value": 1, "children": [{"value": 2, "children": []}]})));
        assert!(!v.is_valid(&json!({"value": 1, "children": [{"children": []}]})));
    }

    #[test]
    fn compile_registers_the_document_for_references_into_properties() {
        let doc = json!({"components": {"schemas": {"A": {"properties": {"b": {"type": "string", "nullable": true}}}}}});
        let schema = json!({"$ref": "#/components/schemas/A/properties/b"});
        let v = validator(&schema, &doc, Version::V3_0, Direction::Request);
        assert!(v.is_valid(&json!("x")));
        assert!(v.is_valid(&json!(null)));
        assert!(!v.is_valid(&json!(1)));
    }

    #[test]
    fn normalize_document_reaches_parameters_bodies_responses_and_headers() {
        let doc = json!({
            "openapi": "3.0.3",
            "paths": {"/p": {
                "parameters": [{"name": "q", "in": "query", "schema": {"type": "string", "nullable": true}}],
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"example": 1}}}},
                    "responses": {"200": {
                        "headers": {"X-N": {"schema": {"type": "integer", "minimum": 0, "exclusiveMinimum": true}}},
                        "content": {"text/plain": {"schema": {"pattern": "/a/i"}}},
                    }},
                },
            }},
            "components": {"parameters": {"P": {"content": {"application/json": {"schema": {"type": "file"}}}}}},
        });
        let out = normalize_document(&doc, Version::V3_0, Direction::Request);
        let at = |p: &str| out.schema.pointer(p).cloned();
        assert_eq!(
            at("/paths/~1p/parameters/0/schema"),
            Some(json!({"type": ["string", "null"]}))
        );
        assert_eq!(
            at("/paths/~1p/post/requestBody/content/application~1json/schema"),
            Some(json!({"examples": [1]}))
        );
        assert_eq!(
            at("/paths/~1p/post/responses/200/headers/X-N/schema"),
            Some(json!({"type": "integer", "exclusiveMinimum": 0}))
        );
        assert_eq!(
            at("/paths/~1p/post/responses/200/content/text~1plain/schema"),
            Some(json!({"pattern": "(?i)a"}))
        );
        assert_eq!(
            out.notes[0].pointer,
            "/components/parameters/P/content/application~1json/schema/type"
        );
    }

    #[test]
    fn a_3_1_document_is_read_as_2020_12() {
        let doc = json!({"openapi": "3.1.0", "components": {"schemas": {"S": {
            "type": ["string", "null"],
            "examples": ["a"],
            "exclusiveMinimum": 3,
            "prefixItems": [{"const": 1}],
            "$defs": {"X": {"type": "integer"}},
        }}}});
        let out = normalize_document(&doc, Version::V3_1, Direction::Request);
        assert_eq!(out.schema, doc);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn version_is_read_from_the_document() {
        assert_eq!(
            Version::of(&json!({"openapi": "3.0.3"})),
            Some(Version::V3_0)
        );
        assert_eq!(
            Version::of(&json!({"openapi": "3.1.0"})),
            Some(Version::V3_1)
        );
        assert_eq!(Version::of(&json!({"swagger": "2.0"})), None);
    }
}

mod sampling {
    use super::*;

    /// Samples `schema` and checks the value with the validator callers build (formats
    /// asserted too), and that a second run gives the same value.
    fn checked(schema: &Value, doc: &Value, version: Version, direction: Direction) -> Sample {
        let first = sample(schema, doc, version, direction);
        let again = sample(schema, doc, version, direction);
        assert_eq!(first, again, "sampling is deterministic");
        let document = normalize_document(doc, version, direction);
        let normalized = normalize(schema, version, doc, direction);
        let validator = compile_with(&normalized.schema, &document.schema, true).expect("compiles");
        let errors: Vec<String> = validator
            .iter_errors(&first.value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} is not valid: {errors:?}",
            first.value
        );
        first
    }

    fn petstore() -> Value {
        json!({
            "openapi": "3.0.3",
            "components": {"schemas": {
                "Category": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer", "format": "int64", "example": 1},
                        "name": {"type": "string", "example": "Dogs"},
                        "parent": {"$ref": "#/components/schemas/Category"},
                        "subcategories": {"type": "array", "items": {"$ref": "#/components/schemas/Category"}},
                    },
                },
                "Tag": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}, "name": {"type": "string"}}},
                "Pet": {
                    "type": "object",
                    "required": ["name", "photoUrls"],
                    "properties": {
                        "id": {"type": "integer", "format": "int64", "example": 10, "readOnly": true},
                        "name": {"type": "string", "example": "doggie"},
                        "category": {"$ref": "#/components/schemas/Category"},
                        "photoUrls": {"type": "array", "items": {"type": "string", "format": "uri"}},
                        "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}},
                        "status": {"type": "string", "description": "pet status in the store", "enum": ["available", "pending", "sold"]},
                    },
                },
            }},
        })
    }

    #[test]
    fn petstore_pet_with_a_recursive_category() {
        let doc = petstore();
        let pet = json!({"$ref": "#/components/schemas/Pet"});
        let response = checked(&pet, &doc, Version::V3_0, Direction::Response);
        assert_eq!(
            response.value,
            json!({
                "name": "doggie",
                "photoUrls": ["https://example.com/"],
                "id": 10,
                "category": {"id": 1, "name": "Dogs", "subcategories": []},
                "tags": [{"id": 0, "name": "string"}],
                "status": "available",
            })
        );
        assert!(response.notes.is_empty(), "{:?}", response.notes);
        let request = checked(&pet, &doc, Version::V3_0, Direction::Request);
        assert!(
            request.value.get("id").is_none(),
            "readOnly id is not sent in requests"
        );
    }

    #[test]
    fn write_only_password_is_absent_in_responses() {
        let doc = json!({"components": {"schemas": {"User": {
            "type": "object",
            "required": ["name", "password"],
            "properties": {
                "name": {"type": "string"},
                "password": {"type": "string", "format": "password", "writeOnly": true},
            },
        }}}});
        let user = json!({"$ref": "#/components/schemas/User"});
        let response = checked(&user, &doc, Version::V3_0, Direction::Response);
        assert_eq!(response.value, json!({"name": "string"}));
        let request = checked(&user, &doc, Version::V3_0, Direction::Request);
        assert_eq!(
            request.value,
            json!({"name": "string", "password": "secret-0"})
        );
    }

    #[test]
    fn discriminated_one_of_sets_the_mapping_key() {
        let doc = json!({"components": {"schemas": {
            "Cat": {"type": "object", "required": ["petType", "meows"], "properties": {"petType": {"type": "string"}, "meows": {"type": "boolean"}}},
            "Dog": {"type": "object", "required": ["petType", "barks"], "properties": {"petType": {"type": "string"}, "barks": {"type": "boolean"}}},
            "Pet": {
                "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
                "discriminator": {"propertyName": "petType", "mapping": {"cat": "#/components/schemas/Cat", "dog": "Dog"}},
            },
            "Unmapped": {
                "oneOf": [{"$ref": "#/components/schemas/Dog"}],
                "discriminator": {"propertyName": "petType"},
            },
        }}});
        let pet = checked(
            &json!({"$ref": "#/components/schemas/Pet"}),
            &doc,
            Version::V3_0,
            Direction::Response,
        );
        assert_eq!(pet.value, json!({"petType": "cat", "meows": true}));
        let unmapped = checked(
            &json!({"$ref": "#/components/schemas/Unmapped"}),
            &doc,
            Version::V3_0,
            Direction::Response,
        );
        assert_eq!(unmapped.value, json!({"petType": "Dog", "barks": true}));
    }

    #[test]
    fn a_subtype_made_with_all_of_names_itself_in_its_bases_discriminator() {
        let doc = json!({"components": {"schemas": {
            "Pet": {
                "type": "object",
                "required": ["petType"],
                "properties": {"petType": {"type": "string"}, "name": {"type": "string"}},
                "discriminator": {"propertyName": "petType", "mapping": {"kitty": "#/components/schemas/Cat"}},
            },
            "Cat": {"allOf": [{"$ref": "#/components/schemas/Pet"}, {"properties": {"meows": {"type": "boolean"}}}]},
            "Dog": {"allOf": [{"$ref": "#/components/schemas/Pet"}, {"properties": {"barks": {"type": "boolean"}}}]},
        }}});
        let cat = checked(
            &json!({"$ref": "#/components/schemas/Cat"}),
            &doc,
            Version::V3_0,
            Direction::Response,
        );
        assert_eq!(
            cat.value,
            json!({"petType": "kitty", "name": "string", "meows": true})
        );
        let dog = checked(
            &json!({"$ref": "#/components/schemas/Dog"}),
            &doc,
            Version::V3_0,
            Direction::Response,
        );
        assert_eq!(dog.value["petType"], json!("Dog"));
    }

    #[test]
    fn one_of_takes_a_branch_no_other_branch_accepts() {
        // The first branch's value is also valid against the second.
        let schema = json!({"oneOf": [
            {"type": "object", "properties": {"b": {"type": "integer"}}, "additionalProperties": false},
            {"type": "object", "properties": {"b": {"type": "integer"}, "c": {"type": "boolean"}}},
        ]});
        let out = checked(&schema, &empty_doc(), Version::V3_0, Direction::Response);
        assert_eq!(out.value, json!({"b": 0, "c": true}));
    }

    #[test]
    fn a_required_recursive_schema_terminates_and_says_so() {
        let doc = json!({"components": {"schemas": {"Chain": {
            "type": "object",
            "required": ["next"],
            "properties": {"next": {"$ref": "#/components/schemas/Chain"}},
        }}}});
        let out = sample(
            &json!({"$ref": "#/components/schemas/Chain"}),
            &doc,
            Version::V3_0,
            Direction::Response,
        );
        let mut depth = 0;
        let mut cursor = &out.value;
        while let Some(next) = cursor.get("next") {
            depth += 1;
            cursor = next;
        }
        assert!(depth <= 10, "depth {depth}");
        assert!(
            out.notes.iter().any(|n| n.reason.contains("recurses")),
            "{:?}",
            out.notes
        );
        assert_eq!(
            out,
            sample(
                &json!({"$ref": "#/components/schemas/Chain"}),
                &doc,
                Version::V3_0,
                Direction::Response
            )
        );
    }

    #[test]
    fn a_branching_required_recursion_stays_small() {
        let doc = json!({"components": {"schemas": {"T": {
            "type": "object",
            "required": ["l", "r", "m"],
            "properties": {
                "l": {"$ref": "#/components/schemas/T"},
                "r": {"$ref": "#/components/schemas/T"},
                "m": {"$ref": "#/components/schemas/T"},
            },
        }}}});
        let out = sample(
            &json!({"$ref": "#/components/schemas/T"}),
            &doc,
            Version::V3_0,
            Direction::Response,
        );
        assert!(out.value.to_string().len() < 2_000_000);
        assert!(!out.notes.is_empty());
    }

    #[test]
    fn a_recursive_one_of_takes_the_branch_that_ends() {
        let doc = json!({"components": {"schemas": {"Expr": {"oneOf": [
            {"type": "object", "required": ["left", "right"], "properties": {
                "left": {"$ref": "#/components/schemas/Expr"},
                "right": {"$ref": "#/components/schemas/Expr"},
            }},
            {"type": "integer"},
        ]}}}});
        let out = checked(
            &json!({"$ref": "#/components/schemas/Expr"}),
            &doc,
            Version::V3_0,
            Direction::Response,
        );
        assert_eq!(out.value, json!(0));
    }

    #[test]
    fn values_come_from_const_examples_default_and_enum_in_that_order() {
        let doc = empty_doc();
        let one = |s: Value| checked(&s, &doc, Version::V3_0, Direction::Response).value;
        assert_eq!(
            one(json!({"const": "c", "example": "e", "default": "d", "enum": ["c"]})),
            json!("c")
        );
        assert_eq!(
            one(json!({"type": "string", "example": "e", "default": "d"})),
            json!("e")
        );
        assert_eq!(
            one(json!({"type": "string", "default": "d", "enum": ["x", "d"]})),
            json!("d")
        );
        assert_eq!(
            one(json!({"type": "string", "enum": ["x", "y"], "nullable": true})),
            json!("x")
        );
        let v31 = sample(
            &json!({"type": "string", "examples": ["first", "second"]}),
            &doc,
            Version::V3_1,
            Direction::Response,
        );
        assert_eq!(v31.value, json!("first"));
    }

    #[test]
    fn an_example_that_does_not_fit_is_passed_over() {
        let out = checked(
            &json!({"type": "integer", "minimum": 5, "example": "five"}),
            &empty_doc(),
            Version::V3_0,
            Direction::Response,
        );
        assert_eq!(out.value, json!(5));
    }

    #[test]
    fn all_of_merges_properties_and_required() {
        let doc = json!({"components": {"schemas": {
            "Base": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer", "minimum": 3}}},
        }}});
        let schema = json!({"allOf": [
            {"$ref": "#/components/schemas/Base"},
            {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 8}, "id": {"maximum": 10}}},
        ]});
        let out = checked(&schema, &doc, Version::V3_0, Direction::Response);
        assert_eq!(out.value, json!({"id": 3, "name": "stringxx"}));
    }

    #[test]
    fn numbers_respect_bounds_and_multiples() {
        let doc = empty_doc();
        let one = |s: Value| checked(&s, &doc, Version::V3_0, Direction::Response).value;
        assert_eq!(
            one(json!({"type": "integer", "minimum": 5, "exclusiveMinimum": true})),
            json!(6)
        );
        assert_eq!(
            one(json!({"type": "integer", "minimum": 7, "multipleOf": 5})),
            json!(10)
        );
        assert_eq!(one(json!({"type": "integer", "maximum": -3})), json!(-3));
        assert_eq!(
            one(
                json!({"type": "number", "minimum": 0, "maximum": 1, "exclusiveMinimum": true, "exclusiveMaximum": true})
            ),
            json!(0.5)
        );
        assert_eq!(
            one(json!({"type": "number", "minimum": 0.15, "multipleOf": 0.1})),
            json!(0.2)
        );
        assert_eq!(
            one(json!({"type": "integer", "multipleOf": 0.3, "minimum": 1})),
            json!(3)
        );
        assert_eq!(
            one(json!({"type": "integer", "format": "int32", "minimum": 3000000000_i64})),
            json!(3000000000_i64)
        );
    }

    #[test]
    fn strings_follow_their_format() {
        let doc = empty_doc();
        let formats = [
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
        for format in formats {
            let out = checked(
                &json!({"type": "string", "format": format}),
                &doc,
                Version::V3_0,
                Direction::Response,
            );
            assert!(out.value.is_string(), "{format}");
        }
        let uuid = checked(
            &json!({"type": "string", "format": "uuid"}),
            &doc,
            Version::V3_0,
            Direction::Response,
        );
        assert_eq!(uuid.value, json!("3fa85f64-5717-4562-b3fc-2c963f66afa6"));
    }

    #[test]
    fn strings_match_their_pattern_and_length() {
        let doc = empty_doc();
        for pattern in [
            r"^(?=.*\d).{8,}$",
            r"^\p{L}+$",
            "/^abc$/i",
            r"^[A-Z]{3}-\d{4}$",
            r"^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)(?=.*[@$!%*?&])[A-Za-z\d@$!%*?&]{8,}$",
            r"^\+?[1-9]\d{1,14}$",
            r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
            "^(foo|bar)baz$",
            "[0-9]",
        ] {
            let out = checked(
                &json!({"type": "string", "pattern": pattern, "maxLength": 40}),
                &doc,
                Version::V3_0,
                Direction::Response,
            );
            assert!(out.notes.is_empty(), "{pattern}: {:?}", out.notes);
        }
        let long = checked(
            &json!({"type": "string", "pattern": "^[a-f]+$", "minLength": 30}),
            &doc,
            Version::V3_0,
            Direction::Response,
        );
        assert!(long.value.as_str().is_some_and(|s| s.len() >= 30));
    }

    #[test]
    fn a_pattern_no_candidate_matches_falls_back_and_says_so() {
        // A backreference the generator cannot follow, with a length that makes guessing fail.
        let out = sample(
            &json!({"type": "string", "pattern": r"^(\w{6})\1$"}),
            &empty_doc(),
            Version::V3_0,
            Direction::Response,
        );
        assert!(
            out.notes
                .iter()
                .any(|n| n.reason.contains("could not make a string")),
            "{:?}",
            out.notes
        );
    }

    #[test]
    fn arrays_respect_counts_uniqueness_and_contains() {
        let doc = empty_doc();
        let one = |s: Value| checked(&s, &doc, Version::V3_0, Direction::Response).value;
        assert_eq!(
            one(json!({"type": "array", "items": {"type": "integer"}})),
            json!([0])
        );
        assert_eq!(
            one(json!({"type": "array", "items": {"type": "integer"}, "maxItems": 0})),
            json!([])
        );
        assert_eq!(
            one(
                json!({"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 3, "uniqueItems": true})
            ),
            json!([1, 2, 3])
        );
        assert_eq!(
            one(
                json!({"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 2, "uniqueItems": true})
            ),
            json!(["a", "b"])
        );
        let v31 = checked(
            &json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "items": false, "contains": {"type": "boolean"}}),
            &doc,
            Version::V3_1,
            Direction::Response,
        );
        assert_eq!(v31.value, json!(["string", true]));
    }

    #[test]
    fn objects_fill_min_properties_from_additional_and_pattern_properties() {
        let doc = empty_doc();
        let one = |s: Value| checked(&s, &doc, Version::V3_0, Direction::Response).value;
        assert_eq!(
            one(json!({"type": "object", "additionalProperties": {"type": "integer"}})),
            json!({"additionalProp1": 0})
        );
        assert_eq!(one(json!({"type": "object", "additionalProperties": false, "minProperties": 1, "patternProperties": {"^x-[a-z]+$": {"type": "boolean"}}})).as_object().map(|m| m.len()), Some(1));
        assert_eq!(
            one(json!({"type": "object", "minProperties": 2}))
                .as_object()
                .map(|m| m.len()),
            Some(2)
        );
    }

    #[test]
    fn a_nullable_type_and_a_type_list_give_the_first_non_null_type() {
        let doc = empty_doc();
        assert_eq!(
            checked(
                &json!({"type": "integer", "nullable": true}),
                &doc,
                Version::V3_0,
                Direction::Response
            )
            .value,
            json!(0)
        );
        assert_eq!(
            checked(
                &json!({"type": ["null", "boolean"]}),
                &doc,
                Version::V3_1,
                Direction::Response
            )
            .value,
            json!(true)
        );
    }

    #[test]
    fn huge_counts_end_within_the_budget_and_say_so() {
        let schema = json!({"type": "array", "minItems": 1_000_000_000_u64, "items": {"type": "string", "minLength": 1_000_000_000_u64}});
        let out = sample(&schema, &empty_doc(), Version::V3_0, Direction::Response);
        assert!(
            out.value
                .as_array()
                .is_some_and(|items| items.len() < 100_000)
        );
        assert!(!out.notes.is_empty());
        let pattern = json!({"type": "string", "pattern": "^a+$", "minLength": 1_000_000_000_u64});
        let out = sample(&pattern, &empty_doc(), Version::V3_0, Direction::Response);
        assert!(out.value.as_str().is_some_and(|text| text.len() < 100_000));
        let object = json!({"type": "object", "minProperties": 1_000_000_000_u64});
        let out = sample(&object, &empty_doc(), Version::V3_0, Direction::Response);
        assert!(out.value.as_object().is_some_and(|map| map.len() < 100_000));
        assert!(!out.notes.is_empty());
    }

    #[test]
    fn not_of_a_type_picks_another() {
        let out = checked(
            &json!({"not": {"type": "object"}}),
            &empty_doc(),
            Version::V3_0,
            Direction::Response,
        );
        assert!(!out.value.is_object());
    }
}
