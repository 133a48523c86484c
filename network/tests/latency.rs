//! Consensus frames are not delayed by bulk traffic: while member 0 streams
//! 512 KiB Batches frames to member 1 as fast as the queue allows, small
//! Consensus frames sent every 5 ms must arrive with p99 under
//! `P99_BOUND` (generous: a noisy 2-core machine running a debug build).

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use ordo_network::{Class, Config};

const P99_BOUND: Duration = Duration::from_millis(100);
const BATCH_BYTES: usize = 512 * 1024;
const SAMPLES: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_consensus_p99_under_bound_while_batches_stream() {
    init_tracing();
    bounded(Duration::from_secs(30), async {
        let config = Config {
            batches_queue_frames: 8,
            ..test_config()
        };
        let mut c = cluster(2, &[config]);
        assert!(all_connected(&c.nets, Duration::from_secs(5)).await);
        let epoch = Instant::now();
        let mut inbox = c.inboxes.remove(1);
        let mut nets = c.nets.drain(..);
        let (n0, n1) = (
            std::sync::Arc::new(nets.next().unwrap()),
            nets.next().unwrap(),
        );

        let receiver = tokio::spawn(async move {
            let mut delays = Vec::with_capacity(SAMPLES);
            let mut batch_bytes = 0usize;
            while delays.len() < SAMPLES {
                let m = inbox.recv().await.unwrap();
                match m.class {
                    Class::Consensus => {
                        let sent = u64::from_be_bytes(m.bytes[..8].try_into().unwrap());
                        let now = epoch.elapsed().as_nanos() as u64;
                        delays.push(Duration::from_nanos(now - sent));
                    }
                    _ => batch_bytes += m.bytes.len(),
                }
            }
            (delays, batch_bytes)
        });

        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bulk = tokio::spawn({
            let (n0, stop) = (n0.clone(), stop.clone());
            async move {
                let batch = Bytes::from(vec![0x5A; BATCH_BYTES]);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if n0.send(1, Class::Batches, batch.clone()).is_err() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        });
        // Let the bulk stream fill the pipe before measuring.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        for _ in 0..SAMPLES {
            tick.tick().await;
            let mut b = BytesMut::with_capacity(64);
            b.put_u64(epoch.elapsed().as_nanos() as u64);
            b.put_bytes(0, 56);
            n0.send(1, Class::Consensus, b.freeze()).unwrap();
        }
        let (mut delays, batch_bytes) = receiver.await.unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        bulk.await.unwrap();

        delays.sort();
        let p50 = delays[delays.len() / 2];
        let p99 = delays[delays.len() * 99 / 100 - 1];
        let max = delays[delays.len() - 1];
        let mib = batch_bytes as f64 / (1024.0 * 1024.0);
        eprintln!(
            "consensus delay under bulk load: p50 {p50:?} p99 {p99:?} max {max:?}; \
             {mib:.0} MiB of batches delivered meanwhile"
        );
        assert!(
            batch_bytes >= 20 * BATCH_BYTES,
            "bulk stream did not run: {batch_bytes} B"
        );
        assert!(p99 < P99_BOUND, "p99 {p99:?} exceeds {P99_BOUND:?}");
        n0.shutdown().await;
        n1.shutdown().await;
    })
    .await;
}
