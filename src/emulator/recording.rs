//! What the emulator received, kept for tests to look at: the last
//! requests, parts and completions, each list a ring of bounded length with
//! bounded texts, so that recording costs the same memory however long the
//! emulator runs and whatever its clients send.

use std::collections::VecDeque;
use std::sync::Mutex;

#[cfg(doc)]
use super::EmulatorConfig;
use super::lock;

/// A request the emulator received with a bearer token, as seen before
/// routing; each text is cut to [`EmulatorConfig::max_recorded_bytes`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path, from `/v1`.
    pub path: String,
    /// The `Authorization` header as received.
    pub authorization: Option<String>,
    /// The `OpenAI-Organization` header.
    pub organization: Option<String>,
    /// The `OpenAI-Project` header.
    pub project: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The fault injected into this request, if any.
    pub fault: Option<String>,
    /// The connection it came on: 1 for the first one accepted, and so on.
    pub connection: u64,
}

/// A completion the emulator received, as sent (whether it succeeded or not).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedCompletion {
    /// The Upload it was sent to.
    pub upload_id: String,
    /// The `part_ids` it listed, in order: the first ones only, as many as
    /// fit in [`EmulatorConfig::max_recorded_bytes`].
    pub part_ids: Vec<String>,
    /// How many `part_ids` it listed.
    pub listed: usize,
    /// The `md5` it carried, if any.
    pub md5: Option<String>,
}

/// A part the emulator stored (after its `data` field was read in full).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedPart {
    /// The Upload it was sent to.
    pub upload_id: String,
    /// Its length in bytes.
    pub bytes: u64,
}

/// The three rings, and their bounds.
pub(crate) struct Recordings {
    /// Entries each ring keeps.
    most: usize,
    /// Bytes of text kept of each field.
    text: usize,
    requests: Mutex<VecDeque<RecordedRequest>>,
    parts: Mutex<VecDeque<ReceivedPart>>,
    completions: Mutex<VecDeque<RecordedCompletion>>,
}

fn push<T>(ring: &Mutex<VecDeque<T>>, most: usize, item: T) {
    if most == 0 {
        return;
    }
    let mut ring = lock(ring);
    if ring.len() >= most {
        ring.pop_front();
    }
    ring.push_back(item);
}

/// `text` cut to at most `most` bytes, on a character boundary.
pub(crate) fn cut(text: &str, most: usize) -> String {
    if text.len() <= most {
        return text.to_string();
    }
    let mut end = most;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

impl Recordings {
    pub(crate) fn new(most: usize, text: usize) -> Self {
        Self {
            most,
            text,
            requests: Mutex::default(),
            parts: Mutex::default(),
            completions: Mutex::default(),
        }
    }

    /// The bytes of text kept of each recorded field.
    pub(crate) fn text_cap(&self) -> usize {
        self.text
    }

    pub(crate) fn request(&self, request: RecordedRequest) {
        push(&self.requests, self.most, request);
    }

    pub(crate) fn part(&self, upload_id: &str, bytes: u64) {
        let part = ReceivedPart {
            upload_id: cut(upload_id, self.text),
            bytes,
        };
        push(&self.parts, self.most, part);
    }

    pub(crate) fn completion(&self, upload_id: &str, body: &serde_json::Value) {
        let listed = body["part_ids"].as_array().map_or(0, Vec::len);
        let mut room = self.text;
        let part_ids = body["part_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_string))
            .take_while(|id| {
                let fits = id.len() <= room;
                room = room.saturating_sub(id.len());
                fits
            })
            .collect();
        let completion = RecordedCompletion {
            upload_id: cut(upload_id, self.text),
            part_ids,
            listed,
            md5: body["md5"].as_str().map(|md5| cut(md5, self.text)),
        };
        push(&self.completions, self.most, completion);
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).iter().cloned().collect()
    }

    pub(crate) fn parts(&self) -> Vec<ReceivedPart> {
        lock(&self.parts).iter().cloned().collect()
    }

    pub(crate) fn completions(&self) -> Vec<RecordedCompletion> {
        lock(&self.completions).iter().cloned().collect()
    }
}
