#![cfg(feature = "spec")]
//! Loading YAML and JSON, including integers beyond 64 bits.

use openai_uploads::spec::{SpecError, parse, read};
use serde_json::json;

#[test]
fn yaml_keeps_64_bit_integers_and_widens_larger_ones() {
    let spec = parse(
        "openapi: 3.1.0\nseed: 4944116822809979520\nlow: -9223372036854776000\nhigh: 9223372036854776000\nbig: 18446744073709551616\nresponses:\n  200:\n    description: unquoted status\n",
    )
    .expect("parses");
    assert_eq!(spec["seed"].as_u64(), Some(4_944_116_822_809_979_520));
    assert_eq!(spec["low"].as_f64(), Some(-9_223_372_036_854_776_000.0));
    assert_eq!(spec["high"].as_u64(), Some(9_223_372_036_854_776_000));
    assert!(spec["big"].is_f64());
    assert_eq!(spec["responses"]["200"]["description"], "unquoted status");
}

#[test]
fn json_is_read_as_json() {
    let spec = parse("  {\"openapi\": \"3.0.3\", \"n\": 4944116822809979520}").expect("parses");
    assert_eq!(
        spec,
        json!({ "openapi": "3.0.3", "n": 4_944_116_822_809_979_520_u64 })
    );
}

#[test]
fn errors_name_the_format_and_the_file() {
    let err = parse("{\"openapi\": ").expect_err("truncated JSON");
    assert!(
        matches!(err, SpecError::Parse { format: "JSON", .. }),
        "{err}"
    );
    let err = parse("a: b: c").expect_err("bad YAML");
    assert!(
        matches!(err, SpecError::Parse { format: "YAML", .. }),
        "{err}"
    );
    let err = parse("just a string").expect_err("not a mapping");
    assert!(matches!(err, SpecError::Malformed { .. }), "{err}");
    let err = read(std::path::Path::new("/nonexistent/spec.yaml")).expect_err("no file");
    assert!(err.to_string().contains("/nonexistent/spec.yaml"), "{err}");
}
