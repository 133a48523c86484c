//! A member that goes away and comes back on the same address (new
//! process, same key) is reached again without operator action. Member 1
//! of three is restarted: member 0 dials it, it dials member 2, so both
//! directions of connection set-up are exercised.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use ordo_network::{Bound, Class, Inbox, Network};

/// Rebinding can race the old socket's release for a moment.
async fn rebind(addr: SocketAddr) -> Bound {
    let start = Instant::now();
    loop {
        match Network::bind(addr) {
            Ok(bound) => return bound,
            Err(e) if start.elapsed() < Duration::from_secs(3) => {
                tracing::debug!(%e, "rebind");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot rebind {addr}: {e}"),
        }
    }
}

/// Sends probes until `to` receives one from `from`; returns how long it took.
async fn probe(from: &Network, to: u16, inbox: &mut Inbox) -> Duration {
    let start = Instant::now();
    loop {
        let _ = from.send(to, Class::Consensus, Bytes::from_static(b"probe"));
        tokio::select! {
            m = inbox.recv() => {
                if m.is_some_and(|m| m.from == from.me()) {
                    return start.elapsed();
                }
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

async fn all_pairs_talk(nets: &[&Network], inboxes: &mut [&mut Inbox]) -> Duration {
    let mut slowest = Duration::ZERO;
    for (i, from) in nets.iter().enumerate() {
        for (j, inbox) in inboxes.iter_mut().enumerate() {
            if i != j {
                slowest = slowest.max(probe(from, j as u16, inbox).await);
            }
        }
    }
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_member_shut_down_and_restarted_on_same_port_is_reached_again() {
    init_tracing();
    bounded(Duration::from_secs(20), async {
        let mut c = cluster(3, &[test_config()]);
        assert!(all_connected(&c.nets, Duration::from_secs(5)).await);

        let old = c.nets.remove(1);
        drop(c.inboxes.remove(1));
        old.shutdown().await;
        drop(old);
        let restarted_at = Instant::now();
        let bound = rebind(c.addresses[1]).await;
        let (n1, mut inbox1) = bound
            .start(test_config(), &c.keys[1], c.committee.clone())
            .unwrap();

        let (a, b) = c.inboxes.split_at_mut(1);
        let took = tokio::time::timeout(
            Duration::from_secs(5),
            all_pairs_talk(
                &[&c.nets[0], &n1, &c.nets[1]],
                &mut [&mut a[0], &mut inbox1, &mut b[0]],
            ),
        )
        .await
        .expect("not reconnected within 5 s");
        eprintln!(
            "graceful restart: all pairs talking {:?} after restart",
            restarted_at.elapsed()
        );
        assert!(took < Duration::from_secs(5));
        assert!(c.nets[0].metrics().peer(1).unwrap().reconnects >= 1);
        for net in [&c.nets[0], &n1, &c.nets[1]] {
            net.shutdown().await;
        }
    })
    .await;
}

/// An idle timeout far above the reconnect bound asserted below.
fn crash_config() -> ordo_network::Config {
    ordo_network::Config {
        idle_timeout_ms: 10_000,
        ..test_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_member_crashed_and_restarted_on_same_port_is_reached_again() {
    init_tracing();
    bounded(Duration::from_secs(25), async {
        // Member 1 runs on its own runtime; shutting that runtime down
        // drops its tasks mid-flight and sends nothing, like a killed process.
        let keys: Vec<_> = (0..3).map(keypair).collect();
        let bound: Vec<_> = (0..3)
            .map(|_| Network::bind(LOOPBACK.parse().unwrap()).unwrap())
            .collect();
        let addresses: Vec<SocketAddr> = bound.iter().map(|b| b.local_addr()).collect();
        let committee = committee(&keys, &addresses);
        let mut bound = bound.into_iter();
        let (b0, b1, b2) = (
            bound.next().unwrap(),
            bound.next().unwrap(),
            bound.next().unwrap(),
        );
        let (n0, mut inbox0) = b0
            .start(crash_config(), &keys[0], committee.clone())
            .unwrap();
        let (n2, mut inbox2) = b2
            .start(crash_config(), &keys[2], committee.clone())
            .unwrap();
        let doomed = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (n1, inbox1) = {
            let _enter = doomed.enter();
            b1.start(crash_config(), &keys[1], committee.clone())
                .unwrap()
        };
        let connected = |nets: [&Network; 3]| {
            nets.iter()
                .all(|n| (0..3).filter(|&p| p != n.me()).all(|p| n.is_connected(p)))
        };
        assert!(eventually(Duration::from_secs(5), || connected([&n0, &n1, &n2])).await);

        doomed.shutdown_background();
        drop(n1);
        drop(inbox1);
        let restarted_at = Instant::now();
        let bound = rebind(addresses[1]).await;
        let (n1, mut inbox1) = bound
            .start(crash_config(), &keys[1], committee.clone())
            .unwrap();

        // Member 0 still holds a connection to the dead process. The new
        // process answers its next packet with a stateless reset (the reset
        // key is derived from the member's key), so member 0 redials long
        // before the 10 s idle timeout would have told it; member 2 is
        // dialed by the new 1.
        let took = tokio::time::timeout(
            Duration::from_secs(8),
            all_pairs_talk(
                &[&n0, &n1, &n2],
                &mut [&mut inbox0, &mut inbox1, &mut inbox2],
            ),
        )
        .await
        .expect("not reconnected within 8 s");
        eprintln!(
            "crash restart: all pairs talking {:?} after restart",
            restarted_at.elapsed()
        );
        assert!(
            took < Duration::from_secs(3),
            "took {took:?}: the dead connection was not reset"
        );
        assert!(n0.metrics().peer(1).unwrap().reconnects >= 1);
        for net in [&n0, &n1, &n2] {
            net.shutdown().await;
        }
    })
    .await;
}
