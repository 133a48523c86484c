//! Frames for a member that is down do not pile up: Consensus keeps only
//! the newest `consensus_queue_frames`, Batches refuses once full.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use ordo_network::{Class, Config, Error, Network};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_frames_for_a_down_member_stay_bounded() {
    init_tracing();
    bounded(Duration::from_secs(10), async {
        let keys = [keypair(0), keypair(1)];
        let b0 = Network::bind(LOOPBACK.parse().unwrap()).unwrap();
        // Member 1's port is held but nobody serves it: member 1 is down.
        let down = Network::bind(LOOPBACK.parse().unwrap()).unwrap();
        let committee = committee(&keys, &[b0.local_addr(), down.local_addr()]);
        let config = Config {
            consensus_queue_frames: 100,
            batches_queue_frames: 10,
            ..test_config()
        };
        let (n0, _inbox) = b0.start(config, &keys[0], committee).unwrap();

        for i in 0u32..5_000 {
            n0.send(1, Class::Consensus, Bytes::from(i.to_be_bytes().to_vec()))
                .unwrap();
        }
        for i in 0..10 {
            n0.send(1, Class::Batches, Bytes::from(vec![i; 1024]))
                .unwrap();
        }
        match n0.send(1, Class::Batches, Bytes::from_static(b"one too many")) {
            Err(Error::QueueFull {
                class: Class::Batches,
                peers,
            }) => assert_eq!(peers, vec![1]),
            other => panic!("expected QueueFull, got {other:?}"),
        }
        assert!(matches!(
            n0.broadcast(Class::Batches, Bytes::from_static(b"x")),
            Err(Error::QueueFull { .. })
        ));

        let peer = n0.metrics().peer(1).cloned().unwrap();
        assert!(!peer.connected);
        let consensus = peer.classes[Class::Consensus.index()];
        assert_eq!((consensus.queue_depth, consensus.dropped), (100, 4_900));
        let batches = peer.classes[Class::Batches.index()];
        assert_eq!((batches.queue_depth, batches.dropped), (10, 2));

        // Oversize frames are refused at the caller, never queued.
        let too_big = Bytes::from(vec![0; test_config().max_frame_bytes + 1]);
        assert!(matches!(
            n0.send(1, Class::Sync, too_big),
            Err(Error::FrameTooLarge { .. })
        ));
        assert!(matches!(
            n0.send(0, Class::Sync, Bytes::new()),
            Err(Error::UnknownPeer(0))
        ));
        n0.shutdown().await;
        assert!(matches!(
            n0.send(1, Class::Sync, Bytes::new()),
            Err(Error::ShuttingDown)
        ));
    })
    .await;
}
