//! Unit tests of `refs` and `normalize`. Validation results come from the
//! `jsonschema` validator itself, built with `compile` the way callers build it.

use serde_json::{Value, json};

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
