//! `provision call`: one unary call through discovery, with the request
//! written as JSON (turned into protobuf with the server's reflection),
//! printing the answer and which replica served it, so a newcomer sees the
//! balancing at work. Or one call over TLS to a load balancer, as a client
//! outside the VPC makes it.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::{Certificate, ClientTlsConfig, Endpoint},
};

use service_runtime::causes;

use crate::{local, reflect, spec};

/// Flags of `provision call` (the binary adds the stack file's and AWS's,
/// which `--ingress` needs).
#[derive(Debug, Args)]
pub struct CallArgs {
    /// A service of the stack file (`game-server`), any discovery target
    /// (`dns:///game-server.local:5000`, `127.0.0.1:5000`), or an HTTPS
    /// URL (`https://api.example.com:443`: TLS to one address, as a client
    /// of a load balancer).
    pub target: String,
    /// The method: `rpc.Rpc/GetChampion`; its messages come from the server's
    /// reflection.
    pub method: String,
    /// The request as JSON (proto3 JSON names, e.g. `{"championId": 1}` or
    /// `{"champion_id": 1}`); default `{}`. Or give it with -d.
    #[arg(conflicts_with = "data")]
    pub json: Option<String>,
    /// The request as JSON, as `bench -d` takes it.
    #[arg(short, long)]
    pub data: Option<String>,
    /// Call the service through its load balancer on AWS
    /// (`[service.ingress]`): its DNS name over TLS, the server verified
    /// against its certificate's name. Needs AWS credentials, as `plan`.
    #[arg(long)]
    pub ingress: bool,
    /// The name the server's certificate must be for, when it is not the
    /// host called (a load balancer's DNS name with a certificate for your
    /// domain).
    #[arg(long)]
    pub server_name: Option<String>,
    /// A PEM file of certificate authorities to trust besides the system's
    /// (a private CA, a self-signed certificate).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// The DNS server of the local stack, for a service named by itself.
    /// Default: the one the running stack of the stack file's app serves.
    #[arg(long, env = "PROVISION_DNS_ADDR")]
    pub dns_addr: Option<SocketAddr>,
    /// How long the call may take, waiting for an endpoint included
    /// (`500ms`, `5s`, `1m`).
    #[arg(long, value_parser = provision_cli::duration::parse, default_value = "5s")]
    pub timeout: Duration,
    /// The old spelling of --timeout, in milliseconds.
    #[arg(long, hide = true, conflicts_with = "timeout")]
    pub timeout_ms: Option<u64>,
    /// `text`: the answer as JSON, and on stderr who served it; `json`:
    /// one document with both (docs/json-output.md).
    #[arg(short, long, value_enum, default_value_t = local::Output::Text)]
    pub output: local::Output,
}

impl CallArgs {
    /// The request's JSON, however it was given.
    fn body(&self) -> &str {
        self.data.as_deref().or(self.json.as_deref()).unwrap_or("{}")
    }

    /// The call's deadline, however it was given.
    fn deadline(&self) -> Duration {
        self.timeout_ms.map_or(self.timeout, Duration::from_millis)
    }
}

/// The discovery target `target` means: a stack service's name becomes its
/// name in the local stack's DNS (`dns_addr`, else the running stack's);
/// anything else is a target already.
pub(crate) async fn resolve_target(
    target: &str,
    stack: &std::path::Path,
    dns_addr: Option<SocketAddr>,
) -> anyhow::Result<String> {
    if target.contains(':') || target.contains('/') {
        return Ok(target.to_owned());
    }
    let spec = spec::load(stack)?;
    let service = spec.services.iter().find(|service| service.name == target).ok_or_else(|| {
        let names: Vec<&str> = spec.services.iter().map(|service| service.name.as_str()).collect();
        anyhow!("{}: no service {target:?} (services: {})", stack.display(), names.join(", "))
    })?;
    let dns_addr = match dns_addr {
        Some(addr) => addr,
        None => local::running_dns(&spec.app).await?,
    };
    Ok(format!("dns://{dns_addr}/{}:{}", service.dns_name(&spec.namespace), service.port))
}

/// A load balancer's HTTPS address, found on AWS for `--ingress`.
#[derive(Debug, Clone)]
pub struct TlsEndpoint {
    /// `https://DNS-NAME:443`.
    pub url: String,
    /// The name its certificate is for, when it is not the host called.
    pub server_name: Option<String>,
}

/// Runs `provision call`: through discovery, with a service's name looked
/// up in `stack`, or over TLS to `ingress` (what `--ingress` found) or to an
/// `https://` target.
pub async fn main(args: CallArgs, stack: &Path, ingress: Option<TlsEndpoint>) -> anyhow::Result<()> {
    let timeout = args.deadline();
    if let Some(endpoint) = ingress {
        return call_over_tls(&args, endpoint, timeout).await;
    }
    if args.target.starts_with("https://") {
        let endpoint = TlsEndpoint { url: args.target.clone(), server_name: None };
        return call_over_tls(&args, endpoint, timeout).await;
    }
    let target = resolve_target(&args.target, stack, args.dns_addr).await?;
    let channel = discovery::Builder::new(&target)?.deadline(timeout).connect().await?;
    // Picks before the call itself: reflection's lookups are picks too.
    let mut before = HashMap::new();
    let result = invoke(channel.clone(), &args, &target, timeout, || {
        before = picks(&channel);
    })
    .await?;
    let attempts: Vec<String> = picks(&channel)
        .into_iter()
        .filter(|(addr, picks)| picks > before.get(addr).unwrap_or(&0))
        .map(|(addr, _)| addr)
        .collect();
    let endpoints = channel.endpoints().len();
    let answer = result.map_err(|status| {
        anyhow!("{:?}: {} (tried {}; {target})", status.code(), status.message(), attempts.join(", "))
    })?;
    if args.output.is_json() {
        return print_json(&answer, &attempts, &target, endpoints);
    }
    println!("{}", serde_json::to_string_pretty(&answer)?);
    // More than one: the channel re-sent a call that never reached the
    // first endpoint it picked (a connection closing under it).
    match attempts.as_slice() {
        [served] => eprintln!("served by {served} ({target}, {endpoints} endpoints)"),
        [] => eprintln!("served through {target} ({endpoints} endpoints)"),
        several => eprintln!(
            "served by one of {}: the channel re-sent the call after a connection closed under it ({target}, \
             {endpoints} endpoints)",
            several.join(", ")
        ),
    }
    Ok(())
}

/// `call -o json`'s document (docs/schemas/call.json): the answer, and
/// the replica that served it when the call went to exactly one.
fn print_json(answer: &DynamicMessage, attempts: &[String], target: &str, endpoints: usize) -> anyhow::Result<()> {
    let served_by = match attempts {
        [served] => Some(served),
        _ => None,
    };
    let document = serde_json::json!({
        "response": answer,
        "served_by": served_by,
        "attempts": attempts,
        "target": target,
        "endpoints": endpoints,
    });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}

/// How many calls the channel has sent to each endpoint so far.
fn picks(channel: &discovery::DiscoveryChannel) -> HashMap<String, u64> {
    channel.endpoints().iter().map(|endpoint| (endpoint.addr.to_string(), endpoint.picks)).collect()
}

/// The call over TLS to one address: an `https://` target, or a service's
/// load balancer on AWS (`--ingress`). The load balancer picks the task.
async fn call_over_tls(args: &CallArgs, endpoint: TlsEndpoint, timeout: Duration) -> anyhow::Result<()> {
    let TlsEndpoint { url, server_name: certificate_name } = endpoint;
    let uri: tonic::transport::Uri = url.parse().with_context(|| format!("{url:?} is not a URL"))?;
    let host = uri.host().unwrap_or_default().to_owned();
    let server_name = args.server_name.clone().or(certificate_name).unwrap_or_else(|| host.clone());
    if server_name.starts_with("*.") {
        bail!("the certificate is for {server_name}: pass --server-name with the name you call the service by");
    }
    let mut tls = ClientTlsConfig::new().with_native_roots().domain_name(&server_name);
    if let Some(path) = &args.ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("cannot read --ca-cert {}", path.display()))?;
        tls = tls.ca_certificate(Certificate::from_pem(pem));
    }
    let channel = Endpoint::from_shared(url.clone())?
        .tls_config(tls)
        .with_context(|| format!("TLS settings for {url}"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|error| anyhow!("{url} (TLS, server name {server_name}): {}", causes(&error)))?;
    let target = format!("{url}, TLS for {server_name}");
    let answer = invoke(channel, args, &target, timeout, || ())
        .await?
        .map_err(|status| anyhow!("{:?}: {} ({target})", status.code(), status.message()))?;
    if args.output.is_json() {
        // The load balancer picked the task: who served is not known here.
        return print_json(&answer, &[], &target, 1);
    }
    println!("{}", serde_json::to_string_pretty(&answer)?);
    eprintln!("served through {target}");
    Ok(())
}

/// Asks the server behind `channel` for the method's messages by
/// reflection, then (after `before_call`) makes the call; the answer, or
/// the call's status.
async fn invoke<C: reflect::Channel>(
    channel: C,
    args: &CallArgs,
    target: &str,
    timeout: Duration,
    before_call: impl FnOnce(),
) -> anyhow::Result<Result<DynamicMessage, Status>> {
    // The server describes its own messages: any service can be called.
    // A little past the channel's own deadline, whose error says more.
    let method =
        tokio::time::timeout(timeout + Duration::from_millis(500), reflect::method(channel.clone(), &args.method))
            .await
            .map_err(|_| anyhow!("{target}: no endpoint answered reflection within {timeout:?}"))??;
    let request = DynamicMessage::deserialize(method.input(), &mut serde_json::Deserializer::from_str(args.body()))
        .with_context(|| format!("the request is not a valid {} in JSON", method.input().full_name()))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| anyhow!("{target}: {}", error.into()))?;
    let path: PathAndQuery = format!("/{}/{}", method.parent_service().full_name(), method.name()).parse()?;
    let mut call = tonic::Request::new(request);
    call.set_timeout(timeout);
    before_call();
    Ok(grpc.unary(call, path, DynamicCodec { output: method.output() }).await.map(tonic::Response::into_inner))
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
