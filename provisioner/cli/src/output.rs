//! `-o/--output text|json`: the one switch every command that prints state
//! or results takes. JSON goes to stdout as one document; progress lines go
//! to stderr while it is asked for, so stdout stays parseable
//! (docs/json-output.md lists each command's document).

use std::sync::atomic::{AtomicBool, Ordering};

use clap::ValueEnum;

/// How a command prints what it found or did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// One JSON document on stdout, for programs; progress on stderr.
    Json,
}

impl Output {
    /// Whether a program reads stdout.
    pub fn is_json(self) -> bool {
        self == Self::Json
    }
}

/// Set once a command has said it prints JSON on stdout.
static STDOUT_CLAIMED: AtomicBool = AtomicBool::new(false);

impl Output {
    /// Called by a command before it prints anything: with JSON, every
    /// later [`say!`](crate::say) line goes to stderr, so that stdout holds
    /// the one document.
    pub fn claim_stdout(self) {
        if self.is_json() {
            STDOUT_CLAIMED.store(true, Ordering::Relaxed);
        }
    }
}

/// Whether progress goes to stderr because stdout carries JSON.
pub fn stdout_claimed() -> bool {
    STDOUT_CLAIMED.load(Ordering::Relaxed)
}

/// Prints one progress line: to stdout for people, to stderr once stdout
/// is claimed for JSON. What [`say!`](crate::say) calls.
pub fn say(line: std::fmt::Arguments<'_>) {
    show(&format!("{line}\n"));
}

/// Prints `text` as it is (a rendered plan, a table) where [`say`] would.
pub fn show(text: &str) {
    if stdout_claimed() {
        crate::colour::eprint(text);
    } else {
        crate::colour::print(text);
    }
}

/// Writes `text` byte for byte where [`show`] would: for a view that moves
/// the cursor itself (a redrawn block), which colour stripping would break.
pub fn show_raw(text: &str) {
    use std::io::Write as _;
    if stdout_claimed() {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    } else {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }
}

/// `println!` for progress and results meant for people: stderr instead
/// while a command prints JSON on stdout; colour stripped off a terminal.
#[macro_export]
macro_rules! say {
    () => {
        $crate::output::say(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::say(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_claims_stdout_and_text_does_not() {
        Output::Text.claim_stdout();
        assert!(!stdout_claimed());
        Output::Json.claim_stdout();
        assert!(stdout_claimed());
    }
}
