//! `shutdown` writes out what is queued before closing.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use ordo_network::{Class, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_shutdown_drains_queued_frames() {
    init_tracing();
    bounded(Duration::from_secs(15), async {
        let config = Config {
            consensus_queue_frames: 2_000,
            batches_queue_frames: 2_000,
            ..test_config()
        };
        let mut c = cluster(2, &[config]);
        assert!(all_connected(&c.nets, Duration::from_secs(5)).await);
        for i in 0u32..2_000 {
            for class in [Class::Consensus, Class::Batches] {
                c.nets[0]
                    .send(1, class, Bytes::from(i.to_be_bytes().to_vec()))
                    .unwrap();
            }
        }
        c.nets[0].shutdown().await;
        let mut next = [0u32; 2];
        while next != [2_000; 2] {
            let m = tokio::time::timeout(Duration::from_secs(2), c.inboxes[1].recv())
                .await
                .expect("queued frames lost at shutdown")
                .unwrap();
            let i = m.class.index();
            assert_eq!(m.bytes[..], next[i].to_be_bytes());
            next[i] += 1;
        }
        // The sender's own receiver ends after shutdown.
        assert!(c.inboxes[0].recv().await.is_none());
        c.nets[1].shutdown().await;
    })
    .await;
}
