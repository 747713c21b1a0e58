//! The one CodeConnections call provision makes: whether the pipeline's
//! connection to the repository's host can be used (`provision pipeline
//! run` checks before starting a run). A connection of the older
//! `codestar-connections:` prefix is asked through the same API; where that
//! is refused, the run goes on unchecked and its source stage says what is
//! wrong with the connection.

use aws_sdk_codeconnections::Client;

use super::error::{AwsError, classify};

/// A CodeConnections client for one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct Connections {
    client: Client,
}

impl Connections {
    /// A client with the SDK configuration's credentials, region and
    /// endpoint override.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self { client: crate::clients::verbose::sdk_client!(aws_sdk_codeconnections, config) }
    }

    /// `codeconnections:GetConnection`: its status (`AVAILABLE`, `PENDING`,
    /// `ERROR`).
    pub async fn status(&self, arn: &str) -> Result<String, AwsError> {
        let answer = self
            .client
            .get_connection()
            .connection_arn(arn)
            .send()
            .await
            .map_err(|error| classify(error, "codeconnections:GetConnection", &format!("connection {arn}")))?;
        Ok(answer
            .connection()
            .and_then(|connection| connection.connection_status())
            .map(|status| status.as_str().to_owned())
            .unwrap_or_default())
    }
}
