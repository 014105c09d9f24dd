//! Compiled validators of every component schema of the vendored spec
//! (feature `schema`, on by default).
//!
//! Each schema, translated by [`json_schema_for`], is compiled twice: a
//! **strict** form, where objects refuse undeclared fields and enums are
//! closed, and a **lenient** form without either. Lenient mode reports what
//! only the strict form refuses as warnings.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::schema::{
    Conformance, SchemaViolation, ValidationMode, json_schema_for, json_type, vendored_spec,
};

/// The open enums, `[schema, property]` pairs, written by the build script.
const OPEN_ENUMS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/open-enums.json"));

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
            let open: Vec<(String, String)> =
                serde_json::from_str(OPEN_ENUMS_JSON).expect("build script wrote JSON");
            SpecSchemas::from_spec(vendored_spec(), &open)
                .expect("vendored spec compiles to JSON Schema")
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
