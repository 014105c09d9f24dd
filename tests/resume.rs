#![cfg(feature = "emulator")]
//! Failures that lose nothing, against the in-process emulator over
//! loopback: outages past the retry budget, pauses, expired and refused
//! Uploads, changed settings, an unreachable server, settings out of range.

mod common;

use std::path::Path;
use std::time::Duration;

use openai_uploads::emulator::{Emulator, FaultScope, Faults};
use openai_uploads::types::UploadStatus;
use openai_uploads::upload::{Purpose, ResumeState, RetryPolicy, UploadBuilder};
use openai_uploads::{Client, Config, Error, PartBody};

use common::{content, md5_hex, write_file};

const PART: u64 = 64 * 1024;
const PARTS: u32 = 8;

fn client(emulator: &Emulator) -> Client {
    common::client_of(emulator, "sk-test-resume")
}

/// The default budget's shape with waits short enough for a test.
fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(20))
        .with_max_retry_after(Duration::from_millis(20))
}

fn upload(client: &Client, path: &Path) -> UploadBuilder {
    client
        .upload_file(path)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(PART)
        .concurrency(1)
        .retry(fast_retry())
}

/// A slow emulator, so that a test can act between parts.
async fn slow_emulator() -> Emulator {
    common::emulator_with(
        Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_latency(Duration::from_millis(20)),
    )
    .await
}

/// Every part request fails with a 500, and nothing else does.
fn outage() -> Faults {
    Faults::default()
        .with_scope(FaultScope::PartsOnly)
        .with_server_error_every(1)
}

fn count(emulator: &Emulator, what: impl Fn(&str, &str) -> bool) -> usize {
    emulator
        .requests()
        .iter()
        .filter(|r| what(&r.method, &r.path))
        .count()
}

fn creates(emulator: &Emulator) -> usize {
    count(emulator, |m, p| m == "POST" && p == "/v1/uploads")
}

fn cancels(emulator: &Emulator) -> usize {
    count(emulator, |m, p| m == "POST" && p.ends_with("/cancel"))
}

fn parts_of(emulator: &Emulator, upload_id: &str) -> usize {
    emulator
        .received_parts()
        .iter()
        .filter(|p| p.upload_id == upload_id)
        .count()
}

/// Starts `builder` and waits until `parts` parts are confirmed.
async fn started(
    builder: UploadBuilder,
    parts: u32,
) -> (
    openai_uploads::upload::UploadHandle,
    tokio::task::JoinHandle<Result<openai_uploads::types::Upload, Error>>,
) {
    let (handle, upload) = builder.start();
    let task = tokio::spawn(upload);
    tokio::time::timeout(
        Duration::from_secs(30),
        handle.progress().wait_for(|p| p.parts_confirmed >= parts),
    )
    .await
    .expect("parts confirmed in time")
    .expect("upload running");
    (handle, task)
}

/// Starts `builder`, pauses it once `parts` parts are confirmed, and checks
/// that it stopped.
async fn paused(builder: UploadBuilder, parts: u32) {
    let (handle, task) = started(builder, parts).await;
    handle.pause();
    assert!(task.await.unwrap().is_err(), "a paused upload stops");
}

/// Checks that the completed Upload holds `bytes` and that the completion
/// the emulator received listed every part and carried the file's md5.
async fn assert_complete(
    emulator: &Emulator,
    client: &Client,
    upload: &openai_uploads::types::Upload,
    bytes: &[u8],
) {
    assert_eq!(upload.status, UploadStatus::Completed);
    let file = upload.file.as_ref().expect("a File");
    assert_eq!(common::download(client, &file.id).await, bytes);
    let completion = emulator
        .completions()
        .into_iter()
        .rfind(|c| c.upload_id == upload.id)
        .expect("a completion of this Upload");
    assert_eq!(completion.md5.as_deref(), Some(md5_hex(bytes).as_str()));
    assert_eq!(
        completion.part_ids.len(),
        bytes.len().div_ceil(PART as usize)
    );
}

#[tokio::test]
async fn an_outage_past_the_retry_budget_keeps_the_upload_pending_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(u64::from(PARTS) * PART, 1);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");
    let emulator = slow_emulator().await;
    let client = client(&emulator);

    let (_handle, task) = started(upload(&client, &path).state_file(&state), 2).await;
    emulator.set_faults(outage());
    let error = task
        .await
        .unwrap()
        .expect_err("the outage outlasts the retries");
    let Error::Interrupted {
        upload_id,
        expires_at,
        state_file,
        reason,
    } = &error
    else {
        panic!("expected Error::Interrupted, got {error:?}");
    };
    assert_eq!(state_file, &state);
    assert!(matches!(reason.as_ref(), Error::Part { .. }), "{reason:?}");
    assert_eq!(reason.status(), Some(500));
    assert_eq!(error.resumable(), Some((upload_id.as_str(), *expires_at)));
    let message = error.to_string();
    assert!(message.contains(upload_id.as_str()), "{message}");
    assert!(message.contains("data.state"), "{message}");
    assert!(message.contains("UTC"), "the expiry is printed: {message}");
    assert_eq!(cancels(&emulator), 0, "the Upload is left pending");
    let saved = ResumeState::load(&state)
        .unwrap()
        .expect("the state file is kept");
    assert_eq!(&saved.upload_id, upload_id);
    assert!(saved.parts.len() >= 2);
    let before = parts_of(&emulator, upload_id);

    // After the outage: the same upload again.
    emulator.set_faults(Faults::default());
    let (handle, second) = upload(&client, &path).state_file(&state).start();
    let progress = handle.progress();
    let done = second.await.expect("the resumed upload completes");
    assert_eq!(&done.id, upload_id, "the same Upload is completed");
    assert_eq!(creates(&emulator), 1);
    assert_eq!(
        parts_of(&emulator, upload_id) - before,
        PARTS as usize - saved.parts.len(),
        "only the missing parts were sent"
    );
    assert_complete(&emulator, &client, &done, &bytes).await;
    let resumed = saved.parts.len() as u64 * PART;
    assert_eq!(progress.borrow().bytes_resumed, resumed);
    assert!(!state.exists(), "a completed upload leaves no state");
}

#[tokio::test]
async fn an_outage_without_a_state_file_cancels_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "data.bin", &content(u64::from(PARTS) * PART, 2));
    let emulator = slow_emulator().await;
    let client = client(&emulator);

    let (_handle, task) = started(upload(&client, &path), 1).await;
    emulator.set_faults(outage());
    let error = task
        .await
        .unwrap()
        .expect_err("the outage outlasts the retries");
    assert!(matches!(error, Error::Part { .. }), "{error:?}");
    assert_eq!(error.resumable(), None);
    assert_eq!(cancels(&emulator), 1, "nothing is left pending");
    let upload_id = emulator.received_parts()[0].upload_id.clone();
    emulator.set_faults(Faults::default());
    let refused = client
        .add_upload_part(&upload_id, PartBody::from_bytes(&b"x"[..]))
        .await
        .expect_err("the Upload is cancelled");
    assert_eq!(refused.status(), Some(400));
}

#[tokio::test]
async fn a_permanent_refusal_cancels_even_with_a_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "data.bin", &content(u64::from(PARTS) * PART, 3));
    let state = dir.path().join("data.state");
    let emulator = slow_emulator().await;
    let client = client(&emulator);

    let (_handle, task) = started(upload(&client, &path).state_file(&state), 1).await;
    // A refusal no retry mends: the Upload is cancelled behind the client's
    // back, so its next part is refused with a 400.
    let upload_id = emulator.received_parts()[0].upload_id.clone();
    client.cancel_upload(&upload_id).await.expect("cancelled");
    let error = task.await.unwrap().expect_err("parts are refused");
    assert!(matches!(error, Error::Part { .. }), "{error:?}");
    assert_eq!(error.status(), Some(400));
    assert!(
        !state.exists(),
        "nothing could resume it: the state file is gone"
    );
}

#[tokio::test]
async fn a_pause_keeps_the_upload_pending_and_the_next_run_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(u64::from(PARTS) * PART, 4);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");
    let emulator = slow_emulator().await;
    let client = client(&emulator);

    let (handle, task) = started(upload(&client, &path).state_file(&state), 2).await;
    handle.pause();
    let error = task.await.unwrap().expect_err("paused");
    match &error {
        Error::Interrupted { reason, .. } => assert!(matches!(**reason, Error::Paused)),
        other => panic!("expected Error::Interrupted, got {other:?}"),
    }
    assert_eq!(cancels(&emulator), 0);
    let saved = ResumeState::load(&state).unwrap().expect("kept");

    let done = upload(&client, &path)
        .state_file(&state)
        .send()
        .await
        .expect("resumed");
    assert_eq!(done.id, saved.upload_id);
    assert_complete(&emulator, &client, &done, &bytes).await;
}

#[tokio::test]
async fn a_pause_without_a_state_file_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "data.bin", &content(u64::from(PARTS) * PART, 5));
    let emulator = slow_emulator().await;
    let client = client(&emulator);
    let (handle, task) = started(upload(&client, &path), 1).await;
    handle.pause();
    let error = task.await.unwrap().expect_err("stopped");
    assert!(matches!(error, Error::Cancelled), "{error:?}");
    assert_eq!(cancels(&emulator), 1);
}

#[tokio::test]
async fn an_upload_the_server_calls_expired_is_replaced_by_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(u64::from(PARTS) * PART, 6);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");
    let emulator = slow_emulator().await;
    let client = client(&emulator);

    paused(upload(&client, &path).state_file(&state), 2).await;
    let old = ResumeState::load(&state).unwrap().expect("kept").upload_id;
    // The server's clock passes the Upload's expiry; ours does not know.
    emulator.clock().advance(2 * 3600);

    let done = upload(&client, &path)
        .state_file(&state)
        .send()
        .await
        .expect("a fresh Upload completes");
    assert_ne!(done.id, old, "a fresh Upload");
    assert_eq!(creates(&emulator), 2);
    assert_complete(&emulator, &client, &done, &bytes).await;
    assert_eq!(parts_of(&emulator, &done.id), PARTS as usize);
    assert!(
        emulator.completions().iter().all(|c| c.upload_id != old),
        "the dead Upload was never completed"
    );
}

/// Rewrites the state file's expiry.
fn expire(state: &Path, at: i64) -> String {
    let mut saved = ResumeState::load(state).unwrap().expect("kept");
    saved.expires_at = at;
    saved.save(state).unwrap();
    saved.upload_id
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_state_file_past_its_expiry_starts_fresh_and_never_touches_the_old_upload() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(u64::from(PARTS) * PART, 7);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");
    let emulator = slow_emulator().await;
    let client = client(&emulator);
    paused(upload(&client, &path).state_file(&state), 1).await;

    for left in [-10, 60] {
        let old = expire(&state, now() + left);
        let requests_before = emulator.requests().len();
        // Refused when a fresh Upload is not allowed: nothing is sent.
        let refused = upload(&client, &path)
            .state_file(&state)
            .fresh_if_expired(false)
            .send()
            .await
            .expect_err("no fresh Upload allowed");
        match &refused {
            Error::Resume { path, message } => {
                assert_eq!(path, &state);
                assert!(message.contains(&old), "{message}");
                let said = if left < 0 { "has expired" } else { "too soon" };
                assert!(message.contains(said), "{message}");
            }
            other => panic!("expected Error::Resume, got {other:?}"),
        }
        assert_eq!(emulator.requests().len(), requests_before);
        assert!(state.exists());

        if left > 0 {
            continue;
        }
        let parts_before = parts_of(&emulator, &old);
        let done = upload(&client, &path)
            .state_file(&state)
            .send()
            .await
            .expect("a fresh Upload completes");
        assert_ne!(done.id, old);
        assert_eq!(
            parts_of(&emulator, &old),
            parts_before,
            "no part went to it"
        );
        assert_complete(&emulator, &client, &done, &bytes).await;
        // Leave a state for the next round.
        paused(upload(&client, &path).state_file(&state), 1).await;
    }
}

#[tokio::test]
async fn a_resume_with_other_settings_names_the_setting_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "data.bin", &content(u64::from(PARTS) * PART, 8));
    let state = dir.path().join("data.state");
    let emulator = slow_emulator().await;
    let client = client(&emulator);
    paused(upload(&client, &path).state_file(&state), 1).await;
    let before = emulator.requests().len();

    let error = upload(&client, &path)
        .part_size(2 * PART)
        .state_file(&state)
        .send()
        .await
        .expect_err("another part size");
    let message = error.to_string();
    assert!(
        matches!(
            &error,
            Error::ResumeMismatch {
                field: "part_size",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        message.contains(&format!("--part-size {PART}")),
        "{message}"
    );

    let error = upload(&client, &path)
        .purpose(Purpose::Vision)
        .state_file(&state)
        .send()
        .await
        .expect_err("another purpose");
    assert!(
        matches!(&error, Error::ResumeMismatch { field: "purpose", saved, .. } if saved == "assistants"),
        "{error:?}"
    );
    assert!(error.to_string().contains("cannot change"), "{error}");
    assert_eq!(emulator.requests().len(), before, "nothing was sent");
    assert!(state.exists(), "the state file is left as it is");

    // Unset, the part size comes from the state file.
    let done = client
        .upload_file(&path)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .state_file(&state)
        .send()
        .await
        .expect("resumed with the saved part size");
    assert_eq!(creates(&emulator), 1);
    assert_eq!(parts_of(&emulator, &done.id), PARTS as usize);
}

#[tokio::test]
async fn settings_out_of_range_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "data.bin", &content(100 * 1024, 9));
    let emulator = common::emulator_with(Faults::default()).await;
    let client = client(&emulator);
    for (builder, setting, says) in [
        (
            upload(&client, &path).part_size(1),
            "part_size",
            "at least 4096",
        ),
        (
            upload(&client, &path).part_size(0),
            "part_size",
            "at least 4096",
        ),
        (
            upload(&client, &path).part_size(64 * 1024 * 1024 + 1),
            "part_size",
            "at most 67108864",
        ),
        (
            upload(&client, &path).concurrency(0),
            "concurrency",
            "from 1 to 64",
        ),
        (
            upload(&client, &path).concurrency(65),
            "concurrency",
            "from 1 to 64",
        ),
    ] {
        let error = builder.send().await.expect_err("refused");
        match &error {
            Error::InvalidSetting {
                setting: s,
                message,
                ..
            } => {
                assert_eq!(*s, setting);
                assert!(message.contains(says), "{message}");
            }
            other => panic!("expected Error::InvalidSetting, got {other:?}"),
        }
    }
    assert!(emulator.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn nothing_listening_fails_naming_the_url_and_the_cause() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let base = format!("http://127.0.0.1:{port}/v1");
    let client = Config::new()
        .with_api_key("sk-test-nobody")
        .with_base_url(&base)
        .client()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "data.bin", &content(10, 10));
    let started = std::time::Instant::now();
    let error = upload(&client, &path)
        .retry(RetryPolicy::default())
        .send()
        .await
        .expect_err("nobody answers");
    let took = started.elapsed();
    assert!(error.is_unreachable(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("connection refused"), "{message}");
    assert!(message.contains(&base), "{message}");
    assert!(!message.contains("sk-test-nobody"));
    println!("gave up after {took:?}");
}

#[tokio::test]
async fn a_lost_completion_answer_still_ends_in_one_completed_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(3 * PART, 11);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let emulator = common::emulator_with(Faults::default().with_lost_completion_answers(1)).await;
    let client = client(&emulator);
    let done = upload(&client, &path)
        .send()
        .await
        .expect("the completed Upload is found");
    assert_eq!(done.status, UploadStatus::Completed);
    let completions = emulator.completions();
    assert_eq!(completions.len(), 2, "the completion was sent again");
    assert!(completions.iter().all(|c| c.upload_id == done.id));
    let file = done.file.as_ref().expect("a File");
    assert_eq!(file.bytes, bytes.len() as i64);
    assert_eq!(common::download(&client, &file.id).await, bytes);
    let files = client
        .list_files(None, None, None, None)
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(files.data.len(), 1, "one File, not two");
    assert_eq!(cancels(&emulator), 0);
}

/// An emulator holding a File named `data.bin` of `len` other bytes, made
/// after the Upload the test starts next (its clock is set back a minute),
/// and losing the next completion's answer.
async fn a_look_alike_file_and_a_lost_answer(len: u64) -> (Emulator, String) {
    let emulator = common::emulator_with(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let other = write_file(dir.path(), "data.bin", &content(len, 99));
    let other = upload(&client(&emulator), &other)
        .send()
        .await
        .expect("the other File");
    emulator.clock().advance(-60);
    emulator.set_faults(Faults::default().with_lost_completion_answers(1));
    (emulator, other.file.expect("a File").id)
}

#[tokio::test]
async fn a_lost_completion_answer_adopts_only_the_file_that_holds_these_bytes() {
    let (emulator, other_id) = a_look_alike_file_and_a_lost_answer(3 * PART).await;
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(3 * PART, 12);
    let path = write_file(dir.path(), "data.bin", &bytes);
    let client = client(&emulator);
    let done = upload(&client, &path)
        .send()
        .await
        .expect("the File with this upload's md5 is its own");
    let file = done.file.as_ref().expect("a File");
    assert_ne!(file.id, other_id, "never the other upload's File");
    assert_eq!(common::download(&client, &file.id).await, bytes);
    let ours = emulator
        .completions()
        .iter()
        .filter(|c| c.upload_id == done.id)
        .count();
    assert_eq!(ours, 2, "the completion was sent again");
}

#[tokio::test]
async fn a_lost_completion_answer_without_md5_is_an_unknown_outcome_naming_the_candidates() {
    let (emulator, other_id) = a_look_alike_file_and_a_lost_answer(3 * PART).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "data.bin", &content(3 * PART, 13));
    let error = upload(&client(&emulator), &path)
        .md5(false)
        .send()
        .await
        .expect_err("name and size are no evidence");
    let Error::CompletionUnknown {
        upload_id,
        candidates,
        ..
    } = &error
    else {
        panic!("expected an unknown outcome, got {error:?}");
    };
    assert_eq!(candidates.len(), 2, "{candidates:?}");
    assert!(candidates.contains(&other_id), "{candidates:?}");
    let message = error.to_string();
    assert!(message.contains(upload_id.as_str()), "{message}");
    assert!(
        message.contains(&format!(
            "openai files retrieve --file-id {}",
            candidates[0]
        )),
        "{message}"
    );
    assert_eq!(
        cancels(&emulator),
        0,
        "a perhaps completed Upload is left alone"
    );
}
