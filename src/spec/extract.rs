//! Cutting a subset of operations, and the components they need, out of a full spec.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value, json};

use super::SpecError;
use super::normalise::{LITERAL_KEYS, normalise_31_to_30};
use super::refs::{escape, parse_component_ref, target};

/// The operations this crate is built from.
pub const DEFAULT_OPERATIONS: &[&str] = &[
    "createUpload",
    "addUploadPart",
    "completeUpload",
    "cancelUpload",
    "listFiles",
    "retrieveFile",
    "downloadFile",
    "deleteFile",
];

/// The paths this crate covers: an operation at one of them, or below one, that the
/// vendored spec lacks is new to review.
pub const COVERED_PATHS: &[&str] = &["/uploads", "/files"];

/// Whether `path` is one of [`COVERED_PATHS`] or lies below one.
pub(crate) fn covered(path: &str) -> bool {
    COVERED_PATHS.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The HTTP methods a path item may hold; every other key of a path item is not an operation.
pub(crate) const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Keys whose values map user-chosen names (properties, headers, media types) to nodes; a
/// name there may legitimately start with `x-`, as in a header `x-request-id`.
pub(crate) const NAME_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "headers",
    "content",
    "paths",
    "schemas",
    "responses",
    "parameters",
    "requestBodies",
    "securitySchemes",
    "encoding",
    "links",
    "callbacks",
    "variables",
    "mapping",
];

/// Keeps only `operations` (by operationId) from `upstream`, with every component they
/// reach through `$ref` or `security`, then normalises the result to OpenAPI 3.0.3.
///
/// Path items keep only the chosen methods (and their path-level `parameters`); `info`
/// keeps `title` and `version`; `servers` and `security` are kept; `x-` extensions are
/// dropped everywhere except inside literal data.
pub fn extract(upstream: &Value, operations: &[&str]) -> Result<Value, SpecError> {
    let paths = upstream
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("/paths", "missing or not a mapping"))?;

    let wanted: BTreeSet<&str> = operations.iter().copied().collect();
    let mut found = BTreeSet::new();
    let mut out_paths = Map::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        let mut kept = Map::new();
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            if wanted.contains(id) {
                if !found.insert(id.to_string()) {
                    return Err(malformed(
                        &format!("/paths/{}/{method}", escape(path)),
                        &format!("operationId `{id}` is used more than once"),
                    ));
                }
                kept.insert((*method).to_string(), op.clone());
            }
        }
        if !kept.is_empty() {
            if let Some(parameters) = item.get("parameters") {
                kept.insert("parameters".into(), parameters.clone());
            }
            out_paths.insert(path.clone(), Value::Object(kept));
        }
    }
    let missing: Vec<String> = operations
        .iter()
        .filter(|id| !found.contains(**id))
        .map(|id| (*id).to_string())
        .collect();
    if !missing.is_empty() {
        return Err(SpecError::UnknownOperations(missing));
    }

    let mut out = Map::new();
    out.insert("openapi".into(), json!("3.0.3"));
    let info = upstream.get("info");
    let text = |key: &str| info.and_then(|i| i.get(key)).cloned().unwrap_or(json!(""));
    out.insert(
        "info".into(),
        json!({ "title": text("title"), "version": text("version") }),
    );
    for key in ["servers", "security"] {
        if let Some(v) = upstream.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    out.insert("paths".into(), Value::Object(out_paths));

    let components = collect_components(upstream, &out)?;
    if !components.is_empty() {
        let mut sections = Map::new();
        for (kind, entries) in components {
            sections.insert(kind, Value::Object(entries.into_iter().collect()));
        }
        out.insert("components".into(), Value::Object(sections));
    }

    let mut out = Value::Object(out);
    strip_extensions(&mut out);
    normalise_31_to_30(&mut out);
    Ok(out)
}

type Components = BTreeMap<String, BTreeMap<String, Value>>;

/// Follows `$ref`s from the kept paths until no new component turns up.
fn collect_components(upstream: &Value, out: &Map<String, Value>) -> Result<Components, SpecError> {
    let mut queue: VecDeque<String> = VecDeque::new();
    if let Some(paths) = out.get("paths") {
        collect_refs(paths, &mut queue);
    }
    let mut schemes = Vec::new();
    if let Some(security) = out.get("security") {
        security_scheme_names(security, &mut schemes);
    }
    if let Some(paths) = out.get("paths").and_then(Value::as_object) {
        for item in paths.values().filter_map(Value::as_object) {
            for op in item.values() {
                if let Some(security) = op.get("security") {
                    security_scheme_names(security, &mut schemes);
                }
            }
        }
    }
    queue.extend(
        schemes
            .iter()
            .map(|name| format!("#/components/securitySchemes/{}", escape(name))),
    );

    let mut components: Components = BTreeMap::new();
    while let Some(reference) = queue.pop_front() {
        let (kind, name) = parse_component_ref(&reference)?;
        if components.get(&kind).is_some_and(|m| m.contains_key(&name)) {
            continue;
        }
        let component = target(upstream, &reference)?;
        collect_refs(component, &mut queue);
        components
            .entry(kind)
            .or_default()
            .insert(name, component.clone());
    }
    Ok(components)
}

fn security_scheme_names(security: &Value, names: &mut Vec<String>) {
    for requirement in security.as_array().into_iter().flatten() {
        if let Some(requirement) = requirement.as_object() {
            names.extend(requirement.keys().cloned());
        }
    }
}

/// Gathers every `$ref` string below `value`, skipping literal data (where a `$ref` key
/// is just an example's content) and extensions, which extraction drops.
fn collect_refs(value: &Value, refs: &mut VecDeque<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(r)) => refs.push_back(r.clone()),
                    // A discriminator's mapping names schemas by reference too.
                    ("mapping", Value::Object(targets)) => refs.extend(
                        targets
                            .values()
                            .filter_map(Value::as_str)
                            .filter(|t| t.starts_with("#/"))
                            .map(str::to_string),
                    ),
                    (k, _) if LITERAL_KEYS.contains(&k) || k.starts_with("x-") => {}
                    (k, Value::Object(named)) if NAME_MAPS.contains(&k) => {
                        named.values().for_each(|v| collect_refs(v, refs));
                    }
                    _ => collect_refs(child, refs),
                }
            }
        }
        _ => {}
    }
}

/// Drops `x-` extension keys. Names in name maps (properties, headers, media types) are
/// left alone: a header may legitimately be called `x-request-id`.
fn strip_extensions(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(strip_extensions),
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with("x-"));
            for (key, child) in map.iter_mut() {
                if LITERAL_KEYS.contains(&key.as_str()) {
                    continue;
                }
                match child {
                    Value::Object(named) if NAME_MAPS.contains(&key.as_str()) => {
                        named.values_mut().for_each(strip_extensions);
                    }
                    other => strip_extensions(other),
                }
            }
        }
        _ => {}
    }
}

fn malformed(pointer: &str, reason: &str) -> SpecError {
    SpecError::Malformed {
        pointer: pointer.to_string(),
        reason: reason.to_string(),
    }
}
