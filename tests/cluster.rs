//! Whole-cluster tests: real `ordo` processes, real QUIC on loopback, real
//! disks. Named by size and fault.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use support::checks::{self, Ack};
use support::Cluster;

/// Submits `tx-<tag>-<k>` round-robin to `nodes` every 2 ms until stopped
/// (the shared loader of `support::checks`).
fn load(
    cluster: &Cluster,
    nodes: Vec<usize>,
    tag: &'static str,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Ack>>>,
) -> std::thread::JoinHandle<u64> {
    checks::load(
        cluster.apis.clone(),
        Arc::new(Mutex::new(nodes)),
        tag,
        Duration::from_millis(2),
        stop,
        acked,
        checks::Wait::Accepted,
    )
}

/// Checks that the nodes agree up to the lowest delivered height and
/// returns how often each payload was committed (on node `reference`).
fn agree(cluster: &Cluster, nodes: &[usize], reference: usize) -> HashMap<String, usize> {
    let height = nodes.iter().map(|i| cluster.delivered(*i)).min().unwrap();
    assert!(height > 0);
    let base = cluster.history(reference, height);
    for i in nodes {
        if *i != reference {
            assert_eq!(
                cluster.history(*i, height),
                base,
                "node {i} disagrees with node {reference}"
            );
        }
    }
    let mut counts = HashMap::new();
    for (_, txs) in &base {
        for (_, payload) in txs {
            *counts.entry(payload.clone()).or_insert(0) += 1;
        }
    }
    counts
}

fn wait_for_all(cluster: &Cluster, node: usize, payloads: &HashSet<String>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let h = cluster.delivered(node);
        let got: HashSet<String> = cluster
            .history(node, h)
            .into_iter()
            .flat_map(|(_, txs)| txs.into_iter().map(|(_, p)| p))
            .collect();
        let missing = payloads.difference(&got).count();
        if missing == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {node}: {missing} acknowledged transactions never committed"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn n4_processes_commit_transactions_from_different_nodes_in_one_order() {
    let cluster = Cluster::start(4);
    let mut sent = HashSet::new();
    for k in 0..200u32 {
        let payload = format!("tx-{k}");
        assert_eq!(cluster.submit(k as usize % 4, 7, payload.as_bytes()), 202);
        sent.insert(BASE64.encode(payload.as_bytes()));
    }
    // A repeat of an accepted transaction is accepted once.
    assert_eq!(cluster.submit(0, 7, b"tx-0"), 202);
    for i in 0..4 {
        wait_for_all(&cluster, i, &sent, Duration::from_secs(30));
    }
    let counts = agree(&cluster, &[0, 1, 2, 3], 0);
    for payload in &sent {
        assert_eq!(
            counts.get(payload),
            Some(&1),
            "{payload} committed {:?} times",
            counts.get(payload)
        );
    }
}

#[test]
fn n4_kill9_under_load_restart_catches_up_without_loss_or_duplicates() {
    let mut cluster = Cluster::start(4);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    // Load goes to every node, including the one about to be killed.
    let loader = load(&cluster, vec![0, 1, 2, 3], "a", stop.clone(), acked.clone());
    std::thread::sleep(Duration::from_secs(3));
    cluster.kill(1);
    std::thread::sleep(Duration::from_secs(3));
    cluster.start_node(1);
    cluster.wait_healthy(1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();

    let acked = acked.lock().unwrap().clone();
    // Acknowledged by a node that stayed up: must commit exactly once.
    // Acknowledged by the killed node: 202 means "in that node's intake",
    // so a SIGKILL may lose it, but it must never commit twice.
    let durable: HashSet<String> = acked
        .iter()
        .filter(|a| a.node != 1)
        .map(|a| a.payload.clone())
        .collect();
    assert!(durable.len() > 500, "load too small: {}", durable.len());
    wait_for_all(&cluster, 0, &durable, Duration::from_secs(60));
    let target = cluster.delivered(0);
    cluster.wait_delivered(1, target, Duration::from_secs(60));
    let counts = agree(&cluster, &[0, 1, 2, 3], 0);
    for payload in &durable {
        assert_eq!(
            counts.get(payload),
            Some(&1),
            "acknowledged {payload} committed {:?} times",
            counts.get(payload)
        );
    }
    assert!(
        counts.values().all(|c| *c == 1),
        "a transaction committed twice"
    );
    assert!(cluster.log(1).contains("node started"));
}

/// With a retention of 300 heights (and a dedupe window within it), old
/// batches are pruned while the load runs; the wiped node syncs pruned
/// heights as verified headers only and everything retained with its
/// batches.
#[test]
fn n4_empty_data_dir_after_1000_heights_catches_up_then_participates() {
    let mut cluster = Cluster::start_with(4, |config| {
        *config = config.replace("retention_heights = 100000", "retention_heights = 300");
        *config = config.replace(
            "dedupe_window_heights = 10000",
            "dedupe_window_heights = 200",
        );
    });
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let loader = load(&cluster, vec![0, 1, 2, 3], "b", stop.clone(), acked.clone());
    cluster.wait_delivered(0, 1_000, Duration::from_secs(240));
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();

    // Node 3 loses its disk and starts from nothing: it must fetch every
    // block and batch, verifying each certificate.
    cluster.kill(3);
    std::fs::remove_dir_all(cluster.data_dir(3)).unwrap();
    cluster.start_node(3);
    cluster.wait_healthy(3, Duration::from_secs(20));
    let target = cluster.delivered(0);
    cluster.wait_delivered(3, target, Duration::from_secs(120));
    assert!(
        cluster.log(3).contains("catching up"),
        "{}",
        support::tail(&cluster.log(3), 20)
    );

    // With node 0 gone, no quorum exists without node 3: new commits prove
    // it participates.
    cluster.kill(0);
    let before = cluster.delivered(1);
    let mut fresh = HashSet::new();
    for k in 0..50u32 {
        let payload = format!("after-{k}");
        assert_eq!(
            cluster.submit(1 + (k as usize) % 3, 2, payload.as_bytes()),
            202
        );
        fresh.insert(BASE64.encode(payload.as_bytes()));
    }
    wait_for_all(&cluster, 3, &fresh, Duration::from_secs(60));
    assert!(cluster.delivered(3) > before);
    let counts = agree(&cluster, &[1, 2, 3], 3);
    assert!(counts.values().all(|c| *c == 1));
}

/// A peer asking for a committed block older than a node's in-memory window
/// (`recent_blocks = 4`) gets it from the node's storage. The asker is a
/// stand-in for node 3 on its address with its key, over real QUIC.
#[test]
fn n4_block_older_than_the_recent_window_is_served_from_storage() {
    use ordo_consensus::messages::Message;
    use ordo_network::{Class, Network};
    use ordo_types::codec::{decode, encode};
    use ordo_types::{Committee, Digest};

    let mut cluster = Cluster::start_with(4, |config| {
        *config = config.replace("recent_blocks = 1024", "recent_blocks = 4");
    });
    cluster.wait_delivered(0, 30, Duration::from_secs(60));
    let old = support::json(cluster.apis[0], "/v1/blocks/3").unwrap();
    let digest = Digest::from_hex(old["digest"].as_str().unwrap()).unwrap();
    cluster.kill(3);
    let dir = cluster.dir.path().to_path_buf();
    let keypair = ordo_node::keyfile::read(&dir.join("node-3.key")).unwrap();
    let committee = Arc::new(Committee::load(&dir.join("committee.toml")).unwrap());
    let addr = committee.member(3).unwrap().address;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let served = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        // The port was just freed by the kill; retry the bind briefly.
        let bound = loop {
            match Network::bind(addr) {
                Ok(bound) => break bound,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot bind {addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let (net, mut inbox) = bound
            .start(ordo_network::Config::default(), &keypair, committee.clone())
            .unwrap();
        let request = bytes::Bytes::from(encode(&Message::BlockRequest(digest)).unwrap());
        let mut served = HashSet::new();
        while served.len() < 3 {
            assert!(
                Instant::now() < deadline,
                "block 3 served by {served:?} only"
            );
            for peer in 0..3u16 {
                if !served.contains(&peer) {
                    let _ = net.send(peer, Class::Consensus, request.clone());
                }
            }
            let wait = tokio::time::sleep(Duration::from_millis(500));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    incoming = inbox.recv() => {
                        let incoming = incoming.expect("network stopped");
                        if incoming.class != Class::Consensus {
                            continue;
                        }
                        if let Ok(Message::BlockResponse(block)) = decode(&incoming.bytes) {
                            if block.digest() == digest {
                                assert_eq!(block.height(), 3);
                                served.insert(incoming.from);
                            }
                        }
                    }
                    _ = &mut wait => break,
                }
            }
        }
        served
    });
    assert_eq!(served.len(), 3);
}
