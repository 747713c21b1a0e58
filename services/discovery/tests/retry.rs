//! The opt-in retry policy: idempotent methods are retried on another
//! endpoint when one answers UNAVAILABLE; others are not.

mod common;

use std::net::SocketAddr;

use contracts::rpc::{
    Empty, GetBattleFieldResponse, GetChampionRequest, GetChampionResponse, ListChampionsResponse, ReportMatchRequest,
    ReportMatchResponse,
    rpc_client::RpcClient,
    rpc_server::{Rpc, RpcServer},
};
use discovery::{Builder, RetryPolicy};
use tonic::{Code, Request, Response, Status};

/// A game server that is up but cannot serve (its own dependency is down).
#[derive(Clone, Copy)]
struct Overloaded;

#[tonic::async_trait]
impl Rpc for Overloaded {
    async fn get_champion(&self, _: Request<GetChampionRequest>) -> Result<Response<GetChampionResponse>, Status> {
        Err(Status::unavailable("overloaded"))
    }
    async fn list_champions(&self, _: Request<Empty>) -> Result<Response<ListChampionsResponse>, Status> {
        Err(Status::unavailable("overloaded"))
    }
    async fn get_battle_field(&self, _: Request<Empty>) -> Result<Response<GetBattleFieldResponse>, Status> {
        Err(Status::unavailable("overloaded"))
    }
    async fn report_match(&self, _: Request<ReportMatchRequest>) -> Result<Response<ReportMatchResponse>, Status> {
        Err(Status::unavailable("overloaded"))
    }
}

async fn start_in_process<S: Rpc>(service: S) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder().add_service(RpcServer::new(service)).serve_with_incoming(incoming),
    );
    addr
}

async fn fleet() -> (SocketAddr, SocketAddr, test_support::Process) {
    let bad = start_in_process(Overloaded).await;
    let good = test_support::free_addr();
    let good_flag = good.to_string();
    let process = test_support::Process::start(
        test_support::workspace_binary("game-server", "game-server"),
        &["--grpc-addr", &good_flag],
        &[],
    );
    test_support::wait_serving(good).await;
    (bad, good, process)
}

#[tokio::test]
async fn idempotent_methods_are_retried_on_another_endpoint() {
    let (bad, good, _process) = fleet().await;
    // No health service on the in-process server: it counts as serving.
    let channel = Builder::new(&format!("ipv4:{bad},{good}"))
        .unwrap()
        .retry_policy(RetryPolicy::idempotent(["rpc.Rpc/GetChampion"], 3))
        .connect()
        .await
        .unwrap();
    let mut client = RpcClient::new(channel.clone());
    common::wait_ready(&channel, 2).await;

    for _ in 0..20 {
        client.get_champion(GetChampionRequest { champion_id: 1 }).await.expect("retried onto the good endpoint");
    }
    let picks_of_bad = channel.endpoints().iter().find(|status| status.addr == bad).unwrap().picks;
    assert!(picks_of_bad > 0, "the overloaded endpoint was tried");

    // ListChampions is not in the policy: its UNAVAILABLE comes back.
    let mut failures = 0;
    for _ in 0..20 {
        if let Err(status) = client.list_champions(Empty {}).await {
            assert_eq!(status.code(), Code::Unavailable);
            assert_eq!(status.message(), "overloaded");
            failures += 1;
        }
    }
    assert!(failures > 0, "calls outside the policy are not retried");
}
