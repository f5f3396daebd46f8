//! The tool's progress bars (stderr; indicatif draws them only on a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting blocks, with their rate, the ETA and a message (txs and txs per second).
pub(crate) fn bar(enabled: bool, what: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} blocks, {per_sec}, ETA {eta} {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_prefix(what.to_string());
    pb
}
