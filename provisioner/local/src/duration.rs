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
    }
}
