//! What a diff found: each change, its kind, and the changes kept on purpose.

use std::fmt;

use serde::Serialize;

use super::differences::DifferenceKind;

/// Whether a change can break a client built from the old spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// A client built from the old spec may fail against the new one.
    Breaking,
    /// The new spec accepts and returns what the old one described.
    NonBreaking,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Breaking => "breaking",
            Self::NonBreaking => "non-breaking",
        })
    }
}

/// One structural difference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Change {
    /// Where, as a JSON pointer into the operation tree of the old spec
    /// (`/paths/{path}/{method}/...`), with `$ref`s followed as if inlined.
    pub pointer: String,
    /// The same place inside a named schema component, when it lies inside one
    /// (`/components/schemas/Upload/properties/status`); the old spec's name wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Breaking or not.
    pub kind: ChangeKind,
    /// What changed, in words.
    pub detail: String,
}

/// A change that `openapi/differences.yaml` records as kept on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptChange {
    /// The change itself.
    #[serde(flatten)]
    pub change: Change,
    /// The kind of difference it was recorded as.
    pub difference: DifferenceKind,
    /// Why it is kept.
    pub reason: String,
}

/// Every structural difference between two specs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    /// The changes to review, breaking ones first, each group sorted by pointer.
    pub changes: Vec<Change>,
    /// Changes that match a recorded deliberate difference, in the same order.
    pub kept: Vec<KeptChange>,
    /// Pointers of recorded differences that matched no change: upstream now says what
    /// the vendored spec says, or the recording names a place that no longer differs.
    pub stale: Vec<String>,
}

impl DiffReport {
    /// Whether no change is left to review (changes kept on purpose do not count).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether any change left to review is breaking.
    pub fn has_breaking(&self) -> bool {
        self.changes.iter().any(|c| c.kind == ChangeKind::Breaking)
    }

    /// Process exit code: 0 when no change is left to review, 1 when every one left is
    /// non-breaking, 2 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.has_breaking() {
            2
        } else if self.is_empty() {
            0
        } else {
            1
        }
    }

    fn of_kind(&self, kind: ChangeKind) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.kind == kind)
    }
}

fn write_change(f: &mut fmt::Formatter<'_>, change: &Change) -> fmt::Result {
    write!(f, "  {}", change.pointer)?;
    if let Some(location) = &change.component {
        write!(f, " [{location}]")?;
    }
    writeln!(f, ": {}", change.detail)
}

impl fmt::Display for DiffReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            if self.kept.is_empty() {
                writeln!(f, "no differences")?;
            } else {
                writeln!(f, "no differences besides those kept on purpose")?;
            }
        } else {
            for kind in [ChangeKind::Breaking, ChangeKind::NonBreaking] {
                let changes: Vec<&Change> = self.of_kind(kind).collect();
                writeln!(f, "{kind} ({}):", changes.len())?;
                for change in changes {
                    write_change(f, change)?;
                }
            }
        }
        if !self.is_empty() {
            let effects = self.rust_effects();
            writeln!(
                f,
                "in Rust terms ({}; the next release is {}):",
                effects.len(),
                self.release_of(&effects)
            )?;
            for effect in effects {
                writeln!(f, "  {effect}")?;
            }
        }
        if !self.kept.is_empty() {
            writeln!(f, "kept on purpose ({}):", self.kept.len())?;
            // One line per reason: many changes share one (an error response per operation).
            let mut reasons: Vec<(&str, DifferenceKind, usize)> = Vec::new();
            for kept in &self.kept {
                match reasons
                    .iter_mut()
                    .find(|(reason, ..)| *reason == kept.reason)
                {
                    Some((_, _, count)) => *count += 1,
                    None => reasons.push((&kept.reason, kept.difference, 1)),
                }
            }
            for (reason, difference, count) in reasons {
                writeln!(f, "  {count} {difference}: {reason}")?;
            }
        }
        if !self.stale.is_empty() {
            writeln!(
                f,
                "recorded as kept on purpose but not found ({}):",
                self.stale.len()
            )?;
            for pointer in &self.stale {
                writeln!(f, "  {pointer}")?;
            }
        }
        Ok(())
    }
}
