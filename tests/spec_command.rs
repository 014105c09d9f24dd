#![cfg(feature = "cli")]
//! `openai spec diff` as a process: the exit codes `--fail-on` chooses, an upstream
//! fetched over HTTP, a spec with no `paths`, and the report's grouping and summary.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn openai(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_openai"))
        .args(args)
        .output()
        .expect("the command runs")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn vendored() -> Value {
    openai_uploads::spec::read(&common::vendored_spec()).expect("the vendored spec parses")
}

fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, serde_json::to_vec(value).expect("JSON")).expect("written");
    file
}

/// Runs `spec diff` of the vendored spec against `upstream` with `extra` flags.
fn diff_against(upstream: &Path, extra: &[&str]) -> Output {
    let vendored = common::vendored_spec();
    let mut args = vec!["spec", "diff", "--upstream", path(upstream)];
    args.extend(["--vendored", path(&vendored)]);
    args.extend(extra);
    openai(&args)
}

#[test]
fn fail_on_chooses_which_changes_exit_non_zero() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut added = vendored();
    added["components"]["schemas"]["Upload"]["properties"]["archived_at"] =
        json!({ "type": "integer" });
    let added = write(dir.path(), "added.json", &added);
    let mut removed = vendored();
    removed["components"]["schemas"]["Upload"]["properties"]
        .as_object_mut()
        .expect("properties")
        .remove("expires_at");
    let removed = write(dir.path(), "removed.json", &removed);
    let same = common::vendored_spec();

    for (upstream, flags, code) in [
        (&same, &[][..], 0),
        (&same, &["--fail-on", "breaking"][..], 0),
        (&added, &[][..], 1),
        (&added, &["--fail-on", "any"][..], 1),
        (&added, &["--fail-on", "breaking"][..], 0),
        (&removed, &["--fail-on", "breaking"][..], 2),
        (&removed, &["--fail-on", "any"][..], 2),
    ] {
        let output = diff_against(upstream, flags);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{} {flags:?}:\n{}",
            upstream.display(),
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let output = diff_against(&added, &["--fail-on", "breaking"]);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("field added `Upload::archived_at` (major)"),
        "{report}"
    );
    let output = diff_against(&same, &["--fail-on", "sometimes"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_spec_with_no_paths_is_malformed_for_diff_as_for_extract() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let empty = write(
        dir.path(),
        "empty.json",
        &json!({ "openapi": "3.1.0", "info": { "title": "x", "version": "1" } }),
    );
    let diff = openai(&["spec", "diff", "--upstream", path(&empty)]);
    let extract = openai(&["spec", "extract", "--upstream", path(&empty)]);
    assert_eq!(diff.status.code(), Some(4));
    assert_eq!(diff.status.code(), extract.status.code());
    for output in [&diff, &extract] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("malformed spec at `/paths`"), "{stderr}");
    }
    assert!(diff.stdout.is_empty());
}

/// Serves `body` with `status` to one request on loopback; returns the URL.
fn serve_once(status: &'static str, body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("an address").port();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("a connection");
        let mut reader = BufReader::new(stream.try_clone().expect("a second handle"));
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("head written");
        stream.write_all(&body).expect("body written");
    });
    format!("http://127.0.0.1:{port}/openapi.yaml")
}

#[test]
fn an_upstream_url_is_fetched() {
    let text = std::fs::read(common::vendored_spec()).expect("the vendored spec is readable");
    let url = serve_once("200 OK", text);
    let vendored = common::vendored_spec();
    let output = openai(&[
        "spec",
        "diff",
        "--upstream",
        &url,
        "--vendored",
        path(&vendored),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let url = serve_once("404 Not Found", b"gone".to_vec());
    let output = openai(&["spec", "diff", "--upstream", &url]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(&url) && stderr.contains("404"), "{stderr}");
}

#[test]
fn todays_report_groups_kept_differences_by_reason() {
    let Some(upstream) = common::upstream_spec() else {
        return;
    };
    let output = openai(&["spec", "diff", "--upstream", path(&upstream)]);
    assert_eq!(output.status.code(), Some(0));
    let report = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = report.lines().collect();
    let grouped: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("added-responses"))
        .collect();
    assert_eq!(grouped.len(), 1, "{report}");
    assert!(
        grouped[0].starts_with("  16 added-responses: Upstream declares only"),
        "{report}"
    );
    assert!(!report.contains("removed"), "{report}");

    let output = openai(&[
        "spec",
        "diff",
        "--format",
        "json",
        "--upstream",
        path(&upstream),
    ]);
    let json: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(json["release"], "patch");
    assert_eq!(json["rust"], json!([]));
    let ours = json["kept"]
        .as_array()
        .expect("kept")
        .iter()
        .filter(|k| {
            k["detail"]
                .as_str()
                .is_some_and(|d| d.contains("added by us"))
        })
        .count();
    assert_eq!(ours, 7, "{json}");
}
