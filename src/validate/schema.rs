//! Response conformance: the modes, the findings, and the translation of the
//! spec's component schemas from OpenAPI 3.0 to JSON Schema draft 7
//! (`nullable` becomes a null branch, `$ref`s point into `definitions`,
//! annotations are dropped). The compiled validators are in `compiled`,
//! behind the default feature `schema`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The vendored spec, as JSON, written by the build script.
const SPEC_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/api-definition.json"));

/// The vendored spec, parsed once for every reader: the request rules, the
/// compiled response schemas and `openai spec diff`.
pub(crate) fn vendored_spec() -> &'static Value {
    static SPEC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| serde_json::from_str(SPEC_JSON).expect("the build script writes JSON"))
}

/// How strictly responses are checked against the spec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValidationMode {
    /// Any violation, unknown field or unknown enum value is an error.
    /// Unknown fields and values are found by the compiled schemas: without
    /// the feature `schema`, strict mode keeps only its semantic checks.
    Strict,
    /// Unknown fields, and unknown values of the open enums (`Upload.status`,
    /// `OpenAIFile.purpose`, `OpenAIFile.status`), are accepted and logged as
    /// `tracing` warnings; real violations (wrong type, missing field, an
    /// unknown value of a closed enum such as `object`) are errors.
    #[default]
    Lenient,
    /// No response checks (request rules still run).
    Off,
}

/// A place where a JSON document departs from its schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaViolation {
    /// JSON pointer into the checked document (`/file/bytes`; empty for the root).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {}", self.message)
    }
}

/// The outcome of checking one document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conformance {
    /// Departures that make the document invalid in the chosen mode.
    pub violations: Vec<SchemaViolation>,
    /// Departures tolerated in lenient mode (unknown fields, unknown enum values).
    pub warnings: Vec<SchemaViolation>,
}

impl Conformance {
    /// Whether the document passed in the chosen mode.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The JSON Schema (draft 7) of component `name`, with every component as a definition.
pub fn json_schema_for(components: &Map<String, Value>, name: &str, strict: bool) -> Value {
    let definitions: Map<String, Value> = components
        .iter()
        .map(|(k, v)| (k.clone(), translate(v, strict)))
        .collect();
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": definitions,
        "$ref": format!("#/definitions/{name}"),
    })
}

/// OpenAPI 3.0 schema object → JSON Schema draft 7.
fn translate(schema: &Value, strict: bool) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in obj {
        match key.as_str() {
            "$ref" => {
                let target = value
                    .as_str()
                    .unwrap_or_default()
                    .replace("#/components/schemas/", "#/definitions/");
                out.insert(key.clone(), Value::String(target));
            }
            "properties" => {
                let props = value
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), translate(v, strict)))
                            .collect::<Map<_, _>>()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" | "not" => {
                out.insert(key.clone(), translate(value, strict));
            }
            "additionalProperties" if value.is_object() => {
                out.insert(key.clone(), translate(value, strict));
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list = value
                    .as_array()
                    .map(|l| l.iter().map(|s| translate(s, strict)).collect())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Array(list));
            }
            "type"
            | "required"
            | "enum"
            | "minimum"
            | "maximum"
            | "exclusiveMinimum"
            | "exclusiveMaximum"
            | "minLength"
            | "maxLength"
            | "pattern"
            | "minItems"
            | "maxItems"
            | "uniqueItems"
            | "additionalProperties"
            | "multipleOf" => {
                out.insert(key.clone(), value.clone());
            }
            // Annotations, `format` (OpenAI's `unixtime` is not a JSON Schema
            // format) and `nullable` (handled below) carry no constraint here.
            _ => {}
        }
    }
    // 3.0's boolean exclusive bounds are numeric in draft 7.
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if out.get(flag) == Some(&Value::Bool(true)) {
            if let Some(limit) = out.remove(bound) {
                out.insert(flag.to_string(), limit);
            }
        } else if out.get(flag).is_some_and(Value::is_boolean) {
            out.remove(flag);
        }
    }
    if strict && out.contains_key("properties") && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        return nullable(out);
    }
    Value::Object(out)
}

fn nullable(mut schema: Map<String, Value>) -> Value {
    if let Some(Value::String(t)) = schema.get("type").cloned() {
        schema.insert("type".into(), json!([t, "null"]));
        if let Some(Value::Array(values)) = schema.get_mut("enum") {
            values.push(Value::Null);
        }
        return Value::Object(schema);
    }
    // `if`/`else` rather than `anyOf`, so that errors inside the non-null
    // branch keep their own pointer instead of one "matches no branch".
    json!({ "if": { "type": "null" }, "else": Value::Object(schema) })
}
