//! The `ranking` binary over gRPC: the contract, its validation, and its
//! behaviour while Redis is down.

use std::{net::SocketAddr, time::Duration};

use contracts::ranking::v1::{
    Board, GetAroundRequest, GetProfileRequest, GetRankRequest, GetTopRequest, Period, Periods, Profile, Score,
    SetProfileRequest, SubmitScoreRequest, SubmitScoresRequest, ranking_client::RankingClient,
};
use test_support::{Process, RedisServer, free_addr, health_status, wait_serving};
use tonic::{Code, transport::Channel};
use tonic_health::pb::health_check_response::ServingStatus;

const RANKING: &str = env!("CARGO_BIN_EXE_ranking");

async fn start(store: &str) -> (Process, SocketAddr, RankingClient<Channel>) {
    let addr = free_addr();
    let addr_flag = addr.to_string();
    let process = Process::start(
        RANKING,
        &["serve", "--grpc-addr", &addr_flag, "--store", store, "--store-timeout-ms", "500"],
        &[],
    );
    wait_serving(addr).await;
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    (process, addr, RankingClient::new(channel))
}

fn daily() -> Option<Board> {
    Some(Board { period: Period::Daily as i32, date: String::new() })
}

#[tokio::test]
async fn scores_ranks_windows_and_profiles_over_grpc() {
    let (_process, _, mut client) = start("memory").await;
    client
        .set_profile(SetProfileRequest {
            user_id: "alice".into(),
            profile: Some(Profile { name: "Alice".into(), grade: 3 }),
        })
        .await
        .unwrap();
    let standings = client
        .submit_score(SubmitScoreRequest { user_id: "alice".into(), score: 120, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .standings;
    let periods: Vec<_> = standings.iter().map(|standing| standing.period()).collect();
    assert_eq!(periods, [Period::Daily, Period::Weekly, Period::Monthly, Period::AllTime]);
    assert!(standings.iter().all(|standing| standing.score == 120 && standing.rank == 1));
    assert_eq!(standings[3].period_start, "", "ALL_TIME has no start");

    let batch = SubmitScoresRequest {
        scores: vec![Score { user_id: "bob".into(), score: 200 }, Score { user_id: "carol".into(), score: 50 }],
    };
    assert_eq!(client.submit_scores(batch).await.unwrap().into_inner().accepted, 2);

    let top = client.get_top(GetTopRequest { board: daily(), limit: 0 }).await.unwrap().into_inner();
    let order: Vec<_> = top.entries.iter().map(|entry| (entry.user_id.as_str(), entry.rank)).collect();
    assert_eq!(order, [("bob", 1), ("alice", 2), ("carol", 3)]);
    assert_eq!(top.total, 3);
    assert_eq!(top.entries[1].profile, Some(Profile { name: "Alice".into(), grade: 3 }));
    assert_eq!(top.entries[0].profile, None);

    let rank = client.get_rank(GetRankRequest { board: daily(), user_id: "carol".into() }).await.unwrap().into_inner();
    assert!(rank.ranked);
    assert_eq!(rank.entry.map(|entry| (entry.score, entry.rank)), Some((50, 3)));
    let unranked =
        client.get_rank(GetRankRequest { board: daily(), user_id: "dave".into() }).await.unwrap().into_inner();
    assert!(!unranked.ranked);
    assert_eq!(unranked.entry, None);

    let around = client
        .get_around(GetAroundRequest { board: daily(), user_id: "bob".into(), radius: 1 })
        .await
        .unwrap()
        .into_inner();
    let order: Vec<_> = around.entries.iter().map(|entry| entry.user_id.as_str()).collect();
    assert_eq!(order, ["bob", "alice"]);

    let profile = client.get_profile(GetProfileRequest { user_id: "alice".into() }).await.unwrap().into_inner();
    assert!(profile.found);
}

#[tokio::test]
async fn submit_score_ranks_only_the_periods_asked_for() {
    let (_process, _, client) = start("memory").await;
    let submit = |user: &str, score: i64, rank_periods: Option<Periods>| {
        let request = SubmitScoreRequest { user_id: user.into(), score, rank_periods, ..Default::default() };
        let mut client = client.clone();
        async move { client.submit_score(request).await.unwrap().into_inner().standings }
    };
    submit("bob", 90, None).await;
    let ranks = |standings: Vec<contracts::ranking::v1::Standing>| -> Vec<(i64, u64)> {
        standings.iter().map(|standing| (standing.score, standing.rank)).collect()
    };
    let weekly = Some(Periods { periods: vec![Period::Weekly as i32] });
    assert_eq!(ranks(submit("alice", 50, weekly).await), [(50, 0), (50, 2), (50, 0), (50, 0)]);
    let none = Some(Periods { periods: Vec::new() });
    assert_eq!(ranks(submit("alice", 95, none).await), [(95, 0); 4], "present and empty: no rank");
    assert_eq!(ranks(submit("alice", 1, None).await), [(95, 1); 4], "absent: every rank");
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let (_process, _, mut client) = start("memory").await;
    let cases: Vec<(&str, tonic::Status)> = vec![
        (
            "user_id",
            client
                .submit_score(SubmitScoreRequest { user_id: String::new(), score: 1, ..Default::default() })
                .await
                .unwrap_err(),
        ),
        (
            "user_id",
            client
                .submit_score(SubmitScoreRequest { user_id: "x".repeat(200), score: 1, ..Default::default() })
                .await
                .unwrap_err(),
        ),
        (
            "score",
            client
                .submit_score(SubmitScoreRequest { user_id: "a".into(), score: -5, ..Default::default() })
                .await
                .unwrap_err(),
        ),
        (
            "score",
            client
                .submit_score(SubmitScoreRequest { user_id: "a".into(), score: 1_000_000_000, ..Default::default() })
                .await
                .unwrap_err(),
        ),
        (
            "rank_periods.periods[1]",
            client
                .submit_score(SubmitScoreRequest {
                    user_id: "a".into(),
                    score: 1,
                    rank_periods: Some(Periods { periods: vec![Period::Daily as i32, 9] }),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
        ),
        (
            "submission_id",
            client
                .submit_score(SubmitScoreRequest {
                    user_id: "a".into(),
                    score: 1,
                    submission_id: "match 1".into(),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
        ),
        ("limit", client.get_top(GetTopRequest { board: daily(), limit: 1001 }).await.unwrap_err()),
        (
            "board.period",
            client
                .get_top(GetTopRequest { board: Some(Board { period: 42, date: String::new() }), limit: 5 })
                .await
                .unwrap_err(),
        ),
        (
            "board.date",
            client
                .get_top(GetTopRequest { board: Some(Board { period: 1, date: "2999-01-01".into() }), limit: 5 })
                .await
                .unwrap_err(),
        ),
        (
            "scores[1].score",
            client
                .submit_scores(SubmitScoresRequest {
                    scores: vec![Score { user_id: "a".into(), score: 1 }, Score { user_id: "b".into(), score: -1 }],
                })
                .await
                .unwrap_err(),
        ),
        (
            "radius",
            client.get_around(GetAroundRequest { board: daily(), user_id: "a".into(), radius: 101 }).await.unwrap_err(),
        ),
    ];
    for (field, status) in cases {
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(status.message().starts_with(&format!("{field}:")), "names {field}: {}", status.message());
    }
    // Nothing of the rejected batch was written.
    let top = client.get_top(GetTopRequest { board: daily(), limit: 10 }).await.unwrap().into_inner();
    assert_eq!(top.total, 0);
}

#[tokio::test]
async fn while_redis_is_down_calls_fail_fast_health_stays_serving_and_it_recovers() {
    let mut redis = RedisServer::start();
    let (_process, addr, mut client) = start(&redis.url()).await;
    client.submit_score(SubmitScoreRequest { user_id: "alice".into(), score: 1, ..Default::default() }).await.unwrap();

    redis.stop();
    let started = std::time::Instant::now();
    let status = client
        .submit_score(SubmitScoreRequest { user_id: "alice".into(), score: 2, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // The store's address stays inside: callers learn the kind of failure.
    let port = redis.addr().port().to_string();
    assert!(!status.message().contains(&port) && !status.message().contains("127.0.0.1"), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    // A Redis outage must not make ECS replace every task.
    assert_eq!(health_status(addr, "").await.unwrap(), ServingStatus::Serving);
    assert_eq!(health_status(addr, "ranking.v1.Ranking").await.unwrap(), ServingStatus::Serving);

    redis.restart();
    let mut recovered = false;
    for _ in 0..50 {
        if client
            .submit_score(SubmitScoreRequest { user_id: "alice".into(), score: 3, ..Default::default() })
            .await
            .is_ok()
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the service recovers by itself when Redis returns");
}

#[tokio::test]
async fn a_bad_store_url_stops_start_up_with_a_clear_error() {
    let addr = free_addr().to_string();
    let mut process = Process::start(RANKING, &["--grpc-addr", &addr, "--store", "postgres://x"], &[]);
    let status = process.wait_exit(Duration::from_secs(10)).await.expect("exits");
    assert_eq!(status.code(), Some(1));
    assert!(process.output().contains("unknown --store postgres://x"), "{}", process.output());
}
