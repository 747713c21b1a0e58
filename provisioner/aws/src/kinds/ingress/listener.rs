//! A load balancer's HTTPS listener on 443: the stack's ACM certificate, a
//! current TLS policy, every request forwarded to the service's target
//! group (an ALB carries gRPC only on HTTPS).

use std::collections::BTreeMap;

use stack_spec::Stack;

use super::{HTTPS_PORT, TLS_POLICY, load_balancer::LoadBalancer, target_group::TargetGroup};
use crate::{
    clients::elbv2::Listener as LiveListener,
    engine::{
        names::Names,
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
        state::Live,
    },
};

/// A load balancer's HTTPS listener.
pub struct Listener;

/// A listener as plan sees it; named after its load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The load balancer's name.
    pub name: String,
    pub service: String,
    pub certificate_arn: String,
    pub tls_policy: String,
    /// The target group it forwards to, by name.
    pub target_group: String,
}

impl Kind for Listener {
    const LABEL: &'static str = "listener";
    const KEY: &'static str = "listener";
    const RETIRED_WITH_THE_STACK: bool = true;
    type Spec = ListenerSpec;

    fn desired(stack: &Stack, _live: &Live) -> Vec<ListenerSpec> {
        let names = Names::of(stack);
        super::services(stack)
            .map(|(service, ingress)| ListenerSpec {
                name: names.load_balancer(&service.name),
                service: service.name.clone(),
                certificate_arn: ingress.certificate_arn.clone(),
                tls_policy: TLS_POLICY.to_owned(),
                target_group: names.load_balancer(&service.name),
            })
            .collect()
    }

    fn name(spec: &ListenerSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &ListenerSpec) -> Fields {
        Fields::from([
            ("protocol", format!("HTTPS:{HTTPS_PORT}")),
            ("certificate", spec.certificate_arn.clone()),
            ("tls_policy", spec.tls_policy.clone()),
            ("forward_to", spec.target_group.clone()),
        ])
    }

    /// The 443 listener of every load balancer read; it is the app's when
    /// its load balancer is.
    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<ListenerSpec>>> {
        let mut found = BTreeMap::new();
        for (name, balancer) in live.all::<LoadBalancer>() {
            let resource = format!("listeners of load balancer {name}");
            let Some(listener) = cx.clients.elb.listener_on(&balancer.id, HTTPS_PORT, &resource).await? else {
                continue;
            };
            let target_group = live
                .all::<TargetGroup>()
                .find(|(_, group)| group.id == listener.target_group_arn)
                .map_or_else(|| listener.target_group_arn.clone(), |(name, _)| name.clone());
            let spec = ListenerSpec {
                name: name.clone(),
                service: balancer.spec.service.clone(),
                certificate_arn: listener.certificate_arn.clone(),
                tls_policy: listener.ssl_policy.clone(),
                target_group: if listener.protocol == "HTTPS" { target_group } else { listener.protocol.clone() },
            };
            found.insert(
                name.clone(),
                Found { id: listener.arn.clone(), arn: listener.arn, owned: balancer.owned, tags: None, spec },
            );
        }
        Ok(found)
    }

    /// Creates the listener or brings it to the stack's certificate, policy
    /// and target group.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &ListenerSpec,
        have: Option<&Found<ListenerSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        if let (Some(found), Action::Unchanged) = (have, action) {
            return Ok(Output::id(&found.id));
        }
        let listener = LiveListener {
            arn: have.map(|found| found.id.clone()).unwrap_or_default(),
            port: HTTPS_PORT,
            protocol: "HTTPS".into(),
            ssl_policy: spec.tls_policy.clone(),
            certificate_arn: spec.certificate_arn.clone(),
            target_group_arn: cx.made.id::<TargetGroup>(&spec.target_group),
        };
        let balancer = cx.made.id::<LoadBalancer>(&spec.name);
        let resource = format!("listener {HTTPS_PORT} of load balancer {}", spec.name);
        let arn = cx.cx.clients.elb.put_listener(&balancer, &listener, &cx.cx.names.tags(), &resource).await?;
        Self::done(if have.is_some() { "updated" } else { "created" }, &spec.name);
        Ok(Output::id(arn))
    }

    fn teardown_line(found: &Found<ListenerSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("listener HTTPS:{HTTPS_PORT} of load balancer {}", found.spec.name))
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<ListenerSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            let resource = format!("listener {HTTPS_PORT} of load balancer {}", found.spec.name);
            cx.clients.elb.delete_listener(&found.id, &resource).await?;
            crate::engine::journal::done(
                "deleted",
                "listener",
                &format!("HTTPS:{HTTPS_PORT} of load balancer {}", found.spec.name),
            );
        }
        Ok(())
    }
}
