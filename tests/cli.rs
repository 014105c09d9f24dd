#![cfg(feature = "cli")]
//! The `openai` binary run as a child process, the way a user or a script
//! runs it: help texts, multi-step flows across processes against one shared
//! emulator, `--emulator` mode, exit codes and the spec commands.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use openai_uploads::emulator::{Emulator, EmulatorConfig, FaultScope, Faults};
use serde_json::Value;

/// Distinctive enough that finding it in any output can only be a leak.
const KEY: &str = "sk-clitest-Q7vX2pLm9ZrT4wYb-secret";

const ENV_VARS: [&str; 6] = [
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "OPENAI_MTLS_CLIENT_CERT_FILE",
    "OPENAI_MTLS_CLIENT_KEY_FILE",
];

/// The binary with none of the machine's settings leaking in.
fn openai() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_openai"));
    for var in ENV_VARS {
        command.env_remove(var);
    }
    command
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

/// Runs to the end; every run is checked for the key.
fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the binary runs");
    assert_no_key(&output);
    output
}

/// Runs with `input` on standard input.
fn run_with_stdin(command: &mut Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // Written from another thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("the binary ends");
    writer
        .join()
        .expect("writer thread")
        .expect("stdin accepted");
    assert_no_key(&output);
    output
}

fn assert_no_key(output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.contains(KEY), "API key printed on stdout: {stdout}");
    assert!(!stderr.contains(KEY), "API key printed on stderr: {stderr}");
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

/// Exit 0 and stdout as exactly one JSON value.
fn json_ok(output: &Output) -> Value {
    assert_eq!(
        code(output),
        Some(0),
        "expected success; stderr: {}",
        stderr(output)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON value ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn str_field<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {value}"))
}

/// An emulator served by a runtime the test owns, alive while child
/// processes talk to it one after another.
struct Server {
    emulator: Emulator,
    // Declared last so it outlives the emulator it drives.
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let emulator = runtime
            .block_on(Emulator::start(EmulatorConfig::default()))
            .expect("emulator starts");
        Self {
            emulator,
            _runtime: runtime,
        }
    }

    /// The binary pointed at this emulator with the test key.
    fn openai(&self) -> Command {
        let mut command = openai();
        command
            .arg("--base-url")
            .arg(self.emulator.base_url())
            .arg("--api-key")
            .arg(KEY);
        command
    }

    fn create_upload(&self, bytes: usize, mime: &str) -> String {
        let upload = json_ok(&run(self.openai().args([
            "uploads",
            "create",
            "--filename",
            "data.jsonl",
            "--purpose",
            "fine-tune",
            "--bytes",
            &bytes.to_string(),
            "--mime-type",
            mime,
        ])));
        assert_eq!(upload["status"], "pending", "{upload}");
        assert_eq!(upload["bytes"], bytes, "{upload}");
        str_field(&upload, "id").to_string()
    }

    fn add_part(&self, upload_id: &str, data: &Path) -> String {
        let part = json_ok(&run(self
            .openai()
            .args([
                "uploads",
                "parts",
                "create",
                "--upload-id",
                upload_id,
                "--data",
            ])
            .arg(data)));
        assert_eq!(part["object"], "upload.part", "{part}");
        assert_eq!(part["upload_id"], upload_id, "{part}");
        str_field(&part, "id").to_string()
    }
}

fn jsonl(lines: usize) -> Vec<u8> {
    (0..lines)
        .map(|i| format!("{{\"messages\":[{{\"role\":\"user\",\"content\":\"line {i}\"}}]}}\n"))
        .collect::<String>()
        .into_bytes()
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------- help

fn help(args: &[&str]) -> String {
    let output = run(openai().args(args).arg("--help"));
    assert_eq!(code(&output), Some(0), "stderr: {}", stderr(&output));
    assert!(output.stderr.is_empty(), "stderr: {}", stderr(&output));
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

#[test]
fn help_texts() {
    let cases: [(&str, &[&str]); 12] = [
        ("help_root", &[]),
        ("help_uploads", &["uploads"]),
        ("help_uploads_create", &["uploads", "create"]),
        ("help_uploads_parts_create", &["uploads", "parts", "create"]),
        ("help_uploads_complete", &["uploads", "complete"]),
        ("help_uploads_cancel", &["uploads", "cancel"]),
        ("help_uploads_upload", &["uploads", "upload"]),
        ("help_files", &["files"]),
        ("help_files_content", &["files", "content"]),
        ("help_emulator_serve", &["emulator", "serve"]),
        ("help_spec_diff", &["spec", "diff"]),
        ("help_spec_extract", &["spec", "extract"]),
    ];
    for (name, args) in cases {
        insta::assert_snapshot!(name, help(args));
    }
}

#[test]
fn version_is_the_crate_version() {
    let output = run(openai().arg("--version"));
    assert_eq!(code(&output), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("openai {}", env!("CARGO_PKG_VERSION"))
    );
}

// ---------------------------------------------------------------- flows

#[test]
fn create_parts_complete_download_delete_across_processes() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let content = jsonl(40);
    let (first, second) = content.split_at(content.len() / 3);
    let part1 = dir.path().join("part1");
    let part2 = dir.path().join("part2");
    std::fs::write(&part1, first).expect("write part1");
    std::fs::write(&part2, second).expect("write part2");

    let upload_id = server.create_upload(content.len(), "text/jsonl");
    let a = server.add_part(&upload_id, &part1);
    let b = server.add_part(&upload_id, &part2);
    assert_ne!(a, b);

    let completed = json_ok(&run(server.openai().args([
        "uploads",
        "complete",
        "--upload-id",
        &upload_id,
        "--part-id",
        &a,
        "--part-id",
        &b,
        "--md5",
        &common::md5_hex(&content),
    ])));
    assert_eq!(completed["id"], upload_id.as_str());
    assert_eq!(completed["status"], "completed", "{completed}");
    let file = &completed["file"];
    assert_eq!(file["object"], "file", "{completed}");
    assert_eq!(file["bytes"], content.len(), "{completed}");
    assert_eq!(file["filename"], "data.jsonl", "{completed}");
    assert_eq!(file["purpose"], "fine-tune", "{completed}");
    let file_id = str_field(file, "id").to_string();

    let out = dir.path().join("out");
    let written = run(server
        .openai()
        .args(["files", "content", "--file-id", &file_id, "--output"])
        .arg(&out));
    assert_eq!(code(&written), Some(0), "stderr: {}", stderr(&written));
    assert!(written.stdout.is_empty(), "--output still wrote to stdout");
    assert_eq!(std::fs::read(&out).expect("output written"), content);

    let streamed = run(server
        .openai()
        .args(["files", "content", "--file-id", &file_id]));
    assert_eq!(code(&streamed), Some(0), "stderr: {}", stderr(&streamed));
    assert_eq!(streamed.stdout, content);

    let retrieved = json_ok(&run(server.openai().args([
        "files",
        "retrieve",
        "--file-id",
        &file_id,
    ])));
    assert_eq!(retrieved["id"], file_id.as_str());
    assert_eq!(retrieved["bytes"], content.len());

    let deleted = json_ok(&run(server.openai().args([
        "files",
        "delete",
        "--file-id",
        &file_id,
    ])));
    assert_eq!(deleted["id"], file_id.as_str());
    assert_eq!(deleted["deleted"], true, "{deleted}");

    let gone = run(server
        .openai()
        .args(["files", "retrieve", "--file-id", &file_id]));
    assert_eq!(code(&gone), Some(1), "stderr: {}", stderr(&gone));
    assert!(stderr(&gone).contains("404"), "stderr: {}", stderr(&gone));

    // Every request carried the key the command line was given.
    let requests = server.emulator.requests();
    assert!(requests.len() >= 9, "{requests:?}");
    let bearer = format!("Bearer {KEY}");
    assert!(
        requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some(bearer.as_str())),
        "{requests:?}"
    );
}

#[test]
fn part_from_standard_input() {
    let server = Server::start();
    let content = jsonl(7);
    let upload_id = server.create_upload(content.len(), "text/jsonl");

    let part = json_ok(&run_with_stdin(
        server.openai().args([
            "uploads",
            "parts",
            "create",
            "--upload-id",
            &upload_id,
            "--data",
            "-",
        ]),
        &content,
    ));
    let part_id = str_field(&part, "id").to_string();
    assert_eq!(
        server
            .emulator
            .received_parts()
            .iter()
            .map(|p| p.bytes)
            .collect::<Vec<_>>(),
        [content.len() as u64]
    );

    let completed = json_ok(&run(server.openai().args([
        "--format",
        "json",
        "uploads",
        "complete",
        "--upload-id",
        &upload_id,
        "--part-id",
        &part_id,
        "--md5",
        &common::md5_hex(&content),
    ])));
    assert_eq!(completed["status"], "completed", "{completed}");
    assert_eq!(completed["file"]["bytes"], content.len());
    let file_id = str_field(&completed["file"], "id").to_string();

    let streamed = run(server
        .openai()
        .args(["files", "content", "--file-id", &file_id]));
    assert_eq!(code(&streamed), Some(0), "stderr: {}", stderr(&streamed));
    assert_eq!(streamed.stdout, content);
}

#[test]
fn cancel_a_pending_upload_then_not_a_completed_one() {
    let server = Server::start();
    let upload_id = server.create_upload(5, "text/jsonl");
    let cancelled = json_ok(&run(server.openai().args([
        "uploads",
        "cancel",
        "--upload-id",
        &upload_id,
    ])));
    assert_eq!(cancelled["id"], upload_id.as_str());
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    let dir = tempfile::tempdir().expect("tempdir");
    let part = dir.path().join("part");
    std::fs::write(&part, b"12345").expect("write part");
    let upload_id = server.create_upload(5, "text/jsonl");
    let part_id = server.add_part(&upload_id, &part);
    let completed = json_ok(&run(server.openai().args([
        "uploads",
        "complete",
        "--upload-id",
        &upload_id,
        "--part-id",
        &part_id,
    ])));
    assert_eq!(completed["status"], "completed", "{completed}");
    let refused = run(server
        .openai()
        .args(["uploads", "cancel", "--upload-id", &upload_id]));
    assert_eq!(code(&refused), Some(1), "stderr: {}", stderr(&refused));
    assert!(
        stderr(&refused).contains("completed"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn format_json_is_one_line_and_pretty_is_indented() {
    let server = Server::start();
    let args = [
        "uploads",
        "create",
        "--filename",
        "a.jsonl",
        "--purpose",
        "batch",
        "--bytes",
        "5",
        "--mime-type",
        "text/jsonl",
    ];
    let compact = run(server.openai().args(["--format", "json"]).args(args));
    let text = String::from_utf8_lossy(&compact.stdout).into_owned();
    assert_eq!(json_ok(&compact)["purpose"], "batch");
    assert_eq!(text.lines().count(), 1, "{text}");

    let pretty = run(server.openai().args(args));
    let text = String::from_utf8_lossy(&pretty.stdout).into_owned();
    assert_eq!(json_ok(&pretty)["purpose"], "batch");
    assert!(text.lines().count() > 3, "{text}");
    assert!(text.contains("\n  \""), "{text}");
}

#[test]
fn one_command_upload_prints_only_the_upload() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("train.jsonl");
    let content = jsonl(80);
    assert!(content.len() > 3 * 1024, "want several parts");
    std::fs::write(&path, &content).expect("write input");

    let output = run(server
        .openai()
        .args(["uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "fine-tune", "--part-size", "1024"]));
    let upload = json_ok(&output);
    assert!(
        output.stderr.is_empty(),
        "stderr is a pipe, so no progress bar: {}",
        stderr(&output)
    );
    assert_eq!(upload["status"], "completed", "{upload}");
    assert_eq!(upload["filename"], "train.jsonl", "{upload}");
    assert_eq!(upload["file"]["bytes"], content.len(), "{upload}");

    let parts = server.emulator.received_parts();
    assert_eq!(parts.len(), content.len().div_ceil(1024), "{parts:?}");
    assert!(parts.iter().all(|p| p.bytes <= 1024), "{parts:?}");
    assert_eq!(
        parts.iter().map(|p| p.bytes).sum::<u64>(),
        content.len() as u64
    );

    let file_id = str_field(&upload["file"], "id").to_string();
    let streamed = run(server
        .openai()
        .args(["files", "content", "--file-id", &file_id]));
    assert_eq!(streamed.stdout, content);
}

#[test]
fn one_command_upload_retries_through_server_errors() {
    let server = Server::start();
    server.emulator.set_faults(Faults {
        scope: FaultScope::PartsOnly,
        server_error_every: Some(2),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("train.jsonl");
    let content = jsonl(40);
    std::fs::write(&path, &content).expect("write input");

    let upload = json_ok(&run(server
        .openai()
        .args(["uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "fine-tune", "--part-size", "1024"])));
    assert_eq!(upload["status"], "completed", "{upload}");
    assert_eq!(upload["file"]["bytes"], content.len(), "{upload}");
    let faulted = server
        .emulator
        .requests()
        .iter()
        .filter(|r| r.fault.is_some())
        .count();
    assert!(faulted > 0, "no fault was injected");
}

#[test]
fn one_command_upload_in_strict_mode_with_resume_state() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("train.jsonl");
    let state = dir.path().join("train.state");
    let content = jsonl(30);
    std::fs::write(&path, &content).expect("write input");

    let upload = json_ok(&run(server
        .openai()
        .args(["--strict", "uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "batch", "--part-size", "1000", "--resume"])
        .arg(&state)));
    assert_eq!(upload["status"], "completed", "{upload}");
    assert_eq!(upload["file"]["bytes"], content.len(), "{upload}");
    assert!(!state.exists(), "a finished upload leaves no resume state");
}

#[test]
fn one_command_upload_refuses_a_mime_type_the_purpose_forbids() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"plain text\n").expect("write input");

    let output = run(server
        .openai()
        .args(["uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "fine-tune"]));
    assert_eq!(code(&output), Some(1), "stderr: {}", stderr(&output));
    assert!(stderr(&output).contains("mime_type"), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
    assert!(server.emulator.requests().is_empty());
}

#[test]
fn organization_and_project_are_sent() {
    let server = Server::start();
    let output = run(server.openai().args([
        "--organization",
        "org-cli",
        "--project",
        "proj-cli",
        "files",
        "retrieve",
        "--file-id",
        "file-missing",
    ]));
    assert_eq!(code(&output), Some(1), "stderr: {}", stderr(&output));
    let output = run(server
        .openai()
        .env("OPENAI_ORG_ID", "org-env")
        .env("OPENAI_PROJECT_ID", "proj-env")
        .args(["files", "retrieve", "--file-id", "file-missing"]));
    assert_eq!(code(&output), Some(1), "stderr: {}", stderr(&output));

    let sent: Vec<_> = server
        .emulator
        .requests()
        .into_iter()
        .map(|r| (r.organization, r.project))
        .collect();
    let pair = |o: &str, p: &str| (Some(o.to_string()), Some(p.to_string()));
    assert_eq!(
        sent,
        [pair("org-cli", "proj-cli"), pair("org-env", "proj-env")]
    );
}

#[test]
fn emulator_flag_needs_no_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.txt");
    let content = b"hello from the emulator flag\n".repeat(50);
    std::fs::write(&path, &content).expect("write input");

    let upload = json_ok(&run(openai()
        .args(["--emulator", "uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "assistants"])));
    assert_eq!(upload["status"], "completed", "{upload}");
    assert_eq!(upload["purpose"], "assistants", "{upload}");
    assert_eq!(upload["file"]["bytes"], content.len(), "{upload}");
}

#[test]
fn readme_main_command() {
    let name = if manifest_dir().join("README.md").exists() {
        "README.md"
    } else {
        "Cargo.toml"
    };
    let size = std::fs::metadata(manifest_dir().join(name))
        .expect("file to upload")
        .len();
    let output = run(openai().current_dir(manifest_dir()).args([
        "--emulator",
        "uploads",
        "upload",
        name,
        "--purpose",
        "assistants",
        "--part-size",
        "4096",
    ]));
    let upload = json_ok(&output);
    assert_eq!(upload["status"], "completed", "{upload}");
    assert_eq!(upload["filename"], name, "{upload}");
    assert_eq!(upload["file"]["bytes"], size, "{upload}");
}

#[test]
fn emulator_serve_answers_other_processes() {
    let mut child = openai()
        .args(["emulator", "serve", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("emulator starts");
    let mut line = String::new();
    let read = BufReader::new(child.stderr.take().expect("piped stderr")).read_line(&mut line);
    let base_url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .map(str::to_string);
    let answered = base_url.as_ref().map(|url| {
        run(openai().args(["--base-url", url, "--api-key", KEY]).args([
            "uploads",
            "cancel",
            "--upload-id",
            "upload_missing",
        ]))
    });
    // Stopped before asserting, so a failure leaves no server behind.
    let _ = child.kill();
    let _ = child.wait();

    read.expect("stderr readable");
    let base_url = base_url.unwrap_or_else(|| panic!("no URL announced: {line:?}"));
    assert!(base_url.ends_with("/v1"), "{line}");
    assert!(
        !base_url.ends_with(":0/v1"),
        "the real port is announced: {line}"
    );
    let answered = answered.expect("ran");
    assert_eq!(code(&answered), Some(1), "stderr: {}", stderr(&answered));
    assert!(stderr(&answered).contains("404"), "{}", stderr(&answered));
}

// ---------------------------------------------------------------- exit codes

#[test]
fn unknown_flag_is_usage() {
    let output = run(openai().args(["uploads", "create", "--no-such-flag"]));
    assert_eq!(code(&output), Some(2));
    assert!(
        stderr(&output).contains("--no-such-flag"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn missing_required_flag_is_usage() {
    let output = run(openai().args([
        "--api-key",
        KEY,
        "uploads",
        "create",
        "--filename",
        "a.jsonl",
        "--purpose",
        "fine-tune",
        "--bytes",
        "3",
    ]));
    assert_eq!(code(&output), Some(2));
    assert!(
        stderr(&output).contains("--mime-type"),
        "{}",
        stderr(&output)
    );

    let output = run(openai().args(["--api-key", KEY, "uploads", "complete", "--upload-id", "u"]));
    assert_eq!(code(&output), Some(2));
    assert!(stderr(&output).contains("--part-id"), "{}", stderr(&output));
}

#[test]
fn bad_purpose_value_is_usage() {
    let output = run(openai().args([
        "uploads",
        "create",
        "--filename",
        "a.jsonl",
        "--purpose",
        "training",
        "--bytes",
        "3",
        "--mime-type",
        "text/jsonl",
    ]));
    assert_eq!(code(&output), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("--purpose") && text.contains("training"),
        "{text}"
    );
}

#[test]
fn missing_key_is_usage() {
    let output = run(openai().args([
        "--base-url",
        "http://127.0.0.1:9/v1",
        "files",
        "retrieve",
        "--file-id",
        "file-abc",
    ]));
    assert_eq!(code(&output), Some(2), "stderr: {}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("api_key"), "{text}");
    assert!(text.contains("OPENAI_API_KEY"), "{text}");
    assert!(output.stdout.is_empty());
}

#[test]
fn unreadable_mtls_files_are_usage_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-client.pem");
    let output = run(openai()
        .args(["--api-key", KEY, "--base-url", "https://127.0.0.1:9/v1"])
        .arg("--mtls-client-cert-file")
        .arg(&missing)
        .arg("--mtls-client-key-file")
        .arg(&missing)
        .args(["files", "retrieve", "--file-id", "file-abc"]));
    assert_eq!(code(&output), Some(2), "stderr: {}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("mtls_client_cert_file") && text.contains("no-such-client.pem"),
        "{text}"
    );

    // From the environment too; an empty flag turns it off again.
    let mut from_env = openai();
    from_env
        .env("OPENAI_MTLS_CLIENT_CERT_FILE", &missing)
        .env("OPENAI_MTLS_CLIENT_KEY_FILE", &missing)
        .args(["--api-key", KEY, "--base-url", "http://127.0.0.1:9/v1"]);
    let output = run(from_env.args(["files", "retrieve", "--file-id", "file-abc"]));
    assert_eq!(code(&output), Some(2), "stderr: {}", stderr(&output));
    assert!(stderr(&output).contains("no-such-client.pem"));
    let output = run(openai()
        .env("OPENAI_MTLS_CLIENT_CERT_FILE", &missing)
        .env("OPENAI_MTLS_CLIENT_KEY_FILE", &missing)
        .args(["--api-key", KEY, "--base-url", "http://127.0.0.1:9/v1"])
        .args(["--mtls-client-cert-file", "", "--mtls-client-key-file", ""])
        .args(["files", "retrieve", "--file-id", "file-abc"]));
    // Nothing listens on port 9: a transport failure, past the configuration.
    assert_eq!(code(&output), Some(3), "stderr: {}", stderr(&output));
}

#[test]
fn key_from_the_environment_is_used_and_not_printed() {
    let server = Server::start();
    let output = run(openai()
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", server.emulator.base_url())
        .args(["files", "retrieve", "--file-id", "file-missing"]));
    assert_eq!(code(&output), Some(1), "stderr: {}", stderr(&output));
    let requests = server.emulator.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[test]
fn cancel_unknown_upload_is_404() {
    let server = Server::start();
    let output =
        run(server
            .openai()
            .args(["uploads", "cancel", "--upload-id", "upload_doesnotexist"]));
    assert_eq!(code(&output), Some(1), "stderr: {}", stderr(&output));
    assert!(stderr(&output).contains("404"), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
}

#[test]
fn complete_with_wrong_byte_count_is_refused() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let part = dir.path().join("part");
    std::fs::write(&part, b"abcd").expect("write part");
    let upload_id = server.create_upload(10, "text/jsonl");
    let part_id = server.add_part(&upload_id, &part);

    let output = run(server.openai().args([
        "uploads",
        "complete",
        "--upload-id",
        &upload_id,
        "--part-id",
        &part_id,
    ]));
    assert_eq!(code(&output), Some(1), "stderr: {}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("sum_equals_bytes") || text.contains("declared"),
        "{text}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn wrong_md5_is_refused_by_the_server() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let part = dir.path().join("part");
    let content = jsonl(3);
    std::fs::write(&part, &content).expect("write part");
    let upload_id = server.create_upload(content.len(), "text/jsonl");
    let part_id = server.add_part(&upload_id, &part);

    let output = run(server.openai().args([
        "uploads",
        "complete",
        "--upload-id",
        &upload_id,
        "--part-id",
        &part_id,
        "--md5",
        &common::md5_hex(b"something else"),
    ]));
    assert_eq!(code(&output), Some(1), "stderr: {}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("400") && text.contains("md5"), "{text}");
}

#[test]
fn malformed_md5_is_refused_before_sending() {
    let server = Server::start();
    let output = run(server.openai().args([
        "uploads",
        "complete",
        "--upload-id",
        "upload_abc",
        "--part-id",
        "part_abc",
        "--md5",
        "not-an-md5",
    ]));
    assert_eq!(code(&output), Some(1), "stderr: {}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("md5"), "{text}");
    assert!(text.contains("before sending"), "{text}");
    assert!(
        server.emulator.requests().is_empty(),
        "{:?}",
        server.emulator.requests()
    );
}

#[test]
fn connection_refused_is_transport() {
    let output = run(openai().args([
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--api-key",
        KEY,
        "files",
        "retrieve",
        "--file-id",
        "file-abc",
    ]));
    assert_eq!(code(&output), Some(3), "stderr: {}", stderr(&output));
    assert!(stderr(&output).contains("transport"), "{}", stderr(&output));
}

#[test]
fn missing_part_file_is_local() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-part");
    let output = run(server
        .openai()
        .args([
            "uploads",
            "parts",
            "create",
            "--upload-id",
            "upload_abc",
            "--data",
        ])
        .arg(&missing));
    assert_eq!(code(&output), Some(4), "stderr: {}", stderr(&output));
    assert!(
        stderr(&output).contains("no-such-part"),
        "{}",
        stderr(&output)
    );
    assert!(server.emulator.requests().is_empty());
}

#[test]
fn missing_upload_file_is_local() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-file.jsonl");
    let output = run(openai()
        .args(["--emulator", "uploads", "upload"])
        .arg(&missing)
        .args(["--purpose", "fine-tune"]));
    assert_eq!(code(&output), Some(4), "stderr: {}", stderr(&output));
    assert!(
        stderr(&output).contains("no-such-file.jsonl"),
        "{}",
        stderr(&output)
    );
}

// ---------------------------------------------------------------- spec

#[test]
fn spec_diff_of_todays_upstream_keeps_the_recorded_differences() {
    let Some(upstream) = common::upstream_spec() else {
        return;
    };
    let output = run(openai().args(["spec", "diff", "--upstream"]).arg(&upstream));
    assert_eq!(code(&output), Some(0), "stderr: {}", stderr(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("kept on purpose (15):"), "{report}");
    assert!(
        report.contains("content type changed from application/octet-stream"),
        "{report}"
    );

    let output = run(openai()
        .args(["--format", "json", "spec", "diff", "--upstream"])
        .arg(&upstream));
    assert_eq!(code(&output), Some(0), "stderr: {}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["changes"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["kept"].as_array().map(Vec::len),
        Some(15),
        "{report}"
    );
    assert_eq!(report["kept"][0]["difference"], "media-type", "{report}");
}

#[test]
fn spec_diff_of_a_spec_with_itself_is_equal() {
    let vendored = manifest_dir().join("openapi/api-definition.yaml");
    if !vendored.exists() {
        println!("skipped: no vendored spec at {}", vendored.display());
        return;
    }
    let output = run(openai()
        .args(["spec", "diff", "--upstream"])
        .arg(&vendored)
        .arg("--vendored")
        .arg(&vendored));
    assert_eq!(
        code(&output),
        Some(0),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn spec_extract_prints_openapi_303() {
    let Some(upstream) = common::upstream_spec() else {
        return;
    };
    let output = run(openai()
        .args(["spec", "extract", "--upstream"])
        .arg(&upstream));
    let spec = json_ok(&output);
    assert_eq!(spec["openapi"], "3.0.3");
    assert!(
        spec["paths"].as_object().is_some_and(|p| !p.is_empty()),
        "{spec}"
    );
}

#[test]
fn spec_diff_of_a_missing_file_is_local() {
    let output = run(openai().args(["spec", "diff", "--upstream", "/nonexistent/openapi.yaml"]));
    assert_eq!(code(&output), Some(4), "stderr: {}", stderr(&output));
    assert!(stderr(&output).contains("/nonexistent/openapi.yaml"));
}
