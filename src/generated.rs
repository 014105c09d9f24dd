//! The one door to the code progenitor generates from `openapi/api-definition.yaml`.
//!
//! Nothing here is written by hand except this door: the client, the request
//! and response types, and the open enums all come from the build script.
#![allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    unused_imports,
    irrefutable_let_patterns,
    mismatched_lifetime_syntaxes,
    private_interfaces
)]

include!(concat!(env!("OUT_DIR"), "/codegen.rs"));

/// Response enums that keep values unknown to this version instead of failing.
pub mod open_enums {
    include!(concat!(env!("OUT_DIR"), "/open_enums.rs"));
}
