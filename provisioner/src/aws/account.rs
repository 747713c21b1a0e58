//! What only the account can tell, read before any kind: who the
//! credentials are, which VPC and subnets the stack's words name. Then every
//! kind is read, layer by layer (see [`super::graph`]).

use std::collections::BTreeSet;

use anyhow::bail;
use aws_sdk_ec2::types::Filter;

use super::{
    error::{classify, explain},
    graph,
    names::Names,
    resource::Cx,
    sdk::Clients,
    state::Live,
};
use crate::spec::{Stack, aws::Subnets};

/// Reads the account for `stack`: its facts, then every kind.
pub async fn read(clients: &Clients, stack: &Stack) -> anyhow::Result<Live> {
    let names = Names::new(&stack.app);
    let account = clients.account().await?;
    let vpc_id = find_vpc(clients, &stack.aws.vpc).await?;
    let subnets = find_subnets(clients, &vpc_id, &stack.aws.subnets).await?;
    let live = Live::new(account, clients.region.clone(), vpc_id, subnets);
    graph::read(Cx { clients, names: &names, stack }, live).await
}

/// The VPC's id: `default` is the account's default VPC in the region.
pub async fn find_vpc(clients: &Clients, vpc: &str) -> anyhow::Result<String> {
    let request = clients.ec2.describe_vpcs();
    let request = if vpc == "default" {
        request.filters(Filter::builder().name("is-default").values("true").build())
    } else {
        request.vpc_ids(vpc)
    };
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(error) => {
            let error = classify(error, "ec2:DescribeVpcs", &format!("VPC {vpc}"));
            if error.is_not_found() {
                bail!("VPC {vpc} does not exist in region {}: check [aws] vpc in the stack file", clients.region);
            }
            return Err(error.into());
        }
    };
    match answer.vpcs().first().and_then(|found| found.vpc_id()) {
        Some(id) => Ok(id.to_owned()),
        None if vpc == "default" => {
            bail!("region {} has no default VPC: set [aws] vpc to a vpc-... id in the stack file", clients.region)
        }
        None => bail!("VPC {vpc} does not exist in region {}: check [aws] vpc in the stack file", clients.region),
    }
}

/// The subnets tasks run in.
pub async fn find_subnets(clients: &Clients, vpc_id: &str, subnets: &Subnets) -> anyhow::Result<BTreeSet<String>> {
    let answer = clients
        .ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .send()
        .await
        .map_err(|error| explain(error, "ec2:DescribeSubnets", &format!("subnets of {vpc_id}")))?;
    let all = answer.subnets();
    let chosen: BTreeSet<String> = match subnets {
        Subnets::Ids(ids) => {
            for id in ids {
                if !all.iter().any(|subnet| subnet.subnet_id() == Some(id)) {
                    bail!("subnet {id} is not in VPC {vpc_id}: check [aws] subnets in the stack file");
                }
            }
            ids.iter().cloned().collect()
        }
        Subnets::Default => all
            .iter()
            .filter(|subnet| subnet.default_for_az() == Some(true))
            .filter_map(|subnet| subnet.subnet_id().map(str::to_owned))
            .collect(),
        Subnets::Private => {
            let tables = clients
                .ec2
                .describe_route_tables()
                .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
                .send()
                .await
                .map_err(|error| explain(error, "ec2:DescribeRouteTables", &format!("route tables of {vpc_id}")))?;
            let public = |table: &aws_sdk_ec2::types::RouteTable| {
                table.routes().iter().any(|route| route.gateway_id().is_some_and(|gateway| gateway.starts_with("igw-")))
            };
            let main_is_public = tables
                .route_tables()
                .iter()
                .any(|table| table.associations().iter().any(|a| a.main() == Some(true)) && public(table));
            all.iter()
                .filter_map(|subnet| subnet.subnet_id())
                .filter(|id| {
                    let explicit = tables.route_tables().iter().find(|table| {
                        table.associations().iter().any(|association| association.subnet_id() == Some(id))
                    });
                    match explicit {
                        Some(table) => !public(table),
                        None => !main_is_public,
                    }
                })
                .map(str::to_owned)
                .collect()
        }
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
