//! Standard error as a terminal sees it: server text escaped, log lines for
//! people, and one door every line goes through.
//!
//! A server's words (an error's message, type and param, an undocumented
//! body, a retry's cause) are data: printed raw, an ESC sequence could clear
//! the screen, recolour it or set the window title, a `\r` overwrite the
//! line, a BEL ring. [`escape`] writes every C0 and C1 control character
//! (ESC, BEL, `\r`, DEL, U+0080..U+009F) as a visible escape; [`eprint`] and
//! the log writer apply it to everything they write, so no path to standard
//! error forgets it. JSON and YAML printed on standard output keep their
//! exact text.
//!
//! Log lines take one of three shapes ([`LogStyle`]): one line for people
//! (`openai: warning: upload a.jsonl: part 3: HTTP 503 server_error: busy, retrying in 0.3 s`),
//! one JSON object per line beside errors printed as JSON, or tracing's full
//! output with its fields and timestamps (`--debug`, `OPENAI_LOG`).
//!
//! Every line is written through the progress bars' writer, so that it is
//! printed above any bar on screen rather than through it.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// `text` with every control character written as a visible escape: `\r`,
/// `\n`, `\t`, `\b`, `\f` by name, the others (ESC, BEL, DEL, C1) as
/// `\u001b`. Borrowed when there is nothing to escape.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    escape_keeping(text, &[])
}

/// A text of several lines, escaped as [`escape`] does but for its line
/// breaks and tabs.
pub(crate) fn escape_text(text: &str) -> Cow<'_, str> {
    escape_keeping(text, &['\n', '\t'])
}

/// As [`escape`], but `kept` characters pass through.
fn escape_keeping<'a>(text: &'a str, kept: &[char]) -> Cow<'a, str> {
    let unsafe_char = |c: char| c.is_control() && !kept.contains(&c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !unsafe_char(c) => out.push(c),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// Set once a stop signal has been answered: the command has said what
/// happened, so the warnings of the clean-up that follows are not printed.
static LOGS_SILENCED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to standard error, its control characters escaped but for
/// its line breaks and tabs, above any progress bar on screen. A closed or
/// full standard error is not an error of the command: what could not be
/// written is dropped.
pub(crate) fn eprint(text: &str) {
    let text = escape_text(text);
    let mut err = super::progress::AboveBars;
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// Stops log lines from reaching standard error from now on.
pub(crate) fn silence_logs() {
    LOGS_SILENCED.store(true, Ordering::Relaxed);
}

/// A log record's line, unless logs are silenced.
fn log_line(text: &str) {
    if !LOGS_SILENCED.load(Ordering::Relaxed) {
        eprint(text);
    }
}

/// How log records are written to standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogStyle {
    /// One line for people: `openai: warning: part 3: …, retrying in 0.3 s`.
    Human,
    /// One JSON object a line: `{"level", "message", "fields", "spans"}`.
    Json,
    /// tracing's own format: timestamp, level, spans and every field.
    Full,
}

/// Installs the process's log subscriber: records up to `level` in `style`.
pub(crate) fn init_logs(style: LogStyle, level: Level) {
    use tracing_subscriber::layer::SubscriberExt;
    let registry = tracing_subscriber::registry();
    let installed = match style {
        LogStyle::Full => {
            let full = tracing_subscriber::fmt::layer()
                .with_writer(|| LogWriter(Vec::new()))
                .with_target(false)
                // Colours are escape sequences: the door would show them as text.
                .with_ansi(false)
                .with_filter(tracing_subscriber::filter::LevelFilter::from_level(level));
            tracing::subscriber::set_global_default(registry.with(full))
        }
        LogStyle::Human | LogStyle::Json => {
            tracing::subscriber::set_global_default(registry.with(Lines {
                json: style == LogStyle::Json,
                level,
            }))
        }
    };
    // Only a second call could fail, and there is none.
    drop(installed);
}

/// tracing's full output for one record, written through the door when the
/// record is complete.
struct LogWriter(Vec<u8>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            log_line(&String::from_utf8_lossy(&self.0));
        }
    }
}

/// The layer of the human and JSON lines.
struct Lines {
    json: bool,
    level: Level,
}

/// The fields of an event or a span, in the order they were recorded.
#[derive(Default)]
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn take(&mut self, name: &str) -> Option<Value> {
        let at = self.0.iter().position(|(n, _)| *n == name)?;
        Some(self.0.remove(at).1)
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name(), Value::String(format!("{value:?}"))));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .push((field.name(), Value::String(value.to_string())));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push((field.name(), json!(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name(), json!(value)));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.push((field.name(), json!(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push((field.name(), json!(value)));
    }
}

/// A value as text in a line: strings without their JSON quotes.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => escape(s).into_owned(),
        other => other.to_string(),
    }
}

/// A wait in milliseconds as people read it: `0.3 s`, `12 s`, `40 ms`.
fn seconds(ms: &Value) -> String {
    match ms.as_u64() {
        Some(ms) if ms < 100 => format!("{ms} ms"),
        Some(ms) if ms < 10_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{} s", ms / 1000),
        None => text_of(ms),
    }
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

impl Lines {
    /// The human line: the spans it happened in (`upload a.jsonl: part 3`),
    /// then the cause (`error`, `warning`) if any, the message and its wait,
    /// and any other fields in parentheses.
    fn human(level: Level, spans: &[(&str, Fields)], mut fields: Fields) -> String {
        let mut line = format!("openai: {}: ", level_word(level));
        for (name, span) in spans {
            match span.0.first() {
                Some((_, value)) => {
                    let _ = write!(line, "{name} {}: ", text_of(value));
                }
                None => {
                    let _ = write!(line, "{name}: ");
                }
            }
        }
        let message = fields.take("message").map(|m| text_of(&m));
        let cause = fields
            .take("error")
            .or_else(|| fields.take("warning"))
            .map(|c| text_of(&c));
        let wait = fields.take("wait_ms").map(|w| seconds(&w));
        let mut said = match (cause, message) {
            (Some(cause), Some(message)) => format!("{cause}, {message}"),
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => String::new(),
        };
        if let Some(wait) = wait {
            let _ = write!(said, " in {wait}");
        }
        line.push_str(&said);
        if !fields.0.is_empty() {
            let rest: Vec<String> = fields
                .0
                .iter()
                .map(|(name, value)| format!("{name}: {}", text_of(value)))
                .collect();
            let _ = write!(line, " ({})", rest.join(", "));
        }
        line.push('\n');
        line
    }

    /// The JSON line: `{"level", "message", "fields", "spans": [{"name", "fields"}]}`.
    fn json(level: Level, spans: &[(&str, Fields)], mut fields: Fields) -> String {
        let object = |fields: &Fields| -> Map<String, Value> {
            fields
                .0
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone()))
                .collect()
        };
        let message = fields.take("message").unwrap_or(Value::Null);
        let spans: Vec<Value> = spans
            .iter()
            .map(|(name, span)| json!({"name": name, "fields": object(span)}))
            .collect();
        let line = json!({
            "level": level_word(level),
            "message": message,
            "fields": object(&fields),
            "spans": spans,
        });
        format!("{line}\n")
    }
}

impl<S> Layer<S> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        // Spans down to info name the part or the file a warning is about.
        if metadata.is_span() {
            *metadata.level() <= Level::INFO.max(self.level)
        } else {
            *metadata.level() <= self.level
        }
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let recorded = span
                    .extensions()
                    .get::<Fields>()
                    .map(|f| Fields(f.0.clone()))
                    .unwrap_or_default();
                spans.push((span.name(), recorded));
            }
        }
        let level = *event.metadata().level();
        let line = if self.json {
            Self::json(level, &spans, fields)
        } else {
            Self::human(level, &spans, fields)
        };
        log_line(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_makes_every_control_character_visible() {
        let hostile = "a\u{1b}[2J\u{1b}]0;owned\u{7}\r\nb\t\u{7f}\u{9b}31m\u{85}é✓";
        let escaped = escape(hostile);
        assert_eq!(
            escaped,
            "a\\u001b[2J\\u001b]0;owned\\u0007\\r\\nb\\t\\u007f\\u009b31m\\u0085é✓"
        );
        assert!(!escaped.chars().any(char::is_control), "{escaped}");
        assert!(matches!(escape("plain: text ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn several_lines_keep_their_breaks_and_lose_the_rest() {
        assert_eq!(
            escape_text("one\n\u{1b}[1mtwo\r\n"),
            "one\n\\u001b[1mtwo\\r\n"
        );
    }

    #[test]
    fn human_line_names_the_part_the_cause_and_the_wait() {
        let spans = vec![(
            "part",
            Fields(vec![("number", json!(12)), ("offset", json!(0))]),
        )];
        let fields = Fields(vec![
            ("message", json!("retrying")),
            ("request", json!("add_upload_part")),
            ("error", json!("HTTP 503 server_error: busy\u{1b}[2J")),
            ("wait_ms", json!(300)),
        ]);
        assert_eq!(
            Lines::human(Level::WARN, &spans, fields),
            "openai: warning: part 12: HTTP 503 server_error: busy\\u001b[2J, retrying in 0.3 s \
             (request: add_upload_part)\n"
        );
    }

    #[test]
    fn json_line_keeps_every_field() {
        let fields = Fields(vec![
            ("message", json!("retrying")),
            ("wait_ms", json!(1500)),
        ]);
        let line = Lines::json(
            Level::WARN,
            &[("part", Fields(vec![("number", json!(2))]))],
            fields,
        );
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value,
            json!({"level": "warning", "message": "retrying", "fields": {"wait_ms": 1500},
                   "spans": [{"name": "part", "fields": {"number": 2}}]})
        );
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn waits_read_as_people_say_them() {
        assert_eq!(seconds(&json!(40)), "40 ms");
        assert_eq!(seconds(&json!(300)), "0.3 s");
        assert_eq!(seconds(&json!(12_000)), "12 s");
    }
}
