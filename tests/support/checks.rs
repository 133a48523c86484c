//! Checks shared by the fault and attack tests: agreement, no gap, exactly
//! once, and a load generator that records what was acknowledged.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::{http, Cluster};

/// One acknowledged submission: node, base64 payload, when the 202 came.
#[derive(Clone, Debug)]
pub struct Ack {
    pub node: usize,
    pub payload: String,
    pub at: Instant,
}

/// Which answers [`load`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Every 202 (the transaction is in the node's intake).
    Accepted,
    /// Submits with `?durable=true` and records only answers saying the
    /// transaction is stored on the node (`"durable": true`).
    Durable,
}

/// Submits `tx-<tag>-<k>` to the nodes `targets()` names (read before
/// every request, so a test can take a node out of rotation) every
/// `pause` until `stop`; records the answers `wait` names.
pub fn load(
    apis: Vec<SocketAddr>,
    targets: Arc<Mutex<Vec<usize>>>,
    tag: &'static str,
    pause: Duration,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Ack>>>,
    wait: Wait,
) -> std::thread::JoinHandle<u64> {
    let durable = wait == Wait::Durable;
    let path = if durable {
        "/v1/transactions?namespace=1&durable=true"
    } else {
        "/v1/transactions?namespace=1"
    };
    std::thread::spawn(move || {
        let mut k = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let nodes = targets.lock().unwrap().clone();
            if nodes.is_empty() {
                std::thread::sleep(pause);
                continue;
            }
            let node = nodes[(k as usize) % nodes.len()];
            let payload = format!("tx-{tag}-{k}");
            let (status, body) =
                http(apis[node], "POST", path, &[], payload.as_bytes()).unwrap_or((0, Vec::new()));
            let stored = !durable
                || serde_json::from_slice::<serde_json::Value>(&body)
                    .is_ok_and(|v| v["durable"] == true);
            if status == 202 && stored {
                acked.lock().unwrap().push(Ack {
                    node,
                    payload: BASE64.encode(payload.as_bytes()),
                    at: Instant::now(),
                });
            }
            k += 1;
            std::thread::sleep(pause);
        }
        k
    })
}

/// Block `h` of node `i` as JSON (`None` if not 200).
pub fn block(cluster: &Cluster, i: usize, h: u64) -> Option<serde_json::Value> {
    super::json(cluster.apis[i], &format!("/v1/blocks/{h}"))
}

/// Checks, up to the lowest delivered height of `nodes`: every height
/// 1..=h is served (no gap), each block's parent is the previous block's
/// digest, and every node holds the same blocks. Returns the common height
/// and how often each payload was committed.
pub fn agree_no_gap(cluster: &Cluster, nodes: &[usize]) -> (u64, HashMap<String, usize>) {
    let height = nodes.iter().map(|i| cluster.delivered(*i)).min().unwrap();
    assert!(height > 0, "nothing delivered");
    let reference = nodes[0];
    let mut counts = HashMap::new();
    let mut parent: Option<String> = None;
    for h in 1..=height {
        let b = block(cluster, reference, h)
            .unwrap_or_else(|| panic!("node {reference}: block {h} missing (gap)"));
        assert_eq!(b["height"].as_u64(), Some(h));
        if let Some(p) = &parent {
            assert_eq!(
                b["parent"].as_str(),
                Some(p.as_str()),
                "node {reference}: block {h} does not extend block {}",
                h - 1
            );
        }
        parent = Some(b["digest"].as_str().unwrap().to_string());
        for t in b["transactions"].as_array().unwrap() {
            *counts
                .entry(t["payload"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        for i in &nodes[1..] {
            let other = block(cluster, *i, h)
                .unwrap_or_else(|| panic!("node {i}: block {h} missing (gap)"));
            assert_eq!(
                other["digest"], b["digest"],
                "FORK: node {i} and node {reference} differ at height {h}"
            );
            assert_eq!(other["transactions"], b["transactions"]);
        }
    }
    (height, counts)
}

/// Waits until every node in `nodes` has delivered at least `height`.
pub fn wait_all_delivered(cluster: &Cluster, nodes: &[usize], height: u64, timeout: Duration) {
    for i in nodes {
        cluster.wait_delivered(*i, height, timeout);
    }
}

/// Waits until node `i` has committed every payload in `payloads`.
pub fn wait_committed(cluster: &Cluster, i: usize, payloads: &HashSet<String>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut seen: HashSet<String> = HashSet::new();
    let mut next = 1;
    loop {
        let h = cluster.delivered(i);
        while next <= h {
            match block(cluster, i, next) {
                Some(b) => {
                    for t in b["transactions"].as_array().unwrap() {
                        seen.insert(t["payload"].as_str().unwrap().to_string());
                    }
                    next += 1;
                }
                None => break,
            }
        }
        let missing: Vec<&String> = payloads.difference(&seen).take(5).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {i}: {} acknowledged transactions never committed, e.g. {missing:?}",
            payloads.difference(&seen).count()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Height progress of node `i` over `window`.
pub fn progress(cluster: &Cluster, i: usize, window: Duration) -> u64 {
    let before = cluster.delivered(i);
    std::thread::sleep(window);
    cluster.delivered(i).saturating_sub(before)
}

/// Polls node `i`'s delivered blocks every 10 ms and records when each
/// payload first appears. Returns the map when `stop` is set.
pub fn watch_commits(
    api: SocketAddr,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<HashMap<String, Instant>> {
    std::thread::spawn(move || {
        let mut seen = HashMap::new();
        let mut next = 1u64;
        while !stop.load(Ordering::Relaxed) {
            let h = super::json(api, "/v1/status")
                .and_then(|s| s["delivered_height"].as_u64())
                .unwrap_or(0);
            while next <= h {
                let Some(b) = super::json(api, &format!("/v1/blocks/{next}")) else {
                    break;
                };
                let now = Instant::now();
                for t in b["transactions"].as_array().unwrap() {
                    seen.entry(t["payload"].as_str().unwrap().to_string())
                        .or_insert(now);
                }
                next += 1;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        seen
    })
}

/// The `q` quantile (0..=1) of `values` (sorted in place).
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if values.is_empty() {
        return f64::NAN;
    }
    values[((values.len() - 1) as f64 * q).round() as usize]
}
