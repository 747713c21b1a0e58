//! `provision image`: one service's image built without Docker (its
//! release binary added as one layer to the stack's base image) and pushed
//! to any OCI registry; prints the image by digest. What `ko build` is to
//! Go: no Dockerfile, no daemon, the same digest for the same binary.

use std::path::PathBuf;

use clap::Args;

/// `provision image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The service (a `[[service]]` of the stack file): its binary, port
    /// and architecture.
    pub service: String,
    /// Where its release binary is (e.g. target/release).
    #[arg(long, value_name = "DIR")]
    pub binaries: PathBuf,
    /// Where to push: REGISTRY/REPOSITORY:TAG (e.g. ghcr.io/org/game-server:v1).
    #[arg(long, value_name = "REF")]
    pub push: String,
    /// The base image; default the stack's `[aws] base_image`.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// A registry (HOST:PORT) spoken to over plain HTTP instead of HTTPS, for
    /// a registry on loopback; repeat for several.
    #[arg(long, value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
    /// The stack file.
    #[arg(long, env = "PROVISION_STACK", default_value = "stack.toml")]
    pub stack: PathBuf,
}

/// Builds and pushes the image; prints `REF@sha256:...` on stdout.
#[cfg(feature = "aws")]
pub async fn run(args: ImageArgs) -> anyhow::Result<u8> {
    use anyhow::Context as _;

    use crate::images::{
        base::BlobCache,
        build::{base_for, build},
        registry::Registry,
    };

    let stack = stack_spec::load(&args.stack)?;
    let service = stack.services.iter().find(|service| service.name == args.service).with_context(|| {
        let known: Vec<&str> = stack.services.iter().map(|service| service.name.as_str()).collect();
        format!("{}: no service {:?} (services: {})", args.stack.display(), args.service, known.join(", "))
    })?;
    let target: oci_client::Reference =
        args.push.parse().with_context(|| format!("--push {:?} is not an image reference", args.push))?;
    crate::images::check_binaries(&args.binaries, &[service])?;
    let registry = Registry::new(&args.insecure_registry);
    let cache = BlobCache::new(BlobCache::default_dir());
    let base_reference = args.base.as_deref().unwrap_or(&stack.aws.base_image);
    let base = base_for(&registry, &cache, base_reference, service).await?;
    let layers = match base.layers.len() {
        1 => "1 layer".to_owned(),
        count => format!("{count} layers"),
    };
    eprintln!("base {} ({layers})", base.reference);
    let image = build(&args.binaries, &base, service, &cache)?;
    let pushed = registry.push(&target, &image, &cache).await?;
    eprintln!("{}: {pushed}", service.name);
    provision_cli::say!("{}@{}", args.push, image.digest);
    Ok(0)
}
