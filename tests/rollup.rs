//! A rollup's view: submit through two nodes, follow a third over the
//! verified stream, survive that node's death, detect tampering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordo_client::{verify, Follower, FollowerConfig, OutputBlock};
use ordo_types::Committee;
use support::Cluster;

fn committee(cluster: &Cluster) -> Arc<Committee> {
    Arc::new(Committee::load(&cluster.dir.path().join("committee.toml")).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_rollup_sees_every_transaction_once_in_order_verified_and_resumes() {
    let mut cluster = Cluster::start(4);
    let committee = committee(&cluster);
    let mut follower = Follower::new(FollowerConfig {
        nodes: vec![cluster.apis[2], cluster.apis[3]],
        committee: committee.clone(),
        from: 1,
        namespace: Some(5),
        retry: Duration::from_millis(200),
    });
    let mut sent = Vec::new();
    let mut seen = Vec::new();
    for phase in 0..2u32 {
        for k in phase * 150..(phase + 1) * 150 {
            let node = cluster.apis[(k % 2) as usize];
            let payload = format!("rollup-{k}").into_bytes();
            if k % 10 == 0 {
                // Answered once stored on that node.
                ordo_client::submit_durable(node, 5, &payload)
                    .await
                    .unwrap();
            } else {
                ordo_client::submit(node, 5, &payload).await.unwrap();
            }
            // Another namespace's traffic is filtered out of the stream.
            ordo_client::submit(node, 6, format!("other-{k}").as_bytes())
                .await
                .unwrap();
            sent.push(payload);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.len() < sent.len() {
            assert!(
                Instant::now() < deadline,
                "only {} of {} seen",
                seen.len(),
                sent.len()
            );
            let block = tokio::time::timeout(Duration::from_secs(30), follower.next())
                .await
                .expect("stalled")
                .expect("every block verifies");
            // The node filters whole batches; transactions are filtered here.
            for tx in block.transactions().filter(|tx| tx.namespace == 5) {
                seen.push(tx.payload.to_vec());
            }
        }
        if phase == 0 {
            // The node the follower reads from dies; it resumes on node 3
            // from the next height, gap-free.
            cluster.kill(2);
        }
    }
    let killed = true;
    assert!(killed);
    let unique: HashSet<&Vec<u8>> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a transaction was delivered twice"
    );
    assert_eq!(unique, sent.iter().collect::<HashSet<_>>());
    // The order is the cluster's: node 0's blocks, filtered the same way.
    let height = follower.next_height() - 1;
    cluster.wait_delivered(0, height, Duration::from_secs(20));
    let cluster_order: Vec<Vec<u8>> = (1..=height)
        .flat_map(|h| {
            let (status, body) = support::http(
                cluster.apis[0],
                "GET",
                &format!("/v1/blocks/{h}"),
                &[("accept", "application/octet-stream")],
                b"",
            )
            .unwrap();
            assert_eq!(status, 200);
            let block: OutputBlock = ordo_types::codec::decode_local(&body).unwrap();
            block
                .transactions()
                .filter(|tx| tx.namespace == 5)
                .map(|tx| tx.payload.to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(seen, cluster_order);
}

#[test]
fn n4_tampered_block_from_the_wire_is_refused() {
    let cluster = Cluster::start(4);
    let committee = committee(&cluster);
    cluster.submit(0, 1, b"payload");
    cluster.wait_delivered(0, 3, Duration::from_secs(20));
    let (status, body) = support::http(
        cluster.apis[0],
        "GET",
        "/v1/blocks/2",
        &[("accept", "application/octet-stream")],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200);
    let block: OutputBlock = ordo_types::codec::decode_local(&body).unwrap();
    verify(&block, &committee, None).unwrap();
    // Flip one byte of one signature in the certificate, as a man in the
    // middle (or a lying node) would.
    let mut tampered = block.clone();
    tampered.cert.qc.votes[0].1 .0[0] ^= 1;
    assert!(verify(&tampered, &committee, None).is_err());
    let mut wrong_view = block.clone();
    wrong_view.header.view += 1;
    assert!(verify(&wrong_view, &committee, None).is_err());
}

/// Blocks over `LIVE_BLOCK_BYTES` (256 KiB of transactions) reach
/// subscribers as a bare height and are read from storage: the live stream
/// and the DA backend must still get every one, in order, gap-free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_large_blocks_reach_the_stream_and_the_backends_through_storage() {
    let cluster = Cluster::start(4);
    let committee = committee(&cluster);
    cluster.wait_delivered(1, 1, Duration::from_secs(30));
    let from = cluster.delivered(1) + 1;
    let mut follower = Follower::new(FollowerConfig {
        nodes: vec![cluster.apis[1]],
        committee,
        from,
        namespace: None,
        retry: Duration::from_millis(200),
    });
    // Twelve 100 KiB transactions sent at once: their batches (sealed at
    // 512 KiB or after 25 ms) make blocks well over 256 KiB.
    let sent: Vec<Vec<u8>> = (0..12u8).map(|k| vec![k; 100 * 1024]).collect();
    for payload in &sent {
        let node = cluster.apis[0];
        ordo_client::submit(node, 9, payload).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut largest = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < sent.len() {
        assert!(Instant::now() < deadline, "only {} seen", seen.len());
        let block = tokio::time::timeout(Duration::from_secs(30), follower.next())
            .await
            .expect("stalled")
            .expect("every block verifies");
        let bytes: usize = block.batches.iter().map(|b| b.byte_size()).sum();
        largest = largest.max(bytes);
        seen.extend(
            block
                .transactions()
                .filter(|tx| tx.namespace == 9)
                .map(|tx| tx.payload.to_vec()),
        );
    }
    assert!(largest > 256 * 1024, "no large block: {largest} B at most");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, sent, "missing or repeated transactions");
    // The DA backend (local, the default) stored every delivered height.
    let height = follower.next_height() - 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = cluster.status(1).unwrap();
        let da = status["backends"]["da"]["height"].as_u64().unwrap_or(0);
        if da >= height {
            break;
        }
        assert!(Instant::now() < deadline, "DA backend stuck: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
