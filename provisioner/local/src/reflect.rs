//! Learning a service's messages from the server itself (gRPC reflection),
//! so that requests can be written as JSON for any service, without
//! rebuilding the tool.

use anyhow::{Context, anyhow, bail};
use prost::Message;
use prost_reflect::{DescriptorPool, MethodDescriptor};
use prost_types::FileDescriptorProto;
use tonic::{
    body::Body,
    client::GrpcService,
    codegen::{Body as HttpBody, Bytes, StdError},
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

/// What a gRPC client can be built on: the discovery channel, or a tonic
/// channel to one address (over TLS, to a load balancer).
pub trait Channel:
    GrpcService<Body, Error = Self::Failure, ResponseBody = Self::Answer> + Clone + Send + 'static
{
    type Failure: Into<StdError>;
    type Answer: HttpBody<Data = Bytes, Error = Self::AnswerFailure> + Send + 'static;
    type AnswerFailure: Into<StdError> + Send;
}

impl<T, A> Channel for T
where
    T: GrpcService<Body, ResponseBody = A> + Clone + Send + 'static,
    T::Error: Into<StdError>,
    A: HttpBody<Data = Bytes> + Send + 'static,
    A::Error: Into<StdError> + Send,
{
    type Failure = T::Error;
    type Answer = A;
    type AnswerFailure = A::Error;
}

/// One reflection request; the files of the answer.
async fn ask<C: Channel>(
    client: &mut ServerReflectionClient<C>,
    request: MessageRequest,
    service_name: &str,
) -> anyhow::Result<Vec<FileDescriptorProto>> {
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .with_context(|| format!("asking the server about {service_name} by reflection"))?
        .into_inner();
    let answer = responses
        .message()
        .await
        .context("reading the reflection answer")?
        .and_then(|response| response.message_response)
        .ok_or_else(|| anyhow!("the server gave no reflection answer"))?;
    match answer {
        MessageResponse::FileDescriptorResponse(files) => files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                FileDescriptorProto::decode(bytes.as_slice()).context("a descriptor from the server does not decode")
            })
            .collect(),
        MessageResponse::ErrorResponse(error) => {
            bail!("the server does not know {service_name:?}: {} (is it the right target?)", error.error_message)
        }
        other => bail!("unexpected reflection answer: {other:?}"),
    }
}

/// The descriptor of `method` (`pkg.Service/Method`), asked of the server
/// behind `channel`.
pub async fn method<C: Channel>(channel: C, method: &str) -> anyhow::Result<MethodDescriptor> {
    let name = method.trim_start_matches('/');
    let (service_name, method_name) = name
        .split_once('/')
        .ok_or_else(|| anyhow!("method {name:?}: write it as package.Service/Method, e.g. rpc.Rpc/GetChampion"))?;
    let mut client = ServerReflectionClient::new(channel);
    // The file that defines the service, then every file it imports.
    let mut files: Vec<FileDescriptorProto> = Vec::new();
    let mut wanted = vec![MessageRequest::FileContainingSymbol(service_name.to_owned())];
    while let Some(request) = wanted.pop() {
        for file in ask(&mut client, request, service_name).await? {
            if files.iter().any(|known| known.name == file.name) {
                continue;
            }
            for dependency in &file.dependency {
                let known = files.iter().any(|known| known.name() == dependency);
                let queued = wanted
                    .iter()
                    .any(|queued| matches!(queued, MessageRequest::FileByFilename(name) if name == dependency));
                if !known && !queued {
                    wanted.push(MessageRequest::FileByFilename(dependency.clone()));
                }
            }
            files.push(file);
        }
    }
    // Imports before the files that import them.
    let mut pool = DescriptorPool::new();
    while !files.is_empty() {
        let ready = files
            .iter()
            .position(|file| file.dependency.iter().all(|dependency| pool.get_file_by_name(dependency).is_some()))
            .ok_or_else(|| anyhow!("the server's descriptors import files it does not describe"))?;
        pool.add_file_descriptor_proto(files.remove(ready)).context("the server's descriptors do not decode")?;
    }
    let service =
        pool.get_service_by_name(service_name).ok_or_else(|| anyhow!("the server has no service {service_name:?}"))?;
    let method = service.methods().find(|method| method.name() == method_name).ok_or_else(|| {
        let methods: Vec<String> = service.methods().map(|method| method.name().to_owned()).collect();
        anyhow!("{service_name} has no method {method_name:?} (it has: {})", methods.join(", "))
    })?;
    if method.is_client_streaming() || method.is_server_streaming() {
        bail!("{name} streams; only unary methods can be benchmarked");
    }
    Ok(method)
}
