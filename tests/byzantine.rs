//! Hostile peers and clients against a real cluster: a Byzantine committee
//! member over real QUIC, a non-member dialing the consensus port, and
//! hostile HTTP bodies. Honest nodes must keep committing, count the
//! misbehaviour, and never crash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ordo_consensus::messages::{timeout_message, vote_message, Block, Message, QuorumCert};
use ordo_consensus::{Timeout, Vote};
use ordo_mempool::{Batch, BatchAck, BatchCert, Transaction};
use ordo_network::{Class, Network};
use ordo_node::wire::SyncMessage;
use ordo_types::codec::encode;
use ordo_types::{Committee, Digest, Keypair, Signature};
use support::checks;
use support::Cluster;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn misbehaviour(cluster: &Cluster, i: usize) -> u64 {
    cluster
        .status(i)
        .and_then(|s| s["misbehaviour_reports"].as_u64())
        .unwrap_or(0)
}

/// Every kind of bad frame a member can send, by class. Returns how many
/// frames of each kind were queued.
fn attack_frames(
    committee: &Committee,
    me: &Keypair,
    rng: &mut Rng,
) -> Vec<(Class, String, Bytes)> {
    let mut out = Vec::new();
    let mut push =
        |class, kind: &str, bytes: Vec<u8>| out.push((class, kind.to_string(), Bytes::from(bytes)));
    let genesis = Block::genesis(committee.digest());
    let genesis_qc = QuorumCert::genesis(committee);
    // 2. Consensus: bad signatures, absurd views, forged authors.
    for k in 0..50u64 {
        let view = match k % 3 {
            0 => u64::MAX - k,
            1 => 1 << 40,
            _ => 5 + k,
        };
        let block = Digest::of(&rng.bytes(8));
        // A vote signed with garbage.
        push(
            Class::Consensus,
            "vote_bad_signature",
            encode(&Message::Vote(Vote {
                view,
                block,
                author: 3,
                signature: Signature(rng.bytes(64).try_into().unwrap()),
                inclusion: None,
            }))
            .unwrap(),
        );
        // A correctly signed vote for an absurd view.
        push(
            Class::Consensus,
            "vote_absurd_view",
            encode(&Message::Vote(Vote {
                view,
                block,
                author: 3,
                signature: me.sign(&vote_message(view, &block)),
                inclusion: None,
            }))
            .unwrap(),
        );
        // A vote claiming another author.
        push(
            Class::Consensus,
            "vote_forged_author",
            encode(&Message::Vote(Vote {
                view: 5 + k,
                block,
                author: (k % 3) as u16,
                signature: me.sign(&vote_message(5 + k, &block)),
                inclusion: None,
            }))
            .unwrap(),
        );
        // A correctly signed timeout for an absurd view.
        push(
            Class::Consensus,
            "timeout_absurd_view",
            encode(&Message::Timeout(Box::new(Timeout {
                view,
                high_qc: genesis_qc.clone(),
                author: 3,
                signature: me.sign(&timeout_message(view, 0)),
                inclusion: None,
            })))
            .unwrap(),
        );
        // A proposal with a bad signature, and one at an absurd view whose
        // parent QC has no votes.
        let mut proposal = genesis.clone();
        proposal.header.view = view;
        proposal.header.height = 1;
        proposal.header.author = 3;
        proposal.header.parent = genesis.digest();
        proposal.parent_qc = genesis_qc.clone();
        proposal.signature = Signature(rng.bytes(64).try_into().unwrap());
        push(
            Class::Consensus,
            "proposal_bad_signature",
            encode(&Message::Proposal(Box::new(proposal.clone()))).unwrap(),
        );
        let mut qc = genesis_qc.clone();
        qc.view = view - 1;
        qc.block = block;
        proposal.parent_qc = qc;
        proposal.signature = me.sign(&ordo_consensus::messages::proposal_message(
            &proposal.header.digest(),
        ));
        push(
            Class::Consensus,
            "proposal_unproven_qc",
            encode(&Message::Proposal(Box::new(proposal))).unwrap(),
        );
        push(
            Class::Consensus,
            "block_request_unknown",
            encode(&Message::BlockRequest(block)).unwrap(),
        );
    }
    // 3. Batches: oversize (above batch_bytes, under the frame limit),
    // spoofed author, bad acks and certificates.
    let big = Batch {
        author: 3,
        seq: 1,
        txs: (0..60)
            .map(|i| Transaction::new(1, Bytes::from(vec![i as u8; 120 * 1024])))
            .collect(),
    };
    push(
        Class::Batches,
        "batch_oversize_7MiB",
        encode(&ordo_mempool::Message::Batch(big)).unwrap(),
    );
    for k in 0..50u64 {
        push(
            Class::Batches,
            "batch_spoofed_author",
            encode(&ordo_mempool::Message::Batch(Batch {
                author: (k % 3) as u16,
                seq: k,
                txs: vec![Transaction::new(1, Bytes::from(rng.bytes(64)))],
            }))
            .unwrap(),
        );
        push(
            Class::Batches,
            "ack_bad_signature",
            encode(&ordo_mempool::Message::Ack(BatchAck {
                batch: Digest::of(&rng.bytes(8)),
                signer: 3,
                signature: Signature(rng.bytes(64).try_into().unwrap()),
            }))
            .unwrap(),
        );
        push(
            Class::Batches,
            "cert_bad_signatures",
            encode(&ordo_mempool::Message::Cert(BatchCert {
                batch: Digest::of(&rng.bytes(8)),
                author: 3,
                seq: k,
                tx_count: u32::MAX,
                byte_size: u64::MAX,
                signatures: (0..4)
                    .map(|i| (i, Signature(rng.bytes(64).try_into().unwrap())))
                    .collect(),
            }))
            .unwrap(),
        );
        push(
            Class::Batches,
            "batch_response_unrequested",
            encode(&ordo_mempool::Message::BatchResponse(Batch {
                author: 3,
                seq: 1_000_000 + k,
                txs: vec![],
            }))
            .unwrap(),
        );
    }
    // 4. Sync: absurd requests and claims, fabricated blocks.
    for k in 0..20u64 {
        push(
            Class::Sync,
            "sync_absurd_request",
            encode(&SyncMessage::BlocksRequest {
                from: u64::MAX - k,
                count: u64::MAX,
            })
            .unwrap(),
        );
        push(
            Class::Sync,
            "sync_tip_claim_absurd",
            encode(&SyncMessage::Tip {
                height: u64::MAX - k,
            })
            .unwrap(),
        );
        push(
            Class::Sync,
            "sync_unsolicited_empty_blocks",
            encode(&SyncMessage::Blocks(Vec::new())).unwrap(),
        );
    }
    // 1. Last, garbage that does not decode, on every class: the nodes
    // report it to the transport, which bans the sender after three such
    // frames, so it comes after everything that does decode.
    for class in Class::ALL {
        for _ in 0..100 {
            let len = 1 + (rng.next() % 2000) as usize;
            push(class, "garbage", rng.bytes(len));
        }
        push(class, "empty", Vec::new());
    }
    out
}

/// One series of node `i`'s `/metrics`, e.g. `ordo_peer_bans{peer="3"}`.
fn series(cluster: &Cluster, i: usize, series: &str) -> Option<f64> {
    let (status, body) = support::http(cluster.apis[i], "GET", "/metrics", &[], b"").ok()?;
    if status != 200 {
        return None;
    }
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A node holding committee member 3's key (node 3's process is killed and
/// the attacker takes its address) sends, over real authenticated QUIC,
/// votes with bad signatures, correctly signed votes and timeouts for
/// absurd views, forged authors, proposals with bad signatures or unproven
/// QCs, a 7 MiB batch, spoofed batches, bad acks and certificates, absurd
/// sync requests and tip claims, then garbage on every class (which gets it
/// banned: the nodes report undecodable frames to the transport) and
/// frames above the 8 MiB limit. Meanwhile a client submits transactions to
/// the three honest nodes. They keep committing, every acknowledged
/// transaction commits once, every honest node counts the misbehaviour
/// (`misbehaviour_reports` in /v1/status and /metrics) and banned the
/// attacker (`ordo_peer_bad_frames`, `ordo_peer_bans`), and no honest node
/// exits.
#[test]
fn n4_byzantine_member_over_quic_is_counted_and_honest_nodes_keep_committing() {
    let mut cluster = Cluster::start(4);
    cluster.wait_delivered(0, 3, Duration::from_secs(30));
    cluster.kill(3);
    let dir = cluster.dir.path().to_path_buf();
    let keypair = ordo_node::keyfile::read(&dir.join("node-3.key")).unwrap();
    let committee = Arc::new(Committee::load(&dir.join("committee.toml")).unwrap());
    let addr = committee.member(3).unwrap().address;
    let before: Vec<u64> = (0..3).map(|i| misbehaviour(&cluster, i)).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let loader = checks::load(
        cluster.apis.clone(),
        Arc::new(Mutex::new(vec![0, 1, 2])),
        "byz",
        Duration::from_millis(5),
        stop.clone(),
        acked.clone(),
        checks::Wait::Accepted,
    );
    let h_start = cluster.delivered(0);
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sent = runtime.block_on(async {
        // The port was just freed by the kill; retry the bind briefly.
        let bound = {
            let mut tries = 0;
            loop {
                match Network::bind(addr) {
                    Ok(b) => break b,
                    Err(e) if tries < 50 => {
                        tries += 1;
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("cannot bind {addr}: {e}"),
                }
            }
        };
        let config = ordo_network::Config {
            // Let the attacker send frames the honest nodes refuse.
            max_frame_bytes: 16 * 1024 * 1024,
            ..ordo_network::Config::default()
        };
        let (net, mut inbox) = bound.start(config, &keypair, committee.clone()).unwrap();
        // Drain what honest nodes send, so their queues keep moving.
        let drain = tokio::spawn(async move { while inbox.recv().await.is_some() {} });
        // Wait for the honest nodes (lower indices) to dial us.
        let deadline = Instant::now() + Duration::from_secs(30);
        while net.metrics().peers.iter().filter(|p| p.connected).count() < 3 {
            assert!(Instant::now() < deadline, "honest nodes never connected");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut sent = std::collections::BTreeMap::<String, u64>::new();
        for round in 0..3 {
            for (class, kind, bytes) in attack_frames(&committee, &keypair, &mut rng) {
                // The oversize batch only once: the queue holds 64 frames.
                if kind == "batch_oversize_7MiB" && round > 0 {
                    continue;
                }
                for to in 0..3u16 {
                    // Once banned, frames would only fill our own queues.
                    if !net.is_connected(to) {
                        continue;
                    }
                    if net.send(to, class, bytes.clone()).is_ok() {
                        *sent.entry(kind.clone()).or_default() += 1;
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                tokio::task::yield_now().await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        // Frames above the 8 MiB limit: refused by length prefix, then a ban.
        for _ in 0..4 {
            let huge = Bytes::from(vec![0u8; 9 * 1024 * 1024]);
            for to in 0..3u16 {
                if net.send(to, Class::Batches, huge.clone()).is_ok() {
                    *sent.entry("frame_above_8MiB".into()).or_default() += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        drain.abort();
        drop(net);
        sent
    });
    let attack = started.elapsed();
    // Honest nodes: still running, still committing, misbehaviour counted.
    let during = cluster.delivered(0) - h_start;
    for i in 0..3 {
        assert!(cluster.running(i), "honest node {i} exited");
    }
    let after: Vec<u64> = (0..3).map(|i| misbehaviour(&cluster, i)).collect();
    for i in 0..3 {
        assert!(
            after[i] > before[i],
            "node {i} counted no misbehaviour ({} -> {})",
            before[i],
            after[i]
        );
        let metric = cluster.metric(i, "ordo_misbehaviour_reports");
        assert!(metric.unwrap_or(0.0) > 0.0, "node {i}: /metrics {metric:?}");
        let bad = series(&cluster, i, r#"ordo_peer_bad_frames{peer="3"}"#);
        let bans = series(&cluster, i, r#"ordo_peer_bans{peer="3"}"#);
        assert!(bad.unwrap_or(0.0) >= 3.0, "node {i}: bad frames {bad:?}");
        assert!(bans.unwrap_or(0.0) >= 1.0, "node {i}: bans {bans:?}");
    }
    let rest = checks::progress(&cluster, 0, Duration::from_secs(4));
    assert!(
        during >= 3,
        "honest nodes committed {during} heights during the attack"
    );
    assert!(rest >= 1, "honest nodes stalled after the attack");
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();
    let must: HashSet<String> = acked
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.payload.clone())
        .collect();
    for i in 0..3 {
        checks::wait_committed(&cluster, i, &must, Duration::from_secs(60));
    }
    let (height, counts) = checks::agree_no_gap(&cluster, &[0, 1, 2]);
    for (payload, count) in &counts {
        assert_eq!(*count, 1, "{payload} committed {count} times");
    }
    eprintln!(
        "byzantine: attack {attack:?}, frames queued by kind {sent:?}; honest heights +{during} during, \
         misbehaviour {before:?} -> {after:?}; {} acknowledged, all committed once; height {height}",
        must.len()
    );
    // The real node 3 comes back on its own data and catches up.
    cluster.start_node(3);
    cluster.wait_healthy(3, Duration::from_secs(30));
    let target = cluster.delivered(0);
    cluster.wait_delivered(3, target, Duration::from_secs(60));
    checks::agree_no_gap(&cluster, &[0, 1, 2, 3]);
}

/// A key outside the committee dials a node's consensus port: the
/// handshake is refused (the node logs it), no frame is delivered, and the
/// node keeps committing.
#[test]
fn n4_non_member_dialing_the_consensus_port_is_refused() {
    let cluster = Cluster::start(4);
    cluster.wait_delivered(0, 2, Duration::from_secs(30));
    let dir = cluster.dir.path().to_path_buf();
    let real = Committee::load(&dir.join("committee.toml")).unwrap();
    // The outsider's own view: the real committee plus itself, index 4
    // (higher than everyone, so it would be the one accepting)... and a
    // variant where it claims index 0's place with its own key, so it
    // dials the others.
    let outsider = Keypair::generate().unwrap();
    let before = cluster.misbehaviour_or_zero();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let delivered = runtime.block_on(async {
        let mut members: Vec<ordo_types::Member> = real
            .indices()
            .map(|i| real.member(i).unwrap().clone())
            .collect();
        let bound = Network::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        members[0] = ordo_types::Member {
            key: outsider.public(),
            address: bound.local_addr(),
            api_address: "127.0.0.1:1".parse().unwrap(),
        };
        let fake = Arc::new(Committee::new(members).unwrap());
        let config = ordo_network::Config {
            reconnect_min_ms: 50,
            reconnect_max_ms: 200,
            ..ordo_network::Config::default()
        };
        let (net, mut inbox) = bound.start(config, &outsider, fake).unwrap();
        for _ in 0..20 {
            let _ = net.broadcast(Class::Consensus, Bytes::from_static(b"hello from outside"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let metrics = net.metrics();
        let connected = metrics.peers.iter().filter(|p| p.connected).count();
        let mut got = 0;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), inbox.recv()).await
        {
            got += 1;
        }
        drop(net);
        (connected, got)
    });
    // With TLS 1.3 the dialer finishes its side of the handshake before the
    // server judges its certificate, so the outsider may count a connection
    // for an instant before it is closed; what matters is that nothing it
    // sends is delivered and nothing comes back.
    let (connected_at_the_end, frames_received) = delivered;
    assert_eq!(frames_received, 0, "the outsider received frames");
    assert!(
        connected_at_the_end <= 1,
        "the outsider stayed connected to several members"
    );
    for i in 1..4 {
        let log = cluster.log(i);
        assert!(
            log.contains("refusing peer") || log.contains("refusing connection"),
            "node {i} did not log the refusal:\n{}",
            support::tail(&log, 20)
        );
    }
    assert_eq!(
        cluster.misbehaviour_or_zero(),
        before,
        "refused before any frame"
    );
    let rest = checks::progress(&cluster, 1, Duration::from_secs(3));
    assert!(rest >= 1);
}

/// Hostile HTTP: random bodies (raw and as JSON), malformed JSON, bad
/// base64, oversize bodies, garbage request lines. Every answer is 202 (a
/// raw body is a valid transaction) or a 4xx, never 5xx or a hang; the
/// node keeps serving and committing.
#[test]
fn n4_api_refuses_hostile_bodies_with_4xx_and_keeps_serving() {
    let cluster = Cluster::start(4);
    let api = cluster.apis[0];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    let mut count = |s: u16| *statuses.entry(s).or_default() += 1;
    let json = [("content-type", "application/json")];
    let mut inputs = 0u64;
    for k in 0..300 {
        let len = (rng.next() % 4096) as usize;
        let body = rng.bytes(len);
        let (s, _) = support::http(api, "POST", "/v1/transactions", &json, &body).unwrap();
        assert!((400..500).contains(&s), "random JSON body -> {s}");
        count(s);
        let (s, _) =
            support::http(api, "POST", "/v1/transactions?namespace=3", &[], &body).unwrap();
        assert!(
            s == 202 || (400..500).contains(&s),
            "random raw body -> {s}"
        );
        count(s);
        let texts = [
            format!("{{\"namespace\": {k}, \"payload\": \"!!not base64!!\"}}"),
            format!("{{\"namespace\": -{k}, \"payload\": \"aGVsbG8=\"}}"),
            format!("{{\"namespace\": \"{k}\"}}"),
            "{\"namespace\": 1, \"payload\": \"\"}".to_string(),
            "[1,2,3]".to_string(),
            format!(
                "{{\"namespace\": 1, \"payload\": \"aGVsbG8=\"{}",
                "}".repeat(k % 3)
            ),
            "{\"namespace\": 18446744073709551616, \"payload\": \"aGVsbG8=\"}".to_string(),
            "[".repeat(10_000 + k),
        ];
        for text in texts {
            let (s, _) =
                support::http(api, "POST", "/v1/transactions", &json, text.as_bytes()).unwrap();
            assert!(s == 202 || (400..500).contains(&s), "{text:.60} -> {s}");
            count(s);
        }
        inputs += 10;
    }
    // Oversize: a transaction above max_tx_bytes, a body above the limit.
    let big = vec![7u8; 131_073];
    let (s, _) = support::http(api, "POST", "/v1/transactions?namespace=1", &[], &big).unwrap();
    assert_eq!(s, 413);
    count(s);
    let huge = vec![b'a'; 64 * 1024 * 1024 + 1];
    // The node may refuse before reading it all, and close: either a 413
    // or a reset is fine, as long as it keeps serving.
    if let Ok((s, _)) = support::http(api, "POST", "/v1/transactions?namespace=1", &[], &huge) {
        assert_eq!(s, 413);
        count(s);
    }
    inputs += 2;
    // Garbage on the socket instead of HTTP.
    for _ in 0..50 {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(api).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(&rng.bytes(512));
        let _ = s.write_all(b"\r\n\r\n");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let head = String::from_utf8_lossy(&buf);
        assert!(
            buf.is_empty() || head.starts_with("HTTP/1.1 4"),
            "garbage request -> {head:.80}"
        );
        inputs += 1;
    }
    let (s, _) = support::http(api, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(s, 200);
    assert_eq!(cluster.submit(0, 9, b"still-serving"), 202);
    let h = cluster.delivered(0);
    cluster.wait_delivered(0, h + 2, Duration::from_secs(20));
    eprintln!("api: {inputs} hostile inputs, statuses {statuses:?}");
}

trait MisbehaviourSum {
    fn misbehaviour_or_zero(&self) -> u64;
}

impl MisbehaviourSum for Cluster {
    fn misbehaviour_or_zero(&self) -> u64 {
        (0..self.size()).map(|i| misbehaviour(self, i)).sum()
    }
}
