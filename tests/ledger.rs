//! The `ledger` reference rollup on a 4-node cluster: 10,000 transfers,
//! some invalid, spread across nodes; one node killed with SIGKILL mid-way
//! and restarted. Every node ends with the same state root, the state is
//! what an independent replay of the committed order gives, value is
//! conserved, invalid transfers are rejected, nothing is applied twice.
//! And a failing DA backend never stalls the chain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ordo_ledger::{dev_keypair, Ledger, Transfer};
use serde_json::Value;
use support::{http, json, tail, Cluster};

const NS: u64 = 1000;
const ACCOUNTS: u64 = 200;
const BALANCE: u64 = 1_000_000;
const TOTAL: usize = 10_000;

fn enable_ledger(text: &mut String) {
    assert!(text.contains("execution = \"none\""), "{text}");
    *text = text
        .replace("execution = \"none\"", "execution = \"ledger\"")
        .replace("dev_accounts = 0", &format!("dev_accounts = {ACCOUNTS}"))
        .replace("dev_balance = 1000000", &format!("dev_balance = {BALANCE}"));
}

/// A deterministic pseudo-random sequence.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

/// The transactions, per sender in nonce order, and how many are invalid.
/// Sender `s` always goes through the same node so its nonces arrive in
/// order.
fn workload() -> (Vec<Vec<Vec<u8>>>, usize) {
    let keys: Vec<_> = (0..ACCOUNTS).map(dev_keypair).collect();
    let mut rng = Lcg(7);
    let mut per_sender: Vec<Vec<Vec<u8>>> = vec![Vec::new(); ACCOUNTS as usize];
    let mut nonces = vec![0u64; ACCOUNTS as usize];
    let mut invalid = 0;
    for i in 0..TOTAL {
        let s = i % ACCOUNTS as usize;
        let to = keys[rng.next(ACCOUNTS) as usize].public();
        let tx = match i % 100 {
            // Bad signature: signed for another amount.
            5 => {
                invalid += 1;
                let mut t = Transfer::sign(&keys[s], to, 7, nonces[s]);
                t.amount = 8 + i as u64;
                t
            }
            // A nonce far ahead.
            11 => {
                invalid += 1;
                Transfer::sign(&keys[s], to, 1, 1_000_000 + i as u64)
            }
            // More than all the money there is.
            22 => {
                invalid += 1;
                Transfer::sign(&keys[s], to, ACCOUNTS * BALANCE + i as u64, nonces[s])
            }
            _ => {
                let t = Transfer::sign(&keys[s], to, 1 + rng.next(100), nonces[s]);
                nonces[s] += 1;
                t
            }
        };
        per_sender[s].push(tx.encode().unwrap());
    }
    (per_sender, invalid)
}

/// Posts transactions through `POST /v1/transactions/batch`, retrying what
/// the node refused (busy) until all are admitted.
fn submit_all(api: std::net::SocketAddr, txs: &[Vec<u8>]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for chunk in txs.chunks(500) {
        let mut rest: &[Vec<u8>] = chunk;
        while !rest.is_empty() {
            assert!(Instant::now() < deadline, "{api} refuses transactions");
            let mut body = Vec::new();
            for tx in rest {
                body.extend_from_slice(&(tx.len() as u32).to_be_bytes());
                body.extend_from_slice(tx);
            }
            let path = format!("/v1/transactions/batch?namespace={NS}");
            match http(api, "POST", &path, &[], &body) {
                Ok((200, reply)) | Ok((503, reply)) => {
                    let reply: Value = serde_json::from_slice(&reply).unwrap_or(Value::Null);
                    match reply["first_refused"].as_u64() {
                        None if reply["accepted"].is_u64() => rest = &[],
                        Some(first) => {
                            rest = &rest[first as usize..];
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        None => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

fn ledger(cluster: &Cluster, i: usize) -> Value {
    cluster
        .status(i)
        .map(|s| s["ledger"].clone())
        .unwrap_or(Value::Null)
}

fn ledger_height(cluster: &Cluster, i: usize) -> u64 {
    ledger(cluster, i)["height"].as_u64().unwrap_or(0)
}

fn processed(cluster: &Cluster, i: usize) -> u64 {
    let l = ledger(cluster, i);
    l["applied"].as_u64().unwrap_or(0) + l["rejected"].as_u64().unwrap_or(0)
}

fn wait_for(what: &str, cluster: &Cluster, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            let logs: Vec<String> = (0..cluster.size())
                .map(|i| {
                    format!(
                        "node {i}: {:?}\n{}",
                        cluster.status(i),
                        tail(&cluster.log(i), 10)
                    )
                })
                .collect();
            panic!("timed out waiting for {what}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn root(cluster: &Cluster, i: usize, height: u64) -> Value {
    json(cluster.apis[i], &format!("/v1/ledger/root/{height}"))
        .unwrap_or_else(|| panic!("node {i} has no ledger root at {height}"))
}

#[test]
fn n4_ledger_same_root_everywhere_after_10k_transfers_with_a_kill() {
    let started = Instant::now();
    let mut cluster = Cluster::start_with(4, enable_ledger);
    let (per_sender, invalid) = workload();
    // Phase 1: the first half of every sender's transactions, sender s
    // through node s % 4.
    let half = |s: &Vec<Vec<u8>>, first: bool| -> Vec<Vec<u8>> {
        let mid = s.len() / 2;
        if first {
            s[..mid].to_vec()
        } else {
            s[mid..].to_vec()
        }
    };
    let mut phase1: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 4];
    let mut phase2: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 4];
    for (s, txs) in per_sender.iter().enumerate() {
        phase1[s % 4].extend(half(txs, true));
        // Node 3 is killed in phase 2: its senders go through node 0.
        let node = if s % 4 == 3 { 0 } else { s % 4 };
        phase2[node].extend(half(txs, false));
    }
    let first_half: usize = phase1.iter().map(Vec::len).sum();
    let apis = cluster.apis.clone();
    std::thread::scope(|scope| {
        for (node, txs) in phase1.iter().enumerate() {
            let api = apis[node];
            scope.spawn(move || submit_all(api, txs));
        }
    });
    wait_for(
        "phase 1 on node 0",
        &cluster,
        Duration::from_secs(90),
        || processed(&cluster, 0) >= first_half as u64,
    );
    // Phase 2 through nodes 0..3; node 3 is killed (SIGKILL) while its
    // ledger applies it.
    let before_kill = std::thread::scope(|scope| {
        for (node, txs) in phase2.iter().enumerate().take(3) {
            let api = apis[node];
            scope.spawn(move || submit_all(api, txs));
        }
        wait_for(
            "node 3 to apply phase 2",
            &cluster,
            Duration::from_secs(90),
            || processed(&cluster, 3) > first_half as u64 + 500,
        );
        let before_kill = processed(&cluster, 3);
        cluster.kill(3);
        before_kill
    });
    cluster.start_node(3);
    cluster.wait_healthy(3, Duration::from_secs(20));
    wait_for(
        "every transfer on node 0",
        &cluster,
        Duration::from_secs(120),
        || processed(&cluster, 0) >= TOTAL as u64,
    );
    let height = ledger_height(&cluster, 0);
    wait_for(
        "every node's ledger at the height",
        &cluster,
        Duration::from_secs(120),
        || (0..4).all(|i| ledger_height(&cluster, i) >= height),
    );

    // Same root on every node at the final height and a few earlier ones.
    let mut checked = Vec::new();
    for h in [height / 4, height / 2, 3 * height / 4, height] {
        if h == 0 {
            continue;
        }
        let roots: Vec<Value> = (0..4).map(|i| root(&cluster, i, h)).collect();
        for r in &roots[1..] {
            assert_eq!(r, &roots[0], "roots differ at height {h}");
        }
        checked.push(h);
    }
    let final_root = root(&cluster, 0, height)["root"]
        .as_str()
        .unwrap()
        .to_string();

    // Nothing applied twice: the totals agree everywhere (a transfer
    // applied again would be rejected for its nonce and count twice).
    let totals: Vec<(u64, u64)> = (0..4)
        .map(|i| {
            let l = ledger(&cluster, i);
            (
                l["applied"].as_u64().unwrap(),
                l["rejected"].as_u64().unwrap(),
            )
        })
        .collect();
    for t in &totals[1..] {
        assert_eq!(t, &totals[0], "ledger totals differ: {totals:?}");
    }
    let (applied, rejected) = totals[0];
    assert_eq!(applied + rejected, TOTAL as u64);
    assert!(
        rejected >= invalid as u64,
        "{rejected} rejected < {invalid} invalid"
    );

    // An independent replay of node 0's committed order gives that root.
    let keys: Vec<_> = (0..ACCOUNTS)
        .map(|i| (dev_keypair(i).public(), BALANCE))
        .collect();
    let mut replay = Ledger::genesis(&keys).unwrap();
    for h in 1..=height {
        let (status, body) =
            http(cluster.apis[0], "GET", &format!("/v1/blocks/{h}"), &[], b"").unwrap();
        assert_eq!(status, 200, "block {h}");
        let block: Value = serde_json::from_slice(&body).unwrap();
        let txs: Vec<Vec<u8>> = block["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["namespace"].as_u64() == Some(NS))
            .map(|t| BASE64.decode(t["payload"].as_str().unwrap()).unwrap())
            .collect();
        replay
            .apply_block(h, txs.iter().map(Vec::as_slice))
            .unwrap();
    }
    assert_eq!(replay.root().to_hex(), final_root, "replay disagrees");

    // Value is conserved, and every node serves the same accounts.
    let mut supply = [0u128; 2];
    for (k, node) in [0usize, 3].into_iter().enumerate() {
        for (key, _) in &keys {
            let a = json(cluster.apis[node], &format!("/v1/ledger/accounts/{key}")).unwrap();
            supply[k] += u128::from(a["balance"].as_u64().unwrap());
            assert_eq!(a["nonce"].as_u64(), Some(replay.account(key).nonce));
        }
    }
    assert_eq!(supply, [u128::from(ACCOUNTS * BALANCE); 2]);
    assert_eq!(replay.total_supply(), u128::from(ACCOUNTS * BALANCE));
    // Node 3 resumed its ledger from its durable cursor, not from genesis.
    let log = cluster.log(3);
    let starts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("backend started") && l.contains("ledger"))
        .collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!(!starts[1].contains("cursor=0"), "{starts:?}");
    let s = cluster.status(3).unwrap();
    assert_eq!(s["backends"]["execution"]["kind"], "ledger");
    assert_eq!(s["backends"]["da"]["kind"], "local");
    eprintln!(
        "ledger: {TOTAL} transfers ({invalid} invalid), {applied} applied, {rejected} rejected, \
         height {height}, root {final_root}, roots equal at {checked:?}; node 3 killed after \
         {before_kill} processed; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn n4_failing_da_does_not_stall_the_chain() {
    let cluster = Cluster::start_with(4, |text| {
        // A folder below a file: every publish fails.
        *text = text.replace(
            "da = \"local\"",
            "da = \"local\"\nda_path = \"/dev/null/ordo-da\"",
        );
    });
    for k in 0..20 {
        assert_eq!(cluster.submit(k % 4, 5, format!("tx-{k}").as_bytes()), 202);
    }
    cluster.wait_delivered(0, 10, Duration::from_secs(30));
    let start = cluster.delivered(0);
    for k in 20..40 {
        assert_eq!(cluster.submit(k % 4, 5, format!("tx-{k}").as_bytes()), 202);
    }
    cluster.wait_delivered(0, start + 5, Duration::from_secs(30));
    let status = cluster.status(0).unwrap();
    let da = &status["backends"]["da"];
    assert_eq!(da["height"], 0, "{status}");
    assert!(da["lag"].as_u64().unwrap() >= start, "{status}");
    assert!(da["errors"].as_u64().unwrap() >= 1, "{status}");
    assert!(
        da["last_error"].as_str().unwrap().contains("/dev/null"),
        "{status}"
    );
    let (_, metrics) = http(cluster.apis[0], "GET", "/metrics", &[], b"").unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("ordo_backend_errors{backend=\"da\"}"),
        "{metrics}"
    );
    assert!(cluster.log(0).contains("backend failed"));
}

/// Node 0 publishes to an S3-compatible store (the signed test server):
/// the store goes down for a while and node 0 is killed with SIGKILL and
/// restarted; in the end every committed height is one object, in order.
#[cfg(feature = "s3")]
#[test]
fn n4_s3_da_publishes_every_height_once_through_an_outage_and_a_kill() {
    use ordo_node::backends::s3_test_server::S3TestServer;
    let s3 = S3TestServer::start().unwrap();
    let options: String = s3
        .options()
        .iter()
        .map(|(k, v)| format!("{k} = \"{v}\"\n"))
        .collect();
    let mut cluster = Cluster::start_prepared(
        4,
        |_| {},
        |dir| {
            let path = dir.join("node-0.toml");
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replace(
                "da = \"local\"",
                "da = \"object-store\"\nobject_store_url = \"s3://chain/node-0\"",
            ) + "\n[backends.object_store_options]\n"
                + &options;
            std::fs::write(&path, text).unwrap();
        },
    );
    let da_height = |c: &Cluster| -> u64 {
        c.status(0)
            .and_then(|s| s["backends"]["da"]["height"].as_u64())
            .unwrap_or(0)
    };
    let mut submitted = 0;
    let mut submit = |c: &Cluster, count: usize| {
        for _ in 0..count {
            assert_eq!(
                c.submit(1 + submitted % 3, 5, format!("s3-{submitted}").as_bytes()),
                202
            );
            submitted += 1;
        }
    };
    submit(&cluster, 20);
    cluster.wait_delivered(0, 5, Duration::from_secs(30));
    wait_for("first objects", &cluster, Duration::from_secs(30), || {
        da_height(&cluster) >= 3
    });

    s3.set_down(true);
    submit(&cluster, 20);
    let down_at = cluster.delivered(0);
    wait_for(
        "the outage to show",
        &cluster,
        Duration::from_secs(60),
        || {
            cluster.status(0).is_some_and(|s| {
                s["backends"]["da"]["last_error"].is_string()
                    && s["backends"]["da"]["lag"].as_u64().unwrap_or(0) > 0
            })
        },
    );
    // The chain keeps committing while the store is down.
    submit(&cluster, 20);
    cluster.wait_delivered(0, down_at + 3, Duration::from_secs(30));
    s3.set_down(false);

    cluster.kill(0);
    submit(&cluster, 8);
    cluster.start_node(0);
    cluster.wait_healthy(0, Duration::from_secs(20));
    submit(&cluster, 20);
    let target = cluster.delivered(1);
    cluster.wait_delivered(0, target, Duration::from_secs(60));
    wait_for("DA to catch up", &cluster, Duration::from_secs(60), || {
        da_height(&cluster) >= target
    });

    let height = da_height(&cluster);
    let objects = s3.objects();
    let prefix = "/chain/node-0/";
    assert!(objects.keys().all(|k| k.starts_with(prefix)), "{objects:?}");
    // Heights 1..=height and nothing above the cursor but at most the one
    // in flight.
    for h in 1..=height {
        let key = format!(
            "{prefix}{}",
            ordo_node::backends::local_da::LocalDa::location(h)
        );
        let bytes = objects
            .get(&key)
            .unwrap_or_else(|| panic!("height {h} missing"));
        let block: ordo_node::output::OutputBlock = ordo_types::codec::decode_local(bytes).unwrap();
        assert_eq!(block.height(), h);
    }
    assert!(
        objects.len() as u64 <= height + 1,
        "{} objects",
        objects.len()
    );
    // A put is repeated only for a height in flight at the kill.
    let repeated: Vec<_> = s3.puts().into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(repeated.len() <= 1, "{repeated:?}");
    assert!(s3.rejected().is_empty(), "{:?}", s3.rejected());
    let status = cluster.status(0).unwrap();
    assert_eq!(status["backends"]["da"]["kind"], "object-store", "{status}");
    // (Error counts restart with the process; the outage was seen above.)
    eprintln!(
        "s3 DA: {height} heights as {} objects, {submitted} transactions, outage from height {down_at}",
        objects.len()
    );
}
