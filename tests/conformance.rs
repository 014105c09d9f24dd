//! Responses checked against the vendored spec, and the generated types
//! checked against the same spec.

#![cfg(feature = "schema")]

use std::collections::BTreeSet;

use openai_uploads::types;
use openai_uploads::validate::schema::json_schema_for;
use openai_uploads::validate::{
    self, Conformance, Operation, SchemaViolation, SpecSchemas, ValidationMode,
};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use ValidationMode::{Lenient, Off, Strict};

const SPEC: &str = include_str!(concat!(env!("OUT_DIR"), "/api-definition.json"));

macro_rules! fixture {
    ($name:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!("fixtures/", $name, ".json")))
            .expect(concat!("fixtures/", $name, ".json is JSON"))
    };
}

fn check(name: &str, document: &Value, mode: ValidationMode) -> Conformance {
    SpecSchemas::vendored().check(name, document, mode)
}

fn shown(violations: &[SchemaViolation]) -> Vec<String> {
    violations.iter().map(ToString::to_string).collect()
}

fn pointers(violations: &[SchemaViolation]) -> Vec<&str> {
    violations.iter().map(|v| v.pointer.as_str()).collect()
}

fn archived_with_extra_field() -> Value {
    let mut upload = fixture!("upload_pending");
    upload["status"] = json!("archived");
    upload["retention"] = json!("30d");
    upload
}

#[test]
fn strict_rejects_unknown_enum_value_and_unknown_field() {
    let report = check("Upload", &archived_with_extra_field(), Strict);
    assert!(!report.is_ok());
    let mut found = pointers(&report.violations);
    found.sort_unstable();
    assert_eq!(found, ["/retention", "/status"]);
    let status = report
        .violations
        .iter()
        .find(|v| v.pointer == "/status")
        .unwrap();
    assert!(status.message.contains("\"archived\""), "{status}");
    let field = report
        .violations
        .iter()
        .find(|v| v.pointer == "/retention")
        .unwrap();
    assert_eq!(field.message, "field not in the spec");
}

#[test]
fn lenient_accepts_unknown_enum_value_and_unknown_field_with_warnings() {
    let document = archived_with_extra_field();
    let report = check("Upload", &document, Lenient);
    assert!(report.is_ok(), "{:?}", report.violations);
    let mut warned = pointers(&report.warnings);
    warned.sort_unstable();
    assert_eq!(warned, ["/retention", "/status"]);

    let upload: types::Upload = serde_json::from_value(document).expect("decodes");
    assert_eq!(upload.status, types::UploadStatus::Other("archived".into()));
    assert_eq!(
        serde_json::to_value(&upload).unwrap()["status"],
        json!("archived")
    );
}

#[test]
fn unknown_enum_value_inside_a_nested_file() {
    let document = fixture!("upload_unknown_enums");
    let strict = check("Upload", &document, Strict);
    assert_eq!(pointers(&strict.violations).len(), 2);
    assert!(pointers(&strict.violations).contains(&"/file/purpose"));
    assert!(check("Upload", &document, Lenient).is_ok());
}

#[test]
fn lenient_keeps_closed_enums_closed() {
    // `object` is a closed enum in Rust too: accepting an unknown value would
    // only move the failure to a vaguer decode error.
    let mut part = fixture!("upload_part");
    part["object"] = json!("upload.chunk");
    let report = check("UploadPart", &part, Lenient);
    assert_eq!(pointers(&report.violations), ["/object"]);
    assert!(report.violations[0].message.contains("upload.chunk"));
}

#[test]
fn wrong_type_names_pointer_and_types() {
    let mut upload = fixture!("upload_completed");
    upload["file"]["bytes"] = json!("2147483648");
    for mode in [Strict, Lenient] {
        let report = check("Upload", &upload, mode);
        assert_eq!(
            shown(&report.violations),
            ["/file/bytes: expected integer, found string"],
            "{mode:?}"
        );
    }
}

#[test]
fn missing_required_field_names_its_pointer() {
    let mut upload = fixture!("upload_completed");
    upload.as_object_mut().unwrap().remove("expires_at");
    upload["file"].as_object_mut().unwrap().remove("filename");
    for mode in [Strict, Lenient] {
        let report = check("Upload", &upload, mode);
        let mut found = shown(&report.violations);
        found.sort_unstable();
        assert_eq!(
            found,
            [
                "/expires_at: missing required field",
                "/file/filename: missing required field"
            ],
            "{mode:?}"
        );
    }
}

#[test]
fn nullable_fields_accept_null_and_refuse_other_types() {
    assert!(check("Upload", &fixture!("upload_cancelled_file_null"), Strict).is_ok());
    assert!(check("ErrorResponse", &fixture!("error_response"), Strict).is_ok());
    let mut envelope = fixture!("error_response");
    envelope["error"]["code"] = json!(429);
    let report = check("ErrorResponse", &envelope, Strict);
    assert_eq!(pointers(&report.violations), ["/error/code"]);
}

#[test]
fn unknown_schema_name_is_a_violation() {
    let report = check("Uplaod", &json!({}), Lenient);
    assert_eq!(
        shown(&report.violations),
        ["/: the spec has no schema `Uplaod`"]
    );
}

#[test]
fn off_checks_nothing() {
    assert_eq!(check("Upload", &json!(42), Off), Conformance::default());
    let completed_without_file = fixture!("upload_pending");
    let report =
        validate::check_response(Operation::CompleteUpload, 200, &completed_without_file, Off);
    assert_eq!(report, Conformance::default());
}

fn completed() -> Value {
    fixture!("upload_completed")
}

#[test]
fn completed_upload_without_file_is_a_violation_in_both_modes() {
    for without in [
        {
            let mut u = completed();
            u.as_object_mut().unwrap().remove("file");
            u
        },
        {
            let mut u = completed();
            u["file"] = Value::Null;
            u
        },
    ] {
        for mode in [Strict, Lenient] {
            let report = validate::check_response(Operation::CompleteUpload, 200, &without, mode);
            assert_eq!(pointers(&report.violations), ["/file"], "{mode:?}");
        }
    }
}

#[test]
fn completed_upload_whose_file_size_differs_is_a_violation() {
    let mut upload = completed();
    upload["file"]["bytes"] = json!(2_147_483_647_i64);
    for mode in [Strict, Lenient] {
        let report = validate::check_response(Operation::CompleteUpload, 200, &upload, mode);
        assert_eq!(pointers(&report.violations), ["/file/bytes"], "{mode:?}");
        assert!(report.violations[0].message.contains("2147483647"));
    }
}

#[test]
fn completion_that_is_not_completed_is_a_violation() {
    let mut upload = completed();
    upload["status"] = json!("pending");
    let report = validate::check_response(Operation::CompleteUpload, 200, &upload, Lenient);
    assert_eq!(pointers(&report.violations), ["/status"]);
}

#[test]
fn well_formed_completion_passes_strictly() {
    let report = validate::check_response(Operation::CompleteUpload, 200, &completed(), Strict);
    assert_eq!(report, Conformance::default());
}

#[test]
fn wrong_id_prefix_is_strict_violation_and_lenient_warning() {
    for (pointer, upload) in [
        ("/id", {
            let mut u = completed();
            u["id"] = json!("upl_6a9f2c41b7d0");
            u
        }),
        ("/file/id", {
            let mut u = completed();
            u["file"]["id"] = json!("file_8d1e5b3a0c27");
            u
        }),
    ] {
        let strict = validate::check_response(Operation::CompleteUpload, 200, &upload, Strict);
        assert_eq!(pointers(&strict.violations), [pointer]);
        assert!(strict.violations[0].message.contains("prefix"));

        let lenient = validate::check_response(Operation::CompleteUpload, 200, &upload, Lenient);
        assert!(lenient.is_ok(), "{:?}", lenient.violations);
        assert_eq!(pointers(&lenient.warnings), [pointer]);
    }

    let mut part = fixture!("upload_part");
    part["id"] = json!("chunk_1");
    let strict = validate::check_response(Operation::AddUploadPart, 200, &part, Strict);
    assert_eq!(pointers(&strict.violations), ["/id"]);
}

#[test]
fn expiry_before_creation_is_strict_violation_and_lenient_warning() {
    let mut upload = completed();
    upload["expires_at"] = json!(1_719_184_910);
    let strict = validate::check_response(Operation::CompleteUpload, 200, &upload, Strict);
    assert_eq!(pointers(&strict.violations), ["/expires_at"]);
    let lenient = validate::check_response(Operation::CompleteUpload, 200, &upload, Lenient);
    assert!(lenient.is_ok());
    assert_eq!(pointers(&lenient.warnings), ["/expires_at"]);
    assert!(lenient.warnings[0].message.contains("before created_at"));
}

#[test]
fn cancel_answered_with_pending_is_a_violation() {
    let pending = fixture!("upload_pending");
    for mode in [Strict, Lenient] {
        let report = validate::check_response(Operation::CancelUpload, 200, &pending, mode);
        assert_eq!(pointers(&report.violations), ["/status"], "{mode:?}");
        assert!(report.violations[0].message.contains("cancelled"));
    }
    let cancelled = fixture!("upload_cancelled_file_null");
    assert!(validate::check_response(Operation::CancelUpload, 200, &cancelled, Strict).is_ok());
}

#[test]
fn create_answered_with_completed_is_a_violation() {
    let report = validate::check_response(Operation::CreateUpload, 200, &completed(), Lenient);
    assert_eq!(pointers(&report.violations), ["/status"]);
    let pending = fixture!("upload_pending");
    assert!(validate::check_response(Operation::CreateUpload, 200, &pending, Strict).is_ok());
}

#[test]
fn error_statuses_are_checked_against_the_error_envelope() {
    let envelope = fixture!("error_response_with_param");
    for status in [400, 404, 429, 500, 503] {
        assert!(
            validate::check_response(Operation::CompleteUpload, status, &envelope, Strict).is_ok()
        );
        let report =
            validate::check_response(Operation::CompleteUpload, status, &completed(), Lenient);
        assert_eq!(pointers(&report.violations), ["/error"], "{status}");
    }
}

#[test]
fn operations_map_to_their_schemas() {
    for (id, operation, schema) in [
        ("create_upload", Operation::CreateUpload, Some("Upload")),
        (
            "add_upload_part",
            Operation::AddUploadPart,
            Some("UploadPart"),
        ),
        ("complete_upload", Operation::CompleteUpload, Some("Upload")),
        ("cancel_upload", Operation::CancelUpload, Some("Upload")),
        ("retrieve_file", Operation::RetrieveFile, Some("OpenAIFile")),
        (
            "delete_file",
            Operation::DeleteFile,
            Some("DeleteFileResponse"),
        ),
        ("download_file", Operation::DownloadFile, None),
    ] {
        assert_eq!(Operation::from_id(id), Some(operation));
        assert_eq!(operation.success_schema(), schema);
        if let Some(schema) = schema {
            assert!(
                SpecSchemas::vendored().names().any(|n| n == schema),
                "{schema}"
            );
        }
    }
    assert_eq!(Operation::from_id("createUpload"), None);
}

fn spec_components() -> Map<String, Value> {
    let spec: Value = serde_json::from_str(SPEC).expect("the build script writes JSON");
    spec["components"]["schemas"]
        .as_object()
        .expect("the spec has components.schemas")
        .clone()
}

/// The spec's own schema for component `name`, as the validation layer reads it.
fn spec_definition(name: &str) -> Value {
    json_schema_for(&spec_components(), name, true)["definitions"][name].clone()
}

/// A generated type, the spec component it stands for, and documents valid for both.
struct Agreement {
    spec_name: &'static str,
    type_name: &'static str,
    schemars: Value,
    round_trip: fn(&Value) -> Result<Value, serde_json::Error>,
    fixtures: Vec<Value>,
}

fn encode_again<T: DeserializeOwned + Serialize>(
    document: &Value,
) -> Result<Value, serde_json::Error> {
    serde_json::to_value(serde_json::from_value::<T>(document.clone())?)
}

macro_rules! agreement {
    ($spec:literal, $ty:ident, $fixtures:expr) => {
        Agreement {
            spec_name: $spec,
            type_name: stringify!($ty),
            schemars: serde_json::to_value(schemars::schema_for!(types::$ty)).unwrap(),
            round_trip: encode_again::<types::$ty>,
            fixtures: $fixtures,
        }
    };
}

/// Nested objects (a File inside an Upload, the error inside its envelope)
/// serve as documents of their own types too.
fn agreements() -> Vec<Agreement> {
    vec![
        agreement!(
            "Upload",
            Upload,
            vec![
                fixture!("upload_pending"),
                fixture!("upload_minimal"),
                fixture!("upload_completed"),
            ]
        ),
        agreement!("UploadPart", UploadPart, vec![fixture!("upload_part")]),
        agreement!(
            "OpenAIFile",
            OpenAiFile,
            vec![
                fixture!("openai_file"),
                fixture!("openai_file_minimal"),
                completed()["file"].clone(),
            ]
        ),
        agreement!(
            "ListFilesResponse",
            ListFilesResponse,
            vec![fixture!("list_files_response")]
        ),
        agreement!(
            "DeleteFileResponse",
            DeleteFileResponse,
            vec![fixture!("delete_file_response")]
        ),
        agreement!(
            "ErrorResponse",
            ErrorResponse,
            vec![
                fixture!("error_response"),
                fixture!("error_response_with_param")
            ]
        ),
        agreement!(
            "ApiError",
            ApiError,
            vec![
                fixture!("error_response")["error"].clone(),
                fixture!("error_response_with_param")["error"].clone(),
            ]
        ),
        agreement!(
            "CreateUploadRequest",
            CreateUploadRequest,
            vec![
                fixture!("create_upload_request"),
                fixture!("create_upload_request_expires"),
            ]
        ),
        agreement!(
            "FileExpirationAfter",
            FileExpirationAfter,
            vec![fixture!("create_upload_request_expires")["expires_after"].clone()]
        ),
        agreement!(
            "CompleteUploadRequest",
            CompleteUploadRequest,
            vec![
                fixture!("complete_upload_request"),
                fixture!("complete_upload_request_md5"),
            ]
        ),
    ]
}

#[test]
fn every_spec_component_has_an_agreement() {
    let covered: BTreeSet<&str> = agreements().iter().map(|a| a.spec_name).collect();
    // Its operation is multipart, written by hand; no type is generated for it.
    let hand_written = "AddUploadPartRequest";
    let uncovered: Vec<String> = spec_components()
        .keys()
        .filter(|k| !covered.contains(k.as_str()) && k.as_str() != hand_written)
        .cloned()
        .collect();
    assert!(uncovered.is_empty(), "no agreement for {uncovered:?}");
}

#[test]
fn fixtures_satisfy_spec_generated_type_and_its_schema() {
    for agreement in agreements() {
        let schemars = jsonschema::validator_for(&agreement.schemars)
            .unwrap_or_else(|e| panic!("schema of {} compiles: {e}", agreement.type_name));
        assert!(!agreement.fixtures.is_empty());
        for (i, document) in agreement.fixtures.iter().enumerate() {
            let what = format!("{} fixture {i}", agreement.type_name);
            let strict = check(agreement.spec_name, document, Strict);
            assert!(
                strict.is_ok(),
                "{what} breaks the spec: {:?}",
                strict.violations
            );
            let encoded = (agreement.round_trip)(document)
                .unwrap_or_else(|e| panic!("{what} does not decode: {e}"));
            assert_eq!(&encoded, document, "{what} changes when re-encoded");
            let refusals: Vec<String> = schemars
                .iter_errors(document)
                .map(|e| e.to_string())
                .collect();
            assert!(
                refusals.is_empty(),
                "{what} breaks its schemars schema: {refusals:?}"
            );
        }
    }
}

#[test]
fn schemars_schemas_refuse_what_the_spec_refuses() {
    let agreements = agreements();
    let upload = agreements.iter().find(|a| a.spec_name == "Upload").unwrap();
    let validator = jsonschema::validator_for(&upload.schemars).unwrap();
    let mut wrong = fixture!("upload_completed");
    wrong["file"]["bytes"] = json!("many");
    assert!(!validator.is_valid(&wrong));
    assert!(!check("Upload", &wrong, Lenient).is_ok());
    assert!(serde_json::from_value::<types::Upload>(wrong).is_err());
}

fn keys(schema: &Value, field: &str) -> BTreeSet<String> {
    match &schema[field] {
        Value::Object(map) => map.keys().cloned().collect(),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().expect("required lists names").to_string())
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Where the generated type's schema knowingly says less than the spec: the
/// serde attributes of `ApiError` require `code` and `param` (the spec makes
/// them required but nullable), yet the derived schema lists them as optional.
const KNOWN_REQUIRED_GAPS: &[(&str, &[&str])] = &[("ApiError", &["code", "param"])];

#[test]
fn property_names_and_required_lists_match_the_spec() {
    for agreement in agreements() {
        let spec = spec_definition(agreement.spec_name);
        let generated = &agreement.schemars;
        assert_eq!(
            keys(generated, "properties"),
            keys(&spec, "properties"),
            "properties of {}",
            agreement.type_name
        );
        let spec_required = keys(&spec, "required");
        let generated_required = keys(generated, "required");
        assert!(
            generated_required.is_subset(&spec_required),
            "{} requires more than the spec: {:?}",
            agreement.type_name,
            generated_required
                .difference(&spec_required)
                .collect::<Vec<_>>()
        );
        let gap: BTreeSet<String> = spec_required
            .difference(&generated_required)
            .cloned()
            .collect();
        let known: BTreeSet<String> = KNOWN_REQUIRED_GAPS
            .iter()
            .filter(|(name, _)| *name == agreement.type_name)
            .flat_map(|(_, fields)| fields.iter().map(|f| f.to_string()))
            .collect();
        assert_eq!(
            gap, known,
            "fields the spec requires but {} does not",
            agreement.type_name
        );
    }
}

#[test]
fn known_required_gaps_are_still_required_when_decoding() {
    for (type_name, fields) in KNOWN_REQUIRED_GAPS {
        assert_eq!(*type_name, "ApiError");
        for field in *fields {
            let mut error = fixture!("error_response")["error"].clone();
            error.as_object_mut().unwrap().remove(*field);
            assert!(
                serde_json::from_value::<types::ApiError>(error).is_err(),
                "{field}"
            );
        }
    }
}

fn spec_enum(component: &str, property: &str) -> Vec<String> {
    spec_components()[component]["properties"][property]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{component}.{property} has an enum"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn schemars_enum(schema: Value) -> Vec<String> {
    schema["enum"]
        .as_array()
        .expect("a unit enum's schema lists its values")
        .iter()
        .map(|v| v.as_str().expect("values are strings").to_string())
        .collect()
}

#[test]
fn enum_values_match_the_spec() {
    let closed = [
        (
            "CreateUploadRequest",
            "purpose",
            schemars_enum(
                serde_json::to_value(schemars::schema_for!(types::CreateUploadRequestPurpose))
                    .unwrap(),
            ),
        ),
        (
            "FileExpirationAfter",
            "anchor",
            schemars_enum(
                serde_json::to_value(schemars::schema_for!(types::FileExpirationAfterAnchor))
                    .unwrap(),
            ),
        ),
        (
            "Upload",
            "object",
            schemars_enum(
                serde_json::to_value(schemars::schema_for!(types::UploadObject)).unwrap(),
            ),
        ),
        (
            "UploadPart",
            "object",
            schemars_enum(
                serde_json::to_value(schemars::schema_for!(types::UploadPartObject)).unwrap(),
            ),
        ),
        (
            "OpenAIFile",
            "object",
            schemars_enum(
                serde_json::to_value(schemars::schema_for!(types::OpenAiFileObject)).unwrap(),
            ),
        ),
        (
            "DeleteFileResponse",
            "object",
            schemars_enum(
                serde_json::to_value(schemars::schema_for!(types::DeleteFileResponseObject))
                    .unwrap(),
            ),
        ),
    ];
    let open = [
        ("Upload", "status", types::UploadStatus::KNOWN),
        ("OpenAIFile", "purpose", types::FilePurpose::KNOWN),
        ("OpenAIFile", "status", types::FileStatus::KNOWN),
    ];
    for (component, property, values) in closed {
        assert_eq!(
            values,
            spec_enum(component, property),
            "{component}.{property}"
        );
    }
    for (component, property, known) in open {
        let known: Vec<String> = known.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            known,
            spec_enum(component, property),
            "{component}.{property}"
        );
    }
}

fn garbage() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("JSON has no NaN or infinity", serde_json::Number::from_f64)
            .prop_map(Value::Number),
        Just(json!(1e308)),
        any::<String>().prop_map(Value::from),
        prop::sample::select(
            &[
                "pending",
                "completed",
                "file",
                "upload",
                "upload.part",
                "file-1",
                "upload_1",
                ""
            ][..]
        )
        .prop_map(Value::from),
    ];
    let keys = prop_oneof![
        prop::sample::select(
            &[
                "id",
                "object",
                "bytes",
                "created_at",
                "expires_at",
                "filename",
                "purpose",
                "status",
                "file",
                "upload_id",
                "deleted",
                "error",
                "type",
                "message",
                "param",
                "code",
                "part_ids",
                "md5",
                "expires_after",
                "anchor",
                "seconds",
                "mime_type",
                "status_details",
            ][..]
        )
        .prop_map(String::from),
        any::<String>(),
    ];
    leaf.prop_recursive(6, 64, 10, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..10)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_document_makes_a_schema_check_panic(document in garbage(), planted in garbage(), at in 0usize..64) {
        let schemas = SpecSchemas::vendored();
        let names: Vec<&str> = schemas.names().collect();
        prop_assert!(names.len() >= 9);
        let mut near_valid = fixture!("upload_completed");
        let fields: Vec<String> = near_valid.as_object().unwrap().keys().cloned().collect();
        near_valid["file"][&fields[(at / 2) % fields.len()]] = planted.clone();
        near_valid[&fields[at % fields.len()]] = planted;
        for name in names {
            for mode in [Strict, Lenient, Off] {
                let report = schemas.check(name, &document, mode);
                if mode == Off {
                    prop_assert_eq!(report, Conformance::default());
                }
                schemas.check(name, &near_valid, mode);
            }
        }
        for operation in [
            Operation::CreateUpload, Operation::AddUploadPart, Operation::CompleteUpload,
            Operation::CancelUpload, Operation::RetrieveFile, Operation::DeleteFile,
            Operation::DownloadFile,
        ] {
            for status in [200, 404, 500] {
                validate::check_response(operation, status, &document, Strict);
                validate::check_response(operation, status, &near_valid, Lenient);
            }
        }
    }
}
