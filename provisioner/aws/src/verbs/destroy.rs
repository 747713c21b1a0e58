//! `provision destroy`: removes what apply made, each kind once nothing
//! left needs it (see [`crate::engine::graph::Graph::teardown_order`]), and
//! only what carries this app's tags. Each kind's module says how it goes
//! (services are scaled to zero and drained first, so Cloud Map has no
//! instance left when its service goes).

use clap::Args;

use super::{AwsArgs, LockArgs, Output};

/// `provision destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Delete without asking (needed when not on a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Also delete the services' log groups (kept by default).
    #[arg(long)]
    pub delete_logs: bool,
    /// Delete the stores without the final snapshot that keeps their boards
    /// (taken by default).
    #[arg(long)]
    pub skip_final_snapshot: bool,
    /// `text`: progress for people; `json`: progress on stderr, then one
    /// document on stdout: what was found, deleted and left behind
    /// (docs/json-output.md).
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Lists what goes, confirms, deletes.
#[cfg(feature = "aws")]
pub async fn run(args: DestroyArgs) -> anyhow::Result<u8> {
    args.output.claim_stdout();
    let (stack, clients) = super::connect(&args.aws).await?;
    let lock = super::lock(&clients, &stack, "destroy", &args.lock).await?;
    lock.hold(destroy(args, stack, clients)).await
}

/// Destroy under the lock.
#[cfg(feature = "aws")]
async fn destroy(args: DestroyArgs, stack: stack_spec::Stack, clients: crate::clients::Clients) -> anyhow::Result<u8> {
    use crate::{
        engine::{
            account, journal,
            names::Names,
            resource::{Cx, DestroyOptions},
        },
        kinds::GRAPH,
    };
    let live = account::read(GRAPH, &clients, &stack).await?;
    let output = args.output;
    // The document `-o json` prints, whichever way destroy ends.
    let print_json = |targets: &[String], left: &[(&str, String)], kept: &[&str]| {
        if output.is_json() {
            let document = serde_json::json!({
                "app": stack.app,
                "account": live.account,
                "region": live.region,
                "found": targets,
                "changes": journal::changes(),
                "left_behind": left.iter().map(|(kind, error)| serde_json::json!({"kind": kind, "error": error})).collect::<Vec<_>>(),
                "kept": kept,
                "destroyed": left.is_empty() && kept.is_empty(),
            });
            println!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
        }
    };
    let started_at =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    let options =
        DestroyOptions { delete_logs: args.delete_logs, skip_final_snapshot: args.skip_final_snapshot, started_at };
    let order = GRAPH.teardown_order();
    let targets: Vec<String> = order.iter().flat_map(|node| node.kind.teardown_lines(&live, options)).collect();
    if targets.is_empty() {
        provision_cli::say!("Nothing of app {} exists in account {}, region {}.", stack.app, live.account, live.region);
        print_json(&targets, &[], &[]);
        return Ok(0);
    }
    provision_cli::say!("Destroy app {} in account {}, region {}:", stack.app, live.account, live.region);
    for target in &targets {
        provision_cli::say!("  - {target}");
    }
    if targets.iter().all(|target| target.contains(" (kept: ")) {
        provision_cli::say!("Nothing of app {} to delete: what has its names above is not its own.", stack.app);
        print_json(&targets, &[], &[]);
        return Ok(0);
    }
    if !args.yes {
        super::confirm("Delete these?")?;
    }
    let names = Names::of(&stack);
    let cx = Cx { clients: &clients, names: &names, stack: &stack };
    // A kind that cannot be deleted keeps what it needs (a security group
    // its load balancer uses); everything else goes, as terraform does.
    let mut left: Vec<(&'static str, String)> = Vec::new();
    let mut blocked: Vec<&'static str> = Vec::new();
    for node in &order {
        let key = node.kind.key();
        if blocked.contains(&key) {
            blocked.extend(node.needs);
            continue;
        }
        if let Err(error) = node.kind.destroy(cx, &live, options).await {
            provision_cli::say!("  ! {key}: {error:#}");
            left.push((key, format!("{error:#}")));
            blocked.extend(node.needs);
        }
    }
    if left.is_empty() {
        provision_cli::say!("Destroyed.");
        print_json(&targets, &[], &[]);
        return Ok(0);
    }
    let kept: Vec<&str> = order
        .iter()
        .filter(|node| !node.kind.teardown_lines(&live, options).is_empty())
        .map(|node| node.kind.key())
        .filter(|key| blocked.contains(key) && !left.iter().any(|(failed, _)| failed == key))
        .collect();
    provision_cli::say!("\nLeft behind:");
    for (key, error) in &left {
        provision_cli::say!("  - {key}: could not be deleted: {error}");
    }
    for key in &kept {
        provision_cli::say!("  - {key}: kept, as something left behind needs it");
    }
    print_json(&targets, &left, &kept);
    anyhow::bail!(
        "destroy deleted everything else but left {} kind(s) behind (listed above); fix the cause and run destroy \
         again to finish",
        left.len() + kept.len()
    )
}
