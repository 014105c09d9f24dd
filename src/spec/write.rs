//! Writing a spec as YAML in one canonical layout, so that `spec update --write` changes
//! only the lines whose facts changed.
//!
//! Keys of an OpenAPI object come in a fixed order (identity, prose, type, constraints,
//! children); names in name maps (paths, properties, responses) are sorted. Short lists
//! of plain scalars are written inline, long single-line prose folded, anything else
//! that plain YAML could misread double-quoted.

use serde_json::{Map, Value};

use super::extract::NAME_MAPS;
use super::normalise::LITERAL_KEYS;

/// The order keys of an OpenAPI object are written in; keys not listed follow, sorted.
const KEY_ORDER: &[&str] = &[
    "operationId",
    "openapi",
    "info",
    "servers",
    "security",
    "tags",
    "paths",
    "components",
    "name",
    "in",
    "url",
    "title",
    "summary",
    "description",
    "version",
    "license",
    "type",
    "scheme",
    "format",
    "deprecated",
    "nullable",
    "required",
    "additionalProperties",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "items",
    "allOf",
    "anyOf",
    "oneOf",
    "properties",
    "parameters",
    "requestBody",
    "responses",
    "content",
    "schema",
    "$ref",
];

/// Width past which a single-line string is folded over several lines.
const WIDTH: usize = 88;

/// `spec` as YAML in the canonical layout, ending with a newline.
pub fn to_yaml(spec: &Value) -> String {
    let mut out = String::new();
    match spec {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0, false),
        other => {
            out.push_str(&inline(other).unwrap_or_else(|| quoted(&other.to_string())));
            out.push('\n');
        }
    }
    out
}

fn ordered_keys(map: &Map<String, Value>, names: bool) -> Vec<&String> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|key| {
        let rank = if names {
            KEY_ORDER.len()
        } else {
            KEY_ORDER
                .iter()
                .position(|k| k == key)
                .unwrap_or(KEY_ORDER.len())
        };
        (rank, key.as_str())
    });
    keys
}

/// Writes the entries of `map` at `indent`; `names` when its keys are names, not keywords.
fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize, names: bool) {
    for key in ordered_keys(map, names) {
        let value = &map[key];
        out.push_str(&" ".repeat(indent));
        out.push_str(&scalar(key));
        out.push(':');
        let child_names = !names && NAME_MAPS.contains(&key.as_str());
        let literal = !names && LITERAL_KEYS.contains(&key.as_str());
        write_value(out, value, indent, child_names && !literal);
    }
}

/// Writes `value` after a `key:` or `-` already on the line.
fn write_value(out: &mut String, value: &Value, indent: usize, names: bool) {
    if let Some(text) = inline(value) {
        out.push(' ');
        out.push_str(&text);
        out.push('\n');
        return;
    }
    match value {
        Value::Object(map) => {
            out.push('\n');
            write_map(out, map, indent + 2, names);
        }
        Value::Array(items) => {
            out.push('\n');
            for item in items {
                out.push_str(&" ".repeat(indent + 2));
                out.push('-');
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        // The first entry shares the dash's line; the rest align under it.
                        let mut nested = String::new();
                        write_map(&mut nested, map, indent + 4, false);
                        out.push(' ');
                        out.push_str(nested.trim_start());
                    }
                    other => write_value(out, other, indent + 2, false),
                }
            }
        }
        Value::String(text) => {
            out.push_str(" >-\n");
            for line in fold(text) {
                out.push_str(&" ".repeat(indent + 2));
                out.push_str(&line);
                out.push('\n');
            }
        }
        _ => {
            out.push(' ');
            out.push_str(&value.to_string());
            out.push('\n');
        }
    }
}

/// The one-line form of `value`, or `None` when it takes lines of its own.
fn inline(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(text) if foldable(text) && text.len() > WIDTH => None,
        Value::String(text) => Some(scalar(text)),
        Value::Object(map) if map.is_empty() => Some("{}".into()),
        Value::Array(items) if items.is_empty() => Some("[]".into()),
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) if is_plain(s) && !s.contains([',', '[', ']', '{', '}']) => {
                        Some(s.clone())
                    }
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect();
            let text = format!("[{}]", parts?.join(", "));
            (text.len() <= WIDTH).then_some(text)
        }
        Value::Object(_) => None,
    }
}

/// Whether folding `text` at its spaces reads back as the same string: one line, no
/// doubled, leading or trailing blanks, nothing but printable characters.
fn foldable(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.contains("  ")
        && text.chars().all(|c| c == ' ' || !c.is_control())
        && !text.starts_with(['#', '-', '>', '|'])
}

/// Splits `text` at spaces into lines of at most [`WIDTH`] characters where it can.
fn fold(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.len() + 1 + word.len() > WIDTH {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// A string as a plain scalar when YAML reads it back as the same string, quoted otherwise.
fn scalar(text: &str) -> String {
    if is_plain(text) {
        text.to_string()
    } else {
        quoted(text)
    }
}

fn quoted(text: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar with the same escapes.
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// Whether `text` reads back from plain YAML as this same string: it starts with a
/// letter, `_`, `/` or `$`, holds no character or pair that YAML reads as structure, and does
/// not read as a boolean or null.
fn is_plain(text: &str) -> bool {
    const RESERVED: &[&str] = &["true", "false", "null", "yes", "no", "on", "off", "y", "n"];
    let Some(first) = text.chars().next() else {
        return false;
    };
    (first.is_alphabetic() || "_/$".contains(first))
        && !RESERVED.contains(&text.to_ascii_lowercase().as_str())
        && !text.ends_with([' ', ':'])
        && !text.contains(": ")
        && !text.contains(" #")
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || " _-./{}()`',;:!?+=<>*&%@$#\"".contains(c))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip(value: &Value) {
        let text = to_yaml(value);
        let back: Value = serde_saphyr::from_str(&text).expect("written YAML parses");
        assert_eq!(&back, value, "{text}");
    }

    #[test]
    fn awkward_strings_read_back_unchanged() {
        for text in [
            "true",
            "No",
            "200",
            "4XX",
            "1.5",
            "-dash",
            "a: b",
            "note #1",
            "ends:",
            "#hash",
            "{braces}",
            "[list]",
            "quote \" and back\\slash",
            "line\nbreak",
            "  leading",
            "trailing ",
            "double  space",
            "*star",
            "&anchor",
            "!tag",
            "%percent",
            "@at",
            "`tick`",
            "'single'",
            "",
            "~",
            "é and ü",
        ] {
            round_trip(&json!({ "description": text, "enum": [text], "names": { text: text } }));
        }
    }

    #[test]
    fn long_prose_is_folded_and_reads_back() {
        let long = "word ".repeat(60).trim_end().to_string();
        let value = json!({ "description": long });
        let text = to_yaml(&value);
        assert!(text.starts_with("description: >-\n"), "{text}");
        assert!(text.lines().all(|l| l.len() <= WIDTH + 2), "{text}");
        round_trip(&value);
    }

    #[test]
    fn keys_follow_the_order_and_names_are_sorted() {
        let value = json!({
            "paths": {}, "openapi": "3.0.3",
            "components": { "schemas": { "b": { "type": "object", "description": "d" }, "a": {} } },
        });
        let text = to_yaml(&value);
        assert_eq!(
            text,
            "openapi: \"3.0.3\"\npaths: {}\ncomponents:\n  schemas:\n    a: {}\n    b:\n      \
             description: d\n      type: object\n"
        );
        round_trip(&value);
    }

    #[test]
    fn nested_lists_and_scalars_read_back() {
        round_trip(&json!({
            "security": [{ "ApiKeyAuth": [] }],
            "parameters": [{ "in": "path", "name": "id", "schema": { "type": "string" } }],
            "enum": [1, 2.5, true, null, "x"],
            "list": [[1, 2], [], {}],
            "big": 9_007_199_254_740_993_u64,
        }));
    }
}
