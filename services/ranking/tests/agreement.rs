//! Property: on any sequence of submissions, the memory store and Redis give
//! identical boards, ranks and windows.

use std::time::Duration;

use proptest::prelude::*;
use ranking::{BoardId, Period, Policy, Store, date::Date, store::BoardWrite};
use test_support::RedisServer;

#[derive(Debug, Clone)]
struct Submit {
    user: u8,
    score: i64,
    tick: u64,
    all_time: bool,
}

fn submit() -> impl Strategy<Value = Submit> {
    // Few users, few scores and ticks: plenty of ties and repeats.
    (0u8..6, 0i64..40, 0u64..8, any::<bool>()).prop_map(|(user, score, tick, all_time)| Submit {
        user,
        score,
        tick,
        all_time,
    })
}

fn boards() -> [(BoardId, Policy); 2] {
    let day = Date::parse("2026-11-27").unwrap();
    [(BoardId::containing(Period::Daily, day), Policy::Best), (BoardId::containing(Period::AllTime, day), Policy::Sum)]
}

async fn apply(store: &Store, submits: &[Submit]) {
    for submit in submits {
        let (board, policy) = boards()[usize::from(submit.all_time)];
        let write = BoardWrite { board, policy, tick: submit.tick, expires_at: None };
        store.submit(&[write], &format!("user{}", submit.user), submit.score).await.unwrap();
    }
}

async fn observe(store: &Store) -> String {
    let mut seen = String::new();
    for (board, _) in boards() {
        let (top, total) = store.top(&board, 100).await.unwrap();
        seen.push_str(&format!("{board} total {total}: {top:?}\n"));
        for user in 0..6 {
            let user = format!("user{user}");
            let (rank, _) = store.rank(&board, &user).await.unwrap();
            let (around, _) = store.around(&board, &user, 2).await.unwrap();
            seen.push_str(&format!("  {user}: {rank:?} around {around:?}\n"));
        }
    }
    seen
}

#[test]
fn memory_and_redis_agree_on_random_submissions() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = RedisServer::start();
    let redis = runtime.block_on(Store::open(&server.url(), Duration::from_secs(2))).unwrap();
    let client = redis::Client::open(server.url()).unwrap();

    let config = ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(submits in proptest::collection::vec(submit(), 1..40))| {
        let (from_memory, from_redis) = runtime.block_on(async {
            let mut connection = client.get_multiplexed_async_connection().await.unwrap();
            redis::cmd("FLUSHALL").query_async::<()>(&mut connection).await.unwrap();
            let memory = Store::open("memory", Duration::from_secs(1)).await.unwrap();
            apply(&memory, &submits).await;
            apply(&redis, &submits).await;
            (observe(&memory).await, observe(&redis).await)
        });
        prop_assert_eq!(from_memory, from_redis);
    });
}
