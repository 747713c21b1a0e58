//! `provision`: runs the stack on this machine the way ECS with Cloud Map
//! runs it, calls and load-tests it through discovery, and puts it on ECS
//! Fargate with Cloud Map (`plan`, `apply`, `status`, `destroy`, `deploy`;
//! built with the `aws` feature).
//!
//! This binary only parses the command line and hands each command to its
//! crate: the ones that need no cloud to `provision-local`
//! (`provisioner/local`), the AWS ones to `provision-aws`
//! (`provisioner/aws`); the stack file is `stack-spec` (`provisioner/spec`).
//! It runs no future itself: a binary compiles after every dependency, so
//! what it holds is on the build's critical path (docs/building.md).

mod examples;

use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use provision_aws::{self as aws, AwsArgs, AwsCommand};
use provision_local::{self as local, BenchArgs, CallArgs, LocalArgs, TlsEndpoint};

/// Runs the gRPC stack locally as ECS with Cloud Map would, and calls and
/// load-tests it through discovery.
#[derive(Debug, Parser)]
#[command(name = "provision", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole stack on this machine, as ECS with Cloud Map runs it.
    Local(LocalArgs),
    /// Call a method through discovery and show which replica answered.
    Call(CallCommand),
    /// Load a service through discovery: calls/s, latency, status codes and
    /// the share of each endpoint, optionally with a fault injected.
    Bench(BenchArgs),
    /// The AWS side: plan, apply, status, destroy, deploy, rollback.
    #[command(flatten)]
    Aws(AwsCommand),
}

/// `provision call`'s flags, and the stack file's and AWS's for `--ingress`.
#[derive(Debug, Args)]
struct CallCommand {
    #[command(flatten)]
    call: CallArgs,
    /// The stack file and, for --ingress, where AWS is.
    #[command(flatten)]
    aws: AwsArgs,
}

impl CallCommand {
    fn run(self) -> anyhow::Result<()> {
        let ingress = if self.call.ingress {
            let found = aws::blocking::ingress_endpoint(&self.aws, &self.call.target)?;
            Some(TlsEndpoint { url: found.url, server_name: found.server_name })
        } else {
            None
        };
        local::run::call(self.call, &self.aws.stack, ingress)
    }
}

/// Parses the command line, runs it, and says what failed in one line.
fn main() -> ExitCode {
    let matches = examples::with_examples(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let result = match cli.command {
        Command::Local(args) => local::run::local(args).map(|()| 0),
        Command::Call(command) => command.run().map(|()| 0),
        Command::Bench(args) => local::run::bench(args).map(|()| 0),
        Command::Aws(command) => aws::blocking::run(command),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("provision: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
