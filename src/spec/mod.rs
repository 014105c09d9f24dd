//! Tools for keeping `openapi/api-definition.yaml` in step with OpenAI's published spec.
//!
//! - [`extract`] cuts the Uploads and Files operations, and every component they use,
//!   out of the full upstream spec and converts them to OpenAPI 3.0.3.
//! - [`normalise_31_to_30`] rewrites OpenAPI 3.1 schema constructs into 3.0 ones.
//! - [`diff`] compares two specs structurally and classifies each difference as
//!   breaking or not.
//! - [`DiffReport::rust_effects`] says what each change means for the generated Rust
//!   types, and [`DiffReport::release`] whether it calls for a minor or a major release.
//! - [`Differences`] holds the differences from upstream kept on purpose, recorded in
//!   `openapi/differences.yaml` (built into the crate); [`Differences::apply`] sets the
//!   changes they explain apart in a report, so that only new ones need review.
//!
//! - [`update`] rebuilds the vendored spec from a new upstream and the recorded
//!   differences, keeping our own descriptions; [`to_yaml`] writes it in the layout
//!   `openapi/api-definition.yaml` is kept in.
//!
//! Everything works on [`serde_json::Value`]; [`parse`] and [`read`] load YAML or JSON.
//!
//! # Pointers in a diff
//! Each [`Change`] has a `pointer` into the operation tree of the old spec, as if every
//! `$ref` were inlined: `/paths/~1uploads/post/responses/200/content/application~1json/schema/properties/status`.
//! Parameters are addressed by name (`.../parameters/file_id`), not by list position.
//! When the place lies inside a named schema component, `component` holds the same place
//! inside it (`/components/schemas/Upload/properties/status`), taken from the old spec's
//! names when the old side is a component and from the new spec's otherwise. A change
//! inside a shared schema is reported once per operation that uses it, each time with the
//! same `component`; a recorded [`Difference`] may name either form, so a deliberate
//! difference inside a shared schema can be recorded once.

mod diff;
mod differences;
mod extract;
mod load;
mod normalise;
mod refs;
mod report;
mod rust;
mod update;
mod write;

use std::path::PathBuf;

pub use diff::diff;
pub use differences::{Difference, DifferenceKind, Differences};
pub use extract::{COVERED_PATHS, DEFAULT_OPERATIONS, extract};
pub use load::{MAX_FETCHED_SPEC, check_paths, fetch, parse, read};
pub use normalise::normalise_31_to_30;
pub use report::{Change, ChangeKind, DiffReport, KeptChange};
pub use rust::{Release, RustChange, RustEffect};
pub use update::{REWRITE_MARK, Updated, update};
pub use write::to_yaml;

/// What can go wrong while reading or extracting a spec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A spec could not be fetched from a URL.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The text is not valid YAML or JSON.
    #[error("invalid {format}: {message}")]
    Parse {
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message, with its location.
        message: String,
    },
    /// The document is valid YAML or JSON but not shaped like an OpenAPI document.
    #[error("malformed spec at `{pointer}`: {reason}")]
    Malformed {
        /// Where, as a JSON pointer.
        pointer: String,
        /// What is wrong there.
        reason: String,
    },
    /// Some requested operationIds are not in the spec.
    #[error("operation(s) not found: {}", .0.join(", "))]
    UnknownOperations(Vec<String>),
    /// A `$ref` points at a component the spec does not have.
    #[error("`$ref` to a missing component: {reference}")]
    UnresolvedRef {
        /// The reference, as written.
        reference: String,
    },
    /// Upstream no longer says, at a pointer where `openapi/differences.yaml` records a
    /// difference, what the recording says it did.
    #[error(
        "upstream changed where a difference is recorded, at `{pointer}`: upstream now has \
         {now}, the recording says {recorded}; review the difference in \
         openapi/differences.yaml before updating"
    )]
    UpstreamMoved {
        /// The recorded pointer.
        pointer: String,
        /// What upstream has there now, as JSON (`nothing` when it has nothing).
        now: String,
        /// What the recording says upstream had, as JSON.
        recorded: String,
    },
    /// A `$ref` that is not of the form `#/components/{kind}/{name}`.
    #[error("unsupported `$ref` (only `#/components/...` is followed): {reference}")]
    UnsupportedRef {
        /// The reference, as written.
        reference: String,
    },
}
