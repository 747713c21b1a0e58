//! Running a replica's health-check command, as the ECS agent does in the
//! container: exit status 0 within the timeout is healthy.

use std::{net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};

use tokio::process::Command;

/// A health-check command with its program resolved.
#[derive(Debug, Clone)]
pub struct HealthCommand {
    /// The program: a workspace binary's path, or a name looked up on PATH.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// How long one check may take.
    pub timeout: Duration,
}

/// What one check found: `Ok` when healthy, else why not.
pub async fn check(command: &HealthCommand, addr: SocketAddr, env: &[(String, String)]) -> Result<(), String> {
    let mut process = Command::new(&command.program);
    process
        .args(&command.args)
        .envs(env.iter().map(|(key, value)| (key, value)))
        // The replica's own address, as its container would see GRPC_ADDR.
        .env("GRPC_ADDR", addr.to_string())
        .env_remove("HEALTH_ADDR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = process.spawn().map_err(|error| format!("cannot run {}: {error}", command.program.display()))?;
    match tokio::time::timeout(command.timeout, child.wait_with_output()).await {
        Err(_) => Err(format!("no result within {:?}", command.timeout)),
        Ok(Err(error)) => Err(error.to_string()),
        Ok(Ok(output)) if output.status.success() => Ok(()),
        Ok(Ok(output)) => {
            let said = String::from_utf8_lossy(&output.stderr);
            let said =
                said.lines().chain(String::from_utf8_lossy(&output.stdout).lines()).next().unwrap_or("").to_owned();
            Err(format!("{} {said}", output.status))
        }
    }
}
