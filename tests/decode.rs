//! Decoding the API's JSON into the generated types and encoding it back.

use openai_uploads::types;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

macro_rules! fixture {
    ($name:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!("fixtures/", $name, ".json")))
            .expect(concat!("fixtures/", $name, ".json is JSON"))
    };
}

/// Decodes `json` as `T`, checks that encoding it again gives the same JSON,
/// and returns the decoded value.
fn round_trip<T: DeserializeOwned + Serialize>(json: &Value) -> T {
    let decoded: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("does not decode as {}: {e}", std::any::type_name::<T>()));
    let encoded = serde_json::to_value(&decoded).expect("generated types serialise");
    assert_eq!(&encoded, json, "re-encoding changed the document");
    decoded
}

#[test]
fn upload_without_file() {
    let upload: types::Upload = round_trip(&fixture!("upload_pending"));
    assert_eq!(upload.id, "upload_6a9f2c41b7d0");
    assert_eq!(upload.bytes, 2_147_483_648);
    assert_eq!(upload.status, types::UploadStatus::Pending);
    assert_eq!(upload.object, Some(types::UploadObject::Upload));
    assert_eq!(upload.file, None);
}

#[test]
fn upload_with_file() {
    let upload: types::Upload = round_trip(&fixture!("upload_completed"));
    assert_eq!(upload.status, types::UploadStatus::Completed);
    let file = upload.file.expect("a completed Upload carries its File");
    assert_eq!(file.id, "file-8d1e5b3a0c27");
    assert_eq!(file.bytes, upload.bytes);
    assert_eq!(file.purpose, types::FilePurpose::FineTune);
    assert_eq!(file.status, types::FileStatus::Uploaded);
    assert_eq!(file.object, types::OpenAiFileObject::File);
    assert_eq!(file.expires_at, None);
}

/// `file: null` and no `file` mean the same to the spec (the property is
/// optional and nullable); the generated type encodes both as no `file`.
#[test]
fn upload_with_null_file_decodes_as_none_and_encodes_without_it() {
    let json = fixture!("upload_cancelled_file_null");
    assert_eq!(json["file"], Value::Null);
    let upload: types::Upload = serde_json::from_value(json.clone()).expect("decodes");
    assert_eq!(upload.file, None);
    assert_eq!(upload.status, types::UploadStatus::Cancelled);

    let mut without_file = json;
    without_file
        .as_object_mut()
        .expect("an Upload is an object")
        .remove("file");
    assert_eq!(
        serde_json::to_value(&upload).expect("serialises"),
        without_file
    );
}

#[test]
fn unknown_enum_values_are_kept() {
    let upload: types::Upload = round_trip(&fixture!("upload_unknown_enums"));
    assert_eq!(upload.status, types::UploadStatus::Other("archived".into()));
    assert!(!upload.status.is_known());
    assert_eq!(upload.status.to_string(), "archived");
    let file = upload.file.expect("the fixture has a file");
    assert_eq!(
        file.purpose,
        types::FilePurpose::Other("future_purpose".into())
    );
    assert_eq!(file.purpose.as_str(), "future_purpose");
    assert_eq!(file.status, types::FileStatus::Processed);
}

#[test]
fn open_enums_know_every_listed_value() {
    for value in types::UploadStatus::KNOWN {
        let decoded: types::UploadStatus = serde_json::from_value(Value::from(*value)).unwrap();
        assert!(decoded.is_known(), "{value}");
        assert_eq!(serde_json::to_value(&decoded).unwrap(), Value::from(*value));
    }
    for value in types::FilePurpose::KNOWN {
        let decoded: types::FilePurpose = serde_json::from_value(Value::from(*value)).unwrap();
        assert!(decoded.is_known(), "{value}");
        assert_eq!(decoded.as_str(), *value);
    }
    for value in types::FileStatus::KNOWN {
        let decoded: types::FileStatus = serde_json::from_value(Value::from(*value)).unwrap();
        assert!(decoded.is_known(), "{value}");
        assert_eq!(decoded.as_str(), *value);
    }
}

#[test]
fn open_enums_refuse_what_is_not_a_string() {
    assert!(serde_json::from_value::<types::UploadStatus>(Value::from(3)).is_err());
    assert!(serde_json::from_value::<types::FilePurpose>(Value::Null).is_err());
}

#[test]
fn closed_enums_refuse_unknown_values() {
    let mut part = fixture!("upload_part");
    part["object"] = Value::from("upload.chunk");
    assert!(serde_json::from_value::<types::UploadPart>(part).is_err());
}

#[test]
fn missing_optional_fields() {
    let upload: types::Upload = round_trip(&fixture!("upload_minimal"));
    assert_eq!(upload.object, None);
    assert_eq!(upload.file, None);

    let file: types::OpenAiFile = round_trip(&fixture!("openai_file_minimal"));
    assert_eq!(file.expires_at, None);
    assert_eq!(file.status_details, None);
    assert_eq!(file.purpose, types::FilePurpose::UserData);
}

#[test]
fn missing_required_field_fails() {
    let mut upload = fixture!("upload_minimal");
    upload.as_object_mut().unwrap().remove("expires_at");
    let error = serde_json::from_value::<types::Upload>(upload).unwrap_err();
    assert!(error.to_string().contains("expires_at"), "{error}");
}

#[test]
fn error_envelope_with_null_param_and_code() {
    let envelope: types::ErrorResponse = round_trip(&fixture!("error_response"));
    assert_eq!(envelope.error.type_, "server_error");
    assert_eq!(envelope.error.param, None);
    assert_eq!(envelope.error.code, None);
}

#[test]
fn error_envelope_with_param_and_code() {
    let envelope: types::ErrorResponse = round_trip(&fixture!("error_response_with_param"));
    assert_eq!(envelope.error.param.as_deref(), Some("upload_id"));
    assert_eq!(
        envelope.error.code.as_deref(),
        Some("upload_already_completed")
    );
}

/// The spec requires `param` and `code` even though either may be null.
#[test]
fn error_envelope_without_param_fails() {
    let mut envelope = fixture!("error_response");
    envelope["error"].as_object_mut().unwrap().remove("param");
    let error = serde_json::from_value::<types::ErrorResponse>(envelope).unwrap_err();
    assert!(error.to_string().contains("param"), "{error}");
}

#[test]
fn upload_part() {
    let part: types::UploadPart = round_trip(&fixture!("upload_part"));
    assert_eq!(part.id, "part_c4b3a29180f7");
    assert_eq!(part.upload_id, "upload_6a9f2c41b7d0");
    assert_eq!(part.object, types::UploadPartObject::UploadPart);
    assert_eq!(part.created_at, 1_719_185_911);
}

#[test]
fn delete_file_response() {
    let deleted: types::DeleteFileResponse = round_trip(&fixture!("delete_file_response"));
    assert!(deleted.deleted);
    assert_eq!(deleted.id, "file-8d1e5b3a0c27");
    assert_eq!(deleted.object, types::DeleteFileResponseObject::File);
}

#[test]
fn openai_file() {
    let file: types::OpenAiFile = round_trip(&fixture!("openai_file"));
    assert_eq!(file.purpose, types::FilePurpose::BatchOutput);
    assert_eq!(file.status, types::FileStatus::Error);
    assert_eq!(file.expires_at, Some(1_721_778_911));
    assert_eq!(
        file.status_details.as_deref(),
        Some("line 12 is not valid JSON")
    );
}

#[test]
fn request_bodies() {
    let create: types::CreateUploadRequest = round_trip(&fixture!("create_upload_request"));
    assert_eq!(create.purpose, types::CreateUploadRequestPurpose::FineTune);
    assert_eq!(create.expires_after, None);

    let create: types::CreateUploadRequest = round_trip(&fixture!("create_upload_request_expires"));
    let expires = create
        .expires_after
        .expect("the fixture sets expires_after");
    assert_eq!(expires.anchor, types::FileExpirationAfterAnchor::CreatedAt);
    assert_eq!(expires.seconds, 86_400);

    let complete: types::CompleteUploadRequest = round_trip(&fixture!("complete_upload_request"));
    assert_eq!(complete.part_ids.len(), 2);
    assert_eq!(complete.md5, None);

    let complete: types::CompleteUploadRequest =
        round_trip(&fixture!("complete_upload_request_md5"));
    assert_eq!(
        complete.md5.as_deref(),
        Some("9e107d9d372bb6826bd81d3542a419d6")
    );
}

/// Request bodies declare `additionalProperties: false`; their types refuse
/// what the API would refuse.
#[test]
fn request_bodies_refuse_unknown_fields() {
    let mut create = fixture!("create_upload_request");
    create["purpose_hint"] = Value::from("x");
    assert!(serde_json::from_value::<types::CreateUploadRequest>(create).is_err());
}
