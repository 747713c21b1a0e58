//! How a deployment wait is shown: on a terminal, a block with a line per
//! service redrawn in place, events printed above it; in a log (CI,
//! CodeBuild), a service's line when its state changes and every 30 s
//! while it does not.

use std::{collections::BTreeMap, time::Duration};

/// One thing a wait has to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A service's state at one poll (without the elapsed time).
    Status {
        /// The ECS service.
        service: String,
        /// Rollout state and task counts.
        line: String,
        /// Time since the wait began.
        elapsed: Duration,
    },
    /// A line to show once: an ECS service event, a note about polling.
    Event(String),
}

/// Turns progress into text to write.
pub trait View {
    /// The text to write for `progress` (possibly empty).
    fn show(&mut self, progress: Progress) -> String;
}

/// How often an unchanged state is shown again in a log, so a long wait is
/// seen to be alive.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// Appends lines: for logs and pipes.
#[derive(Debug, Default)]
pub struct LogView {
    /// What was last shown per service, and when.
    shown: BTreeMap<String, (String, Duration)>,
}

impl View for LogView {
    fn show(&mut self, progress: Progress) -> String {
        match progress {
            Progress::Event(text) => format!("{text}\n"),
            Progress::Status { service, line, elapsed } => {
                let stale = self
                    .shown
                    .get(&service)
                    .is_none_or(|(last, at)| last != &line || elapsed.saturating_sub(*at) >= HEARTBEAT);
                if !stale {
                    return String::new();
                }
                let text = format!("{line}  ({}s)\n", elapsed.as_secs());
                self.shown.insert(service, (line, elapsed));
                text
            }
        }
    }
}

/// Redraws a line per service in place: for a terminal.
#[derive(Debug, Default)]
pub struct TerminalView {
    /// The block's lines, by service, in the order they first appeared.
    block: Vec<(String, String)>,
    /// How many lines of the block are on the screen.
    drawn: usize,
}

impl TerminalView {
    fn redraw(&mut self, above: Option<&str>) -> String {
        let mut out = String::new();
        if self.drawn > 0 {
            // To the start of the block's first line, and clear from there.
            out.push_str(&format!("\x1b[{}F\x1b[J", self.drawn));
        }
        if let Some(text) = above {
            out.push_str(text);
            out.push('\n');
        }
        for (_, line) in &self.block {
            out.push_str(line);
            out.push('\n');
        }
        self.drawn = self.block.len();
        out
    }
}

impl View for TerminalView {
    fn show(&mut self, progress: Progress) -> String {
        match progress {
            Progress::Event(text) => self.redraw(Some(&text)),
            Progress::Status { service, line, elapsed } => {
                let line = format!("{line}  ({}s)", elapsed.as_secs());
                match self.block.iter_mut().find(|(name, _)| *name == service) {
                    Some(entry) => entry.1 = line,
                    None => self.block.push((service, line)),
                }
                self.redraw(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(service: &str, line: &str, secs: u64) -> Progress {
        Progress::Status { service: service.into(), line: line.into(), elapsed: Duration::from_secs(secs) }
    }

    #[test]
    fn a_log_shows_changes_and_a_heartbeat() {
        let mut view = LogView::default();
        assert_eq!(view.show(status("game", "IN_PROGRESS 0/2", 0)), "IN_PROGRESS 0/2  (0s)\n");
        assert_eq!(view.show(status("game", "IN_PROGRESS 0/2", 5)), "");
        assert_eq!(view.show(status("rank", "IN_PROGRESS 0/1", 5)), "IN_PROGRESS 0/1  (5s)\n");
        assert_eq!(view.show(status("game", "IN_PROGRESS 1/2", 10)), "IN_PROGRESS 1/2  (10s)\n");
        assert_eq!(view.show(status("game", "IN_PROGRESS 1/2", 35)), "");
        assert_eq!(view.show(status("game", "IN_PROGRESS 1/2", 40)), "IN_PROGRESS 1/2  (40s)\n");
        assert_eq!(view.show(Progress::Event("    game: started 1 task".into())), "    game: started 1 task\n");
    }

    #[test]
    fn a_terminal_redraws_the_block_and_prints_events_above_it() {
        let mut view = TerminalView::default();
        assert_eq!(view.show(status("game", "A", 0)), "A  (0s)\n");
        assert_eq!(view.show(status("rank", "B", 0)), "\x1b[1F\x1b[JA  (0s)\nB  (0s)\n");
        assert_eq!(view.show(status("game", "C", 5)), "\x1b[2F\x1b[JC  (5s)\nB  (0s)\n");
        assert_eq!(view.show(Progress::Event("event".into())), "\x1b[2F\x1b[Jevent\nC  (5s)\nB  (0s)\n");
    }
}
