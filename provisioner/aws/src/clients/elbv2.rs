//! The Elastic Load Balancing (v2) calls behind a service's ingress: the
//! load balancer, its target group and HTTPS listener, their attributes and
//! tags, and the targets' health; through the SDK's client, in the shapes
//! the ingress kinds compare.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::{
    Client,
    types::{
        Action, ActionTypeEnum, Certificate, IpAddressType, LoadBalancerAttribute, LoadBalancerSchemeEnum,
        LoadBalancerTypeEnum, Matcher, ProtocolEnum, Tag, TargetGroupAttribute, TargetTypeEnum,
    },
};

use super::error::{AwsError, classify, unless_gone};

/// A target group's health check on CreateTargetGroup's or
/// ModifyTargetGroup's builder (two types with the same members).
macro_rules! health_check {
    ($builder:expr, $group:expr) => {
        $builder
            .health_check_protocol(ProtocolEnum::from($group.protocol.as_str()))
            .health_check_path(&$group.health_check_path)
            .health_check_interval_seconds(seconds($group.interval_secs))
            .health_check_timeout_seconds(seconds($group.timeout_secs))
            .healthy_threshold_count(seconds($group.healthy_threshold))
            .unhealthy_threshold_count(seconds($group.unhealthy_threshold))
            .matcher(Matcher::builder().grpc_code(&$group.grpc_codes).build())
    };
}

/// An ELBv2 client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct Elbv2 {
    client: Client,
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
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self { client: crate::clients::verbose::sdk_client!(aws_sdk_elasticloadbalancingv2, config) }
    }

    /// `DescribeLoadBalancers` by name: the one called `name`, if any (ELB
    /// answers a name it does not know with a NotFound error).
    pub async fn load_balancer(&self, name: &str) -> Result<Option<LoadBalancer>, AwsError> {
        let answer = self.client.describe_load_balancers().names(name).send().await;
        let answer = answer.map_err(|error| {
            classify(error, "elasticloadbalancing:DescribeLoadBalancers", &format!("load balancer {name}"))
        });
        Ok(unless_gone(answer)?.and_then(|answer| answer.load_balancers().first().map(load_balancer)))
    }

    /// `CreateLoadBalancer` of an application load balancer, IPv4, tagged.
    pub async fn create_load_balancer(&self, new: &NewLoadBalancer<'_>) -> Result<LoadBalancer, AwsError> {
        let resource = format!("load balancer {}", new.name);
        let answer = self
            .client
            .create_load_balancer()
            .name(new.name)
            .scheme(LoadBalancerSchemeEnum::from(new.scheme))
            .r#type(LoadBalancerTypeEnum::Application)
            .ip_address_type(IpAddressType::Ipv4)
            .set_subnets(Some(new.subnets.to_vec()))
            .set_security_groups(Some(new.security_groups.to_vec()))
            .set_tags(Some(tags(new.tags)))
            .send()
            .await
            .map_err(|error| classify(error, "elasticloadbalancing:CreateLoadBalancer", &resource))?;
        answer.load_balancers().first().map(load_balancer).ok_or_else(|| missing(&resource))
    }

    /// `SetSecurityGroups`.
    pub async fn set_security_groups(&self, arn: &str, groups: &[String], resource: &str) -> Result<(), AwsError> {
        self.client
            .set_security_groups()
            .load_balancer_arn(arn)
            .set_security_groups(Some(groups.to_vec()))
            .send()
            .await
            .map_err(|error| classify(error, "elasticloadbalancing:SetSecurityGroups", resource))?;
        Ok(())
    }

    /// `SetSubnets`.
    pub async fn set_subnets(&self, arn: &str, subnets: &[String], resource: &str) -> Result<(), AwsError> {
        self.client
            .set_subnets()
            .load_balancer_arn(arn)
            .set_subnets(Some(subnets.to_vec()))
            .send()
            .await
            .map_err(|error| classify(error, "elasticloadbalancing:SetSubnets", resource))?;
        Ok(())
    }

    /// `DeleteLoadBalancer`; one already gone is fine.
    pub async fn delete_load_balancer(&self, arn: &str, resource: &str) -> Result<(), AwsError> {
        let answer = self.client.delete_load_balancer().load_balancer_arn(arn).send().await;
        unless_gone(answer.map_err(|error| classify(error, "elasticloadbalancing:DeleteLoadBalancer", resource)))?;
        Ok(())
    }

    /// `DescribeLoadBalancerAttributes` or `DescribeTargetGroupAttributes`
    /// (`kind` is `LoadBalancer` or `TargetGroup`).
    pub async fn attributes(
        &self,
        kind: &str,
        arn: &str,
        resource: &str,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let pair =
            |key: Option<&str>, value: Option<&str>| Some((key?.to_owned(), value.unwrap_or_default().to_owned()));
        if kind == "LoadBalancer" {
            let answer = self.client.describe_load_balancer_attributes().load_balancer_arn(arn).send().await;
            let answer = answer
                .map_err(|error| classify(error, "elasticloadbalancing:DescribeLoadBalancerAttributes", resource))?;
            return Ok(answer.attributes().iter().filter_map(|found| pair(found.key(), found.value())).collect());
        }
        let answer = self.client.describe_target_group_attributes().target_group_arn(arn).send().await;
        let answer =
            answer.map_err(|error| classify(error, "elasticloadbalancing:DescribeTargetGroupAttributes", resource))?;
        Ok(answer.attributes().iter().filter_map(|found| pair(found.key(), found.value())).collect())
    }

    /// `ModifyLoadBalancerAttributes` or `ModifyTargetGroupAttributes`.
    pub async fn set_attributes(
        &self,
        kind: &str,
        arn: &str,
        attributes: &[(&str, String)],
        resource: &str,
    ) -> Result<(), AwsError> {
        if kind == "LoadBalancer" {
            let attributes =
                attributes.iter().map(|(key, value)| LoadBalancerAttribute::builder().key(*key).value(value).build());
            self.client
                .modify_load_balancer_attributes()
                .load_balancer_arn(arn)
                .set_attributes(Some(attributes.collect()))
                .send()
                .await
                .map_err(|error| classify(error, "elasticloadbalancing:ModifyLoadBalancerAttributes", resource))?;
            return Ok(());
        }
        let attributes =
            attributes.iter().map(|(key, value)| TargetGroupAttribute::builder().key(*key).value(value).build());
        self.client
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .set_attributes(Some(attributes.collect()))
            .send()
            .await
            .map_err(|error| classify(error, "elasticloadbalancing:ModifyTargetGroupAttributes", resource))?;
        Ok(())
    }

    /// `DescribeTargetGroups` by name: the one called `name`, if any.
    pub async fn target_group(&self, name: &str) -> Result<Option<TargetGroup>, AwsError> {
        let answer = self.client.describe_target_groups().names(name).send().await;
        let answer = answer.map_err(|error| {
            classify(error, "elasticloadbalancing:DescribeTargetGroups", &format!("target group {name}"))
        });
        Ok(unless_gone(answer)?.and_then(|answer| answer.target_groups().first().map(target_group)))
    }

    /// `CreateTargetGroup` with `group`'s settings, tagged.
    pub async fn create_target_group(
        &self,
        group: &TargetGroup,
        tags_of: &[(String, String)],
    ) -> Result<TargetGroup, AwsError> {
        let resource = format!("target group {}", group.name);
        let create = self
            .client
            .create_target_group()
            .name(&group.name)
            .protocol(ProtocolEnum::from(group.protocol.as_str()))
            .protocol_version(&group.protocol_version)
            .port(i32::from(group.port))
            .vpc_id(&group.vpc_id)
            .target_type(TargetTypeEnum::from(group.target_type.as_str()))
            .health_check_enabled(true);
        let answer = health_check!(create, group)
            .set_tags(Some(tags(tags_of)))
            .send()
            .await
            .map_err(|error| classify(error, "elasticloadbalancing:CreateTargetGroup", &resource))?;
        answer.target_groups().first().map(target_group).ok_or_else(|| missing(&resource))
    }

    /// `ModifyTargetGroup`: its health check as `group` says.
    pub async fn modify_health_check(&self, arn: &str, group: &TargetGroup) -> Result<(), AwsError> {
        let modify = self.client.modify_target_group().target_group_arn(arn);
        health_check!(modify, group).send().await.map_err(|error| {
            classify(error, "elasticloadbalancing:ModifyTargetGroup", &format!("target group {}", group.name))
        })?;
        Ok(())
    }

    /// `DeleteTargetGroup`; one already gone is fine.
    pub async fn delete_target_group(&self, arn: &str, resource: &str) -> Result<(), AwsError> {
        let answer = self.client.delete_target_group().target_group_arn(arn).send().await;
        unless_gone(answer.map_err(|error| classify(error, "elasticloadbalancing:DeleteTargetGroup", resource)))?;
        Ok(())
    }

    /// `DescribeListeners` of a load balancer, every page: its listener on
    /// `port`, if it has one.
    pub async fn listener_on(
        &self,
        load_balancer_arn: &str,
        port: u16,
        resource: &str,
    ) -> Result<Option<Listener>, AwsError> {
        let listeners: Vec<_> = self
            .client
            .describe_listeners()
            .load_balancer_arn(load_balancer_arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|error| classify(error, "elasticloadbalancing:DescribeListeners", resource))?;
        Ok(listeners.iter().map(listener).find(|listener| listener.port == port))
    }

    /// `CreateListener` (`listener.arn` empty) or `ModifyListener`: HTTPS
    /// with the certificate and TLS policy, forwarding to the target group.
    pub async fn put_listener(
        &self,
        load_balancer_arn: &str,
        listener: &Listener,
        tags_of: &[(String, String)],
        resource: &str,
    ) -> Result<String, AwsError> {
        let certificate = Certificate::builder().certificate_arn(&listener.certificate_arn).build();
        let forward =
            Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&listener.target_group_arn).build();
        let made = if listener.arn.is_empty() {
            let answer = self
                .client
                .create_listener()
                .load_balancer_arn(load_balancer_arn)
                .protocol(ProtocolEnum::from(listener.protocol.as_str()))
                .port(i32::from(listener.port))
                .ssl_policy(&listener.ssl_policy)
                .certificates(certificate)
                .default_actions(forward)
                .set_tags(Some(tags(tags_of)))
                .send()
                .await
                .map_err(|error| classify(error, "elasticloadbalancing:CreateListener", resource))?;
            answer.listeners().first().and_then(|made| made.listener_arn()).map(str::to_owned)
        } else {
            let answer = self
                .client
                .modify_listener()
                .listener_arn(&listener.arn)
                .protocol(ProtocolEnum::from(listener.protocol.as_str()))
                .port(i32::from(listener.port))
                .ssl_policy(&listener.ssl_policy)
                .certificates(certificate)
                .default_actions(forward)
                .send()
                .await
                .map_err(|error| classify(error, "elasticloadbalancing:ModifyListener", resource))?;
            answer.listeners().first().and_then(|made| made.listener_arn()).map(str::to_owned)
        };
        made.ok_or_else(|| missing(resource))
    }

    /// `DeleteListener`; one already gone is fine.
    pub async fn delete_listener(&self, arn: &str, resource: &str) -> Result<(), AwsError> {
        let answer = self.client.delete_listener().listener_arn(arn).send().await;
        unless_gone(answer.map_err(|error| classify(error, "elasticloadbalancing:DeleteListener", resource)))?;
        Ok(())
    }

    /// `DescribeTags` of one resource.
    pub async fn tags(&self, arn: &str, resource: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let answer = self
            .client
            .describe_tags()
            .resource_arns(arn)
            .send()
            .await
            .map_err(|error| classify(error, "elasticloadbalancing:DescribeTags", resource))?;
        Ok(answer
            .tag_descriptions()
            .iter()
            .flat_map(|description| description.tags())
            .filter_map(|tag| Some((tag.key()?.to_owned(), tag.value().unwrap_or_default().to_owned())))
            .collect())
    }

    /// `AddTags` with `set`, `RemoveTags` with `remove`, on one resource.
    pub async fn retag(
        &self,
        arn: &str,
        set: &BTreeMap<String, String>,
        remove: &[String],
        resource: &str,
    ) -> Result<(), AwsError> {
        if !set.is_empty() {
            let pairs: Vec<(String, String)> = set.clone().into_iter().collect();
            let answer = self.client.add_tags().resource_arns(arn).set_tags(Some(tags(&pairs))).send().await;
            answer.map_err(|error| classify(error, "elasticloadbalancing:AddTags", resource))?;
        }
        if !remove.is_empty() {
            let answer = self.client.remove_tags().resource_arns(arn).set_tag_keys(Some(remove.to_vec())).send().await;
            answer.map_err(|error| classify(error, "elasticloadbalancing:RemoveTags", resource))?;
        }
        Ok(())
    }

    /// `DescribeTargetHealth` of every target of a group.
    pub async fn target_health(&self, arn: &str, resource: &str) -> Result<Vec<TargetHealth>, AwsError> {
        let answer = self
            .client
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(|error| classify(error, "elasticloadbalancing:DescribeTargetHealth", resource))?;
        Ok(answer
            .target_health_descriptions()
            .iter()
            .filter_map(|description| {
                let target = description.target()?;
                let health = description.target_health();
                Some(TargetHealth {
                    id: target.id()?.to_owned(),
                    port: target.port().and_then(|port| u16::try_from(port).ok()).unwrap_or(0),
                    state: health
                        .and_then(|health| health.state())
                        .map(|state| state.as_str().to_owned())
                        .unwrap_or_default(),
                    reason: health.and_then(|health| health.reason()).map(|reason| reason.as_str().to_owned()),
                })
            })
            .collect())
    }
}

fn load_balancer(found: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer) -> LoadBalancer {
    LoadBalancer {
        arn: text(found.load_balancer_arn()),
        name: text(found.load_balancer_name()),
        dns_name: text(found.dns_name()),
        scheme: text(found.scheme().map(LoadBalancerSchemeEnum::as_str)),
        vpc_id: text(found.vpc_id()),
        subnets: found.availability_zones().iter().filter_map(|zone| zone.subnet_id()).map(str::to_owned).collect(),
        security_groups: found.security_groups().to_vec(),
        state: text(found.state().and_then(|state| state.code()).map(|code| code.as_str())),
    }
}

fn target_group(found: &aws_sdk_elasticloadbalancingv2::types::TargetGroup) -> TargetGroup {
    let number = |value: Option<i32>| value.and_then(|value| u32::try_from(value).ok()).unwrap_or(0);
    TargetGroup {
        arn: text(found.target_group_arn()),
        name: text(found.target_group_name()),
        protocol: text(found.protocol().map(ProtocolEnum::as_str)),
        protocol_version: text(found.protocol_version()),
        port: found.port().and_then(|port| u16::try_from(port).ok()).unwrap_or(0),
        vpc_id: text(found.vpc_id()),
        target_type: text(found.target_type().map(TargetTypeEnum::as_str)),
        health_check_path: text(found.health_check_path()),
        grpc_codes: text(found.matcher().and_then(|matcher| matcher.grpc_code())),
        interval_secs: number(found.health_check_interval_seconds()),
        timeout_secs: number(found.health_check_timeout_seconds()),
        healthy_threshold: number(found.healthy_threshold_count()),
        unhealthy_threshold: number(found.unhealthy_threshold_count()),
        load_balancers: found.load_balancer_arns().to_vec(),
    }
}

fn listener(found: &aws_sdk_elasticloadbalancingv2::types::Listener) -> Listener {
    let forward = found.default_actions().iter().find(|action| action.r#type() == Some(&ActionTypeEnum::Forward));
    Listener {
        arn: text(found.listener_arn()),
        port: found.port().and_then(|port| u16::try_from(port).ok()).unwrap_or(0),
        protocol: text(found.protocol().map(ProtocolEnum::as_str)),
        ssl_policy: text(found.ssl_policy()),
        certificate_arn: text(found.certificates().first().and_then(|certificate| certificate.certificate_arn())),
        target_group_arn: text(forward.and_then(|action| action.target_group_arn())),
    }
}

fn text(value: Option<&str>) -> String {
    value.unwrap_or_default().to_owned()
}

/// A count or a number of seconds as the API takes it.
fn seconds(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect()
}

fn missing(resource: &str) -> AwsError {
    AwsError { code: None, message: format!("elasticloadbalancing on {resource}: the answer describes nothing") }
}
