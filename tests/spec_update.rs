#![cfg(feature = "spec")]
//! `spec update`: today's upstream gives the vendored spec; a changed upstream flows in
//! with our differences still applied; a change where a difference is recorded stops it.

mod common;

use openai_uploads::spec::{
    ChangeKind, DiffReport, Differences, REWRITE_MARK, Release, RustChange, SpecError, diff, read,
    update,
};
use serde_json::{Value, json};

fn vendored_text() -> String {
    std::fs::read_to_string(common::vendored_spec()).expect("the vendored spec is readable")
}

fn vendored() -> Value {
    read(&common::vendored_spec()).expect("the vendored spec parses")
}

fn differences() -> Differences {
    Differences::vendored().expect("openapi/differences.yaml parses")
}

fn upstream() -> Option<Value> {
    Some(read(&common::upstream_spec()?).expect("upstream parses"))
}

/// Upstream with a new optional field in `Upload`, a new purpose in both purpose enums
/// and a new operation under `/uploads`, written as upstream writes (OpenAPI 3.1).
fn mutated(mut upstream: Value) -> Value {
    let schemas = &mut upstream["components"]["schemas"];
    schemas["Upload"]["properties"]["archived_at"] = json!({
        "anyOf": [{ "type": "integer" }, { "type": "null" }],
        "description": "When the Upload was archived.",
    });
    for schema in ["CreateUploadRequest", "OpenAIFile"] {
        schemas[schema]["properties"]["purpose"]["enum"]
            .as_array_mut()
            .expect("a purpose enum")
            .push("batch_v2".into());
    }
    upstream["paths"]["/uploads/{upload_id}"] = json!({
        "get": {
            "operationId": "retrieveUpload",
            "summary": "Fetch an Upload.",
            "parameters": [{
                "in": "path", "name": "upload_id", "required": true,
                "schema": { "type": "string" },
            }],
            "responses": { "200": {
                "description": "OK",
                "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Upload" },
                }},
            }},
        },
    });
    upstream
}

#[test]
fn update_of_todays_upstream_is_the_vendored_spec_to_the_byte() {
    let Some(upstream) = upstream() else {
        return;
    };
    let updated = update(&upstream, &vendored(), &differences()).expect("today's upstream updates");
    assert_eq!(
        updated.yaml,
        vendored_text(),
        "openapi/api-definition.yaml is not upstream plus the recorded differences: run \
         `openai spec update --upstream ../shared/upstream/openapi.yaml` and compare"
    );
    assert_eq!(updated.spec, vendored());
    assert!(updated.to_rewrite.is_empty(), "{:?}", updated.to_rewrite);
    assert_eq!(diff(&vendored(), &updated.spec).exit_code(), 0);
}

#[test]
fn the_vendored_spec_holds_no_borrowed_words() {
    assert!(!vendored_text().contains(REWRITE_MARK.trim_end()));
}

#[test]
fn a_changed_upstream_flows_in_with_our_differences_still_applied() {
    let Some(upstream) = upstream() else {
        return;
    };
    let upstream = mutated(upstream);
    let updated = update(&upstream, &vendored(), &differences()).expect("the change updates");
    let spec = &updated.spec;
    let schemas = &spec["components"]["schemas"];

    // The changes are in, upstream's words marked for rewriting.
    let archived = &schemas["Upload"]["properties"]["archived_at"];
    assert_eq!(archived["type"], "integer");
    assert_eq!(archived["nullable"], true);
    assert_eq!(
        archived["description"],
        format!("{REWRITE_MARK}When the Upload was archived.")
    );
    assert!(
        updated
            .to_rewrite
            .contains(&"/components/schemas/Upload/properties/archived_at/description".into()),
        "{:?}",
        updated.to_rewrite
    );
    let retrieve = &spec["paths"]["/uploads/{upload_id}"]["get"];
    assert_eq!(retrieve["operationId"], "retrieveUpload");
    assert_eq!(
        retrieve["summary"],
        format!("{REWRITE_MARK}Fetch an Upload.")
    );
    assert_eq!(
        schemas["CreateUploadRequest"]["properties"]["purpose"]["enum"],
        json!([
            "assistants",
            "batch",
            "fine-tune",
            "vision",
            "batch_v2",
            "user_data",
            "evals"
        ])
    );
    let file_purposes = schemas["OpenAIFile"]["properties"]["purpose"]["enum"]
        .as_array()
        .expect("the File's purposes");
    assert!(file_purposes.contains(&json!("batch_v2")));
    assert_eq!(file_purposes.last(), Some(&json!("evals")));

    // Our differences are still applied, our words kept.
    let download = &spec["paths"]["/files/{file_id}/content"]["get"]["responses"];
    assert_eq!(
        download["200"]["content"],
        json!({ "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } })
    );
    assert_eq!(
        spec["paths"]["/uploads"]["post"]["responses"]["4XX"]["$ref"],
        "#/components/responses/ClientError"
    );
    assert!(schemas.get("ApiError").is_some() && schemas.get("Error").is_none());
    assert_eq!(
        schemas["Upload"]["description"],
        vendored()["components"]["schemas"]["Upload"]["description"]
    );
    assert!(
        spec["paths"]
            .get("/files")
            .and_then(|p| p.get("post"))
            .is_none()
    );

    // Against the vendored spec, the report names the effect in Rust terms.
    let report = diff(&vendored(), spec);
    let effects = report.rust_effects();
    let has = |change: RustChange, item: &str| {
        effects.iter().any(|e| e.change == change && e.item == item)
    };
    assert!(
        has(RustChange::FieldAdded, "Upload::archived_at"),
        "{report}"
    );
    assert!(
        has(RustChange::EnumValueAdded, "CreateUploadRequestPurpose"),
        "{report}"
    );
    assert!(has(RustChange::EnumValueAdded, "FilePurpose"), "{report}");
    assert!(
        has(RustChange::OperationAdded, "retrieveUpload"),
        "{report}"
    );
    assert_eq!(report.release(), Release::Major);
    let text = report.to_string();
    assert!(
        text.contains("code building `Upload` with a struct literal stops compiling"),
        "{text}"
    );
    assert!(
        text.contains("decoded as a variant of its own rather than `FilePurpose::Other`"),
        "{text}"
    );
}

#[test]
fn spec_diff_names_the_new_operation_and_keeps_our_values_apart_from_upstreams() {
    let Some(upstream) = upstream() else {
        return;
    };
    let upstream = mutated(upstream);
    let report = differences().apply(diff(&vendored(), &upstream), &upstream);
    let new_operation = report
        .changes
        .iter()
        .find(|c| c.pointer == "/paths/~1uploads~1{upload_id}/get/operationId")
        .unwrap_or_else(|| panic!("the new operation is reported:\n{report}"));
    assert!(
        new_operation
            .detail
            .contains("`retrieveUpload` (GET /uploads/{upload_id})")
    );
    // Upstream's new purpose is a change to review; ours stay kept.
    let added = |c: &&openai_uploads::spec::Change| c.detail.contains("\"batch_v2\" added");
    assert!(report.changes.iter().any(|c| added(&c)), "{report}");
    assert!(report.kept.iter().all(|k| !added(&&k.change)), "{report}");
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.change.detail
                == "enum value \"evals\" added by us; upstream does not list it"),
        "{report}"
    );
    assert!(report.stale.is_empty(), "{report}");
    assert_eq!(report.exit_code(), 1, "{report}");
}

/// Upstream with `edit` applied, which must stop the update at `pointer`.
fn assert_refused(edit: impl FnOnce(&mut Value), pointer: &str, now: &str, recorded: &str) {
    let Some(mut upstream) = upstream() else {
        return;
    };
    edit(&mut upstream);
    match update(&upstream, &vendored(), &differences()) {
        Err(SpecError::UpstreamMoved {
            pointer: at,
            now: says,
            recorded: was,
        }) => {
            assert_eq!(at, pointer);
            assert!(says.contains(now), "{says}");
            assert!(was.contains(recorded), "{was}");
        }
        other => panic!("expected a refusal at {pointer}, got {other:?}"),
    }
}

#[test]
fn an_upstream_changed_where_a_difference_is_recorded_stops_the_update() {
    assert_refused(
        |u| {
            u["paths"]["/files/{file_id}/content"]["get"]["responses"]["200"]["content"]["application/json"]
                ["schema"]["format"] = json!("byte");
        },
        "/paths/~1files~1{file_id}~1content/get/responses/200/content",
        "\"format\":\"byte\"",
        "{\"application/json\":{\"schema\":{\"type\":\"string\"}}}",
    );
    // Upstream taking up a value we add: the difference no longer holds as recorded.
    assert_refused(
        |u| {
            u["components"]["schemas"]["OpenAIFile"]["properties"]["purpose"]["enum"]
                .as_array_mut()
                .expect("purposes")
                .push("evals".into());
        },
        "/components/schemas/OpenAIFile/properties/purpose/enum",
        "\"evals\"",
        "\"user_data\"]",
    );
    // Upstream dropping a value it had.
    assert_refused(
        |u| {
            u["components"]["schemas"]["CreateUploadRequest"]["properties"]["purpose"]["enum"] =
                json!(["assistants", "batch", "fine-tune"]);
        },
        "/components/schemas/CreateUploadRequest/properties/purpose/enum",
        "[\"assistants\",\"batch\",\"fine-tune\"]",
        "\"vision\"",
    );
}

#[test]
fn a_recording_through_looping_refs_is_refused() {
    let op = |response: Value| {
        json!({ "openapi": "3.0.3", "paths": { "/files": { "get": {
            "operationId": "listFiles", "responses": { "200": response },
        }}}, "components": { "responses": {
            "Loop": { "$ref": "#/components/responses/Loop" },
        }}})
    };
    let upstream = op(json!({ "$ref": "#/components/responses/Loop" }));
    let vendored = op(json!({ "description": "One page of Files." }));
    let differences = Differences::parse(
        "- pointers: [/paths/~1files/get/responses/200/description]\n  \
         kind: media-type\n  upstream:\n  ours: x\n  reason: a test\n",
    )
    .expect("parses");
    let error = update(&upstream, &vendored, &differences).expect_err("refused");
    assert!(
        matches!(&error, SpecError::Malformed { reason, .. } if reason.contains("loop")),
        "{error}"
    );
}

#[test]
fn a_spec_without_paths_is_malformed() {
    let error =
        update(&json!({ "openapi": "3.1.0" }), &vendored(), &differences()).expect_err("no paths");
    assert!(matches!(error, SpecError::Malformed { ref pointer, .. } if pointer == "/paths"));
}

#[test]
fn release_follows_the_largest_effect() {
    assert_eq!(DiffReport::default().release(), Release::Patch);
    let Some(upstream) = upstream() else {
        return;
    };
    // A bound widened: the rules change, no type does.
    let mut wider = vendored();
    wider["components"]["schemas"]["FileExpirationAfter"]["properties"]["seconds"]["maximum"] =
        json!(5_184_000);
    let report = diff(&vendored(), &wider);
    assert!(
        report
            .changes
            .iter()
            .all(|c| c.kind == ChangeKind::NonBreaking)
    );
    assert_eq!(report.release(), Release::Minor, "{report}");
    // The recorded differences alone call for no release.
    let today = differences().apply(diff(&vendored(), &upstream), &upstream);
    assert_eq!(today.release(), Release::Patch, "{today}");
}

#[cfg(feature = "cli")]
mod command {
    use std::path::Path;
    use std::process::{Command, Output};

    use super::*;

    /// A copy of `openapi/` in a temporary directory.
    fn openapi_copy() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let source = common::vendored_spec();
        let openapi = source.parent().expect("openapi/");
        for name in ["api-definition.yaml", "differences.yaml"] {
            std::fs::copy(openapi.join(name), dir.path().join(name)).expect("copied");
        }
        dir
    }

    fn update_in(dir: &Path, upstream: &Path, write: bool) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_openai"));
        command
            .args(["spec", "update", "--upstream"])
            .arg(upstream)
            .arg("--spec")
            .arg(dir.join("api-definition.yaml"));
        if write {
            command.arg("--write");
        }
        command.output().expect("the command runs")
    }

    fn write_json(dir: &Path, value: &Value) -> std::path::PathBuf {
        let path = dir.join("upstream.json");
        std::fs::write(&path, serde_json::to_vec(value).expect("JSON")).expect("written");
        path
    }

    #[test]
    fn update_prints_todays_spec_and_writes_a_changed_one() {
        let Some(path) = common::upstream_spec() else {
            return;
        };
        let dir = openapi_copy();
        let printed = update_in(dir.path(), &path, false);
        assert_eq!(printed.status.code(), Some(0));
        assert_eq!(String::from_utf8_lossy(&printed.stdout), vendored_text());

        let scratch = tempfile::tempdir().expect("a temporary directory");
        let changed = write_json(scratch.path(), &mutated(upstream().expect("upstream")));
        let written = update_in(dir.path(), &changed, true);
        let stderr = String::from_utf8_lossy(&written.stderr);
        assert_eq!(written.status.code(), Some(0), "{stderr}");
        assert!(written.stdout.is_empty());
        let spec = std::fs::read_to_string(dir.path().join("api-definition.yaml")).expect("read");
        assert!(spec.contains("archived_at:") && spec.contains("retrieveUpload"));
        assert!(
            stderr.contains("/components/schemas/Upload/properties/archived_at/description"),
            "{stderr}"
        );
        assert!(
            stderr.contains("field added `Upload::archived_at` (major)"),
            "{stderr}"
        );
    }

    #[test]
    fn a_refused_update_writes_nothing() {
        let Some(mut upstream) = upstream() else {
            return;
        };
        upstream["paths"]["/files/{file_id}/content"]["get"]["responses"]["200"]["content"] =
            json!({ "text/plain": { "schema": { "type": "string" } } });
        let dir = openapi_copy();
        let changed = write_json(dir.path(), &upstream);
        let before = std::fs::read(dir.path().join("api-definition.yaml")).expect("read");
        let output = update_in(dir.path(), &changed, true);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("/paths/~1files~1{file_id}~1content/get/responses/200/content"));
        assert!(stderr.contains("text/plain"), "{stderr}");
        let after = std::fs::read(dir.path().join("api-definition.yaml")).expect("read");
        assert_eq!(before, after);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("listed")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["api-definition.yaml", "differences.yaml", "upstream.json"]
        );
    }

    /// Copies the files a build of the crate needs into `to`.
    fn copy_crate(to: &Path) {
        fn copy(from: &Path, to: &Path) {
            if from.is_dir() {
                std::fs::create_dir_all(to).expect("a directory");
                for entry in std::fs::read_dir(from).expect("listed") {
                    let entry = entry.expect("an entry");
                    copy(&entry.path(), &to.join(entry.file_name()));
                }
            } else {
                std::fs::copy(from, to).expect("copied");
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for name in [
            "Cargo.toml",
            "Cargo.lock",
            "README.md",
            "build.rs",
            "build",
            "src",
            "openapi",
            "benches",
            "examples",
        ] {
            copy(&root.join(name), &to.join(name));
        }
    }

    /// `cargo check` of the crate copied at `dir`, in a target directory kept between runs.
    fn cargo_check(dir: &Path) -> Output {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Command::new(cargo)
            .args(["check", "--lib", "--all-features", "--quiet"])
            .current_dir(dir)
            .env(
                "CARGO_TARGET_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("spec-update-check"),
            )
            .output()
            .expect("cargo runs")
    }

    #[test]
    #[ignore = "copies the crate and runs `cargo check` on it twice: minutes with a cold target \
                directory; run with `cargo test --all-features --test spec_update -- --ignored`"]
    fn a_written_spec_builds_and_a_new_field_breaks_struct_literals() {
        let Some(today) = upstream() else {
            return;
        };
        let copy = tempfile::tempdir().expect("a temporary directory");
        copy_crate(copy.path());
        let spec = copy.path().join("openapi/api-definition.yaml");

        // A new purpose and a new operation: the crate still builds, with the new variant.
        let mut upstream = mutated(today.clone());
        upstream["components"]["schemas"]["Upload"]["properties"]
            .as_object_mut()
            .expect("properties")
            .remove("archived_at");
        let file = write_json(copy.path(), &upstream);
        let output = update_in(spec.parent().expect("openapi/"), &file, true);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            std::fs::read_to_string(&spec)
                .expect("read")
                .contains("batch_v2")
        );
        let checked = cargo_check(copy.path());
        assert!(
            checked.status.success(),
            "the crate does not build from the updated spec:\n{}",
            String::from_utf8_lossy(&checked.stderr)
        );

        // A new field in `Upload`: as the report says, a struct literal of it stops compiling.
        let file = write_json(copy.path(), &mutated(today));
        let output = update_in(spec.parent().expect("openapi/"), &file, true);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let checked = cargo_check(copy.path());
        let stderr = String::from_utf8_lossy(&checked.stderr);
        assert!(!checked.status.success());
        assert!(stderr.contains("missing field `archived_at`"), "{stderr}");
    }
}
