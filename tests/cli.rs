#![cfg(feature = "cli")]
//! The `openai` binary run as a child process, the way a user or a script
//! runs it: help texts, multi-step flows across processes against one shared
//! emulator, `--emulator` mode, exit codes and the spec commands.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use openai_uploads::emulator::{Emulator, FaultScope, Faults};
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
        let (emulator, runtime) = common::emulator_on_own_runtime(Faults::default());
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
    let cases: [(&str, &[&str]); 22] = [
        ("help_root", &[]),
        ("help_uploads", &["uploads"]),
        ("help_uploads_create", &["uploads", "create"]),
        ("help_uploads_parts", &["uploads", "parts"]),
        ("help_uploads_parts_create", &["uploads", "parts", "create"]),
        ("help_uploads_colon_parts", &["uploads:parts"]),
        (
            "help_uploads_colon_parts_create",
            &["uploads:parts", "create"],
        ),
        ("help_uploads_complete", &["uploads", "complete"]),
        ("help_uploads_cancel", &["uploads", "cancel"]),
        ("help_uploads_upload", &["uploads", "upload"]),
        ("help_files", &["files"]),
        ("help_files_retrieve", &["files", "retrieve"]),
        ("help_files_content", &["files", "content"]),
        ("help_files_delete", &["files", "delete"]),
        ("help_files_list", &["files", "list"]),
        ("help_emulator", &["emulator"]),
        ("help_emulator_serve", &["emulator", "serve"]),
        ("help_spec", &["spec"]),
        ("help_spec_diff", &["spec", "diff"]),
        ("help_spec_extract", &["spec", "extract"]),
        ("help_completion", &["completion"]),
        ("help_files_short", &["files", "-h"]),
    ];
    for (name, args) in cases {
        let text = if args.last() == Some(&"-h") {
            let output = run(openai().args(args));
            assert_eq!(code(&output), Some(0), "stderr: {}", stderr(&output));
            String::from_utf8(output.stdout).expect("help is UTF-8")
        } else {
            help(args)
        };
        // Every help ends with the exit codes, after an example.
        assert!(text.contains("Exit codes:"), "{name}: {text}");
        assert!(text.contains("Example"), "{name}: {text}");
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn global_options_are_shown_where_they_act_and_only_there() {
    for args in [
        &["uploads", "create"][..],
        &["uploads:parts", "create"],
        &["files", "list"],
        &[],
    ] {
        let text = help(args);
        assert!(text.contains("Global options:"), "{args:?}: {text}");
        assert!(text.contains("--transform <GJSON>"), "{args:?}: {text}");
    }
    for args in [
        &["emulator", "serve"][..],
        &["spec", "diff"],
        &["spec", "extract"],
    ] {
        let text = help(args);
        assert!(!text.contains("Global options:"), "{args:?}: {text}");
        assert!(!text.contains("--api-key <API_KEY>"), "{args:?}: {text}");
    }
    assert!(help(&[]).contains("OPENAI_LOG"));
    assert!(help(&["files"]).contains("retrieve, content, delete, list"));
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
    let content = jsonl(200);
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
fn format_jsonl_is_one_line_and_json_auto_are_indented() {
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
    let compact = run(server.openai().args(["--format", "jsonl"]).args(args));
    let text = String::from_utf8_lossy(&compact.stdout).into_owned();
    assert_eq!(json_ok(&compact)["purpose"], "batch");
    assert_eq!(text.lines().count(), 1, "{text}");

    for format in [None, Some("auto"), Some("json")] {
        let mut command = server.openai();
        if let Some(format) = format {
            command.args(["--format", format]);
        }
        let indented = run(command.args(args));
        let text = String::from_utf8_lossy(&indented.stdout).into_owned();
        assert_eq!(json_ok(&indented)["purpose"], "batch", "{format:?}");
        assert!(text.lines().count() > 3, "{format:?}: {text}");
        assert!(text.contains("\n  \""), "{format:?}: {text}");
    }
}

#[test]
fn one_command_upload_prints_only_the_upload() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("train.jsonl");
    let content = jsonl(400);
    assert!(content.len() > 3 * 4096, "want several parts");
    std::fs::write(&path, &content).expect("write input");

    let output = run(server
        .openai()
        .args(["uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "fine-tune", "--part-size", "4096"]));
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
    assert_eq!(parts.len(), content.len().div_ceil(4096), "{parts:?}");
    assert!(parts.iter().all(|p| p.bytes <= 4096), "{parts:?}");
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
    server.emulator.set_faults(
        Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_server_error_every(2),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("train.jsonl");
    let content = jsonl(200);
    std::fs::write(&path, &content).expect("write input");

    let upload = json_ok(&run(server
        .openai()
        .args(["uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "fine-tune", "--part-size", "4096"])));
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
    let content = jsonl(150);
    std::fs::write(&path, &content).expect("write input");

    let upload = json_ok(&run(server
        .openai()
        .args(["--strict", "uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "batch", "--part-size", "4096", "--resume"])
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
    // A rule refusing the value given is a usage error, as clap's refusals are.
    assert_eq!(code(&output), Some(2), "stderr: {}", stderr(&output));
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
    assert_eq!(code(&output), Some(2), "stderr: {}", stderr(&output));
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
    assert!(report.contains("kept on purpose (25):"), "{report}");
    // One line per reason, with its count.
    assert!(report.contains("\n  16 added-responses: "), "{report}");
    assert!(report.contains("\n  1 media-type: "), "{report}");
    assert_eq!(report.matches("added-responses").count(), 1, "{report}");

    let output = run(openai()
        .args(["--format", "json", "spec", "diff", "--upstream"])
        .arg(&upstream));
    assert_eq!(code(&output), Some(0), "stderr: {}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["changes"], serde_json::json!([]), "{report}");
    let kept = report["kept"].as_array().expect("kept differences");
    assert_eq!(kept.len(), 25, "{report}");
    assert!(
        kept.iter().any(|k| k["difference"] == "media-type"),
        "{report}"
    );
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

// ---------------------------------------------------------------- official spellings

/// A request as seen on the wire: method, path with ids blanked, media type.
type WireRequest = (String, String, Option<String>);

/// Uploads `content` as one part with `part_args` (the spelling of `parts
/// create`, then its flags; `{}` stands for the Upload id), completes it, and
/// returns the requests that reached the wire (ids blanked) and the stored bytes.
fn one_part_upload(
    server: &Server,
    content: &[u8],
    part_args: &[&str],
    stdin: Option<&[u8]>,
    dir: &Path,
) -> (Vec<WireRequest>, Vec<u8>) {
    let before = server.emulator.requests().len();
    let upload_id = server.create_upload(content.len(), "text/jsonl");
    let args: Vec<String> = part_args
        .iter()
        .map(|a| a.replace("{}", &upload_id))
        .collect();
    let mut command = server.openai();
    command.current_dir(dir).args(&args);
    let part = json_ok(&match stdin {
        Some(input) => run_with_stdin(&mut command, input),
        None => run(&mut command),
    });
    let part_id = str_field(&part, "id").to_string();
    let completed = json_ok(&run(server.openai().args([
        "uploads",
        "complete",
        "--upload-id",
        &upload_id,
        "--part-id",
        &part_id,
        "--md5",
        &common::md5_hex(content),
    ])));
    let file_id = str_field(&completed["file"], "id").to_string();
    let stored = run(server
        .openai()
        .args(["files", "content", "--file-id", &file_id]));
    let wire = server.emulator.requests()[before..]
        .iter()
        .map(|r| {
            let path = r
                .path
                .replace(&upload_id, "UPLOAD")
                .replace(&file_id, "FILE");
            // The multipart boundary differs from run to run.
            let kind = r
                .content_type
                .as_deref()
                .map(|c| c.split(';').next().unwrap_or_default().to_string());
            (r.method.clone(), path, kind)
        })
        .collect();
    (wire, stored.stdout)
}

#[test]
fn parts_create_spellings_send_the_same_request() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let content = jsonl(9);
    std::fs::write(dir.path().join("part.bin"), &content).expect("write part");
    std::fs::write(dir.path().join("@odd.bin"), &content).expect("write part");

    let ours = one_part_upload(
        &server,
        &content,
        &[
            "uploads",
            "parts",
            "create",
            "--upload-id",
            "{}",
            "--data",
            "part.bin",
        ],
        None,
        dir.path(),
    );
    assert_eq!(ours.1, content);
    assert!(
        ours.0.contains(&(
            "POST".into(),
            "/v1/uploads/UPLOAD/parts".into(),
            Some("multipart/form-data".into())
        )),
        "{:?}",
        ours.0
    );
    let spellings: [(&[&str], Option<&[u8]>); 4] = [
        (
            &[
                "uploads:parts",
                "create",
                "--upload-id",
                "{}",
                "--data",
                "@part.bin",
            ],
            None,
        ),
        (
            &[
                "uploads",
                "parts",
                "create",
                "--upload-id",
                "{}",
                "--data",
                "@-",
            ],
            Some(&content),
        ),
        (
            &[
                "uploads:parts",
                "create",
                "--upload-id",
                "{}",
                "--data",
                "-",
            ],
            Some(&content),
        ),
        (
            &[
                "uploads:parts",
                "create",
                "--upload-id",
                "{}",
                "--data",
                "\\@odd.bin",
            ],
            None,
        ),
    ];
    for (args, stdin) in spellings {
        let theirs = one_part_upload(&server, &content, args, stdin, dir.path());
        assert_eq!(theirs, ours, "{args:?}");
    }
    let sizes: Vec<u64> = server
        .emulator
        .received_parts()
        .iter()
        .map(|p| p.bytes)
        .collect();
    assert_eq!(sizes, [content.len() as u64; 5]);
}

#[test]
fn data_at_a_missing_file_names_the_file_not_the_at() {
    let server = Server::start();
    let output = run(server.openai().args([
        "uploads:parts",
        "create",
        "--upload-id",
        "upload_abc",
        "--data",
        "@/nonexistent/part.bin",
    ]));
    assert_eq!(code(&output), Some(4), "stderr: {}", stderr(&output));
    assert!(
        stderr(&output).contains("/nonexistent/part.bin"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("@/nonexistent"),
        "{}",
        stderr(&output)
    );
    assert!(server.emulator.requests().is_empty());
}

/// The File's lifetime (`expires_at - created_at`) after an upload created with `expires`.
fn file_lifetime(server: &Server, expires: &[&str]) -> i64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.jsonl");
    std::fs::write(&path, jsonl(3)).expect("write input");
    let upload = json_ok(&run(server
        .openai()
        .args(["uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "fine-tune"])
        .args(expires)));
    let file = &upload["file"];
    file["expires_at"].as_i64().expect("expires_at")
        - file["created_at"].as_i64().expect("created_at")
}

#[test]
fn expires_after_spellings_give_the_same_expiry() {
    let server = Server::start();
    let spellings: [&[&str]; 5] = [
        &["--expires-after-seconds", "7200"],
        &[
            "--expires-after.anchor",
            "created_at",
            "--expires-after.seconds",
            "7200",
        ],
        &["--expires-after.seconds", "7200"],
        &["--expires-after", "{anchor: created_at, seconds: 7200}"],
        &[
            "--expires-after",
            r#"{"anchor": "created_at", "seconds": 7200}"#,
        ],
    ];
    for expires in spellings {
        assert_eq!(file_lifetime(&server, expires), 7200, "{expires:?}");
    }

    // The same on `uploads create`, checked on the File it ends in.
    let dir = tempfile::tempdir().expect("tempdir");
    let part = dir.path().join("part");
    std::fs::write(&part, b"12345").expect("write part");
    let mut lifetimes = Vec::new();
    for expires in [
        &["--expires-after-seconds", "3600"][..],
        &[
            "--expires-after.anchor",
            "created_at",
            "--expires-after.seconds",
            "3600",
        ],
        &["--expires-after", "{anchor: created_at, seconds: 3600}"],
    ] {
        let upload = json_ok(&run(server
            .openai()
            .args([
                "uploads",
                "create",
                "--filename",
                "a.txt",
                "--purpose",
                "assistants",
            ])
            .args(["--bytes", "5", "--mime-type", "text/plain"])
            .args(expires)));
        let upload_id = str_field(&upload, "id").to_string();
        let part_id = server.add_part(&upload_id, &part);
        let done = json_ok(&run(server.openai().args([
            "uploads",
            "complete",
            "--upload-id",
            &upload_id,
            "--part-id",
            &part_id,
        ])));
        lifetimes.push(
            done["file"]["expires_at"].as_i64().expect("expires_at")
                - done["file"]["created_at"].as_i64().expect("created_at"),
        );
    }
    assert_eq!(lifetimes, [3600; 3]);
}

#[test]
fn expires_after_out_of_range_or_malformed_is_usage() {
    for expires in [
        &["--expires-after.seconds", "60"][..],
        &["--expires-after-seconds", "99999999"],
        &["--expires-after", "{anchor: updated_at, seconds: 7200}"],
        &["--expires-after.anchor", "created_at"],
        &[
            "--expires-after",
            "{anchor: created_at, seconds: 7200}",
            "--expires-after-seconds",
            "7200",
        ],
    ] {
        let output = run(openai()
            .args(["--emulator", "uploads", "create", "--filename", "a.jsonl"])
            .args([
                "--purpose",
                "batch",
                "--bytes",
                "3",
                "--mime-type",
                "text/jsonl",
            ])
            .args(expires));
        assert_eq!(code(&output), Some(2), "{expires:?}: {}", stderr(&output));
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn content_output_short_and_long_flags_write_the_same_file() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let content = jsonl(12);
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, &content).expect("write input");
    let upload = json_ok(&run(server
        .openai()
        .args(["uploads", "upload"])
        .arg(&input)
        .args(["--purpose", "batch"])));
    let file_id = str_field(&upload["file"], "id").to_string();
    for flag in ["-o", "--output"] {
        let out = dir.path().join(format!("out{flag}"));
        let written = run(server
            .openai()
            .args(["files", "content", "--file-id", &file_id, flag])
            .arg(&out));
        assert_eq!(code(&written), Some(0), "{flag}: {}", stderr(&written));
        assert!(written.stdout.is_empty());
        assert_eq!(std::fs::read(&out).expect("written"), content, "{flag}");
        // The mode any new file gets here, not a temporary file's owner-only one.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&out), mode(&input), "{flag}");
        }
    }
    let dash = run(server
        .openai()
        .args(["files", "content", "--file-id", &file_id, "-o", "-"]));
    assert_eq!(dash.stdout, content);

    let unwritable = dir.path().join("no-such-dir").join("out.jsonl");
    let failed = run(server
        .openai()
        .args(["files", "content", "--file-id", &file_id, "-o"])
        .arg(&unwritable));
    assert_eq!(code(&failed), Some(4), "{}", stderr(&failed));
    let text = stderr(&failed);
    assert!(text.contains(&unwritable.display().to_string()), "{text}");
    assert!(!text.contains(".download"), "{text}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with(".download")),
        "{left:?}"
    );
}

#[test]
fn purposes_user_data_and_evals_are_accepted_others_refused() {
    let server = Server::start();
    for purpose in ["user_data", "evals"] {
        let upload = json_ok(&run(server.openai().args([
            "uploads",
            "create",
            "--filename",
            "a.jsonl",
            "--purpose",
            purpose,
            "--bytes",
            "3",
            "--mime-type",
            "text/jsonl",
        ])));
        assert_eq!(upload["purpose"], purpose, "{upload}");
    }
    let refused = run(server.openai().args([
        "uploads",
        "create",
        "--filename",
        "a.jsonl",
        "--purpose",
        "assistants_output",
        "--bytes",
        "3",
        "--mime-type",
        "text/jsonl",
    ]));
    assert_eq!(code(&refused), Some(2), "{}", stderr(&refused));
    let text = stderr(&refused);
    assert!(
        text.contains("user_data") && text.contains("evals"),
        "{text}"
    );
    assert_eq!(server.emulator.requests().len(), 2);
}

// ---------------------------------------------------------------- output

/// A completed upload of a small file; returns its Upload.
fn small_upload(server: &Server, dir: &Path, name: &str) -> Value {
    let path = dir.join(name);
    std::fs::write(&path, jsonl(5)).expect("write input");
    json_ok(&run(server
        .openai()
        .args(["uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "fine-tune"])))
}

#[test]
fn every_format_parses_back_to_the_same_object() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let upload = small_upload(&server, dir.path(), "a.jsonl");
    let file_id = str_field(&upload["file"], "id").to_string();
    let retrieve = ["files", "retrieve", "--file-id", file_id.as_str()];
    let expected = json_ok(&run(server.openai().args(retrieve)));
    assert_eq!(expected["id"], file_id.as_str());

    for format in ["auto", "json", "jsonl", "raw"] {
        let output = run(server.openai().args(["--format", format]).args(retrieve));
        assert_eq!(json_ok(&output), expected, "{format}");
        let lines = String::from_utf8_lossy(&output.stdout).lines().count();
        match format {
            "jsonl" | "raw" => assert_eq!(lines, 1, "{format}"),
            _ => assert!(lines > 3, "{format}"),
        }
    }
    let yaml = run(server.openai().args(retrieve).args(["--format", "yaml"]));
    assert_eq!(code(&yaml), Some(0), "{}", stderr(&yaml));
    let parsed: Value = serde_saphyr::from_slice(&yaml.stdout).expect("stdout is YAML");
    assert_eq!(parsed, expected);
    assert!(
        !String::from_utf8_lossy(&yaml.stdout)
            .trim_start()
            .starts_with('{')
    );
}

#[test]
fn transform_takes_nested_paths_and_raw_output_drops_the_quotes() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.jsonl");
    let content = jsonl(6);
    std::fs::write(&path, &content).expect("write input");
    let upload = |extra: &[&str]| {
        run(server
            .openai()
            .args(["uploads", "upload"])
            .arg(&path)
            .args(["--purpose", "fine-tune"])
            .args(extra))
    };
    let quoted = upload(&["--transform", "file.id"]);
    let quoted: Value = json_ok(&quoted);
    let id = quoted.as_str().expect("a JSON string").to_string();
    assert!(id.starts_with("file-"), "{id}");

    let raw = upload(&["--transform", "file.id", "-r"]);
    assert_eq!(code(&raw), Some(0), "{}", stderr(&raw));
    let raw = String::from_utf8(raw.stdout).expect("UTF-8");
    assert!(
        raw.starts_with("file-") && raw.ends_with('\n') && !raw.contains('"'),
        "{raw:?}"
    );

    let bytes = json_ok(&upload(&["--transform", "file.bytes", "--raw-output"]));
    assert_eq!(bytes, content.len());
    let file = json_ok(&upload(&["--format", "jsonl", "--transform", "file"]));
    assert_eq!(file["object"], "file", "{file}");

    // Seen by the server: the id printed is the File's.
    let raw_id = raw.trim();
    let retrieved = json_ok(&run(server.openai().args([
        "files",
        "retrieve",
        "--file-id",
        raw_id,
    ])));
    assert_eq!(retrieved["bytes"], content.len());
}

#[test]
fn errors_follow_format_error_and_transform_error() {
    let server = Server::start();
    let missing = ["files", "retrieve", "--file-id", "file-missing"];

    let text = run(server.openai().args(missing));
    assert_eq!(code(&text), Some(1));
    assert!(
        stderr(&text).starts_with("openai: error: HTTP 404"),
        "{}",
        stderr(&text)
    );
    assert!(text.stdout.is_empty());

    for args in [
        &["--format-error", "json"][..],
        &["--format", "jsonl"],
        &["--format-error", "jsonl"],
    ] {
        let output = run(server.openai().args(args).args(missing));
        assert_eq!(code(&output), Some(1), "{args:?}");
        let error: Value = serde_json::from_slice(&output.stderr)
            .unwrap_or_else(|e| panic!("{args:?}: stderr is not JSON ({e}): {}", stderr(&output)));
        assert_eq!(error["status"], 404, "{error}");
        assert_eq!(error["error"]["code"], "not_found", "{error}");
        assert_eq!(error["exit_code"], 1, "{error}");
        assert!(output.stdout.is_empty());
    }
    let yaml = run(server
        .openai()
        .args(["--format-error", "yaml"])
        .args(missing));
    let error: Value = serde_saphyr::from_slice(&yaml.stderr).expect("stderr is YAML");
    assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");

    let code_only = run(server
        .openai()
        .args(["--transform-error", "error.code", "-r"])
        .args(missing));
    assert_eq!(code(&code_only), Some(1));
    assert_eq!(stderr(&code_only), "not_found\n");

    // An error of this command, not the API's, in the same shape.
    let local = run(server
        .openai()
        .args(["--format-error", "json", "uploads:parts", "create"])
        .args(["--upload-id", "upload_x", "--data", "/nonexistent/part"]));
    assert_eq!(code(&local), Some(4));
    let error: Value = serde_json::from_slice(&local.stderr).expect("stderr is JSON");
    assert_eq!(error["error"]["type"], "local_file", "{error}");
    assert_eq!(error["exit_code"], 4, "{error}");
}

#[test]
fn global_options_work_after_the_command_too() {
    let server = Server::start();
    let output = run(openai().args([
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
        "--base-url",
        server.emulator.base_url(),
        "--api-key",
        KEY,
        "--format",
        "jsonl",
        "--transform",
        "status",
        "-r",
    ]));
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "pending\n");
    let requests = server.emulator.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[test]
fn debug_logs_requests_without_the_key() {
    let server = Server::start();
    let output = run(server.openai().args(["--debug", "files", "list"]));
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("method=GET"), "{text}");
    assert!(text.contains("/v1/files"), "{text}");
    assert!(text.contains("status=200"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
    // run() has checked that the key appears nowhere.
    let list = json_ok(&output);
    assert_eq!(list["object"], "list");
}

#[test]
fn files_list_pages_and_filters() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let first = small_upload(&server, dir.path(), "one.jsonl");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = small_upload(&server, dir.path(), "two.jsonl");
    let ids = |u: &Value| str_field(&u["file"], "id").to_string();
    let (first, second) = (ids(&first), ids(&second));

    let all = json_ok(&run(server.openai().args([
        "files",
        "list",
        "--transform",
        "data.#.id",
    ])));
    assert_eq!(all, serde_json::json!([second, first]));
    let asc = json_ok(&run(server.openai().args([
        "files",
        "list",
        "--order",
        "asc",
        "--transform",
        "data.#.id",
    ])));
    assert_eq!(asc, serde_json::json!([first, second]));

    let page = json_ok(&run(server
        .openai()
        .args(["files", "list", "--limit", "1"])));
    assert_eq!(page["has_more"], true, "{page}");
    assert_eq!(page["first_id"], second.as_str(), "{page}");
    let next = json_ok(&run(server
        .openai()
        .args(["files", "list", "--limit", "1", "--after", &second])));
    assert_eq!(next["data"][0]["id"], first.as_str(), "{next}");
    assert_eq!(next["has_more"], false, "{next}");

    let none = json_ok(&run(server.openai().args([
        "files",
        "list",
        "--purpose",
        "batch",
    ])));
    assert_eq!(none["data"], serde_json::json!([]), "{none}");
    let query: Vec<String> = server
        .emulator
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/files")
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(query.len(), 5, "{query:?}");
}

// ---------------------------------------------------------------- many files

#[test]
fn many_files_print_each_upload_and_name_the_one_that_failed() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    for i in 0..3 {
        let path = dir.path().join(format!("f{i}.jsonl"));
        std::fs::write(&path, jsonl(20 + i)).expect("write input");
        paths.push(path);
    }
    let missing = dir.path().join("does-not-exist.jsonl");
    let output = run(server
        .openai()
        .args(["--format", "jsonl", "uploads", "upload"])
        .arg(&paths[0])
        .arg(&missing)
        .args(&paths[1..])
        .args([
            "--purpose",
            "fine-tune",
            "--part-size",
            "4096",
            "--concurrency",
            "3",
        ]));
    assert_eq!(code(&output), Some(5), "stderr: {}", stderr(&output));
    let text = String::from_utf8(output.stdout.clone()).expect("UTF-8");
    let uploads: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON Upload"))
        .collect();
    assert_eq!(uploads.len(), 3, "{text}");
    let mut names: Vec<&str> = uploads.iter().map(|u| str_field(u, "filename")).collect();
    names.sort_unstable();
    assert_eq!(names, ["f0.jsonl", "f1.jsonl", "f2.jsonl"]);
    for upload in &uploads {
        assert_eq!(upload["status"], "completed", "{upload}");
        let i: usize = str_field(upload, "filename")[1..2].parse().expect("index");
        assert_eq!(upload["file"]["bytes"], jsonl(20 + i).len(), "{upload}");
    }
    let errors = stderr(&output);
    assert_eq!(errors.lines().count(), 1, "{errors}");
    assert!(errors.contains(&missing.display().to_string()), "{errors}");
}

#[test]
fn a_directory_or_standard_input_lists_the_files() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("nested")).expect("mkdir");
    for name in ["a.jsonl", "b.jsonl"] {
        std::fs::write(dir.path().join(name), jsonl(4)).expect("write input");
    }
    let output = run(server
        .openai()
        .args(["--format", "jsonl", "uploads", "upload"])
        .arg(dir.path())
        .args(["--purpose", "batch", "--transform", "filename", "-r"]));
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(names, ["a.jsonl", "b.jsonl"]);

    let list = format!(
        "{}\n\n{}\n",
        dir.path().join("a.jsonl").display(),
        dir.path().join("b.jsonl").display()
    );
    let output = run_with_stdin(
        server.openai().args([
            "--format",
            "jsonl",
            "uploads",
            "upload",
            "-",
            "--purpose",
            "batch",
        ]),
        list.as_bytes(),
    );
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 2);
}

// ---------------------------------------------------------------- usage and hints

#[test]
fn out_of_range_values_and_conflicts_are_usage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    std::fs::write(&path, jsonl(2)).expect("write input");
    for bad in [
        &["--concurrency", "0"][..],
        &["--part-size", "0"],
        &["--part-size", "67108865"],
    ] {
        let output = run(openai()
            .args(["--emulator", "uploads", "upload"])
            .arg(&path)
            .args(["--purpose", "fine-tune"])
            .args(bad));
        assert_eq!(code(&output), Some(2), "{bad:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(bad[0]),
            "{bad:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty());
    }
    let ok = run(openai()
        .args(["--emulator", "uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "fine-tune", "--part-size", "67108864"]));
    assert_eq!(code(&ok), Some(0), "{}", stderr(&ok));

    for args in [
        &[
            "--emulator",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "files",
            "list",
        ][..],
        &[
            "--emulator",
            "files",
            "list",
            "--base-url",
            "http://127.0.0.1:9/v1",
        ],
        &[
            "files",
            "list",
            "--emulator",
            "--base-url",
            "http://127.0.0.1:9/v1",
        ],
    ] {
        let output = run(openai().args(args));
        assert_eq!(code(&output), Some(2), "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("--emulator"),
            "{}",
            stderr(&output)
        );
    }
    let resume_many = run(openai()
        .args(["--emulator", "uploads", "upload"])
        .arg(&path)
        .arg(&path)
        .args(["--purpose", "fine-tune", "--resume", "state"]));
    assert_eq!(code(&resume_many), Some(2), "{}", stderr(&resume_many));
    assert!(
        stderr(&resume_many).contains("resume"),
        "{}",
        stderr(&resume_many)
    );

    // A base URL from the environment is not a conflict: --emulator overrides it.
    let output = run(openai()
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .args(["--emulator", "files", "list"]));
    assert_eq!(json_ok(&output)["object"], "list");
}

#[test]
fn hint_for_a_base_url_without_v1() {
    let server = Server::start();
    let bare = server
        .emulator
        .base_url()
        .trim_end_matches("/v1")
        .to_string();
    let output = run(openai().args(["--base-url", &bare, "--api-key", KEY, "files", "list"]));
    assert_eq!(code(&output), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("404"), "{text}");
    assert!(
        text.contains(&format!("hint: the base URL {bare} does not end in /v1")),
        "{text}"
    );

    let quiet = run(openai().args(["--base-url", &bare, "--api-key", KEY, "-q", "files", "list"]));
    assert_eq!(code(&quiet), Some(1));
    assert!(!stderr(&quiet).contains("hint"), "{}", stderr(&quiet));

    // Beside a JSON error, the hint is inside the one object.
    let json = run(openai()
        .args(["--base-url", &bare, "--api-key", KEY])
        .args(["--format-error", "json", "files", "list"]));
    assert_eq!(code(&json), Some(1));
    let error: Value = serde_json::from_slice(&json.stderr)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", stderr(&json)));
    assert!(
        error["hint"]
            .as_str()
            .is_some_and(|h| h.contains("does not end in /v1")),
        "{error}"
    );
}

#[test]
fn hint_for_an_md5_mismatch_names_the_part_order() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let content = jsonl(10);
    let (a, b) = content.split_at(content.len() / 2);
    std::fs::write(dir.path().join("a"), a).expect("write");
    std::fs::write(dir.path().join("b"), b).expect("write");
    let upload_id = server.create_upload(content.len(), "text/jsonl");
    let first = server.add_part(&upload_id, &dir.path().join("a"));
    let second = server.add_part(&upload_id, &dir.path().join("b"));
    let swapped = run(server.openai().args([
        "uploads",
        "complete",
        "--upload-id",
        &upload_id,
        "--part-id",
        &second,
        "--part-id",
        &first,
        "--md5",
        &common::md5_hex(&content),
    ]));
    assert_eq!(code(&swapped), Some(1), "{}", stderr(&swapped));
    assert!(
        stderr(&swapped).contains("hint:") && stderr(&swapped).contains("--part-id"),
        "{}",
        stderr(&swapped)
    );
}

#[test]
fn hint_for_a_guessed_mime_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"plain\n").expect("write input");
    let output = run(openai()
        .args(["--emulator", "uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "batch"]));
    assert_eq!(code(&output), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("hint:") && text.contains("--mime-type"),
        "{text}"
    );

    let given = run(openai()
        .args(["--emulator", "uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "batch", "--mime-type", "text/plain"]));
    assert_eq!(code(&given), Some(2));
    assert!(!stderr(&given).contains("hint:"), "{}", stderr(&given));
}

#[test]
fn completion_scripts() {
    for shell in ["bash", "zsh", "fish"] {
        let output = run(openai().args(["completion", shell]));
        assert_eq!(code(&output), Some(0), "{shell}: {}", stderr(&output));
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains("openai"), "{shell}");
        assert!(script.contains("uploads"), "{shell}");
    }
    assert_eq!(
        code(&run(openai().args(["completion", "powershell"]))),
        Some(2)
    );
}

// ---------------------------------------------------------------- emulator serve as a tool

/// `openai emulator serve --port 0` with `args`; the child and its base URL.
fn serve(args: &[&str]) -> (std::process::Child, String) {
    let mut child = openai()
        .args(["emulator", "serve", "--port", "0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("emulator starts");
    let mut line = String::new();
    let _ = BufReader::new(child.stderr.take().expect("piped stderr")).read_line(&mut line);
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(str::to_string);
    match url {
        Some(url) => (child, url),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no URL announced: {line:?}")
        }
    }
}

#[test]
fn emulator_serve_injects_the_faults_and_clock_it_is_given() {
    let (mut child, url) = serve(&["--server-error-every", "1", "--scope", "all"]);
    let failed = run(openai().args(["--base-url", &url, "--api-key", KEY, "files", "list"]));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code(&failed), Some(1), "{}", stderr(&failed));
    assert!(stderr(&failed).contains("500"), "{}", stderr(&failed));

    let (mut child, url) = serve(&["--clock-offset", "86400"]);
    let created = run(openai().args([
        "--base-url",
        &url,
        "--api-key",
        KEY,
        "uploads",
        "create",
        "--filename",
        "a.jsonl",
        "--purpose",
        "batch",
        "--bytes",
        "3",
        "--mime-type",
        "text/jsonl",
    ]));
    let listed = run(openai().args(["--base-url", &url, "--api-key", KEY, "files", "list"]));
    let _ = child.kill();
    let _ = child.wait();
    let created = json_ok(&created);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let at = created["created_at"].as_i64().expect("created_at");
    assert!((now + 86_000..now + 87_000).contains(&at), "{at} vs {now}");
    assert_eq!(
        code(&listed),
        Some(0),
        "a clock offset alone injects no fault"
    );

    let bad = run(openai().args(["emulator", "serve", "--random-rate", "1.5"]));
    assert_eq!(code(&bad), Some(2), "{}", stderr(&bad));
}

// ---------------------------------------------------------------- Ctrl-C

/// Starts a slow upload, interrupts it as Ctrl-C would, and returns its end.
fn interrupted_upload(
    server: &Server,
    extra_files: &[&Path],
    extra: &[&str],
    dir: &Path,
) -> Output {
    server
        .emulator
        .set_faults(Faults::default().with_latency(std::time::Duration::from_millis(300)));
    let path = dir.join("slow.jsonl");
    std::fs::write(&path, jsonl(800)).expect("write input");
    let child = server
        .openai()
        .args(["uploads", "upload"])
        .arg(&path)
        .args(extra_files)
        .args([
            "--purpose",
            "fine-tune",
            "--part-size",
            "4096",
            "--concurrency",
            "1",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Long enough for the Upload to exist and some parts to be sent.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0, "SIGINT delivered");
    let output = child.wait_with_output().expect("the binary ends");
    assert_no_key(&output);
    output
}

#[test]
fn ctrl_c_prints_one_message_and_exits_130() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("slow.state");
    let state_arg = state.display().to_string();

    let kept = interrupted_upload(&server, &[], &["--resume", &state_arg], dir.path());
    assert_eq!(code(&kept), Some(130), "stderr: {}", stderr(&kept));
    let text = stderr(&kept);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("interrupted") && lines[0].contains(&state_arg),
        "{text}"
    );
    assert!(!text.contains("error"), "{text}");
    assert!(kept.stdout.is_empty());
    assert!(state.exists(), "the resume state is kept");

    let cancelled = interrupted_upload(&server, &[], &[], dir.path());
    assert_eq!(
        code(&cancelled),
        Some(130),
        "stderr: {}",
        stderr(&cancelled)
    );
    let text = stderr(&cancelled);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("interrupted") && lines[0].contains("cancelled"),
        "{text}"
    );
    // The Upload was cancelled on the server.
    let cancels = server
        .emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/cancel"))
        .count();
    assert_eq!(cancels, 1);

    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, jsonl(400)).expect("write input");
    let many = interrupted_upload(&server, &[&other], &[], dir.path());
    assert_eq!(code(&many), Some(130), "stderr: {}", stderr(&many));
    let text = stderr(&many);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("interrupted"), "{text}");
    let cancels = server
        .emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/cancel"))
        .count();
    // One file at a time (a budget of one part): the running one is
    // cancelled, the other never created.
    assert_eq!(cancels, 2, "{:?}", server.emulator.requests());
    let creates = server
        .emulator
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/uploads")
        .count();
    assert_eq!(creates, 3, "{:?}", server.emulator.requests());
}

// ---------------------------------------------------------------- server text, pipes, logs

/// Text a hostile server puts where a message goes: clear the screen,
/// recolour, ring the bell, overwrite the line, set the window title, and an
/// 8-bit CSI.
const HOSTILE: &str =
    "quota\u{1b}[2J\u{1b}[31m exceeded\u{7}\rOVERWRITTEN \u{1b}]0;pwned\u{7} \u{9b}1m";

/// One answer of [`hostile`].
#[derive(Clone)]
struct Answer {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Answer {
    fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }
    }
}

/// The API's error envelope with [`HOSTILE`] in every string.
fn hostile_envelope() -> Value {
    serde_json::json!({"error": {
        "message": HOSTILE,
        "type": format!("invalid_request_error{HOSTILE}"),
        "param": format!("file_id{HOSTILE}"),
        "code": null,
    }})
}

/// A server on loopback that gives `answers` in turn (the last one again
/// and again) and records each request line; its base URL.
fn hostile(answers: Vec<Answer>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("address"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&request).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = stream.read_exact(&mut body);
            log.lock()
                .unwrap()
                .push(head.lines().next().unwrap_or_default().to_string());
            let answer = &answers[i.min(answers.len() - 1)];
            let _ = write!(
                stream,
                "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                answer.status,
                answer.content_type,
                answer.body.len()
            );
            let _ = stream.write_all(&answer.body);
        }
    });
    (url, seen)
}

/// The binary pointed at `url`.
fn openai_at(url: &str) -> Command {
    let mut command = openai();
    command.args(["--base-url", url, "--api-key", KEY]);
    command
}

/// Every control character in `bytes` but line breaks and tabs: what a
/// terminal would act on.
fn controls(bytes: &[u8]) -> Vec<char> {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect()
}

/// Every way an error can be printed on standard error.
const ERROR_FORMATS: [&[&str]; 7] = [
    &[],
    &["--format-error", "json"],
    &["--format-error", "jsonl"],
    &["--format-error", "raw"],
    &["--format-error", "yaml"],
    &["--format-error", "pretty"],
    &["--transform-error", "error.message", "-r"],
];

#[test]
fn server_text_in_errors_never_reaches_the_terminal_as_control() {
    let envelope = hostile_envelope();
    let undocumented = Answer {
        status: 502,
        content_type: "text/html",
        body: format!("<h1>{HOSTILE}</h1>").into_bytes(),
    };
    for answer in [Answer::json(400, &envelope), undocumented] {
        let (url, _) = hostile(vec![answer.clone()]);
        for args in ERROR_FORMATS {
            let output = run(openai_at(&url).args(args).args([
                "files",
                "retrieve",
                "--file-id",
                "file-abc",
            ]));
            let text = stderr(&output);
            assert_eq!(code(&output), Some(1), "{args:?}: {text}");
            assert_eq!(
                controls(&output.stderr),
                Vec::<char>::new(),
                "{args:?}: {text:?}"
            );
            assert!(output.stdout.is_empty(), "{args:?}");
            // The server's words are there, only made visible.
            assert!(text.contains("quota"), "{args:?}: {text}");
            assert!(text.contains("OVERWRITTEN"), "{args:?}: {text}");
            if answer.status == 400 && matches!(args.last(), Some(&"json" | &"jsonl" | &"raw")) {
                // JSON stays exact: it parses back to the very text sent.
                let error: Value = serde_json::from_slice(&output.stderr).expect("JSON");
                assert_eq!(error["error"], envelope["error"], "{args:?}");
            }
            if answer.status == 400 && args.last() == Some(&"yaml") {
                let error: Value = serde_saphyr::from_slice(&output.stderr).expect("YAML");
                assert_eq!(error["error"], envelope["error"], "{text}");
            }
        }
    }
}

#[test]
fn server_text_in_a_retry_warning_is_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = common::write_file(dir.path(), "a.jsonl", &jsonl(3));
    for args in [&[][..], &["--format-error", "json"]] {
        // A 503 that is retried (the warning names its cause), then a refusal.
        let (url, seen) = hostile(vec![
            Answer::json(503, &hostile_envelope()),
            Answer::json(400, &hostile_envelope()),
        ]);
        let output = run(openai_at(&url)
            .args(args)
            .args(["uploads", "upload"])
            .arg(&path)
            .args(["--purpose", "fine-tune"]));
        let text = stderr(&output);
        assert_eq!(code(&output), Some(1), "{text}");
        assert_eq!(
            controls(&output.stderr),
            Vec::<char>::new(),
            "{args:?}: {text:?}"
        );
        let warning = text
            .lines()
            .find(|l| l.contains("retrying"))
            .unwrap_or_else(|| panic!("{args:?}: no warning: {text}"));
        assert!(warning.contains("quota"), "{warning}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
    }
}

#[test]
fn raw_prints_the_answer_as_the_server_sent_it() {
    // Spacing, key order and a field the spec does not declare: all lost by
    // decoding and encoding again, all kept by `raw`.
    let body = "{ \"status\" : \"processed\", \"id\":\"file-abc\", \"object\": \"file\",\n  \"bytes\": 5, \"created_at\": 1700000000, \"filename\": \"a.jsonl\", \"purpose\": \"fine-tune\", \"extra\": [1, 2] }";
    let answer = Answer {
        status: 200,
        content_type: "application/json",
        body: body.as_bytes().to_vec(),
    };
    let (url, _) = hostile(vec![answer]);
    let retrieve = ["files", "retrieve", "--file-id", "file-abc"];
    let raw = run(openai_at(&url).args(["--format", "raw"]).args(retrieve));
    assert_eq!(code(&raw), Some(0), "{}", stderr(&raw));
    assert_eq!(String::from_utf8_lossy(&raw.stdout), format!("{body}\n"));

    let jsonl = run(openai_at(&url).args(["--format", "jsonl"]).args(retrieve));
    assert_eq!(code(&jsonl), Some(0), "{}", stderr(&jsonl));
    let printed = String::from_utf8_lossy(&jsonl.stdout);
    assert_ne!(
        printed,
        format!("{body}\n"),
        "jsonl encodes the object again"
    );
    let value: Value = serde_json::from_str(&printed).expect("one JSON line");
    assert_eq!(value["id"], "file-abc");

    // A transform picks from the decoded object, as with every format.
    let picked = run(openai_at(&url)
        .args(["--format", "raw", "--transform", "id", "-r"])
        .args(retrieve));
    assert_eq!(String::from_utf8_lossy(&picked.stdout), "file-abc\n");
}

/// A File whose name is [`HOSTILE`].
fn hostile_file() -> Value {
    serde_json::json!({
        "id": "file-abc",
        "object": "file",
        "bytes": 5,
        "created_at": 1_700_000_000,
        "filename": HOSTILE,
        "purpose": "fine-tune",
        "status": "processed",
    })
}

/// A pseudo-terminal in raw mode (so that it adds no bytes of its own): the
/// leader to read from, the follower to give a child.
fn pseudo_terminal() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let (mut leader, mut follower) = (0, 0);
    // SAFETY: openpty(3) writes two new descriptors into the integers given;
    // the name, termios and window size may be null.
    let opened = unsafe {
        libc::openpty(
            &mut leader,
            &mut follower,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here alone.
    let (leader, follower) =
        unsafe { (OwnedFd::from_raw_fd(leader), OwnedFd::from_raw_fd(follower)) };
    // SAFETY: fcntl, tcgetattr and tcsetattr on open descriptors, with a
    // termios they fill.
    unsafe {
        // Not inherited as such by children: only as the stream they are given.
        for fd in [leader.as_raw_fd(), follower.as_raw_fd()] {
            assert_eq!(libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC), 0);
        }
        let mut mode: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(follower.as_raw_fd(), &mut mode), 0);
        libc::cfmakeraw(&mut mode);
        assert_eq!(
            libc::tcsetattr(follower.as_raw_fd(), libc::TCSANOW, &mode),
            0
        );
    }
    (std::fs::File::from(leader), follower)
}

/// Reads what is written to a pseudo-terminal as it comes (a full terminal
/// would stop its writer), until no follower is open; join for the bytes.
fn read_terminal(mut leader: std::fs::File) -> std::thread::JoinHandle<Vec<u8>> {
    use std::io::Read;
    std::thread::spawn(move || {
        let mut written = Vec::new();
        let mut chunk = [0u8; 4096];
        // Reading ends with EIO once no follower is open.
        while let Ok(n @ 1..) = leader.read(&mut chunk) {
            written.extend_from_slice(&chunk[..n]);
        }
        written
    })
}

/// Runs `command` with a pseudo-terminal as standard output; its exit code
/// and what it wrote there.
fn on_a_terminal(mut command: Command) -> (Option<i32>, Vec<u8>) {
    let (leader, follower) = pseudo_terminal();
    let reader = read_terminal(leader);
    let output = command
        .stdout(Stdio::from(follower))
        .stderr(Stdio::piped())
        .output()
        .expect("the binary runs");
    assert_no_key(&output);
    // The command holds the follower until dropped.
    drop(command);
    (output.status.code(), reader.join().expect("terminal read"))
}

#[test]
fn raw_output_of_server_text_is_escaped_on_a_terminal_and_exact_in_a_pipe() {
    let (url, _) = hostile(vec![Answer::json(200, &hostile_file())]);
    let name = [
        "files",
        "retrieve",
        "--file-id",
        "file-abc",
        "--transform",
        "filename",
        "-r",
    ];

    let piped = run(openai_at(&url).args(name));
    assert_eq!(code(&piped), Some(0), "{}", stderr(&piped));
    assert_eq!(
        String::from_utf8_lossy(&piped.stdout),
        format!("{HOSTILE}\n")
    );

    let mut command = openai_at(&url);
    command.args(name);
    let (code, shown) = on_a_terminal(command);
    assert_eq!(code, Some(0));
    let shown = String::from_utf8_lossy(&shown);
    assert_eq!(controls(shown.as_bytes()), Vec::<char>::new(), "{shown:?}");
    assert!(
        shown.starts_with("quota\\u001b[2J\\u001b[31m exceeded\\u0007\\rOVERWRITTEN"),
        "{shown:?}"
    );

    // pretty is for people: escaped even in a pipe. JSON stays exact.
    let pretty = run(openai_at(&url).args([
        "--format",
        "pretty",
        "files",
        "retrieve",
        "--file-id",
        "file-abc",
    ]));
    assert_eq!(
        controls(&pretty.stdout),
        Vec::<char>::new(),
        "{}",
        String::from_utf8_lossy(&pretty.stdout)
    );
    let mut command = openai_at(&url);
    command.args(["files", "retrieve", "--file-id", "file-abc"]);
    let (_, json) = on_a_terminal(command);
    let json: Value = serde_json::from_slice(&json).expect("JSON on the terminal");
    assert_eq!(json["filename"], HOSTILE);
}

/// Runs `command` with a standard output whose reader takes `keep` bytes,
/// then closes it, as `| head -c` does; its exit, what the reader got, and
/// standard error.
fn read_then_close(
    command: &mut Command,
    keep: usize,
) -> (std::process::ExitStatus, Vec<u8>, String) {
    use std::io::Read;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut kept = vec![0; keep];
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_exact(&mut kept)
        .expect("the first bytes");
    // The reader is gone: the next writes meet a broken pipe.
    let output = child.wait_with_output().expect("the binary ends");
    assert_no_key(&output);
    (output.status, kept, stderr(&output))
}

/// The marks of an output failure that is not a quiet end.
fn assert_quiet_end(status: std::process::ExitStatus, err: &str) {
    assert_eq!(status.code(), Some(0), "{status:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.to_lowercase().contains("broken pipe"), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly_with_0() {
    // As `openai completion bash | head -1`; a reader gone before the first
    // write too, so the script cannot fit in the pipe before it closes.
    let (status, first, err) = read_then_close(openai().args(["completion", "bash"]), 10);
    assert_quiet_end(status, &err);
    assert_eq!(first, b"_openai() ");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = run(openai().args(["completion", "bash"]).stdout(writer));
    assert_quiet_end(output.status, &stderr(&output));

    // As `openai files content … | head -c 10`, with more than a pipe holds.
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let content = common::content(1 << 20, 7);
    let path = common::write_file(dir.path(), "big.jsonl", &content);
    let upload = json_ok(&run(server
        .openai()
        .args(["uploads", "upload"])
        .arg(&path)
        .args(["--purpose", "batch", "--mime-type", "text/jsonl"])));
    let file_id = str_field(&upload["file"], "id").to_string();
    let (status, first, err) = read_then_close(
        server
            .openai()
            .args(["files", "content", "--file-id", &file_id]),
        10,
    );
    assert_quiet_end(status, &err);
    assert_eq!(first, content[..10]);

    // A printed object, and a reader gone before it.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = run(server
        .openai()
        .args(["files", "retrieve", "--file-id", &file_id])
        .stdout(writer));
    assert_quiet_end(output.status, &stderr(&output));
}

#[test]
fn usage_errors_follow_format_error_too() {
    for (args, param) in [
        (
            &["--format-error", "json", "files", "retrieve", "--bogus"][..],
            "--bogus",
        ),
        (
            &["files", "retrieve", "--format-error=jsonl"],
            "--file-id <FILE_ID>",
        ),
        (&["--format-error", "jsonl", "files"], "command"),
        (
            &[
                "--format",
                "json",
                "--emulator",
                "files",
                "list",
                "--base-url",
                "http://127.0.0.1:9/v1",
            ],
            "--emulator",
        ),
    ] {
        let output = run(openai().args(args));
        assert_eq!(code(&output), Some(2), "{args:?}: {}", stderr(&output));
        let error: Value = serde_json::from_slice(&output.stderr)
            .unwrap_or_else(|e| panic!("{args:?}: not one JSON object ({e}): {}", stderr(&output)));
        assert_eq!(error["error"]["type"], "usage", "{error}");
        assert_eq!(error["exit_code"], 2, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(param.split(' ').next().unwrap()),
            "{error}"
        );
        assert!(output.stdout.is_empty());
    }
    // In text, clap's own message.
    let text = run(openai().args(["files", "retrieve", "--bogus"]));
    assert_eq!(code(&text), Some(2));
    assert!(
        stderr(&text).starts_with("error: unexpected argument '--bogus'"),
        "{}",
        stderr(&text)
    );
}

#[test]
fn log_lines_are_for_people_by_default_json_beside_json_errors_full_with_debug() {
    let server = Server::start();
    server.emulator.set_faults(
        Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_server_error_every(2),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = common::write_file(dir.path(), "train.jsonl", &jsonl(200));
    let upload = |args: &[&str]| {
        let output = run(server
            .openai()
            .args(args)
            .args(["uploads", "upload"])
            .arg(&path)
            .args(["--purpose", "fine-tune", "--part-size", "4096"]));
        assert_eq!(code(&output), Some(0), "{}", stderr(&output));
        stderr(&output)
    };

    let human = upload(&[]);
    assert!(!human.is_empty(), "no warning at all");
    for line in human.lines() {
        // `openai: warning: upload train.jsonl: part 3: HTTP 500 …, retrying in 0.3 s …`
        assert!(
            line.starts_with("openai: warning: upload train.jsonl: part "),
            "{line}"
        );
        assert!(line.contains(": HTTP 500 server_error: "), "{line}");
        assert!(line.contains(", retrying in "), "{line}");
        assert!(!line.contains("WARN") && !line.contains("error="), "{line}");
        assert!(!line.contains("Z "), "a timestamp: {line}");
    }

    let json = upload(&["--format-error", "json"]);
    assert!(!json.is_empty(), "no warning at all");
    for line in json.lines() {
        let warning: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(warning["level"], "warning", "{warning}");
        assert_eq!(warning["message"], "retrying", "{warning}");
        assert!(warning["fields"]["wait_ms"].is_u64(), "{warning}");
        assert_eq!(warning["spans"][1]["name"], "part", "{warning}");
    }

    let full = upload(&["--debug"]);
    assert!(full.contains(" WARN "), "{full}");
    assert!(full.contains("error=HTTP 500"), "{full}");
    assert!(full.contains("part{number="), "{full}");
}

#[test]
fn a_seconds_range_is_usage_in_either_spelling_and_nothing_is_sent() {
    let server = Server::start();
    for expires in [
        &["--expires-after.seconds", "10"][..],
        &["--expires-after", "{anchor: created_at, seconds: 10}"],
        &[
            "--expires-after",
            r#"{"anchor": "created_at", "seconds": 10}"#,
        ],
    ] {
        let output = run(server
            .openai()
            .args([
                "uploads",
                "create",
                "--filename",
                "a.jsonl",
                "--purpose",
                "batch",
            ])
            .args(["--bytes", "3", "--mime-type", "text/jsonl"])
            .args(expires));
        assert_eq!(code(&output), Some(2), "{expires:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("seconds"), "{}", stderr(&output));
    }
    assert!(
        server.emulator.requests().is_empty(),
        "{:?}",
        server.emulator.requests()
    );
}

/// The meaning of each exit code line (`  2  breaking changes`) in a help.
fn exit_code_lines(help: &str) -> Vec<(String, String)> {
    help.split("Exit codes:")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (code, meaning) = l.trim().split_once(char::is_whitespace)?;
            code.parse::<u8>().ok()?;
            Some((code.to_string(), meaning.trim().to_string()))
        })
        .collect()
}

#[test]
fn spec_helps_agree_with_spec_diff_on_exit_codes() {
    let diff = exit_code_lines(&help(&["spec", "diff"]));
    assert!(
        diff.iter().any(|(c, m)| c == "2" && m.contains("breaking")),
        "{diff:?}"
    );
    for args in [&["spec"][..], &["spec", "extract"]] {
        let codes = exit_code_lines(&help(args));
        for (code, meaning) in &diff {
            let line = codes.iter().find(|(c, _)| c == code);
            assert!(
                line.is_some_and(|(_, m)| m.contains(meaning.as_str())),
                "{args:?}: code {code} should say {meaning:?}: {codes:?}"
            );
        }
        assert!(
            !codes.iter().any(|(c, _)| c == "3" || c == "5"),
            "{args:?}: {codes:?}"
        );
    }
}

#[test]
fn version_flag_only_on_the_top_command() {
    let top = run(openai().arg("-V"));
    assert_eq!(code(&top), Some(0));
    assert!(String::from_utf8_lossy(&top.stdout).starts_with("openai "));
    for args in [
        &["files", "-V"][..],
        &["uploads", "upload", "--version"],
        &["spec", "diff", "-V"],
    ] {
        let output = run(openai().args(args));
        assert_eq!(code(&output), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    for args in [&["files"][..], &["uploads", "upload"], &["spec", "diff"]] {
        assert!(!help(args).contains("--version"), "{args:?}");
    }
}

#[test]
fn pretty_is_a_view_for_people_not_json() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let upload = small_upload(&server, dir.path(), "a.jsonl");
    let file_id = str_field(&upload["file"], "id").to_string();
    let retrieve = ["files", "retrieve", "--file-id", file_id.as_str()];
    let pretty = run(server.openai().args(["--format", "pretty"]).args(retrieve));
    assert_eq!(code(&pretty), Some(0), "{}", stderr(&pretty));
    let text = String::from_utf8_lossy(&pretty.stdout);
    assert!(
        text.lines().any(|l| l == format!("id: {file_id}")),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "filename: a.jsonl"), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
}

#[test]
fn spec_commands_meet_a_closed_reader_without_panic_and_diff_keeps_its_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vendored = common::vendored_spec();
    let one = run(openai()
        .args([
            "spec",
            "extract",
            "--operations",
            "createUpload",
            "--upstream",
        ])
        .arg(&vendored));
    assert_eq!(code(&one), Some(0), "{}", stderr(&one));
    let narrower = common::write_file(dir.path(), "one.json", &one.stdout);
    let to_null = run(openai().args(["spec", "diff", "--upstream"]).arg(&narrower));
    assert_eq!(code(&to_null), Some(2), "operations removed are breaking");

    for (args, expected) in [
        (vec!["spec", "extract", "--upstream"], Some(0)),
        (vec!["spec", "diff", "--upstream"], Some(2)),
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let source = if args[1] == "diff" {
            &narrower
        } else {
            &vendored
        };
        let output = run(openai().args(&args).arg(source).stdout(writer));
        assert_eq!(code(&output), expected, "{args:?}: {}", stderr(&output));
        assert!(output.stderr.is_empty(), "{args:?}: {}", stderr(&output));
    }
}

/// The `LOW..=HIGH` a help line states after `label`.
fn stated_range(help: &str, label: &str) -> (i64, i64) {
    let line = help
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("{label}: {help}"));
    let range = line.split(label).nth(1).expect("after the label");
    let range: String = range
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '=')
        .collect();
    let (low, high) = range.split_once("..=").unwrap_or_else(|| panic!("{line}"));
    (low.parse().expect("low"), high.parse().expect("high"))
}

#[test]
fn help_states_the_limits_that_are_enforced() {
    let (low, high) = stated_range(&help(&["files", "list"]), "Most Files in the page, ");
    assert_eq!((low, high), (1, 10_000));
    for (limit, expected) in [(low - 1, 2), (low, 0), (high, 0), (high + 1, 2)] {
        let output =
            run(openai().args(["--emulator", "files", "list", "--limit", &limit.to_string()]));
        assert_eq!(
            code(&output),
            Some(expected),
            "--limit {limit}: {}",
            stderr(&output)
        );
    }

    let (low, high) = stated_range(&help(&["uploads", "create"]), "expires (");
    assert_eq!((low, high), (3600, 2_592_000));
    for (seconds, expected) in [(low - 1, 2), (low, 0), (high, 0), (high + 1, 2)] {
        let output = run(openai()
            .args([
                "--emulator",
                "uploads",
                "create",
                "--filename",
                "a.jsonl",
                "--purpose",
                "batch",
            ])
            .args(["--bytes", "3", "--mime-type", "text/jsonl"])
            .args(["--expires-after.seconds", &seconds.to_string()]));
        assert_eq!(
            code(&output),
            Some(expected),
            "{seconds}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn warnings_are_printed_whole_above_the_progress_bars() {
    let server = Server::start();
    server.emulator.set_faults(
        Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_server_error_every(3),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let a = common::write_file(dir.path(), "a.jsonl", &jsonl(800));
    let b = common::write_file(dir.path(), "b.jsonl", &jsonl(400));
    for files in [vec![&a], vec![&a, &b]] {
        let (leader, follower) = pseudo_terminal();
        let reader = read_terminal(leader);
        let mut command = server.openai();
        command
            .args(["uploads", "upload"])
            .args(&files)
            .args([
                "--purpose",
                "fine-tune",
                "--part-size",
                "4096",
                "--transform",
                "status",
                "-r",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(follower));
        // Ends: a line printed inside the bars' own suspend would deadlock.
        let output = command.output().expect("the binary runs");
        drop(command);
        assert_no_key(&output);
        assert_eq!(code(&output), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "completed\n".repeat(files.len())
        );
        let shown = String::from_utf8_lossy(&reader.join().expect("terminal read")).into_owned();
        assert!(shown.contains("parts "), "no bars drawn: {shown:?}");
        // Each warning is a whole line: the bars were cleared before it and
        // drawn again after it, never in the middle.
        let warnings: Vec<&str> = shown
            .split(['\r', '\n'])
            .filter(|l| l.contains("warning"))
            .collect();
        assert!(!warnings.is_empty(), "{shown:?}");
        for mut line in warnings {
            // The bars' own cursor moves and clears before the line.
            while let Some(rest) = line.strip_prefix("\u{1b}[") {
                let end = rest
                    .find(|c: char| c.is_ascii_alphabetic())
                    .expect("a CSI ends");
                line = &rest[end + 1..];
            }
            assert!(line.starts_with("openai: warning: upload "), "{line:?}");
            assert!(line.contains(" (request: add_upload_part"), "{line:?}");
            assert!(line.ends_with(')'), "{line:?}");
        }
    }
}
