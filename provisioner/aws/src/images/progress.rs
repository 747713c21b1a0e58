//! What a push did, said in one line per image: how many blobs went up,
//! how many bytes, how many the registry had already; on a terminal, also a
//! line per blob as it goes.

use std::{fmt, io::IsTerminal as _};

/// A line per blob on a terminal; nothing in CI, where the line per image
/// says it all.
pub fn blob(digest: &str, bytes: usize, sent: bool) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let short = digest.trim_start_matches("sha256:").get(..12).unwrap_or(digest);
    if sent {
        eprintln!("  {short}  {:>9}  uploaded", size(bytes as u64));
    } else {
        eprintln!("  {short}  {:>9}  already there", "");
    }
}

/// The blobs of one push.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Blobs sent.
    pub uploaded: usize,
    /// Bytes sent.
    pub bytes: u64,
    /// Blobs the registry had: not sent.
    pub skipped: usize,
}

impl fmt::Display for Pushed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let blobs = self.uploaded + self.skipped;
        if self.uploaded == 0 {
            return write!(f, "no blob uploaded, the registry had all {blobs}");
        }
        write!(f, "{} of {blobs} blobs uploaded ({}), {} already there", self.uploaded, size(self.bytes), self.skipped)
    }
}

/// Bytes for people: `812 B`, `4.1 MB`.
pub fn size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_says_what_it_sent_and_what_it_did_not() {
        let first = Pushed { uploaded: 3, bytes: 4_100_000, skipped: 5 };
        assert_eq!(first.to_string(), "3 of 8 blobs uploaded (4.1 MB), 5 already there");
        let again = Pushed { uploaded: 0, bytes: 0, skipped: 8 };
        assert_eq!(again.to_string(), "no blob uploaded, the registry had all 8");
        assert_eq!(size(812), "812 B");
    }
}
