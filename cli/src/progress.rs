//! The progress bar on stderr while several hosts run: on a terminal only, fitted to its width
//! (never wrapping), and out of the way of every line written to stdout or stderr.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counts of a run, and the bar when stderr is a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
    pub ok: usize,
    pub failed: usize,
    pub items: usize,
}

impl Progress {
    /// A bar for `total` hosts, drawn only when `visible` (several hosts, stderr a terminal).
    pub fn new(total: usize, visible: bool) -> Self {
        let bar = visible
            .then(|| {
                let width = terminal_size::terminal_size_of(std::io::stderr())
                    .map_or(80, |(w, _)| usize::from(w.0));
                let target = ProgressDrawTarget::stderr_with_hz(8);
                let style = ProgressStyle::with_template(template(width, total)?).ok()?;
                let bar = ProgressBar::with_draw_target(Some(total as u64), target);
                bar.set_style(style.progress_chars("#>."));
                Some(bar)
            })
            .flatten();
        Self {
            bar,
            ok: 0,
            failed: 0,
            items: 0,
        }
    }

    /// Runs `write` with the bar cleared, and draws it again after: for every line that goes
    /// to stdout or stderr while the bar is shown.
    pub fn suspend<R>(&self, write: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// The counts changed.
    pub fn update(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position((self.ok + self.failed) as u64);
            bar.set_message(format!("{} failed, {} records", self.failed, self.items));
        }
    }

    /// The run is over: the bar goes away.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The widest template that fits `width` columns with its longest counts: bar, hosts and
/// message; bar and hosts; counts only; nothing when not even those fit.
fn template(width: usize, total: usize) -> Option<&'static str> {
    const MIN_BAR: usize = 10;
    let digits = total.to_string().len();
    let counts = 2 * digits + 1;
    let hosts = counts + " hosts".len();
    // "{failed} failed, {records} records", with room for ten-digit record counts.
    let message = digits + " failed, ".len() + 10 + " records".len();
    if width > MIN_BAR + 1 + hosts + 2 + message {
        Some("{wide_bar} {pos}/{len} hosts, {msg}")
    } else if width > MIN_BAR + 1 + hosts {
        Some("{wide_bar} {pos}/{len} hosts")
    } else if width > counts {
        Some("{pos}/{len}")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::template;

    /// The longest line a template draws, its bar at its narrowest.
    fn longest(template: &str, total: usize) -> usize {
        let digits = total.to_string().len();
        template
            .replace("{wide_bar}", &"#".repeat(10))
            .replace("{pos}", &"9".repeat(digits))
            .replace("{len}", &"9".repeat(digits))
            .replace(
                "{msg}",
                &format!("{} failed, {} records", "9".repeat(digits), "9".repeat(10)),
            )
            .len()
    }

    #[test]
    fn the_bar_never_wraps() {
        for total in [1, 16, 1_000, 100_000] {
            for width in 0..200 {
                if let Some(t) = template(width, total) {
                    assert!(longest(t, total) < width, "{t} at {width} columns");
                }
            }
            assert!(
                template(80, total).is_some_and(|t| t.contains("{msg}")),
                "{total}"
            );
        }
        assert_eq!(template(20, 100_000), Some("{pos}/{len}"));
        assert_eq!(template(5, 100_000), None);
    }
}
