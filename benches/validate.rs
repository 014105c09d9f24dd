//! Cost of checking one answer against the spec: prints microseconds per call.
//!
//! Run with `cargo bench --bench validate`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use openai_uploads::validate::{self, Operation, SpecSchemas, ValidationMode};
use serde_json::Value;

const WARM_UP: u32 = 2_000;
const ITERATIONS: u32 = 100_000;

fn time(label: &str, mut call: impl FnMut() -> bool) {
    for _ in 0..WARM_UP {
        assert!(black_box(call()), "{label}: the document must pass");
    }
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        black_box(call());
    }
    let elapsed = start.elapsed();
    let per_call = elapsed.as_secs_f64() * 1e6 / f64::from(ITERATIONS);
    println!(
        "{label:<46} {per_call:>8.3} µs/call  ({ITERATIONS} calls in {:.3} s)",
        elapsed.as_secs_f64()
    );
}

fn main() {
    let upload: Value =
        serde_json::from_str(include_str!("../tests/fixtures/upload_completed.json"))
            .expect("the fixture is JSON");

    let started = Instant::now();
    let schemas = SpecSchemas::vendored();
    let compile = started.elapsed();
    println!(
        "{:<46} {:>8.3} µs (once)",
        "SpecSchemas::vendored() first call",
        compile.as_secs_f64() * 1e6
    );
    assert!(compile < Duration::from_secs(10));

    time("check(\"Upload\", completed, Lenient)", || {
        schemas
            .check("Upload", black_box(&upload), ValidationMode::Lenient)
            .is_ok()
    });
    time("check(\"Upload\", completed, Strict)", || {
        schemas
            .check("Upload", black_box(&upload), ValidationMode::Strict)
            .is_ok()
    });
    time("check_response(CompleteUpload, 200, Lenient)", || {
        validate::check_response(
            Operation::CompleteUpload,
            200,
            black_box(&upload),
            ValidationMode::Lenient,
        )
        .is_ok()
    });
    time("check_response(CompleteUpload, 200, Strict)", || {
        validate::check_response(
            Operation::CompleteUpload,
            200,
            black_box(&upload),
            ValidationMode::Strict,
        )
        .is_ok()
    });
}
