//! The AWS clients, configured once: the endpoint override, the region and
//! a rustls-on-ring HTTP client (the SDK's default client would pull in a C
//! crypto build). Every service through its SDK crate, but EC2, whose
//! crate alone is most of a build: that one is ours (`ec2.rs` over
//! `query.rs` and `signed.rs`), checked against botocore's model.

pub mod acm;
pub mod app_autoscaling;
pub mod codebuild;
pub mod codepipeline;
pub mod connections;
pub mod ec2;
pub mod ecs;
pub mod elbv2;
pub mod error;
pub mod iam;
pub mod query;
pub mod retry;
pub mod s3;
pub mod signed;
pub mod verbose;

use std::time::Duration;

use anyhow::{Context, bail};
use aws_config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::{Builder, tls};

/// One client per AWS service the provisioner talks to, sharing one
/// configuration.
#[derive(Clone, Debug)]
pub struct Clients {
    /// The region every client calls.
    pub region: String,
    pub ecs: aws_sdk_ecs::Client,
    pub cloud_map: aws_sdk_servicediscovery::Client,
    pub ec2: ec2::Ec2,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub sts: aws_sdk_sts::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub scaling: app_autoscaling::AppAutoScaling,
    pub elb: elbv2::Elbv2,
    pub acm: acm::Acm,
    pub s3: s3::S3,
    pub codebuild: codebuild::CodeBuild,
    pub codepipeline: codepipeline::CodePipeline,
    pub connections: connections::Connections,
}

/// Where the clients point.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// `--endpoint-url` / `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// `--region`, else the stack's, else the configuration chain's.
    pub region: Option<String>,
}

impl Clients {
    /// Loads credentials and the region the usual way (environment,
    /// profile, container or instance role) and builds every client.
    pub async fn connect(target: &Target) -> anyhow::Result<Self> {
        let http_client =
            Builder::new().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring)).build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            // Adaptive retries back off on throttling and slow the client
            // down, on top of retrying transient errors.
            .retry_config(RetryConfig::adaptive().with_max_attempts(5).with_max_backoff(Duration::from_secs(10)))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(url) = &target.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = &target.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let config = loader.load().await;
        let Some(region) = config.region().map(|region| region.to_string()) else {
            bail!(
                "no AWS region: set `region` under [aws] in the stack file, pass --region, or set AWS_REGION \
                 (or a region in your AWS profile)"
            );
        };
        if config.credentials_provider().is_none() {
            bail!("no AWS credentials provider is configured");
        }
        Ok(Self {
            ec2: ec2::Ec2::new(&config, &region)?,
            scaling: app_autoscaling::AppAutoScaling::new(&config),
            elb: elbv2::Elbv2::new(&config),
            acm: acm::Acm::new(&config),
            s3: s3::S3::new(&config, &region, target.endpoint_url.is_some()),
            codebuild: codebuild::CodeBuild::new(&config),
            codepipeline: codepipeline::CodePipeline::new(&config),
            connections: connections::Connections::new(&config),
            region,
            ecs: verbose::sdk_client!(aws_sdk_ecs, &config),
            cloud_map: verbose::sdk_client!(aws_sdk_servicediscovery, &config),
            iam: verbose::sdk_client!(aws_sdk_iam, &config),
            logs: verbose::sdk_client!(aws_sdk_cloudwatchlogs, &config),
            ecr: verbose::sdk_client!(aws_sdk_ecr, &config),
            sts: verbose::sdk_client!(aws_sdk_sts, &config),
            elasticache: verbose::sdk_client!(aws_sdk_elasticache, &config),
            secrets: verbose::sdk_client!(aws_sdk_secretsmanager, &config),
        })
    }

    /// The account the credentials belong to; the first call, so it is also
    /// where missing or rejected credentials are reported.
    pub async fn account(&self) -> anyhow::Result<String> {
        Ok(self.identity().await?.0)
    }

    /// The caller's account and ARN, from one `GetCallerIdentity`.
    pub async fn identity(&self) -> anyhow::Result<(String, String)> {
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|error| error::explain(error, "sts:GetCallerIdentity", "the caller's identity"))?;
        let account = identity.account().map(str::to_owned).context("STS GetCallerIdentity returned no account")?;
        Ok((account, identity.arn().unwrap_or("an unknown identity").to_owned()))
    }
}
