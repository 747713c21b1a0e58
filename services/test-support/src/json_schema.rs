//! Checks a command's `-o json` document against its published schema
//! (`docs/schemas/<command>.json`) with Python's `jsonschema`, a validator
//! nobody here wrote, from the test venv moto is installed in. The schemas
//! are what docs/json-output.md promises to programs; the tests hold every
//! command's real output to them.

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
};

/// The schema file of `command` (`plan`, `local-status`).
pub fn schema_path(command: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas").join(format!("{command}.json"))
}

/// Panics with every violation when `document` does not match `command`'s
/// schema, or when the schema is not a valid JSON Schema itself.
pub fn assert_matches_schema(command: &str, document: &serde_json::Value) {
    const CHECK: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
document = json.load(sys.stdin)
errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(document), key=lambda e: list(e.path))
for error in errors:
    print("/".join(str(p) for p in error.absolute_path) or "(top)", ":", error.message)
sys.exit(1 if errors else 0)
"#;
    let schema = schema_path(command);
    let python = crate::moto::python();
    let mut child = Command::new(&python)
        .args(["-c", CHECK])
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {} for jsonschema: {error}", python.display()));
    child.stdin.take().expect("piped").write_all(document.to_string().as_bytes()).expect("write the document");
    let output = child.wait_with_output().expect("jsonschema's answer");
    assert!(
        output.status.success(),
        "{} -o json does not match {}:\n{}{}\ndocument: {document:#}",
        command,
        schema.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_missing_a_key_or_with_an_extra_one_fails() {
        let good = serde_json::json!({
            "response": {"name": "x"}, "served_by": "127.0.0.2:5000", "attempts": ["127.0.0.2:5000"],
            "target": "dns://127.0.0.1:8600/game-server.local:5000", "endpoints": 3,
        });
        assert_matches_schema("call", &good);
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("served_by");
        let extra = {
            let mut extra = good.clone();
            extra["surprise"] = serde_json::json!(1);
            extra
        };
        for bad in [missing, extra] {
            let failed = std::panic::catch_unwind(|| assert_matches_schema("call", &bad));
            assert!(failed.is_err(), "{bad} passed");
        }
    }

    #[test]
    fn every_published_schema_is_a_valid_json_schema() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("docs/schemas") {
            let path = entry.expect("an entry").path();
            let command = path.file_stem().and_then(|stem| stem.to_str()).expect("a name").to_owned();
            // Any document will do: check_schema runs before it is read.
            let result = std::panic::catch_unwind(|| assert_matches_schema(&command, &serde_json::json!(null)));
            if let Err(panic) = result {
                let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(!message.contains("SchemaError"), "{}: {message}", path.display());
            }
            checked += 1;
        }
        assert!(checked >= 9, "{checked} schemas in {}", dir.display());
    }
}
