#![cfg(feature = "spec")]
//! The YAML the vendored spec is written in reads back as the same document, whatever
//! the strings, keys and nesting.

use openai_uploads::spec::{parse, to_yaml};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Strings that stress YAML's plain scalars: indicators, reserved words, numbers,
/// blanks, line breaks, quotes and non-ASCII text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,30}",
        "[a-z ]{0,120}",
        "[-?:,\\[\\]{}#&*!|>'\"%@` a-z0-9.~\\\\]{0,12}",
        prop::sample::select(vec![
            "true",
            "False",
            "NULL",
            "~",
            "yes",
            "No",
            "on",
            "0x1F",
            "1e3",
            ".inf",
            "-.5",
            "007",
            "1_000",
            "2026-08-21",
            "a: b",
            "a #b",
            "- x",
            "? y",
            "\t",
            "\n",
            " x ",
            "",
        ])
        .prop_map(str::to_string),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1.0e12..1.0e12f64).prop_map(Value::from),
        text().prop_map(Value::String),
    ]
}

fn document() -> impl Strategy<Value = Value> {
    let value = leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    });
    prop::collection::btree_map(text(), value, 1..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn written_yaml_reads_back_as_the_same_document(doc in document()) {
        let yaml = to_yaml(&doc);
        let back = parse(&yaml).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        prop_assert_eq!(back, doc, "{}", yaml);
    }
}

#[test]
fn the_vendored_spec_reads_back_unchanged() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/openapi/api-definition.yaml"
    ))
    .expect("the vendored spec is readable");
    let spec = parse(&text).expect("it parses");
    assert_eq!(to_yaml(&spec), text);
}
