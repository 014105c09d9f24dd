#![cfg(feature = "spec")]
//! The upstream spec, extracted, generates the same Rust types as the vendored one.

mod common;

#[path = "../build/pipeline.rs"]
#[allow(dead_code)]
mod pipeline;

use std::collections::BTreeMap;

use openai_uploads::spec::{DEFAULT_OPERATIONS, extract, normalise_31_to_30, read};
use serde_json::Value;
use syn::visit_mut::VisitMut;

/// Drops doc comments, which are ours in the vendored spec and upstream's
/// there, and the same descriptions the open enums carry into their JSON Schema.
struct StripDocs;

impl VisitMut for StripDocs {
    fn visit_attributes_mut(&mut self, attrs: &mut Vec<syn::Attribute>) {
        attrs.retain(|a| !a.path().is_ident("doc"));
        for attr in attrs {
            self.visit_attribute_mut(attr);
        }
    }

    fn visit_lit_str_mut(&mut self, lit: &mut syn::LitStr) {
        if lit.value().ends_with("is kept in `Other`.") {
            *lit = syn::LitStr::new("", lit.span());
        }
    }
}

/// Every item of `pub mod types` (and of the open enums), docs removed, by name and position.
fn types_of(source: &str) -> BTreeMap<String, String> {
    let mut file = syn::parse_file(source).expect("generated code parses");
    StripDocs.visit_file_mut(&mut file);
    let items = file
        .items
        .iter()
        .find_map(|item| match item {
            syn::Item::Mod(m) if m.ident == "types" => m.content.as_ref().map(|(_, i)| i.clone()),
            _ => None,
        })
        .unwrap_or_else(|| file.items.clone());
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let name = match &item {
                syn::Item::Struct(s) => s.ident.to_string(),
                syn::Item::Enum(e) => e.ident.to_string(),
                syn::Item::Impl(imp) => {
                    let ty = &imp.self_ty;
                    format!("impl for {}", quote::quote!(#ty))
                }
                _ => String::from("item"),
            };
            let mut single = file_of_nothing();
            single.items.push(item);
            let text = prettyplease::unparse(&single);
            (format!("{i:03} {name}"), text)
        })
        .collect()
}

fn file_of_nothing() -> syn::File {
    syn::parse_file("").expect("an empty file parses")
}

/// The differences `openapi/README.md` documents for the types: upstream
/// declares no error responses, so its error envelope is carried over by hand,
/// with `Error` named `ApiError`; `POST /uploads` takes the purposes the
/// official SDKs accept, and the File echoes `evals` back.
fn apply_documented_differences(spec: &mut Value, upstream: &Value) {
    if let Some(purposes) = spec
        .pointer_mut("/components/schemas/CreateUploadRequest/properties/purpose/enum")
        .and_then(Value::as_array_mut)
    {
        purposes.extend(["user_data", "evals"].map(Value::from));
    }
    if let Some(purposes) = spec
        .pointer_mut("/components/schemas/OpenAIFile/properties/purpose/enum")
        .and_then(Value::as_array_mut)
    {
        purposes.push(Value::from("evals"));
    }
    let mut envelope = serde_json::json!({
        "openapi": "3.1.0",
        "components": { "schemas": {
            "ErrorResponse": upstream["components"]["schemas"]["ErrorResponse"],
            "ApiError": upstream["components"]["schemas"]["Error"],
        }},
    });
    normalise_31_to_30(&mut envelope);
    if let (Some(schemas), Some(extra)) = (
        spec.pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut),
        envelope["components"]["schemas"].as_object(),
    ) {
        schemas.extend(extra.clone());
    }
    let text = serde_json::to_string(spec).expect("serialises").replace(
        "\"#/components/schemas/Error\"",
        "\"#/components/schemas/ApiError\"",
    );
    *spec = serde_json::from_str(&text).expect("still JSON");
}

#[test]
fn extracted_upstream_generates_the_vendored_types() {
    let Some(path) = common::upstream_spec() else {
        return;
    };
    let upstream = read(&path).expect("upstream parses");
    let mut extracted = extract(&upstream, DEFAULT_OPERATIONS).expect("upstream extracts");
    apply_documented_differences(&mut extracted, &upstream);
    let vendored = read(&common::vendored_spec()).expect("vendored spec parses");

    let from_upstream = pipeline::generate(extracted).expect("upstream generates");
    let from_vendored = pipeline::generate(vendored).expect("vendored generates");

    let (ours, theirs) = (
        types_of(&from_vendored.client),
        types_of(&from_upstream.client),
    );
    assert!(ours.len() > 20, "too few generated items: {}", ours.len());
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (name, text) in &ours {
        assert_eq!(text, &theirs[name], "{name} differs");
    }
    assert_eq!(
        types_of(&from_vendored.open_enums),
        types_of(&from_upstream.open_enums)
    );
}

#[test]
fn an_unexpected_multipart_operation_fails_generation() {
    let mut spec = read(&common::vendored_spec()).expect("vendored spec parses");
    let parts = spec["paths"]["/uploads/{upload_id}/parts"]["post"].clone();
    let mut renamed = parts;
    renamed["operationId"] = "addSomethingElse".into();
    spec["paths"]["/other"] = serde_json::json!({ "post": renamed });
    let error = pipeline::generate(spec)
        .err()
        .expect("an unknown multipart operation is refused");
    assert!(error.contains("addSomethingElse"), "{error}");
}

#[test]
fn an_enum_value_added_to_the_spec_reaches_the_open_enum() {
    let mut spec = read(&common::vendored_spec()).expect("vendored spec parses");
    spec["components"]["schemas"]["Upload"]["properties"]["status"]["enum"]
        .as_array_mut()
        .expect("status enum")
        .push("archived".into());
    let generated = pipeline::generate(spec).expect("generates");
    assert!(generated.open_enums.contains("Archived"));
    assert!(generated.open_enums.contains("\"archived\""));
}
