//! The progress line on stderr, on a terminal only.

use std::io::{self, Write};

/// Counts of a run, and the progress line on stderr when it is a terminal.
pub struct Progress {
    pub total: usize,
    pub ok: usize,
    pub failed: usize,
    pub items: usize,
    visible: bool,
}

impl Progress {
    pub fn new(total: usize, visible: bool) -> Self {
        Self {
            total,
            ok: 0,
            failed: 0,
            items: 0,
            visible,
        }
    }

    pub fn draw(&self) {
        if !self.visible {
            return;
        }
        let done = self.ok + self.failed;
        let filled = done * 30 / self.total.max(1);
        eprint!(
            "\r\x1b[K[{}{}] {done}/{} hosts, {} failed, {} records",
            "#".repeat(filled),
            ".".repeat(30 - filled),
            self.total,
            self.failed,
            self.items
        );
        let _ = io::stderr().flush();
    }

    pub fn clear(&self) {
        if self.visible {
            eprint!("\r\x1b[K");
        }
    }
}
