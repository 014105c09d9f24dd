//! Response conformance: every body checked against its schema in the vendored spec.
//!
//! The spec's component schemas are translated once from OpenAPI 3.0 to JSON
//! Schema draft 7 (`nullable` becomes a null branch, `$ref`s point into
//! `definitions`, annotations are dropped) and compiled twice: a **strict**
//! form, where objects refuse undeclared fields and enums are closed, and a
//! **lenient** form without either. Lenient mode reports what only the strict
//! form refuses as warnings.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The vendored spec, as JSON, written by the build script.
pub(crate) const SPEC_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/api-definition.json"));

/// The open enums, `[schema, property]` pairs, written by the build script.
const OPEN_ENUMS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/open-enums.json"));

/// How strictly responses are checked against the spec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValidationMode {
    /// Any violation, unknown field or unknown enum value is an error.
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

struct Compiled {
    strict: jsonschema::Validator,
    lenient: jsonschema::Validator,
}

/// Compiled validators for every component schema of the vendored spec.
///
/// The strict form of each schema refuses undeclared fields; the lenient form
/// accepts them and any value of an open enum.
pub struct SpecSchemas {
    compiled: HashMap<String, Compiled>,
}

impl SpecSchemas {
    /// The validators for the vendored spec, compiled on first use.
    pub fn vendored() -> &'static SpecSchemas {
        static SCHEMAS: OnceLock<SpecSchemas> = OnceLock::new();
        SCHEMAS.get_or_init(|| {
            let spec: Value = serde_json::from_str(SPEC_JSON).expect("build script wrote JSON");
            let open: Vec<(String, String)> =
                serde_json::from_str(OPEN_ENUMS_JSON).expect("build script wrote JSON");
            SpecSchemas::from_spec(&spec, &open).expect("vendored spec compiles to JSON Schema")
        })
    }

    /// Compiles every schema under `components.schemas` of an OpenAPI 3.0
    /// document; `open_enums` lists the `(schema, property)` enums lenient
    /// mode accepts unknown values of.
    pub fn from_spec(spec: &Value, open_enums: &[(String, String)]) -> Result<SpecSchemas, String> {
        let components = spec
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .ok_or("the spec has no components.schemas")?;
        let mut compiled = HashMap::new();
        let mut lenient_components = components.clone();
        for (schema, property) in open_enums {
            if let Some(slot) = lenient_components
                .get_mut(schema)
                .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
                .and_then(Value::as_object_mut)
            {
                slot.remove("enum");
            }
        }
        for name in components.keys() {
            let strict = compile(&json_schema_for(components, name, true))?;
            let lenient = compile(&json_schema_for(&lenient_components, name, false))?;
            compiled.insert(name.clone(), Compiled { strict, lenient });
        }
        Ok(SpecSchemas { compiled })
    }

    /// Names of the schemas that can be checked.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.compiled.keys().map(String::as_str)
    }

    /// Checks `document` against the component schema `name` in `mode`.
    ///
    /// An unknown schema name is reported as a violation at the root.
    pub fn check(&self, name: &str, document: &Value, mode: ValidationMode) -> Conformance {
        let Some(compiled) = self.compiled.get(name) else {
            return Conformance {
                violations: vec![SchemaViolation {
                    pointer: String::new(),
                    message: format!("the spec has no schema `{name}`"),
                }],
                warnings: Vec::new(),
            };
        };
        match mode {
            ValidationMode::Off => Conformance::default(),
            ValidationMode::Strict => Conformance {
                violations: violations(&compiled.strict, document),
                warnings: Vec::new(),
            },
            ValidationMode::Lenient => {
                let violations = violations(&compiled.lenient, document);
                let warnings = if violations.is_empty() {
                    self::violations(&compiled.strict, document)
                } else {
                    Vec::new()
                };
                Conformance {
                    violations,
                    warnings,
                }
            }
        }
    }
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(schema)
        .map_err(|e| format!("compiling JSON Schema: {e}"))
}

fn violations(validator: &jsonschema::Validator, document: &Value) -> Vec<SchemaViolation> {
    validator
        .iter_errors(document)
        .flat_map(|e| describe(&e))
        .collect()
}

fn describe(error: &jsonschema::ValidationError<'_>) -> Vec<SchemaViolation> {
    let at = error.instance_path().as_str().to_string();
    let one = |pointer: String, message: String| vec![SchemaViolation { pointer, message }];
    match error.kind() {
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            one(
                at,
                format!(
                    "expected {expected}, found {}",
                    json_type(error.instance().as_ref())
                ),
            )
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            one(
                format!("{at}/{}", escape(name)),
                "missing required field".to_string(),
            )
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|field| SchemaViolation {
                pointer: format!("{at}/{}", escape(field)),
                message: "field not in the spec".to_string(),
            })
            .collect(),
        ValidationErrorKind::Enum { options } => one(
            at,
            format!(
                "value {} not in the spec's enum {options}",
                error.instance().as_ref()
            ),
        ),
        _ => one(at, error.to_string()),
    }
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
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
