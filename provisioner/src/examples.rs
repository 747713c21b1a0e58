//! The Examples section of every subcommand's `--help`, drawn from the
//! README and docs/aws.md: one table, so that a test can parse each line
//! the way the shell would hand it over and fail when an example no longer
//! parses or a subcommand has none.

use clap::Command;

/// Each subcommand (its path of names) and its examples, each a
/// `provision ...` line with an optional `# what it does`.
pub const EXAMPLES: &[(&[&str], &[&str])] = &[
    (
        &["local"],
        &[
            "provision local                      # build, then run the stack in stack.toml",
            "provision local --no-build --bin-dir target/release   # the binaries built already",
            "provision local --stack other.toml --fresh            # another stack file, its stores emptied",
        ],
    ),
    (
        &["local", "status"],
        &[
            "provision local status               # replicas, addresses, health, pids, uptime, CPU, memory",
            "provision local status -o json       # the same as proto3 JSON (proto/control/control.proto)",
        ],
    ),
    (&["local", "restart"], &["provision local restart game-server     # rolling, keeps the count healthy"]),
    (&["local", "kill"], &["provision local kill game-server        # SIGKILL one replica; watch it replaced"]),
    (
        &["call"],
        &[
            "provision call game-server rpc.Rpc/GetChampion '{\"champion_id\": 1}'",
            "provision call ranking ranking.v1.Ranking/GetTop -d '{\"limit\": 3}' --timeout 2s",
            "provision call game-server rpc.Rpc/ListChampions -o json   # the answer and who served it, as JSON",
            "provision call 127.0.1.2:5000 rpc.Rpc/ListChampions   # one replica, by address (see local status)",
            "provision call ranking ranking.v1.Ranking/GetTop --ingress   # through its load balancer on AWS",
        ],
    ),
    (
        &["bench"],
        &[
            "provision bench game-server rpc.Rpc/GetChampion -d '{\"champion_id\": 1}' --duration 5s --concurrency 32",
            "provision bench game-server rpc.Rpc/GetChampion --duration 6s --chaos kill:game-server@2",
            "provision bench game-server rpc.Rpc/ListChampions --rate 2000:40,50:60 -o json",
        ],
    ),
    (
        &["plan"],
        &[
            "provision plan                       # what apply would change; changes nothing",
            "provision plan -v                    # unchanged resources too",
            "provision plan --output json --detailed-exitcode",
        ],
    ),
    (
        &["apply"],
        &[
            "provision apply                      # shows the plan, asks, creates, waits",
            "provision apply --yes --replace-store leaderboard",
            "provision apply --yes --wait-timeout 30m -o json   # progress on stderr, what it did as JSON",
        ],
    ),
    (
        &["status"],
        &[
            "provision status                     # tasks beside their Cloud Map instances",
            "provision status -o json             # the same as one JSON document (docs/json-output.md)",
        ],
    ),
    (
        &["destroy"],
        &[
            "provision destroy                    # asks, then deletes what carries this app's tags",
            "provision destroy --yes -o json      # what it deleted and left behind, as JSON",
        ],
    ),
    (
        &["deploy"],
        &[
            "provision deploy                     # builds, pushes and rolls out every service",
            "provision deploy --service game-server --tag v2",
            "provision deploy --apply             # the whole stack, then the images",
            "provision deploy --binaries target/release -o json   # prebuilt binaries; images by digest as JSON",
        ],
    ),
    (&["rollback"], &["provision rollback game-server       # back to the revision before the current one"]),
    (&["pipeline"], &["provision pipeline run", "provision pipeline status"]),
    (
        &["pipeline", "run"],
        &[
            "provision pipeline run               # start it and follow it stage by stage",
            "provision pipeline run --timeout 90m",
        ],
    ),
    (
        &["pipeline", "status"],
        &[
            "provision pipeline status            # the last runs: commit, result, duration",
            "provision pipeline status -o json",
        ],
    ),
    (&["image"], &["provision image game-server --binaries target/release --push localhost:5000/game-server:v1"]),
];

/// `command` with each subcommand's examples after its help.
pub fn with_examples(mut command: Command) -> Command {
    for (path, lines) in EXAMPLES {
        let text = format!("Examples:\n{}", lines.iter().map(|line| format!("  {line}\n")).collect::<String>());
        command = add(command, path, text);
    }
    command
}

fn add(command: Command, path: &[&str], text: String) -> Command {
    match path {
        [] => command.after_help(text),
        [first, rest @ ..] => command.mut_subcommand(*first, |sub| add(sub, rest, text)),
    }
}

/// An example's words as a shell hands them over: split on spaces,
/// single quotes keeping what is inside, `#` starting a comment.
#[cfg(test)]
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let (mut word, mut quoted, mut started) = (String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            '#' if !quoted && !started => break,
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::Cli;

    #[test]
    fn every_example_parses_as_the_command_it_shows() {
        for (path, lines) in EXAMPLES {
            for line in *lines {
                let words = words(line);
                assert_eq!(words[1..=path.len()], **path, "{line} belongs to {path:?}");
                if let Err(error) = with_examples(Cli::command()).try_get_matches_from(&words) {
                    panic!("{line}: {error}");
                }
            }
        }
    }

    #[test]
    fn every_subcommand_has_examples_in_its_help() {
        fn visit(command: &mut Command, path: &mut Vec<String>, missing: &mut Vec<String>) {
            for sub in command.get_subcommands_mut() {
                if sub.get_name() == "help" {
                    continue;
                }
                path.push(sub.get_name().to_owned());
                if !sub.render_long_help().to_string().contains("Examples:\n  provision ") {
                    missing.push(path.join(" "));
                }
                visit(sub, path, missing);
                path.pop();
            }
        }
        let mut missing = Vec::new();
        visit(&mut with_examples(Cli::command()), &mut Vec::new(), &mut missing);
        assert!(missing.is_empty(), "no Examples in the help of: {missing:?}");
    }

    #[test]
    fn words_split_as_a_shell_does() {
        assert_eq!(words("provision call x '{\"a\": 1}' # note"), ["provision", "call", "x", "{\"a\": 1}"]);
    }
}
