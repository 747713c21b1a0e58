//! `provision call`: one unary call through discovery, with the request
//! written as JSON, printing the answer and which replica served it, so a
//! newcomer sees the balancing at work.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
};

use crate::{local::DEFAULT_DNS_ADDR, spec};

/// Flags of `provision call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// A service of the stack file (`game-server`), or any discovery target
    /// (`dns:///game-server.local:5000`, `127.0.0.1:5000`).
    pub target: String,
    /// The method: `rpc.Rpc/GetChampion`.
    pub method: String,
    /// The request as JSON (proto3 JSON names, e.g. `{"championId": 1}` or
    /// `{"champion_id": 1}`).
    #[arg(default_value = "{}")]
    pub json: String,
    /// The stack file, to find a service named by itself.
    #[arg(long, env = "PROVISION_STACK", default_value = "stack.toml")]
    pub stack: PathBuf,
    /// The DNS server of the local stack, for a service named by itself.
    #[arg(long, env = "PROVISION_DNS_ADDR", default_value = DEFAULT_DNS_ADDR)]
    pub dns_addr: SocketAddr,
    /// Milliseconds the call may take, waiting for an endpoint included.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
}

/// The discovery target `target` means: a stack service's name becomes its
/// name in the local stack's DNS; anything else is a target already.
pub(crate) fn resolve_target(target: &str, stack: &std::path::Path, dns_addr: SocketAddr) -> anyhow::Result<String> {
    if target.contains(':') || target.contains('/') {
        return Ok(target.to_owned());
    }
    let spec = spec::load(stack)?;
    let service = spec.services.iter().find(|service| service.name == target).ok_or_else(|| {
        let names: Vec<&str> = spec.services.iter().map(|service| service.name.as_str()).collect();
        anyhow!("{}: no service {target:?} (services: {})", stack.display(), names.join(", "))
    })?;
    Ok(format!("dns://{dns_addr}/{}:{}", service.dns_name(&spec.namespace), service.port))
}

/// Runs `provision call`.
pub async fn main(args: CallArgs) -> anyhow::Result<()> {
    let target = resolve_target(&args.target, &args.stack, args.dns_addr)?;
    let method = find_method(&args.method)?;
    let request = DynamicMessage::deserialize(method.input(), &mut serde_json::Deserializer::from_str(&args.json))
        .with_context(|| format!("the request is not a valid {} in JSON", method.input().full_name()))?;

    let timeout = Duration::from_millis(args.timeout_ms);
    let channel = discovery::Builder::new(&target)?.deadline(timeout).connect().await?;
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.map_err(|error| anyhow!("{target}: {error}"))?;
    let path: PathAndQuery = format!("/{}/{}", method.parent_service().full_name(), method.name()).parse()?;
    let mut call = tonic::Request::new(request);
    call.set_timeout(timeout);
    let result = grpc.unary(call, path, DynamicCodec { output: method.output() }).await;

    let served_by: Vec<String> = channel
        .endpoints()
        .iter()
        .filter(|endpoint| endpoint.picks > 0)
        .map(|endpoint| endpoint.addr.to_string())
        .collect();
    let endpoints = channel.endpoints().len();
    match result {
        Ok(response) => {
            let json = serde_json::to_string_pretty(&response.into_inner())?;
            println!("{json}");
            eprintln!("served by {} ({target}, {endpoints} endpoints)", served_by.join(" then "));
            Ok(())
        }
        Err(status) => {
            bail!("{:?}: {} (sent to {}; {target})", status.code(), status.message(), served_by.join(" then "))
        }
    }
}

/// The method `name` (`pkg.Service/Method`) among the stack's contracts.
fn find_method(name: &str) -> anyhow::Result<MethodDescriptor> {
    let pool =
        DescriptorPool::decode(contracts::FILE_DESCRIPTOR_SET).context("the built-in contracts do not decode")?;
    let name = name.trim_start_matches('/');
    let (service_name, method_name) = name
        .split_once('/')
        .or_else(|| name.rsplit_once('.'))
        .ok_or_else(|| anyhow!("method {name:?}: write it as package.Service/Method, e.g. rpc.Rpc/GetChampion"))?;
    let service = pool.get_service_by_name(service_name).ok_or_else(|| {
        let services: Vec<String> = pool.services().map(|service| service.full_name().to_owned()).collect();
        anyhow!("no service {service_name:?} (known: {})", services.join(", "))
    })?;
    let method = service.methods().find(|method| method.name() == method_name).ok_or_else(|| {
        let methods: Vec<String> = service.methods().map(|method| method.name().to_owned()).collect();
        anyhow!("{service_name} has no method {method_name:?} (it has: {})", methods.join(", "))
    })?;
    if method.is_client_streaming() || method.is_server_streaming() {
        bail!("{name} streams; provision call makes unary calls only");
    }
    Ok(method)
}

/// Encodes any message and decodes the method's output type.
pub(crate) struct DynamicCodec {
    pub(crate) output: MessageDescriptor,
}

pub(crate) struct DynamicEncoder;
pub(crate) struct DynamicDecoder(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.output.clone())
    }
}

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|error| Status::internal(format!("cannot encode the request: {error}")))
    }
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|error| Status::internal(format!("cannot decode the response: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_found_by_their_full_names() {
        assert_eq!(find_method("rpc.Rpc/GetChampion").unwrap().name(), "GetChampion");
        assert_eq!(find_method("/ranking.v1.Ranking/GetTop").unwrap().name(), "GetTop");
        assert_eq!(find_method("rpc.Rpc.ListChampions").unwrap().name(), "ListChampions");
        assert!(find_method("rpc.Rpc/Nope").unwrap_err().to_string().contains("it has: GetChampion"));
        assert!(find_method("nope.Svc/X").unwrap_err().to_string().contains("known:"));
    }
}
