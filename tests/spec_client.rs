#![cfg(feature = "spec")]
//! Every operation of the vendored spec has a method on `Client`: the table is the
//! spec's own list of operations, each named as progenitor names its method.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use openai_uploads::spec::read;
use serde_json::{Value, json};

/// `createUpload` → `create_upload`, as progenitor names an operation's method.
fn method_name(operation_id: &str) -> String {
    let mut name = String::new();
    for c in operation_id.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

/// The operation ids of `spec`.
fn operation_ids(spec: &Value) -> BTreeSet<String> {
    spec["paths"]
        .as_object()
        .expect("the spec has paths")
        .values()
        .filter_map(Value::as_object)
        .flat_map(|item| item.values())
        .filter_map(|op| op.get("operationId").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// The public methods of every `impl Client` block under `dir`, read from the source.
fn client_methods(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("src/ is listed") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            client_methods(&path, found);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file is readable");
        let file = syn::parse_file(&text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        for item in file.items {
            let syn::Item::Impl(block) = item else {
                continue;
            };
            let syn::Type::Path(ty) = &*block.self_ty else {
                continue;
            };
            if block.trait_.is_some() || !ty.path.is_ident("Client") {
                continue;
            }
            for item in block.items {
                if let syn::ImplItem::Fn(f) = item
                    && matches!(f.vis, syn::Visibility::Public(_))
                {
                    found.insert(f.sig.ident.to_string());
                }
            }
        }
    }
}

/// The operations of `spec` with no method on `Client`, as `operationId → method`.
fn uncovered(spec: &Value) -> Vec<String> {
    let mut methods = BTreeSet::new();
    client_methods(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut methods,
    );
    operation_ids(spec)
        .into_iter()
        .map(|id| (method_name(&id), id))
        .filter(|(method, _)| !methods.contains(method))
        .map(|(method, id)| format!("{id} → Client::{method}"))
        .collect()
}

#[test]
fn every_vendored_operation_has_a_method_on_client() {
    let spec = read(&common::vendored_spec()).expect("the vendored spec parses");
    assert_eq!(operation_ids(&spec).len(), 8);
    let missing = uncovered(&spec);
    assert!(
        missing.is_empty(),
        "operations of openapi/api-definition.yaml with no method on Client: {missing:?}"
    );
}

#[test]
fn every_vendored_operation_is_one_the_answer_checks_know() {
    let spec = read(&common::vendored_spec()).expect("the vendored spec parses");
    for id in operation_ids(&spec) {
        let method = method_name(&id);
        assert!(
            openai_uploads::validate::Operation::from_id(&method).is_some(),
            "{id}: the answer checks have no operation `{method}`"
        );
    }
}

#[test]
fn a_new_operation_is_named_until_client_has_its_method() {
    let mut spec = read(&common::vendored_spec()).expect("the vendored spec parses");
    spec["paths"]["/uploads/{upload_id}"] =
        json!({ "get": { "operationId": "retrieveUpload", "responses": {} } });
    assert_eq!(
        uncovered(&spec),
        ["retrieveUpload → Client::retrieve_upload"]
    );
}

#[test]
fn every_vendored_operation_declares_the_error_envelope() {
    // An operation taken in by `spec update` has only upstream's responses until its
    // `4XX` and `5XX` pointers are recorded in openapi/differences.yaml.
    let spec = read(&common::vendored_spec()).expect("the vendored spec parses");
    for item in spec["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("a path item").values() {
            let id = op["operationId"].as_str().unwrap_or("?");
            for status in ["4XX", "5XX"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{id} declares no {status} response: record its pointer in \
                     openapi/differences.yaml and run `openai spec update`"
                );
            }
        }
    }
}
