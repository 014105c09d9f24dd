//! Progress bars on standard error that say only what is true.
//!
//! - Done is what the server confirmed; bytes handed to the network and
//!   not yet confirmed are shown apart, as "+N sending".
//! - The speed is over the bytes this run had confirmed in the last few
//!   seconds (a sliding window), so a resumed run starts at its resumed
//!   bytes with no speed, and the ETA follows the same figure.
//! - The bar is full, and the percentage 100, only once the Upload is
//!   completed: every part confirmed says "completing" until then.
//! - Units are decimal, MB and MB/s (10^6 bytes), as the emulator's rates
//!   are given.
//! - Log lines go through [`AboveBars`], which writes them with the bars
//!   out of the way, so that no stale copy of a bar is left on screen.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{DecimalBytes, MultiProgress, ProgressBar, ProgressStyle};

use crate::upload::{Progress, UploadHandle};

/// How often a bar is redrawn when nothing changes: the speed and the ETA
/// still move.
const REDRAW: Duration = Duration::from_millis(500);
/// How far back the speed looks.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// The bars on screen, for [`AboveBars`].
static DRAWN: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// A set of bars on standard error; log lines are written above them while
/// it is on screen.
pub(super) fn bars() -> MultiProgress {
    let bars = MultiProgress::new();
    if let Ok(mut drawn) = DRAWN.lock() {
        *drawn = Some(bars.clone());
    }
    bars
}

/// Standard error for log lines: each line is written with the bars out of
/// the way, then the bars are drawn again below it.
pub(super) struct AboveBars;

impl Write for AboveBars {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bars = DRAWN.lock().ok().and_then(|drawn| drawn.clone());
        match bars {
            Some(bars) => bars.suspend(|| std::io::stderr().write_all(buf).map(|()| buf.len())),
            None => std::io::stderr().write_all(buf).map(|()| buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A bar being drawn, and the task that draws it.
pub(super) type Drawn = (ProgressBar, tokio::task::JoinHandle<()>);

/// Draws one upload's bar until [`end_bar`].
pub(super) fn show_progress(
    bars: &MultiProgress,
    handle: &UploadHandle,
    path: Option<&Path>,
) -> Drawn {
    let mut progress = handle.progress();
    let bar = bars.add(ProgressBar::new(1));
    // The name goes in as the prefix, never into the template, where a
    // brace in a file name would be read as a placeholder.
    if let Some(path) = path {
        bar.set_prefix(format!(
            "{} ",
            super::terminal::escape(&path.display().to_string())
        ));
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix}{bar:30} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let drawn = bar.clone();
    let task = tokio::spawn(async move {
        let mut rate = Rate::default();
        let mut redraw = tokio::time::interval(REDRAW);
        loop {
            tokio::select! {
                changed = progress.changed() => if changed.is_err() { break },
                _ = redraw.tick() => {}
            }
            let p = *progress.borrow_and_update();
            rate.record(Instant::now(), p.confirmed_this_run());
            drawn.set_length(p.bytes_total.max(1));
            drawn.set_position(bar_position(&p));
            drawn.set_message(figures(&p, rate.per_second()));
        }
    });
    (bar, task)
}

/// Ends a bar: full and "done" for a completed Upload, else "failed".
pub(super) fn end_bar((bar, task): Drawn, completed: bool) {
    task.abort();
    if completed {
        bar.set_position(bar.length().unwrap_or_default());
        bar.finish_with_message("done");
    } else {
        bar.abandon_with_message("failed");
    }
}

/// Where the bar's fill ends: the confirmed bytes, short of full until the
/// Upload is completed.
fn bar_position(p: &Progress) -> u64 {
    if p.completed {
        p.bytes_total.max(1)
    } else {
        p.bytes_confirmed.min(p.bytes_total.saturating_sub(1))
    }
}

/// The figures after the bar.
fn figures(p: &Progress, per_second: Option<f64>) -> String {
    let done = format!(
        "{} / {} ({}%)",
        DecimalBytes(p.bytes_confirmed),
        DecimalBytes(p.bytes_total),
        p.percent_done()
    );
    let parts = format!("parts {}/{}", p.parts_confirmed, p.parts_total);
    if p.completed {
        return format!("{done} {parts}");
    }
    if p.parts_total > 0 && p.parts_confirmed == p.parts_total {
        return format!("{done} {parts}, all confirmed: completing");
    }
    let sending = match p.in_flight() {
        0 => String::new(),
        n => format!(" +{} sending", DecimalBytes(n)),
    };
    let (speed, eta) = match per_second {
        Some(rate) if rate > 0.0 => {
            let left = p.bytes_total.saturating_sub(p.bytes_confirmed) as f64;
            (
                format!("{}/s", DecimalBytes(rate as u64)),
                duration(Duration::from_secs_f64(left / rate)),
            )
        }
        _ => ("–/s".to_string(), "–".to_string()),
    };
    format!("{done}{sending}, {speed}, ETA {eta}, {parts}")
}

/// A duration as `42s`, `3m05s` or `1h02m`.
fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Confirmed bytes over a sliding window of time.
#[derive(Default)]
struct Rate {
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    fn record(&mut self, at: Instant, confirmed: u64) {
        self.samples.push_back((at, confirmed));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Bytes per second over the window; `None` before a second of samples
    /// or before anything was confirmed by this run.
    fn per_second(&self) -> Option<f64> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let span = last.0.duration_since(first.0).as_secs_f64();
        if span < 1.0 || last.1 == 0 {
            return None;
        }
        Some(last.1.saturating_sub(first.1) as f64 / span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(total: u64, confirmed: u64, sent: u64, parts: (u32, u32)) -> Progress {
        Progress {
            bytes_total: total,
            bytes_confirmed: confirmed,
            bytes_sent: sent,
            parts_confirmed: parts.0,
            parts_total: parts.1,
            ..Progress::default()
        }
    }

    #[test]
    fn every_part_confirmed_is_not_done_until_completed() {
        let mut p = progress(8_000_000, 8_000_000, 8_000_000, (2, 2));
        assert!(bar_position(&p) < p.bytes_total);
        assert_eq!(p.percent_done(), 99);
        let said = figures(&p, Some(1e6));
        assert!(
            said.contains("completing") && said.contains("(99%)"),
            "{said}"
        );
        p.completed = true;
        assert_eq!(bar_position(&p), p.bytes_total);
        assert!(figures(&p, None).contains("(100%)"));
    }

    #[test]
    fn in_flight_bytes_are_shown_apart_in_decimal_units() {
        let p = progress(10_000_000, 2_000_000, 6_000_000, (1, 5));
        let said = figures(&p, Some(2_000_000.0));
        assert!(said.starts_with("2.00 MB / 10.00 MB (20%)"), "{said}");
        assert!(said.contains("+4.00 MB sending"), "{said}");
        assert!(said.contains("2.00 MB/s, ETA 4s"), "{said}");
    }

    #[test]
    fn the_rate_counts_only_bytes_confirmed_in_its_window() {
        let start = Instant::now();
        let mut rate = Rate::default();
        rate.record(start, 0);
        assert_eq!(rate.per_second(), None, "no speed before a second");
        rate.record(start + Duration::from_secs(2), 4_000_000);
        assert_eq!(rate.per_second(), Some(2_000_000.0));
        // Older samples leave the window: the rate follows the recent one.
        rate.record(start + Duration::from_secs(4), 5_000_000);
        rate.record(start + Duration::from_secs(8), 7_000_000);
        assert_eq!(rate.per_second(), Some(500_000.0));
    }
}
