//! Consensus frames are not delayed by bulk traffic, neither on the wire
//! nor at a consumer that is slow on batches.
//!
//! Member 0 sends small frames every 5 ms, stamped with their send time,
//! to member 1, which measures their delay. The first test measures an
//! idle baseline, then Consensus probes while 512 KiB Batches frames stream
//! as fast as the sender's queue allows, and bounds the loaded p99 relative
//! to the baseline (plus an absolute cap); as a control it then sends the
//! same probes on the Batches class, behind the bulk frames, which must be
//! clearly slower (that is the delay class separation avoids). The other
//! two make member 1 slow on Batches frames, so its inbound Batches channel
//! fills and back-pressure reaches member 0's queue, and require Consensus
//! frames to arrive promptly all the same. With one FIFO inbound channel
//! for all classes (as before 2026-11-21) those probes waited behind up to
//! 1,024 batch frames: seconds.
//!
//! The tests take turns (`SERIAL`): run side by side on two cores they
//! would measure each other.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use ordo_network::{Class, Config, Network};
use tokio::task::JoinHandle;

const BATCH_BYTES: usize = 512 * 1024;
const SAMPLES: usize = 400;
const PROBE_EVERY: Duration = Duration::from_millis(5);
/// Loaded p99 may be this many times the idle p99 ...
const BASELINE_FACTOR: u32 = 10;
/// ... or this much above it, whichever is larger (the idle p99 is well
/// under a millisecond, so a pure factor would be fragile on a busy host).
const BASELINE_SLACK: Duration = Duration::from_millis(30);
/// And never more than this, on any host.
const ABSOLUTE_CAP: Duration = Duration::from_millis(50);
/// What the slow consumer spends on each batch frame.
const SLOW_PER_BATCH: Duration = Duration::from_millis(10);
/// Probe frames are this long; bulk frames are `BATCH_BYTES`.
const PROBE_BYTES: usize = 64;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn stamp(epoch: Instant) -> Bytes {
    let mut b = BytesMut::with_capacity(PROBE_BYTES);
    b.put_u64(epoch.elapsed().as_nanos() as u64);
    b.put_bytes(0, PROBE_BYTES - 8);
    b.freeze()
}

fn delay(epoch: Instant, frame: &[u8]) -> Duration {
    let sent = u64::from_be_bytes(frame[..8].try_into().unwrap());
    Duration::from_nanos(epoch.elapsed().as_nanos() as u64 - sent)
}

struct Summary {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn summary(mut delays: Vec<Duration>) -> Summary {
    assert_eq!(delays.len(), SAMPLES);
    delays.sort();
    Summary {
        p50: delays[SAMPLES / 2],
        p99: delays[SAMPLES * 99 / 100 - 1],
        max: delays[SAMPLES - 1],
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:?} p99 {:?} max {:?}",
            self.p50, self.p99, self.max
        )
    }
}

/// Sends `SAMPLES` stamped frames of `class` from `from` to member 1. A
/// Batches probe is stamped once its (shared) queue takes it.
async fn probe(from: &Network, class: Class, epoch: Instant) {
    let mut tick = tokio::time::interval(PROBE_EVERY);
    for _ in 0..SAMPLES {
        tick.tick().await;
        while from.send(1, class, stamp(epoch)).is_err() {
            assert_eq!(class, Class::Batches, "a Consensus send failed");
            tokio::task::yield_now().await;
        }
    }
}

/// Sends 512 KiB Batches frames to member 1 as fast as the queue takes
/// them until `stop`.
fn bulk(net: Arc<Network>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let batch = Bytes::from(vec![0x5A; BATCH_BYTES]);
        while !stop.load(Ordering::Relaxed) {
            if net.send(1, Class::Batches, batch.clone()).is_err() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    })
}

fn pair(config: Config) -> (Arc<Network>, Network, ordo_network::Inbox) {
    let mut c = cluster(2, &[config]);
    let inbox = c.inboxes.remove(1);
    let n1 = c.nets.remove(1);
    (Arc::new(c.nets.remove(0)), n1, inbox)
}

async fn connected(n0: &Network, n1: &Network) -> bool {
    eventually(Duration::from_secs(5), || {
        n0.is_connected(1) && n1.is_connected(0)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_consensus_p99_under_bulk_load_stays_near_the_idle_baseline() {
    init_tracing();
    let _turn = SERIAL.lock().await;
    bounded(Duration::from_secs(40), async {
        let config = Config {
            // A deep queue: at loopback speed (GB/s with 64 KiB datagrams) 8
            // frames drain too fast for the control to wait behind them.
            batches_queue_frames: 64,
            ..test_config()
        };
        let (n0, n1, mut inbox) = pair(config);
        assert!(connected(&n0, &n1).await);
        let epoch = Instant::now();
        // One consumer loop, fast: Consensus delays idle then loaded, the
        // control probes' delays, and the bulk bytes delivered meanwhile.
        let receiver = tokio::spawn(async move {
            let mut phases = [Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES)];
            let mut control = Vec::with_capacity(SAMPLES);
            let mut batch_bytes = 0usize;
            while control.len() < SAMPLES {
                let m = inbox.recv().await.unwrap();
                match m.class {
                    Class::Consensus => {
                        let phase = usize::from(phases[0].len() == SAMPLES);
                        phases[phase].push(delay(epoch, &m.bytes));
                    }
                    _ if m.bytes.len() == PROBE_BYTES => control.push(delay(epoch, &m.bytes)),
                    _ => batch_bytes += m.bytes.len(),
                }
            }
            let [idle, loaded] = phases;
            (idle, loaded, control, batch_bytes)
        });

        probe(&n0, Class::Consensus, epoch).await;
        let stop = Arc::new(AtomicBool::new(false));
        let bulk = bulk(n0.clone(), stop.clone());
        // Let the bulk stream fill the pipe before measuring.
        tokio::time::sleep(Duration::from_millis(200)).await;
        probe(&n0, Class::Consensus, epoch).await;
        probe(&n0, Class::Batches, epoch).await;
        let (idle, loaded, control, batch_bytes) = receiver.await.unwrap();
        stop.store(true, Ordering::Relaxed);
        bulk.await.unwrap();

        let (idle, loaded, control) = (summary(idle), summary(loaded), summary(control));
        let bound = (idle.p99 * BASELINE_FACTOR)
            .max(idle.p99 + BASELINE_SLACK)
            .min(ABSOLUTE_CAP);
        let mib = batch_bytes as f64 / (1024.0 * 1024.0);
        eprintln!(
            "consensus delay idle: {idle}; under bulk load: {loaded}; \
             control (same probes on Batches, behind the bulk): {control}; \
             {mib:.0} MiB of batches delivered meanwhile; bound {bound:?}"
        );
        assert!(
            batch_bytes >= 20 * BATCH_BYTES,
            "bulk stream did not run: {batch_bytes} B"
        );
        assert!(
            loaded.p99 <= bound,
            "loaded p99 {:?} above {bound:?} (idle p99 {:?})",
            loaded.p99,
            idle.p99
        );
        assert!(
            control.p50 >= loaded.p50 * 4,
            "the control is not slower: the load did not load ({control} vs {loaded})"
        );
        n0.shutdown().await;
        n1.shutdown().await;
    })
    .await;
}

/// Waits until member 0's Batches queue to member 1 has refused frames:
/// the slow consumer's back-pressure has reached the sender.
async fn backlogged(n0: &Network) {
    let refused = || n0.metrics().peer(1).unwrap().classes[Class::Batches.index()].refused;
    assert!(
        eventually(Duration::from_secs(10), || refused() > 0).await,
        "batches never backed up to the sender"
    );
}

/// The node's way: each class consumed by its own task. The Batches task
/// is slow; Consensus frames do not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_consensus_prompt_while_a_per_class_consumer_is_slow_on_batches() {
    init_tracing();
    let _turn = SERIAL.lock().await;
    bounded(Duration::from_secs(40), async {
        let config = Config {
            batches_queue_frames: 8,
            ..test_config()
        };
        let (n0, n1, inbox) = pair(config);
        assert!(connected(&n0, &n1).await);
        let epoch = Instant::now();
        let [mut consensus, mut batches, _sync] = inbox.into_classes();
        let slow = tokio::spawn(async move {
            let mut frames = 0u64;
            while batches.recv().await.is_some() {
                frames += 1;
                tokio::time::sleep(SLOW_PER_BATCH).await;
            }
            frames
        });
        let receiver = tokio::spawn(async move {
            let mut delays = Vec::with_capacity(SAMPLES);
            while delays.len() < SAMPLES {
                let m = consensus.recv().await.unwrap();
                delays.push(delay(epoch, &m.bytes));
            }
            delays
        });
        let stop = Arc::new(AtomicBool::new(false));
        let bulk = bulk(n0.clone(), stop.clone());
        backlogged(&n0).await;
        let refused_before = n0.metrics().total(Class::Batches).refused;
        probe(&n0, Class::Consensus, epoch).await;
        let delays = summary(receiver.await.unwrap());
        let refused = n0.metrics().total(Class::Batches).refused - refused_before;
        stop.store(true, Ordering::Relaxed);
        bulk.await.unwrap();
        eprintln!(
            "consensus delay, per-class consumer slow on batches: {delays}; \
             {refused} batch sends refused meanwhile"
        );
        assert!(refused > 0, "batches were not backed up while probing");
        assert!(
            delays.p99 <= ABSOLUTE_CAP,
            "p99 {:?} above {ABSOLUTE_CAP:?}",
            delays.p99
        );
        n0.shutdown().await;
        n1.shutdown().await;
        assert!(slow.await.unwrap() > 0);
    })
    .await;
}

/// A single consumer loop over `Inbox::recv`, slow on each batch frame: a
/// waiting Consensus frame is taken before the queued batches, so it waits
/// for at most the batch in hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_consensus_prompt_while_a_single_loop_consumer_is_slow_on_batches() {
    init_tracing();
    let _turn = SERIAL.lock().await;
    bounded(Duration::from_secs(40), async {
        let config = Config {
            batches_queue_frames: 8,
            ..test_config()
        };
        let (n0, n1, mut inbox) = pair(config);
        assert!(connected(&n0, &n1).await);
        let epoch = Instant::now();
        let receiver = tokio::spawn(async move {
            let mut delays = Vec::with_capacity(SAMPLES);
            while delays.len() < SAMPLES {
                let m = inbox.recv().await.unwrap();
                match m.class {
                    Class::Consensus => delays.push(delay(epoch, &m.bytes)),
                    _ => tokio::time::sleep(SLOW_PER_BATCH).await,
                }
            }
            delays
        });
        let stop = Arc::new(AtomicBool::new(false));
        let bulk = bulk(n0.clone(), stop.clone());
        backlogged(&n0).await;
        let refused_before = n0.metrics().total(Class::Batches).refused;
        probe(&n0, Class::Consensus, epoch).await;
        let delays = summary(receiver.await.unwrap());
        let refused = n0.metrics().total(Class::Batches).refused - refused_before;
        stop.store(true, Ordering::Relaxed);
        bulk.await.unwrap();
        eprintln!(
            "consensus delay, single loop slow on batches ({SLOW_PER_BATCH:?} each): \
             {delays}; {refused} batch sends refused meanwhile"
        );
        assert!(refused > 0, "batches were not backed up while probing");
        assert!(
            delays.p99 <= ABSOLUTE_CAP,
            "p99 {:?} above {ABSOLUTE_CAP:?}",
            delays.p99
        );
        n0.shutdown().await;
        n1.shutdown().await;
    })
    .await;
}
