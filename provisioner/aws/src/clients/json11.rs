//! AWS's JSON protocol (1.1, and 1.0 where an API speaks it), shared by the
//! APIs provision speaks without an SDK crate (Application Auto Scaling,
//! ACM, CodeBuild, CodePipeline, CodeConnections): a POST of the request as
//! JSON with `X-Amz-Target: <Prefix>.<Operation>` over [`super::signed`], a
//! JSON answer, and the error in it (`__type`, `message`) when it failed.

use serde_json::Value;

use super::{
    error::{AwsError, Failure},
    signed::{Request, SignedClient},
};

/// A client of one JSON 1.1 API in one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct JsonClient {
    client: SignedClient,
    /// How IAM names the service's actions, its endpoint prefix and signing
    /// name (`application-autoscaling`, `acm`).
    service: &'static str,
    /// What `X-Amz-Target` starts with (`AnyScaleFrontendService`).
    target_prefix: &'static str,
    /// `application/x-amz-json-1.1`, or 1.0 for the APIs that speak it.
    content_type: &'static str,
}

impl JsonClient {
    /// A client of the API `service` whose targets start with
    /// `target_prefix`.
    pub fn new(
        config: &aws_types::SdkConfig,
        region: &str,
        service: &'static str,
        target_prefix: &'static str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: SignedClient::new(config, region, service, service)?,
            service,
            target_prefix,
            content_type: "application/x-amz-json-1.1",
        })
    }

    /// The same client speaking JSON 1.0 (CodeConnections): the content
    /// type differs, nothing else.
    pub fn json_1_0(self) -> Self {
        Self { content_type: "application/x-amz-json-1.0", ..self }
    }

    /// One call, retried with backoff while the failure is transient; the
    /// answer as JSON.
    pub async fn call(&self, operation: &str, request: &Value, resource: &str) -> Result<Value, AwsError> {
        let target = format!("{}.{operation}", self.target_prefix);
        let body = request.to_string();
        let request = Request {
            method: "POST",
            path: "",
            content_type: self.content_type,
            headers: &[("x-amz-target", &target)],
            body: &body,
        };
        self.client.send(&request, &format!("{}:{operation}", self.service), resource, answer).await
    }
}

/// A JSON 1.1 answer, or the error in it (`__type`, `message`).
fn answer(status: u16, text: &str) -> Result<Value, Failure> {
    let document: Value = if text.trim().is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        match serde_json::from_str(text) {
            Ok(document) => document,
            // An error page of a proxy or an emulator that lacks the call.
            Err(_) if !(200..300).contains(&status) => {
                let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
                return Err(Failure::Service { status, code: None, message: format!("HTTP {status}: {text:.120}") });
            }
            Err(error) => {
                return Err(Failure::Transport(format!(
                    "HTTP {status} with an answer that is not JSON ({error}): {text:.200}"
                )));
            }
        }
    };
    if (200..300).contains(&status) {
        return Ok(document);
    }
    // `com.amazonaws...#ValidationException` or plain `ValidationException`.
    let code = document["__type"].as_str().map(|kind| kind.rsplit('#').next().unwrap_or(kind).to_owned());
    let message = document["message"]
        .as_str()
        .or_else(|| document["Message"].as_str())
        .map_or_else(|| format!("HTTP {status}"), str::to_owned);
    Err(Failure::Service { status, code, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_from_the_json_answer() {
        let Err(Failure::Service { status, code, message }) = answer(
            400,
            r#"{"__type": "com.amazonaws.applicationautoscaling#ValidationException", "message": "no such service"}"#,
        ) else {
            panic!("an error");
        };
        assert_eq!((status, code.as_deref(), message.as_str()), (400, Some("ValidationException"), "no such service"));
        assert!(matches!(answer(503, "<html>"), Err(Failure::Service { status: 503, code: None, .. })));
        assert!(matches!(answer(200, "<html>"), Err(Failure::Transport(_))));
        assert_eq!(answer(200, "").unwrap(), serde_json::json!({}));
    }
}
