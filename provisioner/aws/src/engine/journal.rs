//! What a command changed, kept as it goes: each change is said as a line
//! for people ("  created log group /ecs/app/game-server") and recorded, so
//! that `-o json` can list them all in its document when the command ends
//! (docs/json-output.md). One process runs one command, so one journal.

use std::sync::Mutex;

use serde::Serialize;

/// One change made to AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `created`, `updated`, `replaced`, `deleted`, `registered`, `kept`...
    pub action: String,
    /// The kind's label: `log group`, `ecs service`.
    pub kind: String,
    /// The resource's name (with its id where the name is not unique).
    pub name: String,
}

/// How one deployment ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployment {
    pub service: String,
    /// `completed`, `failed` or `timed_out`.
    pub result: String,
    /// Why, when it did not complete.
    pub reason: Option<String>,
}

#[derive(Default)]
struct Journal {
    changes: Vec<Change>,
    deployments: Vec<Deployment>,
}

static JOURNAL: Mutex<Journal> = Mutex::new(Journal { changes: Vec::new(), deployments: Vec::new() });

fn journal() -> std::sync::MutexGuard<'static, Journal> {
    // A panic elsewhere leaves the list as it was: still the truth.
    JOURNAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Says and records one change: "  {action} {kind} {name}".
pub fn done(action: &str, kind: &str, name: &str) {
    provision_cli::say!("  {action} {kind} {name}");
    journal().changes.push(Change { action: action.to_owned(), kind: kind.to_owned(), name: name.to_owned() });
}

/// Records how a deployment ended (the watch says it).
pub fn deployment(service: &str, result: &str, reason: Option<String>) {
    journal().deployments.push(Deployment { service: service.to_owned(), result: result.to_owned(), reason });
}

/// Every change so far, in order.
pub fn changes() -> Vec<Change> {
    journal().changes.clone()
}

/// Every deployment waited for so far, in order.
pub fn deployments() -> Vec<Deployment> {
    journal().deployments.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_recorded_as_it_is_said() {
        let before = changes().len();
        done("created", "log group", "/ecs/app/game-server");
        let change = changes()[before].clone();
        assert_eq!((change.action.as_str(), change.kind.as_str()), ("created", "log group"));
        assert_eq!(change.name, "/ecs/app/game-server");
    }
}
