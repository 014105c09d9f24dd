//! One snapshot per generated type: its source as generated, and its JSON schema.
//!
//! Each type has snapshots of its own, so a change to the spec shows up only
//! in the snapshots of the types it touches.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use openai_uploads::types;

const CODEGEN: &str = include_str!(concat!(env!("OUT_DIR"), "/codegen.rs"));
const OPEN_ENUMS: &str = include_str!(concat!(env!("OUT_DIR"), "/open_enums.rs"));

/// Every type of `openai_uploads::types`, each turned into the JSON of its own
/// schema. Written by hand because `schema_for!` needs a type, not a name;
/// `hand_list_matches_generated_types` keeps it complete.
macro_rules! schemas {
    ($($ty:ident),* $(,)?) => {
        fn hand_listed_schemas() -> Vec<(&'static str, serde_json::Value)> {
            vec![$((
                stringify!($ty),
                serde_json::to_value(schemars::schema_for!(types::$ty))
                    .expect("schemas serialise"),
            )),*]
        }
    };
}

schemas![
    ApiError,
    CompleteUploadRequest,
    CreateUploadRequest,
    CreateUploadRequestPurpose,
    DeleteFileResponse,
    DeleteFileResponseObject,
    ErrorResponse,
    FileExpirationAfter,
    FileExpirationAfterAnchor,
    FilePurpose,
    FileStatus,
    ListFilesOrder,
    ListFilesResponse,
    OpenAiFile,
    OpenAiFileObject,
    Upload,
    UploadObject,
    UploadPart,
    UploadPartObject,
    UploadStatus,
];

fn parse(source: &str, what: &str) -> syn::File {
    syn::parse_file(source).unwrap_or_else(|e| panic!("{what} does not parse: {e}"))
}

/// The structs and enums declared directly in `pub mod types` of the generated
/// client, plus every open enum. Nested modules (`types::error`) hold helper
/// types, not ones the spec describes, and are left out.
fn generated_items() -> Vec<(String, syn::Item)> {
    let codegen = parse(CODEGEN, "codegen.rs");
    let types_mod = codegen
        .items
        .iter()
        .find_map(|item| match item {
            syn::Item::Mod(m) if m.ident == "types" => Some(m),
            _ => None,
        })
        .expect("codegen.rs declares `mod types`");
    let (_, types_items) = types_mod.content.as_ref().expect("`mod types` is inline");
    let open_enums = parse(OPEN_ENUMS, "open_enums.rs");

    let mut found = Vec::new();
    for item in types_items.iter().chain(&open_enums.items) {
        let name = match item {
            syn::Item::Struct(s) => s.ident.to_string(),
            syn::Item::Enum(e) => e.ident.to_string(),
            _ => continue,
        };
        found.push((name, item.clone()));
    }
    found
}

/// Runs every check even when some fail, so that one run names every type
/// whose snapshot changed.
fn all_pass(checks: impl IntoIterator<Item = (String, Box<dyn FnOnce()>)>) {
    let failed: Vec<String> = checks
        .into_iter()
        .filter_map(|(name, check)| {
            catch_unwind(AssertUnwindSafe(check))
                .is_err()
                .then_some(name)
        })
        .collect();
    assert!(failed.is_empty(), "snapshots differ for: {failed:?}");
}

#[test]
fn generated_source_per_type() {
    let items = generated_items();
    assert!(
        items.len() >= 10,
        "expected the spec's types, found {}",
        items.len()
    );
    all_pass(items.into_iter().map(|(name, item)| {
        let mut file = parse("", "an empty file");
        file.items.push(item);
        let source = prettyplease::unparse(&file);
        let check: Box<dyn FnOnce()> = Box::new({
            let name = name.clone();
            move || insta::assert_snapshot!(format!("source__{name}"), source)
        });
        (name, check)
    }));
}

#[test]
fn json_schema_per_type() {
    all_pass(hand_listed_schemas().into_iter().map(|(name, mut schema)| {
        // Referenced types have snapshots of their own; keeping them here too
        // would make a change to one type show up in every type that uses it.
        let root = schema.as_object_mut().expect("a root schema is an object");
        root.remove("definitions");
        let json = serde_json::to_string_pretty(&schema).expect("JSON serialises");
        let check: Box<dyn FnOnce()> =
            Box::new(move || insta::assert_snapshot!(format!("schema__{name}"), json));
        (name.to_string(), check)
    }));
}

#[test]
fn hand_list_matches_generated_types() {
    let generated: BTreeSet<String> = generated_items().into_iter().map(|(n, _)| n).collect();
    let listed: BTreeSet<String> = hand_listed_schemas()
        .into_iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let unlisted: Vec<_> = generated.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&generated).collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "add to `schemas!`: {unlisted:?}; remove from `schemas!`: {stale:?}"
    );
}

#[test]
fn every_referenced_definition_is_a_listed_type() {
    let listed: BTreeSet<&str> = hand_listed_schemas().iter().map(|(n, _)| *n).collect();
    for (name, schema) in hand_listed_schemas() {
        for definition in schema["definitions"].as_object().into_iter().flatten() {
            assert!(
                listed.contains(definition.0.as_str()),
                "{name} refers to {}, which has no snapshot of its own",
                definition.0
            );
        }
    }
}
