//! One way to write a duration on every command line: `500ms`, `5s`,
//! `1m30s`, `2h` (humantime's spelling), or a bare number of seconds.

use std::time::Duration;

/// Parses a command-line duration; clap's `value_parser`.
pub fn parse(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is not a number of seconds >= 0"));
    }
    humantime::parse_duration(text).map_err(|error| format!("{text:?}: {error} (write e.g. 500ms, 5s, 1m30s)"))
}

/// [`parse`] for a deadline: zero is refused, as it could never be met.
pub fn parse_positive(text: &str) -> Result<Duration, String> {
    match parse(text)? {
        Duration::ZERO => Err(format!("{text:?}: a deadline of zero can never be met (write e.g. 30s, 15m)")),
        duration => Ok(duration),
    }
}

/// A duration as the flags take it (`1h 15m`, `30s`), for messages that
/// name a flag's value.
pub fn format(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_or_bare_seconds() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse("-1").is_err());
        assert!(parse("5 parsecs").unwrap_err().contains("write e.g. 500ms, 5s, 1m30s"));
        assert_eq!(parse_positive("15m"), Ok(Duration::from_secs(900)));
        assert!(parse_positive("0s").unwrap_err().contains("zero"));
        assert_eq!(format(Duration::from_secs(4500)), "1h 15m");
        assert_eq!(parse(&format(Duration::from_secs(4500))), Ok(Duration::from_secs(4500)));
    }
}
