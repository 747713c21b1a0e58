//! `provision`: runs the stack locally and on ECS Fargate with Cloud Map.
//!
//! The subcommands (`local`, `plan`, `apply`, `status`, `destroy`, `deploy`,
//! `call`, `bench`) are not built yet; this binary only reserves the name and
//! says so, rather than pretending to do something.

use std::process::ExitCode;

use clap::Parser;

/// Runs the gRPC stack locally, or on ECS Fargate with Cloud Map.
#[derive(Debug, Parser)]
#[command(name = "provision", version, about)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    eprintln!("provision: no subcommands are available in this version yet; see README.md");
    ExitCode::from(2)
}
