//! ReportMatch end to end: game-server -> discovery (DNS) -> ranking, both
//! real binaries, and what happens when the ranking service is gone.

mod common;

use std::time::Duration;

use common::GAME_SERVER;
use contracts::rpc::{GetChampionRequest, ReportMatchRequest, rpc_client::RpcClient};
use local_dns::{DnsServer, Registry};
use test_support::{Process, free_addr, free_addr_on, wait_serving, workspace_binary};
use tonic::{Code, transport::Channel};

struct Stack {
    _dns: DnsServer,
    ranking: Process,
    _game: Process,
    game: RpcClient<Channel>,
}

async fn stack() -> Stack {
    // The ranking task has its own address, as in awsvpc, and a DNS name.
    let ranking_addr = free_addr_on("127.0.0.5".parse().unwrap());
    let ranking_flag = ranking_addr.to_string();
    let ranking = Process::start(
        workspace_binary("ranking", "ranking"),
        &["--grpc-addr", &ranking_flag, "--drain-secs", "0"],
        &[],
    );
    wait_serving(ranking_addr).await;
    let registry = Registry::new();
    registry.define("ranking.local", Duration::from_secs(5));
    registry.register("ranking.local", "task-1", ranking_addr);
    let dns = DnsServer::start("127.0.0.1:0".parse().unwrap(), registry).await.unwrap();

    let game_addr = free_addr();
    let game_flag = game_addr.to_string();
    let target = format!("dns://{}/ranking.local:{}", dns.addr(), ranking_addr.port());
    let game = Process::start(GAME_SERVER, &["--grpc-addr", &game_flag, "--ranking-addr", &target], &[]);
    wait_serving(game_addr).await;
    let channel = Channel::from_shared(format!("http://{game_addr}")).unwrap().connect().await.unwrap();
    Stack { _dns: dns, ranking, _game: game, game: RpcClient::new(channel) }
}

fn report(user: &str, champion_id: i32, score: i64) -> ReportMatchRequest {
    ReportMatchRequest { user_id: user.into(), champion_id, score, ..Default::default() }
}

#[tokio::test]
async fn report_match_returns_the_daily_rank_from_the_ranking_service() {
    let mut stack = stack().await;
    let first = stack.game.report_match(report("alice", 1, 300)).await.expect("reported").into_inner();
    assert_eq!((first.daily_rank, first.daily_score), (1, 300));
    let second = stack.game.report_match(report("bob", 2, 500)).await.unwrap().into_inner();
    assert_eq!((second.daily_rank, second.daily_score), (1, 500));
    let again = stack.game.report_match(report("alice", 3, 100)).await.unwrap().into_inner();
    assert_eq!((again.daily_rank, again.daily_score), (2, 300), "BEST keeps alice's 300, behind bob");
}

#[tokio::test]
async fn report_match_validates_the_champion_and_passes_on_ranking_verdicts() {
    let mut stack = stack().await;
    let unknown = stack.game.report_match(report("alice", 99, 1)).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("99"));
    let bad_score = stack.game.report_match(report("alice", 1, -1)).await.unwrap_err();
    assert_eq!(bad_score.code(), Code::InvalidArgument);
    assert!(bad_score.message().starts_with("score:"), "{}", bad_score.message());
}

#[tokio::test]
async fn without_the_ranking_service_report_match_is_unavailable_and_the_rest_works() {
    let mut stack = stack().await;
    stack.game.report_match(report("alice", 1, 1)).await.expect("up");
    stack.ranking.kill();
    stack.ranking.wait_exit(Duration::from_secs(5)).await.expect("killed");

    let started = std::time::Instant::now();
    let status = stack.game.report_match(report("alice", 1, 2)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("ranking"), "{}", status.message());
    assert!(started.elapsed() < Duration::from_secs(5), "within the deadline: {:?}", started.elapsed());

    let champion = stack.game.get_champion(GetChampionRequest { champion_id: 1 }).await.expect("other RPCs work");
    assert_eq!(champion.into_inner().champion.unwrap().name, "Akali");
}

#[tokio::test]
async fn without_a_ranking_address_report_match_says_how_to_configure_it() {
    let addr = free_addr();
    let addr_flag = addr.to_string();
    let _game = Process::start(GAME_SERVER, &["--grpc-addr", &addr_flag], &[]);
    wait_serving(addr).await;
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let status = RpcClient::new(channel).report_match(report("alice", 1, 1)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("--ranking-addr"), "{}", status.message());
}

#[tokio::test]
async fn a_malformed_ranking_address_stops_start_up_with_a_clear_error() {
    let addr = free_addr().to_string();
    let mut game = Process::start(GAME_SERVER, &["--grpc-addr", &addr, "--ranking-addr", "dns:///"], &[]);
    let status = game.wait_exit(Duration::from_secs(10)).await.expect("exits at once");
    assert_eq!(status.code(), Some(1));
    let output = game.output();
    assert!(output.contains("game-server: error: target \"dns:///\": no host name"), "{output}");
}
