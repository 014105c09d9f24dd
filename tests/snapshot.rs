#![cfg(feature = "emulator")]
//! The source is a snapshot: a file that grows or is written in place while
//! it uploads is never completed, and a resume re-reads the parts an
//! earlier run sent and sends again those that changed, md5 or not.

mod common;

use std::path::Path;
use std::time::Duration;

use openai_uploads::emulator::{Emulator, FaultScope, Faults};
use openai_uploads::upload::{Purpose, ResumeState, RetryPolicy, UploadBuilder};
use openai_uploads::{Client, Error};

const PART: u64 = 64 * 1024;
const PARTS: u64 = 12;
const KEY: &str = "sk-snapshot-test-secret";

fn upload(client: &Client, path: &Path) -> UploadBuilder {
    client
        .upload_file(path)
        .purpose(Purpose::Assistants)
        .mime_type("application/octet-stream")
        .part_size(PART)
        .concurrency(1)
        .retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(20)),
        )
}

async fn slow_emulator() -> Emulator {
    common::emulator_with(
        Faults::default()
            .with_scope(FaultScope::PartsOnly)
            .with_latency(Duration::from_millis(25)),
    )
    .await
}

fn cancels(emulator: &Emulator) -> usize {
    emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/cancel"))
        .count()
}

/// Runs `builder` and, once two parts are confirmed, calls `edit`.
async fn edited_mid_upload(builder: UploadBuilder, edit: impl FnOnce()) -> Error {
    let (handle, run) = builder.start();
    let task = tokio::spawn(run);
    tokio::time::timeout(
        Duration::from_secs(30),
        handle.progress().wait_for(|p| p.parts_confirmed >= 2),
    )
    .await
    .expect("parts confirmed in time")
    .expect("upload running");
    edit();
    task.await
        .unwrap()
        .expect_err("a file that changed is not completed")
}

/// Writes `bytes` at `offset` of `path` in place and sets the modification
/// time back to what it was.
fn write_in_place_keeping_mtime(path: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut file = std::fs::File::options().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
    file.set_modified(mtime).unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), mtime);
}

fn changed_field(error: &Error) -> String {
    match error {
        Error::SourceChanged { change, .. } => change.field.clone(),
        other => panic!("expected SourceChanged, got {other:?}"),
    }
}

#[tokio::test]
async fn a_file_appended_to_mid_upload_is_not_completed_and_the_upload_is_cancelled() {
    let emulator = slow_emulator().await;
    let client = common::client_of(&emulator, KEY);
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(PARTS * PART, 61);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let appended = path.clone();
    let error = edited_mid_upload(upload(&client, &path).md5(false), move || {
        use std::io::Write;
        let mut file = std::fs::File::options()
            .append(true)
            .open(&appended)
            .unwrap();
        file.write_all(b"one more line\n").unwrap();
    })
    .await;
    assert_eq!(changed_field(&error), "size");
    let message = error.to_string();
    assert!(
        message.contains("data.bin changed while it was being uploaded"),
        "{message}"
    );
    assert!(
        message.contains(&format!("size was {} bytes", bytes.len())),
        "{message}"
    );
    assert!(emulator.completions().is_empty(), "never completed");
    assert_eq!(cancels(&emulator), 1, "the Upload is cancelled");
    let files = client.list_files(None, None, None, None).await.unwrap();
    assert!(files.data.is_empty(), "no File of the old content");
}

#[tokio::test]
async fn an_in_place_edit_with_the_mtime_restored_is_caught_without_md5() {
    let emulator = slow_emulator().await;
    let client = common::client_of(&emulator, KEY);
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(PARTS * PART, 62);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");
    let edited = path.clone();
    let error = edited_mid_upload(
        upload(&client, &path).md5(false).state_file(&state),
        move || write_in_place_keeping_mtime(&edited, 10, b"EDITED"),
    )
    .await;
    assert_eq!(changed_field(&error), "status change time");
    assert!(emulator.completions().is_empty(), "never completed");
    assert_eq!(cancels(&emulator), 1);
    assert!(!state.exists(), "nothing left to resume");
}

#[tokio::test]
async fn a_no_md5_resume_after_a_same_size_edit_sends_the_changed_part_again() {
    let emulator = slow_emulator().await;
    let client = common::client_of(&emulator, KEY);
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = common::content(PARTS * PART, 63);
    let path = common::write_file(dir.path(), "data.bin", &bytes);
    let state = dir.path().join("data.state");

    let (handle, run) = upload(&client, &path).md5(false).state_file(&state).start();
    let task = tokio::spawn(run);
    handle
        .progress()
        .wait_for(|p| p.parts_confirmed >= 3)
        .await
        .unwrap();
    handle.pause();
    assert!(matches!(
        task.await.unwrap(),
        Err(Error::Interrupted { .. })
    ));
    let saved = ResumeState::load(&state).unwrap().expect("state kept");
    assert!(saved.parts.contains_key(&2), "{saved:?}");
    assert_eq!(saved.checksums.len(), saved.parts.len());

    // Part 2, already on the server, is written over; size and mtime stay.
    let at = PART + 100;
    write_in_place_keeping_mtime(&path, at, b"CHANGED");
    bytes[at as usize..at as usize + 7].copy_from_slice(b"CHANGED");
    let before = emulator.received_parts().len();

    let done = upload(&client, &path)
        .md5(false)
        .state_file(&state)
        .send()
        .await
        .expect("the resume completes");
    assert_eq!(done.id, saved.upload_id, "the same Upload");
    let file = done.file.expect("a File");
    assert_eq!(
        common::download(&client, &file.id).await,
        bytes,
        "the File is the file as it is now, not a mix"
    );
    let sent_again = emulator.received_parts().len() - before;
    assert_eq!(
        sent_again,
        (PARTS as usize - saved.parts.len()) + 1,
        "the missing parts and the changed one"
    );
}
