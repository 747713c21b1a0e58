//! `provision call`: one unary call through discovery, with the request
//! written as JSON (turned into protobuf with the server's reflection), printing the answer and which replica served it, so a
//! newcomer sees the balancing at work.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
};

use crate::{local::DEFAULT_DNS_ADDR, reflect, spec};

/// Flags of `provision call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// A service of the stack file (`game-server`), or any discovery target
    /// (`dns:///game-server.local:5000`, `127.0.0.1:5000`).
    pub target: String,
    /// The method: `rpc.Rpc/GetChampion`; its messages come from the server's
    /// reflection.
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
    let timeout = Duration::from_millis(args.timeout_ms);
    let channel = discovery::Builder::new(&target)?.deadline(timeout).connect().await?;
    // The server describes its own messages: any service can be called.
    // A little past the channel's own deadline, whose error says more.
    let method =
        tokio::time::timeout(timeout + Duration::from_millis(500), reflect::method(channel.clone(), &args.method))
            .await
            .map_err(|_| anyhow!("{target}: no endpoint answered reflection within {timeout:?}"))??;
    let request = DynamicMessage::deserialize(method.input(), &mut serde_json::Deserializer::from_str(&args.json))
        .with_context(|| format!("the request is not a valid {} in JSON", method.input().full_name()))?;
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
