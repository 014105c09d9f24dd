//! What a spec change means for code that uses the generated Rust types, and the
//! release it calls for.

use std::fmt;
use std::sync::LazyLock;

use serde::Serialize;

use super::report::{Change, ChangeKind, DiffReport};

/// The open enums' `(schema, property, Rust type)`, as the build script generated them.
const OPEN_ENUM_TYPES: &str = include_str!(concat!(env!("OUT_DIR"), "/open-enum-types.json"));

/// [`OPEN_ENUM_TYPES`], read once rather than for every enum change.
static OPEN_ENUMS: LazyLock<Vec<(String, String, String)>> =
    LazyLock::new(|| serde_json::from_str(OPEN_ENUM_TYPES).unwrap_or_default());

/// The release a change calls for, by Cargo's SemVer rules (while the crate is `0.x`,
/// a major release bumps the minor number and a minor release the patch number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Release {
    /// No public Rust item changes.
    Patch,
    /// Something is added that no existing code can trip over.
    Minor,
    /// Some existing code may stop compiling or behave differently.
    Major,
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Patch => "patch",
            Self::Minor => "minor",
            Self::Major => "major",
        })
    }
}

/// What sort of change a Rust user meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RustChange {
    /// A field added to a generated struct.
    FieldAdded,
    /// A field removed from a generated struct.
    FieldRemoved,
    /// A value added to a generated enum.
    EnumValueAdded,
    /// A value removed from a generated enum.
    EnumValueRemoved,
    /// A field's or a type's Rust type changed (including `Option` around it).
    TypeChanged,
    /// An operation the crate has no method for yet.
    OperationAdded,
    /// An operation behind a method removed or moved.
    OperationChanged,
    /// A bound the request rules check changed; no type changes.
    RuleChanged,
    /// A breaking change no type shows (a media type, a response): calls behave differently.
    BehaviourChanged,
}

/// One change, in Rust terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RustEffect {
    /// What sort of change it is.
    pub change: RustChange,
    /// The Rust item it touches: `Upload::file`, `FilePurpose`, or an operation id.
    pub item: String,
    /// What it means for code that reads or builds the item.
    pub effect: String,
    /// The release it calls for.
    pub release: Release,
    /// The spec change it comes from.
    pub pointer: String,
}

impl DiffReport {
    /// The changes left to review, in Rust terms, one per Rust item and change (a change
    /// inside a shared schema is reported once per operation, but touches one type).
    pub fn rust_effects(&self) -> Vec<RustEffect> {
        let mut effects: Vec<RustEffect> = Vec::new();
        for change in &self.changes {
            if let Some(effect) = rust_effect(change)
                && !effects
                    .iter()
                    .any(|e| e.item == effect.item && e.effect == effect.effect)
            {
                effects.push(effect);
            }
        }
        effects
    }

    /// The release the changes left to review call for: the largest of their effects.
    /// A breaking spec change is major even where no Rust type shows it.
    pub fn release(&self) -> Release {
        self.release_of(&self.rust_effects())
    }

    /// [`release`](Self::release) from this report's [`rust_effects`](Self::rust_effects),
    /// for a caller that has them already.
    pub(crate) fn release_of(&self, effects: &[RustEffect]) -> Release {
        let types = effects.iter().map(|e| e.release).max();
        let breaking = self.has_breaking().then_some(Release::Major);
        types.max(breaking).unwrap_or(Release::Patch)
    }
}

/// The Rust effect of one spec change, when it has one: a breaking change always has.
fn rust_effect(change: &Change) -> Option<RustEffect> {
    typed_effect(change).or_else(|| {
        (change.kind == ChangeKind::Breaking).then(|| RustEffect {
            change: RustChange::BehaviourChanged,
            item: operation_of(&change.pointer),
            effect: format!(
                "{}: no type changes, but the call behaves differently",
                change.detail
            ),
            release: Release::Major,
            pointer: change.pointer.clone(),
        })
    })
}

/// `GET /files/{file_id}/content` for a pointer into that operation.
fn operation_of(pointer: &str) -> String {
    let mut tokens = pointer.trim_start_matches("/paths/").split('/');
    let path = tokens.next().map(super::refs::unescape).unwrap_or_default();
    let method = tokens.next().unwrap_or_default().to_uppercase();
    format!("{method} {path}")
}

/// The effect of a change on a generated type or a method, when it has one.
fn typed_effect(change: &Change) -> Option<RustEffect> {
    let detail = change.detail.as_str();
    let place = change.component.as_deref().map(RustPlace::of);
    let effect = |kind: RustChange, item: String, effect: String, release: Release| RustEffect {
        change: kind,
        item,
        effect,
        release,
        pointer: change.pointer.clone(),
    };
    if let Some(rest) = detail.strip_prefix("operation `") {
        let id = rest.split('`').next().unwrap_or_default().to_string();
        return Some(if detail.contains(" added") {
            effect(
                RustChange::OperationAdded,
                id,
                "no method on `Client` yet: adding one is a minor release".into(),
                Release::Minor,
            )
        } else {
            effect(
                RustChange::OperationChanged,
                id,
                "the method calling it no longer reaches the API as it did".into(),
                Release::Major,
            )
        });
    }
    let place = place?;
    if let Some(field) = quoted(detail).filter(|_| detail.contains("field")) {
        let item = format!("{}::{}", place.owner, rust_field(field));
        if detail.ends_with(" added") || detail.starts_with("new required") {
            let (ty, readers) = if detail.starts_with("optional") {
                ("an `Option`", "readers are unaffected")
            } else if detail.starts_with("new required") {
                ("a required field", "every request must now set it")
            } else {
                ("an always-present field", "readers are unaffected")
            };
            return Some(effect(
                RustChange::FieldAdded,
                item,
                format!(
                    "{ty}: {readers}; code building `{}` with a struct literal stops compiling",
                    place.owner
                ),
                Release::Major,
            ));
        }
        if detail.ends_with(" removed") {
            return Some(effect(
                RustChange::FieldRemoved,
                item,
                "code reading or setting it stops compiling".into(),
                Release::Major,
            ));
        }
        // Required or present-always changes turn `T` into `Option<T>` or back.
        return Some(effect(
            RustChange::TypeChanged,
            item,
            format!("{detail}: its type gains or loses `Option`"),
            Release::Major,
        ));
    }
    if let Some(rest) = detail.strip_prefix("enum value ") {
        let value = rest.split(' ').next().unwrap_or_default();
        let item = place.enum_type();
        return Some(if detail.ends_with(" added") {
            let decoded = if place.open_enum().is_some() {
                format!("decoded as a variant of its own rather than `{item}::Other`")
            } else {
                "accepted".to_string()
            };
            effect(
                RustChange::EnumValueAdded,
                item,
                format!(
                    "value {value} {decoded}; an exhaustive `match` without a wildcard arm stops compiling"
                ),
                Release::Major,
            )
        } else {
            effect(
                RustChange::EnumValueRemoved,
                item,
                format!("value {value} removed: code naming its variant stops compiling"),
                Release::Major,
            )
        });
    }
    let type_change = [
        "type changed",
        "format changed",
        "nullable",
        "enum restriction",
    ];
    if type_change.iter().any(|words| detail.contains(words)) {
        return Some(effect(
            RustChange::TypeChanged,
            place.item(),
            format!("{detail}: code reading or building it may stop compiling"),
            Release::Major,
        ));
    }
    if change.pointer.rsplit('/').next().is_some_and(is_bound) {
        return Some(effect(
            RustChange::RuleChanged,
            place.item(),
            format!("{detail}: the request rules accept other values; no type changes"),
            if change.kind == ChangeKind::Breaking {
                Release::Major
            } else {
                Release::Minor
            },
        ));
    }
    None
}

fn is_bound(token: &str) -> bool {
    token.starts_with("min") || token.starts_with("max") || token.starts_with("exclusive")
}

/// The first name between backquotes in `detail`.
fn quoted(detail: &str) -> Option<&str> {
    detail.split('`').nth(1)
}

/// Where a component pointer lands among the generated types.
struct RustPlace {
    /// The schema component's name, as the spec spells it.
    schema: String,
    /// The Rust type that holds the place: the component's, or an inline object's.
    owner: String,
    /// The property the place is in or under, if any.
    property: Option<String>,
}

impl RustPlace {
    /// Reads `/components/schemas/{name}/properties/{p}/...`.
    fn of(component: &str) -> Self {
        let tokens: Vec<String> = component
            .trim_start_matches("/components/schemas/")
            .split('/')
            .map(super::refs::unescape)
            .collect();
        let schema = tokens.first().cloned().unwrap_or_default();
        let mut owner = camel(&schema);
        let mut property = None;
        let mut rest = tokens.iter().skip(1).peekable();
        while let Some(token) = rest.next() {
            // An inline object property is a type named after its owner and itself.
            if token == "properties"
                && let Some(name) = rest.next()
                && let Some(inner) = property.replace(name.clone())
            {
                owner = format!("{owner}{}", camel(&inner));
            }
        }
        Self {
            schema,
            owner,
            property,
        }
    }

    fn open_enum(&self) -> Option<String> {
        let property = self.property.as_deref()?;
        OPEN_ENUMS
            .iter()
            .find(|(schema, prop, _)| *schema == self.schema && prop == property)
            .map(|(_, _, name)| name.clone())
    }

    /// The enum type at this place: an open enum's name, or progenitor's owner + property.
    fn enum_type(&self) -> String {
        self.open_enum().unwrap_or_else(|| match &self.property {
            Some(property) => format!("{}{}", self.owner, camel(property)),
            None => self.owner.clone(),
        })
    }

    fn item(&self) -> String {
        match &self.property {
            Some(property) => format!("{}::{}", self.owner, rust_field(property)),
            None => self.owner.clone(),
        }
    }
}

/// A schema or property name as a Rust type name, as progenitor spells it
/// (`OpenAIFile` → `OpenAiFile`, `purpose` → `Purpose`).
pub(crate) fn camel(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            words.push(std::mem::take(&mut word));
            continue;
        }
        let previous = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let starts_word = c.is_uppercase()
            && (previous.is_some_and(char::is_lowercase)
                || (previous.is_some_and(char::is_uppercase)
                    && next.is_some_and(|n| n.is_lowercase())));
        if starts_word {
            words.push(std::mem::take(&mut word));
        }
        word.push(c);
    }
    words.push(word);
    words
        .into_iter()
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            let first = cs.next().map(|c| c.to_ascii_uppercase());
            first
                .into_iter()
                .chain(cs.map(|c| c.to_ascii_lowercase()))
                .collect::<String>()
        })
        .collect()
}

/// A property name as a Rust field name.
fn rust_field(name: &str) -> String {
    name.replace(['-', '.', ' '], "_").to_lowercase()
}

impl fmt::Display for RustEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.change {
            RustChange::FieldAdded => "field added",
            RustChange::FieldRemoved => "field removed",
            RustChange::EnumValueAdded => "enum value added",
            RustChange::EnumValueRemoved => "enum value removed",
            RustChange::TypeChanged => "type changed",
            RustChange::OperationAdded => "operation added",
            RustChange::OperationChanged => "operation changed",
            RustChange::RuleChanged => "rule changed",
            RustChange::BehaviourChanged => "behaviour changed",
        };
        write!(
            f,
            "{what} `{}` ({}): {}",
            self.item, self.release, self.effect
        )
    }
}

#[cfg(test)]
mod tests {
    use super::camel;

    #[test]
    fn names_as_progenitor_spells_them() {
        assert_eq!(camel("OpenAIFile"), "OpenAiFile");
        assert_eq!(camel("Upload"), "Upload");
        assert_eq!(camel("purpose"), "Purpose");
        assert_eq!(camel("expires_after"), "ExpiresAfter");
        assert_eq!(camel("CreateUploadRequest"), "CreateUploadRequest");
    }
}
