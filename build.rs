//! Generates the typed client from `openapi/api-definition.yaml` into `OUT_DIR`:
//! `codegen.rs` (progenitor's client and types), `open_enums.rs`, and the spec
//! as JSON for response validation (`api-definition.json`) with the list of
//! its open enums (`open-enums.json`) and their Rust names (`open-enum-types.json`).

#[path = "build/pipeline.rs"]
mod pipeline;

use std::{env, fs, path::Path};

use serde_json::Value;

const SPEC: &str = "openapi/api-definition.yaml";

fn main() {
    println!("cargo:rerun-if-changed={SPEC}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/pipeline.rs");
    let out_dir = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out_dir = Path::new(&out_dir);

    let text = fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("reading {SPEC}: {e}"));
    let spec: Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parsing {SPEC}: {e}"));
    write(
        &out_dir.join("api-definition.json"),
        &serde_json::to_string(&spec).expect("JSON value serialises"),
    );
    let open: Vec<[&str; 2]> = pipeline::OPEN_ENUMS
        .iter()
        .map(|&(schema, property, _)| [schema, property])
        .collect();
    write(
        &out_dir.join("open-enums.json"),
        &serde_json::to_string(&open).expect("JSON value serialises"),
    );
    // The Rust names of the open enums, for `spec diff`'s summary in Rust terms.
    write(
        &out_dir.join("open-enum-types.json"),
        &serde_json::to_string(pipeline::OPEN_ENUMS).expect("JSON value serialises"),
    );
    let generated = pipeline::generate(spec).unwrap_or_else(|e| panic!("{SPEC}: {e}"));
    write(&out_dir.join("codegen.rs"), &generated.client);
    write(&out_dir.join("open_enums.rs"), &generated.open_enums);
}

fn write(path: &Path, contents: &str) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
