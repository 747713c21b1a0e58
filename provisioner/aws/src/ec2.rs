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
    error::{AwsError, Failure},
    signed::{Request, SignedClient},
};

/// The API version every call names.
const VERSION: &str = "2016-11-15";

/// An EC2 client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct Ec2 {
    client: SignedClient,
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
/// (with an optional description) and CIDR ranges.
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
        Ok(Self { client: SignedClient::new(config, region, "ec2", "ec2")? })
    }

    /// `ec2:DescribeVpcs` with `filters` or `vpc_ids`: the VPCs' ids.
    pub async fn describe_vpcs(
        &self,
        filters: &[Filter<'_>],
        vpc_ids: &[&str],
        resource: &str,
    ) -> Result<Vec<String>, AwsError> {
        let mut params = filter_params(filters);
        params.extend(numbered("VpcId", vpc_ids.iter().map(|id| (*id).to_owned())));
        let pages = self.pages("DescribeVpcs", params, resource).await?;
        Ok(pages.iter().flat_map(|page| page.items("vpcSet")).filter_map(|vpc| vpc.text("vpcId")).collect())
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

    /// One call, retried with backoff while the failure is transient.
    async fn call(&self, action: &str, params: &[(String, String)], resource: &str) -> Result<Element, AwsError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", action)
            .append_pair("Version", VERSION)
            .extend_pairs(params)
            .finish();
        let request =
            Request { content_type: "application/x-www-form-urlencoded; charset=utf-8", headers: &[], body: &body };
        self.client.send(&request, &format!("ec2:{action}"), resource, answer).await
    }
}

/// An answer's XML, or the error in it.
fn answer(status: u16, text: &str) -> Result<Element, Failure> {
    let document = Element::parse(text).map_err(|error| {
        Failure::Transport(format!("HTTP {status} with an answer that is not XML ({error}): {text:.200}"))
    })?;
    if (200..300).contains(&status) {
        return Ok(document);
    }
    // <Response><Errors><Error><Code>..</Code><Message>..</Message>
    let error = document.child("Errors").and_then(|errors| errors.child("Error"));
    Err(Failure::Service {
        status,
        code: error.and_then(|error| error.text("Code")),
        message: error.and_then(|error| error.text("Message")).unwrap_or_else(|| format!("HTTP {status}")),
    })
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

/// `PREFIX.1`, `PREFIX.2`, ...
fn numbered(prefix: &str, values: impl Iterator<Item = String>) -> Vec<(String, String)> {
    values.enumerate().map(|(index, value)| (format!("{prefix}.{}", index + 1), value)).collect()
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
        for (range, cidr) in rule.cidrs.iter().enumerate() {
            params.push((format!("{prefix}.IpRanges.{}.CidrIp", range + 1), cidr.clone()));
        }
    }
    params
}

/// An XML element of an answer: its local name, its text, its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

impl Element {
    /// Parses a whole answer into its root element.
    fn parse(text: &str) -> Result<Self, String> {
        let mut stack: Vec<Element> = vec![Element::default()];
        for token in xmlparser::Tokenizer::from(text) {
            match token.map_err(|error| error.to_string())? {
                xmlparser::Token::ElementStart { local, .. } => {
                    stack.push(Element { name: local.as_str().to_owned(), ..Element::default() });
                }
                xmlparser::Token::ElementEnd { end: xmlparser::ElementEnd::Open, .. } => {}
                xmlparser::Token::ElementEnd { .. } => {
                    let done = stack.pop().filter(|_| !stack.is_empty()).ok_or("unbalanced tags")?;
                    stack.last_mut().ok_or("unbalanced tags")?.children.push(done);
                }
                xmlparser::Token::Text { text } => {
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&unescape(text.as_str()));
                    }
                }
                xmlparser::Token::Cdata { text, .. } => {
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(text.as_str());
                    }
                }
                _ => {}
            }
        }
        let mut document = stack.pop().filter(|_| stack.is_empty()).ok_or("unclosed tags")?;
        if document.children.len() != 1 {
            return Err("no single root element".into());
        }
        Ok(document.children.remove(0))
    }

    /// The first child called `name`.
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// The trimmed text of the child called `name`, if it has any.
    fn text(&self, name: &str) -> Option<String> {
        self.child(name).map(|child| child.text.trim().to_owned()).filter(|text| !text.is_empty())
    }

    /// The `<item>`s of the list called `name`.
    fn items(&self, name: &str) -> Vec<&Element> {
        self.child(name)
            .map(|list| list.children.iter().filter(|item| item.name == "item").collect())
            .unwrap_or_default()
    }
}

/// XML's five named entities and numeric character references.
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(character) => {
                out.push(character);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUPS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeSecurityGroupsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-1</requestId>
  <securityGroupInfo>
    <item>
      <groupId>sg-1</groupId>
      <groupName>shop-tasks</groupName>
      <ipPermissions>
        <item>
          <ipProtocol>tcp</ipProtocol><fromPort>5000</fromPort><toPort>5000</toPort>
          <groups><item><groupId>sg-1</groupId><description>tasks &amp; more</description></item></groups>
          <ipRanges><item><cidrIp>10.0.0.0/8</cidrIp></item></ipRanges>
        </item>
      </ipPermissions>
      <tagSet><item><key>app</key><value>shop</value></item><item><key>empty</key><value/></item></tagSet>
    </item>
  </securityGroupInfo>
  <nextToken>page-2</nextToken>
</DescribeSecurityGroupsResponse>"#;

    #[test]
    fn an_answer_parses_into_items_with_text_entities_and_empty_values() {
        let root = Element::parse(GROUPS).unwrap();
        assert_eq!(root.name, "DescribeSecurityGroupsResponse");
        assert_eq!(root.text("nextToken").as_deref(), Some("page-2"));
        let groups = root.items("securityGroupInfo");
        assert_eq!(groups.len(), 1);
        let permission = groups[0].items("ipPermissions")[0];
        assert_eq!(permission.text("fromPort").as_deref(), Some("5000"));
        let pair = permission.items("groups")[0];
        assert_eq!(pair.text("description").as_deref(), Some("tasks & more"));
        let tags = groups[0].items("tagSet");
        assert_eq!(tags[1].text("value"), None);
    }

    #[test]
    fn errors_and_garbage_are_told_apart() {
        let error = Element::parse(
            "<Response><Errors><Error><Code>InvalidGroup.NotFound</Code><Message>no &#x27;sg-9&#39;</Message>\
             </Error></Errors><RequestID>x</RequestID></Response>",
        )
        .unwrap();
        let detail = error.child("Errors").and_then(|errors| errors.child("Error")).unwrap();
        assert_eq!(detail.text("Code").as_deref(), Some("InvalidGroup.NotFound"));
        assert_eq!(detail.text("Message").as_deref(), Some("no 'sg-9'"));
        assert!(Element::parse("<a><b></a>").is_err());
        assert!(Element::parse("not xml at all").is_err());
    }

    #[test]
    fn rules_become_numbered_parameters() {
        let mut rule = Permission::tcp(6379);
        rule.groups.push(("sg-2".into(), Some("the app's tasks".into())));
        rule.cidrs.push("10.0.0.0/16".into());
        let params: BTreeMap<String, String> = permission_params(&[Permission::tcp(5000), rule]).into_iter().collect();
        assert_eq!(params["IpPermissions.1.FromPort"], "5000");
        assert_eq!(params["IpPermissions.2.IpProtocol"], "tcp");
        assert_eq!(params["IpPermissions.2.Groups.1.GroupId"], "sg-2");
        assert_eq!(params["IpPermissions.2.Groups.1.Description"], "the app's tasks");
        assert_eq!(params["IpPermissions.2.IpRanges.1.CidrIp"], "10.0.0.0/16");
        let filters: BTreeMap<String, String> =
            filter_params(&[Filter("vpc-id", "vpc-1"), Filter("group-name", "x")]).into_iter().collect();
        assert_eq!(filters["Filter.2.Name"], "group-name");
        assert_eq!(filters["Filter.2.Value.1"], "x");
    }
}
