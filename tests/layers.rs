//! The crate's layers, read from the `use` lines: configuration at the
//! bottom, the client above it, the one-call upload above the client.

use std::path::Path;

/// The `use` lines of a source file, joined across lines.
fn uses(file: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).expect("source file");
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_none() && (trimmed.starts_with("use ") || trimmed.starts_with("pub use ")) {
            current = Some(String::new());
        }
        if let Some(statement) = current.as_mut() {
            statement.push_str(trimmed);
            if trimmed.ends_with(';') {
                found.push(current.take().unwrap_or_default());
            }
        }
    }
    found
}

/// Paths of the crate named anywhere in `file` other than in `use` lines
/// (`crate::upload::X` written inline).
fn inline_paths(file: &str, module: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).expect("source file");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter(|l| l.contains(&format!("crate::{module}")))
        .map(str::to_string)
        .collect()
}

fn assert_knows_nothing_of(file: &str, modules: &[&str]) {
    let uses = uses(file);
    assert!(!uses.is_empty(), "{file} has use lines to read");
    for module in modules {
        let above: Vec<_> = uses
            .iter()
            .filter(|u| u.contains(&format!("crate::{module}")))
            .collect();
        assert!(
            above.is_empty(),
            "{file} uses the layer above it: {above:?}"
        );
        let inline = inline_paths(file, module);
        assert!(
            inline.is_empty(),
            "{file} names the layer above it: {inline:?}"
        );
    }
}

#[test]
fn config_knows_neither_the_client_nor_the_upload() {
    assert_knows_nothing_of("src/config.rs", &["client", "upload", "hooks", "parts"]);
}

#[test]
fn the_client_knows_nothing_of_the_upload() {
    assert_knows_nothing_of("src/client.rs", &["upload"]);
}

#[test]
fn the_reader_of_use_lines_sees_what_it_must_refuse() {
    // The check above must be able to fail: the upload layer's own file
    // does use the client.
    let uses = uses("src/upload/one_call.rs");
    assert!(uses.iter().any(|u| u.contains("crate::client")), "{uses:?}");
}
