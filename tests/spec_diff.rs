#![cfg(feature = "spec")]
//! Structural diff: classification, reports, and the vendored spec against upstream.

mod common;

use openai_uploads::spec::{
    Change, ChangeKind, DEFAULT_OPERATIONS, DiffReport, DifferenceKind, Differences, diff, extract,
    parse, read,
};
use serde_json::{Value, json};

fn old() -> Value {
    parse(include_str!("fixtures/spec/diff-old.yaml")).expect("fixture parses")
}

const REQUEST: &str = "/paths/~1widgets/post/requestBody/content/application~1json/schema";
const RESPONSE: &str =
    "/paths/~1widgets~1{widget_id}/get/responses/200/content/application~1json/schema";

/// The old fixture with `edit` applied to it.
fn changed(edit: impl FnOnce(&mut Value)) -> DiffReport {
    let old = old();
    let mut new = old.clone();
    edit(&mut new);
    diff(&old, &new)
}

fn at<'a>(report: &'a DiffReport, pointer: &str) -> Vec<&'a Change> {
    report
        .changes
        .iter()
        .filter(|c| c.pointer == pointer)
        .collect()
}

/// Asserts that exactly one change is reported at `pointer`, of `kind`, mentioning `words`.
fn assert_single(report: &DiffReport, pointer: &str, kind: ChangeKind, words: &str) {
    let found = at(report, pointer);
    assert_eq!(
        found.len(),
        1,
        "expected one change at {pointer}:\n{report}"
    );
    assert_eq!(found[0].kind, kind, "{report}");
    assert!(found[0].detail.contains(words), "{report}");
}

fn schema_mut<'a>(spec: &'a mut Value, name: &str) -> &'a mut Value {
    &mut spec["components"]["schemas"][name]
}

#[test]
fn equal_specs_give_an_empty_report() {
    let report = diff(&old(), &old());
    assert!(report.is_empty(), "{report}");
    assert!(!report.has_breaking());
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.to_string(), "no differences\n");
}

#[test]
fn inlined_renamed_and_3_1_forms_compare_equal() {
    let new = parse(include_str!("fixtures/spec/diff-same-31.yaml")).expect("fixture parses");
    let report = diff(&old(), &new);
    // Only the error response that the upstream-style spec leaves out remains.
    assert_eq!(report.changes.len(), 1, "{report}");
    assert_single(
        &report,
        "/paths/~1widgets/post/responses/4XX",
        ChangeKind::NonBreaking,
        "error response",
    );
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn enum_value_added_is_non_breaking() {
    let report = changed(|s| {
        schema_mut(s, "CreateWidgetRequest")["properties"]["colour"]["enum"] =
            json!(["red", "green", "blue", "yellow"]);
    });
    let pointer = format!("{REQUEST}/properties/colour/enum");
    assert_single(
        &report,
        &pointer,
        ChangeKind::NonBreaking,
        "\"yellow\" added",
    );
    assert_eq!(
        report.changes[0].component.as_deref(),
        Some("/components/schemas/CreateWidgetRequest/properties/colour/enum")
    );
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn enum_value_removed_is_breaking() {
    let report = changed(|s| {
        schema_mut(s, "Widget")["properties"]["status"]["enum"] = json!(["new"]);
    });
    let pointer = format!("{RESPONSE}/properties/status/enum");
    assert_single(&report, &pointer, ChangeKind::Breaking, "\"ready\" removed");
    assert_eq!(report.exit_code(), 2);
}

#[test]
fn field_removed_is_breaking() {
    let report = changed(|s| {
        let props = schema_mut(s, "Widget")["properties"]
            .as_object_mut()
            .expect("properties");
        props.remove("created_at");
    });
    let pointer = format!("{RESPONSE}/properties/created_at");
    assert_single(&report, &pointer, ChangeKind::Breaking, "removed");
}

#[test]
fn new_required_request_field_is_breaking() {
    let report = changed(|s| {
        let request = schema_mut(s, "CreateWidgetRequest");
        request["properties"]["shape"] = json!({ "type": "string" });
        request["required"] = json!(["name", "colour", "shape"]);
    });
    let pointer = format!("{REQUEST}/properties/shape");
    assert_single(
        &report,
        &pointer,
        ChangeKind::Breaking,
        "new required request field",
    );
}

#[test]
fn optional_field_added_is_non_breaking() {
    let report = changed(|s| {
        schema_mut(s, "CreateWidgetRequest")["properties"]["shape"] = json!({ "type": "string" });
        schema_mut(s, "Widget")["properties"]["labels"] = json!({ "type": "array" });
    });
    let request = format!("{REQUEST}/properties/shape");
    assert_single(&report, &request, ChangeKind::NonBreaking, "optional field");
    let response = format!("{RESPONSE}/properties/labels");
    assert_single(
        &report,
        &response,
        ChangeKind::NonBreaking,
        "optional field",
    );
    assert!(!report.has_breaking());
}

#[test]
fn type_or_format_changed_is_breaking() {
    let report = changed(|s| {
        schema_mut(s, "Owner")["properties"]["login"]["type"] = json!("integer");
        schema_mut(s, "Widget")["properties"]["created_at"]["format"] = json!("int64");
    });
    let login = format!("{RESPONSE}/properties/owner/properties/login");
    assert_single(
        &report,
        &login,
        ChangeKind::Breaking,
        "type changed from string to integer",
    );
    assert_eq!(
        at(&report, &login)[0].component.as_deref(),
        Some("/components/schemas/Owner/properties/login")
    );
    let created = format!("{RESPONSE}/properties/created_at");
    assert_single(&report, &created, ChangeKind::Breaking, "format changed");
}

#[test]
fn nullability_lost_is_breaking_and_gained_is_not() {
    let report = changed(|s| {
        let props = &mut schema_mut(s, "Widget")["properties"];
        props["note"] = json!({ "type": "string" });
        props["name"] = json!({ "type": "string", "nullable": true });
    });
    let note = format!("{RESPONSE}/properties/note");
    assert_single(&report, &note, ChangeKind::Breaking, "no longer nullable");
    let name = format!("{RESPONSE}/properties/name");
    assert_single(&report, &name, ChangeKind::NonBreaking, "became nullable");
}

#[test]
fn nullable_ref_lost_is_breaking() {
    let report = changed(|s| {
        schema_mut(s, "Widget")["properties"]["owner"] =
            json!({ "$ref": "#/components/schemas/Owner" });
    });
    let owner = format!("{RESPONSE}/properties/owner");
    assert_single(&report, &owner, ChangeKind::Breaking, "no longer nullable");
}

#[test]
fn content_type_changed_is_breaking() {
    let report = changed(|s| {
        let responses = &mut s["paths"]["/widgets/{widget_id}/content"]["get"]["responses"];
        responses["200"]["content"] =
            json!({ "application/json": { "schema": { "type": "string" } } });
    });
    assert_single(
        &report,
        "/paths/~1widgets~1{widget_id}~1content/get/responses/200/content",
        ChangeKind::Breaking,
        "content type changed from application/octet-stream to application/json",
    );
}

#[test]
fn request_content_type_changed_is_breaking() {
    let report = changed(|s| {
        let body = &mut s["paths"]["/widgets"]["post"]["requestBody"]["content"];
        let schema = body["application/json"].take();
        *body = json!({ "multipart/form-data": schema });
    });
    assert_single(
        &report,
        "/paths/~1widgets/post/requestBody/content",
        ChangeKind::Breaking,
        "content type changed",
    );
}

#[test]
fn bounds_changed_are_non_breaking() {
    let report = changed(|s| {
        let size = &mut schema_mut(s, "CreateWidgetRequest")["properties"]["size"];
        size["maximum"] = json!(20);
        size["minimum"] = json!(0);
    });
    assert_single(
        &report,
        &format!("{REQUEST}/properties/size/maximum"),
        ChangeKind::NonBreaking,
        "from 10 to 20",
    );
    assert_single(
        &report,
        &format!("{REQUEST}/properties/size/minimum"),
        ChangeKind::NonBreaking,
        "from 1 to 0",
    );
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn operations_added_removed_and_responses() {
    let report = changed(|s| {
        let paths = s["paths"].as_object_mut().expect("paths");
        // A known operation the old spec lacks is reported; any other is not.
        paths.insert(
            "/uploads".into(),
            json!({ "post": { "operationId": "createUpload", "responses": {} } }),
        );
        paths.insert(
            "/gizmos".into(),
            json!({ "get": { "operationId": "listGizmos", "responses": {} } }),
        );
        paths.remove("/widgets/{widget_id}/content");
        let responses = &mut paths["/widgets/{widget_id}"]["get"]["responses"];
        responses["404"] = json!({ "description": "Not found." });
        let responses = &mut paths["/widgets"]["post"]["responses"];
        responses.as_object_mut().expect("responses").remove("200");
    });
    assert_single(
        &report,
        "/paths/~1uploads/post/operationId",
        ChangeKind::NonBreaking,
        "operation `createUpload` (POST /uploads) added",
    );
    assert!(
        !report
            .changes
            .iter()
            .any(|c| c.detail.contains("listGizmos")),
        "{report}"
    );
    assert_single(
        &report,
        "/paths/~1widgets~1{widget_id}~1content/get",
        ChangeKind::Breaking,
        "operation `downloadWidget` removed",
    );
    assert_single(
        &report,
        "/paths/~1widgets~1{widget_id}/get/responses/404",
        ChangeKind::NonBreaking,
        "response `404` added",
    );
    assert_single(
        &report,
        "/paths/~1widgets/post/responses/200",
        ChangeKind::Breaking,
        "response `200` removed",
    );
}

#[test]
fn parameters_compare_by_name() {
    let report = changed(|s| {
        let get = &mut s["paths"]["/widgets/{widget_id}"]["get"];
        get["parameters"] = json!([
            { "name": "widget_id", "in": "path", "required": true, "schema": { "type": "integer" } },
            { "name": "expand", "in": "query", "schema": { "type": "boolean" } },
            { "name": "version", "in": "header", "required": true, "schema": { "type": "string" } }
        ]);
    });
    let base = "/paths/~1widgets~1{widget_id}/get/parameters";
    assert_single(
        &report,
        &format!("{base}/widget_id/schema"),
        ChangeKind::Breaking,
        "type changed",
    );
    assert_single(
        &report,
        &format!("{base}/expand"),
        ChangeKind::NonBreaking,
        "optional",
    );
    assert_single(
        &report,
        &format!("{base}/version"),
        ChangeKind::Breaking,
        "new required",
    );
}

#[test]
fn unresolvable_and_recursive_refs_do_not_panic() {
    let report = changed(|s| {
        schema_mut(s, "Owner")["properties"]["login"] =
            json!({ "$ref": "#/components/schemas/Nope" });
        schema_mut(s, "Owner")["properties"]["manager"] =
            json!({ "$ref": "#/components/schemas/Owner" });
        *schema_mut(s, "Loop") = json!({ "$ref": "#/components/schemas/Loop" });
        schema_mut(s, "Widget")["properties"]["loop"] =
            json!({ "$ref": "#/components/schemas/Loop" });
    });
    assert!(report.has_breaking(), "{report}");
    let recursive = parse(
        "openapi: 3.0.3\npaths:\n  /a:\n    get:\n      operationId: a\n      responses:\n        '200':\n          description: x\n          content:\n            application/json:\n              schema:\n                $ref: '#/components/schemas/Node'\ncomponents:\n  schemas:\n    Node:\n      type: object\n      properties:\n        next:\n          $ref: '#/components/schemas/Node'\n",
    )
    .expect("parses");
    assert!(diff(&recursive, &recursive).is_empty());
    assert!(diff(&Value::Null, &json!({ "paths": 3 })).is_empty());
}

fn multi_change_report() -> DiffReport {
    let new = parse(include_str!("fixtures/spec/diff-new.yaml")).expect("fixture parses");
    diff(&old(), &new)
}

#[test]
fn multi_change_report_text() {
    let report = multi_change_report();
    assert_eq!(report.exit_code(), 2);
    insta::assert_snapshot!(report.to_string());
}

#[test]
fn multi_change_report_json() {
    insta::assert_json_snapshot!(multi_change_report());
}

const COLOUR_ENUM: &str = "/components/schemas/CreateWidgetRequest/properties/colour/enum";
const WIDGET_CONTENT: &str = "/paths/~1widgets~1{widget_id}~1content/get/responses/200/content";

/// Records the fixture's colour enum and content type as kept, against what the new
/// fixture says there.
fn fixture_differences() -> Differences {
    Differences::parse(&format!(
        "\
- pointers: [{COLOUR_ENUM}]
  kind: added-enum-values
  upstream: [red, green, yellow]
  ours: [red, green, yellow, blue]
  reason: we accept blue before upstream lists it
  evidence: the SDKs
- pointers: ['{WIDGET_CONTENT}']
  kind: media-type
  upstream:
    application/json:
      schema: {{type: string}}
  reason: bytes, not JSON
"
    ))
    .expect("differences parse")
}

#[test]
fn recorded_differences_are_kept_by_pointer_or_component() {
    let new = parse(include_str!("fixtures/spec/diff-new.yaml")).expect("fixture parses");
    let full = diff(&old(), &new);
    let report = fixture_differences().apply(full.clone(), &new);
    assert_eq!(report.changes.len() + report.kept.len(), full.changes.len());
    // Blue, which we add, and the content type; yellow, new upstream, is still to review.
    assert_eq!(report.kept.len(), 2, "{report}");
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.detail == "enum value \"yellow\" added"),
        "{report}"
    );
    assert!(
        report.kept.iter().any(
            |k| k.change.detail == "enum value \"blue\" added by us; upstream does not list it"
        ),
        "{report}"
    );
    assert!(report.stale.is_empty(), "{report}");
    for kept in &report.kept {
        assert!(
            kept.change.component.as_deref() == Some(COLOUR_ENUM)
                || kept.change.pointer == WIDGET_CONTENT,
            "{kept:?}"
        );
    }
    assert_eq!(report.kept[0].difference, DifferenceKind::AddedEnumValues);
    assert!(report.changes.iter().all(|c| c.pointer != WIDGET_CONTENT));
    // The rest still breaks.
    assert_eq!(report.exit_code(), 2);
}

#[test]
fn recorded_difference_no_longer_matches_when_upstream_changes_there() {
    let mut new = parse(include_str!("fixtures/spec/diff-new.yaml")).expect("fixture parses");
    // Upstream dropped green, which the recording says it had: blue, green and yellow
    // are all to review.
    new["components"]["schemas"]["CreateWidgetRequest"]["properties"]["colour"]["enum"] =
        json!(["red", "yellow"]);
    let report = fixture_differences().apply(diff(&old(), &new), &new);
    let enum_changes: Vec<&Change> = report
        .changes
        .iter()
        .filter(|c| c.component.as_deref() == Some(COLOUR_ENUM))
        .collect();
    assert_eq!(enum_changes.len(), 3, "{report}");
    assert!(
        report
            .kept
            .iter()
            .all(|k| k.change.pointer == WIDGET_CONTENT)
    );
    assert_eq!(report.stale, [COLOUR_ENUM]);
    assert!(report.to_string().contains("not found (1):"), "{report}");
}

#[test]
fn an_enum_we_add_to_may_gain_values_upstream() {
    let mut new = parse(include_str!("fixtures/spec/diff-new.yaml")).expect("fixture parses");
    new["components"]["schemas"]["CreateWidgetRequest"]["properties"]["colour"]["enum"] =
        json!(["red", "green", "yellow", "purple"]);
    let report = fixture_differences().apply(diff(&old(), &new), &new);
    let kept: Vec<&str> = report
        .kept
        .iter()
        .filter(|k| k.change.component.as_deref() == Some(COLOUR_ENUM))
        .map(|k| k.change.detail.as_str())
        .collect();
    assert_eq!(
        kept,
        ["enum value \"blue\" added by us; upstream does not list it"]
    );
    assert!(report.stale.is_empty(), "{report}");
    // Upstream taking up blue itself ends the difference.
    new["components"]["schemas"]["CreateWidgetRequest"]["properties"]["colour"]["enum"] =
        json!(["red", "green", "yellow", "blue"]);
    let report = fixture_differences().apply(diff(&old(), &new), &new);
    assert_eq!(report.stale, [COLOUR_ENUM]);
}

#[test]
fn descriptions_do_not_unsettle_a_recording() {
    let mut new = parse(include_str!("fixtures/spec/diff-new.yaml")).expect("fixture parses");
    let content = &mut new["paths"]["/widgets/{widget_id}/content"]["get"]["responses"]["200"]["content"]
        ["application/json"];
    content["schema"]["description"] = json!("The bytes.");
    content["x-note"] = json!(true);
    let report = fixture_differences().apply(diff(&old(), &new), &new);
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.change.pointer == WIDGET_CONTENT)
    );
    assert!(report.stale.is_empty(), "{report}");
}

#[test]
fn differences_file_parses_and_rejects_unknown_fields() {
    let vendored = Differences::vendored().expect("openapi/differences.yaml parses");
    assert!(!vendored.entries().is_empty());
    assert!(
        Differences::parse("- pointers: [/a]\n  kind: media-type\n  reason: x\n  why: y\n")
            .is_err()
    );
    assert!(Differences::parse("- pointers: []\n  kind: media-type\n  reason: x\n").is_err());
    assert!(Differences::parse("- pointers: [/a]\n  kind: renamed\n  reason: x\n").is_err());
}

#[test]
fn readme_table_is_the_differences_file() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/README.md"))
        .expect("openapi/README.md exists");
    let (start, end) = (
        "<!-- generated from differences.yaml: start -->\n",
        "<!-- generated from differences.yaml: end -->",
    );
    let from = readme.find(start).expect("start marker") + start.len();
    let to = readme.find(end).expect("end marker");
    let table = Differences::vendored().expect("parses").markdown_table();
    assert_eq!(
        &readme[from..to],
        table,
        "openapi/README.md's table differs from openapi/differences.yaml; it should read:\n{table}"
    );
}

fn upstream_report() -> Option<(Value, DiffReport)> {
    let upstream = read(&common::upstream_spec()?).expect("upstream parses");
    let vendored = read(&common::vendored_spec()).expect("vendored parses");
    let report = diff(&vendored, &upstream);
    Some((upstream, report))
}

#[test]
fn vendored_against_real_upstream() {
    let Some((upstream, report)) = upstream_report() else {
        return;
    };
    for change in &report.changes {
        assert!(change.pointer.starts_with("/paths/"), "{change:?}");
    }
    // Extraction must not change what the diff sees, but for the operations under the
    // covered paths that the vendored spec leaves out, which it does not extract.
    let extracted = extract(&upstream, DEFAULT_OPERATIONS).expect("upstream extracts");
    let vendored = read(&common::vendored_spec()).expect("vendored parses");
    let mut covered_only = report.clone();
    covered_only
        .changes
        .retain(|c| c.pointer != "/paths/~1files/post/operationId");
    assert_eq!(covered_only.changes.len() + 1, report.changes.len());
    assert_eq!(diff(&vendored, &extracted), covered_only);

    // Every difference from upstream is one recorded as deliberate, and every recorded
    // one still exists, so the record cannot go stale.
    let report = Differences::vendored()
        .expect("parses")
        .apply(report, &upstream);
    assert!(
        report.is_empty(),
        "differences from upstream not recorded in openapi/differences.yaml:\n{report}"
    );
    assert!(
        report.stale.is_empty(),
        "openapi/differences.yaml records differences no longer found:\n{report}"
    );
    assert_eq!(report.exit_code(), 0);
    insta::assert_snapshot!("vendored_against_upstream_text", report.to_string());
    insta::assert_json_snapshot!("vendored_against_upstream_json", report);
}

#[test]
fn a_changed_upstream_is_reported_at_a_recorded_pointer() {
    let Some((mut upstream, _)) = upstream_report() else {
        return;
    };
    let content = "/paths/~1files~1{file_id}~1content/get/responses/200/content";
    let path = upstream["paths"]["/files/{file_id}/content"]["get"]["responses"]["200"]["content"]
        .as_object_mut()
        .expect("upstream declares the download's content");
    let schema = path.remove("application/json").expect("as JSON today");
    path.insert("text/plain".into(), schema);
    let vendored = read(&common::vendored_spec()).expect("vendored parses");
    let report = Differences::vendored()
        .expect("parses")
        .apply(diff(&vendored, &upstream), &upstream);
    assert_single(
        &report,
        content,
        ChangeKind::Breaking,
        "content type changed",
    );
    assert!(report.kept.iter().all(|k| k.change.pointer != content));
    assert_eq!(report.stale, [content]);
    assert_eq!(report.exit_code(), 2);
    insta::assert_snapshot!("changed_upstream_text", report.to_string());

    // Same media type, same words in the report, but not what was recorded.
    let Some((mut upstream, _)) = upstream_report() else {
        return;
    };
    upstream["paths"]["/files/{file_id}/content"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]["format"] = json!("byte");
    let report = Differences::vendored()
        .expect("parses")
        .apply(diff(&vendored, &upstream), &upstream);
    assert_single(
        &report,
        content,
        ChangeKind::Breaking,
        "content type changed",
    );
    assert_eq!(report.stale, [content]);
}
