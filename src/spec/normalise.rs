//! Rewriting OpenAPI 3.1 constructs into their OpenAPI 3.0 equivalents.

use serde_json::{Map, Value, json};

/// Keys whose values are literal data, never schemas: rewriting inside them would corrupt
/// examples and enum values that merely look like schemas.
pub(crate) const LITERAL_KEYS: &[&str] = &["example", "examples", "default", "enum", "const"];

/// Keys whose values map user-chosen names to nodes; the names themselves may collide
/// with keywords (a property called `const` or `$schema`), so the map is never rewritten
/// as a schema, only its values are.
const NAME_MAP_KEYS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "schemas",
    "responses",
    "parameters",
    "requestBodies",
    "headers",
    "securitySchemes",
    "content",
    "paths",
    "callbacks",
    "links",
    "encoding",
    "webhooks",
    "pathItems",
];

/// JSON Schema keywords that OpenAPI 3.0 does not know and that carry no meaning a 3.0
/// consumer could use.
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "$anchor",
    "$comment",
    "$dynamicRef",
    "$dynamicAnchor",
    "$vocabulary",
    "contentMediaType",
    "contentEncoding",
    "contentSchema",
    "unevaluatedProperties",
    "unevaluatedItems",
    "dependentRequired",
    "dependentSchemas",
    "prefixItems",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "if",
    "then",
    "else",
    "patternProperties",
];

/// Annotation keys that may sit beside `$ref` or inside an `allOf` member without changing
/// the shape of the data.
const ANNOTATION_KEYS: &[&str] = &[
    "description",
    "title",
    "summary",
    "example",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "default",
    "externalDocs",
];

/// Rewrites OpenAPI 3.1 constructs in `spec` into OpenAPI 3.0 ones, in place.
///
/// Handles `type: [X, "null"]`, `anyOf`/`oneOf` with a `{type: "null"}` member,
/// `allOf: [$ref, {nullable: true}]`, `$ref` with structural siblings, `const`, schema
/// `examples`, numeric `exclusiveMinimum`/`exclusiveMaximum`, and drops 3.1-only
/// keywords. A 3.1 `openapi` version becomes `3.0.3`; a spec that is already 3.0 comes
/// out unchanged.
pub fn normalise_31_to_30(spec: &mut Value) {
    if let Some(root) = spec.as_object_mut() {
        if root
            .get("openapi")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("3.1"))
        {
            root.insert("openapi".into(), json!("3.0.3"));
        }
        // 3.0 has no place for these; keeping them would make the document invalid.
        root.remove("webhooks");
        root.remove("jsonSchemaDialect");
        if let Some(info) = root.get_mut("info").and_then(Value::as_object_mut) {
            info.remove("summary");
            if let Some(license) = info.get_mut("license").and_then(Value::as_object_mut) {
                license.remove("identifier");
            }
        }
    }
    walk(spec, 0);
}

/// Deep enough for any real schema, shallow enough that hostile input cannot overflow the
/// stack.
const MAX_DEPTH: usize = 256;

fn walk(value: &mut Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Array(items) => {
            for item in items {
                walk(item, depth + 1);
            }
        }
        Value::Object(map) => {
            rewrite_node(map);
            for (key, child) in map.iter_mut() {
                if LITERAL_KEYS.contains(&key.as_str()) || key.starts_with("x-") {
                    continue;
                }
                if NAME_MAP_KEYS.contains(&key.as_str()) {
                    match child {
                        Value::Object(named) => {
                            for node in named.values_mut() {
                                walk(node, depth + 1);
                            }
                        }
                        // `parameters` is a list in operations and path items.
                        other => walk(other, depth + 1),
                    }
                } else {
                    walk(child, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// Applies every 3.1 → 3.0 rewrite that concerns this one node.
fn rewrite_node(map: &mut Map<String, Value>) {
    rewrite_type_array(map);
    rewrite_null_alternatives(map, "anyOf");
    rewrite_null_alternatives(map, "oneOf");
    hoist_all_of_annotations(map);
    wrap_ref_with_siblings(map);
    if let Some(value) = map.remove("const") {
        map.entry("enum")
            .or_insert_with(|| Value::Array(vec![value]));
    }
    // Media types and parameters have `examples` as a map of Example objects, which 3.0
    // keeps; only the JSON Schema list form is rewritten.
    if map.get("examples").is_some_and(Value::is_array)
        && let Some(Value::Array(examples)) = map.remove("examples")
        && let Some(first) = examples.into_iter().next()
    {
        map.entry("example").or_insert(first);
    }
    rewrite_exclusive_bound(map, "exclusiveMinimum", "minimum");
    rewrite_exclusive_bound(map, "exclusiveMaximum", "maximum");
    if map.get("type").and_then(Value::as_str) == Some("null") {
        map.remove("type");
        map.insert("nullable".into(), Value::Bool(true));
    }
    for keyword in UNSUPPORTED_KEYWORDS {
        map.remove(*keyword);
    }
}

fn is_null_schema(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("null")
}

/// `type: [X, "null"]` → `type: X, nullable: true`.
fn rewrite_type_array(map: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = map.get("type") else {
        return;
    };
    let had_null = types.iter().any(|t| t.as_str() == Some("null"));
    let others: Vec<Value> = types
        .iter()
        .filter(|t| t.as_str() != Some("null"))
        .cloned()
        .collect();
    map.remove("type");
    if had_null {
        map.insert("nullable".into(), Value::Bool(true));
    }
    match others.len() {
        0 => {}
        1 => {
            map.insert(
                "type".into(),
                others.into_iter().next().unwrap_or(Value::Null),
            );
        }
        // 3.0 has no union types; an `anyOf` of single-type schemas says the same.
        _ => {
            let alternatives = others.into_iter().map(|t| json!({ "type": t })).collect();
            map.insert("anyOf".into(), Value::Array(alternatives));
        }
    }
}

/// `anyOf: [S, {type: "null"}]` → `S` + `nullable: true`.
fn rewrite_null_alternatives(map: &mut Map<String, Value>, key: &str) {
    let Some(Value::Array(alternatives)) = map.get(key) else {
        return;
    };
    if !alternatives.iter().any(is_null_schema) {
        return;
    }
    let mut rest: Vec<Value> = alternatives
        .iter()
        .filter(|a| !is_null_schema(a))
        .cloned()
        .collect();
    map.remove(key);
    map.insert("nullable".into(), Value::Bool(true));
    if rest.len() != 1 {
        if !rest.is_empty() {
            map.insert(key.into(), Value::Array(rest));
        }
        return;
    }
    let single = rest.remove(0);
    match single {
        // 3.0 ignores siblings of `$ref`, so the nullability needs an `allOf` to hang on.
        Value::Object(inner) if inner.contains_key("$ref") => {
            map.insert("allOf".into(), json!([Value::Object(inner)]));
        }
        Value::Object(inner) => {
            for (k, v) in inner {
                map.entry(k).or_insert(v);
            }
        }
        other => {
            map.insert(key.into(), json!([other]));
        }
    }
}

/// `allOf: [$ref, {nullable: true, description: ..}]` → `allOf: [$ref]` with the
/// annotations moved up, because generators read a member holding only annotations as a
/// second, empty type.
fn hoist_all_of_annotations(map: &mut Map<String, Value>) {
    let Some(Value::Array(members)) = map.get("allOf") else {
        return;
    };
    let is_annotation_only = |m: &Value| m.as_object().is_some_and(annotation_only);
    if !members.iter().any(is_annotation_only) || members.iter().all(is_annotation_only) {
        return;
    }
    let Some(Value::Array(members)) = map.remove("allOf") else {
        return;
    };
    let mut kept = Vec::new();
    for member in members {
        match member {
            Value::Object(o) if annotation_only(&o) => {
                for (k, v) in o {
                    map.entry(k).or_insert(v);
                }
            }
            other => kept.push(other),
        }
    }
    map.insert("allOf".into(), Value::Array(kept));
}

fn annotation_only(member: &Map<String, Value>) -> bool {
    !member.is_empty()
        && member
            .keys()
            .all(|k| k == "nullable" || ANNOTATION_KEYS.contains(&k.as_str()))
}

/// `{$ref, nullable: true}` → `{allOf: [{$ref}], nullable: true}`: 3.1 lets `$ref` have
/// siblings that constrain, 3.0 ignores them.
fn wrap_ref_with_siblings(map: &mut Map<String, Value>) {
    if !map.contains_key("$ref") {
        return;
    }
    let structural = map
        .keys()
        .any(|k| k != "$ref" && !ANNOTATION_KEYS.contains(&k.as_str()) && !k.starts_with("x-"));
    if !structural {
        return;
    }
    if let Some(reference) = map.remove("$ref") {
        map.insert("allOf".into(), json!([{ "$ref": reference }]));
    }
}

/// Numeric `exclusiveMinimum: n` → `minimum: n, exclusiveMinimum: true`.
fn rewrite_exclusive_bound(map: &mut Map<String, Value>, exclusive: &str, inclusive: &str) {
    if !map.get(exclusive).is_some_and(Value::is_number) {
        return;
    }
    if let Some(bound) = map.remove(exclusive) {
        map.insert(inclusive.into(), bound);
        map.insert(exclusive.into(), Value::Bool(true));
    }
}
