//! An error with its causes on one line, for the messages people read.

/// The error and its causes on one line, each said once: the AWS SDK's own
/// rendering ends in a debug dump, and a TLS failure is three levels down
/// a transport error.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = current.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::causes;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: inner")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn says_each_cause_once_and_on_one_line() {
        let inner = std::io::Error::other("inner");
        assert_eq!(causes(&Outer(inner)), "outer: inner");
        let spread = std::io::Error::other("connection\n   refused");
        assert_eq!(causes(&spread), "connection refused");
    }
}
