//! A service's Application Load Balancer: its scheme, subnets (the VPC's
//! public ones for an internet-facing one, its private ones for an internal
//! one, unless the stack names them), its security group and idle timeout.
//! Plan notes the DNS name clients call once it exists.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;
use stack_spec::{
    Stack,
    ingress::{IngressSubnets, Scheme},
};

use super::{HTTPS_PORT, security_group::IngressSecurityGroup};
use crate::{
    clients::{elbv2::NewLoadBalancer, error::unless_unused},
    engine::{
        limits::Problem,
        names::{Names, Tags},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output, render},
        state::Live,
        status::{IngressStatus, StatusReport},
    },
};

/// ELBv2's limit on the names of load balancers and target groups.
const NAME_LIMIT: usize = 32;
/// The attribute holding the idle timeout, and ALB's default.
const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";
const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// The attribute that drops requests' headers HTTP does not allow (off by
/// default on ALB): a header smuggled past the balancer never reaches a task.
const DROP_INVALID_HEADERS: &str = "routing.http.drop_invalid_header_fields.enabled";

/// A service's load balancer.
pub struct LoadBalancer;

/// A load balancer as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerSpec {
    pub name: String,
    pub service: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    pub subnets: BTreeSet<String>,
    /// Its security group, by name.
    pub security_group: String,
    pub idle_timeout_secs: u64,
    /// Whether headers HTTP does not allow are dropped.
    pub drops_invalid_headers: bool,
    /// The name clients call, once it exists; not compared.
    pub dns_name: Option<String>,
    /// `active`, `provisioning`...: live only, not compared.
    pub state: String,
}

impl Kind for LoadBalancer {
    const LABEL: &'static str = "load balancer";
    const KEY: &'static str = "load-balancer";
    const RETIRED_WITH_THE_STACK: bool = true;
    type Spec = LoadBalancerSpec;

    /// ELBv2's name rules, checked before any call.
    fn check(stack: &Stack) -> Vec<Problem> {
        let names = Names::of(stack);
        super::services(stack)
            .filter_map(|(service, _)| {
                let name = names.load_balancer(&service.name);
                (name.len() > NAME_LIMIT || name.starts_with("internal-")).then(|| Problem {
                    line: service.line,
                    message: format!(
                        "service {:?}: its load balancer and target group would be named {name:?}, which ELBv2 \
                         refuses (at most {NAME_LIMIT} characters, not starting with \"internal-\"): shorten the \
                         app or service name",
                        service.name
                    ),
                })
            })
            .collect()
    }

    fn desired(stack: &Stack, live: &Live) -> Vec<LoadBalancerSpec> {
        let names = Names::of(stack);
        super::services(stack)
            .map(|(service, ingress)| {
                let name = names.load_balancer(&service.name);
                let subnets = match &ingress.subnets {
                    IngressSubnets::Ids(ids) => ids.iter().cloned().collect(),
                    IngressSubnets::ForScheme if ingress.scheme == Scheme::InternetFacing => {
                        live.public_subnets.clone()
                    }
                    IngressSubnets::ForScheme => live.private_subnets.clone(),
                };
                LoadBalancerSpec {
                    dns_name: live.get::<LoadBalancer>(&name).and_then(|found| found.spec.dns_name.clone()),
                    name,
                    service: service.name.clone(),
                    scheme: ingress.scheme.as_str().to_owned(),
                    subnets,
                    security_group: names.ingress_security_group(&service.name),
                    idle_timeout_secs: ingress.idle_timeout.as_secs(),
                    drops_invalid_headers: true,
                    state: String::new(),
                }
            })
            .collect()
    }

    fn name(spec: &LoadBalancerSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &LoadBalancerSpec) -> Fields {
        Fields::from([
            ("scheme", spec.scheme.clone()),
            ("subnets", render::join(&spec.subnets)),
            ("security_group", spec.security_group.clone()),
            ("idle_timeout", format!("{} s", spec.idle_timeout_secs)),
            ("drop_invalid_header_fields", render::on_off(spec.drops_invalid_headers)),
        ])
    }

    /// Every service's load balancer, whether or not it has an ingress
    /// table now (one left over is deleted).
    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<LoadBalancerSpec>>> {
        let elb = &cx.clients.elb;
        let used = cx.stack.services.iter().any(|service| service.ingress.is_some());
        let mut found = BTreeMap::new();
        for service in &cx.stack.services {
            let name = cx.names.load_balancer(&service.name);
            let Some(balancer) = unless_unused(elb.load_balancer(&name).await, used)? else { continue };
            let resource = format!("load balancer {name}");
            let tags = elb.tags(&balancer.arn, &resource).await?;
            let attributes = elb.attributes("LoadBalancer", &balancer.arn, &resource).await?;
            let group_name = cx.names.ingress_security_group(&service.name);
            let own_group = live.get::<IngressSecurityGroup>(&group_name).map(|group| group.id.as_str());
            let groups: Vec<String> = balancer
                .security_groups
                .iter()
                .map(|id| if Some(id.as_str()) == own_group { group_name.clone() } else { id.clone() })
                .collect();
            let spec = LoadBalancerSpec {
                name: name.clone(),
                service: service.name.clone(),
                scheme: balancer.scheme.clone(),
                subnets: balancer.subnets.iter().cloned().collect(),
                security_group: groups.join(","),
                idle_timeout_secs: attributes
                    .get(IDLE_TIMEOUT)
                    .and_then(|secs| secs.parse().ok())
                    .unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS),
                drops_invalid_headers: attributes.get(DROP_INVALID_HEADERS).is_some_and(|value| value == "true"),
                dns_name: Some(balancer.dns_name.clone()),
                state: balancer.state.clone(),
            };
            let owned = cx.names.owns(tags.iter().map(|(key, value)| (key.as_str(), value.as_str())));
            let tags = Some(tags);
            found.insert(name, Found { id: balancer.arn.clone(), arn: balancer.arn, owned, tags, spec });
        }
        Ok(found)
    }

    /// A scheme is fixed at creation; fewer than two subnets is refused by
    /// ELB, so say where they come from.
    fn precondition(
        want: &LoadBalancerSpec,
        have: Option<&Found<LoadBalancerSpec>>,
        _live: &Live,
    ) -> anyhow::Result<()> {
        if let Some(found) = have.filter(|found| found.owned && found.spec.scheme != want.scheme) {
            bail!(
                "load balancer {} is {}, the stack now says {}: ELB cannot change a scheme in place; remove the \
                 [service.ingress] table of {}, apply (which deletes it), then add the table back and apply",
                want.name,
                found.spec.scheme,
                want.scheme,
                want.service
            );
        }
        if want.subnets.len() < 2 {
            bail!(
                "service {:?}: a load balancer needs subnets in at least two availability zones, and the VPC has {} \
                 {} subnet(s) ({}): name them in ingress.subnets",
                want.service,
                want.subnets.len(),
                if want.scheme == "internal" { "private" } else { "public (routed to an internet gateway)" },
                render::join(&want.subnets)
            );
        }
        Ok(())
    }

    fn note(want: &LoadBalancerSpec) -> Option<String> {
        Some(match &want.dns_name {
            Some(dns) => format!(
                "{}: clients outside the VPC call {dns}:{HTTPS_PORT} over TLS (`provision call --ingress {}`), with \
                 a certificate for that name or a DNS record of yours pointing at it",
                want.service, want.service
            ),
            None => format!("{}: its load balancer's DNS name is known once it is created", want.service),
        })
    }

    /// Creates the load balancer or brings its security group, subnets and
    /// idle timeout to the stack's; passes on its ARN.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &LoadBalancerSpec,
        have: Option<&Found<LoadBalancerSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        let elb = &cx.cx.clients.elb;
        let resource = format!("load balancer {}", spec.name);
        let group = cx.made.id::<IngressSecurityGroup>(&spec.security_group);
        let subnets: Vec<String> = spec.subnets.iter().cloned().collect();
        let arn = match have {
            Some(found) if *action == Action::Unchanged => return Ok(Output::id(&found.id)),
            Some(found) => {
                if found.spec.security_group != spec.security_group {
                    elb.set_security_groups(&found.id, std::slice::from_ref(&group), &resource).await?;
                }
                if found.spec.subnets != spec.subnets {
                    elb.set_subnets(&found.id, &subnets, &resource).await?;
                }
                found.id.clone()
            }
            None => {
                let made = elb
                    .create_load_balancer(&NewLoadBalancer {
                        name: &spec.name,
                        scheme: &spec.scheme,
                        subnets: &subnets,
                        security_groups: std::slice::from_ref(&group),
                        tags: &cx.cx.names.tags(),
                    })
                    .await?;
                made.arn
            }
        };
        if have.is_none_or(|found| {
            found.spec.idle_timeout_secs != spec.idle_timeout_secs
                || found.spec.drops_invalid_headers != spec.drops_invalid_headers
        }) {
            let attributes = [
                (IDLE_TIMEOUT, spec.idle_timeout_secs.to_string()),
                (DROP_INVALID_HEADERS, spec.drops_invalid_headers.to_string()),
            ];
            elb.set_attributes("LoadBalancer", &arn, &attributes, &resource).await?;
        }
        Self::done(if have.is_some() { "updated" } else { "created" }, &spec.name);
        Ok(Output::id(arn))
    }

    /// Each load balancer's DNS name and state.
    async fn status(_cx: Cx<'_>, live: &Live, report: &mut StatusReport) -> anyhow::Result<()> {
        for (_, found) in live.all::<LoadBalancer>() {
            let spec = &found.spec;
            report.ingress.push(IngressStatus {
                service: spec.service.clone(),
                dns_name: spec.dns_name.clone(),
                port: HTTPS_PORT,
                scheme: spec.scheme.clone(),
                state: spec.state.clone(),
            });
        }
        Ok(())
    }

    fn teardown_line(found: &Found<LoadBalancerSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("load balancer {} ({})", found.spec.name, found.spec.dns_name.as_deref().unwrap_or("-")))
    }

    async fn retag(cx: Cx<'_>, found: &Found<LoadBalancerSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        Ok(cx.clients.elb.retag(&found.arn, set, remove, &format!("load balancer {}", found.arn)).await?)
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<LoadBalancerSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            let resource = format!("load balancer {}", found.spec.name);
            cx.clients.elb.delete_load_balancer(&found.id, &resource).await?;
            crate::engine::journal::done("deleted", "load balancer", &found.spec.name);
        }
        Ok(())
    }
}
