//! Structural comparison of two specs, operation by operation.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::extract::{DEFAULT_OPERATIONS, METHODS, covered};
use super::normalise::normalise_31_to_30;
use super::refs::{escape, resolve};
use super::report::{Change, ChangeKind, DiffReport};

/// Compares `new_upstream` against `old_vendored`, operation by operation.
///
/// Only operations of the old spec (matched by operationId) are compared. An operation
/// only the new spec has is reported, by name, when it is one of [`DEFAULT_OPERATIONS`]
/// or lies under [`COVERED_PATHS`](super::COVERED_PATHS). `$ref`s are followed on both sides,
/// so a schema inlined on one side and referenced on the other, or a renamed component,
/// compares by structure. Descriptions, summaries, titles, examples, tags and `x-`
/// extensions are ignored. A 3.1 side is normalised to 3.0 first.
///
/// Error responses (`4XX`, `5XX`, `4xx` codes, `default`) that the new spec lacks are
/// non-breaking: a client handles any undeclared status as an error anyway. A missing
/// success response is breaking.
pub fn diff(old_vendored: &Value, new_upstream: &Value) -> DiffReport {
    let old = as_30(old_vendored);
    let new = as_30(new_upstream);
    let mut differ = Differ {
        old: &old,
        new: &new,
        changes: Vec::new(),
        in_progress: Vec::new(),
    };
    differ.compare_operations();
    let mut changes = differ.changes;
    changes.sort_by(|a, b| {
        (a.kind, &a.pointer, &a.detail, &a.component).cmp(&(
            b.kind,
            &b.pointer,
            &b.detail,
            &b.component,
        ))
    });
    changes.dedup();
    DiffReport {
        changes,
        ..DiffReport::default()
    }
}

pub(crate) fn as_30(spec: &Value) -> Cow<'_, Value> {
    let is_31 = spec
        .get("openapi")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("3.1"));
    if is_31 {
        let mut owned = spec.clone();
        normalise_31_to_30(&mut owned);
        Cow::Owned(owned)
    } else {
        Cow::Borrowed(spec)
    }
}

/// Which way data flows decides whether a tightening or a loosening breaks clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Request,
    Response,
}

/// A place being compared: the operation-tree pointer and, when inside a named component
/// of either spec, the pointer inside that component.
#[derive(Debug, Clone)]
struct Location {
    pointer: String,
    component: Option<String>,
}

impl Location {
    fn root(pointer: String) -> Self {
        Self {
            pointer,
            component: None,
        }
    }

    fn child(&self, token: &str) -> Self {
        let token = escape(token);
        Self {
            pointer: format!("{}/{token}", self.pointer),
            component: self.component.as_ref().map(|c| format!("{c}/{token}")),
        }
    }
}

/// One operation of a spec, found by its operationId.
pub(crate) struct Operation<'a> {
    /// Its path.
    pub(crate) path: &'a str,
    method: &'a str,
    op: &'a Value,
    item: &'a Value,
}

impl Operation<'_> {
    fn pointer(&self) -> String {
        format!("/paths/{}/{}", escape(self.path), self.method)
    }
}

/// The operations of `spec` by operationId (the first, when an id is used twice).
pub(crate) fn operations(spec: &Value) -> BTreeMap<&str, Operation<'_>> {
    let mut found = BTreeMap::new();
    let Some(paths) = spec.get("paths").and_then(Value::as_object) else {
        return found;
    };
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                found.entry(id).or_insert(Operation {
                    path,
                    method,
                    op,
                    item,
                });
            }
        }
    }
    found
}

/// Schema keywords compared as bounds: changing them never changes the data's shape.
const BOUNDS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "pattern",
    "uniqueItems",
];

/// Bounds recursion on hostile or pathological input; real schemas nest far less.
const MAX_DEPTH: usize = 64;

struct Differ<'a> {
    old: &'a Value,
    new: &'a Value,
    changes: Vec<Change>,
    /// Component pairs being compared further up the stack, so recursive schemas end.
    in_progress: Vec<(Option<String>, Option<String>)>,
}

/// A schema with its `$ref`s followed and its `allOf` members merged.
struct Flat {
    map: Map<String, Value>,
    component: Option<String>,
}

impl Differ<'_> {
    fn push(&mut self, at: &Location, kind: ChangeKind, detail: impl Into<String>) {
        self.changes.push(Change {
            pointer: at.pointer.clone(),
            component: at.component.clone(),
            kind,
            detail: detail.into(),
        });
    }

    fn compare_operations(&mut self) {
        let old_ops = operations(self.old);
        let new_ops = operations(self.new);
        for (id, old_op) in &old_ops {
            let at = Location::root(old_op.pointer());
            let Some(new_op) = new_ops.get(id) else {
                self.push(
                    &at,
                    ChangeKind::Breaking,
                    format!("operation `{id}` removed"),
                );
                continue;
            };
            if (old_op.path, old_op.method) != (new_op.path, new_op.method) {
                self.push(
                    &at,
                    ChangeKind::Breaking,
                    format!(
                        "operation `{id}` moved to {} {}",
                        new_op.method.to_uppercase(),
                        new_op.path
                    ),
                );
            }
            self.compare_operation(old_op, new_op, &at);
        }
        for (id, new_op) in &new_ops {
            let ours = DEFAULT_OPERATIONS.contains(id) || covered(new_op.path);
            if ours && !old_ops.contains_key(id) {
                // Pointed at the id, so that a recording names the operation it leaves out.
                let at = Location::root(format!("{}/operationId", new_op.pointer()));
                self.push(
                    &at,
                    ChangeKind::NonBreaking,
                    format!(
                        "operation `{id}` ({} {}) added; the vendored spec does not cover it",
                        new_op.method.to_uppercase(),
                        new_op.path
                    ),
                );
            }
        }
    }

    fn compare_operation(&mut self, old: &Operation<'_>, new: &Operation<'_>, at: &Location) {
        if flag(old.op, "deprecated") != flag(new.op, "deprecated") {
            self.push(
                &at.child("deprecated"),
                ChangeKind::NonBreaking,
                format!("deprecated changed to {}", flag(new.op, "deprecated")),
            );
        }
        self.compare_parameters(old, new, &at.child("parameters"));
        self.compare_request_body(old.op, new.op, &at.child("requestBody"));
        self.compare_responses(old.op, new.op, &at.child("responses"));
    }

    /// Parameters are keyed by name rather than list index, so pointers survive
    /// reordering and the switch between inline and `$ref` declarations.
    fn compare_parameters(&mut self, old: &Operation<'_>, new: &Operation<'_>, at: &Location) {
        let old_params = self.parameters(self.old, old);
        let new_params = self.parameters(self.new, new);
        for ((place, name), old_param) in &old_params {
            let here = at.child(name);
            let Some(new_param) = new_params.get(&(place.clone(), name.clone())) else {
                self.push(
                    &here,
                    ChangeKind::Breaking,
                    format!("{place} parameter `{name}` removed"),
                );
                continue;
            };
            match (flag(old_param, "required"), flag(new_param, "required")) {
                (false, true) => self.push(
                    &here,
                    ChangeKind::Breaking,
                    format!("{place} parameter `{name}` became required"),
                ),
                (true, false) => self.push(
                    &here,
                    ChangeKind::NonBreaking,
                    format!("{place} parameter `{name}` became optional"),
                ),
                _ => {}
            }
            let empty = Value::Object(Map::new());
            let old_schema = old_param.get("schema").unwrap_or(&empty);
            let new_schema = new_param.get("schema").unwrap_or(&empty);
            self.compare_schema(
                old_schema,
                new_schema,
                &here.child("schema"),
                Direction::Request,
                0,
            );
        }
        for ((place, name), new_param) in &new_params {
            if old_params.contains_key(&(place.clone(), name.clone())) {
                continue;
            }
            let (kind, what) = if flag(new_param, "required") {
                (ChangeKind::Breaking, "new required")
            } else {
                (ChangeKind::NonBreaking, "optional")
            };
            self.push(
                &at.child(name),
                kind,
                format!("{what} {place} parameter `{name}` added"),
            );
        }
    }

    /// Path-level and operation-level parameters, the latter overriding, with `$ref`s followed.
    fn parameters<'v>(
        &mut self,
        doc: &'v Value,
        op: &Operation<'v>,
    ) -> BTreeMap<(String, String), &'v Value> {
        let mut found = BTreeMap::new();
        let lists = [op.item.get("parameters"), op.op.get("parameters")];
        for param in lists
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
        {
            let Ok((param, _)) = resolve(doc, param) else {
                continue;
            };
            let place = param.get("in").and_then(Value::as_str).unwrap_or("?");
            let name = param.get("name").and_then(Value::as_str).unwrap_or("?");
            found.insert((place.to_string(), name.to_string()), param);
        }
        found
    }

    fn compare_request_body(&mut self, old_op: &Value, new_op: &Value, at: &Location) {
        let old_body = self.resolved(self.old, old_op.get("requestBody"), at, "old");
        let new_body = self.resolved(self.new, new_op.get("requestBody"), at, "new");
        match (old_body, new_body) {
            (None, None) => {}
            (Some(_), None) => self.push(at, ChangeKind::Breaking, "request body removed"),
            (None, Some(body)) => {
                let kind = if flag(body, "required") {
                    ChangeKind::Breaking
                } else {
                    ChangeKind::NonBreaking
                };
                self.push(at, kind, "request body added");
            }
            (Some(old_body), Some(new_body)) => {
                match (flag(old_body, "required"), flag(new_body, "required")) {
                    (false, true) => {
                        self.push(at, ChangeKind::Breaking, "request body became required")
                    }
                    (true, false) => {
                        self.push(at, ChangeKind::NonBreaking, "request body became optional")
                    }
                    _ => {}
                }
                self.compare_content(
                    old_body.get("content"),
                    new_body.get("content"),
                    &at.child("content"),
                    Direction::Request,
                );
            }
        }
    }

    fn compare_responses(&mut self, old_op: &Value, new_op: &Value, at: &Location) {
        let empty = Map::new();
        let old_responses = old_op
            .get("responses")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let new_responses = new_op
            .get("responses")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for (status, old_response) in old_responses {
            let here = at.child(status);
            let Some(new_response) = new_responses.get(status) else {
                if is_error_status(status) {
                    self.push(
                        &here,
                        ChangeKind::NonBreaking,
                        format!("error response `{status}` not declared in the new spec"),
                    );
                } else {
                    self.push(
                        &here,
                        ChangeKind::Breaking,
                        format!("response `{status}` removed"),
                    );
                }
                continue;
            };
            let old_response = self.resolved(self.old, Some(old_response), &here, "old");
            let new_response = self.resolved(self.new, Some(new_response), &here, "new");
            if let (Some(old_response), Some(new_response)) = (old_response, new_response) {
                self.compare_content(
                    old_response.get("content"),
                    new_response.get("content"),
                    &here.child("content"),
                    Direction::Response,
                );
            }
        }
        for status in new_responses.keys() {
            if !old_responses.contains_key(status) {
                self.push(
                    &at.child(status),
                    ChangeKind::NonBreaking,
                    format!("response `{status}` added"),
                );
            }
        }
    }

    /// Follows a `$ref` to a parameter, request body or response, reporting one that
    /// cannot be followed.
    fn resolved<'v>(
        &mut self,
        doc: &'v Value,
        value: Option<&'v Value>,
        at: &Location,
        side: &str,
    ) -> Option<&'v Value> {
        match resolve(doc, value?) {
            Ok((target, _)) => Some(target),
            Err(reference) => {
                self.push(
                    at,
                    ChangeKind::Breaking,
                    format!("cannot resolve `{reference}` in the {side} spec"),
                );
                None
            }
        }
    }

    fn compare_content(
        &mut self,
        old: Option<&Value>,
        new: Option<&Value>,
        at: &Location,
        direction: Direction,
    ) {
        let empty = Map::new();
        let old = old.and_then(Value::as_object).unwrap_or(&empty);
        let new = new.and_then(Value::as_object).unwrap_or(&empty);
        let shared: Vec<&String> = old.keys().filter(|k| new.contains_key(*k)).collect();
        if shared.is_empty() && !old.is_empty() && !new.is_empty() {
            let list = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>().join(", ");
            self.push(
                at,
                ChangeKind::Breaking,
                format!("content type changed from {} to {}", list(old), list(new)),
            );
            return;
        }
        for media in old.keys().filter(|k| !new.contains_key(*k)) {
            self.push(
                &at.child(media),
                ChangeKind::Breaking,
                format!("content type `{media}` removed"),
            );
        }
        for media in new.keys().filter(|k| !old.contains_key(*k)) {
            self.push(
                &at.child(media),
                ChangeKind::NonBreaking,
                format!("content type `{media}` added"),
            );
        }
        let any = Value::Object(Map::new());
        for media in shared {
            let old_schema = old.get(media).and_then(|m| m.get("schema")).unwrap_or(&any);
            let new_schema = new.get(media).and_then(|m| m.get("schema")).unwrap_or(&any);
            self.compare_schema(
                old_schema,
                new_schema,
                &at.child(media).child("schema"),
                direction,
                0,
            );
        }
    }

    fn compare_schema(
        &mut self,
        old: &Value,
        new: &Value,
        at: &Location,
        direction: Direction,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let old_flat = match flatten(self.old, old, 0) {
            Ok(flat) => flat,
            Err(reference) => {
                let detail = format!("cannot resolve `{reference}` in the old spec");
                self.push(at, ChangeKind::Breaking, detail);
                return;
            }
        };
        let new_flat = match flatten(self.new, new, 0) {
            Ok(flat) => flat,
            Err(reference) => {
                let detail = format!("cannot resolve `{reference}` in the new spec");
                self.push(at, ChangeKind::Breaking, detail);
                return;
            }
        };
        let guard = (old_flat.component.clone(), new_flat.component.clone());
        if guard.0.is_some() && guard.1.is_some() && self.in_progress.contains(&guard) {
            return;
        }
        let mut at = at.clone();
        if let Some(component) = old_flat.component.as_ref().or(new_flat.component.as_ref()) {
            at.component = Some(component.clone());
        }
        self.in_progress.push(guard);
        self.compare_flat(&old_flat.map, &new_flat.map, &at, direction, depth);
        self.in_progress.pop();
    }

    fn compare_flat(
        &mut self,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
        at: &Location,
        direction: Direction,
        depth: usize,
    ) {
        match (flag_map(old, "nullable"), flag_map(new, "nullable")) {
            (true, false) => self.push(at, ChangeKind::Breaking, "no longer nullable"),
            (false, true) => self.push(at, ChangeKind::NonBreaking, "became nullable"),
            _ => {}
        }
        if flag_map(old, "deprecated") != flag_map(new, "deprecated") {
            self.push(
                at,
                ChangeKind::NonBreaking,
                format!("deprecated changed to {}", flag_map(new, "deprecated")),
            );
        }
        let (old_type, new_type) = (schema_type(old), schema_type(new));
        if old_type != new_type {
            self.push(
                at,
                ChangeKind::Breaking,
                format!(
                    "type changed from {} to {}",
                    old_type.as_deref().unwrap_or("(any)"),
                    new_type.as_deref().unwrap_or("(any)")
                ),
            );
            // Everything below describes a different kind of value; listing it is noise.
            return;
        }
        let (old_format, new_format) = (old.get("format"), new.get("format"));
        if old_format != new_format {
            self.push(
                at,
                ChangeKind::Breaking,
                format!(
                    "format changed from {} to {}",
                    shown(old_format),
                    shown(new_format)
                ),
            );
        }
        self.compare_enum(old.get("enum"), new.get("enum"), &at.child("enum"));
        for bound in BOUNDS {
            let (old_bound, new_bound) = (old.get(*bound), new.get(*bound));
            if !same_number(old_bound, new_bound) {
                self.push(
                    &at.child(bound),
                    ChangeKind::NonBreaking,
                    format!(
                        "{bound} changed from {} to {}",
                        shown(old_bound),
                        shown(new_bound)
                    ),
                );
            }
        }
        self.compare_properties(old, new, at, direction, depth);
        self.compare_additional(old, new, at, direction, depth);
        if old.contains_key("items") || new.contains_key("items") {
            let any = Value::Object(Map::new());
            self.compare_schema(
                old.get("items").unwrap_or(&any),
                new.get("items").unwrap_or(&any),
                &at.child("items"),
                direction,
                depth + 1,
            );
        }
        for key in ["anyOf", "oneOf"] {
            self.compare_alternatives(old.get(key), new.get(key), &at.child(key), direction, depth);
        }
    }

    fn compare_enum(&mut self, old: Option<&Value>, new: Option<&Value>, at: &Location) {
        match (old.and_then(Value::as_array), new.and_then(Value::as_array)) {
            (None, None) => {}
            (Some(_), None) => self.push(at, ChangeKind::NonBreaking, "enum restriction removed"),
            (None, Some(_)) => self.push(at, ChangeKind::Breaking, "enum restriction added"),
            (Some(old_values), Some(new_values)) => {
                for value in old_values.iter().filter(|v| !new_values.contains(v)) {
                    self.push(
                        at,
                        ChangeKind::Breaking,
                        format!("enum value {value} removed"),
                    );
                }
                for value in new_values.iter().filter(|v| !old_values.contains(v)) {
                    self.push(
                        at,
                        ChangeKind::NonBreaking,
                        format!("enum value {value} added"),
                    );
                }
            }
        }
    }

    fn compare_properties(
        &mut self,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
        at: &Location,
        direction: Direction,
        depth: usize,
    ) {
        let empty = Map::new();
        let old_props = old
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let new_props = new
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let old_required = required(old);
        let new_required = required(new);
        let props = at.child("properties");
        for (name, old_schema) in old_props {
            let here = props.child(name);
            let Some(new_schema) = new_props.get(name) else {
                self.push(
                    &here,
                    ChangeKind::Breaking,
                    format!("field `{name}` removed"),
                );
                continue;
            };
            let (was, is) = (old_required.contains(name), new_required.contains(name));
            match (direction, was, is) {
                (Direction::Request, false, true) => self.push(
                    &here,
                    ChangeKind::Breaking,
                    format!("request field `{name}` became required"),
                ),
                (Direction::Request, true, false) => self.push(
                    &here,
                    ChangeKind::NonBreaking,
                    format!("request field `{name}` became optional"),
                ),
                (Direction::Response, true, false) => self.push(
                    &here,
                    ChangeKind::Breaking,
                    format!("response field `{name}` may now be absent"),
                ),
                (Direction::Response, false, true) => self.push(
                    &here,
                    ChangeKind::NonBreaking,
                    format!("response field `{name}` is now always present"),
                ),
                _ => {}
            }
            self.compare_schema(old_schema, new_schema, &here, direction, depth + 1);
        }
        for name in new_props.keys().filter(|n| !old_props.contains_key(*n)) {
            let here = props.child(name);
            if direction == Direction::Request && new_required.contains(name) {
                self.push(
                    &here,
                    ChangeKind::Breaking,
                    format!("new required request field `{name}`"),
                );
            } else {
                let what = if new_required.contains(name) {
                    "field"
                } else {
                    "optional field"
                };
                self.push(
                    &here,
                    ChangeKind::NonBreaking,
                    format!("{what} `{name}` added"),
                );
            }
        }
        // A field listed as required but not declared still constrains requests.
        for name in new_required.difference(&old_required) {
            if direction == Direction::Request
                && !new_props.contains_key(name)
                && !old_props.contains_key(name)
            {
                self.push(
                    &props.child(name),
                    ChangeKind::Breaking,
                    format!("new required request field `{name}`"),
                );
            }
        }
    }

    fn compare_additional(
        &mut self,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
        at: &Location,
        direction: Direction,
        depth: usize,
    ) {
        let here = at.child("additionalProperties");
        match (
            old.get("additionalProperties"),
            new.get("additionalProperties"),
        ) {
            (Some(old_extra @ Value::Object(_)), Some(new_extra @ Value::Object(_))) => {
                self.compare_schema(old_extra, new_extra, &here, direction, depth + 1);
            }
            (old_extra, new_extra) => {
                let closed = |v: Option<&Value>| v == Some(&Value::Bool(false));
                match (closed(old_extra), closed(new_extra)) {
                    (true, false) => self.push(
                        &here,
                        ChangeKind::NonBreaking,
                        "additional properties now allowed",
                    ),
                    (false, true) => {
                        let kind = match direction {
                            Direction::Request => ChangeKind::Breaking,
                            Direction::Response => ChangeKind::NonBreaking,
                        };
                        self.push(&here, kind, "additional properties no longer allowed");
                    }
                    _ => {}
                }
            }
        }
    }

    fn compare_alternatives(
        &mut self,
        old: Option<&Value>,
        new: Option<&Value>,
        at: &Location,
        direction: Direction,
        depth: usize,
    ) {
        let (old, new) = match (old.and_then(Value::as_array), new.and_then(Value::as_array)) {
            (None, None) => return,
            (Some(old), Some(new)) if old.len() == new.len() => (old, new),
            (old, new) => {
                let count = |v: Option<&Vec<Value>>| v.map_or(0, Vec::len);
                self.push(
                    at,
                    ChangeKind::Breaking,
                    format!("alternatives changed from {} to {}", count(old), count(new)),
                );
                return;
            }
        };
        for (index, (old_alt, new_alt)) in old.iter().zip(new).enumerate() {
            self.compare_schema(
                old_alt,
                new_alt,
                &at.child(&index.to_string()),
                direction,
                depth + 1,
            );
        }
    }
}

/// Resolves `$ref`s and merges `allOf` members, so that `allOf: [$ref] + nullable` and an
/// inline nullable schema look alike.
fn flatten(doc: &Value, schema: &Value, depth: usize) -> Result<Flat, String> {
    let (target, mut component) = resolve(doc, schema)?;
    let Some(own) = target.as_object() else {
        // `true`/`false` schemas and malformed nodes compare as an unconstrained schema.
        return Ok(Flat {
            map: Map::new(),
            component,
        });
    };
    let Some(members) = own.get("allOf").and_then(Value::as_array) else {
        return Ok(Flat {
            map: own.clone(),
            component,
        });
    };
    if depth > MAX_DEPTH {
        return Ok(Flat {
            map: own.clone(),
            component,
        });
    }
    let mut merged: Map<String, Value> = own
        .iter()
        .filter(|(k, _)| k.as_str() != "allOf")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let single = members.len() == 1;
    for member in members {
        let flat = flatten(doc, member, depth + 1)?;
        if single && component.is_none() {
            component = flat.component;
        }
        merge_into(&mut merged, flat.map);
    }
    Ok(Flat {
        map: merged,
        component,
    })
}

/// Adds `member`'s constraints to `merged` without overriding what `merged` already says,
/// except that properties and required lists are unioned.
fn merge_into(merged: &mut Map<String, Value>, member: Map<String, Value>) {
    for (key, value) in member {
        match (key.as_str(), merged.get_mut(&key), value) {
            ("properties", Some(Value::Object(existing)), Value::Object(more)) => {
                for (name, schema) in more {
                    existing.entry(name).or_insert(schema);
                }
            }
            ("required", Some(Value::Array(existing)), Value::Array(more)) => {
                for name in more {
                    if !existing.contains(&name) {
                        existing.push(name);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                merged.insert(key, value);
            }
        }
    }
}

fn required(schema: &Map<String, Value>) -> BTreeSet<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The declared type, or the one implied by `properties` or `items` when `type` is left out.
fn schema_type(schema: &Map<String, Value>) -> Option<String> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(t.clone()),
        Some(other) => Some(other.to_string()),
        None if schema.contains_key("properties") => Some("object".into()),
        None if schema.contains_key("items") => Some("array".into()),
        None => None,
    }
}

fn is_error_status(status: &str) -> bool {
    status == "default" || status.starts_with('4') || status.starts_with('5')
}

fn flag(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn flag_map(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Compares numbers by value, so `3600` and `3600.0` from different parsers are equal.
fn same_number(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "(none)".to_string(), Value::to_string)
}
