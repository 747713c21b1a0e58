//! Every RPC of `rpc.Rpc` against the real binary over loopback.

mod common;

use common::GameServer;
use contracts::{
    champion::ChampionType,
    rpc::{Empty, GetChampionRequest},
};
use tonic::Code;

#[tokio::test]
async fn get_champion_returns_the_seed_champions() {
    let server = GameServer::start(&[]).await;
    let mut client = server.client().await;

    let akali = client
        .get_champion(GetChampionRequest { champion_id: 1 })
        .await
        .expect("GetChampion 1")
        .into_inner()
        .champion
        .expect("a champion");
    assert_eq!(akali.champion_id, 1);
    assert_eq!(akali.name, "Akali");
    assert_eq!(akali.r#type(), ChampionType::Assassin);
    assert_eq!(akali.message, "If you look dangerous, you better be dangerous.");

    let kennen =
        client.get_champion(GetChampionRequest { champion_id: 2 }).await.unwrap().into_inner().champion.unwrap();
    assert_eq!((kennen.name.as_str(), kennen.r#type()), ("Kennen", ChampionType::Mage));
    let tryndamere =
        client.get_champion(GetChampionRequest { champion_id: 3 }).await.unwrap().into_inner().champion.unwrap();
    assert_eq!((tryndamere.name.as_str(), tryndamere.r#type()), ("Tryndamere", ChampionType::Fighter));
}

#[tokio::test]
async fn get_champion_rejects_unknown_and_invalid_ids_with_the_right_codes() {
    let server = GameServer::start(&[]).await;
    let mut client = server.client().await;

    let missing = client.get_champion(GetChampionRequest { champion_id: 4242 }).await.expect_err("no champion 4242");
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("4242"), "message names the id: {}", missing.message());

    for id in [0, -7] {
        let invalid = client.get_champion(GetChampionRequest { champion_id: id }).await.expect_err("invalid id");
        assert_eq!(invalid.code(), Code::InvalidArgument, "id {id}");
        assert!(invalid.message().contains("champion_id"), "message names the field: {}", invalid.message());
    }
}

#[tokio::test]
async fn list_champions_and_battle_fields_are_ordered_by_id() {
    let server = GameServer::start(&[]).await;
    let mut client = server.client().await;

    let champions = client.list_champions(Empty {}).await.unwrap().into_inner().champions;
    let names: Vec<_> = champions.iter().map(|champion| (champion.champion_id, champion.name.as_str())).collect();
    assert_eq!(names, [(1, "Akali"), (2, "Kennen"), (3, "Tryndamere")]);

    let fields = client.get_battle_field(Empty {}).await.unwrap().into_inner().battle_fields;
    let names: Vec<_> = fields.iter().map(|field| (field.battle_field_id, field.name.as_str())).collect();
    assert_eq!(names, [(1, "Summoner's Rift"), (2, "The Twisted Treeline"), (3, "Howling Abyss")]);
    assert!(fields.iter().all(|field| !field.description.is_empty()));
}

#[tokio::test]
async fn a_data_file_given_at_start_up_replaces_the_built_in_one() {
    let dir = std::env::temp_dir().join(format!("game-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("custom.toml");
    std::fs::write(
        &path,
        "[[champion]]\nid = 7\ntype = \"SUPPORT\"\nname = \"Janna\"\nmessage = \"Feel the wind.\"\n\
         [[battle_field]]\nid = 1\nname = \"Practice Tool\"\ndescription = \"Alone.\"\n",
    )
    .unwrap();

    let server = GameServer::start(&["--data", path.to_str().unwrap()]).await;
    let mut client = server.client().await;
    let champions = client.list_champions(Empty {}).await.unwrap().into_inner().champions;
    assert_eq!(champions.len(), 1);
    assert_eq!(champions[0].name, "Janna");
    assert_eq!(champions[0].r#type(), ChampionType::Support);
    let akali =
        client.get_champion(GetChampionRequest { champion_id: 1 }).await.expect_err("Akali is not in this file");
    assert_eq!(akali.code(), Code::NotFound);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_bad_data_file_stops_start_up_with_file_line_and_field() {
    let dir = std::env::temp_dir().join(format!("game-bad-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[[champion]]\nid = 1\ntype = \"WIZARD\"\nname = \"A\"\nmessage = \"\"\n").unwrap();

    let addr = test_support::free_addr().to_string();
    let mut process = test_support::Process::start(
        common::GAME_SERVER,
        &["--grpc-addr", &addr, "--data", path.to_str().unwrap()],
        &[],
    );
    let status = process.wait_exit(std::time::Duration::from_secs(10)).await.expect("exits at once");
    assert_eq!(status.code(), Some(1));
    let output = process.output();
    let expected = format!("{}:3: champion 1: type \"WIZARD\"", path.display());
    assert!(output.contains(&expected), "output names file, line and field:\n{output}");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let server = GameServer::start(&[]).await;
    let addr = server.addr.to_string();
    let mut second = test_support::Process::start(common::GAME_SERVER, &["--grpc-addr", &addr], &[]);
    let status = second.wait_exit(std::time::Duration::from_secs(10)).await.expect("exits at once");
    assert_eq!(status.code(), Some(1));
    let output = second.output();
    assert!(output.contains(&format!("cannot listen on {addr}")), "{output}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_a_debug_line_per_request() {
    let mut server =
        GameServer::start(&["--log-format", "json", "--log-level", "info,grpc=debug", "--drain-secs", "0"]).await;
    let mut client = server.client().await;
    client.get_champion(GetChampionRequest { champion_id: 1 }).await.unwrap();
    let _ = client.get_champion(GetChampionRequest { champion_id: 0 }).await;
    server.process.terminate();
    server.process.wait_exit(std::time::Duration::from_secs(15)).await.expect("exits");

    let output = server.process.output();
    let lines: Vec<&str> = output.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(line.starts_with('{') && line.ends_with('}'), "not a JSON object: {line}");
    }
    let requests: Vec<&&str> = lines
        .iter()
        .filter(|line| line.contains(r#""message":"request""#) && line.contains("/rpc.Rpc/GetChampion"))
        .collect();
    assert_eq!(requests.len(), 2, "one line per request: {output}");
    assert!(requests.iter().all(|line| line.contains(r#""level":"DEBUG""#)));
    assert!(requests.iter().any(|line| line.contains(r#""grpc_status":"InvalidArgument""#)), "{output}");
}

#[tokio::test]
async fn info_logs_carry_no_line_per_request() {
    let mut server = GameServer::start(&["--drain-secs", "0"]).await;
    let mut client = server.client().await;
    for _ in 0..5 {
        client.get_champion(GetChampionRequest { champion_id: 1 }).await.unwrap();
    }
    server.process.terminate();
    server.process.wait_exit(std::time::Duration::from_secs(15)).await.expect("exits");
    let output = server.process.output();
    assert!(!output.contains("GetChampion"), "a request was logged at info: {output}");
    assert!(output.contains("serving gRPC"), "{output}");
}
