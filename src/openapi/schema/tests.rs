//! Unit tests of `refs`.

use serde_json::{Value, json};

use super::*;

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
