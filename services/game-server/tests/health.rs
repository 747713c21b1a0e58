//! gRPC health (Check and Watch), reflection, and the `health` subcommand.

mod common;

use std::time::Duration;

use common::{GameServer, health_command};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_reflection::pb::{v1, v1alpha};

#[tokio::test]
async fn health_check_answers_for_the_server_and_each_service() {
    let server = GameServer::start(&[]).await;
    let mut health = HealthClient::new(server.channel().await);

    for service in ["", "rpc.Rpc"] {
        let status = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status();
        assert_eq!(status, ServingStatus::Serving, "service {service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "no.Such".into() }).await.expect_err("unknown service");
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn health_watch_streams_the_current_status_first() {
    let server = GameServer::start(&[]).await;
    let mut health = HealthClient::new(server.channel().await);
    let mut stream = health.watch(HealthCheckRequest { service: "rpc.Rpc".into() }).await.unwrap().into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an update").unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
}

#[tokio::test]
async fn reflection_v1_lists_every_service_and_describes_the_game() {
    let server = GameServer::start(&[]).await;
    let mut reflection = v1::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let requests = [
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
        },
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "rpc.Rpc".into(),
            )),
        },
    ];
    let mut responses = reflection.server_reflection_info(tokio_stream::iter(requests)).await.unwrap().into_inner();

    let listed = responses.next().await.unwrap().unwrap().message_response.unwrap();
    let v1::server_reflection_response::MessageResponse::ListServicesResponse(listed) = listed else {
        panic!("expected a service list, got {listed:?}");
    };
    let mut names: Vec<_> = listed.service.into_iter().map(|service| service.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "rpc.Rpc"
        ]
    );

    let file = responses.next().await.unwrap().unwrap().message_response.unwrap();
    let v1::server_reflection_response::MessageResponse::FileDescriptorResponse(file) = file else {
        panic!("expected a file descriptor, got {file:?}");
    };
    // rpc/rpc.proto and the files it imports, so a client can build requests.
    assert!(!file.file_descriptor_proto.is_empty());
    let text =
        file.file_descriptor_proto.iter().map(|bytes| String::from_utf8_lossy(bytes).into_owned()).collect::<String>();
    for name in ["rpc/rpc.proto", "rpc/champion.proto", "rpc/battle_field.proto"] {
        assert!(text.contains(name), "reflection returns {name}");
    }
}

#[tokio::test]
async fn reflection_v1alpha_answers_too() {
    let server = GameServer::start(&[]).await;
    let mut reflection = v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let listed = responses.next().await.unwrap().unwrap().message_response.unwrap();
    let v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(listed) = listed else {
        panic!("expected a service list, got {listed:?}");
    };
    assert!(listed.service.iter().any(|service| service.name == "rpc.Rpc"));
}

#[tokio::test]
async fn health_subcommand_exits_zero_only_when_serving() {
    let server = GameServer::start(&[]).await;
    let addr = server.addr.to_string();

    let (code, output) = health_command(&["--addr", &addr]);
    assert_eq!(code, 0, "{output}");
    assert!(output.starts_with("SERVING"), "{output}");

    let (code, output) = health_command(&["--addr", &addr, "--service", "rpc.Rpc"]);
    assert_eq!(code, 0, "{output}");

    let (code, output) = health_command(&["--addr", &addr, "--service", "no.Such"]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("SERVICE_UNKNOWN"), "{output}");
}

#[tokio::test]
async fn health_subcommand_fails_on_a_port_nobody_serves() {
    let nobody = test_support::free_addr().to_string();
    let (code, output) = health_command(&["--addr", &nobody, "--timeout", "500"]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("unreachable"), "{output}");
    assert!(output.contains(&nobody), "names the address: {output}");
}

#[tokio::test]
async fn health_subcommand_fails_once_the_server_is_stopped() {
    let mut server = GameServer::start(&["--drain-secs", "0", "--shutdown-timeout-secs", "5"]).await;
    let addr = server.addr.to_string();
    assert_eq!(health_command(&["--addr", &addr]).0, 0);

    server.process.terminate();
    server.process.wait_exit(Duration::from_secs(10)).await.expect("server exits");
    let (code, output) = health_command(&["--addr", &addr, "--timeout", "500"]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("unreachable"), "{output}");
}

#[tokio::test]
async fn health_subcommand_answers_a_silent_server_within_its_timeout() {
    // A listener that accepts and never speaks HTTP/2, like a wedged process.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let (code, output) = health_command(&["--addr", &addr, "--timeout", "300"]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("no answer within 300 ms"), "{output}");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    drop(silent);
}
