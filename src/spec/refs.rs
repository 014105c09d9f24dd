//! JSON pointer tokens and the one `$ref` resolver every part of `spec` uses.

use serde_json::Value;

use super::SpecError;

/// Bounds `$ref` chains (`A` → `B` → ...), which may loop in a malformed spec.
pub(crate) const MAX_REF_HOPS: usize = 32;

/// Component sections that `$ref`s can point into.
const COMPONENT_KINDS: &[&str] = &[
    "schemas",
    "parameters",
    "responses",
    "requestBodies",
    "headers",
    "examples",
    "links",
    "callbacks",
    "securitySchemes",
    "pathItems",
];

/// Escapes one JSON pointer token.
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Reverses [`escape`].
pub(crate) fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The node a local reference (`#/components/schemas/Upload`) names, one hop only.
pub(crate) fn target<'v>(doc: &'v Value, reference: &str) -> Result<&'v Value, SpecError> {
    let pointer = reference
        .strip_prefix('#')
        .ok_or_else(|| SpecError::UnsupportedRef {
            reference: reference.to_string(),
        })?;
    doc.pointer(pointer)
        .ok_or_else(|| SpecError::UnresolvedRef {
            reference: reference.to_string(),
        })
}

/// Follows a chain of local `$ref`s from `value`; returns the node reached and the
/// pointer of the last component passed through, or the reference that could not be
/// followed.
pub(crate) fn resolve<'v>(
    doc: &'v Value,
    value: &'v Value,
) -> Result<(&'v Value, Option<String>), String> {
    let mut current = value;
    let mut component = None;
    for _ in 0..MAX_REF_HOPS {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return Ok((current, component));
        };
        current = target(doc, reference).map_err(|_| reference.to_string())?;
        component = reference.strip_prefix('#').map(str::to_string);
    }
    Err(format!(
        "{} (more than {MAX_REF_HOPS} chained references)",
        value.get("$ref").map_or_else(String::new, Value::to_string)
    ))
}

/// Splits `#/components/{kind}/{name}` into its kind and (unescaped) name.
pub(crate) fn parse_component_ref(reference: &str) -> Result<(String, String), SpecError> {
    let unsupported = || SpecError::UnsupportedRef {
        reference: reference.to_string(),
    };
    let rest = reference
        .strip_prefix("#/components/")
        .ok_or_else(unsupported)?;
    let (kind, name) = rest.split_once('/').ok_or_else(unsupported)?;
    if !COMPONENT_KINDS.contains(&kind) || name.contains('/') || name.is_empty() {
        return Err(unsupported());
    }
    Ok((kind.to_string(), unescape(name)))
}

/// The node at `pointer` in the operation tree of `doc`, read the way a diff's pointers
/// are written: `$ref`s are followed at every step and `.../parameters/{name}` picks, by
/// name, among the parameters listed at that point (an operation's own, not its path's).
/// `None` when `doc` has nothing there.
pub(crate) fn node_at<'v>(doc: &'v Value, pointer: &str) -> Option<&'v Value> {
    let mut current = doc;
    let mut previous = String::new();
    for token in pointer.strip_prefix('/')?.split('/').map(unescape) {
        let next = match current {
            Value::Array(items) if previous == "parameters" => items.iter().find(|p| {
                resolve(doc, p)
                    .ok()
                    .and_then(|(p, _)| p.get("name"))
                    .and_then(Value::as_str)
                    == Some(token.as_str())
            })?,
            Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            Value::Object(map) => map.get(&token)?,
            _ => return None,
        };
        current = resolve(doc, next).ok()?.0;
        previous = token;
    }
    Some(current)
}
