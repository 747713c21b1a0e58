//! The one ACM call provision makes: the name a load balancer's certificate
//! is for, which `provision call --ingress` verifies the server against.

use aws_sdk_acm::Client;

use super::error::{AwsError, classify};

/// An ACM client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct Acm {
    client: Client,
}

impl Acm {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self { client: crate::clients::verbose::sdk_client!(aws_sdk_acm, config) }
    }

    /// `acm:DescribeCertificate`: the certificate's domain name.
    pub async fn domain_name(&self, arn: &str) -> Result<Option<String>, AwsError> {
        let answer = self
            .client
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|error| classify(error, "acm:DescribeCertificate", &format!("certificate {arn}")))?;
        Ok(answer.certificate().and_then(|certificate| certificate.domain_name()).map(str::to_owned))
    }
}
