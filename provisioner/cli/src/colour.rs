//! Colour on a terminal only: text goes through anstream, which drops the
//! styles when stdout is not a terminal, when `NO_COLOR` is set (any
//! non-empty value, no-color.org) or `CLICOLOR=0`, and keeps them with
//! `CLICOLOR_FORCE`; the same rules clap applies to `--help`.

use anstyle::{AnsiColor, Style};

/// What was added: `+ create`.
pub const ADDED: Style = AnsiColor::Green.on_default();
/// What is changed in place: `~ update`.
pub const CHANGED: Style = AnsiColor::Yellow.on_default();
/// What is deleted or replaced: `- delete`, `-/+ replace`.
pub const REMOVED: Style = AnsiColor::Red.on_default();
/// A warning that needs a look.
pub const WARNING: Style = AnsiColor::Yellow.on_default().bold();
/// No style: what is unchanged.
pub const PLAIN: Style = Style::new();

/// `text` in `style` (the escape codes are stripped later where colour is
/// off).
pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// `text` without its escape codes: what a log or a pipe gets.
pub fn strip(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}

/// Prints `text` to stdout, in colour only where colour is on.
pub fn print(text: &str) {
    use std::io::Write as _;
    let mut stdout = anstream::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Prints `text` to stderr, in colour only where colour is on there.
pub fn eprint(text: &str) {
    use std::io::Write as _;
    let mut stderr = anstream::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_wraps_in_escape_codes_that_strip_to_the_text() {
        let painted = paint(ADDED, "+ create");
        assert!(painted.starts_with("\u{1b}[32m"), "{painted:?}");
        assert_eq!(strip(&painted), "+ create");
        assert_eq!(paint(PLAIN, "= unchanged"), "= unchanged", "no codes for no style");
    }
}
