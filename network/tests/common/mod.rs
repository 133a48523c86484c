//! Loopback clusters for the integration tests: every endpoint binds
//! 127.0.0.1 port 0 first, then the committee is built from the real ports.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordo_network::{Config, Inbox, Network};
use ordo_types::{Committee, Keypair, Member};

pub const LOOPBACK: &str = "127.0.0.1:0";

/// Short timeouts so failures and reconnects show within a test's budget.
pub fn test_config() -> Config {
    Config {
        reconnect_min_ms: 50,
        reconnect_max_ms: 500,
        idle_timeout_ms: 2_000,
        keep_alive_ms: 400,
        ban_ms: 1_500,
        shutdown_drain_ms: 2_000,
        ..Config::default()
    }
}

/// A loopback UDP address nothing listens on: an OS-assigned port, bound
/// and released at once (never a fixed port).
pub fn released_udp_address() -> SocketAddr {
    let socket = std::net::UdpSocket::bind(LOOPBACK).unwrap();
    socket.local_addr().unwrap()
}

/// Like [`released_udp_address`], for TCP (members' API addresses, which
/// the transport never uses).
pub fn released_tcp_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind(LOOPBACK).unwrap();
    listener.local_addr().unwrap()
}

pub fn keypair(i: usize) -> Keypair {
    Keypair::from_seed([i as u8 + 1; 32])
}

pub fn committee(keys: &[Keypair], addresses: &[SocketAddr]) -> Arc<Committee> {
    let api_address = released_tcp_address();
    let members = keys
        .iter()
        .zip(addresses)
        .map(|(k, a)| Member {
            key: k.public(),
            address: *a,
            api_address,
        })
        .collect();
    Arc::new(Committee::new(members).unwrap())
}

pub struct Cluster {
    pub keys: Vec<Keypair>,
    pub addresses: Vec<SocketAddr>,
    pub committee: Arc<Committee>,
    pub nets: Vec<Network>,
    pub inboxes: Vec<Inbox>,
}

/// `n` endpoints, one config each (`configs[i % len]`), all started.
pub fn cluster(n: usize, configs: &[Config]) -> Cluster {
    let keys: Vec<Keypair> = (0..n).map(keypair).collect();
    let bound: Vec<_> = (0..n)
        .map(|_| Network::bind(LOOPBACK.parse().unwrap()).unwrap())
        .collect();
    let addresses: Vec<SocketAddr> = bound.iter().map(|b| b.local_addr()).collect();
    let committee = committee(&keys, &addresses);
    let mut nets = Vec::new();
    let mut inboxes = Vec::new();
    for (i, b) in bound.into_iter().enumerate() {
        let config = configs[i % configs.len()].clone();
        let (net, rx) = b.start(config, &keys[i], committee.clone()).unwrap();
        nets.push(net);
        inboxes.push(rx);
    }
    Cluster {
        keys,
        addresses,
        committee,
        nets,
        inboxes,
    }
}

/// Waits until `check` holds, polling every 10 ms, for at most `limit`.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}

pub async fn all_connected(nets: &[Network], limit: Duration) -> bool {
    let n = nets.len() as u16;
    eventually(limit, || {
        nets.iter().all(|net| {
            (0..n)
                .filter(|&p| p != net.me())
                .all(|p| net.is_connected(p))
        })
    })
    .await
}

/// Runs a test body under a hard time limit.
pub async fn bounded<T>(limit: Duration, body: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, body)
        .await
        .expect("test exceeded its time limit")
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}
