#![cfg(all(feature = "cli", unix))]
//! What `openai uploads upload` reports is what happened, as real
//! processes: signals, two runs on one state file, a file that changes, an
//! expired saved Upload, nothing to upload, a completed Upload whose answer
//! breaks the spec in strict mode.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openai_uploads::emulator::{Emulator, FaultScope, Faults};
use openai_uploads::upload::ResumeState;
use serde_json::Value;

const KEY: &str = "sk-truthtest-Zr7Qm2Xc-secret";
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

    fn slow() -> Self {
        Self::start(
            Faults::default()
                .with_scope(FaultScope::PartsOnly)
                .with_latency(Duration::from_millis(30)),
        )
    }

    /// `openai uploads upload PATH` against `base_url`, parts of `PART`, one in flight.
    fn upload_at(base_url: &str, path: &Path) -> Command {
        let mut command = Self::bare(base_url, path);
        command.args(["--part-size", &PART.to_string(), "--concurrency", "1"]);
        command
    }

    /// `openai uploads upload PATH` against `base_url`, binary, for assistants.
    fn bare(base_url: &str, path: &Path) -> Command {
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
            .args([
                "--base-url",
                base_url,
                "--api-key",
                KEY,
                "uploads",
                "upload",
            ])
            .arg(path)
            .args([
                "--purpose",
                "assistants",
                "--mime-type",
                "application/octet-stream",
            ]);
        command
    }

    fn upload(&self, path: &Path) -> Command {
        Self::upload_at(self.emulator.base_url(), path)
    }

    fn resumable(&self, path: &Path, state: &Path) -> Command {
        let mut command = self.upload(path);
        command.arg("--resume").arg(state);
        command
    }

    fn count(&self, what: impl Fn(&str, &str) -> bool) -> usize {
        self.emulator
            .requests()
            .iter()
            .filter(|r| what(&r.method, &r.path))
            .count()
    }

    fn creates(&self) -> usize {
        self.count(|m, p| m == "POST" && p == "/v1/uploads")
    }

    fn cancels(&self) -> usize {
        self.count(|_, p| p.ends_with("/cancel"))
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

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn parts_in_state(state: &Path) -> usize {
    ResumeState::load(state)
        .ok()
        .flatten()
        .map_or(0, |s| s.parts.len())
}

fn completed(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
    let upload: Value = serde_json::from_slice(&output.stdout).expect("one JSON Upload");
    assert_eq!(upload["status"], "completed");
    upload
}

fn signal(child: &Child, signal: i32) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with a child's pid and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

#[test]
fn sigterm_and_sighup_without_a_state_file_cancel_the_upload_in_one_line() {
    let server = Server::slow();
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_file(
        dir.path(),
        "data.bin",
        &common::content(40 * PART as u64, 1),
    );
    for (sig, code) in [
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
        (libc::SIGINT, 130),
    ] {
        let before = server.emulator.received_parts().len();
        let cancels = server.cancels();
        let child = server.upload(&path).spawn().unwrap();
        wait_until("a part", || server.emulator.received_parts().len() > before);
        signal(&child, sig);
        let output = finish(child);
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "signal {sig}: {said}");
        assert_eq!(said.trim_end().lines().count(), 1, "one line: {said}");
        assert!(
            said.contains("interrupted; the Upload was cancelled"),
            "{said}"
        );
        assert_eq!(
            server.cancels(),
            cancels + 1,
            "signal {sig}: cancelled on the server"
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn sigterm_and_sighup_with_a_state_file_keep_the_upload_and_the_rerun_completes_it() {
    let server = Server::slow();
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(24 * PART as u64, 2);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");
    let mut upload_id = None;
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let before = parts_in_state(&state);
        let child = server.resumable(&path, &state).spawn().unwrap();
        wait_until("a part saved", || parts_in_state(&state) > before);
        signal(&child, sig);
        let output = finish(child);
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "{said}");
        assert_eq!(said.trim_end().lines().count(), 1, "one line: {said}");
        assert!(said.contains("run the same command again"), "{said}");
        let saved = ResumeState::load(&state)
            .unwrap()
            .expect("the state file is kept");
        assert!(said.contains(&saved.upload_id), "{said}");
        assert_eq!(
            *upload_id.get_or_insert(saved.upload_id.clone()),
            saved.upload_id
        );
    }
    assert_eq!(server.cancels(), 0, "nothing cancelled");
    let upload = completed(&finish(server.resumable(&path, &state).spawn().unwrap()));
    assert_eq!(
        upload["id"].as_str(),
        upload_id.as_deref(),
        "the same Upload"
    );
    assert_eq!(
        server.download(upload["file"]["id"].as_str().unwrap()),
        bytes
    );
    assert_eq!(server.creates(), 1);
}

#[test]
fn two_runs_on_one_state_file_make_one_upload_and_one_clear_refusal() {
    let server = Server::slow();
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(16 * PART as u64, 3);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");
    let first = server.resumable(&path, &state).spawn().unwrap();
    wait_until("a part saved", || parts_in_state(&state) > 0);
    let second = finish(server.resumable(&path, &state).spawn().unwrap());
    let said = stderr(&second);
    assert_eq!(second.status.code(), Some(2), "{said}");
    assert!(said.contains(&state.display().to_string()), "{said}");
    assert!(said.contains("another run is using it"), "{said}");
    assert!(second.stdout.is_empty());
    let upload = completed(&finish(first));
    assert_eq!(server.creates(), 1, "one Upload on the server");
    assert_eq!(
        server.download(upload["file"]["id"].as_str().unwrap()),
        bytes
    );
}

#[test]
fn kill_9_leaves_no_stale_lock_and_wait_waits_for_the_holder() {
    let server = Server::slow();
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(40 * PART as u64, 4);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");
    let mut killed = server.resumable(&path, &state).spawn().unwrap();
    wait_until("a part saved", || parts_in_state(&state) > 0);
    killed.kill().unwrap();
    finish(killed);
    let saved = parts_in_state(&state);

    // A part saved by the rerun means it holds the lock: the killed run's
    // lock died with it.
    let holder = server.resumable(&path, &state).spawn().unwrap();
    wait_until("the rerun's lock", || {
        parts_in_state(&state) > saved || !state.exists()
    });
    let waiter = server
        .resumable(&path, &state)
        .arg("--wait")
        .spawn()
        .unwrap();
    let held = completed(&finish(holder));
    let waited = finish(waiter);
    assert_eq!(waited.status.code(), Some(0), "{}", stderr(&waited));
    assert!(
        stderr(&waited).contains("the run this one waited for has ended"),
        "{}",
        stderr(&waited)
    );
    assert_eq!(server.download(held["file"]["id"].as_str().unwrap()), bytes);
}

#[test]
fn a_file_appended_to_mid_upload_exits_6_naming_the_change() {
    let server = Server::slow();
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_file(
        dir.path(),
        "data.bin",
        &common::content(20 * PART as u64, 5),
    );
    let before = server.emulator.received_parts().len();
    let child = server.upload(&path).arg("--no-md5").spawn().unwrap();
    wait_until("a part", || {
        server.emulator.received_parts().len() > before + 1
    });
    {
        use std::io::Write;
        let mut file = std::fs::File::options().append(true).open(&path).unwrap();
        file.write_all(b"more\n").unwrap();
    }
    let output = finish(child);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(6), "{said}");
    assert!(
        said.contains("changed while it was being uploaded"),
        "{said}"
    );
    assert!(said.contains("size was"), "{said}");
    assert!(output.stdout.is_empty());
    assert!(server.emulator.completions().is_empty());
}

#[test]
fn resume_only_on_an_expired_upload_keeps_the_state_and_names_the_expiry() {
    let server = Server::slow();
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_file(
        dir.path(),
        "data.bin",
        &common::content(16 * PART as u64, 6),
    );
    let state = dir.path().join("data.state");
    let mut child = server.resumable(&path, &state).spawn().unwrap();
    wait_until("a part saved", || parts_in_state(&state) > 0);
    child.kill().unwrap();
    finish(child);
    std::thread::sleep(Duration::from_millis(100));
    let saved = ResumeState::load(&state).unwrap().unwrap();
    let text = std::fs::read(&state).unwrap();

    // The server's clock is past the Upload's expiry; the client's is not.
    server.emulator.clock().advance(2 * 3600);
    let (creates, stored) = (server.creates(), server.emulator.received_parts().len());
    let output = finish(
        server
            .resumable(&path, &state)
            .arg("--resume-only")
            .spawn()
            .unwrap(),
    );
    let said = stderr(&output);
    assert_ne!(output.status.code(), Some(0), "{said}");
    assert_eq!(said.trim_end().lines().count(), 1, "one line: {said}");
    assert!(said.contains(&saved.upload_id), "{said}");
    assert!(said.contains("the Upload has expired"), "{said}");
    assert!(said.contains("expires at"), "{said}");
    assert!(!said.contains("failed"), "not a part failure: {said}");
    assert_eq!(
        std::fs::read(&state).unwrap(),
        text,
        "the state file is kept"
    );
    assert_eq!(server.creates(), creates, "no fresh Upload");
    assert_eq!(
        server.emulator.received_parts().len(),
        stored,
        "no part stored"
    );
    assert_eq!(server.cancels(), 0);

    // The client's clock past it too: refused before anything is sent.
    let mut expired = saved.clone();
    expired.expires_at = 1_000;
    expired.save(&state).unwrap();
    let requests = server.emulator.requests().len();
    let output = finish(
        server
            .resumable(&path, &state)
            .arg("--resume-only")
            .spawn()
            .unwrap(),
    );
    let said = stderr(&output);
    assert_ne!(output.status.code(), Some(0), "{said}");
    assert!(
        said.contains("has expired (at 1970-01-01 00:16:40 UTC)"),
        "{said}"
    );
    assert_eq!(server.emulator.requests().len(), requests, "nothing sent");
    assert!(state.exists());
}

#[test]
fn nothing_to_upload_is_a_usage_error_saying_so() {
    let server = Server::start(Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let state = dir.path().join("s.state");
    let mut stdin_list = server.upload(Path::new("-"));
    stdin_list.stdin(Stdio::piped());
    let mut resumed = server.upload(&empty);
    resumed.arg("--resume").arg(&state);
    for (mut command, says) in [
        (server.upload(&empty), "holds no regular files"),
        (resumed, "holds no regular files"),
        (stdin_list, "standard input listed no paths"),
    ] {
        let mut child = command.spawn().unwrap();
        drop(child.stdin.take());
        let output = finish(child);
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{said}");
        assert!(said.contains("nothing to upload"), "{said}");
        assert!(said.contains(says), "{said}");
    }
    assert!(server.emulator.requests().is_empty());
}

#[test]
fn a_part_size_under_the_minimum_names_the_minimum_the_code_enforces() {
    let server = Server::start(Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_file(dir.path(), "data.bin", &common::content(1 << 20, 7));
    let mut command = Server::bare(server.emulator.base_url(), &path);
    command.args(["--part-size", "100"]);
    let output = finish(command.spawn().unwrap());
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    let minimum = openai_uploads::upload::MIN_PART_SIZE.to_string();
    assert!(said.contains(&format!("at least {minimum}")), "{said}");
    assert!(!said.contains("1..="), "{said}");
    assert!(server.emulator.requests().is_empty());
}

#[test]
fn strict_on_a_completed_upload_whose_answer_breaks_the_spec_prints_it_and_says_completed() {
    let server = Server::start(Faults::default());
    let proxy = server.runtime.block_on(proxy::LyingProxy::start(
        server.emulator.base_url(),
        Arc::new(|method, path, value| {
            if method == axum::http::Method::POST && path.ends_with("/complete") {
                value["file"]["status"] = "mystery".into();
            }
        }),
    ));
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(3 * PART as u64, 8);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let mut command = Server::upload_at(&proxy.base_url, &path);
    command.arg("--strict");
    let output = finish(command.spawn().unwrap());
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("completed"), "{said}");
    assert!(!said.contains("expires unused"), "{said}");
    assert!(!said.contains("cancel"), "{said}");
    let upload: Value = serde_json::from_slice(&output.stdout).expect("the completed Upload");
    assert_eq!(upload["status"], "completed");
    assert_eq!(
        server.download(upload["file"]["id"].as_str().unwrap()),
        bytes
    );
    assert_eq!(server.cancels(), 0);
}

#[test]
fn strict_uploads_of_a_purpose_we_add_complete_with_no_warning() {
    let server = Server::start(Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(2 * PART as u64, 9);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let mut command = Command::new(env!("CARGO_BIN_EXE_openai"));
    command
        .env_remove("OPENAI_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .args(["--base-url", server.emulator.base_url(), "--api-key", KEY])
        .args(["--strict", "uploads", "upload"])
        .arg(&path)
        .args([
            "--purpose",
            "user_data",
            "--mime-type",
            "application/octet-stream",
        ]);
    let output = finish(command.spawn().unwrap());
    let upload = completed(&output);
    assert_eq!(stderr(&output), "", "no warning");
    assert_eq!(upload["purpose"], "user_data");
    assert_eq!(upload["file"]["purpose"], "user_data");
    assert_eq!(
        server.download(upload["file"]["id"].as_str().unwrap()),
        bytes
    );
}

#[test]
fn a_completion_answer_of_another_upload_is_an_error_and_a_refused_cancel_is_called_refused() {
    let server = Server::start(Faults::default());
    let proxy = server.runtime.block_on(proxy::LyingProxy::start(
        server.emulator.base_url(),
        Arc::new(|method, path, value| {
            if method == axum::http::Method::POST && path.ends_with("/complete") {
                value["id"] = "upload_someone_else".into();
            }
        }),
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_file(
        dir.path(),
        "data.bin",
        &common::content(2 * PART as u64, 10),
    );
    let output = finish(Server::upload_at(&proxy.base_url, &path).spawn().unwrap());
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("disagrees with the request"), "{said}");
    assert!(said.contains("received upload_someone_else"), "{said}");
    assert!(output.stdout.is_empty(), "no Upload printed as a success");
    // The server completed the real Upload, so it refuses the cancel: said
    // as a refusal, not as an Upload left pending.
    assert_eq!(server.cancels(), 1);
    assert!(said.contains("refused to cancel"), "{said}");
    assert!(!said.contains("expires unused"), "{said}");
    assert!(!said.contains("could not cancel"), "{said}");
}
