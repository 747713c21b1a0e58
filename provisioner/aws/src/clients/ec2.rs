//! The eight EC2 calls provision makes (VPCs, subnets, route tables and the
//! security groups), spoken directly in EC2's Query protocol: a form-encoded
//! POST signed with SigV4, an XML answer.
//!
//! Why not `aws-sdk-ec2`: it compiles the whole EC2 model, about 700
//! operations, and was the longest crate of the AWS build by far (293 s of
//! one core's time at opt-level 0, on the critical path of
//! `cargo build --release -p provisioner --features aws`), for eight calls.
//! This client keeps what the SDK gave those calls: the configured
//! credentials, region and `--endpoint-url`, rustls on ring, connect and
//! attempt timeouts, retries with backoff on throttling and transient
//! failures, pagination, and errors that name the call and the resource.

use std::collections::BTreeMap;

use super::{
    error::AwsError,
    query::{Element, QueryClient, numbered},
};

/// An EC2 client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct Ec2 {
    client: QueryClient,
}

/// A VPC: its id and its IPv4 range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    pub id: String,
    pub cidr: String,
}

/// A `Filter.N` of a Describe call: a name and the values it may take.
pub struct Filter<'a>(pub &'a str, pub &'a str);

/// A subnet: its id and whether it is its zone's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub default_for_az: bool,
}

/// A route table: whether it is the VPC's main one, the subnets associated
/// with it, and the gateways its routes go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub main: bool,
    pub subnet_ids: Vec<String>,
    pub gateway_ids: Vec<String>,
}

/// A security group: its id, tags and ingress rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub tags: BTreeMap<String, String>,
    pub ingress: Vec<Permission>,
}

/// One ingress permission: a protocol and port range, from source groups
/// (with an optional description) and CIDR ranges (IPv4 and IPv6 alike).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permission {
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub groups: Vec<(String, Option<String>)>,
    pub cidrs: Vec<String>,
}

impl Permission {
    /// TCP on one port.
    pub fn tcp(port: u16) -> Self {
        Self {
            protocol: "tcp".into(),
            from_port: Some(i32::from(port)),
            to_port: Some(i32::from(port)),
            ..Self::default()
        }
    }
}

impl Ec2 {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override.
    pub fn new(config: &aws_types::SdkConfig, region: &str) -> anyhow::Result<Self> {
        Ok(Self { client: QueryClient::new(config, region, "ec2", "2016-11-15")? })
    }

    /// `ec2:DescribeVpcs` with `filters` or `vpc_ids`.
    pub async fn describe_vpcs(
        &self,
        filters: &[Filter<'_>],
        vpc_ids: &[&str],
        resource: &str,
    ) -> Result<Vec<Vpc>, AwsError> {
        let mut params = filter_params(filters);
        params.extend(numbered("VpcId", vpc_ids.iter().map(|id| (*id).to_owned())));
        let pages = self.pages("DescribeVpcs", params, resource).await?;
        Ok(pages
            .iter()
            .flat_map(|page| page.items("vpcSet"))
            .filter_map(|vpc| Some(Vpc { id: vpc.text("vpcId")?, cidr: vpc.text("cidrBlock").unwrap_or_default() }))
            .collect())
    }

    /// `ec2:DescribeSubnets` with `filters`.
    pub async fn describe_subnets(&self, filters: &[Filter<'_>], resource: &str) -> Result<Vec<Subnet>, AwsError> {
        let pages = self.pages("DescribeSubnets", filter_params(filters), resource).await?;
        Ok(pages
            .iter()
            .flat_map(|page| page.items("subnetSet"))
            .filter_map(|subnet| {
                Some(Subnet {
                    id: subnet.text("subnetId")?,
                    default_for_az: subnet.text("defaultForAz").as_deref() == Some("true"),
                })
            })
            .collect())
    }

    /// `ec2:DescribeRouteTables` with `filters`.
    pub async fn describe_route_tables(
        &self,
        filters: &[Filter<'_>],
        resource: &str,
    ) -> Result<Vec<RouteTable>, AwsError> {
        let pages = self.pages("DescribeRouteTables", filter_params(filters), resource).await?;
        Ok(pages
            .iter()
            .flat_map(|page| page.items("routeTableSet"))
            .map(|table| {
                let associations = table.items("associationSet");
                RouteTable {
                    main: associations.iter().any(|association| association.text("main").as_deref() == Some("true")),
                    subnet_ids: associations.iter().filter_map(|association| association.text("subnetId")).collect(),
                    gateway_ids: table.items("routeSet").iter().filter_map(|route| route.text("gatewayId")).collect(),
                }
            })
            .collect())
    }

    /// `ec2:DescribeSecurityGroups` with `filters`.
    pub async fn describe_security_groups(
        &self,
        filters: &[Filter<'_>],
        resource: &str,
    ) -> Result<Vec<SecurityGroup>, AwsError> {
        let pages = self.pages("DescribeSecurityGroups", filter_params(filters), resource).await?;
        Ok(pages
            .iter()
            .flat_map(|page| page.items("securityGroupInfo"))
            .filter_map(|group| {
                Some(SecurityGroup {
                    id: group.text("groupId")?,
                    tags: group
                        .items("tagSet")
                        .iter()
                        .filter_map(|tag| Some((tag.text("key")?, tag.text("value").unwrap_or_default())))
                        .collect(),
                    ingress: group
                        .items("ipPermissions")
                        .iter()
                        .map(|permission| Permission {
                            protocol: permission.text("ipProtocol").unwrap_or_default(),
                            from_port: permission.text("fromPort").and_then(|port| port.parse().ok()),
                            to_port: permission.text("toPort").and_then(|port| port.parse().ok()),
                            groups: permission
                                .items("groups")
                                .iter()
                                .filter_map(|pair| Some((pair.text("groupId")?, pair.text("description"))))
                                .collect(),
                            cidrs: permission
                                .items("ipRanges")
                                .iter()
                                .filter_map(|range| range.text("cidrIp"))
                                .chain(permission.items("ipv6Ranges").iter().filter_map(|range| range.text("cidrIpv6")))
                                .collect(),
                        })
                        .collect(),
                })
            })
            .collect())
    }

    /// `ec2:CreateSecurityGroup`, tagged at creation; returns its id.
    pub async fn create_security_group(
        &self,
        name: &str,
        description: &str,
        vpc_id: &str,
        tags: &[(String, String)],
    ) -> Result<String, AwsError> {
        let mut params = vec![
            ("GroupName".to_owned(), name.to_owned()),
            ("GroupDescription".to_owned(), description.to_owned()),
            ("VpcId".to_owned(), vpc_id.to_owned()),
            ("TagSpecification.1.ResourceType".to_owned(), "security-group".to_owned()),
        ];
        for (index, (key, value)) in tags.iter().enumerate() {
            params.push((format!("TagSpecification.1.Tag.{}.Key", index + 1), key.clone()));
            params.push((format!("TagSpecification.1.Tag.{}.Value", index + 1), value.clone()));
        }
        let resource = format!("security group {name}");
        let answer = self.call("CreateSecurityGroup", &params, &resource).await?;
        answer.text("groupId").ok_or_else(|| AwsError {
            code: None,
            message: format!("ec2:CreateSecurityGroup on {resource}: the answer has no groupId"),
        })
    }

    /// `ec2:AuthorizeSecurityGroupIngress`.
    pub async fn authorize_ingress(
        &self,
        group_id: &str,
        rules: &[Permission],
        resource: &str,
    ) -> Result<(), AwsError> {
        let mut params = vec![("GroupId".to_owned(), group_id.to_owned())];
        params.extend(permission_params(rules));
        self.call("AuthorizeSecurityGroupIngress", &params, resource).await.map(drop)
    }

    /// `ec2:RevokeSecurityGroupIngress`.
    pub async fn revoke_ingress(&self, group_id: &str, rules: &[Permission], resource: &str) -> Result<(), AwsError> {
        let mut params = vec![("GroupId".to_owned(), group_id.to_owned())];
        params.extend(permission_params(rules));
        self.call("RevokeSecurityGroupIngress", &params, resource).await.map(drop)
    }

    /// `ec2:CreateTags` on one resource: sets `tags`, keeping the others.
    pub async fn create_tags(&self, resource_id: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
        let mut params = vec![("ResourceId.1".to_owned(), resource_id.to_owned())];
        for (index, (key, value)) in tags.iter().enumerate() {
            params.push((format!("Tag.{}.Key", index + 1), key.clone()));
            params.push((format!("Tag.{}.Value", index + 1), value.clone()));
        }
        self.call("CreateTags", &params, resource_id).await.map(drop)
    }

    /// `ec2:DeleteTags` on one resource: removes the tags with these keys,
    /// whatever their values.
    pub async fn delete_tags(&self, resource_id: &str, keys: &[String]) -> Result<(), AwsError> {
        let mut params = vec![("ResourceId.1".to_owned(), resource_id.to_owned())];
        params.extend(keys.iter().enumerate().map(|(index, key)| (format!("Tag.{}.Key", index + 1), key.clone())));
        self.call("DeleteTags", &params, resource_id).await.map(drop)
    }

    /// `ec2:DeleteSecurityGroup`.
    pub async fn delete_security_group(&self, group_id: &str) -> Result<(), AwsError> {
        self.call("DeleteSecurityGroup", &[("GroupId".to_owned(), group_id.to_owned())], group_id).await.map(drop)
    }

    /// Every page of a Describe call, following `nextToken`.
    async fn pages(
        &self,
        action: &str,
        params: Vec<(String, String)>,
        resource: &str,
    ) -> Result<Vec<Element>, AwsError> {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut page_params = params.clone();
            if let Some(token) = token.take() {
                page_params.push(("NextToken".to_owned(), token));
            }
            let page = self.call(action, &page_params, resource).await?;
            token = page.text("nextToken").filter(|token| !token.is_empty());
            pages.push(page);
            if token.is_none() {
                return Ok(pages);
            }
        }
    }

    async fn call(&self, action: &str, params: &[(String, String)], resource: &str) -> Result<Element, AwsError> {
        self.client.call(action, params, resource).await
    }
}

/// `Filter.N.Name` and `Filter.N.Value.1`.
fn filter_params(filters: &[Filter<'_>]) -> Vec<(String, String)> {
    filters
        .iter()
        .enumerate()
        .flat_map(|(index, Filter(name, value))| {
            [
                (format!("Filter.{}.Name", index + 1), (*name).to_owned()),
                (format!("Filter.{}.Value.1", index + 1), (*value).to_owned()),
            ]
        })
        .collect()
}

/// `IpPermissions.N.*` for the rules.
fn permission_params(rules: &[Permission]) -> Vec<(String, String)> {
    let mut params = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let prefix = format!("IpPermissions.{}", index + 1);
        params.push((format!("{prefix}.IpProtocol"), rule.protocol.clone()));
        if let Some(port) = rule.from_port {
            params.push((format!("{prefix}.FromPort"), port.to_string()));
        }
        if let Some(port) = rule.to_port {
            params.push((format!("{prefix}.ToPort"), port.to_string()));
        }
        for (pair, (group, description)) in rule.groups.iter().enumerate() {
            params.push((format!("{prefix}.Groups.{}.GroupId", pair + 1), group.clone()));
            if let Some(description) = description {
                params.push((format!("{prefix}.Groups.{}.Description", pair + 1), description.clone()));
            }
        }
        let (v6, v4): (Vec<&String>, Vec<&String>) = rule.cidrs.iter().partition(|cidr| cidr.contains(':'));
        for (range, cidr) in v4.into_iter().enumerate() {
            params.push((format!("{prefix}.IpRanges.{}.CidrIp", range + 1), cidr.clone()));
        }
        for (range, cidr) in v6.into_iter().enumerate() {
            params.push((format!("{prefix}.Ipv6Ranges.{}.CidrIpv6", range + 1), cidr.clone()));
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_become_numbered_parameters() {
        let mut rule = Permission::tcp(6379);
        rule.groups.push(("sg-2".into(), Some("the app's tasks".into())));
        rule.cidrs.push("10.0.0.0/16".into());
        rule.cidrs.push("::/0".into());
        let params: BTreeMap<String, String> = permission_params(&[Permission::tcp(5000), rule]).into_iter().collect();
        assert_eq!(params["IpPermissions.1.FromPort"], "5000");
        assert_eq!(params["IpPermissions.2.IpProtocol"], "tcp");
        assert_eq!(params["IpPermissions.2.Groups.1.GroupId"], "sg-2");
        assert_eq!(params["IpPermissions.2.Groups.1.Description"], "the app's tasks");
        assert_eq!(params["IpPermissions.2.IpRanges.1.CidrIp"], "10.0.0.0/16");
        assert_eq!(params["IpPermissions.2.Ipv6Ranges.1.CidrIpv6"], "::/0");
        let filters: BTreeMap<String, String> =
            filter_params(&[Filter("vpc-id", "vpc-1"), Filter("group-name", "x")]).into_iter().collect();
        assert_eq!(filters["Filter.2.Name"], "group-name");
        assert_eq!(filters["Filter.2.Value.1"], "x");
    }
}
