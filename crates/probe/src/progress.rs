//! Progress bars on stderr for long work, one style everywhere; a host that draws its own
//! (or a test) turns them off with [`set_visible`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static VISIBLE: AtomicBool = AtomicBool::new(true);

/// Shows (the default) or hides every progress bar made after the call.
pub fn set_visible(visible: bool) {
    VISIBLE.store(visible, Ordering::Relaxed);
}

/// A bar of `len` steps (0: set later with `set_length`) labelled `prefix`, with rate, ETA and
/// elapsed time, redrawn five times a second.
pub fn progress_bar(len: u64, prefix: &'static str) -> ProgressBar {
    if !VISIBLE.load(Ordering::Relaxed) {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10.cyan} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg} ({elapsed})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A line of news about long work (what runs, where outputs go) on stderr, hidden with the
/// bars.
pub fn note(message: impl std::fmt::Display) {
    if VISIBLE.load(Ordering::Relaxed) {
        eprintln!("{message}");
    }
}
