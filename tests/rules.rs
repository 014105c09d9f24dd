//! Every request rule, one passing and one failing case each, plus properties
//! of the part arithmetic and of checks fed arbitrary JSON.

use std::collections::{BTreeSet, HashMap};

use openai_uploads::validate::Rule;
use openai_uploads::validate::rules::{
    self, MAX_PART_BYTES, MAX_UPLOAD_BYTES, RuleViolation, TrackedUpload, UploadPhase,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: i64 = 1_719_184_911;
const MD5: &str = "9e107d9d372bb6826bd81d3542a419d6";

/// One call of a rule check.
#[derive(Clone, Debug)]
enum Call {
    Create(Value),
    AddPart {
        len: u64,
        upload: Option<TrackedUpload>,
        now: i64,
    },
    Complete {
        body: Value,
        upload: Option<TrackedUpload>,
        now: i64,
    },
    Cancel(Option<TrackedUpload>),
    PathId(&'static str),
    ListFiles(Option<i64>),
}

impl Call {
    fn run(&self) -> Vec<RuleViolation> {
        match self {
            Call::Create(body) => rules::check_create_upload(body),
            Call::AddPart { len, upload, now } => {
                rules::check_add_part(*len, upload.as_ref(), *now)
            }
            Call::Complete { body, upload, now } => {
                rules::check_complete_upload(body, upload.as_ref(), *now)
            }
            Call::Cancel(upload) => rules::check_cancel_upload(upload.as_ref()),
            Call::PathId(id) => rules::check_path_id("file_id", id),
            Call::ListFiles(limit) => rules::check_list_files(*limit),
        }
    }
}

/// A rule, a call that keeps it, and a call that breaks it and nothing else.
struct Case {
    rule: Rule,
    pass: Call,
    fail: Call,
    field: &'static str,
    value_contains: &'static str,
    message_contains: &'static str,
}

fn valid_create() -> Value {
    json!({
        "filename": "training_examples.jsonl",
        "purpose": "fine-tune",
        "bytes": 2_147_483_648_u64,
        "mime_type": "text/jsonl",
    })
}

fn create_with(changes: Value) -> Call {
    let mut body = valid_create();
    let fields = body.as_object_mut().unwrap();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            fields.remove(key);
        } else {
            fields.insert(key.clone(), value.clone());
        }
    }
    Call::Create(body)
}

/// A pending Upload of `bytes`, an hour from expiry, holding `parts`.
fn tracked(bytes: u64, parts: &[(&str, u64)]) -> TrackedUpload {
    let mut upload = TrackedUpload::pending(bytes, NOW + 3600);
    upload.parts = parts
        .iter()
        .map(|(id, len)| (id.to_string(), *len))
        .collect();
    upload
}

fn in_phase(phase: UploadPhase) -> TrackedUpload {
    TrackedUpload {
        phase,
        ..tracked(1000, &[("part_a", 100)])
    }
}

fn add_part(len: u64, upload: Option<TrackedUpload>) -> Call {
    Call::AddPart {
        len,
        upload,
        now: NOW,
    }
}

fn complete(body: Value, upload: Option<TrackedUpload>) -> Call {
    Call::Complete {
        body,
        upload,
        now: NOW,
    }
}

fn cases() -> Vec<Case> {
    let two_parts = || tracked(100, &[("part_a", 60), ("part_b", 40)]);
    vec![
        Case {
            rule: Rule::RequiredField,
            pass: create_with(json!({})),
            fail: create_with(json!({"bytes": null})),
            field: "bytes",
            value_contains: "nothing",
            message_contains: "required",
        },
        Case {
            rule: Rule::FieldType,
            pass: create_with(json!({"bytes": 1000})),
            fail: create_with(json!({"bytes": "1000"})),
            field: "bytes",
            value_contains: "\"1000\"",
            message_contains: "must be integer, found string",
        },
        Case {
            rule: Rule::UnknownField,
            pass: create_with(json!({"expires_after": {"anchor": "created_at", "seconds": 3600}})),
            fail: create_with(json!({"colour": "blue"})),
            field: "colour",
            value_contains: "colour",
            message_contains: "known: bytes, expires_after, filename, mime_type, purpose",
        },
        Case {
            rule: Rule::PathIdNotEmpty,
            pass: Call::PathId("file-abc123"),
            fail: Call::PathId(""),
            field: "file_id",
            value_contains: "\"\"",
            message_contains: "must not be empty",
        },
        Case {
            rule: Rule::PathIdSegment,
            pass: Call::PathId("file-abc123"),
            fail: Call::PathId("file-abc/../../uploads"),
            field: "file_id",
            value_contains: "file-abc/",
            message_contains: "one path segment",
        },
        Case {
            rule: Rule::ListLimitRange,
            pass: Call::ListFiles(Some(10_000)),
            fail: Call::ListFiles(Some(10_001)),
            field: "limit",
            value_contains: "10001",
            message_contains: "between 1 and 10000",
        },
        Case {
            rule: Rule::FilenameNotEmpty,
            pass: create_with(json!({"filename": "a"})),
            fail: create_with(json!({"filename": ""})),
            field: "filename",
            value_contains: "\"\"",
            message_contains: "empty",
        },
        Case {
            rule: Rule::FilenameNoPathSeparator,
            pass: create_with(json!({"filename": "data.v2 (final).jsonl"})),
            fail: create_with(json!({"filename": "..\\data\\train.jsonl"})),
            field: "filename",
            value_contains: "train.jsonl",
            message_contains: "bare file name",
        },
        Case {
            rule: Rule::FilenameNoControlChars,
            pass: create_with(json!({"filename": "données ✓.jsonl"})),
            fail: create_with(json!({"filename": "train\u{7}.jsonl"})),
            field: "filename",
            value_contains: "\\u{7}",
            message_contains: "control characters",
        },
        Case {
            rule: Rule::PurposeAccepted,
            pass: create_with(json!({"purpose": "assistants", "mime_type": "application/pdf"})),
            fail: create_with(json!({"purpose": "fine_tune"})),
            field: "purpose",
            value_contains: "fine_tune",
            message_contains: "assistants, batch, fine-tune, vision",
        },
        Case {
            rule: Rule::BytesPositive,
            pass: create_with(json!({"bytes": 1})),
            fail: create_with(json!({"bytes": -5})),
            field: "bytes",
            value_contains: "-5",
            message_contains: "greater than zero",
        },
        Case {
            rule: Rule::BytesAtMost8Gb,
            pass: create_with(json!({"bytes": MAX_UPLOAD_BYTES})),
            fail: create_with(json!({"bytes": MAX_UPLOAD_BYTES + 1})),
            field: "bytes",
            value_contains: "8589934593",
            message_contains: "8589934592",
        },
        Case {
            rule: Rule::MimeTypeWellFormed,
            pass: create_with(json!({"mime_type": "text/jsonl; charset=utf-8"})),
            fail: create_with(json!({"mime_type": "jsonl"})),
            field: "mime_type",
            value_contains: "jsonl",
            message_contains: "MIME type",
        },
        Case {
            rule: Rule::MimeTypeMatchesPurpose,
            pass: create_with(
                json!({"purpose": "batch", "mime_type": "Application/X-NDJSON; charset=utf-8"}),
            ),
            fail: create_with(json!({"purpose": "batch", "mime_type": "text/plain"})),
            field: "mime_type",
            value_contains: "text/plain",
            message_contains: "purpose `batch` takes JSON Lines",
        },
        Case {
            rule: Rule::ExpiresAfterAnchor,
            pass: create_with(json!({"expires_after": {"anchor": "created_at", "seconds": 86400}})),
            fail: create_with(
                json!({"expires_after": {"anchor": "last_active_at", "seconds": 86400}}),
            ),
            field: "expires_after.anchor",
            value_contains: "last_active_at",
            message_contains: "created_at",
        },
        Case {
            rule: Rule::ExpiresAfterSeconds,
            pass: create_with(
                json!({"expires_after": {"anchor": "created_at", "seconds": 2_592_000}}),
            ),
            fail: create_with(json!({"expires_after": {"anchor": "created_at", "seconds": 3599}})),
            field: "expires_after.seconds",
            value_contains: "3599",
            message_contains: "between 3600 and 2592000",
        },
        Case {
            rule: Rule::PartNotEmpty,
            pass: add_part(1, None),
            fail: add_part(0, None),
            field: "data",
            value_contains: "0 bytes",
            message_contains: "at least one byte",
        },
        Case {
            rule: Rule::PartAtMost64Mb,
            pass: add_part(MAX_PART_BYTES, None),
            fail: add_part(MAX_PART_BYTES + 1, None),
            field: "data",
            value_contains: "67108865 bytes",
            message_contains: "67108864",
        },
        Case {
            rule: Rule::UploadPending,
            pass: add_part(10, Some(tracked(100, &[]))),
            fail: add_part(10, Some(in_phase(UploadPhase::Cancelled))),
            field: "upload_id",
            value_contains: "cancelled",
            message_contains: "not pending",
        },
        Case {
            rule: Rule::UploadNotExpired,
            pass: Call::AddPart {
                len: 10,
                upload: Some(tracked(100, &[])),
                now: NOW + 3599,
            },
            fail: Call::AddPart {
                len: 10,
                upload: Some(tracked(100, &[])),
                now: NOW + 3600,
            },
            field: "upload_id",
            value_contains: "expires_at 1719188511",
            message_contains: "expired",
        },
        Case {
            rule: Rule::PartsWithin8Gb,
            // Past the declared bytes is allowed: completion lists the parts.
            pass: add_part(41, Some(tracked(100, &[("part_a", 60)]))),
            fail: add_part(1, Some(tracked(100, &[("part_a", MAX_UPLOAD_BYTES)]))),
            field: "data",
            value_contains: "8589934593 bytes in all",
            message_contains: "8 GB",
        },
        Case {
            rule: Rule::PartIdsNotEmpty,
            pass: complete(json!({"part_ids": ["part_a"]}), None),
            fail: complete(json!({"part_ids": []}), None),
            field: "part_ids",
            value_contains: "[]",
            message_contains: "at least one part",
        },
        Case {
            rule: Rule::PartIdsUnique,
            pass: complete(json!({"part_ids": ["part_a", "part_b"]}), None),
            fail: complete(json!({"part_ids": ["part_a", "part_b", "part_a"]}), None),
            field: "part_ids[2]",
            value_contains: "part_a",
            message_contains: "already listed",
        },
        Case {
            rule: Rule::PartIdsBelong,
            pass: complete(json!({"part_ids": ["part_a", "part_b"]}), Some(two_parts())),
            fail: complete(json!({"part_ids": ["part_a", "part_z"]}), Some(two_parts())),
            field: "part_ids[1]",
            value_contains: "part_z",
            message_contains: "not a part of this Upload",
        },
        Case {
            rule: Rule::PartsSumToBytes,
            pass: complete(json!({"part_ids": ["part_b", "part_a"]}), Some(two_parts())),
            fail: complete(json!({"part_ids": ["part_a"]}), Some(two_parts())),
            field: "part_ids",
            value_contains: "60 bytes",
            message_contains: "declared 100",
        },
        Case {
            rule: Rule::Md5Format,
            pass: complete(
                json!({"part_ids": ["part_a"], "md5": MD5.to_uppercase()}),
                None,
            ),
            fail: complete(json!({"part_ids": ["part_a"], "md5": &MD5[1..]}), None),
            field: "md5",
            value_contains: &MD5[1..9],
            message_contains: "32 hexadecimal digits",
        },
        Case {
            rule: Rule::CancelNotCompleted,
            pass: Call::Cancel(Some(in_phase(UploadPhase::Pending))),
            fail: Call::Cancel(Some(in_phase(UploadPhase::Completed))),
            field: "upload_id",
            value_contains: "completed",
            message_contains: "already completed",
        },
    ]
}

#[test]
fn every_rule_has_a_case() {
    let covered: BTreeSet<&str> = cases().iter().map(|c| c.rule.name()).collect();
    let missing: Vec<&str> = Rule::ALL
        .iter()
        .map(|r| r.name())
        .filter(|name| !covered.contains(name))
        .collect();
    assert!(missing.is_empty(), "rules without a case: {missing:?}");
}

#[test]
fn passing_cases_raise_nothing() {
    for case in cases() {
        let violations = case.pass.run();
        assert!(
            violations.is_empty(),
            "{}: the passing case {:?} raised {violations:?}",
            case.rule,
            case.pass
        );
    }
}

#[test]
fn failing_cases_raise_their_rule_only() {
    for case in cases() {
        let violations = case.fail.run();
        let [violation] = violations.as_slice() else {
            panic!(
                "{}: expected one violation from {:?}, got {violations:?}",
                case.rule, case.fail
            );
        };
        let name = case.rule.name();
        assert_eq!(violation.rule, case.rule, "{name}");
        assert_eq!(violation.rule.name(), name);
        assert_eq!(violation.field, case.field, "{name}");
        assert!(
            violation.value.contains(case.value_contains),
            "{name}: value {:?} lacks {:?}",
            violation.value,
            case.value_contains
        );
        assert!(
            violation.message.contains(case.message_contains),
            "{name}: message {:?} lacks {:?}",
            violation.message,
            case.message_contains
        );
        let shown = violation.to_string();
        assert!(
            shown.contains(name) && shown.contains(case.field),
            "{name}: {shown}"
        );
    }
}

#[test]
fn rule_names_are_unique_and_summarised() {
    let names: BTreeSet<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names.len(), Rule::ALL.len());
    for rule in Rule::ALL {
        assert!(!rule.summary().is_empty(), "{rule}");
        assert_eq!(rule.to_string(), rule.name());
    }
}

#[test]
fn long_values_are_shortened() {
    let filename = format!("{}/x.jsonl", "d".repeat(500));
    let violations = rules::check_create_upload(&create_with_value("filename", &filename));
    let violation = &violations[0];
    assert_eq!(violation.rule, Rule::FilenameNoPathSeparator);
    assert_eq!(violation.value.chars().count(), 80);
    assert!(violation.value.ends_with("..."));
}

#[test]
fn a_body_that_is_not_an_object_is_one_type_violation() {
    for body in [json!([]), json!("x"), json!(null), json!(1)] {
        for violations in [
            rules::check_create_upload(&body),
            rules::check_complete_upload(&body, None, NOW),
        ] {
            assert_eq!(violations.len(), 1, "{body}: {violations:?}");
            assert_eq!(violations[0].rule, Rule::FieldType);
            assert_eq!(violations[0].field, "(body)");
            assert!(violations[0].message.starts_with("must be object"));
        }
    }
}

#[test]
fn without_tracked_state_only_stateless_rules_run() {
    assert!(rules::check_cancel_upload(None).is_empty());
    assert!(rules::check_add_part(MAX_PART_BYTES, None, i64::MAX).is_empty());
    assert!(rules::check_complete_upload(&json!({"part_ids": ["x"]}), None, i64::MAX).is_empty());
}

fn create_with_value(key: &str, value: &str) -> Value {
    let mut body = valid_create();
    body[key] = Value::from(value);
    body
}

fn raised(violations: &[RuleViolation], rule: Rule) -> bool {
    violations.iter().any(|v| v.rule == rule)
}

fn part_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(MAX_PART_BYTES),
        Just(MAX_PART_BYTES + 1),
        0..=2 * MAX_PART_BYTES,
        1..=4096_u64,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn add_part_arithmetic(
        declared in prop_oneof![1..=MAX_UPLOAD_BYTES, 1..=200_000_000_u64],
        received in prop::collection::vec(1..=MAX_UPLOAD_BYTES / 4, 0..6),
        len in part_len(),
    ) {
        let parts: HashMap<String, u64> = received
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("part_{i}"), *n))
            .collect();
        let upload = TrackedUpload { parts, ..TrackedUpload::pending(declared, NOW + 3600) };
        let total = received.iter().sum::<u64>() + len;

        let tracked = rules::check_add_part(len, Some(&upload), NOW);
        prop_assert_eq!(raised(&tracked, Rule::PartsWithin8Gb), total > MAX_UPLOAD_BYTES);
        prop_assert_eq!(raised(&tracked, Rule::PartNotEmpty), len == 0);
        prop_assert_eq!(raised(&tracked, Rule::PartAtMost64Mb), len > MAX_PART_BYTES);
        prop_assert!(!raised(&tracked, Rule::UploadPending) && !raised(&tracked, Rule::UploadNotExpired));

        let untracked = rules::check_add_part(len, None, NOW);
        prop_assert_eq!(
            untracked.len(),
            usize::from(len == 0) + usize::from(len > MAX_PART_BYTES)
        );
    }

    #[test]
    fn complete_arithmetic(
        sizes in prop::collection::vec(1..=MAX_PART_BYTES, 1..8),
        listed in prop::collection::vec(any::<bool>(), 8),
        offset in prop_oneof![Just(0_i64), Just(1), Just(-1), -1_000_000..1_000_000_i64],
        reversed in any::<bool>(),
    ) {
        let mut ids: Vec<String> = (0..sizes.len())
            .filter(|i| listed[*i])
            .map(|i| format!("part_{i}"))
            .collect();
        if reversed {
            ids.reverse();
        }
        let listed_sum: u64 = (0..sizes.len()).filter(|i| listed[*i]).map(|i| sizes[i]).sum();
        let declared = listed_sum.saturating_add_signed(offset).max(1);
        let upload = TrackedUpload {
            parts: sizes.iter().enumerate().map(|(i, n)| (format!("part_{i}"), *n)).collect(),
            ..TrackedUpload::pending(declared, NOW + 3600)
        };

        let violations =
            rules::check_complete_upload(&json!({ "part_ids": ids }), Some(&upload), NOW);
        if ids.is_empty() {
            prop_assert_eq!(violations.len(), 1);
            prop_assert_eq!(violations[0].rule, Rule::PartIdsNotEmpty);
        } else {
            prop_assert_eq!(raised(&violations, Rule::PartsSumToBytes), listed_sum != declared);
            prop_assert_eq!(violations.len(), usize::from(listed_sum != declared));
        }
    }

    #[test]
    fn no_json_makes_a_rule_check_panic(
        body in garbage(),
        planted in garbage(),
        field in prop::sample::select(FIELDS),
        len in part_len(),
        now in any::<i64>(),
    ) {
        let upload = tracked(100, &[("part_a", 60), ("part_b", 40)]);
        rules::check_create_upload(&body);
        rules::check_complete_upload(&body, None, now);
        rules::check_complete_upload(&body, Some(&upload), now);
        rules::check_add_part(len, Some(&upload), now);

        let mut create = valid_create();
        create[field] = planted.clone();
        rules::check_create_upload(&create);
        let mut expiring = valid_create();
        expiring["expires_after"] = json!({ field: planted.clone() });
        rules::check_create_upload(&expiring);
        let mut completion = json!({"part_ids": ["part_a"], "md5": MD5});
        completion[field] = planted.clone();
        rules::check_complete_upload(&completion, Some(&upload), now);
        let listed = json!({"part_ids": [planted.clone(), "part_a", planted]});
        rules::check_complete_upload(&listed, Some(&upload), now);
    }
}

/// Field names the checks look for, so that arbitrary values land where they are read.
const FIELDS: &[&str] = &[
    "filename",
    "purpose",
    "bytes",
    "mime_type",
    "expires_after",
    "anchor",
    "seconds",
    "part_ids",
    "md5",
    "other",
];

/// Arbitrary JSON: every type, extreme numbers, odd strings, nested arrays and
/// objects whose keys are often the ones the checks read.
fn garbage() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1), Just(0)].prop_map(Value::from),
        prop_oneof![Just(u64::MAX), Just(MAX_UPLOAD_BYTES + 1)].prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("JSON has no NaN or infinity", serde_json::Number::from_f64)
            .prop_map(Value::Number),
        Just(json!(1e308)),
        Just(json!(-0.0)),
        any::<String>().prop_map(Value::from),
        "[a-z/\\\\;=\\x00-\\x1f ]{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(FIELDS).prop_map(String::from),
                        any::<String>()
                    ],
                    inner
                ),
                0..8,
            )
            .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

#[test]
fn deep_nesting_does_not_panic() {
    let mut deep = json!("bottom");
    for depth in 0..2000 {
        deep = if depth % 2 == 0 {
            json!([deep])
        } else {
            json!({ "part_ids": deep })
        };
    }
    let violations = rules::check_complete_upload(&json!({ "part_ids": { "x": deep } }), None, NOW);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].rule, Rule::FieldType);
    assert_eq!(violations[0].field, "part_ids");
    assert!(violations[0].value.chars().count() <= 80);

    let mut create = valid_create();
    create["bytes"] = json!([deep]);
    let violations = rules::check_create_upload(&create);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].rule, Rule::FieldType);
}
