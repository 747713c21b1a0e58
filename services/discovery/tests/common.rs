//! A small fleet for discovery tests: real `game-server` processes, one per
//! loopback address on a shared port, named in a real DNS server.

#![allow(dead_code)]

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use contracts::rpc::{GetChampionRequest, rpc_client::RpcClient};
use discovery::{DiscoveryChannel, EndpointStatus};
use local_dns::{DnsServer, Instance, Registry};
use test_support::{Process, free_port_on_all, loopback_ips, wait_serving, workspace_binary};

/// The service name the fleet answers to.
pub const NAME: &str = "svc.local";

/// Replicas of game-server behind one DNS name.
pub struct Fleet {
    pub port: u16,
    pub ips: Vec<IpAddr>,
    pub replicas: Vec<Option<Process>>,
    pub registry: Registry,
    pub dns: DnsServer,
}

impl Fleet {
    /// `count` replicas on 127.0.0.2.. sharing one port, each registered in
    /// DNS with record TTL `ttl`, plus `spare` addresses with no server yet.
    pub async fn start(count: u8, spare: u8, ttl: Duration) -> Self {
        let ips = loopback_ips(count + spare);
        let port = free_port_on_all(&ips);
        let registry = Registry::new();
        registry.define(NAME, ttl);
        let dns = DnsServer::start("127.0.0.1:0".parse().unwrap(), registry.clone()).await.expect("DNS server");
        let mut fleet = Self { port, ips, replicas: Vec::new(), registry, dns };
        for index in 0..usize::from(count + spare) {
            fleet.replicas.push(None);
            if index < usize::from(count) {
                fleet.start_replica(index, &[]).await;
                fleet.register(index);
            }
        }
        fleet
    }

    /// The address of replica `index`.
    pub fn addr(&self, index: usize) -> SocketAddr {
        SocketAddr::new(self.ips[index], self.port)
    }

    /// Starts (or restarts) replica `index` and waits until it serves.
    /// A previous process on the address is dropped first, which kills and
    /// reaps it: a SIGKILL is delivered at once but the port is free only
    /// once the process is gone, and the new one would fail to bind before.
    pub async fn start_replica(&mut self, index: usize, extra: &[&str]) {
        drop(self.replicas[index].take());
        let addr = self.addr(index).to_string();
        let mut args = vec!["serve", "--grpc-addr", addr.as_str()];
        args.extend_from_slice(extra);
        let process = Process::start(workspace_binary("game-server", "game-server"), &args, &[]);
        wait_serving(self.addr(index)).await;
        self.replicas[index] = Some(process);
    }

    /// Puts replica `index` in DNS.
    pub fn register(&self, index: usize) {
        self.registry.register(NAME, &format!("replica-{index}"), self.addr(index));
    }

    /// Takes replica `index` out of DNS.
    pub fn deregister(&self, index: usize) {
        self.registry.deregister(NAME, &format!("replica-{index}"));
    }

    /// Replaces the DNS instances with exactly `indexes`.
    pub fn set_registered(&self, indexes: &[usize]) {
        let instances =
            indexes.iter().map(|&index| Instance { id: format!("replica-{index}"), addr: self.addr(index) }).collect();
        self.registry.set_instances(NAME, instances);
    }

    /// The replica process `index`.
    pub fn replica(&mut self, index: usize) -> &mut Process {
        self.replicas[index].as_mut().expect("replica running")
    }

    /// The discovery target of the fleet.
    pub fn target(&self) -> String {
        format!("dns://{}/{NAME}:{}", self.dns.addr(), self.port)
    }
}

/// One GetChampion call through `channel`.
pub async fn call(channel: &DiscoveryChannel) -> Result<(), tonic::Status> {
    RpcClient::new(channel.clone()).get_champion(GetChampionRequest { champion_id: 1 }).await.map(|_| ())
}

/// Picks per endpoint address, as the channel counts them.
pub fn picks(channel: &DiscoveryChannel) -> Vec<(SocketAddr, u64)> {
    channel.endpoints().into_iter().map(|status: EndpointStatus| (status.addr, status.picks)).collect()
}

/// Picks of one address (0 when unknown).
pub fn picks_of(channel: &DiscoveryChannel, addr: SocketAddr) -> u64 {
    picks(channel).into_iter().find(|(candidate, _)| *candidate == addr).map_or(0, |(_, picks)| picks)
}

/// Waits until `channel` has `count` ready endpoints, or panics.
pub async fn wait_ready(channel: &DiscoveryChannel, count: usize) {
    let started = std::time::Instant::now();
    loop {
        let ready = channel.endpoints().iter().filter(|status| status.state == discovery::EndpointState::Ready).count();
        if ready == count {
            return;
        }
        if started.elapsed() > Duration::from_secs(15) {
            panic!("expected {count} ready endpoints, have {:?}", channel.endpoints());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
