//! The stack on ECS Fargate with Cloud Map: `plan`, `apply`, `status` and
//! `destroy`. The flags are always there; the SDK behind them only with the
//! `aws` cargo feature, so the local run never builds it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[cfg(feature = "aws")]
mod account;
#[cfg(feature = "aws")]
mod acm;
#[cfg(feature = "aws")]
mod app_autoscaling;
#[cfg(feature = "aws")]
mod apply;
#[cfg(feature = "aws")]
mod backoff;
#[cfg(feature = "aws")]
mod codebuild;
#[cfg(feature = "aws")]
mod codepipeline;
#[cfg(feature = "aws")]
mod delivery;
#[cfg(feature = "aws")]
mod deploy;
#[cfg(feature = "aws")]
mod destroy;
#[cfg(feature = "aws")]
mod docker;
#[cfg(feature = "aws")]
mod ec2;
#[cfg(feature = "aws")]
mod elbv2;
#[cfg(feature = "aws")]
mod error;
#[cfg(feature = "aws")]
mod graph;
#[cfg(feature = "aws")]
mod json11;
#[cfg(feature = "aws")]
mod kinds;
#[cfg(feature = "aws")]
mod limits;
#[cfg(feature = "aws")]
mod names;
#[cfg(feature = "aws")]
mod plan;
#[cfg(feature = "aws")]
mod progress;
#[cfg(feature = "aws")]
mod query;
#[cfg(feature = "aws")]
mod resource;
#[cfg(feature = "aws")]
mod s3;
#[cfg(feature = "aws")]
mod sdk;
#[cfg(feature = "aws")]
mod signed;
#[cfg(feature = "aws")]
mod state;
#[cfg(feature = "aws")]
mod status;
#[cfg(feature = "aws")]
mod wait;
#[cfg(feature = "aws")]
mod watch;

/// Where the stack file is and which AWS endpoint and region to use.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// The stack file.
    #[arg(long, env = "PROVISION_STACK", default_value = "stack.toml")]
    pub stack: PathBuf,
    /// Send every AWS call here instead of AWS's own endpoints (an
    /// emulator such as moto, or a proxy).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// The region; else the stack's `[aws] region`, else the usual AWS
    /// configuration chain (AWS_REGION, the profile).
    #[arg(long)]
    pub region: Option<String>,
}

/// How plan prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// One JSON document, for machines.
    Json,
}

/// `provision plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Exit 2 when apply would change something (0: nothing to do).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// `provision apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Apply without asking (needed when not on a terminal, e.g. in CI).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Return once the changes are made, without waiting for deployments.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for deployments before failing, in seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub wait_timeout: u64,
}

/// `provision status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `provision destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
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
}

/// `provision deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The services to deploy (repeat for several); all by default.
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// The image tag to build and push; default: the git commit (short),
    /// or CODEBUILD_RESOLVED_SOURCE_VERSION in CodeBuild.
    #[arg(long)]
    pub tag: Option<String>,
    /// Deploy this existing image instead of building one (with one
    /// --service); a tag in the service's repository is pinned by digest.
    #[arg(long, value_name = "URI")]
    pub image: Option<String>,
    /// Package the services' binaries already built in DIR (e.g.
    /// target/release) instead of compiling them inside `docker build`: the
    /// Dockerfile's `prebuilt` stage, seconds per image. Each must be built
    /// for its service's architecture.
    #[arg(long, value_name = "DIR", conflicts_with = "image")]
    pub binaries: Option<PathBuf>,
    /// Create or update the infrastructure first (`provision apply`)
    /// instead of stopping when it is missing.
    #[arg(long)]
    pub apply: bool,
    /// Return once the services are updated, without waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for deployments before failing, in seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub wait_timeout: u64,
}

/// `provision rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The service to move back to its previous task definition revision.
    pub service: String,
    /// Return once the service is updated, without waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the deployment before failing, in seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub wait_timeout: u64,
}

/// `provision pipeline`.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    #[command(subcommand)]
    pub command: PipelineCommand,
}

/// What `provision pipeline` does.
#[derive(Debug, clap::Subcommand)]
pub enum PipelineCommand {
    /// Start the delivery pipeline on the branch's latest commit and follow
    /// it stage by stage; fails when it does.
    Run(PipelineRunArgs),
    /// The pipeline's last executions: commit, result, duration.
    Status(StatusArgs),
}

/// `provision pipeline run`.
#[derive(Debug, Args)]
pub struct PipelineRunArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// How long to follow the run before failing, in minutes; default: the
    /// build's timeout and 15 minutes for the rest.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_minutes: Option<u64>,
}

/// The AWS subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AwsCommand {
    /// Show what `apply` would change on AWS, resource by resource; makes no
    /// change.
    Plan(PlanArgs),
    /// Create or update the stack on ECS Fargate with Cloud Map, then wait
    /// for the deployments.
    Apply(ApplyArgs),
    /// Show the services' deployments and tasks beside their Cloud Map
    /// instances; exits 1 when the two disagree.
    Status(StatusArgs),
    /// Delete the stack's AWS resources (only those tagged as this app's).
    Destroy(DestroyArgs),
    /// Build and push the services' images (or take a prebuilt one), pin
    /// them by digest in new task definitions and roll the services out.
    Deploy(DeployArgs),
    /// Move a service back to its previous task definition revision.
    Rollback(RollbackArgs),
    /// The delivery pipeline of `[pipeline]`: run it, or see its runs.
    Pipeline(PipelineArgs),
}

/// Runs an AWS subcommand; the exit code on success (plan's
/// `--detailed-exitcode`, status's disagreement).
pub async fn run(command: AwsCommand) -> anyhow::Result<u8> {
    #[cfg(feature = "aws")]
    return match command {
        AwsCommand::Plan(args) => commands::plan(args).await,
        AwsCommand::Apply(args) => commands::apply(args).await,
        AwsCommand::Status(args) => commands::status(args).await,
        AwsCommand::Destroy(args) => commands::destroy(args).await,
        AwsCommand::Deploy(args) => commands::deploy(args).await,
        AwsCommand::Rollback(args) => commands::rollback(args).await,
        AwsCommand::Pipeline(args) => commands::pipeline(args).await,
    };
    #[cfg(not(feature = "aws"))]
    {
        let _ = command;
        anyhow::bail!(
            "this provision was built without AWS support: build it with `cargo build --release -p provisioner \
             --features aws` (or `cargo install --path provisioner --features aws`)"
        )
    }
}

/// The error and its causes on one line, each said once (the SDK's own
/// rendering ends in a debug dump; a TLS failure is three levels down).
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = current.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

/// Where a service's load balancer answers, for `provision call --ingress`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressEndpoint {
    /// `https://DNS-NAME:443`.
    pub url: String,
    /// The name its certificate is for, which the server is verified
    /// against (the load balancer's own DNS name is not on it).
    pub server_name: Option<String>,
}

/// Finds `service`'s load balancer, its DNS name and its certificate's name.
pub async fn ingress_endpoint(args: &AwsArgs, service: &str) -> anyhow::Result<IngressEndpoint> {
    #[cfg(feature = "aws")]
    return commands::ingress_endpoint(args, service).await;
    #[cfg(not(feature = "aws"))]
    {
        let _ = (args, service);
        anyhow::bail!(
            "--ingress finds the load balancer on AWS, and this provision was built without AWS support: build it \
             with `cargo build --release -p provisioner --features aws`, or call https://NAME:443 yourself"
        )
    }
}

#[cfg(feature = "aws")]
mod commands {
    use std::{
        io::{BufRead, IsTerminal, Write},
        path::Path,
        time::Duration,
    };

    use anyhow::bail;

    use super::{
        ApplyArgs, AwsArgs, DeployArgs, DestroyArgs, Output, PlanArgs, RollbackArgs, StatusArgs, account, graph,
        names::Names,
        plan::{self, Plan},
        resource::{Cx, DestroyOptions},
        sdk::{Clients, Target},
        state::{Desired, Live},
        wait::WaitOptions,
    };
    use stack_spec::{self as spec, Stack};

    /// Loads and checks the stack file (before any call), then connects.
    async fn connect(args: &AwsArgs) -> anyhow::Result<(Stack, Clients)> {
        let stack = spec::load(&args.stack)?;
        super::limits::check(&stack, &args.stack)?;
        let target = Target {
            endpoint_url: args.endpoint_url.clone().filter(|url| !url.is_empty()),
            region: args.region.clone().or_else(|| stack.aws.region.clone()),
        };
        let clients = Clients::connect(&target).await?;
        Ok((stack, clients))
    }

    async fn read_plan(stack: &Stack, clients: &Clients) -> anyhow::Result<(Live, Plan, Desired)> {
        let live = account::read(clients, stack).await?;
        let stack = super::deploy::pin_stack_images(clients, stack, &live).await?;
        let desired = graph::desired(&stack, &live);
        let plan = plan::plan(&stack.app, &desired, &live)?;
        Ok((live, plan, desired))
    }

    pub async fn plan(args: PlanArgs) -> anyhow::Result<u8> {
        let (stack, clients) = connect(&args.aws).await?;
        let (_, plan, _) = read_plan(&stack, &clients).await?;
        match args.output {
            Output::Text => print!("{}", plan.render()),
            Output::Json => println!("{}", render_json(&plan)?),
        }
        Ok(if args.detailed_exitcode && plan.has_changes() { 2 } else { 0 })
    }

    fn render_json(plan: &Plan) -> anyhow::Result<String> {
        let [create, update, replace, delete, unchanged] = plan.counts();
        let mut value = serde_json::to_value(plan)?;
        value["summary"] = serde_json::json!({
            "create": create, "update": update, "replace": replace, "delete": delete, "unchanged": unchanged,
            "changes": plan.has_changes(),
        });
        Ok(serde_json::to_string_pretty(&value)?)
    }

    pub async fn apply(args: ApplyArgs) -> anyhow::Result<u8> {
        let (stack, clients) = connect(&args.aws).await?;
        let wait = (!args.no_wait).then(|| wait_options(args.wait_timeout));
        apply_stack(&stack, &clients, args.yes, wait).await?;
        Ok(0)
    }

    fn wait_options(timeout_secs: u64) -> WaitOptions {
        WaitOptions { timeout: Duration::from_secs(timeout_secs), ..WaitOptions::default() }
    }

    /// Plan, confirm (unless `yes`), apply, and wait (with `wait`).
    async fn apply_stack(stack: &Stack, clients: &Clients, yes: bool, wait: Option<WaitOptions>) -> anyhow::Result<()> {
        let (live, plan, desired) = read_plan(stack, clients).await?;
        print!("{}", plan.render());
        if !plan.has_changes() {
            println!("The stack is up to date.");
            return Ok(());
        }
        if !yes {
            confirm("Apply these changes?")?;
        }
        println!("\nApplying:");
        let names = Names::new(&stack.app);
        let cx = Cx { clients, names: &names, stack };
        let made = super::apply::apply(cx, &desired, &live, &plan, |_| true).await?;
        println!("Applied.");
        if let Some(options) = wait {
            super::watch::wait_for(clients, &stack.aws.cluster, &made.rollouts(), options).await?;
        }
        Ok(())
    }

    pub async fn deploy(args: DeployArgs) -> anyhow::Result<u8> {
        let (stack, clients) = connect(&args.aws).await?;
        let root = args.aws.stack.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let selected = super::deploy::select(&stack, &args.services)?;
        if let Some(dir) = &args.binaries {
            super::deploy::check_binaries(dir, &selected)?;
        }
        let mut live = account::read(&clients, &stack).await?;
        let missing = super::deploy::missing_infrastructure(&stack, &live, &selected);
        if !missing.is_empty() {
            if !args.apply {
                bail!(
                    "the infrastructure is not there yet (missing: {}): run `provision apply` first, or deploy \
                     with --apply",
                    missing.join(", ")
                );
            }
            apply_stack(&stack, &clients, true, None).await?;
            live = account::read(&clients, &stack).await?;
        }
        let request = super::deploy::DeployRequest {
            services: args.services,
            tag: args.tag,
            image: args.image,
            binaries: args.binaries,
        };
        let rollouts = super::deploy::deploy(&clients, &stack, root, &live, &request).await?;
        if !args.no_wait {
            super::watch::wait_for(&clients, &stack.aws.cluster, &rollouts, wait_options(args.wait_timeout)).await?;
        }
        Ok(0)
    }

    pub async fn rollback(args: RollbackArgs) -> anyhow::Result<u8> {
        let (stack, clients) = connect(&args.aws).await?;
        let rollout = super::deploy::rollback(&clients, &stack, &args.service).await?;
        if !args.no_wait {
            super::watch::wait_for(&clients, &stack.aws.cluster, &[rollout], wait_options(args.wait_timeout)).await?;
        }
        Ok(0)
    }

    pub async fn status(args: StatusArgs) -> anyhow::Result<u8> {
        let (stack, clients) = connect(&args.aws).await?;
        let live = account::read(&clients, &stack).await?;
        let names = Names::new(&stack.app);
        let consistent = super::status::show(Cx { clients: &clients, names: &names, stack: &stack }, &live).await?;
        Ok(if consistent { 0 } else { 1 })
    }

    pub async fn destroy(args: DestroyArgs) -> anyhow::Result<u8> {
        let (stack, clients) = connect(&args.aws).await?;
        let live = account::read(&clients, &stack).await?;
        let started_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
        let options =
            DestroyOptions { delete_logs: args.delete_logs, skip_final_snapshot: args.skip_final_snapshot, started_at };
        let targets = super::destroy::targets(&live, options);
        if targets.is_empty() {
            println!("Nothing of app {} exists in account {}, region {}.", stack.app, live.account, live.region);
            return Ok(0);
        }
        println!("Destroy app {} in account {}, region {}:", stack.app, live.account, live.region);
        for target in &targets {
            println!("  - {target}");
        }
        if !args.yes {
            confirm("Delete these?")?;
        }
        let names = Names::new(&stack.app);
        super::destroy::destroy(Cx { clients: &clients, names: &names, stack: &stack }, &live, options).await?;
        println!("Destroyed.");
        Ok(0)
    }

    pub async fn pipeline(args: super::PipelineArgs) -> anyhow::Result<u8> {
        match args.command {
            super::PipelineCommand::Run(args) => {
                let (stack, clients) = connect(&args.aws).await?;
                let build_minutes = stack.pipeline.as_ref().map_or(60, |pipeline| u64::from(pipeline.timeout_minutes));
                let minutes = args.timeout_minutes.unwrap_or(build_minutes + 15);
                super::delivery::run(&clients, &stack, Duration::from_secs(minutes * 60)).await?;
            }
            super::PipelineCommand::Status(args) => {
                let (stack, clients) = connect(&args.aws).await?;
                print!("{}", super::delivery::status(&clients, &stack, 10).await?);
            }
        }
        Ok(0)
    }

    pub async fn ingress_endpoint(args: &AwsArgs, service: &str) -> anyhow::Result<super::IngressEndpoint> {
        let (stack, clients) = connect(args).await?;
        let file = args.stack.display();
        let Some(spec) = stack.services.iter().find(|candidate| candidate.name == service) else {
            bail!("{file} has no service {service:?}");
        };
        if spec.ingress.is_none() {
            bail!(
                "service {service:?} has no [service.ingress] table in {file}: only Cloud Map reaches it, inside the VPC"
            );
        }
        let name = Names::new(&stack.app).load_balancer(service);
        let Some(balancer) = clients.elb.load_balancer(&name).await? else {
            bail!("load balancer {name} of service {service:?} does not exist yet: `provision apply` makes it");
        };
        let resource = format!("listeners of load balancer {name}");
        let listener = clients.elb.listener_on(&balancer.arn, super::kinds::ingress::HTTPS_PORT, &resource).await?;
        let certificate = listener.map(|listener| listener.certificate_arn).filter(|arn| !arn.is_empty());
        let server_name = match certificate {
            Some(arn) => clients.acm.domain_name(&arn).await?,
            None => None,
        };
        Ok(super::IngressEndpoint {
            url: format!("https://{}:{}", balancer.dns_name, super::kinds::ingress::HTTPS_PORT),
            server_name,
        })
    }

    /// Asks on the terminal; refuses to guess when there is none.
    fn confirm(question: &str) -> anyhow::Result<()> {
        if !std::io::stdin().is_terminal() {
            bail!("not on a terminal, so nothing to confirm with: pass --yes to go ahead without the prompt");
        }
        print!("\n{question} Only 'yes' goes ahead: ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            bail!("cancelled: nothing was changed");
        }
        Ok(())
    }
}
