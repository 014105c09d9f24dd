//! Request rules: what the API refuses, checked before a request leaves the machine.
//!
//! Every check is a pure function over the request's JSON (or a part's length)
//! and, where the caller tracks it, the Upload's known state. The emulator
//! runs the same functions on what it receives, so both sides share one table.
//!
//! Which fields a body requires, which it may hold and their JSON types are
//! read from the vendored spec's schema of that body; the checks written
//! here are only those the spec cannot say. This table is the one place a
//! documented limit is stated: the upload plan, the emulator and the CLI
//! call it.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::schema::{json_type, vendored_spec};

/// Most bytes one Upload may hold: 8 GB.
pub const MAX_UPLOAD_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// Most bytes one part may hold: 64 MB.
pub const MAX_PART_BYTES: u64 = 64 * 1024 * 1024;

/// How long an Upload stays pending after its creation: one hour.
pub const UPLOAD_LIFETIME_SECONDS: i64 = 3600;
/// Shortest `expires_after.seconds`: one hour.
pub const MIN_EXPIRES_AFTER_SECONDS: i64 = 3600;
/// Longest `expires_after.seconds`: thirty days.
pub const MAX_EXPIRES_AFTER_SECONDS: i64 = 2_592_000;
/// Most bytes of a JSON answer (or a JSON request body, in the emulator) read
/// into memory: 16 MiB. The largest legitimate answer is a `files list` page
/// of 10 000 Files at well under 1 KiB each; anything larger is refused, not
/// buffered.
pub const MAX_JSON_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// Most bytes of an error answer read into memory: 64 KiB. The error envelope
/// is a few hundred bytes; the rest of a larger body is not read.
pub const MAX_ERROR_BODY_BYTES: u64 = 64 * 1024;
/// Most Files one page of `GET /files` lists.
pub const MAX_LIST_LIMIT: i64 = 10_000;
/// MIME types accepted for purposes whose files are JSON Lines.
pub const JSONL_MIME_TYPES: &[&str] = &["application/jsonl", "text/jsonl", "application/x-ndjson"];
/// Purposes whose files must be JSON Lines.
pub const JSONL_PURPOSES: &[&str] = &["batch", "fine-tune"];

macro_rules! rules {
    ($( $variant:ident => $name:literal, $summary:literal; )*) => {
        /// A request rule, with a stable name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum Rule {
            $( #[doc = $summary] $variant, )*
        }

        impl Rule {
            /// Every rule, in the order of the table in the crate docs.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            /// Stable name, e.g. `create.filename.not_empty`.
            pub fn name(self) -> &'static str {
                match self { $( Rule::$variant => $name, )* }
            }

            /// One-line statement of the rule.
            pub fn summary(self) -> &'static str {
                match self { $( Rule::$variant => $summary, )* }
            }
        }
    };
}

rules! {
    RequiredField => "request.field.required", "A field the spec requires is present.";
    FieldType => "request.field.type", "A field has the JSON type the spec declares.";
    UnknownField => "request.field.known", "No field beyond those the spec declares (`additionalProperties: false`).";
    FilenameNotEmpty => "create.filename.not_empty", "`filename` is not empty.";
    FilenameNoPathSeparator => "create.filename.no_path_separator", "`filename` holds no `/` or `\\`.";
    FilenameNoControlChars => "create.filename.no_control_chars", "`filename` holds no control characters.";
    PurposeAccepted => "create.purpose.accepted", "`purpose` is one the spec lists for `POST /uploads`.";
    BytesPositive => "create.bytes.positive", "`bytes` is greater than zero.";
    BytesAtMost8Gb => "create.bytes.max_8gb", "`bytes` is at most 8 GB (8 GiB).";
    MimeTypeWellFormed => "create.mime_type.well_formed", "`mime_type` is `type/subtype`, optionally with parameters.";
    MimeTypeMatchesPurpose => "create.mime_type.matches_purpose", "`batch` and `fine-tune` take JSON Lines (`application/jsonl`, `text/jsonl`, `application/x-ndjson`).";
    ExpiresAfterAnchor => "create.expires_after.anchor", "`expires_after.anchor` is `created_at`.";
    ExpiresAfterSeconds => "create.expires_after.seconds", "`expires_after.seconds` is within 3600..=2592000.";
    PartNotEmpty => "part.data.not_empty", "A part holds at least one byte.";
    PartAtMost64Mb => "part.data.max_64mb", "A part holds at most 64 MB (64 MiB).";
    UploadPending => "upload.status.pending", "Parts are added to, and completion asked of, a pending Upload only.";
    UploadNotExpired => "upload.not_expired", "The Upload has not passed its `expires_at`.";
    PartsWithin8Gb => "part.total.max_8gb", "The parts received so far hold at most 8 GB, the most an Upload takes (the declared `bytes` is checked at completion, over the listed parts).";
    PartIdsNotEmpty => "complete.part_ids.not_empty", "`part_ids` lists at least one part.";
    PartIdsUnique => "complete.part_ids.unique", "`part_ids` lists no part twice.";
    PartIdsBelong => "complete.part_ids.belong", "Every id in `part_ids` is a part of this Upload.";
    PartsSumToBytes => "complete.part_ids.sum_equals_bytes", "The listed parts add up to exactly the declared `bytes`.";
    Md5Format => "complete.md5.format", "`md5` is 32 hexadecimal digits.";
    CancelNotCompleted => "cancel.status.not_completed", "A completed Upload cannot be cancelled.";
    PathIdNotEmpty => "path.id.not_empty", "An id in the path (`upload_id`, `file_id`) is not empty.";
    PathIdSegment => "path.id.segment", "An id in the path is one segment: not `.` or `..`, and without `/`, `\\`, `?`, `#`, `%` or control characters.";
    ListLimitRange => "list.limit.range", "`limit` of `GET /files` is within 1..=10000.";
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken rule: which rule, on which field, with which value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleViolation {
    /// The rule broken.
    pub rule: Rule,
    /// The request field at fault, as the API names it (`expires_after.seconds`, `data`).
    pub field: String,
    /// The offending value, shortened for display.
    pub value: String,
    /// What is wrong, in words.
    pub message: String,
}

impl RuleViolation {
    fn new(rule: Rule, field: &str, value: impl fmt::Display, message: impl Into<String>) -> Self {
        let mut value = value.to_string();
        if value.chars().count() > 80 {
            value = value.chars().take(77).chain("...".chars()).collect();
        }
        Self {
            rule,
            field: field.to_string(),
            value,
            message: message.into(),
        }
    }
}

impl fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: {} (rule {}, got {})",
            self.field, self.message, self.rule, self.value
        )
    }
}

/// Where an Upload is in its life, as far as the rules need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UploadPhase {
    /// Accepting parts.
    Pending,
    /// Completed into a File.
    Completed,
    /// Cancelled by the caller.
    Cancelled,
    /// Past its expiry.
    Expired,
}

impl UploadPhase {
    /// The wire name of the phase.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// What is known of an Upload: enough to check parts, completion and cancel.
///
/// The emulator keeps one per Upload; the one-call upload keeps one for the
/// Upload it drives. A caller that tracks nothing passes `None` and only the
/// stateless rules run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedUpload {
    /// Declared size.
    pub bytes: u64,
    /// Current phase.
    pub phase: UploadPhase,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Size of each part received, by part id.
    pub parts: HashMap<String, u64>,
}

impl TrackedUpload {
    /// A pending Upload of `bytes` expiring at `expires_at`, with no parts yet.
    pub fn pending(bytes: u64, expires_at: i64) -> Self {
        Self {
            bytes,
            phase: UploadPhase::Pending,
            expires_at,
            parts: HashMap::new(),
        }
    }

    /// Sum of the sizes of all parts received.
    pub fn received(&self) -> u64 {
        self.parts.values().sum()
    }

    /// The phase at time `now`: a pending Upload past `expires_at` is expired.
    pub fn phase_at(&self, now: i64) -> UploadPhase {
        if self.phase == UploadPhase::Pending && now >= self.expires_at {
            UploadPhase::Expired
        } else {
            self.phase
        }
    }
}

/// Checks the body of `POST /uploads`.
pub fn check_create_upload(body: &Value) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    let Some(obj) = object_of(body, "", &mut out) else {
        return out;
    };
    declared_fields(obj, "CreateUploadRequest", &mut out);

    if let Some(filename) = text(obj, "filename") {
        if filename.is_empty() {
            out.push(RuleViolation::new(
                Rule::FilenameNotEmpty,
                "filename",
                "\"\"",
                "must not be empty",
            ));
        }
        if filename.contains(['/', '\\']) {
            out.push(RuleViolation::new(
                Rule::FilenameNoPathSeparator,
                "filename",
                format!("{filename:?}"),
                "must be a bare file name, without `/` or `\\`",
            ));
        }
        if filename.chars().any(char::is_control) {
            out.push(RuleViolation::new(
                Rule::FilenameNoControlChars,
                "filename",
                format!("{filename:?}"),
                "must not hold control characters",
            ));
        }
    }

    let purpose = text(obj, "purpose");
    let purposes = upload_purposes();
    if let Some(purpose) = purpose
        && !purposes.contains(&purpose)
    {
        out.push(RuleViolation::new(
            Rule::PurposeAccepted,
            "purpose",
            format!("{purpose:?}"),
            format!("must be one of {}", purposes.join(", ")),
        ));
    }

    if let Some(v) = obj.get("bytes") {
        match (v.as_i64(), v.as_u64()) {
            (Some(n), _) if n <= 0 => out.push(not_positive(n)),
            (_, Some(n)) => out.extend(check_upload_bytes(n)),
            // Not an integer: said by the spec's type.
            _ => {}
        }
    }

    if let Some(mime) = text(obj, "mime_type") {
        if !mime_well_formed(mime) {
            out.push(RuleViolation::new(
                Rule::MimeTypeWellFormed,
                "mime_type",
                format!("{mime:?}"),
                "must be a MIME type such as `text/jsonl`",
            ));
        } else if let Some(purpose) = purpose
            && JSONL_PURPOSES.contains(&purpose)
            && !JSONL_MIME_TYPES.contains(&essence(mime).as_str())
        {
            out.push(RuleViolation::new(
                Rule::MimeTypeMatchesPurpose,
                "mime_type",
                format!("{mime:?}"),
                format!(
                    "purpose `{purpose}` takes JSON Lines: one of {}",
                    JSONL_MIME_TYPES.join(", ")
                ),
            ));
        }
    }

    if let Some(Value::Object(expires)) = obj.get("expires_after") {
        check_expires_after(expires, &mut out);
    }
    out
}

fn not_positive(bytes: impl fmt::Display) -> RuleViolation {
    RuleViolation::new(
        Rule::BytesPositive,
        "bytes",
        bytes,
        "must be greater than zero",
    )
}

/// Checks the declared size of an Upload: at least one byte, at most 8 GB.
pub fn check_upload_bytes(bytes: u64) -> Vec<RuleViolation> {
    if bytes == 0 {
        vec![not_positive(bytes)]
    } else if bytes > MAX_UPLOAD_BYTES {
        vec![RuleViolation::new(
            Rule::BytesAtMost8Gb,
            "bytes",
            bytes,
            format!("must be at most {MAX_UPLOAD_BYTES} (8 GB)"),
        )]
    } else {
        Vec::new()
    }
}

/// Checks the size of one part: at least one byte, at most 64 MB.
pub fn check_part_size(len: u64) -> Vec<RuleViolation> {
    if len == 0 {
        vec![RuleViolation::new(
            Rule::PartNotEmpty,
            "data",
            "0 bytes",
            "a part must hold at least one byte",
        )]
    } else if len > MAX_PART_BYTES {
        vec![RuleViolation::new(
            Rule::PartAtMost64Mb,
            "data",
            format!("{len} bytes"),
            format!("a part holds at most {MAX_PART_BYTES} bytes (64 MB)"),
        )]
    } else {
        Vec::new()
    }
}

/// Checks an id the path of a request carries (`upload_id`, `file_id`),
/// whether the user gave it or a server returned it: it must name exactly
/// one path segment, so that a request can never reach another route.
pub fn check_path_id(field: &str, id: &str) -> Vec<RuleViolation> {
    if id.is_empty() {
        vec![RuleViolation::new(
            Rule::PathIdNotEmpty,
            field,
            "\"\"",
            "must not be empty",
        )]
    } else if id == "." || id == ".." {
        vec![RuleViolation::new(
            Rule::PathIdSegment,
            field,
            format!("{id:?}"),
            "must not be `.` or `..`",
        )]
    } else if let Some(c) = id
        .chars()
        .find(|c| matches!(c, '/' | '\\' | '?' | '#' | '%') || c.is_control())
    {
        vec![RuleViolation::new(
            Rule::PathIdSegment,
            field,
            format!("{id:?}"),
            format!("must be one path segment, without {c:?}"),
        )]
    } else {
        Vec::new()
    }
}

/// Checks the query of `GET /files`: a `limit`, if given, within 1..=10000.
pub fn check_list_files(limit: Option<i64>) -> Vec<RuleViolation> {
    match limit {
        Some(limit) if !(1..=MAX_LIST_LIMIT).contains(&limit) => vec![RuleViolation::new(
            Rule::ListLimitRange,
            "limit",
            limit,
            format!("must be between 1 and {MAX_LIST_LIMIT}"),
        )],
        _ => Vec::new(),
    }
}

fn check_expires_after(obj: &serde_json::Map<String, Value>, out: &mut Vec<RuleViolation>) {
    if let Some(anchor) = text(obj, "anchor")
        && anchor != "created_at"
    {
        out.push(RuleViolation::new(
            Rule::ExpiresAfterAnchor,
            "expires_after.anchor",
            format!("{anchor:?}"),
            "must be `created_at`",
        ));
    }
    if let Some(v) = obj.get("seconds") {
        match v.as_i64() {
            Some(s) if (MIN_EXPIRES_AFTER_SECONDS..=MAX_EXPIRES_AFTER_SECONDS).contains(&s) => {}
            Some(s) => out.push(RuleViolation::new(
                Rule::ExpiresAfterSeconds,
                "expires_after.seconds",
                s,
                format!(
                    "must be between {MIN_EXPIRES_AFTER_SECONDS} and {MAX_EXPIRES_AFTER_SECONDS}"
                ),
            )),
            None if v.is_u64() => out.push(RuleViolation::new(
                Rule::ExpiresAfterSeconds,
                "expires_after.seconds",
                v,
                format!(
                    "must be between {MIN_EXPIRES_AFTER_SECONDS} and {MAX_EXPIRES_AFTER_SECONDS}"
                ),
            )),
            // Not an integer: said by the spec's type.
            None => {}
        }
    }
}

/// Checks one part of `part_len` bytes against the Upload it is added to.
///
/// `now` is the current Unix time, used for expiry.
pub fn check_add_part(
    part_len: u64,
    upload: Option<&TrackedUpload>,
    now: i64,
) -> Vec<RuleViolation> {
    let mut out = check_part_size(part_len);
    if let Some(upload) = upload {
        phase_is_pending(upload, now, &mut out);
        let total = upload.received().saturating_add(part_len);
        if total > MAX_UPLOAD_BYTES {
            out.push(RuleViolation::new(
                Rule::PartsWithin8Gb,
                "data",
                format!("{total} bytes in all"),
                format!(
                    "the parts would exceed the {MAX_UPLOAD_BYTES} bytes (8 GB) an Upload holds"
                ),
            ));
        }
    }
    out
}

/// Checks the body of `POST /uploads/{id}/complete`.
pub fn check_complete_upload(
    body: &Value,
    upload: Option<&TrackedUpload>,
    now: i64,
) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    let Some(obj) = object_of(body, "", &mut out) else {
        return out;
    };
    declared_fields(obj, "CompleteUploadRequest", &mut out);
    if let Some(upload) = upload {
        phase_is_pending(upload, now, &mut out);
    }

    if let Some(Value::Array(items)) = obj.get("part_ids") {
        check_part_ids(items, upload, &mut out);
    }

    if let Some(md5) = text(obj, "md5")
        && !(md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        out.push(RuleViolation::new(
            Rule::Md5Format,
            "md5",
            format!("{md5:?}"),
            "must be 32 hexadecimal digits",
        ));
    }
    out
}

fn check_part_ids(items: &[Value], upload: Option<&TrackedUpload>, out: &mut Vec<RuleViolation>) {
    if items.is_empty() {
        out.push(RuleViolation::new(
            Rule::PartIdsNotEmpty,
            "part_ids",
            "[]",
            "must list at least one part",
        ));
        return;
    }
    let mut seen = HashSet::new();
    let mut sum: u64 = 0;
    let mut all_known = true;
    for (i, item) in items.iter().enumerate() {
        let field = format!("part_ids[{i}]");
        let Some(id) = item.as_str() else {
            // Said by the spec's item type.
            all_known = false;
            continue;
        };
        if !seen.insert(id) {
            out.push(RuleViolation::new(
                Rule::PartIdsUnique,
                &field,
                format!("{id:?}"),
                "lists a part already listed",
            ));
            continue;
        }
        if let Some(upload) = upload {
            match upload.parts.get(id) {
                Some(len) => sum = sum.saturating_add(*len),
                None => {
                    all_known = false;
                    out.push(RuleViolation::new(
                        Rule::PartIdsBelong,
                        &field,
                        format!("{id:?}"),
                        "is not a part of this Upload",
                    ));
                }
            }
        }
    }
    if let Some(upload) = upload
        && all_known
        && sum != upload.bytes
    {
        out.push(RuleViolation::new(
            Rule::PartsSumToBytes,
            "part_ids",
            format!("{sum} bytes"),
            format!(
                "the listed parts hold {sum} bytes but the Upload declared {}",
                upload.bytes
            ),
        ));
    }
}

/// Checks `POST /uploads/{id}/cancel` against the Upload's known state.
pub fn check_cancel_upload(upload: Option<&TrackedUpload>) -> Vec<RuleViolation> {
    match upload {
        Some(u) if u.phase == UploadPhase::Completed => vec![RuleViolation::new(
            Rule::CancelNotCompleted,
            "upload_id",
            "completed",
            "the Upload is already completed",
        )],
        _ => Vec::new(),
    }
}

/// Checks that `upload` still takes parts and completion at time `now`.
pub fn check_upload_pending(upload: &TrackedUpload, now: i64) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    phase_is_pending(upload, now, &mut out);
    out
}

fn phase_is_pending(upload: &TrackedUpload, now: i64, out: &mut Vec<RuleViolation>) {
    match upload.phase_at(now) {
        UploadPhase::Pending => {}
        UploadPhase::Expired => out.push(RuleViolation::new(
            Rule::UploadNotExpired,
            "upload_id",
            format!("expires_at {}", upload.expires_at),
            "the Upload has expired",
        )),
        phase => out.push(RuleViolation::new(
            Rule::UploadPending,
            "upload_id",
            phase.as_str(),
            format!("the Upload is {}, not pending", phase.as_str()),
        )),
    }
}

fn object_of<'v>(
    value: &'v Value,
    field: &str,
    out: &mut Vec<RuleViolation>,
) -> Option<&'v serde_json::Map<String, Value>> {
    match value.as_object() {
        Some(obj) => Some(obj),
        None => {
            let name = if field.is_empty() { "(body)" } else { field };
            out.push(wrong_type(name, "object", value));
            None
        }
    }
}

/// Component schema `name` of the vendored spec.
fn component(name: &str) -> &'static Value {
    &vendored_spec()["components"]["schemas"][name]
}

/// `schema`, or what its `$ref` to a component points at.
fn followed(schema: &'static Value) -> &'static Value {
    match schema["$ref"].as_str() {
        Some(reference) => component(reference.rsplit('/').next().unwrap_or_default()),
        None => schema,
    }
}

/// The purposes `POST /uploads` accepts, as the spec lists them.
fn upload_purposes() -> Vec<&'static str> {
    component("CreateUploadRequest")["properties"]["purpose"]["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Checks `obj` against component `schema`: the fields it requires, the
/// fields it allows when closed, and the JSON type of each field, nested
/// objects and array items included.
fn declared_fields(
    obj: &serde_json::Map<String, Value>,
    schema: &str,
    out: &mut Vec<RuleViolation>,
) {
    object_fields(obj, "", component(schema), out);
}

fn object_fields(
    obj: &serde_json::Map<String, Value>,
    prefix: &str,
    schema: &'static Value,
    out: &mut Vec<RuleViolation>,
) {
    static NONE: std::sync::LazyLock<serde_json::Map<String, Value>> =
        std::sync::LazyLock::new(serde_json::Map::new);
    let properties = schema["properties"].as_object().unwrap_or(&NONE);
    for required in schema["required"].as_array().into_iter().flatten() {
        if let Some(name) = required.as_str()
            && !obj.contains_key(name)
        {
            out.push(missing(&join(prefix, name)));
        }
    }
    let closed = schema["additionalProperties"] == Value::Bool(false);
    for (key, value) in obj {
        match properties.get(key) {
            Some(property) => typed(value, &join(prefix, key), followed(property), out),
            None if closed => {
                let known: Vec<&str> = properties.keys().map(String::as_str).collect();
                out.push(RuleViolation::new(
                    Rule::UnknownField,
                    &join(prefix, key),
                    format!("{key:?}"),
                    format!(
                        "is not a field of this request; known: {}",
                        known.join(", ")
                    ),
                ));
            }
            None => {}
        }
    }
}

/// Checks that `value` has the type `schema` declares, going into objects
/// and array items.
fn typed(value: &Value, field: &str, schema: &'static Value, out: &mut Vec<RuleViolation>) {
    let Some(expected) = schema["type"].as_str() else {
        return;
    };
    if value.is_null() && schema["nullable"] == Value::Bool(true) {
        return;
    }
    let found = json_type(value);
    let fits = found == expected || (expected == "number" && found == "integer");
    if !fits {
        out.push(wrong_type(field, expected, value));
        return;
    }
    match value {
        Value::Object(obj) => object_fields(obj, field, schema, out),
        Value::Array(items) => {
            let item_schema = followed(&schema["items"]);
            for (i, item) in items.iter().enumerate() {
                typed(item, &format!("{field}[{i}]"), item_schema, out);
            }
        }
        _ => {}
    }
}

/// The string field `name`, if it is one; a missing or mistyped field is
/// reported by [`declared_fields`].
fn text<'v>(obj: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v str> {
    obj.get(name).and_then(Value::as_str)
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn missing(field: &str) -> RuleViolation {
    RuleViolation::new(Rule::RequiredField, field, "nothing", "is required")
}

fn wrong_type(field: &str, expected: &str, value: &Value) -> RuleViolation {
    RuleViolation::new(
        Rule::FieldType,
        field,
        value,
        format!("must be {expected}, found {}", json_type(value)),
    )
}

fn mime_well_formed(mime: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let essence = mime.split(';').next().unwrap_or("");
    match essence.trim().split_once('/') {
        Some((kind, sub)) => token(kind) && token(sub),
        None => false,
    }
}

fn essence(mime: &str) -> String {
    mime.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}
