#![cfg(feature = "spec")]
//! 3.1 → 3.0 rewrites, one construct at a time.

use openai_uploads::spec::{normalise_31_to_30, parse};
use serde_json::{Value, json};

fn normalised() -> Value {
    let text = include_str!("fixtures/spec/normalise-31.yaml");
    let mut spec = parse(text).expect("fixture parses");
    normalise_31_to_30(&mut spec);
    spec
}

fn schema(spec: &Value, name: &str) -> Value {
    spec["components"]["schemas"][name].clone()
}

#[test]
fn document_becomes_3_0() {
    let spec = normalised();
    assert_eq!(spec["openapi"], "3.0.3");
    assert!(spec.get("webhooks").is_none());
    assert!(spec.get("jsonSchemaDialect").is_none());
    assert!(spec["info"].get("summary").is_none());
    assert_eq!(spec["info"]["license"], json!({ "name": "MIT" }));
}

#[test]
fn type_array_with_null_becomes_nullable() {
    let spec = normalised();
    assert_eq!(
        schema(&spec, "TypeArray"),
        json!({ "type": "string", "nullable": true, "description": "A nullable string." })
    );
    assert_eq!(
        schema(&spec, "TypeUnion"),
        json!({ "anyOf": [{ "type": "string" }, { "type": "integer" }] })
    );
    assert_eq!(
        schema(&spec, "Nested")["properties"]["list"]["items"],
        json!({ "type": "integer", "nullable": true })
    );
}

#[test]
fn any_of_with_null_becomes_nullable_schema() {
    let spec = normalised();
    assert_eq!(
        schema(&spec, "AnyOfNullInline"),
        json!({
            "type": "integer",
            "minimum": 1,
            "nullable": true,
            "description": "Keeps its own description."
        })
    );
}

#[test]
fn one_of_ref_with_null_becomes_nullable_all_of() {
    let spec = normalised();
    assert_eq!(
        schema(&spec, "OneOfNullRef"),
        json!({ "allOf": [{ "$ref": "#/components/schemas/Target" }], "nullable": true })
    );
}

#[test]
fn all_of_with_nullable_member_is_hoisted() {
    let spec = normalised();
    assert_eq!(
        schema(&spec, "AllOfNullable"),
        json!({
            "allOf": [{ "$ref": "#/components/schemas/Target" }],
            "nullable": true,
            "description": "Hoisted."
        })
    );
}

#[test]
fn ref_with_structural_sibling_is_wrapped() {
    let spec = normalised();
    assert_eq!(
        schema(&spec, "RefWithSibling"),
        json!({ "allOf": [{ "$ref": "#/components/schemas/Target" }], "nullable": true })
    );
}

#[test]
fn const_becomes_single_enum() {
    let spec = normalised();
    assert_eq!(
        schema(&spec, "Const"),
        json!({ "type": "string", "enum": ["upload"] })
    );
}

#[test]
fn examples_list_becomes_first_example() {
    let spec = normalised();
    assert_eq!(
        schema(&spec, "Examples"),
        json!({ "type": "string", "example": "first" })
    );
}

#[test]
fn numeric_exclusive_bounds_become_boolean() {
    let spec = normalised();
    assert_eq!(
        schema(&spec, "Bounds"),
        json!({
            "type": "number",
            "minimum": 0,
            "exclusiveMinimum": true,
            "maximum": 100,
            "exclusiveMaximum": true
        })
    );
}

#[test]
fn keywords_unknown_to_3_0_are_dropped() {
    let spec = normalised();
    assert_eq!(schema(&spec, "Dropped"), json!({ "type": "string" }));
}

#[test]
fn property_names_and_examples_that_look_like_keywords_are_kept() {
    let spec = normalised();
    let keywords = schema(&spec, "Keywords");
    assert_eq!(keywords["properties"]["const"], json!({ "type": "string" }));
    assert_eq!(
        keywords["properties"]["$schema"],
        json!({ "type": "string" })
    );
    assert_eq!(
        keywords["properties"]["examples"],
        json!({ "type": "array", "items": { "type": "string" } })
    );
    assert_eq!(
        keywords["example"],
        json!({ "const": "kept", "examples": ["kept"] })
    );
}

#[test]
fn a_3_0_spec_is_left_alone() {
    let text = include_str!("fixtures/spec/diff-old.yaml");
    let original = parse(text).expect("fixture parses");
    let mut spec = original.clone();
    normalise_31_to_30(&mut spec);
    assert_eq!(spec, original);
}
