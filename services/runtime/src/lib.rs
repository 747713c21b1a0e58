//! What every service needs to run as an ECS Fargate task behind Cloud Map:
//! a command line shared by all services (`serve`, `health`), gRPC health and
//! reflection, a drain on SIGTERM that loses no calls, and logs for people or
//! for CloudWatch. A service's `main` is a call to [`main`] with its flags and
//! a function that builds its [`Services`].

pub mod age;
mod causes;
pub mod cli;
mod connection;
pub mod drain;
mod ignored_streams;
pub mod logging;
pub mod probe;
pub mod request_log;
mod serve;
mod services;
mod stream_end;

use std::{future::Future, process::ExitCode};

use clap::{Args, CommandFactory, FromArgMatches};

pub use age::ConnectionAge;
pub use causes::causes;
pub use cli::{Cli, Command, HealthArgs, LogFormat, ServeArgs, ServeCommand};
pub use connection::OpenConnections;
pub use serve::{ServeError, serve};
pub use services::Services;

/// How many tasks a runtime worker polls between two looks at the shared
/// (global) queue. hyper runs every HTTP/2 stream as a task of its own; at
/// saturation more streams are runnable than a worker's local queue holds
/// (256), the overflow goes to the global queue, and tokio's self-tuned
/// interval then left those streams waiting several times the median: with
/// 512 streams in flight on one core, GetChampion's p99 was 1.9x grpc-go's.
/// Looking every other poll brought it level (README, Performance).
const GLOBAL_QUEUE_INTERVAL: u32 = 2;

/// Every service allocates per call (headers, frames, messages); glibc's
/// malloc and free were 15% of the ranking server's CPU under load.
/// mimalloc made GetChampion at saturation 11% faster (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The error a service's set-up may fail with; it is printed as one line.
pub type SetupError = Box<dyn std::error::Error + Send + Sync>;

/// Runs a service binary: parses the command line (named `name`), then either
/// probes health or sets up logging, calls `setup` with the service's own
/// flags and serves what it returns. Errors are printed as one line naming
/// the binary, and turn into exit code 1.
pub fn main<A, F, Fut>(name: &'static str, about: &'static str, setup: F) -> ExitCode
where
    A: Args,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = Result<Services, SetupError>>,
{
    let matches = Cli::<A>::command().name(name).bin_name(name).about(about).get_matches();
    let cli = match Cli::<A>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match cli.into_command() {
        Command::Health(args) => ExitCode::from(probe::run(&args)),
        Command::Serve(serve_command) => {
            let format = serve_command.runtime.log_format;
            logging::init(format, serve_command.runtime.log_level.as_deref());
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .global_queue_interval(GLOBAL_QUEUE_INTERVAL)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => return fail(name, format, &error),
            };
            let result = runtime.block_on(async {
                let services = setup(serve_command.service).await?;
                serve(&serve_command.runtime, services).await.map_err(SetupError::from)
            });
            // Connections still open at the deadline must not hold the exit.
            runtime.shutdown_background();
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(name, format, &*error),
            }
        }
    }
}

/// Reports a fatal error once: as a log event for log pipelines, as a plain
/// line for people.
fn fail(name: &str, format: LogFormat, error: &dyn std::error::Error) -> ExitCode {
    match format {
        LogFormat::Json => tracing::error!(%error, "{name} failed"),
        LogFormat::Human => eprintln!("{name}: error: {error}"),
    }
    ExitCode::FAILURE
}
