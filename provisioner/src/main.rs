//! `provision`: runs the stack on this machine the way ECS with Cloud Map
//! runs it, calls and load-tests it through discovery, and puts it on ECS
//! Fargate with Cloud Map (`plan`, `apply`, `status`, `destroy`, `deploy`;
//! built with the `aws` feature).
//!
//! This binary only joins the commands: the ones that need no cloud are the
//! `provision-local` crate (`provisioner/local`), the AWS ones the
//! `provision-aws` crate (`provisioner/aws`), the stack file the
//! `stack-spec` crate (`provisioner/spec`).

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use provision_aws::{self as aws, AwsArgs, AwsCommand};
use provision_local::{BenchArgs, CallArgs, LocalArgs, TlsEndpoint, bench, call, local};

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
    async fn run(self) -> anyhow::Result<()> {
        let ingress = if self.call.ingress {
            let found = aws::ingress_endpoint(&self.aws, &self.call.target).await?;
            Some(TlsEndpoint { url: found.url, server_name: found.server_name })
        } else {
            None
        };
        call::main(self.call, &self.aws.stack, ingress).await
    }
}

/// Parses the command line, runs it, and says what failed in one line.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("provision: error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Local(args) => local::main(args).await.map(|()| 0),
            Command::Call(command) => command.run().await.map(|()| 0),
            Command::Bench(args) => bench::main(args).await.map(|()| 0),
            Command::Aws(command) => aws::run(command).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("provision: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
