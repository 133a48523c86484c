//! n4: every member broadcasts 10,000 frames on each class; with all four
//! up, every frame arrives, in order per (sender, class), intact.

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use ordo_network::{Class, Config};

const PER_CLASS: u32 = 10_000;
const N: usize = 4;

fn payload(from: usize, class: Class, seq: u32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u16(from as u16);
    b.put_u8(class.index() as u8);
    b.put_u32(seq);
    // Sizes vary with the sequence number so framing boundaries move.
    b.put_bytes(seq as u8, (seq % 97) as usize);
    b.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_all_up_10k_frames_per_class_none_lost() {
    init_tracing();
    bounded(Duration::from_secs(45), async {
        // Queues sized to the whole burst: this test is about loss on the
        // wire, not about the overflow policy.
        let config = Config {
            consensus_queue_frames: PER_CLASS as usize,
            batches_queue_frames: PER_CLASS as usize,
            sync_queue_frames: PER_CLASS as usize,
            ..test_config()
        };
        let mut c = cluster(N, &[config]);
        assert!(all_connected(&c.nets, Duration::from_secs(5)).await);

        for seq in 0..PER_CLASS {
            for (from, net) in c.nets.iter().enumerate() {
                for class in Class::ALL {
                    net.broadcast(class, payload(from, class, seq)).unwrap();
                }
            }
        }

        let expected = (N - 1) * 3 * PER_CLASS as usize;
        let mut receivers = Vec::new();
        for (me, mut inbox) in c.inboxes.drain(..).enumerate() {
            receivers.push(tokio::spawn(async move {
                // next[from][class] = next sequence number expected.
                let mut next = [[0u32; 3]; N];
                for _ in 0..expected {
                    let m = inbox.recv().await.expect("inbox closed early");
                    let from = usize::from(m.from);
                    assert_ne!(from, me);
                    let seq = next[from][m.class.index()];
                    assert_eq!(m.bytes, payload(from, m.class, seq), "at node {me}");
                    next[from][m.class.index()] += 1;
                }
                next
            }));
        }
        for (me, r) in receivers.into_iter().enumerate() {
            let next = r.await.unwrap();
            for (from, counts) in next.iter().enumerate() {
                let want = if from == me { 0 } else { PER_CLASS };
                assert_eq!(counts, &[want; 3], "node {me} from {from}");
            }
        }
        for net in &c.nets {
            let m = net.metrics();
            for class in Class::ALL {
                let t = m.total(class);
                assert_eq!(t.frames_out, 3 * u64::from(PER_CLASS));
                assert_eq!(t.frames_in, 3 * u64::from(PER_CLASS));
                assert_eq!(t.dropped, 0);
            }
            assert_eq!(m.bad_frames(), 0);
            assert!(m.peers.iter().all(|p| p.rtt.is_some()));
        }
        for net in &c.nets {
            net.shutdown().await;
        }
    })
    .await;
}
