//! `spec update`: the vendored spec rebuilt from a new upstream and the recorded
//! differences, keeping our own words.

use serde_json::{Map, Value};

use super::SpecError;
use super::diff::as_30;
use super::diff::operations;
use super::differences::{DifferenceKind, Differences, without_prose};
use super::extract::{NAME_MAPS, covered, extract};
use super::load::check_paths;
use super::normalise::LITERAL_KEYS;
use super::refs::node_at;
use super::refs::{MAX_REF_HOPS, escape, resolve, target, unescape};
use super::write::to_yaml;

/// Put before a description or summary taken from upstream because the vendored spec
/// had none there: upstream's prose is not ours to publish, so a maintainer rewrites it
/// in our words (the vendored spec's tests refuse the mark).
pub const REWRITE_MARK: &str = "REWRITE (upstream's words): ";

/// Keys whose text is ours: kept from the vendored spec wherever it has the same node.
const PROSE: &[&str] = &["description", "summary"];

/// Keys of upstream's illustrations, which the vendored spec leaves out unless it has its own.
const ILLUSTRATIONS: &[&str] = &["example", "examples"];

/// The result of [`update`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Updated {
    /// The new vendored spec.
    pub spec: Value,
    /// The same, as the YAML `openapi/api-definition.yaml` holds.
    pub yaml: String,
    /// Pointers of the descriptions and summaries taken from upstream, marked with
    /// [`REWRITE_MARK`], for a maintainer to rewrite.
    pub to_rewrite: Vec<String>,
}

/// Rebuilds the vendored spec from `upstream`: the vendored operations, and any new one
/// under the covered paths that is not recorded as left out, extracted and converted to
/// OpenAPI 3.0.3; every recorded difference written in; and our descriptions, `info`
/// and `tags` kept from `vendored` wherever the same node still exists.
///
/// Refuses, before anything is built, when upstream no longer says at a recorded
/// pointer what the recording says ([`SpecError::UpstreamMoved`]).
pub fn update(
    upstream: &Value,
    vendored: &Value,
    differences: &Differences,
) -> Result<Updated, SpecError> {
    check_paths(upstream)?;
    let ours = operations(vendored);
    if ours.is_empty() {
        return Err(SpecError::Malformed {
            pointer: "/paths".into(),
            reason: "the vendored spec has no operations".into(),
        });
    }
    differences.check(upstream)?;

    let left_out = differences.left_out_operations();
    let mut ids: Vec<&str> = ours.keys().copied().collect();
    for (id, op) in operations(upstream) {
        if covered(op.path) && !ours.contains_key(id) && !left_out.contains(&id) {
            ids.push(id);
        }
    }
    let mut spec = extract(upstream, &ids)?;

    let normalised = as_30(upstream);
    for entry in differences.entries() {
        if entry.kind == DifferenceKind::LeftOutOperations {
            continue;
        }
        for pointer in &entry.pointers {
            let says = node_at(&normalised, pointer).map(without_prose);
            write_at(&mut spec, pointer, entry.ours_beside(says.as_ref()))?;
        }
    }
    check_refs(&spec, &spec)?;

    let mut to_rewrite = Vec::new();
    keep_prose(&mut spec, Some(vendored), "", &mut to_rewrite);
    if let (Some(root), Some(vendored)) = (spec.as_object_mut(), vendored.as_object()) {
        let version = root.get("info").and_then(|i| i.get("version")).cloned();
        if let Some(mut info) = vendored.get("info").cloned() {
            if let (Some(info), Some(version)) = (info.as_object_mut(), version) {
                info.insert("version".into(), version);
            }
            root.insert("info".into(), info);
        }
        if let Some(tags) = vendored.get("tags") {
            root.insert("tags".into(), tags.clone());
        }
    }
    let yaml = to_yaml(&spec);
    Ok(Updated {
        spec,
        yaml,
        to_rewrite,
    })
}

/// Writes `value` at `pointer` in `spec` (removes what is there when `None`). The pointer
/// is read as the diff writes it: `$ref`s followed, parameters named; what is missing on
/// the way is created.
fn write_at(spec: &mut Value, pointer: &str, value: Option<Value>) -> Result<(), SpecError> {
    let tokens: Vec<String> = pointer
        .strip_prefix('/')
        .ok_or_else(|| malformed(pointer, "a recorded pointer starts with `/`"))?
        .split('/')
        .map(unescape)
        .collect();
    let Some((last, walk)) = tokens.split_last() else {
        return Err(malformed(pointer, "a recorded pointer names a place"));
    };
    let mut place: Vec<String> = Vec::new();
    let mut previous = "";
    for token in walk {
        let here = node(spec, &place);
        let step = match here {
            Some(Value::Array(items)) if previous == "parameters" => items
                .iter()
                .position(|p| {
                    resolve(spec, p)
                        .ok()
                        .and_then(|(p, _)| p.get("name"))
                        .and_then(Value::as_str)
                        == Some(token.as_str())
                })
                .map(|i| i.to_string())
                .ok_or_else(|| malformed(pointer, &format!("no parameter `{token}`")))?,
            _ => token.clone(),
        };
        place.push(step);
        // Follow a reference, so that the write lands in the component it names.
        let mut hops = 0;
        while let Some(reference) = node(spec, &place)
            .and_then(|n| n.get("$ref"))
            .and_then(Value::as_str)
        {
            hops += 1;
            if hops > MAX_REF_HOPS {
                return Err(malformed(pointer, "`$ref`s that loop"));
            }
            target(spec, reference)?;
            place = reference
                .trim_start_matches("#/")
                .split('/')
                .map(unescape)
                .collect();
        }
        previous = token;
    }
    let mut parent = &mut *spec;
    for token in &place {
        parent = match parent {
            Value::Array(items) => token
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i))
                .ok_or_else(|| malformed(pointer, &format!("no item `{token}`")))?,
            Value::Object(map) => map
                .entry(token.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            _ => return Err(malformed(pointer, &format!("`{token}` is not a container"))),
        };
    }
    let Value::Object(map) = parent else {
        return Err(malformed(pointer, "the place is not a mapping"));
    };
    match value {
        Some(value) => map.insert(last.clone(), value),
        None => map.remove(last),
    };
    Ok(())
}

fn node<'v>(spec: &'v Value, place: &[String]) -> Option<&'v Value> {
    let pointer: String = place.iter().map(|t| format!("/{}", escape(t))).collect();
    spec.pointer(&pointer)
}

/// Every `$ref` below `value` resolves in `spec`.
fn check_refs(spec: &Value, value: &Value) -> Result<(), SpecError> {
    match value {
        Value::Array(items) => items.iter().try_for_each(|v| check_refs(spec, v)),
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => {
                        target(spec, reference)?;
                    }
                    (k, _) if LITERAL_KEYS.contains(&k) => {}
                    _ => check_refs(spec, child)?,
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Replaces upstream's prose in `node` with the vendored spec's at the same place
/// (`ours`), marks upstream's where we have none, and drops upstream's illustrations.
fn keep_prose(node: &mut Value, ours: Option<&Value>, at: &str, to_rewrite: &mut Vec<String>) {
    match node {
        Value::Array(items) => {
            let theirs = ours.and_then(Value::as_array);
            for (i, item) in items.iter_mut().enumerate() {
                let mine = theirs.and_then(|list| list.get(i));
                keep_prose(item, mine, &format!("{at}/{i}"), to_rewrite);
            }
        }
        Value::Object(map) => {
            for key in PROSE {
                match ours.and_then(|o| o.get(*key)) {
                    Some(mine) => {
                        map.insert((*key).into(), mine.clone());
                    }
                    None => {
                        if let Some(Value::String(text)) = map.get_mut(*key) {
                            *text = format!("{REWRITE_MARK}{}", text.trim_end());
                            to_rewrite.push(format!("{at}/{key}"));
                        }
                    }
                }
            }
            for key in ILLUSTRATIONS {
                match ours.and_then(|o| o.get(*key)) {
                    Some(mine) => map.insert((*key).into(), mine.clone()),
                    None => map.remove(*key),
                };
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if LITERAL_KEYS.contains(&key.as_str()) || PROSE.contains(&key.as_str()) {
                    continue;
                }
                let here = format!("{at}/{}", escape(&key));
                let mine = ours.and_then(|o| o.get(&key));
                let Some(child) = map.get_mut(&key) else {
                    continue;
                };
                match child {
                    Value::Object(named) if NAME_MAPS.contains(&key.as_str()) => {
                        for (name, item) in named.iter_mut() {
                            let theirs = mine.and_then(|m| m.get(name));
                            let place = format!("{here}/{}", escape(name));
                            keep_prose(item, theirs, &place, to_rewrite);
                        }
                    }
                    Value::Array(items) if key == "parameters" => {
                        for (i, item) in items.iter_mut().enumerate() {
                            let theirs = mine.and_then(|m| same_parameter(m, item));
                            keep_prose(item, theirs, &format!("{here}/{i}"), to_rewrite);
                        }
                    }
                    other => keep_prose(other, mine, &here, to_rewrite),
                }
            }
        }
        _ => {}
    }
}

/// The parameter of the list `ours` with the same name and place as `theirs`.
fn same_parameter<'v>(ours: &'v Value, theirs: &Value) -> Option<&'v Value> {
    let key = |p: &Value| (p.get("name").cloned(), p.get("in").cloned());
    ours.as_array()?.iter().find(|p| key(p) == key(theirs))
}

fn malformed(pointer: &str, reason: &str) -> SpecError {
    SpecError::Malformed {
        pointer: pointer.to_string(),
        reason: reason.to_string(),
    }
}
