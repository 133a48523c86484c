//! Peers are adversaries: an oversize frame is refused without harm to
//! other traffic, and a peer that keeps sending them is banned for a while.
//! The "bad" peer is simply configured with a larger frame limit.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use ordo_network::{Class, Config};

const SMALL_LIMIT: usize = 64 * 1024;

fn small_limit() -> Config {
    Config {
        max_frame_bytes: SMALL_LIMIT,
        ..test_config()
    }
}

async fn expect(inbox: &mut ordo_network::Inbox, from: u16, class: Class, bytes: &[u8]) {
    let m = inbox.recv().await.unwrap();
    assert_eq!((m.from, m.class, &m.bytes[..]), (from, class, bytes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_oversize_frame_is_refused_and_receiver_keeps_serving() {
    init_tracing();
    bounded(Duration::from_secs(20), async {
        // Node 0 allows 1 MiB frames; nodes 1 and 2 only 64 KiB.
        let big = Config {
            max_frame_bytes: 1024 * 1024,
            ..test_config()
        };
        let mut c = cluster(3, &[big, small_limit(), small_limit()]);
        assert!(all_connected(&c.nets, Duration::from_secs(5)).await);

        c.nets[0]
            .send(1, Class::Batches, Bytes::from(vec![0xAB; SMALL_LIMIT + 1]))
            .unwrap();
        let receiver = &c.nets[1];
        assert!(
            eventually(Duration::from_secs(5), || receiver.metrics().bad_frames()
                == 1)
            .await
        );

        // Node 1 still serves node 0 (on every class) and node 2.
        c.nets[0]
            .send(1, Class::Consensus, Bytes::from_static(b"vote"))
            .unwrap();
        expect(&mut c.inboxes[1], 0, Class::Consensus, b"vote").await;
        c.nets[0]
            .send(1, Class::Batches, Bytes::from(vec![1; SMALL_LIMIT]))
            .unwrap();
        expect(&mut c.inboxes[1], 0, Class::Batches, &vec![1; SMALL_LIMIT]).await;
        c.nets[2]
            .send(1, Class::Sync, Bytes::from_static(b"sync"))
            .unwrap();
        expect(&mut c.inboxes[1], 2, Class::Sync, b"sync").await;

        let m = receiver.metrics();
        assert_eq!(m.peer(0).unwrap().bad_frames, 1);
        assert_eq!(m.peer(0).unwrap().bans, 0, "one bad frame is not a ban");
        assert!(c.nets[0].is_connected(1));
        for net in &c.nets {
            net.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_repeated_oversize_frames_get_the_peer_banned_then_readmitted() {
    init_tracing();
    bounded(Duration::from_secs(20), async {
        let big = Config {
            max_frame_bytes: 1024 * 1024,
            ..test_config()
        };
        let receiver_config = small_limit();
        let (max_bad, ban_ms) = (receiver_config.max_bad_frames, receiver_config.ban_ms);
        let mut c = cluster(2, &[big, receiver_config]);
        assert!(all_connected(&c.nets, Duration::from_secs(5)).await);

        // Each oversize frame is a strike. A frame the receiver refuses
        // while it is still being written is retried once on a new stream
        // (the writer cannot tell it from a frame stopped over an earlier
        // one), so one send can cost two strikes: send until the ban.
        let receiver = &c.nets[1];
        let mut sent = 0u64;
        while receiver.metrics().peer(0).unwrap().bans == 0 {
            assert!(
                sent < u64::from(max_bad),
                "not banned after {sent} bad frames"
            );
            c.nets[0]
                .send(1, Class::Batches, Bytes::from(vec![0xAB; SMALL_LIMIT * 2]))
                .unwrap();
            sent += 1;
            assert!(
                eventually(Duration::from_secs(5), || receiver.metrics().bad_frames()
                    >= sent)
                .await
            );
        }
        let banned_at = Instant::now();
        assert_eq!(receiver.metrics().peer(0).unwrap().bans, 1);
        assert_eq!(receiver.metrics().bad_frames(), u64::from(max_bad));
        // The sender redials during the ban and is turned away.
        assert!(
            eventually(Duration::from_secs(3), || receiver
                .metrics()
                .refused_connections
                >= 1)
            .await
        );

        // After the ban it is admitted again and its frames flow.
        let readmitted = async {
            for i in 0u32.. {
                let _ = c.nets[0].send(1, Class::Consensus, Bytes::from(i.to_be_bytes().to_vec()));
                tokio::select! {
                    m = c.inboxes[1].recv() => return m.unwrap(),
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            unreachable!()
        };
        let m = tokio::time::timeout(Duration::from_secs(8), readmitted)
            .await
            .unwrap();
        assert_eq!((m.from, m.class), (0, Class::Consensus));
        let waited = banned_at.elapsed();
        assert!(
            waited >= Duration::from_millis(ban_ms) - Duration::from_millis(200),
            "readmitted after only {waited:?}"
        );
        for net in &c.nets {
            net.shutdown().await;
        }
    })
    .await;
}

/// Frames that arrive whole but that the consumer cannot decode are
/// reported back ([`Network::report_bad_frame`]) and count like malformed
/// frames: the member sending them is disconnected and banned on the
/// `max_bad_frames`-th, is refused while banned, and is heard again after
/// the ban. Another member is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_undecodable_frames_reported_by_the_consumer_get_the_peer_banned_then_readmitted() {
    init_tracing();
    bounded(Duration::from_secs(20), async {
        let config = test_config();
        let (max_bad, ban_ms) = (config.max_bad_frames, config.ban_ms);
        let mut c = cluster(3, &[config]);
        assert!(all_connected(&c.nets, Duration::from_secs(5)).await);
        let garbage = Bytes::from_static(b"\xff\xfe not a message");

        // Garbage on each class in turn; the consumer reports every frame.
        for strike in 1..=max_bad {
            let class = Class::ALL[strike as usize % Class::ALL.len()];
            c.nets[0].send(1, class, garbage.clone()).unwrap();
            let m = tokio::time::timeout(Duration::from_secs(5), c.inboxes[1].recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!((m.from, m.class, &m.bytes), (0, class, &garbage));
            let banned = c.nets[1]
                .report_bad_frame(m.from, "undecodable test frame")
                .unwrap();
            assert_eq!(banned, strike == max_bad, "strike {strike}");
            let peer = c.nets[1].metrics().peer(0).unwrap().clone();
            assert_eq!(peer.bad_frames, u64::from(strike));
            if !banned {
                assert_eq!(peer.bans, 0);
                assert!(c.nets[1].is_connected(0), "cut off after {strike} strikes");
            }
        }
        let banned_at = Instant::now();
        let receiver = &c.nets[1];
        assert_eq!(receiver.metrics().peer(0).unwrap().bans, 1);
        assert!(!receiver.is_connected(0), "banned peer still connected");
        // Node 0 redials during the ban and is turned away.
        assert!(
            eventually(Duration::from_secs(3), || receiver
                .metrics()
                .refused_connections
                >= 1)
            .await
        );
        assert!(!receiver.is_connected(0));
        // Node 2 still talks to node 1, and has no strike.
        c.nets[2]
            .send(1, Class::Consensus, Bytes::from_static(b"still here"))
            .unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), c.inboxes[1].recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((m.from, &m.bytes[..]), (2, &b"still here"[..]));
        assert_eq!(receiver.metrics().peer(2).unwrap().bad_frames, 0);
        assert!(matches!(
            receiver.report_bad_frame(7, "no such member"),
            Err(ordo_network::Error::UnknownPeer(7))
        ));

        // After the ban node 0 is admitted again and its frames flow.
        let readmitted = async {
            for i in 0u32.. {
                let _ = c.nets[0].send(1, Class::Consensus, Bytes::from(i.to_be_bytes().to_vec()));
                if let Ok(Some(m)) =
                    tokio::time::timeout(Duration::from_millis(100), c.inboxes[1].recv()).await
                {
                    if m.from == 0 {
                        return m;
                    }
                }
            }
            unreachable!()
        };
        let m = tokio::time::timeout(Duration::from_secs(8), readmitted)
            .await
            .unwrap();
        assert_eq!(m.class, Class::Consensus);
        let waited = banned_at.elapsed();
        assert!(
            waited >= Duration::from_millis(ban_ms) - Duration::from_millis(200),
            "readmitted after only {waited:?}"
        );
        assert!(c.nets[1].is_connected(0));
        for net in &c.nets {
            net.shutdown().await;
        }
    })
    .await;
}
