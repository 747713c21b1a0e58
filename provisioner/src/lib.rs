//! `provision`: runs the stack on this machine the way ECS with Cloud Map
//! runs it, calls and load-tests it through discovery, and puts it on ECS
//! Fargate with Cloud Map (`plan`, `apply`, `status`, `destroy`; built with
//! the `aws` feature).
//!
//! A library with a one-line binary: cargo compiles a library as soon as
//! its dependencies' metadata is there (a binary waits for all of them), so
//! this code compiles while the services' crates still do.
//!
//! # Layout
//! - `local/`: `provision local`: the runner (a supervisor per service and
//!   one per store), health checks, the DNS server's registry, the local
//!   autoscaler, the control endpoint, process usage.
//! - `call.rs`, `reflect.rs`: `provision call` through discovery (or TLS to
//!   an ingress), with the method's types from the server's reflection.
//! - `bench/`: `provision bench`: the load loop, faults (`chaos`), the raw
//!   codec, what a run measured, and its report; `rate.rs` its schedules.
//! - The AWS commands are the `provision-aws` crate (`provisioner/aws`), the
//!   stack file the `stack-spec` crate (`provisioner/spec`).

mod bench;
mod call;
mod local;
mod rate;
mod reflect;

use provision_aws as aws;
use stack_spec as spec;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Local(local::LocalArgs),
    /// Call a method through discovery and show which replica answered.
    Call(call::CallArgs),
    /// Load a service through discovery: calls/s, latency, status codes and
    /// the share of each endpoint, optionally with a fault injected.
    Bench(bench::BenchArgs),
    /// The AWS side: plan, apply, status, destroy, deploy, rollback.
    #[command(flatten)]
    Aws(aws::AwsCommand),
}

/// The whole `provision` command: parses the command line, runs it, and
/// says what failed in one line.
pub fn main() -> ExitCode {
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
            Command::Call(args) => call::main(args).await.map(|()| 0),
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
