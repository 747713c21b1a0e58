//! Starting the real `game-server` binary for a test.

#![allow(dead_code)]

use std::net::SocketAddr;

use contracts::rpc::rpc_client::RpcClient;
use test_support::{Process, free_addr, wait_serving};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::{Streaming, transport::Channel};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, ServerReflectionResponse, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest,
};

/// The binary under test, built by cargo for this test run.
pub const GAME_SERVER: &str = env!("CARGO_BIN_EXE_game-server");

/// A running game-server on a free loopback port.
pub struct GameServer {
    pub addr: SocketAddr,
    pub process: Process,
}

impl GameServer {
    /// Starts the server with `extra` flags and waits until it is SERVING.
    pub async fn start(extra: &[&str]) -> Self {
        let addr = free_addr();
        let addr_flag = addr.to_string();
        let mut args = vec!["serve", "--grpc-addr", &addr_flag];
        args.extend_from_slice(extra);
        let process = Process::start(GAME_SERVER, &args, &[]);
        wait_serving(addr).await;
        Self { addr, process }
    }

    /// A fresh connection to the server.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.expect("connect")
    }

    /// A game client on a fresh connection.
    pub async fn client(&self) -> RpcClient<Channel> {
        RpcClient::new(self.channel().await)
    }
}

/// Runs `game-server health ARGS` and returns its exit code and output.
pub fn health_command(args: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(GAME_SERVER)
        .arg("health")
        .args(args)
        .env_remove("GRPC_ADDR")
        .env_remove("HEALTH_ADDR")
        .output()
        .expect("run game-server health");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

/// A reflection stream whose request side stays open (while the sender
/// lives), answered once: a call that never ends on its own and holds its
/// connection open for as long as the server lets it.
pub async fn hold_open_stream(
    server: &GameServer,
) -> (mpsc::Sender<ServerReflectionRequest>, Streaming<ServerReflectionResponse>) {
    let (requests, request_stream) = mpsc::channel::<ServerReflectionRequest>(1);
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let call = tokio::spawn(async move {
        reflection.server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(request_stream)).await
    });
    requests
        .send(ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        })
        .await
        .unwrap();
    let mut responses = call.await.unwrap().expect("stream opened").into_inner();
    responses.next().await.expect("a first answer").expect("ok");
    (requests, responses)
}
