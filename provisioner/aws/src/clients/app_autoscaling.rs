//! The Application Auto Scaling calls provision makes for ECS services,
//! spoken directly in its JSON 1.1 protocol (`X-Amz-Target:
//! AnyScaleFrontendService.<Operation>`) over [`super::json11`]: seven
//! calls did not justify another SDK crate in a two-core build.

use serde_json::{Value, json};

use super::{error::AwsError, json11::JsonClient};

/// What every call here is about.
const NAMESPACE: &str = "ecs";
/// An ECS service's scalable dimension.
pub const DIMENSION: &str = "ecs:service:DesiredCount";

/// An Application Auto Scaling client for one region (or `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct AppAutoScaling {
    client: JsonClient,
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

/// One scaling activity, as status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub fn new(config: &aws_types::SdkConfig, region: &str) -> anyhow::Result<Self> {
        let client = JsonClient::new(config, region, "application-autoscaling", "AnyScaleFrontendService")?;
        Ok(Self { client })
    }

    /// `application-autoscaling:DescribeScalableTargets` for these ECS
    /// services (resource ids), every page.
    pub async fn describe_scalable_targets(&self, resource_ids: &[String]) -> Result<Vec<ScalableTarget>, AwsError> {
        if resource_ids.is_empty() {
            return Ok(Vec::new());
        }
        let request =
            json!({ "ServiceNamespace": NAMESPACE, "ResourceIds": resource_ids, "ScalableDimension": DIMENSION });
        let pages = self.pages("DescribeScalableTargets", request, "the ECS services' scalable targets").await?;
        Ok(pages
            .iter()
            .flat_map(|page| page["ScalableTargets"].as_array().cloned().unwrap_or_default())
            .filter_map(|target| {
                Some(ScalableTarget {
                    resource_id: target["ResourceId"].as_str()?.to_owned(),
                    min: u32::try_from(target["MinCapacity"].as_u64()?).ok()?,
                    max: u32::try_from(target["MaxCapacity"].as_u64()?).ok()?,
                    arn: target["ScalableTargetARN"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    /// `application-autoscaling:RegisterScalableTarget`: creates the target
    /// or changes its bounds; tagged when created.
    pub async fn register_scalable_target(
        &self,
        resource_id: &str,
        min: u32,
        max: u32,
        tags: &[(String, String)],
    ) -> Result<(), AwsError> {
        let tags: serde_json::Map<String, Value> =
            tags.iter().map(|(key, value)| (key.clone(), Value::String(value.clone()))).collect();
        let request = json!({
            "ServiceNamespace": NAMESPACE,
            "ResourceId": resource_id,
            "ScalableDimension": DIMENSION,
            "MinCapacity": min,
            "MaxCapacity": max,
            "Tags": tags,
        });
        self.call("RegisterScalableTarget", &request, &format!("scalable target {resource_id}")).await.map(drop)
    }

    /// `application-autoscaling:DeregisterScalableTarget` (which deletes
    /// its policies too).
    pub async fn deregister_scalable_target(&self, resource_id: &str) -> Result<(), AwsError> {
        let request =
            json!({ "ServiceNamespace": NAMESPACE, "ResourceId": resource_id, "ScalableDimension": DIMENSION });
        self.call("DeregisterScalableTarget", &request, &format!("scalable target {resource_id}")).await.map(drop)
    }

    /// `application-autoscaling:DescribeScalingPolicies` of one ECS
    /// service, every page; target tracking on predefined metrics only.
    pub async fn describe_scaling_policies(&self, resource_id: &str) -> Result<Vec<TargetTracking>, AwsError> {
        let request =
            json!({ "ServiceNamespace": NAMESPACE, "ResourceId": resource_id, "ScalableDimension": DIMENSION });
        let pages =
            self.pages("DescribeScalingPolicies", request, &format!("scaling policies of {resource_id}")).await?;
        Ok(pages
            .iter()
            .flat_map(|page| page["ScalingPolicies"].as_array().cloned().unwrap_or_default())
            .filter_map(|policy| {
                let configuration = &policy["TargetTrackingScalingPolicyConfiguration"];
                Some(TargetTracking {
                    name: policy["PolicyName"].as_str()?.to_owned(),
                    resource_id: policy["ResourceId"].as_str()?.to_owned(),
                    metric: configuration["PredefinedMetricSpecification"]["PredefinedMetricType"]
                        .as_str()
                        .unwrap_or("custom")
                        .to_owned(),
                    target: configuration["TargetValue"].as_f64()?,
                    scale_out_cooldown_secs: configuration["ScaleOutCooldown"].as_u64().unwrap_or(0),
                    scale_in_cooldown_secs: configuration["ScaleInCooldown"].as_u64().unwrap_or(0),
                    arn: policy["PolicyARN"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    /// `application-autoscaling:PutScalingPolicy`: creates or replaces a
    /// target-tracking policy.
    pub async fn put_target_tracking(&self, policy: &TargetTracking) -> Result<(), AwsError> {
        let request = json!({
            "PolicyName": policy.name,
            "ServiceNamespace": NAMESPACE,
            "ResourceId": policy.resource_id,
            "ScalableDimension": DIMENSION,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": policy.target,
                "PredefinedMetricSpecification": { "PredefinedMetricType": policy.metric },
                "ScaleOutCooldown": policy.scale_out_cooldown_secs,
                "ScaleInCooldown": policy.scale_in_cooldown_secs,
                "DisableScaleIn": false,
            },
        });
        self.call("PutScalingPolicy", &request, &format!("scaling policy {}", policy.name)).await.map(drop)
    }

    /// `application-autoscaling:DeleteScalingPolicy`.
    pub async fn delete_scaling_policy(&self, name: &str, resource_id: &str) -> Result<(), AwsError> {
        let request = json!({
            "PolicyName": name,
            "ServiceNamespace": NAMESPACE,
            "ResourceId": resource_id,
            "ScalableDimension": DIMENSION,
        });
        self.call("DeleteScalingPolicy", &request, &format!("scaling policy {name}")).await.map(drop)
    }

    /// `application-autoscaling:DescribeScalingActivities`: the latest
    /// `limit` of one ECS service, newest first.
    pub async fn describe_scaling_activities(&self, resource_id: &str, limit: u32) -> Result<Vec<Activity>, AwsError> {
        let request = json!({
            "ServiceNamespace": NAMESPACE,
            "ResourceId": resource_id,
            "ScalableDimension": DIMENSION,
            "MaxResults": limit,
        });
        let answer =
            self.call("DescribeScalingActivities", &request, &format!("scaling activities of {resource_id}")).await?;
        let text = |activity: &Value, field: &str| activity[field].as_str().unwrap_or_default().to_owned();
        Ok(answer["ScalingActivities"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|activity| Activity {
                start: activity["StartTime"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| activity["StartTime"].as_f64().map(|secs| format!("{secs:.0} (Unix time)")))
                    .unwrap_or_default(),
                status: text(activity, "StatusCode"),
                description: text(activity, "Description"),
                cause: text(activity, "Cause"),
            })
            .collect())
    }

    /// Every page of a Describe call, following `NextToken`.
    async fn pages(&self, operation: &str, request: Value, resource: &str) -> Result<Vec<Value>, AwsError> {
        let mut pages = Vec::new();
        let mut request = request;
        loop {
            let page = self.call(operation, &request, resource).await?;
            let token = page["NextToken"].as_str().filter(|token| !token.is_empty()).map(str::to_owned);
            pages.push(page);
            match token {
                Some(token) => request["NextToken"] = Value::String(token),
                None => return Ok(pages),
            }
        }
    }

    async fn call(&self, operation: &str, request: &Value, resource: &str) -> Result<Value, AwsError> {
        self.client.call(operation, request, resource).await
    }
}
