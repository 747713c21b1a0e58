//! The one ACM call provision makes: the name a load balancer's certificate
//! is for, which `provision call --ingress` verifies the server against.

use serde_json::json;

use super::{error::AwsError, json11::JsonClient};

/// An ACM client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct Acm {
    client: JsonClient,
}

impl Acm {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override.
    pub fn new(config: &aws_types::SdkConfig, region: &str) -> anyhow::Result<Self> {
        Ok(Self { client: JsonClient::new(config, region, "acm", "CertificateManager")? })
    }

    /// `acm:DescribeCertificate`: the certificate's domain name.
    pub async fn domain_name(&self, arn: &str) -> Result<Option<String>, AwsError> {
        let answer = self
            .client
            .call("DescribeCertificate", &json!({ "CertificateArn": arn }), &format!("certificate {arn}"))
            .await?;
        Ok(answer["Certificate"]["DomainName"].as_str().map(str::to_owned))
    }
}
