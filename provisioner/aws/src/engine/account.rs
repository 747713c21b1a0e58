//! What only the account can tell, read before any kind: who the
//! credentials are, which VPC and subnets the stack's words name. Then every
//! kind is read, layer by layer (see [`crate::engine::graph`]).

use std::collections::BTreeSet;

use anyhow::bail;

use crate::{
    clients::{
        Clients,
        ec2::{Filter, RouteTable, Vpc},
        iam::managed_policy,
    },
    engine::{graph::Graph, names::Names, resource::Cx, state::Live},
};
use stack_spec::{Stack, aws::Subnets};

/// Reads the account for `stack`: its facts, then every kind.
pub async fn read(graph: Graph, clients: &Clients, stack: &Stack) -> anyhow::Result<Live> {
    let names = Names::of(stack);
    let account = clients.account().await?;
    let vpc = find_vpc(clients, &stack.aws.vpc).await?;
    let subnets = find_subnets(clients, &vpc.id, &stack.aws.subnets).await?;
    let mut live = Live::new(account, clients.region.clone(), &vpc, subnets);
    if stack.services.iter().any(|service| service.ingress.is_some()) {
        (live.public_subnets, live.private_subnets) = public_and_private(clients, &vpc.id).await?;
    }
    for arn in stack.services.iter().flat_map(|service| &service.aws.task_role_policies) {
        if !live.task_role_policies.contains_key(arn) {
            let Some(policy) = managed_policy(&clients.iam, arn).await? else {
                bail!("IAM policy {arn} does not exist: check aws.task_role_policies in the stack file");
            };
            live.task_role_policies.insert(arn.clone(), policy.document);
        }
    }
    graph.read(Cx { clients, names: &names, stack }, live).await
}

/// The VPC: `default` is the account's default VPC in the region.
pub async fn find_vpc(clients: &Clients, vpc: &str) -> anyhow::Result<Vpc> {
    let resource = format!("VPC {vpc}");
    let answer = if vpc == "default" {
        clients.ec2.describe_vpcs(&[Filter("is-default", "true")], &[], &resource).await
    } else {
        clients.ec2.describe_vpcs(&[], &[vpc], &resource).await
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            if error.is_not_found() {
                bail!("VPC {vpc} does not exist in region {}: check [aws] vpc in the stack file", clients.region);
            }
            return Err(error.into());
        }
    };
    match answer.into_iter().next() {
        Some(found) => Ok(found),
        None if vpc == "default" => {
            bail!("region {} has no default VPC: set [aws] vpc to a vpc-... id in the stack file", clients.region)
        }
        None => bail!("VPC {vpc} does not exist in region {}: check [aws] vpc in the stack file", clients.region),
    }
}

/// The subnets tasks run in.
pub async fn find_subnets(clients: &Clients, vpc_id: &str, subnets: &Subnets) -> anyhow::Result<BTreeSet<String>> {
    let all = clients.ec2.describe_subnets(&[Filter("vpc-id", vpc_id)], &format!("subnets of {vpc_id}")).await?;
    let chosen: BTreeSet<String> = match subnets {
        Subnets::Ids(ids) => {
            for id in ids {
                if !all.iter().any(|subnet| &subnet.id == id) {
                    bail!("subnet {id} is not in VPC {vpc_id}: check [aws] subnets in the stack file");
                }
            }
            ids.iter().cloned().collect()
        }
        Subnets::Default => all.iter().filter(|subnet| subnet.default_for_az).map(|subnet| subnet.id.clone()).collect(),
        Subnets::Private => public_and_private(clients, vpc_id).await?.1,
    };
    if chosen.is_empty() {
        let which = match subnets {
            Subnets::Private => "private subnets (without a route to an internet gateway)",
            Subnets::Default => "default subnets",
            Subnets::Ids(_) => "subnets",
        };
        bail!(
            "VPC {vpc_id} has no {which}: set [aws] subnets to \"default\", \"private\" or a list of subnet ids \
             in the stack file"
        );
    }
    Ok(chosen)
}

/// The VPC's subnets split by whether their route table (or the main one)
/// sends traffic to an internet gateway: (public, private).
pub async fn public_and_private(
    clients: &Clients,
    vpc_id: &str,
) -> anyhow::Result<(BTreeSet<String>, BTreeSet<String>)> {
    let all = clients.ec2.describe_subnets(&[Filter("vpc-id", vpc_id)], &format!("subnets of {vpc_id}")).await?;
    let tables =
        clients.ec2.describe_route_tables(&[Filter("vpc-id", vpc_id)], &format!("route tables of {vpc_id}")).await?;
    let public = |table: &RouteTable| table.gateway_ids.iter().any(|gateway| gateway.starts_with("igw-"));
    let main_is_public = tables.iter().any(|table| table.main && public(table));
    Ok(all.iter().map(|subnet| subnet.id.clone()).partition(|id| {
        match tables.iter().find(|table| table.subnet_ids.contains(id)) {
            Some(table) => public(table),
            None => main_is_public,
        }
    }))
}
