//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The vendored spec.
pub fn vendored_spec() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/openapi/api-definition.yaml"
    ))
}

/// OpenAI's spec, from `SPEC_UPSTREAM` or `../shared` beside the checkout.
///
/// `None` (the test skips, saying so) when it is absent, except in CI, which
/// always has `../shared`: there absence fails the test.
pub fn upstream_spec() -> Option<PathBuf> {
    let found = [
        std::env::var_os("SPEC_UPSTREAM").map(PathBuf::from),
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/upstream/openapi.yaml"
        ))),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "../shared/upstream/openapi.yaml is missing in CI"
        );
        println!("skipped: ../shared/upstream/openapi.yaml not found (set SPEC_UPSTREAM)");
    }
    found
}

/// An emulator on loopback injecting `faults`.
#[cfg(feature = "emulator")]
pub async fn emulator_with(
    faults: openai_uploads::emulator::Faults,
) -> openai_uploads::emulator::Emulator {
    openai_uploads::emulator::Emulator::start(
        openai_uploads::emulator::EmulatorConfig::default().with_faults(faults),
    )
    .await
    .expect("emulator starts")
}

/// A client of `emulator` sending `key`.
/// An emulator with `faults` on a runtime of its own, for tests whose
/// clients are child processes: it serves while the test thread waits on
/// them. Keep the runtime alive for as long as the emulator is used.
#[cfg(feature = "emulator")]
pub fn emulator_on_own_runtime(
    faults: openai_uploads::emulator::Faults,
) -> (openai_uploads::emulator::Emulator, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let emulator = runtime
        .block_on(openai_uploads::emulator::Emulator::start(
            openai_uploads::emulator::EmulatorConfig::default().with_faults(faults),
        ))
        .expect("emulator starts");
    (emulator, runtime)
}

#[cfg(feature = "emulator")]
pub fn client_of(
    emulator: &openai_uploads::emulator::Emulator,
    key: &str,
) -> openai_uploads::Client {
    openai_uploads::Config::new()
        .with_api_key(key)
        .with_base_url(emulator.base_url())
        .client()
        .expect("client builds")
}

/// Lower-case hexadecimal, written here rather than taken from the crate so
/// that the tests check the crate's md5 text against an independent one.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The md5 of `bytes` as the API takes it.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    hex(&md5::Md5::digest(bytes))
}

/// The whole content of a File, downloaded.
#[cfg(feature = "emulator")]
pub async fn download(client: &openai_uploads::Client, file_id: &str) -> Vec<u8> {
    use futures::StreamExt;
    let mut stream = client
        .download_file(file_id)
        .await
        .expect("download starts")
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("download chunk"));
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn content(len: u64, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len as usize + 8);
    while (out.len() as u64) < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len as usize);
    out
}

/// Writes `bytes` to `dir/name`.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("test file written");
    path
}
