//! The TOML reader's errors, said in the stack file's words: which key,
//! what it takes, and the fix. serde's own text (`invalid type: string "3",
//! expected i64`, or an unknown field followed by all fifteen others) names
//! neither the key nor what to write.

use std::ops::Range;

/// How far (in edits) a misspelt key may be from the one meant.
const MAX_EDITS: usize = 3;

/// The message for the reader's `message` about the value at `span` of
/// `text`.
pub(crate) fn explain(text: &str, span: Option<&Range<usize>>, message: &str) -> String {
    if let Some(unknown) = unknown_key(text, span, message) {
        return unknown;
    }
    if let Some(wrong) = wrong_type(text, span, message) {
        return wrong;
    }
    message.to_owned()
}

/// `unknown field `x`, expected one of `a`, `b`` as the table it is in,
/// the key meant, and the keys there are.
fn unknown_key(text: &str, span: Option<&Range<usize>>, message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, expected) = rest.split_once('`')?;
    let keys: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let table = span.and_then(|span| table_at(text, span.start)).unwrap_or_else(|| "the top level".to_owned());
    // A few edits away (a typo), or the key without its unit (`dns_ttl`
    // for `dns_ttl_secs`, `cpu` for `cpu_percent`).
    let nearest = keys
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(key, candidate), *candidate))
        .filter(|(edits, candidate)| *edits <= MAX_EDITS.min(candidate.len() / 2 + 1))
        .min()
        .map(|(_, candidate)| candidate)
        .or_else(|| keys.iter().copied().find(|candidate| candidate.starts_with(&format!("{key}_"))));
    let hint = match nearest {
        Some(candidate) => format!("did you mean `{candidate}`? "),
        None => String::new(),
    };
    Some(format!("unknown key `{key}` in {table}: {hint}the keys there are {}", keys.join(", ")))
}

/// `invalid type: string "3", expected i64` as the key, what it takes, and
/// how to write it.
fn wrong_type(text: &str, span: Option<&Range<usize>>, message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid type: ")?;
    let (found, expected) = rest.split_once(", expected ")?;
    let wanted = match expected.trim() {
        "i64" | "u64" | "i32" | "u32" | "u16" | "u8" | "usize" => "a whole number",
        "f64" | "f32" => "a number",
        "a string" | "string" | "a borrowed string" => "text in quotes",
        "a boolean" | "bool" => "true or false",
        "a sequence" => "a list, [\"a\", \"b\"]",
        other if other.starts_with("struct ") || other.starts_with("a map") => "a table",
        other => other,
    };
    let key = span.and_then(|span| key_at(text, span.start));
    let fix = match (wanted, found) {
        ("a whole number" | "a number", found) if found.starts_with("string \"") => {
            let value = found.trim_start_matches("string ").trim_matches('"');
            key.as_ref().map(|key| format!(": write {key} = {value}, without quotes"))
        }
        ("text in quotes", found) if !found.starts_with("string") => {
            let value = found.split_whitespace().last().unwrap_or_default().trim_matches('`');
            key.as_ref().map(|key| format!(": write {key} = \"{value}\""))
        }
        _ => None,
    }
    .unwrap_or_default();
    Some(match key {
        Some(key) => format!("{key} takes {wanted}, not the {found}{fix}"),
        None => format!("expected {wanted}, not the {found}"),
    })
}

/// The key on the line where `offset` is: what comes before its `=`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |newline| newline + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_owned())
}

/// The table header (`[service.aws]`, `[[service]]`) the line at `offset`
/// is under.
fn table_at(text: &str, offset: usize) -> Option<String> {
    text[..offset.min(text.len())]
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with('['))
        .map(|line| line.split('#').next().unwrap_or(line).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str) -> Range<usize> {
        let start = text.find(needle).unwrap();
        start..start + needle.len()
    }

    #[test]
    fn an_unknown_key_names_its_table_and_the_key_meant() {
        let text = "app = \"x\"\n[[service]]\nname = \"a\"\ndns_ttl = 5\n";
        let message = "unknown field `dns_tll_secs`, expected one of `name`, `port`, `dns_ttl_secs`, `count`";
        assert_eq!(
            explain(text, Some(&at(text, "dns_ttl")), message),
            "unknown key `dns_tll_secs` in [[service]]: did you mean `dns_ttl_secs`? the keys there are name, port, \
             dns_ttl_secs, count"
        );
        let far = "unknown field `colour`, expected one of `name`, `port`";
        assert_eq!(explain(text, None, far), "unknown key `colour` in the top level: the keys there are name, port");
    }

    #[test]
    fn a_wrong_type_names_the_key_and_how_to_write_it() {
        let text = "[[service]]\nname = \"a\"\ncount = \"3\"\n";
        assert_eq!(
            explain(text, Some(&at(text, "\"3\"")), "invalid type: string \"3\", expected i64"),
            "count takes a whole number, not the string \"3\": write count = 3, without quotes"
        );
        let text = "app = 5\n";
        assert_eq!(
            explain(text, Some(&at(text, "5")), "invalid type: integer `5`, expected a string"),
            "app takes text in quotes, not the integer `5`: write app = \"5\""
        );
    }

    #[test]
    fn other_messages_pass_as_they_are() {
        assert_eq!(explain("", None, "missing field `name`"), "missing field `name`");
    }
}
