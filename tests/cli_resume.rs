#![cfg(feature = "cli")]
//! `openai uploads upload --resume` as real processes: killed with SIGKILL
//! mid-upload, stopped by an outage, pointed at nothing; the same command
//! run again must finish the same Upload without resending what the state
//! file holds.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use openai_uploads::emulator::{Emulator, FaultScope, Faults};
use openai_uploads::upload::ResumeState;
use serde_json::Value;

const KEY: &str = "sk-resumetest-Hq3Zp8Wd-secret";
const PART: usize = 64 * 1024;

/// An emulator on a runtime of the test's own, alive across child processes.
struct Server {
    emulator: Emulator,
    runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start(faults: Faults) -> Self {
        let (emulator, runtime) = common::emulator_on_own_runtime(faults);
        Self { emulator, runtime }
    }

    /// `openai uploads upload PATH --resume STATE` against this emulator,
    /// in parts of `PART`, two in flight.
    fn upload(&self, path: &Path, state: &Path) -> Command {
        self.upload_with(path, state, &PART.to_string(), "2")
    }

    fn upload_with(
        &self,
        path: &Path,
        state: &Path,
        part_size: &str,
        concurrency: &str,
    ) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_openai"));
        for var in ["OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID"] {
            command.env_remove(var);
        }
        command
            .env_remove("OPENAI_PROJECT_ID")
            .env_remove("OPENAI_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .arg("--base-url")
            .arg(self.emulator.base_url())
            .args(["--api-key", KEY, "uploads", "upload"])
            .arg(path)
            .args([
                "--purpose",
                "assistants",
                "--mime-type",
                "application/octet-stream",
            ])
            .args(["--part-size", part_size, "--concurrency", concurrency])
            .arg("--resume")
            .arg(state);
        command
    }

    fn parts_of(&self, upload_id: &str) -> usize {
        self.emulator
            .received_parts()
            .iter()
            .filter(|p| p.upload_id == upload_id)
            .count()
    }

    fn download(&self, file_id: &str) -> Vec<u8> {
        let client = common::client_of(&self.emulator, KEY);
        self.runtime.block_on(common::download(&client, file_id))
    }
}

fn finish(child: Child) -> Output {
    let output = child.wait_with_output().expect("the binary ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(KEY), "key printed: {stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains(KEY));
    output
}

fn completed(output: &Output) -> Value {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let upload: Value = serde_json::from_slice(&output.stdout).expect("one JSON Upload");
    assert_eq!(upload["status"], "completed", "{upload}");
    upload
}

/// Waits until the state file records at least `parts` parts.
fn wait_for_state(state: &Path, parts: usize) -> ResumeState {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(saved)) = ResumeState::load(state)
            && saved.parts.len() >= parts
        {
            return saved;
        }
        assert!(Instant::now() < deadline, "no progress in the state file");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Checks the File's bytes and the md5 its completion carried.
fn assert_file(server: &Server, upload: &Value, bytes: &[u8]) {
    let file_id = upload["file"]["id"].as_str().expect("a File id");
    assert_eq!(server.download(file_id), bytes);
    let id = upload["id"].as_str().unwrap();
    let completion = server
        .emulator
        .completions()
        .into_iter()
        .rfind(|c| c.upload_id == id)
        .expect("a completion");
    assert_eq!(
        completion.md5.as_deref(),
        Some(common::md5_hex(bytes).as_str())
    );
    assert_eq!(completion.part_ids.len(), bytes.len().div_ceil(PART));
}

fn slow() -> Faults {
    Faults::default()
        .with_scope(FaultScope::PartsOnly)
        .with_latency(Duration::from_millis(25))
}

#[test]
fn kill_9_mid_upload_then_the_same_command_finishes_the_same_upload() {
    const PARTS: usize = 40;
    let server = Server::start(slow());
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content((PARTS * PART) as u64, 91);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");

    let mut child = server.upload(&path, &state).spawn().expect("starts");
    wait_for_state(&state, 4);
    child.kill().expect("SIGKILL");
    let killed = finish(child);
    assert!(!killed.status.success());
    // Let the server finish whatever was in flight.
    std::thread::sleep(Duration::from_millis(300));
    let saved = ResumeState::load(&state)
        .unwrap()
        .expect("the state file survives");
    assert!(saved.parts.len() < PARTS, "{saved:?}");
    let before = server.parts_of(&saved.upload_id);

    let upload = completed(&finish(server.upload(&path, &state).spawn().unwrap()));
    assert_eq!(upload["id"], saved.upload_id.as_str(), "the same Upload");
    assert_eq!(
        server.parts_of(&saved.upload_id) - before,
        PARTS - saved.parts.len(),
        "the parts in the state file were not sent again"
    );
    assert_file(&server, &upload, &bytes);
    assert!(!state.exists());
}

#[test]
fn kill_9_at_any_moment_never_stops_a_resume_from_finishing() {
    const PARTS: usize = 24;
    let server = Server::start(slow().with_latency(Duration::from_millis(10)));
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content((PARTS * PART) as u64, 92);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");

    // Kill after 0 to ~400 ms, a different moment each run (seeded).
    let mut seed = 0x9E37_79B9_u64;
    let mut kills = 0;
    for _ in 0..6 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = Duration::from_millis((seed >> 33) % 400);
        let mut child = server.upload(&path, &state).spawn().expect("starts");
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_some() {
            break; // it finished first
        }
        child.kill().expect("SIGKILL");
        finish(child);
        kills += 1;
    }
    assert!(kills > 0, "no run was interrupted");
    let upload = completed(&finish(server.upload(&path, &state).spawn().unwrap()));
    assert_file(&server, &upload, &bytes);
}

#[test]
fn an_outage_stops_the_command_and_the_same_command_resumes_after_it() {
    let server = Server::start(slow());
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content((12 * PART) as u64, 93);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");

    let child = server.upload(&path, &state).spawn().expect("starts");
    let saved = wait_for_state(&state, 2);
    // Every part now meets a rate limit asking for no wait: the retries
    // are spent at once.
    server.emulator.set_faults(
        Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_rate_limit_every(1)
            .with_retry_after(Duration::ZERO),
    );
    let stopped = finish(child);
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(1), "stderr: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.contains("HTTP 429"), "{stderr}");
    assert!(last.contains(&saved.upload_id), "{stderr}");
    assert!(
        last.contains("run the same command again before"),
        "{stderr}"
    );
    assert!(last.contains("UTC"), "{stderr}");
    assert!(stopped.stdout.is_empty());
    assert!(state.exists(), "the state file is kept");
    let requests = server.emulator.requests();
    assert!(
        !requests.iter().any(|r| r.path.ends_with("/cancel")),
        "the Upload is left pending"
    );

    server.emulator.set_faults(Faults::default());
    let upload = completed(&finish(server.upload(&path, &state).spawn().unwrap()));
    assert_eq!(upload["id"], saved.upload_id.as_str());
    assert_file(&server, &upload, &bytes);
}

#[test]
fn nothing_listening_fails_fast_naming_the_url_and_the_cause() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!(
        "http://127.0.0.1:{}/v1",
        listener.local_addr().unwrap().port()
    );
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_file(dir.path(), "data.bin", b"hello");
    let started = Instant::now();
    let output = finish(
        Command::new(env!("CARGO_BIN_EXE_openai"))
            .env_remove("OPENAI_LOG")
            .args(["--base-url", &base, "--api-key", KEY, "uploads", "upload"])
            .arg(&path)
            .args(["--purpose", "assistants"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.contains("connection refused"), "{stderr}");
    assert!(last.contains(&base), "{stderr}");
    assert!(
        stderr.matches("retrying").count() <= 1,
        "one warning per request at most: {stderr}"
    );
    println!("gave up after {:?}", started.elapsed());
}

#[test]
fn settings_out_of_range_are_usage_errors_and_send_nothing() {
    let server = Server::start(Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_file(dir.path(), "data.bin", &common::content(100 << 20, 94));
    let state = dir.path().join("s.state");
    for (part_size, concurrency, says) in [
        ("1", "2", "at least 4096"),
        ("0", "2", "a part holds from 4096 to 67108864 bytes"),
        ("67108865", "2", "a part holds from 4096 to 67108864 bytes"),
        ("5000", "2", "more than the 10000"),
        ("65536", "0", "0 is not in 1..=64"),
        ("65536", "65", "65 is not in 1..=64"),
    ] {
        let output = finish(
            server
                .upload_with(&path, &state, part_size, concurrency)
                .spawn()
                .unwrap(),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        let case = format!("--part-size {part_size} --concurrency {concurrency}");
        assert_eq!(output.status.code(), Some(2), "{case}: {stderr}");
        assert!(stderr.contains(says), "{case}: {stderr}");
    }
    assert!(server.emulator.requests().is_empty());
    assert!(!state.exists());
}
