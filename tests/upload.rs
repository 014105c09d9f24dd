#![cfg(feature = "emulator")]
//! The one-call upload against the in-process emulator over loopback:
//! sizes at the part boundaries, md5 on and off, injected faults, a permanent
//! failure mid-upload, cancel, resume after a crash, progress, and readers.

mod common;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use openai_uploads::emulator::{Emulator, EmulatorConfig, FaultScope, Faults};
use openai_uploads::types::UploadStatus;
use openai_uploads::upload::{
    Progress, Purpose, ResumeState, RetryPolicy, SourceIdentity, UploadBuilder,
};
use openai_uploads::validate::Rule;
use openai_uploads::{Client, Error, PartBody};

const KIB: u64 = 1024;
/// Small parts keep the files small and the tests fast.
const PART: u64 = 64 * KIB;
const API_KEY: &str = "sk-test-secret-key";

fn client(emulator: &Emulator) -> Client {
    common::client_of(emulator, API_KEY)
}

/// Retries as many as a flaky server needs, with short waits.
fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(12)
        .with_initial_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(50))
        .with_max_retry_after(Duration::from_millis(100))
}

use common::{content, write_file};

fn binary_upload(client: &Client, path: &Path) -> UploadBuilder {
    client
        .upload_file(path)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(PART)
}

/// The File of a completed Upload holds exactly `expected`.
async fn assert_uploaded(client: &Client, upload: &openai_uploads::types::Upload, expected: &[u8]) {
    assert_eq!(upload.status, UploadStatus::Completed);
    assert_eq!(upload.bytes, expected.len() as i64);
    let file = upload
        .file
        .as_ref()
        .expect("a completed Upload has its File");
    assert_eq!(file.bytes, expected.len() as i64);
    let downloaded = common::download(client, &file.id).await;
    assert_eq!(downloaded.len(), expected.len(), "downloaded length");
    assert_eq!(
        common::md5_hex(&downloaded),
        common::md5_hex(expected),
        "downloaded md5"
    );
}

fn faults_injected(emulator: &Emulator) -> usize {
    emulator
        .requests()
        .iter()
        .filter(|r| r.fault.is_some())
        .count()
}

fn part_requests(emulator: &Emulator) -> usize {
    emulator
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/parts"))
        .count()
}

/// The Upload id the emulator saw parts for.
fn upload_id_from_requests(emulator: &Emulator) -> Option<String> {
    emulator.requests().iter().find_map(|r| {
        r.path
            .strip_prefix("/v1/uploads/")?
            .strip_suffix("/parts")
            .map(str::to_string)
    })
}

async fn wait_for_parts(progress: &mut tokio::sync::watch::Receiver<Progress>, parts: u32) {
    tokio::time::timeout(
        Duration::from_secs(20),
        progress.wait_for(|p| p.parts_confirmed >= parts),
    )
    .await
    .expect("parts confirmed in time")
    .expect("upload still running");
}

/// Uploads a `.bin` file of `len` bytes with default settings but `part_size`.
async fn round_trip(len: u64, concurrency: usize, md5: bool) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(len, len);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let emulator = common::emulator_with(Faults::default()).await;
    let client = client(&emulator);
    let upload = binary_upload(&client, &path)
        .concurrency(concurrency)
        .md5(md5)
        .send()
        .await
        .expect("upload completes");
    assert_uploaded(&client, &upload, &bytes).await;
    let parts = len.div_ceil(PART) as usize;
    assert_eq!(part_requests(&emulator), parts, "one request per part");
    assert_eq!(emulator.received_parts().len(), parts);
    assert!(
        emulator
            .requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(format!("Bearer {API_KEY}").as_str()))
    );
}

#[tokio::test]
async fn empty_file_is_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "empty.jsonl", b"");
    let emulator = common::emulator_with(Faults::default()).await;
    let error = client(&emulator)
        .upload_file(&path)
        .purpose(Purpose::FineTune)
        .part_size(PART)
        .send()
        .await
        .expect_err("an empty file cannot be uploaded");
    match &error {
        Error::InvalidRequest(violations) => {
            assert_eq!(violations[0].rule, Rule::BytesPositive);
            assert_eq!(violations[0].rule.name(), "create.bytes.positive");
        }
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
    assert!(emulator.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn one_byte_file() {
    round_trip(1, 4, true).await;
}

#[tokio::test]
async fn exact_multiple_of_the_part_size() {
    round_trip(4 * PART, 4, true).await;
}

#[tokio::test]
async fn one_byte_over_a_multiple_of_the_part_size() {
    round_trip(4 * PART + 1, 4, true).await;
}

#[tokio::test]
async fn several_parts_concurrently() {
    round_trip(11 * PART + 12_345, 3, true).await;
}

#[tokio::test]
async fn several_parts_one_at_a_time() {
    round_trip(5 * PART + 7, 1, true).await;
}

#[tokio::test]
async fn md5_off_works() {
    round_trip(6 * PART + 99, 4, false).await;
}

#[tokio::test]
async fn jsonl_for_fine_tune_with_guessed_mime_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    let mut i = 0;
    while (bytes.len() as u64) < 3 * PART {
        bytes.extend_from_slice(
            format!("{{\"prompt\": \"p{i}\", \"completion\": \"c{i}\"}}\n").as_bytes(),
        );
        i += 1;
    }
    let path = write_file(dir.path(), "train.jsonl", &bytes);
    let emulator = common::emulator_with(Faults::default()).await;
    let client = client(&emulator);
    let upload = client
        .upload_file(&path)
        .purpose(Purpose::FineTune)
        .part_size(PART)
        .send()
        .await
        .expect("upload completes");
    assert_eq!(upload.filename, "train.jsonl");
    assert_uploaded(&client, &upload, &bytes).await;
}

/// Runs an upload of `parts` parts (plus a few bytes) against `faults`.
async fn upload_through(
    faults: Faults,
    parts: u64,
    concurrency: usize,
    retry: RetryPolicy,
) -> (Emulator, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(parts * PART + 3, parts);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let emulator = common::emulator_with(faults).await;
    let client = client(&emulator);
    let started = Instant::now();
    let upload = binary_upload(&client, &path)
        .concurrency(concurrency)
        .retry(retry)
        .send()
        .await
        .expect("upload completes despite the faults");
    let elapsed = started.elapsed();
    // Downloads are not in scope of parts-only faults; for all-request
    // faults, the download is done without them.
    emulator.set_faults(Faults::default());
    assert_uploaded(&client, &upload, &bytes).await;
    (emulator, elapsed)
}

#[tokio::test]
async fn retries_server_errors_on_parts() {
    let faults = Faults::default()
        .with_scope(FaultScope::PartsOnly)
        .with_server_error_every(3);
    let (emulator, _) = upload_through(faults, 8, 4, fast_retry()).await;
    let injected = faults_injected(&emulator);
    assert!(injected >= 3, "server errors injected: {injected}");
    assert!(
        emulator
            .requests()
            .iter()
            .filter(|r| r.fault.is_some())
            .all(|r| r.fault.as_deref() == Some("ServerError") && r.path.ends_with("/parts"))
    );
    // 9 parts, each failed attempt sent again.
    assert_eq!(part_requests(&emulator), 9 + injected);
}

#[tokio::test]
async fn honours_retry_after_on_rate_limits() {
    let faults = Faults::default()
        .with_rate_limit_every(2)
        .with_retry_after(Duration::from_millis(50));
    // One part at a time, so the waits add up.
    let (emulator, elapsed) = upload_through(faults, 5, 1, fast_retry()).await;
    let limited = emulator
        .requests()
        .iter()
        .filter(|r| r.fault.as_deref() == Some("RateLimit"))
        .count();
    assert!(limited >= 3, "rate limits injected: {limited}");
    assert!(
        elapsed >= Duration::from_millis(50) * limited as u32,
        "waited {elapsed:?} for {limited} rate limits of 50 ms"
    );
}

#[tokio::test]
async fn resends_parts_after_dropped_connections() {
    let faults = Faults::default()
        .with_scope(FaultScope::PartsOnly)
        .with_drop_every(2);
    let (emulator, _) = upload_through(faults, 8, 4, fast_retry()).await;
    let dropped = emulator
        .requests()
        .iter()
        .filter(|r| r.fault.as_deref() == Some("DropConnection"))
        .count();
    assert!(dropped >= 4, "connections dropped: {dropped}");
    // A dropped part is never stored: exactly one stored copy per part.
    assert_eq!(emulator.received_parts().len(), 9);
}

#[tokio::test]
async fn survives_latency() {
    let faults = Faults::default().with_latency(Duration::from_millis(20));
    let (emulator, elapsed) = upload_through(faults, 6, 2, fast_retry()).await;
    assert_eq!(faults_injected(&emulator), 0);
    // create + 7 parts two at a time + complete, each 20 ms or more.
    assert!(elapsed >= Duration::from_millis(20 * 6), "{elapsed:?}");
}

#[tokio::test]
async fn default_retry_budget_carries_half_the_requests_failing() {
    let faults = Faults::default().with_random_rate(0.5).with_seed(0x5EED);
    // The default budget (12 retries), with waits shortened for the test.
    let retry = RetryPolicy::default()
        .with_max_retries(RetryPolicy::default().max_retries)
        .with_initial_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(20))
        .with_max_retry_after(Duration::from_millis(20));
    assert_eq!(retry.max_retries, 12);
    let (emulator, _) = upload_through(faults, 20, 4, retry).await;
    let requests = emulator.requests();
    let kinds = |kind: &str| {
        requests
            .iter()
            .filter(|r| r.fault.as_deref() == Some(kind))
            .count()
    };
    let injected = faults_injected(&emulator);
    assert!(
        injected >= 8,
        "faults injected: {injected} of {}",
        requests.len()
    );
    assert!(kinds("ServerError") > 0 && kinds("RateLimit") > 0 && kinds("DropConnection") > 0);
    // The download is after the faults were lifted; it must not count here.
    assert_eq!(emulator.received_parts().len(), 21);
}

#[tokio::test]
async fn permanent_failure_mid_upload_is_typed_and_names_the_part() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(8 * PART, 8);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let emulator =
        common::emulator_with(Faults::default().with_latency(Duration::from_millis(60))).await;
    let client = client(&emulator);
    let (handle, upload) = binary_upload(&client, &path)
        .concurrency(1)
        .retry(fast_retry())
        .start();
    let task = tokio::spawn(upload);
    let mut progress = handle.progress();
    wait_for_parts(&mut progress, 1).await;
    // Behind the client's back: the Upload is no longer pending.
    let upload_id = upload_id_from_requests(&emulator).expect("a part was sent");
    client
        .cancel_upload(&upload_id)
        .await
        .expect("the Upload is cancelled");
    let error = task.await.unwrap().expect_err("the next part is refused");
    match &error {
        Error::Part {
            part_number,
            offset,
            len,
            cause,
        } => {
            assert!(*part_number >= 2, "part {part_number}");
            assert_eq!(*offset, u64::from(*part_number - 1) * PART);
            assert_eq!(*len, PART);
            match cause.as_ref() {
                Error::Api { status, error, .. } => {
                    assert_eq!(*status, 400);
                    assert_eq!(error.code.as_deref(), Some("upload.status.pending"));
                }
                other => panic!("expected an API error, got {other:?}"),
            }
        }
        other => panic!("expected Error::Part, got {other:?}"),
    }
    assert_eq!(error.status(), Some(400));
    assert!(error.to_string().contains("part "), "{error}");
    // Permanent: the refused part was not sent again.
    let refused = part_requests(&emulator);
    assert!(refused <= 3, "part requests: {refused}");
    let more = client
        .add_upload_part(&upload_id, PartBody::from_bytes(&b"x"[..]))
        .await
        .expect_err("the Upload stays cancelled");
    assert_eq!(more.status(), Some(400));
}

#[tokio::test]
async fn cancel_stops_the_upload_and_cancels_it_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(10 * PART, 10);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.bin.upload-state");
    let emulator =
        common::emulator_with(Faults::default().with_latency(Duration::from_millis(40))).await;
    let client = client(&emulator);
    let (handle, upload) = binary_upload(&client, &path)
        .concurrency(1)
        .retry(fast_retry())
        .state_file(&state)
        .start();
    let task = tokio::spawn(upload);
    let mut progress = handle.progress();
    wait_for_parts(&mut progress, 1).await;
    handle.cancel();
    let error = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("cancel returns promptly")
        .unwrap()
        .expect_err("a cancelled upload fails");
    assert!(matches!(error, Error::Cancelled), "{error:?}");
    assert!(progress.borrow().parts_confirmed < 10);
    let upload_id = upload_id_from_requests(&emulator).expect("a part was sent");
    assert!(
        emulator
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path == format!("/v1/uploads/{upload_id}/cancel")),
        "the Upload was cancelled on the server"
    );
    let more = client
        .add_upload_part(&upload_id, PartBody::from_bytes(&b"x"[..]))
        .await
        .expect_err("the Upload is cancelled");
    let more = more;
    assert_eq!(more.status(), Some(400));
    assert_eq!(
        more.api_error().and_then(|e| e.code.as_deref()),
        Some("upload.status.pending")
    );
    assert!(
        !state.exists(),
        "a cancelled upload leaves no state to resume"
    );
}

#[tokio::test]
async fn resumes_after_a_crash_without_resending_confirmed_parts() {
    const PARTS: u32 = 12;
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(u64::from(PARTS) * PART, 12);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let state_path = dir.path().join("data.bin.upload-state");
    let emulator =
        common::emulator_with(Faults::default().with_latency(Duration::from_millis(30))).await;
    let client = client(&emulator);
    let builder = || {
        binary_upload(&client, &path)
            .concurrency(1)
            .retry(fast_retry())
            .state_file(&state_path)
    };

    // First run: killed after 3 confirmed parts, like a process that dies.
    let (handle, upload) = builder().start();
    let task = tokio::spawn(upload);
    let mut progress = handle.progress();
    wait_for_parts(&mut progress, 3).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    // Let the server finish with whatever was in flight.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let text = std::fs::read_to_string(&state_path).expect("the state file is kept");
    assert!(!text.contains("Bearer"), "{text}");
    assert!(!text.contains(API_KEY), "{text}");
    let saved = ResumeState::load(&state_path).unwrap().expect("a state");
    assert!(saved.parts.len() >= 3, "{saved:?}");
    assert!(saved.parts.len() < PARTS as usize, "{saved:?}");
    let creates_before = emulator
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/uploads")
        .count();
    assert_eq!(creates_before, 1);
    let stored_before = emulator
        .received_parts()
        .iter()
        .filter(|p| p.upload_id == saved.upload_id)
        .count();

    // Second run: same file, same state file, a faster server.
    emulator.set_faults(Faults::default());
    let (handle, upload) = builder().start();
    let progress = handle.progress();
    let upload = upload.await.expect("the resumed upload completes");
    assert_eq!(upload.id, saved.upload_id, "the same Upload was taken up");
    assert_uploaded(&client, &upload, &bytes).await;
    assert_eq!(
        emulator
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/uploads")
            .count(),
        1,
        "no new Upload was created"
    );
    let stored = emulator
        .received_parts()
        .iter()
        .filter(|p| p.upload_id == saved.upload_id)
        .count();
    assert!(stored <= PARTS as usize + 1, "stored {stored} parts");
    assert_eq!(
        stored - stored_before,
        PARTS as usize - saved.parts.len(),
        "only the parts missing from the state file were sent again"
    );
    let last = *progress.borrow();
    assert_eq!(last.parts_confirmed, PARTS);
    assert_eq!(last.bytes_confirmed, bytes.len() as u64);
    assert!(
        !state_path.exists(),
        "the state file is removed after success"
    );
}

#[tokio::test]
async fn resumes_after_the_emulator_restarts_on_its_data_dir() {
    const PARTS: u32 = 8;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("emulator");
    let bytes = content(u64::from(PARTS) * PART, 8);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let state_path = dir.path().join("data.bin.upload-state");
    let start = |faults: Faults| {
        Emulator::start(
            EmulatorConfig::default()
                .with_data_dir(data_dir.clone())
                .with_faults(faults),
        )
    };
    let upload_with = |client: &Client| {
        binary_upload(client, &path)
            .concurrency(1)
            .retry(fast_retry())
            .state_file(&state_path)
    };

    // First emulator: the upload stops after 3 confirmed parts, and so does the server.
    let emulator = start(Faults::default().with_latency(Duration::from_millis(30)))
        .await
        .expect("emulator starts");
    let first = client(&emulator);
    let (handle, upload) = upload_with(&first).start();
    let task = tokio::spawn(upload);
    let mut progress = handle.progress();
    wait_for_parts(&mut progress, 3).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_millis(200)).await;
    emulator.stop().await;
    let saved = ResumeState::load(&state_path).unwrap().expect("a state");
    assert!(saved.parts.len() >= 3, "{saved:?}");

    // A new emulator on the same directory: the same Upload is taken up and completes.
    let emulator = start(Faults::default()).await.expect("emulator restarts");
    let second = client(&emulator);
    let upload = upload_with(&second)
        .start()
        .1
        .await
        .expect("the resumed upload completes after the restart");
    assert_eq!(upload.id, saved.upload_id);
    assert_uploaded(&second, &upload, &bytes).await;
    let creates = emulator
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/uploads")
        .count();
    assert_eq!(creates, 0, "no new Upload was created");
    assert_eq!(
        emulator.received_parts().len(),
        PARTS as usize - saved.parts.len(),
        "only the missing parts were sent to the new emulator"
    );
}

#[tokio::test]
async fn resume_state_of_another_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(3 * PART, 3);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let state_path = dir.path().join("data.bin.upload-state");
    let other = ResumeState {
        format: 4,
        upload_id: "upload_elsewhere".into(),
        expires_at: i64::MAX / 2,
        source: SourceIdentity {
            filename: "data.bin".into(),
            purpose: "batch".into(),
            mime_type: "application/octet-stream".into(),
            bytes: 3 * PART + 1,
            part_size: PART,
            modified_ms: None,
        },
        parts: Default::default(),
        checksums: Default::default(),
    };
    other.save(&state_path).unwrap();
    let emulator = common::emulator_with(Faults::default()).await;
    let error = binary_upload(&client(&emulator), &path)
        .state_file(&state_path)
        .send()
        .await
        .expect_err("the state describes another file");
    match &error {
        Error::ResumeMismatch {
            path,
            field,
            saved,
            given,
            ..
        } => {
            assert_eq!(path, &state_path);
            assert_eq!(*field, "bytes");
            assert_eq!(saved, &(3 * PART + 1).to_string());
            assert_eq!(given, &(3 * PART).to_string());
        }
        other => panic!("expected Error::ResumeMismatch, got {other:?}"),
    }
    assert!(
        error.to_string().contains("remove the state file"),
        "{error}"
    );
    assert!(emulator.requests().is_empty(), "nothing was sent");
    assert!(state_path.exists(), "a foreign state file is left alone");
}

#[tokio::test]
async fn resume_state_of_a_modified_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "data.bin", &content(3 * PART, 4));
    let state_path = dir.path().join("data.bin.upload-state");
    let emulator = common::emulator_with(
        Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_latency(std::time::Duration::from_millis(50)),
    )
    .await;
    let client = client(&emulator);
    let upload = || {
        binary_upload(&client, &path)
            .concurrency(1)
            .state_file(&state_path)
    };
    let (handle, first) = upload().start();
    let running = tokio::spawn(first);
    let mut progress = handle.progress();
    progress
        .wait_for(|p| p.parts_confirmed >= 1)
        .await
        .expect("a part is confirmed");
    running.abort();
    let _ = running.await;
    assert!(state_path.exists());

    // Same name and size, other bytes, a later modification time.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_file(dir.path(), "data.bin", &content(3 * PART, 5));
    let error = upload().send().await.expect_err("the file changed");
    assert!(
        matches!(
            error,
            Error::ResumeMismatch {
                field: "modified",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(state_path.exists(), "the state file is left for the user");
}

#[tokio::test]
async fn progress_ends_complete_and_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(9 * PART + 500, 9);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let emulator = common::emulator_with(
        Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_server_error_every(4),
    )
    .await;
    let client = client(&emulator);
    let (handle, upload) = binary_upload(&client, &path)
        .concurrency(3)
        .retry(fast_retry())
        .start();
    let mut progress = handle.progress();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while progress.changed().await.is_ok() {
            seen.push(*progress.borrow_and_update());
        }
        seen
    });
    let upload = upload.await.expect("upload completes");
    let seen = watcher.await.unwrap();
    let last = *seen.last().expect("progress was reported");
    assert_eq!(last.bytes_total, bytes.len() as u64);
    assert_eq!(last.parts_total, 10);
    assert_eq!(last.bytes_confirmed, last.bytes_total);
    assert_eq!(last.parts_confirmed, last.parts_total);
    assert_eq!(last.bytes_sent, last.bytes_total);
    for pair in seen.windows(2) {
        assert!(pair[1].bytes_confirmed >= pair[0].bytes_confirmed);
        assert!(pair[1].parts_confirmed >= pair[0].parts_confirmed);
    }
    for p in &seen {
        assert!(
            p.bytes_confirmed <= p.bytes_sent || p.bytes_total == 0,
            "{p:?}"
        );
        assert!(p.bytes_sent <= p.bytes_total, "{p:?}");
    }
    assert_uploaded(&client, &upload, &bytes).await;
}

async fn reader_round_trip(faults: Faults, md5: bool) -> Emulator {
    let bytes = content(7 * PART + 77, 7);
    let emulator = common::emulator_with(faults).await;
    let client = client(&emulator);
    let reader = std::io::Cursor::new(bytes.clone());
    let upload = client
        .upload_reader(reader, bytes.len() as u64, "stream.bin")
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(PART)
        .concurrency(3)
        .md5(md5)
        .retry(fast_retry())
        .send()
        .await
        .expect("upload from a reader completes");
    assert_eq!(upload.filename, "stream.bin");
    assert_uploaded(&client, &upload, &bytes).await;
    emulator
}

#[tokio::test]
async fn reader_upload_survives_dropped_connections() {
    let emulator = reader_round_trip(
        Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_drop_every(2),
        true,
    )
    .await;
    assert!(faults_injected(&emulator) >= 3);
    assert_eq!(emulator.received_parts().len(), 8);
}

#[tokio::test]
async fn reader_upload_without_md5_survives_server_errors() {
    let emulator = reader_round_trip(
        Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_server_error_every(2),
        false,
    )
    .await;
    assert!(faults_injected(&emulator) >= 3);
    assert_eq!(emulator.received_parts().len(), 8);
}

/// A reader that counts the bytes taken from it.
struct CountingReader {
    inner: std::io::Cursor<Vec<u8>>,
    read: Arc<AtomicU64>,
}

impl tokio::io::AsyncRead for CountingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.read.fetch_add(n, Ordering::Relaxed);
        polled
    }
}

#[tokio::test]
async fn cancel_stops_reading_the_source() {
    const BIG_PART: u64 = 2 * 1024 * KIB;
    let bytes = content(8 * BIG_PART, 80);
    let read = Arc::new(AtomicU64::new(0));
    let reader = CountingReader {
        inner: std::io::Cursor::new(bytes.clone()),
        read: read.clone(),
    };
    let emulator =
        common::emulator_with(Faults::default().with_latency(Duration::from_millis(100))).await;
    let client = client(&emulator);
    let (handle, upload) = client
        .upload_reader(reader, bytes.len() as u64, "stream.bin")
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(BIG_PART)
        .concurrency(1)
        .retry(fast_retry())
        .start();
    let task = tokio::spawn(upload);
    let mut progress = handle.progress();
    wait_for_parts(&mut progress, 1).await;
    handle.cancel();
    let error = task.await.unwrap().expect_err("cancelled");
    assert!(matches!(error, Error::Cancelled), "{error:?}");
    let at_cancel = read.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = read.load(Ordering::Relaxed);
    assert_eq!(
        later, at_cancel,
        "the source is not read after the upload ended"
    );
    assert!(
        later < bytes.len() as u64,
        "read {later} of {}",
        bytes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_files_share_one_budget_and_a_missing_one_fails_alone() {
    use futures::StreamExt;

    let emulator = common::emulator_with(Faults::default()).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    let mut expected = std::collections::HashMap::new();
    for (i, len) in [3 * PART + 7, PART, 2 * PART].into_iter().enumerate() {
        let bytes = content(len, i as u64 + 1);
        let path = write_file(dir.path(), &format!("f{i}.bin"), &bytes);
        expected.insert(path.clone(), bytes);
        paths.push(path);
    }
    let missing = dir.path().join("missing.bin");
    paths.insert(1, missing.clone());

    let outcomes: Vec<_> = client
        .upload_files(paths)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(PART)
        .concurrency(3)
        .stream()
        .collect()
        .await;
    assert_eq!(outcomes.len(), 4);
    for outcome in outcomes {
        if outcome.path == missing {
            match outcome.result {
                Err(Error::Io { path, .. }) => assert_eq!(path, missing),
                other => panic!("the missing file gave {other:?}"),
            }
            continue;
        }
        let upload = outcome.result.expect("an existing file uploads");
        assert_eq!(upload.status, UploadStatus::Completed);
        let file = upload.file.expect("completed Upload has its File");
        let stored = common::download(&client, &file.id).await;
        assert_eq!(
            &stored,
            &expected[&outcome.path],
            "{}",
            outcome.path.display()
        );
    }
    // Every part of the three files reached the server, and only those.
    let parts = emulator.received_parts();
    assert_eq!(parts.len(), 4 + 1 + 2, "{parts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_files_cancelled_before_they_start_create_no_upload() {
    use futures::StreamExt;

    let emulator = common::emulator_with(Faults::default()).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().expect("tempdir");
    let paths: Vec<PathBuf> = (0..3)
        .map(|i| write_file(dir.path(), &format!("c{i}.bin"), &content(PART, i)))
        .collect();
    let (handle, outcomes) = client
        .upload_files(paths.clone())
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(PART)
        .start();
    assert_eq!(
        handle
            .files()
            .iter()
            .map(|(p, _)| p.clone())
            .collect::<Vec<_>>(),
        paths
    );
    handle.cancel();
    let outcomes: Vec<_> = outcomes.collect().await;
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o.result, Err(Error::Cancelled))),
        "{outcomes:?}"
    );
    assert!(emulator.requests().is_empty(), "{:?}", emulator.requests());
}

#[tokio::test]
async fn many_files_with_no_parts_in_flight_are_refused_not_clamped() {
    use futures::StreamExt;

    let emulator = common::emulator_with(Faults::default()).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().expect("tempdir");
    let paths: Vec<PathBuf> = (0..2)
        .map(|i| write_file(dir.path(), &format!("z{i}.bin"), &content(PART, i)))
        .collect();
    let outcomes: Vec<_> = client
        .upload_files(paths)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .concurrency(0)
        .stream()
        .collect()
        .await;
    assert_eq!(outcomes.len(), 2);
    for outcome in outcomes {
        match outcome.result {
            Err(Error::InvalidSetting { setting, .. }) => assert_eq!(setting, "concurrency"),
            other => panic!("{}: {other:?}", outcome.path.display()),
        }
    }
    assert!(emulator.requests().is_empty(), "nothing is sent");
}

#[test]
fn a_one_call_upload_runs_on_a_small_thread_stack() {
    // The engine's stages are boxed: held inline, their state machines made
    // every frame that polls them as large, and a debug build overflowed the
    // 2 MiB stack of a test or worker thread. Half of that is asked here.
    let (emulator, _runtime) = common::emulator_on_own_runtime(Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(3 * 4096 + 5, 71);
    let path = common::write_file(dir.path(), "small-stack.jsonl", &bytes);
    let client = common::client_of(&emulator, "sk-test");
    let downloader = common::client_of(&emulator, "sk-test");
    let uploaded = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(client.upload_file(&path).part_size(4096).send())
        })
        .expect("thread")
        .join()
        .expect("no stack overflow");
    let upload = uploaded.expect("uploaded");
    let file = upload.file.expect("the File");
    let downloaded = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(common::download(&downloader, &file.id))
    })
    .join()
    .expect("download");
    assert_eq!(downloaded, bytes);
}
