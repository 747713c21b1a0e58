//! The Application Auto Scaling calls provision makes for ECS services,
//! through the SDK's client, in the shapes the scaling kinds compare.

use aws_sdk_applicationautoscaling::{
    Client,
    types::{
        MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
        TargetTrackingScalingPolicyConfiguration,
    },
};
use aws_smithy_types::date_time::Format;

use super::error::{AwsError, classify};

/// What every call here is about.
const NAMESPACE: ServiceNamespace = ServiceNamespace::Ecs;
/// An ECS service's scalable dimension.
const DIMENSION: ScalableDimension = ScalableDimension::EcsServiceDesiredCount;

/// An Application Auto Scaling client for one region (or `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct AppAutoScaling {
    client: Client,
}

/// A scalable target: an ECS service's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalableTarget {
    /// `service/CLUSTER/SERVICE`.
    pub resource_id: String,
    pub min: u32,
    pub max: u32,
    /// Its ARN, where the API gives one.
    pub arn: String,
}

/// A target-tracking policy on a predefined ECS metric.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTracking {
    /// The policy's name (unique per scalable target).
    pub name: String,
    /// `service/CLUSTER/SERVICE`.
    pub resource_id: String,
    /// `ECSServiceAverageCPUUtilization` or `ECSServiceAverageMemoryUtilization`.
    pub metric: String,
    /// The utilization to hold, in percent.
    pub target: f64,
    pub scale_out_cooldown_secs: u64,
    pub scale_in_cooldown_secs: u64,
    /// Its ARN.
    pub arn: String,
}

/// One scaling activity, as status shows it (and its JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Activity {
    /// When it started (ISO 8601).
    pub start: String,
    /// Successful, InProgress, Failed...
    pub status: String,
    /// What it did ("Setting desired count to 4.").
    pub description: String,
    /// Why (the alarm that fired, or the call).
    pub cause: String,
}

impl AppAutoScaling {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self { client: crate::clients::verbose::sdk_client!(aws_sdk_applicationautoscaling, config) }
    }

    /// `application-autoscaling:DescribeScalableTargets` for these ECS
    /// services (resource ids), every page.
    pub async fn describe_scalable_targets(&self, resource_ids: &[String]) -> Result<Vec<ScalableTarget>, AwsError> {
        if resource_ids.is_empty() {
            return Ok(Vec::new());
        }
        let targets: Vec<_> = self
            .client
            .describe_scalable_targets()
            .service_namespace(NAMESPACE)
            .set_resource_ids(Some(resource_ids.to_vec()))
            .scalable_dimension(DIMENSION)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|error| {
                classify(error, "application-autoscaling:DescribeScalableTargets", "the ECS services' scalable targets")
            })?;
        Ok(targets
            .iter()
            .filter_map(|target| {
                Some(ScalableTarget {
                    resource_id: target.resource_id().to_owned(),
                    min: u32::try_from(target.min_capacity()).ok()?,
                    max: u32::try_from(target.max_capacity()).ok()?,
                    arn: target.scalable_target_arn().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    /// `application-autoscaling:RegisterScalableTarget`: creates the target
    /// or changes its bounds. `tags` only when it creates the target: the
    /// API takes tags for creation, `TagResource` for an existing one.
    pub async fn register_scalable_target(
        &self,
        resource_id: &str,
        min: u32,
        max: u32,
        tags: &[(String, String)],
    ) -> Result<(), AwsError> {
        self.client
            .register_scalable_target()
            .service_namespace(NAMESPACE)
            .resource_id(resource_id)
            .scalable_dimension(DIMENSION)
            .min_capacity(i32::try_from(min).unwrap_or(i32::MAX))
            .max_capacity(i32::try_from(max).unwrap_or(i32::MAX))
            .set_tags((!tags.is_empty()).then(|| tags.iter().cloned().collect()))
            .send()
            .await
            .map_err(|error| {
                classify(
                    error,
                    "application-autoscaling:RegisterScalableTarget",
                    &format!("scalable target {resource_id}"),
                )
            })?;
        Ok(())
    }

    /// `application-autoscaling:DeregisterScalableTarget` (which deletes
    /// its policies too).
    pub async fn deregister_scalable_target(&self, resource_id: &str) -> Result<(), AwsError> {
        self.client
            .deregister_scalable_target()
            .service_namespace(NAMESPACE)
            .resource_id(resource_id)
            .scalable_dimension(DIMENSION)
            .send()
            .await
            .map_err(|error| {
                classify(
                    error,
                    "application-autoscaling:DeregisterScalableTarget",
                    &format!("scalable target {resource_id}"),
                )
            })?;
        Ok(())
    }

    /// `application-autoscaling:DescribeScalingPolicies` of one ECS
    /// service, every page; target tracking on predefined metrics only.
    pub async fn describe_scaling_policies(&self, resource_id: &str) -> Result<Vec<TargetTracking>, AwsError> {
        let policies: Vec<_> = self
            .client
            .describe_scaling_policies()
            .service_namespace(NAMESPACE)
            .resource_id(resource_id)
            .scalable_dimension(DIMENSION)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|error| {
                classify(
                    error,
                    "application-autoscaling:DescribeScalingPolicies",
                    &format!("scaling policies of {resource_id}"),
                )
            })?;
        Ok(policies
            .iter()
            .filter_map(|policy| {
                let configuration = policy.target_tracking_scaling_policy_configuration()?;
                Some(TargetTracking {
                    name: policy.policy_name().to_owned(),
                    resource_id: policy.resource_id().to_owned(),
                    metric: configuration
                        .predefined_metric_specification()
                        .map_or("custom", |metric| metric.predefined_metric_type().as_str())
                        .to_owned(),
                    target: configuration.target_value(),
                    scale_out_cooldown_secs: configuration.scale_out_cooldown().map_or(0, |secs| secs.max(0) as u64),
                    scale_in_cooldown_secs: configuration.scale_in_cooldown().map_or(0, |secs| secs.max(0) as u64),
                    arn: policy.policy_arn().to_owned(),
                })
            })
            .collect())
    }

    /// `application-autoscaling:PutScalingPolicy`: creates or replaces a
    /// target-tracking policy.
    pub async fn put_target_tracking(&self, policy: &TargetTracking) -> Result<(), AwsError> {
        let resource = format!("scaling policy {}", policy.name);
        let invalid = AwsError::unsent("application-autoscaling:PutScalingPolicy", &resource);
        let metric = PredefinedMetricSpecification::builder()
            .predefined_metric_type(MetricType::from(policy.metric.as_str()))
            .build()
            .map_err(&invalid)?;
        let configuration = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(policy.target)
            .predefined_metric_specification(metric)
            .scale_out_cooldown(i32::try_from(policy.scale_out_cooldown_secs).unwrap_or(i32::MAX))
            .scale_in_cooldown(i32::try_from(policy.scale_in_cooldown_secs).unwrap_or(i32::MAX))
            .disable_scale_in(false)
            .build()
            .map_err(&invalid)?;
        self.client
            .put_scaling_policy()
            .policy_name(&policy.name)
            .service_namespace(NAMESPACE)
            .resource_id(&policy.resource_id)
            .scalable_dimension(DIMENSION)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(configuration)
            .send()
            .await
            .map_err(|error| classify(error, "application-autoscaling:PutScalingPolicy", &resource))?;
        Ok(())
    }

    /// `application-autoscaling:DeleteScalingPolicy`.
    pub async fn delete_scaling_policy(&self, name: &str, resource_id: &str) -> Result<(), AwsError> {
        self.client
            .delete_scaling_policy()
            .policy_name(name)
            .service_namespace(NAMESPACE)
            .resource_id(resource_id)
            .scalable_dimension(DIMENSION)
            .send()
            .await
            .map_err(|error| {
                classify(error, "application-autoscaling:DeleteScalingPolicy", &format!("scaling policy {name}"))
            })?;
        Ok(())
    }

    /// `application-autoscaling:DescribeScalingActivities`: the latest
    /// `limit` of one ECS service, newest first.
    pub async fn describe_scaling_activities(&self, resource_id: &str, limit: u32) -> Result<Vec<Activity>, AwsError> {
        let answer = self
            .client
            .describe_scaling_activities()
            .service_namespace(NAMESPACE)
            .resource_id(resource_id)
            .scalable_dimension(DIMENSION)
            .max_results(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|error| {
                classify(
                    error,
                    "application-autoscaling:DescribeScalingActivities",
                    &format!("scaling activities of {resource_id}"),
                )
            })?;
        Ok(answer
            .scaling_activities()
            .iter()
            .map(|activity| Activity {
                start: activity.start_time().fmt(Format::DateTime).unwrap_or_default(),
                status: activity.status_code().as_str().to_owned(),
                description: activity.description().to_owned(),
                cause: activity.cause().to_owned(),
            })
            .collect())
    }
}
