//! The transport of the AWS APIs provision speaks without an SDK crate
//! (the Query protocol of EC2 and ELB, the JSON of Application Auto
//! Scaling, ACM, CodeBuild and CodePipeline, S3's REST): a request signed
//! with SigV4 by the configured credentials, to the region's endpoint or
//! `--endpoint-url`, over rustls on ring, with connect and attempt
//! timeouts and the SDK clients' retries (standard mode, adaptive rate
//! limiting: see [`super::retry`]).

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::{
    http_request::{SignableBody, SignableRequest, SigningSettings, sign},
    sign::v4,
};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

use super::{
    error::{AwsError, Failure, describe},
    retry::{RetryState, Retryable, backoff, classify},
};

/// Attempts per call, the first included, as the SDK clients are set up.
const ATTEMPTS: u32 = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// Signs and sends requests to one AWS service.
#[derive(Clone, Debug)]
pub struct SignedClient {
    http: Client<Https, Full<Bytes>>,
    endpoint: String,
    signing_name: &'static str,
    region: String,
    credentials: SharedCredentialsProvider,
    /// The retry quota and rate limiter every call of this client shares.
    retry: RetryState,
}

/// One request: its method and path, its headers beside the content type,
/// and its body.
pub struct Request<'a> {
    /// `POST` for the Query and JSON protocols.
    pub method: &'a str,
    /// The path and query after the endpoint (`""` for the Query and JSON
    /// protocols, `bucket?tagging` for S3).
    pub path: &'a str,
    /// `Content-Type`.
    pub content_type: &'a str,
    /// Further headers, signed with the rest (e.g. `X-Amz-Target`).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a str,
}

impl SignedClient {
    /// A client of the service whose endpoint host starts with
    /// `endpoint_prefix` and whose requests are signed for `signing_name`,
    /// with the SDK configuration's credentials, region and endpoint
    /// override.
    pub fn new(
        config: &aws_types::SdkConfig,
        region: &str,
        endpoint_prefix: &str,
        signing_name: &'static str,
    ) -> anyhow::Result<Self> {
        let credentials =
            config.credentials_provider().ok_or_else(|| anyhow::anyhow!("no AWS credentials provider"))?;
        let endpoint = config.endpoint_url().map_or_else(
            || format!("https://{endpoint_prefix}.{region}.amazonaws.com/"),
            |url| format!("{}/", url.trim_end_matches('/')),
        );
        let tls = rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
            .with_safe_default_protocol_versions()?;
        let tls = hyper_rustls::ConfigBuilderExt::with_native_roots(tls)?.with_no_client_auth();
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            endpoint,
            signing_name,
            region: region.to_owned(),
            credentials,
            retry: RetryState::default(),
        })
    }

    /// Sends `request`, retried while the failure may pass and the quota
    /// allows, paced once AWS throttles; `answer` reads the HTTP status and body into the result
    /// or the failure AWS reported. `action` (`ec2:DescribeVpcs`) and
    /// `resource` name the call in errors.
    pub async fn send<T>(
        &self,
        request: &Request<'_>,
        action: &str,
        resource: &str,
        answer: impl Fn(u16, &str) -> Result<T, Failure>,
    ) -> Result<T, AwsError> {
        let mut retries = 0;
        let mut last_cost = None;
        loop {
            self.retry.before_attempt().await;
            let failure = match tokio::time::timeout(ATTEMPT_TIMEOUT, self.attempt(request)).await {
                Ok(Ok((status, body))) => match answer(status, &body) {
                    Ok(value) => {
                        self.retry.after_attempt(false);
                        self.retry.succeeded(last_cost);
                        return Ok(value);
                    }
                    Err(failure) => failure,
                },
                Ok(Err(failure)) => failure,
                Err(_) => Failure::Transport(format!("no answer within {ATTEMPT_TIMEOUT:?}")),
            };
            let kind = classify(&failure);
            self.retry.after_attempt(kind == Retryable::Throttling);
            let cost = match kind {
                Retryable::No => None,
                _ if retries + 1 >= ATTEMPTS => None,
                _ => self.retry.take_retry(kind),
            };
            let Some(cost) = cost else { return Err(describe(failure, action, resource)) };
            last_cost = Some(cost);
            retries += 1;
            super::verbose::retrying(retries + 1, action, resource, &failure);
            tokio::time::sleep(backoff(kind, retries, fastrand::f64())).await;
        }
    }

    /// One signed POST: the answer's status and body.
    async fn attempt(&self, request: &Request<'_>) -> Result<(u16, String), Failure> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|error| Failure::Credentials(super::error::causes(&error)))?;
        let identity: Identity = credentials.into();
        let mut headers = vec![("content-type", request.content_type)];
        headers.extend(request.headers.iter().copied());
        let url = format!("{}{}", self.endpoint, request.path);
        let signable = SignableRequest::new(
            request.method,
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(request.body.as_bytes()),
        )
        .map_err(|error| Failure::Transport(error.to_string()))?;
        let settings = SigningSettings::default();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.signing_name)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|error| Failure::Transport(error.to_string()))?
            .into();
        let (instructions, _) =
            sign(signable, &params).map_err(|error| Failure::Transport(error.to_string()))?.into_parts();
        let mut builder = http::Request::builder().method(request.method).uri(&url);
        for (name, value) in &headers {
            builder = builder.header(*name, *value);
        }
        let mut http_request = builder
            .body(Full::new(Bytes::from(request.body.to_owned())))
            .map_err(|error| Failure::Transport(error.to_string()))?;
        instructions.apply_to_request_http1x(&mut http_request);

        let response =
            self.http.request(http_request).await.map_err(|error| Failure::Transport(super::error::causes(&error)))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|error| Failure::Transport(error.to_string()))?;
        Ok((status, String::from_utf8_lossy(&body.to_bytes()).into_owned()))
    }
}
