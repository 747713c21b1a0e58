//! `provision call --ingress SERVICE`: where a service's load balancer
//! answers (its DNS name) and the name its certificate is for, so that the
//! call verifies the server as a client outside the VPC would.

use super::AwsArgs;

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
    return find(args, service).await;
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
async fn find(args: &AwsArgs, service: &str) -> anyhow::Result<IngressEndpoint> {
    use anyhow::bail;

    use crate::{engine::names::Names, kinds::ingress::HTTPS_PORT};

    let (stack, clients) = super::connect(args).await?;
    let file = args.stack.display();
    let Some(spec) = stack.services.iter().find(|candidate| candidate.name == service) else {
        bail!("{file} has no service {service:?}");
    };
    if spec.ingress.is_none() {
        bail!(
            "service {service:?} has no [service.ingress] table in {file}: only Cloud Map reaches it, inside the VPC"
        );
    }
    let name = Names::of(&stack).load_balancer(service);
    let Some(balancer) = clients.elb.load_balancer(&name).await? else {
        bail!("load balancer {name} of service {service:?} does not exist yet: `provision apply` makes it");
    };
    let resource = format!("listeners of load balancer {name}");
    let listener = clients.elb.listener_on(&balancer.arn, HTTPS_PORT, &resource).await?;
    let certificate = listener.map(|listener| listener.certificate_arn).filter(|arn| !arn.is_empty());
    let server_name = match certificate {
        Some(arn) => clients.acm.domain_name(&arn).await?,
        None => None,
    };
    Ok(IngressEndpoint { url: format!("https://{}:{HTTPS_PORT}", balancer.dns_name), server_name })
}
