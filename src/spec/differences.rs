//! The differences from upstream kept on purpose, recorded in `openapi/differences.yaml`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::SpecError;
use super::diff::as_30;
use super::extract::NAME_MAPS;
use super::normalise::LITERAL_KEYS;
use super::refs::node_at;
use super::report::{Change, DiffReport, KeptChange};

/// `openapi/differences.yaml`, as built into the crate.
const VENDORED: &str = include_str!("../../openapi/differences.yaml");

/// Keys that describe rather than constrain; a recording does not depend on them.
const PROSE_KEYS: &[&str] = &["description", "summary", "title", "example", "examples"];

/// What sort of difference is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DifferenceKind {
    /// A body is declared with another media type or schema than upstream's.
    MediaType,
    /// Responses declared that upstream does not declare.
    AddedResponses,
    /// Enum values accepted that upstream does not list.
    AddedEnumValues,
    /// Components that only other recorded differences use; the diff never reaches them.
    AddedComponents,
    /// Operations under the covered paths that this crate leaves out.
    LeftOutOperations,
}

impl fmt::Display for DifferenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MediaType => "media-type",
            Self::AddedResponses => "added-responses",
            Self::AddedEnumValues => "added-enum-values",
            Self::AddedComponents => "added-components",
            Self::LeftOutOperations => "left-out-operations",
        })
    }
}

/// One recorded difference: where, what upstream says there, and why we differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Difference {
    /// Where the diff reports it: operation-tree pointers, or `/components/...` places.
    pub pointers: Vec<String>,
    /// What sort of difference it is.
    pub kind: DifferenceKind,
    /// What upstream has at each pointer, read as OpenAPI 3.0 with `$ref`s followed and
    /// prose dropped; `None` when upstream has nothing there.
    #[serde(default)]
    pub upstream: Option<Value>,
    /// What the vendored spec has at each pointer instead, written in place by
    /// `spec update`; `None` when it has nothing there.
    #[serde(default)]
    pub ours: Option<Value>,
    /// Why we differ.
    pub reason: String,
    /// Where the fact behind the reason comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

impl Difference {
    /// Whether upstream, saying `says` at one of the pointers, still differs from us as
    /// recorded. It must say what was recorded, except that an enum we add values to may
    /// gain values of its own, as long as it has not taken up ours.
    pub fn holds(&self, says: Option<&Value>) -> bool {
        if says == self.upstream.as_ref() {
            return true;
        }
        match (self.kind, says, &self.upstream) {
            (DifferenceKind::AddedEnumValues, Some(Value::Array(now)), Some(Value::Array(was))) => {
                was.iter().all(|v| now.contains(v)) && self.added().all(|v| !now.contains(v))
            }
            _ => false,
        }
    }

    /// The enum values we add: those of `ours` that upstream's recorded list lacks.
    fn added(&self) -> impl Iterator<Item = &Value> {
        let recorded = self.upstream.as_ref().and_then(Value::as_array);
        self.ours
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(move |v| !recorded.is_some_and(|r| r.contains(v)))
    }

    /// Whether `change` is this difference: for added enum values, one of the values we
    /// add, not one upstream gained since.
    fn explains(&self, change: &Change) -> bool {
        if self.kind != DifferenceKind::AddedEnumValues {
            return true;
        }
        let removed = removed_enum_value(&change.detail)
            .and_then(|value| serde_json::from_str::<Value>(value).ok());
        removed.is_some_and(|value| self.added().any(|v| *v == value))
    }

    /// What the vendored spec holds at a pointer where upstream says `says`: `ours`, or
    /// for added enum values, upstream's list with ours added after it.
    pub fn ours_beside(&self, says: Option<&Value>) -> Option<Value> {
        match (self.kind, says) {
            (DifferenceKind::AddedEnumValues, Some(Value::Array(now))) => {
                let mut values = now.clone();
                values.extend(self.added().filter(|v| !now.contains(v)).cloned());
                Some(Value::Array(values))
            }
            _ => self.ours.clone(),
        }
    }
}

/// The recorded differences, in file order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Differences(Vec<Difference>);

impl Differences {
    /// The differences recorded for the vendored spec (`openapi/differences.yaml`,
    /// built into the crate).
    pub fn vendored() -> Result<Self, SpecError> {
        Self::parse(VENDORED)
    }

    /// Parses a differences file (YAML or JSON: a list of entries).
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let entries: Vec<Difference> =
            serde_saphyr::from_str(text).map_err(|e| SpecError::Parse {
                format: "YAML",
                message: e.to_string(),
            })?;
        if let Some(empty) = entries.iter().position(|d| d.pointers.is_empty()) {
            return Err(SpecError::Malformed {
                pointer: format!("/{empty}/pointers"),
                reason: "a difference names no pointer".into(),
            });
        }
        Ok(Self(entries))
    }

    /// The entries.
    pub fn entries(&self) -> &[Difference] {
        &self.0
    }

    /// Moves the changes of `report` that match a recorded difference into its `kept`
    /// list, and lists in `stale` the recorded pointers no change matched.
    ///
    /// A change matches when its `pointer` or `component` is one of an entry's pointers
    /// and `upstream` (the spec the report compared against) still has, at that pointer,
    /// the value the entry recorded. When upstream has moved on, the change stays
    /// among those to review.
    pub fn apply(&self, report: DiffReport, upstream: &Value) -> DiffReport {
        let upstream = as_30(upstream);
        let mut matched = BTreeSet::new();
        let mut changes = Vec::new();
        let mut kept = report.kept;
        for change in report.changes {
            let found = self.0.iter().find_map(|entry| {
                let pointer = entry
                    .pointers
                    .iter()
                    .find(|p| **p == change.pointer || change.component.as_ref() == Some(*p))?;
                // Read where the recording points: a component is reached from every
                // operation, even through an `allOf` that the change's pointer skips.
                let says = node_at(&upstream, pointer).map(without_prose);
                (entry.holds(says.as_ref()) && entry.explains(&change)).then_some((entry, pointer))
            });
            match found {
                Some((entry, pointer)) => {
                    matched.insert(pointer.clone());
                    kept.push(KeptChange {
                        change: as_ours(change, entry.kind),
                        difference: entry.kind,
                        reason: entry.reason.clone(),
                    });
                }
                None => changes.push(change),
            }
        }
        let stale = self
            .0
            .iter()
            .filter(|entry| entry.kind != DifferenceKind::AddedComponents)
            .flat_map(|entry| &entry.pointers)
            .filter(|p| !matched.contains(*p))
            .cloned()
            .collect();
        DiffReport {
            changes,
            kept,
            stale,
        }
    }

    /// Checks that upstream still says, at every recorded pointer, what was recorded.
    ///
    /// The first pointer where it does not is returned as [`SpecError::UpstreamMoved`]:
    /// the difference recorded there was made against another upstream and needs a
    /// maintainer's review before it is applied again.
    pub fn check(&self, upstream: &Value) -> Result<(), SpecError> {
        let upstream = as_30(upstream);
        for entry in &self.0 {
            for pointer in &entry.pointers {
                let says = node_at(&upstream, pointer).map(without_prose);
                if !entry.holds(says.as_ref()) {
                    let shown =
                        |v: Option<&Value>| v.map_or_else(|| "nothing".into(), Value::to_string);
                    return Err(SpecError::UpstreamMoved {
                        pointer: pointer.clone(),
                        now: shown(says.as_ref()),
                        recorded: shown(entry.upstream.as_ref()),
                    });
                }
            }
        }
        Ok(())
    }

    /// The operation ids recorded as left out on purpose.
    pub fn left_out_operations(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter(|entry| entry.kind == DifferenceKind::LeftOutOperations)
            .filter_map(|entry| entry.upstream.as_ref()?.as_str())
            .collect()
    }

    /// The entries as a Markdown table, as `openapi/README.md` shows them.
    pub fn markdown_table(&self) -> String {
        let mut table = String::from(
            "| pointers | kind | upstream has | we have | why |\n|---|---|---|---|---|\n",
        );
        for entry in &self.0 {
            let pointers: Vec<String> = entry.pointers.iter().map(|p| format!("`{p}`")).collect();
            let shown = |value: Option<&Value>| {
                value.map_or_else(|| "nothing".to_string(), |value| format!("`{value}`"))
            };
            let (upstream, ours) = (shown(entry.upstream.as_ref()), shown(entry.ours.as_ref()));
            let mut why = entry.reason.clone();
            if let Some(evidence) = &entry.evidence {
                why.push_str(&format!(" Evidence: {evidence}"));
            }
            table.push_str(&format!(
                "| {} | {} | {upstream} | {ours} | {} |\n",
                pointers.join("<br>"),
                entry.kind,
                why.replace('|', "\\|")
            ));
        }
        table
    }
}

/// A kept change worded from our side: an enum value the diff calls removed from
/// upstream is one we added.
fn as_ours(mut change: Change, kind: DifferenceKind) -> Change {
    if kind == DifferenceKind::AddedEnumValues
        && let Some(value) = removed_enum_value(&change.detail)
    {
        change.detail = format!("enum value {value} added by us; upstream does not list it");
    }
    change
}

/// The value, as JSON text, of a change the diff words "enum value V removed".
fn removed_enum_value(detail: &str) -> Option<&str> {
    detail
        .strip_prefix("enum value ")
        .and_then(|rest| rest.strip_suffix(" removed"))
}

/// `value` without the keys that only describe, keeping names in name maps (a property
/// may be called `description`) and literal data as they are.
pub(crate) fn without_prose(value: &Value) -> Value {
    strip(value, false)
}

fn strip(value: &Value, names: bool) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| strip(v, false)).collect()),
        Value::Object(map) => {
            let mut kept = Map::new();
            for (key, child) in map {
                let key_str = key.as_str();
                let child = if names {
                    strip(child, false)
                } else if PROSE_KEYS.contains(&key_str) || key_str.starts_with("x-") {
                    continue;
                } else if LITERAL_KEYS.contains(&key_str) {
                    child.clone()
                } else {
                    strip(child, NAME_MAPS.contains(&key_str) && child.is_object())
                };
                kept.insert(key.clone(), child);
            }
            Value::Object(kept)
        }
        other => other.clone(),
    }
}
