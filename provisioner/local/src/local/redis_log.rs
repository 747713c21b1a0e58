//! `redis-server`'s output as the runner shows it: its start-up banner (a
//! dozen lines, logo and machine advice included) folded into one line,
//! its shutdown sequence into none (the runner says the store stopped), and
//! everything in between as it is.

/// Where the server is in its life, by its log.
#[derive(Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Starting,
    Running,
    Stopping,
}

/// Folds one `redis-server`'s log.
#[derive(Debug, Default)]
pub struct RedisLog {
    phase: Phase,
    folded: usize,
    version: Option<String>,
    warnings: Vec<String>,
}

impl RedisLog {
    /// What to print for `line`, if anything.
    pub fn line(&mut self, line: &str) -> Option<String> {
        let message = message(line);
        match self.phase {
            Phase::Starting => {
                if let Some(version) = message.strip_prefix("Redis version=") {
                    self.version = version.split(',').next().map(str::to_owned);
                }
                if let Some(warning) = message.strip_prefix("WARNING ") {
                    self.warnings.push(warning.split(['!', '.']).next().unwrap_or(warning).to_owned());
                }
                if message.starts_with("Ready to accept connections") {
                    self.phase = Phase::Running;
                    let warnings = match self.warnings.as_slice() {
                        [] => String::new(),
                        warnings => format!("; its warnings: {}", warnings.join("; ")),
                    };
                    return Some(format!(
                        "redis {} ready ({} start-up lines folded{warnings})",
                        self.version.as_deref().unwrap_or("(version not said)"),
                        self.folded + 1
                    ));
                }
                self.folded += 1;
                None
            }
            Phase::Running if message.contains("Received SIGTERM") || message.contains("Received SIGINT") => {
                self.phase = Phase::Stopping;
                None
            }
            Phase::Running => Some(line.to_owned()),
            Phase::Stopping => None,
        }
    }
}

/// The message of a log line (`PID:ROLE DATE TIME LEVEL message`), or the
/// line itself.
fn message(line: &str) -> &str {
    [" # ", " * ", " - ", " . "]
        .iter()
        .filter_map(|level| line.find(level).map(|at| &line[at + level.len()..]))
        .next()
        .unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = "\
1:C 07 Dec 2026 22:08:33.443 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo
1:C 07 Dec 2026 22:08:33.443 # Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid=1, just started
1:C 07 Dec 2026 22:08:33.443 # Configuration loaded
1:M 07 Dec 2026 22:08:33.444 # WARNING Memory overcommit must be enabled! Without it, a background save fails.
1:M 07 Dec 2026 22:08:33.464 * Ready to accept connections";

    #[test]
    fn the_banner_folds_into_one_line_and_the_shutdown_into_none() {
        let mut log = RedisLog::default();
        let shown: Vec<String> = START.lines().filter_map(|line| log.line(line)).collect();
        assert_eq!(
            shown,
            ["redis 7.0.15 ready (5 start-up lines folded; its warnings: Memory overcommit must be enabled)"]
        );
        let running = "1:M 07 Dec 2026 22:10:00.000 * Background saving started";
        assert_eq!(log.line(running).as_deref(), Some(running));
        assert_eq!(log.line("1:signal-handler (1796681383) Received SIGTERM scheduling shutdown..."), None);
        assert_eq!(log.line("1:M 07 Dec 2026 22:09:43.322 # Redis is now ready to exit, bye bye..."), None);
    }
}
