#![cfg(feature = "spec")]
//! Extracting operations and the components they reach.

use std::collections::BTreeSet;
mod common;
use std::time::Instant;

use openai_uploads::spec::{DEFAULT_OPERATIONS, SpecError, extract, parse, read};
use serde_json::Value;

fn fixture() -> Value {
    parse(include_str!("fixtures/spec/extract-31.yaml")).expect("fixture parses")
}

fn component_names(spec: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (kind, entries) in spec["components"].as_object().into_iter().flatten() {
        for name in entries.as_object().into_iter().flatten().map(|(n, _)| n) {
            names.insert(format!("{kind}/{name}"));
        }
    }
    names
}

#[test]
fn keeps_exactly_the_reachable_components() {
    let spec = extract(&fixture(), &["createThing"]).expect("extracts");
    let expected: BTreeSet<String> = [
        "requestBodies/ThingBody",
        "responses/BadRequest",
        "schemas/Image",
        "schemas/Label",
        "schemas/NewThing",
        "schemas/Owner",
        "schemas/Problem",
        "schemas/Thing",
        "securitySchemes/KeyAuth",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(component_names(&spec), expected);

    let paths = spec["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), 1);
    let item = paths["/things"].as_object().expect("path item");
    assert_eq!(item.keys().collect::<Vec<_>>(), ["post"]);
}

#[test]
fn keeps_top_level_fields_and_converts_to_3_0() {
    let spec = extract(&fixture(), &["createThing"]).expect("extracts");
    assert_eq!(spec["openapi"], "3.0.3");
    assert_eq!(
        spec["info"],
        serde_json::json!({ "title": "Extract fixture", "version": "9.9.9" })
    );
    assert_eq!(spec["servers"][0]["url"], "https://example.test/v1");
    assert_eq!(spec["security"][0]["KeyAuth"], serde_json::json!([]));
    assert!(spec.get("x-oaiMeta").is_none());
    assert!(spec["paths"]["/things"]["post"].get("x-oaiMeta").is_none());
    let thing = &spec["components"]["schemas"]["Thing"];
    assert!(thing.get("x-stainless-const").is_none());
    assert_eq!(
        thing["properties"]["kind"]["enum"],
        serde_json::json!(["thing"])
    );
    // A property whose name starts with `x-` is data, not an extension.
    assert!(spec["components"]["schemas"]["NewThing"]["properties"]["x-internal"].is_object());
    assert_eq!(
        spec["components"]["schemas"]["NewThing"]["properties"]["parent"],
        serde_json::json!({ "allOf": [{ "$ref": "#/components/schemas/Thing" }], "nullable": true })
    );
    assert_eq!(
        spec["components"]["schemas"]["Owner"]["properties"]["name"],
        serde_json::json!({ "type": "string", "nullable": true })
    );
}

#[test]
fn keeps_path_level_parameters_and_operation_security() {
    let spec = extract(&fixture(), &["deleteThing"]).expect("extracts");
    let expected: BTreeSet<String> = [
        "parameters/ThingId",
        "securitySchemes/KeyAuth",
        "securitySchemes/OtherAuth",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(component_names(&spec), expected);
    assert!(spec["paths"]["/things/{thing_id}"]["parameters"].is_array());
}

#[test]
fn unknown_operation_is_named_in_the_error() {
    let err = extract(&fixture(), &["createThing", "launchRocket"]).expect_err("must fail");
    assert!(
        matches!(&err, SpecError::UnknownOperations(ids) if ids == &["launchRocket".to_string()])
    );
    assert!(err.to_string().contains("launchRocket"), "{err}");
}

#[test]
fn missing_component_is_an_error_not_a_panic() {
    let mut spec = fixture();
    spec["components"]["schemas"]
        .as_object_mut()
        .expect("schemas")
        .remove("Image");
    let err = extract(&spec, &["createThing"]).expect_err("must fail");
    assert!(
        err.to_string().contains("#/components/schemas/Image"),
        "{err}"
    );
}

#[test]
fn malformed_documents_are_errors() {
    assert!(extract(&Value::Null, &["x"]).is_err());
    assert!(extract(&serde_json::json!({ "paths": [] }), &["x"]).is_err());
    assert!(parse("- just\n- a list\n").is_err());
    assert!(parse("{ not json").is_err());
    assert!(parse("key: [unclosed").is_err());
}

#[test]
fn real_upstream_extracts_and_generates() {
    let Some(path) = common::upstream_spec() else {
        return;
    };
    let started = Instant::now();
    let upstream = read(&path).expect("upstream parses");
    let parsed = started.elapsed();
    let spec = extract(&upstream, DEFAULT_OPERATIONS).expect("upstream extracts");
    println!(
        "parsed {} in {parsed:?}, extracted in {:?}",
        path.display(),
        started.elapsed() - parsed
    );

    let mut ids = BTreeSet::new();
    for item in spec["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("path item").values() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                ids.insert(id.to_string());
            }
        }
    }
    let expected: BTreeSet<String> = DEFAULT_OPERATIONS.iter().map(|s| s.to_string()).collect();
    assert_eq!(ids, expected);

    let mut generated_from = spec.clone();
    for item in generated_from["paths"]
        .as_object_mut()
        .expect("paths")
        .values_mut()
    {
        if let Some(item) = item.as_object_mut() {
            item.retain(|_, op| {
                op.pointer("/requestBody/content/multipart~1form-data")
                    .is_none()
            });
        }
    }
    let openapi: openapiv3::OpenAPI =
        serde_json::from_value(generated_from).expect("extracted spec is OpenAPI 3.0");
    let tokens = progenitor::Generator::default()
        .generate_tokens(&openapi)
        .expect("progenitor generates");
    let file: syn::File = syn::parse2(tokens).expect("generated code parses");
    let code = prettyplease::unparse(&file);
    assert!(
        code.contains("fn create_upload"),
        "no create_upload in generated code"
    );
    assert!(
        code.contains("pub struct Upload"),
        "no Upload type in generated code"
    );
}
