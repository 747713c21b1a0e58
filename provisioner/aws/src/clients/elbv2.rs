//! The Elastic Load Balancing (v2) calls behind a service's ingress: the
//! load balancer, its target group and HTTPS listener, their attributes and
//! tags, and the targets' health. Spoken in the Query protocol over
//! [`super::query`], as EC2 is: about twenty calls did not justify another
//! SDK crate in a two-core build.

use std::collections::BTreeMap;

use super::{
    error::{AwsError, unless_gone},
    query::{Element, QueryClient, numbered},
};

/// An ELBv2 client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct Elbv2 {
    client: QueryClient,
}

/// A load balancer as described.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    /// The name clients call (`NAME-123.REGION.elb.amazonaws.com`).
    pub dns_name: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// `provisioning`, `active`, `failed`...
    pub state: String,
}

/// What a load balancer is created with.
pub struct NewLoadBalancer<'a> {
    pub name: &'a str,
    pub scheme: &'a str,
    pub subnets: &'a [String],
    pub security_groups: &'a [String],
    pub tags: &'a [(String, String)],
}

/// A target group's settings, as created and described.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    /// Empty until it is made.
    pub arn: String,
    pub name: String,
    /// `HTTP` (to the target).
    pub protocol: String,
    /// `GRPC`.
    pub protocol_version: String,
    pub port: u16,
    pub vpc_id: String,
    /// `ip` for Fargate tasks.
    pub target_type: String,
    pub health_check_path: String,
    /// The gRPC status codes a health check must answer with (`0`).
    pub grpc_codes: String,
    pub interval_secs: u32,
    pub timeout_secs: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// The load balancers forwarding to it.
    pub load_balancers: Vec<String>,
}

/// A listener as described.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listener {
    /// Empty until it is made.
    pub arn: String,
    pub port: u16,
    pub protocol: String,
    pub ssl_policy: String,
    pub certificate_arn: String,
    /// Where its default action forwards.
    pub target_group_arn: String,
}

/// One target's health in a target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    /// The task's IP address.
    pub id: String,
    pub port: u16,
    /// `initial`, `healthy`, `unhealthy`, `draining`, `unused`...
    pub state: String,
    /// Why, when it is not healthy.
    pub reason: Option<String>,
}

impl Elbv2 {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override.
    pub fn new(config: &aws_types::SdkConfig, region: &str) -> anyhow::Result<Self> {
        Ok(Self { client: QueryClient::new(config, region, "elasticloadbalancing", "2015-12-01")? })
    }

    /// `DescribeLoadBalancers` by name: the one called `name`, if any.
    pub async fn load_balancer(&self, name: &str) -> Result<Option<LoadBalancer>, AwsError> {
        let found = self.describe_named("LoadBalancers", name, &format!("load balancer {name}")).await?;
        Ok(found.as_ref().map(load_balancer))
    }

    /// `CreateLoadBalancer` of an application load balancer, IPv4, tagged.
    pub async fn create_load_balancer(&self, new: &NewLoadBalancer<'_>) -> Result<LoadBalancer, AwsError> {
        let mut params = vec![
            ("Name".to_owned(), new.name.to_owned()),
            ("Scheme".to_owned(), new.scheme.to_owned()),
            ("Type".to_owned(), "application".to_owned()),
            ("IpAddressType".to_owned(), "ipv4".to_owned()),
        ];
        params.extend(numbered("Subnets.member", new.subnets.iter().cloned()));
        params.extend(numbered("SecurityGroups.member", new.security_groups.iter().cloned()));
        params.extend(tag_params(new.tags));
        let resource = format!("load balancer {}", new.name);
        let answer = self.call("CreateLoadBalancer", &params, &resource).await?;
        answer.members("LoadBalancers").first().map(|found| load_balancer(found)).ok_or_else(|| missing(&resource))
    }

    /// `SetSecurityGroups`.
    pub async fn set_security_groups(&self, arn: &str, groups: &[String], resource: &str) -> Result<(), AwsError> {
        let mut params = vec![("LoadBalancerArn".to_owned(), arn.to_owned())];
        params.extend(numbered("SecurityGroups.member", groups.iter().cloned()));
        self.call("SetSecurityGroups", &params, resource).await.map(drop)
    }

    /// `SetSubnets`.
    pub async fn set_subnets(&self, arn: &str, subnets: &[String], resource: &str) -> Result<(), AwsError> {
        let mut params = vec![("LoadBalancerArn".to_owned(), arn.to_owned())];
        params.extend(numbered("Subnets.member", subnets.iter().cloned()));
        self.call("SetSubnets", &params, resource).await.map(drop)
    }

    /// `DeleteLoadBalancer`; one already gone is fine.
    pub async fn delete_load_balancer(&self, arn: &str, resource: &str) -> Result<(), AwsError> {
        let params = [("LoadBalancerArn".to_owned(), arn.to_owned())];
        gone_is_fine(self.call("DeleteLoadBalancer", &params, resource).await)
    }

    /// `DescribeLoadBalancerAttributes` or `DescribeTargetGroupAttributes`
    /// (`kind` is `LoadBalancer` or `TargetGroup`).
    pub async fn attributes(
        &self,
        kind: &str,
        arn: &str,
        resource: &str,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let params = [(format!("{kind}Arn"), arn.to_owned())];
        let answer = self.call(&format!("Describe{kind}Attributes"), &params, resource).await?;
        Ok(answer
            .members("Attributes")
            .iter()
            .filter_map(|pair| Some((pair.text("Key")?, pair.text("Value").unwrap_or_default())))
            .collect())
    }

    /// `ModifyLoadBalancerAttributes` or `ModifyTargetGroupAttributes`.
    pub async fn set_attributes(
        &self,
        kind: &str,
        arn: &str,
        attributes: &[(&str, String)],
        resource: &str,
    ) -> Result<(), AwsError> {
        let mut params = vec![(format!("{kind}Arn"), arn.to_owned())];
        for (index, (key, value)) in attributes.iter().enumerate() {
            params.push((format!("Attributes.member.{}.Key", index + 1), (*key).to_owned()));
            params.push((format!("Attributes.member.{}.Value", index + 1), value.clone()));
        }
        self.call(&format!("Modify{kind}Attributes"), &params, resource).await.map(drop)
    }

    /// `DescribeTargetGroups` by name: the one called `name`, if any.
    pub async fn target_group(&self, name: &str) -> Result<Option<TargetGroup>, AwsError> {
        let found = self.describe_named("TargetGroups", name, &format!("target group {name}")).await?;
        Ok(found.as_ref().map(target_group))
    }

    /// `CreateTargetGroup` with `group`'s settings, tagged.
    pub async fn create_target_group(
        &self,
        group: &TargetGroup,
        tags: &[(String, String)],
    ) -> Result<TargetGroup, AwsError> {
        let mut params = vec![
            ("Name".to_owned(), group.name.clone()),
            ("Protocol".to_owned(), group.protocol.clone()),
            ("ProtocolVersion".to_owned(), group.protocol_version.clone()),
            ("Port".to_owned(), group.port.to_string()),
            ("VpcId".to_owned(), group.vpc_id.clone()),
            ("TargetType".to_owned(), group.target_type.clone()),
            ("HealthCheckEnabled".to_owned(), "true".to_owned()),
        ];
        params.extend(health_params(group));
        params.extend(tag_params(tags));
        let resource = format!("target group {}", group.name);
        let answer = self.call("CreateTargetGroup", &params, &resource).await?;
        answer.members("TargetGroups").first().map(|found| target_group(found)).ok_or_else(|| missing(&resource))
    }

    /// `ModifyTargetGroup`: its health check as `group` says.
    pub async fn modify_health_check(&self, arn: &str, group: &TargetGroup) -> Result<(), AwsError> {
        let mut params = vec![("TargetGroupArn".to_owned(), arn.to_owned())];
        params.extend(health_params(group));
        self.call("ModifyTargetGroup", &params, &format!("target group {}", group.name)).await.map(drop)
    }

    /// `DeleteTargetGroup`; one already gone is fine.
    pub async fn delete_target_group(&self, arn: &str, resource: &str) -> Result<(), AwsError> {
        let params = [("TargetGroupArn".to_owned(), arn.to_owned())];
        gone_is_fine(self.call("DeleteTargetGroup", &params, resource).await)
    }

    /// `DescribeListeners` of a load balancer: its listener on `port`, if it
    /// has one.
    pub async fn listener_on(
        &self,
        load_balancer_arn: &str,
        port: u16,
        resource: &str,
    ) -> Result<Option<Listener>, AwsError> {
        let params = [("LoadBalancerArn".to_owned(), load_balancer_arn.to_owned())];
        let answer = self.call("DescribeListeners", &params, resource).await?;
        Ok(answer.members("Listeners").into_iter().map(listener).find(|listener| listener.port == port))
    }

    /// `CreateListener` (`listener.arn` empty) or `ModifyListener`: HTTPS
    /// with the certificate and TLS policy, forwarding to the target group.
    pub async fn put_listener(
        &self,
        load_balancer_arn: &str,
        listener: &Listener,
        tags: &[(String, String)],
        resource: &str,
    ) -> Result<String, AwsError> {
        let mut params = vec![
            ("Protocol".to_owned(), listener.protocol.clone()),
            ("Port".to_owned(), listener.port.to_string()),
            ("SslPolicy".to_owned(), listener.ssl_policy.clone()),
            ("Certificates.member.1.CertificateArn".to_owned(), listener.certificate_arn.clone()),
            ("DefaultActions.member.1.Type".to_owned(), "forward".to_owned()),
            ("DefaultActions.member.1.TargetGroupArn".to_owned(), listener.target_group_arn.clone()),
        ];
        let action = if listener.arn.is_empty() {
            params.push(("LoadBalancerArn".to_owned(), load_balancer_arn.to_owned()));
            params.extend(tag_params(tags));
            "CreateListener"
        } else {
            params.push(("ListenerArn".to_owned(), listener.arn.clone()));
            "ModifyListener"
        };
        let answer = self.call(action, &params, resource).await?;
        answer.members("Listeners").first().and_then(|made| made.text("ListenerArn")).ok_or_else(|| missing(resource))
    }

    /// `DeleteListener`; one already gone is fine.
    pub async fn delete_listener(&self, arn: &str, resource: &str) -> Result<(), AwsError> {
        let params = [("ListenerArn".to_owned(), arn.to_owned())];
        gone_is_fine(self.call("DeleteListener", &params, resource).await)
    }

    /// `DescribeTags` of one resource.
    pub async fn tags(&self, arn: &str, resource: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let params = numbered("ResourceArns.member", std::iter::once(arn.to_owned()));
        let answer = self.call("DescribeTags", &params, resource).await?;
        Ok(answer
            .members("TagDescriptions")
            .iter()
            .flat_map(|description| description.members("Tags"))
            .filter_map(|tag| Some((tag.text("Key")?, tag.text("Value").unwrap_or_default())))
            .collect())
    }

    /// `DescribeTargetHealth` of every target of a group.
    pub async fn target_health(&self, arn: &str, resource: &str) -> Result<Vec<TargetHealth>, AwsError> {
        let params = [("TargetGroupArn".to_owned(), arn.to_owned())];
        let answer = self.call("DescribeTargetHealth", &params, resource).await?;
        Ok(answer
            .members("TargetHealthDescriptions")
            .iter()
            .filter_map(|description| {
                let target = description.child("Target")?;
                let health = description.child("TargetHealth");
                Some(TargetHealth {
                    id: target.text("Id")?,
                    port: target.text("Port").and_then(|port| port.parse().ok()).unwrap_or(0),
                    state: health.and_then(|health| health.text("State")).unwrap_or_default(),
                    reason: health.and_then(|health| health.text("Reason")),
                })
            })
            .collect())
    }

    /// `Describe<KINDS>` of the one called `name`, if any (ELB answers a
    /// name it does not know with a NotFound error).
    async fn describe_named(&self, kinds: &str, name: &str, resource: &str) -> Result<Option<Element>, AwsError> {
        let params = numbered("Names.member", std::iter::once(name.to_owned()));
        let Some(mut answer) = unless_gone(self.call(&format!("Describe{kinds}"), &params, resource).await)? else {
            return Ok(None);
        };
        Ok(answer.take_child(kinds).and_then(|mut list| list.take_child("member")))
    }

    /// One call; the `<ActionResult>` inside the answer.
    async fn call(&self, action: &str, params: &[(String, String)], resource: &str) -> Result<Element, AwsError> {
        let mut answer = self.client.call(action, params, resource).await?;
        let result = format!("{action}Result");
        Ok(answer.take_child(&result).unwrap_or(answer))
    }
}

fn load_balancer(found: &Element) -> LoadBalancer {
    LoadBalancer {
        arn: found.text("LoadBalancerArn").unwrap_or_default(),
        name: found.text("LoadBalancerName").unwrap_or_default(),
        dns_name: found.text("DNSName").unwrap_or_default(),
        scheme: found.text("Scheme").unwrap_or_default(),
        vpc_id: found.text("VpcId").unwrap_or_default(),
        subnets: found.members("AvailabilityZones").iter().filter_map(|zone| zone.text("SubnetId")).collect(),
        security_groups: found.members("SecurityGroups").iter().map(|group| group.own_text()).collect(),
        state: found.child("State").and_then(|state| state.text("Code")).unwrap_or_default(),
    }
}

fn target_group(found: &Element) -> TargetGroup {
    let number = |name: &str| found.text(name).and_then(|value| value.parse().ok()).unwrap_or(0);
    TargetGroup {
        arn: found.text("TargetGroupArn").unwrap_or_default(),
        name: found.text("TargetGroupName").unwrap_or_default(),
        protocol: found.text("Protocol").unwrap_or_default(),
        protocol_version: found.text("ProtocolVersion").unwrap_or_default(),
        port: found.text("Port").and_then(|port| port.parse().ok()).unwrap_or(0),
        vpc_id: found.text("VpcId").unwrap_or_default(),
        target_type: found.text("TargetType").unwrap_or_default(),
        health_check_path: found.text("HealthCheckPath").unwrap_or_default(),
        grpc_codes: found.child("Matcher").and_then(|matcher| matcher.text("GrpcCode")).unwrap_or_default(),
        interval_secs: number("HealthCheckIntervalSeconds"),
        timeout_secs: number("HealthCheckTimeoutSeconds"),
        healthy_threshold: number("HealthyThresholdCount"),
        unhealthy_threshold: number("UnhealthyThresholdCount"),
        load_balancers: found.members("LoadBalancerArns").iter().map(|arn| arn.own_text()).collect(),
    }
}

fn listener(found: &Element) -> Listener {
    let forward =
        found.members("DefaultActions").into_iter().find(|action| action.text("Type").as_deref() == Some("forward"));
    Listener {
        arn: found.text("ListenerArn").unwrap_or_default(),
        port: found.text("Port").and_then(|port| port.parse().ok()).unwrap_or(0),
        protocol: found.text("Protocol").unwrap_or_default(),
        ssl_policy: found.text("SslPolicy").unwrap_or_default(),
        certificate_arn: found
            .members("Certificates")
            .first()
            .and_then(|certificate| certificate.text("CertificateArn"))
            .unwrap_or_default(),
        target_group_arn: forward.and_then(|action| action.text("TargetGroupArn")).unwrap_or_default(),
    }
}

/// The health check of a target group as `ModifyTargetGroup` and
/// `CreateTargetGroup` take it.
fn health_params(group: &TargetGroup) -> Vec<(String, String)> {
    vec![
        ("HealthCheckProtocol".to_owned(), group.protocol.clone()),
        ("HealthCheckPath".to_owned(), group.health_check_path.clone()),
        ("HealthCheckIntervalSeconds".to_owned(), group.interval_secs.to_string()),
        ("HealthCheckTimeoutSeconds".to_owned(), group.timeout_secs.to_string()),
        ("HealthyThresholdCount".to_owned(), group.healthy_threshold.to_string()),
        ("UnhealthyThresholdCount".to_owned(), group.unhealthy_threshold.to_string()),
        ("Matcher.GrpcCode".to_owned(), group.grpc_codes.clone()),
    ]
}

fn tag_params(tags: &[(String, String)]) -> Vec<(String, String)> {
    tags.iter()
        .enumerate()
        .flat_map(|(index, (key, value))| {
            [
                (format!("Tags.member.{}.Key", index + 1), key.clone()),
                (format!("Tags.member.{}.Value", index + 1), value.clone()),
            ]
        })
        .collect()
}

fn gone_is_fine(answer: Result<Element, AwsError>) -> Result<(), AwsError> {
    unless_gone(answer).map(drop)
}

fn missing(resource: &str) -> AwsError {
    AwsError { code: None, message: format!("elasticloadbalancing on {resource}: the answer describes nothing") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_group_and_a_listener_read_back_from_their_answers() {
        let answer = Element::parse(
            "<DescribeTargetGroupsResponse><DescribeTargetGroupsResult><TargetGroups><member>\
             <TargetGroupArn>arn:tg</TargetGroupArn><TargetGroupName>shop-game</TargetGroupName>\
             <Protocol>HTTP</Protocol><ProtocolVersion>GRPC</ProtocolVersion><Port>50051</Port>\
             <TargetType>ip</TargetType><HealthCheckPath>/grpc.health.v1.Health/Check</HealthCheckPath>\
             <Matcher><GrpcCode>0</GrpcCode></Matcher><HealthyThresholdCount>2</HealthyThresholdCount>\
             <LoadBalancerArns><member>arn:lb</member></LoadBalancerArns>\
             </member></TargetGroups></DescribeTargetGroupsResult></DescribeTargetGroupsResponse>",
        )
        .unwrap();
        let result = answer.child("DescribeTargetGroupsResult").unwrap();
        let group = target_group(result.members("TargetGroups")[0]);
        assert_eq!(
            (group.protocol_version.as_str(), group.port, group.grpc_codes.as_str(), group.healthy_threshold),
            ("GRPC", 50051, "0", 2)
        );
        assert_eq!(group.load_balancers, ["arn:lb"]);
        let found = Element::parse(
            "<member><ListenerArn>arn:l</ListenerArn><Port>443</Port><Protocol>HTTPS</Protocol>\
             <Certificates><member><CertificateArn>arn:c</CertificateArn></member></Certificates>\
             <DefaultActions><member><Type>forward</Type><TargetGroupArn>arn:tg</TargetGroupArn></member>\
             </DefaultActions></member>",
        )
        .unwrap();
        let listener = listener(&found);
        assert_eq!(
            (listener.port, listener.certificate_arn.as_str(), listener.target_group_arn.as_str()),
            (443, "arn:c", "arn:tg")
        );
    }
}
