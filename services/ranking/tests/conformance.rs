//! One suite, two stores: every test runs against the memory store and
//! against a real redis-server, and both must give the same answers.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use contracts::ranking::v1::Profile;
use ranking::{
    BoardId, Period, Policy, Store, StoreError,
    date::Date,
    store::{BoardWrite, RankOn, Ranked, Standing},
};
use test_support::RedisServer;

const TIMEOUT: Duration = Duration::from_secs(1);
const GRACE: Duration = Duration::from_secs(48 * 3600);

/// A store under test, and the Redis behind it when there is one.
struct Subject {
    store: Store,
    _redis: Option<RedisServer>,
}

async fn memory() -> Subject {
    Subject { store: Store::open("memory", TIMEOUT).await.unwrap(), _redis: None }
}

async fn redis() -> Subject {
    let server = RedisServer::start();
    Subject { store: Store::open(&server.url(), TIMEOUT).await.unwrap(), _redis: Some(server) }
}

/// Today (UTC): boards of past days may already have expired.
fn today() -> Date {
    Date::today()
}

/// A moment `secs` seconds into today, UTC.
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(today().epoch_secs() as u64 + secs)
}

fn board(period: Period) -> BoardId {
    BoardId::containing(period, today())
}

fn write(period: Period, policy: Policy, now: SystemTime) -> BoardWrite {
    BoardWrite::new(board(period), policy, now, GRACE)
}

/// A SUM write to every period's board of the day of `now`.
fn every_board_sum(now: SystemTime) -> Vec<BoardWrite> {
    Period::ALL
        .iter()
        .map(|&period| BoardWrite::new(BoardId::containing(period, Date::at(now)), Policy::Sum, now, GRACE))
        .collect()
}

fn names(entries: &[Ranked]) -> Vec<(&str, i64, u64)> {
    entries.iter().map(|entry| (entry.user_id.as_str(), entry.score, entry.rank)).collect()
}

/// Runs each listed test body against both stores.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory_store {
            $(#[tokio::test] async fn $name() { super::$name(super::memory().await).await; })*
        }
        mod redis_store {
            $(#[tokio::test] async fn $name() { super::$name(super::redis().await).await; })*
        }
    };
}

conformance!(
    best_keeps_each_users_best_score,
    sum_adds_scores_up,
    ties_rank_who_reached_the_score_first_in_every_read,
    each_period_has_its_own_board_and_expiry,
    past_periods_are_read_by_date,
    a_changed_profile_is_one_entry_with_the_new_profile,
    around_stops_at_the_top_and_bottom_edges,
    concurrent_submissions_for_one_user_lose_nothing,
    ranks_are_computed_only_where_asked,
    a_batch_is_the_same_as_its_submissions_one_by_one,
    a_best_score_keeps_the_earliest_moment_it_was_reached,
    a_best_only_batch_is_the_same_as_its_submissions_one_by_one,
    a_submission_retried_with_its_id_counts_once,
);

/// A caller that did not get its answer retries with the same id: on a SUM
/// board it counts once and gets the first answer back; another id, or
/// another user with the same id, is a new submission.
async fn a_submission_retried_with_its_id_counts_once(subject: Subject) {
    let store = &subject.store;
    let writes = [write(Period::Daily, Policy::Best, at(10)), write(Period::AllTime, Policy::Sum, at(10))];
    let first = store.submit_once(&writes, "alice", 50, RankOn::ALL, "match-1").await.unwrap();
    store.submit(&writes, "bob", 70).await.unwrap();
    let retried = store.submit_once(&writes, "alice", 50, RankOn::ALL, "match-1").await.unwrap();
    assert_eq!(retried, first, "the first answer, rank included");
    let (ranked, _) = store.rank(&board(Period::AllTime), "alice").await.unwrap();
    assert_eq!(ranked.map(|r| r.score), Some(50), "counted once");
    store.submit_once(&writes, "alice", 50, RankOn::ALL, "match-2").await.unwrap();
    store.submit_once(&writes, "bob", 5, RankOn::ALL, "match-1").await.unwrap();
    let (alice, _) = store.rank(&board(Period::AllTime), "alice").await.unwrap();
    let (bob, _) = store.rank(&board(Period::AllTime), "bob").await.unwrap();
    assert_eq!((alice.map(|r| r.score), bob.map(|r| r.score)), (Some(100), Some(75)));
}

async fn ranks_are_computed_only_where_asked(subject: Subject) {
    let store = &subject.store;
    let writes = [write(Period::Daily, Policy::Best, at(0)), write(Period::AllTime, Policy::Sum, at(0))];
    store.submit(&writes, "bob", 70).await.unwrap();
    let daily_only = store.submit_ranking(&writes, "alice", 50, RankOn::boards([0])).await.unwrap();
    assert_eq!(daily_only, [Standing { score: 50, rank: Some(2) }, Standing { score: 50, rank: None }]);
    let none = store.submit_ranking(&writes, "alice", 30, RankOn::NONE).await.unwrap();
    assert_eq!(none, [Standing { score: 50, rank: None }, Standing { score: 80, rank: None }]);
    let all_time_only = store.submit_ranking(&writes, "alice", 1, RankOn::boards([1])).await.unwrap();
    assert_eq!(all_time_only, [Standing { score: 50, rank: None }, Standing { score: 81, rank: Some(1) }]);
    assert_eq!(store.submit(&writes, "alice", 0).await.unwrap(), [(50, 2), (81, 1)], "submit ranks every board");
}

async fn a_batch_is_the_same_as_its_submissions_one_by_one(subject: Subject) {
    let store = &subject.store;
    let writes = [write(Period::Daily, Policy::Best, at(5)), write(Period::AllTime, Policy::Sum, at(5))];
    let batch = [("alice", 10), ("bob", 30), ("alice", 40), ("carol", 20), ("alice", 5)];
    store.submit_many(&writes, &batch).await.unwrap();
    store.submit_many(&writes, &[]).await.unwrap();
    let (daily, total) = store.top(&board(Period::Daily), 10).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(names(&daily), [("alice", 40, 1), ("bob", 30, 2), ("carol", 20, 3)]);
    let (all_time, _) = store.top(&board(Period::AllTime), 10).await.unwrap();
    assert_eq!(names(&all_time), [("alice", 55, 1), ("bob", 30, 2), ("carol", 20, 3)]);
}

async fn a_best_only_batch_is_the_same_as_its_submissions_one_by_one(subject: Subject) {
    let store = &subject.store;
    let writes = [write(Period::Daily, Policy::Best, at(5)), write(Period::Weekly, Policy::Best, at(5))];
    store
        .submit_many(&writes, &[("alice", 10), ("bob", 30), ("alice", 40), ("carol", 40), ("alice", 5)])
        .await
        .unwrap();
    for write in &writes {
        let (top, total) = store.top(&write.board, 10).await.unwrap();
        assert_eq!(total, 3);
        // One batch, one tick: equal composites fall back to the member order.
        assert_eq!(names(&top), [("carol", 40, 1), ("alice", 40, 2), ("bob", 30, 3)], "{}", write.board);
    }
    assert_eq!(store.submit(&writes, "alice", 39).await.unwrap(), [(40, 2), (40, 2)]);
}

/// BEST keeps the highest score and, of equal ones, the earliest moment it
/// was reached, whichever order the submissions arrive in (a replica whose
/// clock is behind may stamp an earlier moment after a later one). Checked
/// on a BEST board alone (native commands on Redis) and beside a SUM board
/// (the script).
async fn a_best_score_keeps_the_earliest_moment_it_was_reached(subject: Subject) {
    let store = &subject.store;
    for (period, with_sum) in [(Period::Weekly, false), (Period::Daily, true)] {
        let writes = |second: u64| {
            let mut writes = vec![write(period, Policy::Best, at(second))];
            if with_sum {
                writes.push(write(Period::AllTime, Policy::Sum, at(second)));
            }
            writes
        };
        store.submit(&writes(20), "alice", 100).await.unwrap();
        store.submit(&writes(10), "bob", 100).await.unwrap();
        assert_eq!(store.submit(&writes(30), "alice", 100).await.unwrap()[0], (100, 2), "later: alice stays second");
        assert_eq!(store.submit(&writes(5), "alice", 100).await.unwrap()[0], (100, 1), "earlier: alice moves first");
        let (top, _) = store.top(&board(period), 10).await.unwrap();
        assert_eq!(names(&top), [("alice", 100, 1), ("bob", 100, 2)], "with a SUM board: {with_sum}");
    }
}

async fn best_keeps_each_users_best_score(subject: Subject) {
    let store = &subject.store;
    let daily = [write(Period::Daily, Policy::Best, at(10))];
    assert_eq!(store.submit(&daily, "alice", 50).await.unwrap(), vec![(50, 1)]);
    assert_eq!(store.submit(&daily, "bob", 70).await.unwrap(), vec![(70, 1)]);
    assert_eq!(store.submit(&daily, "alice", 30).await.unwrap(), vec![(50, 2)], "a worse score changes nothing");
    assert_eq!(store.submit(&daily, "alice", 90).await.unwrap(), vec![(90, 1)]);
    let (top, total) = store.top(&board(Period::Daily), 10).await.unwrap();
    assert_eq!(names(&top), [("alice", 90, 1), ("bob", 70, 2)]);
    assert_eq!(total, 2);
    let (missing, _) = store.rank(&board(Period::Daily), "carol").await.unwrap();
    assert_eq!(missing, None, "a user with no score is not ranked");
}

async fn sum_adds_scores_up(subject: Subject) {
    let store = &subject.store;
    let all_time = [write(Period::AllTime, Policy::Sum, at(10))];
    store.submit(&all_time, "alice", 50).await.unwrap();
    store.submit(&all_time, "bob", 70).await.unwrap();
    assert_eq!(store.submit(&all_time, "alice", 30).await.unwrap(), vec![(80, 1)]);
    let (ranked, total) = store.rank(&board(Period::AllTime), "bob").await.unwrap();
    assert_eq!(ranked.map(|r| (r.score, r.rank)), Some((70, 2)));
    assert_eq!(total, 2);
    // Saturates at the largest score instead of overflowing the encoding.
    store.submit(&all_time, "alice", ranking::score::MAX_SCORE).await.unwrap();
    let (ranked, _) = store.rank(&board(Period::AllTime), "alice").await.unwrap();
    assert_eq!(ranked.unwrap().score, ranking::score::MAX_SCORE);
}

async fn ties_rank_who_reached_the_score_first_in_every_read(subject: Subject) {
    let store = &subject.store;
    // carol reaches 100 first, then alice, then bob; dave has less.
    for (user, second) in [("carol", 1), ("alice", 2), ("bob", 3)] {
        store.submit(&[write(Period::Daily, Policy::Best, at(second))], user, 100).await.unwrap();
    }
    store.submit(&[write(Period::Daily, Policy::Best, at(0))], "dave", 99).await.unwrap();
    // Reaching 100 again later does not move carol back.
    store.submit(&[write(Period::Daily, Policy::Best, at(50))], "carol", 100).await.unwrap();

    let expected = [("carol", 100, 1), ("alice", 100, 2), ("bob", 100, 3), ("dave", 99, 4)];
    let (top, _) = store.top(&board(Period::Daily), 10).await.unwrap();
    assert_eq!(names(&top), expected);
    for (user, score, rank) in expected {
        let (ranked, _) = store.rank(&board(Period::Daily), user).await.unwrap();
        assert_eq!(ranked.map(|r| (r.score, r.rank)), Some((score, rank)), "{user}");
    }
    let (around, _) = store.around(&board(Period::Daily), "alice", 1).await.unwrap();
    assert_eq!(names(&around.unwrap()), expected[..3]);
}

async fn each_period_has_its_own_board_and_expiry(subject: Subject) {
    let store = &subject.store;
    let now = SystemTime::now();
    let writes = every_board_sum(now);
    let standings = store.submit(&writes, "alice", 5).await.unwrap();
    assert_eq!(standings, vec![(5, 1); 4]);
    store.submit(&writes[..1], "alice", 5).await.unwrap();

    let now_secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    for write in &writes {
        let (ranked, _) = store.rank(&write.board, "alice").await.unwrap();
        let expected = if write.board.period == Period::Daily { 10 } else { 5 };
        assert_eq!(ranked.unwrap().score, expected, "{}", write.board);
        let ttl = store.expires_in(&write.board).await.unwrap();
        match write.board.expires_at(GRACE) {
            None => assert_eq!(ttl, None, "{} never expires", write.board),
            Some(at) => {
                let ttl = ttl.unwrap_or_else(|| panic!("{} has no TTL", write.board));
                assert!(
                    (ttl - (at - now_secs)).abs() <= 2,
                    "{}: TTL {ttl} s, expected {} s",
                    write.board,
                    at - now_secs
                );
            }
        }
    }
}

async fn past_periods_are_read_by_date(subject: Subject) {
    let store = &subject.store;
    let yesterday = BoardId::containing(Period::Daily, Date::from_days(today().days() - 1));
    let old = BoardWrite { board: yesterday, policy: Policy::Best, tick: 0, expires_at: None };
    store.submit(&[old], "alice", 7).await.unwrap();
    store.submit(&[write(Period::Daily, Policy::Best, at(0))], "alice", 9).await.unwrap();
    let (past, _) = store.top(&yesterday, 10).await.unwrap();
    assert_eq!(names(&past), [("alice", 7, 1)]);
    let (today, _) = store.top(&board(Period::Daily), 10).await.unwrap();
    assert_eq!(names(&today), [("alice", 9, 1)]);
    let (empty, total) =
        store.top(&BoardId::containing(Period::Daily, Date::parse("2020-01-01").unwrap()), 10).await.unwrap();
    assert!(empty.is_empty());
    assert_eq!(total, 0);
}

async fn a_changed_profile_is_one_entry_with_the_new_profile(subject: Subject) {
    let store = &subject.store;
    let daily = [write(Period::Daily, Policy::Best, at(0))];
    store.set_profile("alice", &Profile { name: "Alice".into(), grade: 1 }).await.unwrap();
    store.submit(&daily, "alice", 10).await.unwrap();
    store.set_profile("alice", &Profile { name: "Alice the Great".into(), grade: 2 }).await.unwrap();
    store.submit(&daily, "alice", 20).await.unwrap();
    let (top, total) = store.top(&board(Period::Daily), 10).await.unwrap();
    assert_eq!(total, 1, "one member per user, whatever the profile");
    assert_eq!(names(&top), [("alice", 20, 1)]);
    let profiles = store.profiles(&["alice".into(), "nobody".into()]).await.unwrap();
    assert_eq!(profiles, vec![Some(Profile { name: "Alice the Great".into(), grade: 2 }), None]);
}

async fn around_stops_at_the_top_and_bottom_edges(subject: Subject) {
    let store = &subject.store;
    for index in 0..10i64 {
        let write = write(Period::Daily, Policy::Best, at(index as u64));
        store.submit(&[write], &format!("user{index}"), 100 - index).await.unwrap();
    }
    let board = board(Period::Daily);
    let (top_edge, total) = store.around(&board, "user0", 2).await.unwrap();
    assert_eq!(total, 10);
    assert_eq!(names(&top_edge.unwrap()), [("user0", 100, 1), ("user1", 99, 2), ("user2", 98, 3)]);
    let (bottom_edge, _) = store.around(&board, "user9", 2).await.unwrap();
    assert_eq!(names(&bottom_edge.unwrap()), [("user7", 93, 8), ("user8", 92, 9), ("user9", 91, 10)]);
    let (middle, _) = store.around(&board, "user5", 1).await.unwrap();
    assert_eq!(names(&middle.unwrap()), [("user4", 96, 5), ("user5", 95, 6), ("user6", 94, 7)]);
    let (nobody, _) = store.around(&board, "nobody", 2).await.unwrap();
    assert_eq!(nobody, None);
}

async fn concurrent_submissions_for_one_user_lose_nothing(subject: Subject) {
    let store = Arc::new(subject.store.clone());
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for _ in 0..4 {
                    store.submit(&[write(Period::AllTime, Policy::Sum, at(0))], "alice", 1).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let (ranked, total) = store.rank(&board(Period::AllTime), "alice").await.unwrap();
    assert_eq!(ranked.unwrap().score, 200, "every one of 200 concurrent submissions counted");
    assert_eq!(total, 1);
    drop(subject);
}

#[tokio::test]
async fn redis_stopped_mid_test_fails_fast_and_recovers_by_itself() {
    let mut server = RedisServer::start();
    let store = Store::open(&server.url(), Duration::from_millis(500)).await.unwrap();
    let daily = [write(Period::Daily, Policy::Best, at(0))];
    store.submit(&daily, "alice", 1).await.unwrap();

    server.stop();
    let started = std::time::Instant::now();
    let error = store.submit(&daily, "alice", 2).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "failed within about the timeout: {:?}", started.elapsed());
    let error = store.top(&board(Period::Daily), 10).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");

    server.restart();
    let mut recovered = None;
    for _ in 0..50 {
        match store.submit(&daily, "alice", 3).await {
            Ok(standings) => {
                recovered = Some(standings);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    // The restarted server is empty: alice's 3 is all there is.
    assert_eq!(recovered, Some(vec![(3, 1)]), "the store reconnects by itself");
}

#[tokio::test]
async fn submissions_load_their_script_again_when_redis_has_forgotten_it() {
    let server = RedisServer::start();
    let store = Store::open(&server.url(), TIMEOUT).await.unwrap();
    // A SUM board takes the script (BEST boards alone need none).
    let daily = [write(Period::Daily, Policy::Best, at(0)), write(Period::AllTime, Policy::Sum, at(0))];
    store.submit(&daily, "alice", 1).await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    // As after a restart or a failover to a replica that never ran it.
    redis::cmd("SCRIPT").arg("FLUSH").query_async::<()>(&mut connection).await.unwrap();
    store.submit_many(&daily, &[("bob", 5), ("carol", 3)]).await.expect("a batch loads it first");
    redis::cmd("SCRIPT").arg("FLUSH").query_async::<()>(&mut connection).await.unwrap();
    assert_eq!(
        store.submit(&daily, "alice", 4).await.unwrap(),
        [(4, 2), (5, 2)],
        "one submission loads it on NOSCRIPT"
    );
    let (top, _) = store.top(&board(Period::Daily), 10).await.unwrap();
    assert_eq!(names(&top), [("bob", 5, 1), ("alice", 4, 2), ("carol", 3, 3)]);
}

/// The calls of each Redis command since the last `CONFIG RESETSTAT`.
async fn command_calls(connection: &mut redis::aio::MultiplexedConnection) -> Vec<(String, u64)> {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(connection).await.unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields.split(',').find_map(|field| field.strip_prefix("calls="))?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| !name.starts_with("config") && name != "info")
        .collect()
}

#[tokio::test]
async fn best_boards_are_written_without_a_script_and_with_their_expiry() {
    let server = RedisServer::start();
    let store = Store::open(&server.url(), TIMEOUT).await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let now = SystemTime::now();
    let writes: Vec<BoardWrite> = Period::ALL
        .iter()
        .map(|&period| BoardWrite::new(BoardId::containing(period, Date::at(now)), Policy::Best, now, GRACE))
        .collect();
    redis::cmd("CONFIG").arg("RESETSTAT").query_async::<()>(&mut connection).await.unwrap();
    let standings = store.submit_ranking(&writes, "alice", 7, RankOn::boards([0])).await.unwrap();
    assert_eq!(standings[0], Standing { score: 7, rank: Some(1) });
    let mut calls = command_calls(&mut connection).await;
    calls.sort();
    let expected = [("exec", 1), ("expireat", 3), ("multi", 1), ("zadd", 4), ("zrevrank", 1), ("zscore", 4)];
    let expected: Vec<(String, u64)> = expected.iter().map(|(name, calls)| (name.to_string(), *calls)).collect();
    assert_eq!(calls, expected, "one MULTI of native commands, no script, the rank only where asked");
    for write in &writes {
        let ttl = store.expires_in(&write.board).await.unwrap();
        assert_eq!(ttl.is_some(), write.expires_at.is_some(), "{}: TTL {ttl:?}", write.board);
    }
    // A board that lost its expiry (say, PERSIST by hand) gets it back from the next write.
    redis::cmd("PERSIST").arg(writes[0].board.key()).query_async::<()>(&mut connection).await.unwrap();
    store.submit_many(&writes, &[("bob", 3)]).await.unwrap();
    assert!(store.expires_in(&writes[0].board).await.unwrap().is_some(), "the expiry is set again");
}

#[tokio::test]
async fn concurrent_submissions_share_round_trips_and_each_gets_its_own_answer() {
    let server = RedisServer::start();
    let store = Arc::new(Store::open(&server.url(), TIMEOUT).await.unwrap());
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let now = SystemTime::now();
    let writes: Arc<Vec<BoardWrite>> = Arc::new(
        Period::ALL
            .iter()
            .map(|&period| BoardWrite::new(BoardId::containing(period, Date::at(now)), Policy::Best, now, GRACE))
            .collect(),
    );
    redis::cmd("CONFIG").arg("RESETSTAT").query_async::<()>(&mut connection).await.unwrap();
    let submissions = 200;
    let tasks: Vec<_> = (0..submissions)
        .map(|index| {
            let (store, writes) = (Arc::clone(&store), Arc::clone(&writes));
            tokio::spawn(async move {
                let standings =
                    store.submit_ranking(&writes, &format!("user{index}"), 1000 + index, RankOn::NONE).await.unwrap();
                assert_eq!(standings, vec![Standing { score: 1000 + index, rank: None }; 4], "user{index}");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let calls = command_calls(&mut connection).await;
    let count = |name: &str| calls.iter().find(|(command, _)| command == name).map_or(0, |(_, calls)| *calls);
    assert_eq!(count("exec"), submissions as u64, "each submission is its own transaction");
    // Three boards expire, and a batch sets each one's expiry once.
    let batches = count("expireat") / 3;
    assert!(batches <= submissions as u64 / 4, "{batches} batches for {submissions} concurrent submissions");
    let (top, total) = store.top(&writes[0].board, 1).await.unwrap();
    assert_eq!((names(&top), total), (vec![("user199", 1199, 1)], 200));
}

#[tokio::test]
async fn redis_keys_follow_the_documented_layout() {
    let server = RedisServer::start();
    let store = Store::open(&server.url(), TIMEOUT).await.unwrap();
    store.submit(&[write(Period::Daily, Policy::Best, at(0))], "alice", 42).await.unwrap();
    store.set_profile("alice", &Profile { name: "A".into(), grade: 3 }).await.unwrap();

    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut connection).await.unwrap();
    keys.sort();
    let daily = format!("{{ranking}}:daily:{}", today().compact());
    assert_eq!(keys, [daily.clone(), "{ranking}:profiles".to_owned()]);
    let members: Vec<String> =
        redis::cmd("ZRANGE").arg(&daily).arg(0).arg(-1).query_async(&mut connection).await.unwrap();
    assert_eq!(members, ["alice"], "the member is the user id alone");
}

#[tokio::test]
async fn redis_cluster_urls_work_with_the_same_semantics() {
    let server = RedisServer::start_cluster();
    let store = Store::open(&format!("redis+cluster://{}", server.addr()), TIMEOUT).await.unwrap();
    let subject = Subject { store, _redis: None };
    // The same checks as on a single node: atomic multi-board submits need
    // every key in one slot, which the {ranking} hash tag gives.
    ties_rank_who_reached_the_score_first_in_every_read(subject).await;
    let store = Store::open(&format!("redis+cluster://{}", server.addr()), TIMEOUT).await.unwrap();
    let now = SystemTime::now();
    let writes = every_board_sum(now);
    assert_eq!(store.submit(&writes, "zoe", 1000).await.unwrap(), vec![(1000, 1); 4]);
    store.set_profile("zoe", &Profile { name: "Zoe".into(), grade: 1 }).await.unwrap();
    let (top, _) = store.top(&writes[3].board, 10).await.unwrap();
    assert_eq!(names(&top), [("zoe", 1000, 1)]);
    assert_eq!(store.profiles(&["zoe".into()]).await.unwrap(), vec![Some(Profile { name: "Zoe".into(), grade: 1 })]);
    // A batch is one pipeline (SCRIPT LOAD, then the EVALSHAs), routed to
    // the node of the boards' slot.
    store.submit_many(&writes, &[("yan", 400), ("yan", 700), ("xia", 900)]).await.unwrap();
    let (top, total) = store.top(&writes[3].board, 10).await.unwrap();
    assert_eq!((names(&top), total), (vec![("yan", 1100, 1), ("zoe", 1000, 2), ("xia", 900, 3)], 3));
    drop(server);
}

#[tokio::test]
async fn redis_auth_is_taken_from_the_url_and_a_wrong_password_is_a_clear_error() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let url = format!("redis://:s3cret@{}", server.addr());
    let store = Store::open(&url, TIMEOUT).await.unwrap();
    assert_eq!(store.describe(), format!("redis://***@{}", server.addr()), "no password in logs");
    store.submit(&[write(Period::Daily, Policy::Best, at(0))], "alice", 1).await.expect("authenticated");

    let wrong = Store::open(&format!("redis://:wrong@{}", server.addr()), TIMEOUT).await.unwrap();
    let error = wrong.submit(&[write(Period::Daily, Policy::Best, at(0))], "alice", 1).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("WRONGPASS") || text.to_lowercase().contains("auth"), "{text}");
}
