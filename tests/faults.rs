//! Fault tests on a real 4-node cluster (`ordo` processes, QUIC on
//! loopback): crash storm, partitions and a WAN through a userspace UDP
//! relay, and a full disk. See docs/reliability.md for what each checks and
//! the measured figures.
//!
//! Knobs (environment): `ORDO_STORM_CYCLES` (crash storm cycles, default 6),
//! `ORDO_SEED` (random choices, default 7), `ORDO_WAN_SECS` (WAN load
//! window, default 20).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::checks::{self, Ack};
use support::relay::Link;
use support::Cluster;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A tiny deterministic generator for the tests' random choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn payloads(acks: &[Ack]) -> HashSet<String> {
    acks.iter().map(|a| a.payload.clone()).collect()
}

/// Steady load on nodes 0, 1 and 2 (node 3 is the one the test breaks):
/// the stop flag, the acknowledgements and the loader thread.
fn load_012(
    cluster: &Cluster,
    tag: &'static str,
) -> (
    Arc<AtomicBool>,
    Arc<Mutex<Vec<Ack>>>,
    std::thread::JoinHandle<u64>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let loader = checks::load(
        cluster.apis.clone(),
        Arc::new(Mutex::new(vec![0, 1, 2])),
        tag,
        Duration::from_millis(3),
        stop.clone(),
        acked.clone(),
        checks::Wait::Accepted,
    );
    (stop, acked, loader)
}

/// Starts node 3 again, stops the load, waits until node 3 caught up and
/// every acknowledged transaction is committed once everywhere; returns
/// the common height.
fn rejoin_3_and_check(
    cluster: &mut Cluster,
    stop: &AtomicBool,
    acked: &Mutex<Vec<Ack>>,
    loader: std::thread::JoinHandle<u64>,
) -> u64 {
    cluster.start_node(3);
    cluster.wait_healthy(3, Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();
    let target = cluster.delivered(0);
    cluster.wait_delivered(3, target, Duration::from_secs(90));
    let must = payloads(&acked.lock().unwrap());
    all_committed_once(cluster, &must)
}

/// Waits until every node committed all of `must`, then checks that the
/// four sequences agree without gap and nothing is committed twice;
/// returns the common height.
fn all_committed_once(cluster: &Cluster, must: &HashSet<String>) -> u64 {
    for n in 0..4 {
        checks::wait_committed(cluster, n, must, Duration::from_secs(90));
    }
    let (height, counts) = checks::agree_no_gap(cluster, &[0, 1, 2, 3]);
    for (payload, count) in &counts {
        assert_eq!(*count, 1, "{payload} committed {count} times");
    }
    height
}

/// Crash storm: steady load on 4 nodes; each cycle one random node (never
/// more than f = 1 at once) is SIGKILLed, stays down 0.5–2.5 s, is
/// restarted and must catch up.
///
/// Two loaders. The first submits with `?durable=true` to every node that
/// is up, the victim included until the moment it is killed: every
/// `"durable": true` answer must be committed, exactly once, however soon
/// the kill follows it. The second submits plainly, to the victim only, in
/// the 300 ms before its kill; a third submits plainly to every node up. A
/// plain 202 is durable only once its batch is stored (see "What 202
/// means"): normally within `batch_delay_ms` and an fsync, but with eight
/// clusters on two cores (CI) that took over 300 ms while a restarted node
/// caught up. So plain 202s count only if given more than [`PLAIN_MARGIN`]
/// before the node's kill; the others may be lost but are never committed
/// twice. All nodes' sequences are
/// identical, gap-free and parent-linked.
/// How long before its kill a plain 202 of the victim is not counted.
const PLAIN_MARGIN: Duration = Duration::from_secs(2);

fn crash_storm(cycles: u64) {
    let seed = env_u64("ORDO_SEED", 7);
    let mut rng = Rng(seed);
    let mut cluster = Cluster::start(4);
    let stop = Arc::new(AtomicBool::new(false));
    let targets = Arc::new(Mutex::new(vec![0, 1, 2, 3]));
    let victims = Arc::new(Mutex::new(Vec::new()));
    let safe = Arc::new(Mutex::new(Vec::new()));
    let risky = Arc::new(Mutex::new(Vec::new()));
    let pause = Duration::from_millis(3);
    let loaders = [
        checks::load(
            cluster.apis.clone(),
            targets.clone(),
            "safe",
            pause,
            stop.clone(),
            safe.clone(),
            checks::Wait::Durable,
        ),
        checks::load(
            cluster.apis.clone(),
            victims.clone(),
            "risky",
            pause,
            stop.clone(),
            risky.clone(),
            checks::Wait::Accepted,
        ),
        // Plain 202s from every node up, counted like the risky ones.
        checks::load(
            cluster.apis.clone(),
            targets.clone(),
            "plain",
            pause,
            stop.clone(),
            risky.clone(),
            checks::Wait::Accepted,
        ),
    ];
    cluster.wait_delivered(0, 5, Duration::from_secs(30));
    let started = Instant::now();
    let mut kills: Vec<(usize, Instant)> = Vec::new();
    for cycle in 0..cycles {
        let victim = rng.below(4) as usize;
        *victims.lock().unwrap() = vec![victim];
        std::thread::sleep(Duration::from_millis(300));
        let at = Instant::now();
        cluster.kill(victim);
        targets.lock().unwrap().retain(|n| *n != victim);
        victims.lock().unwrap().clear();
        // An answer read just after the kill may still be a 202.
        kills.push((victim, Instant::now() + Duration::from_secs(1)));
        let down = 500 + rng.below(2000);
        std::thread::sleep(Duration::from_millis(down));
        eprintln!(
            "  heights while node {victim} is down: {:?}",
            (0..4).map(|n| cluster.delivered(n)).collect::<Vec<_>>()
        );
        let others_height = (0..4)
            .filter(|n| *n != victim)
            .map(|n| cluster.delivered(n))
            .max()
            .unwrap();
        cluster.start_node(victim);
        cluster.wait_healthy(victim, Duration::from_secs(30));
        targets.lock().unwrap().push(victim);
        // Catch up before the next kill, so at most f nodes are behind.
        cluster.wait_delivered(victim, others_height, Duration::from_secs(90));
        eprintln!(
            "cycle {cycle}: killed node {victim}, down {down} ms, caught up to {others_height} after {:?}",
            at.elapsed()
        );
        for n in 0..4 {
            assert!(cluster.running(n), "node {n} exited by itself");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent: Vec<u64> = loaders.into_iter().map(|l| l.join().unwrap()).collect();
    let safe = safe.lock().unwrap().clone();
    let risky = risky.lock().unwrap().clone();
    // Every durable answer counts; a plain 202 from a node killed within
    // PLAIN_MARGIN after it does not.
    let counted: Vec<Ack> = safe
        .iter()
        .cloned()
        .chain(
            risky
                .iter()
                .filter(|a| {
                    !kills.iter().any(|(v, at)| {
                        *v == a.node
                            && a.at <= *at
                            && *at - a.at < PLAIN_MARGIN + Duration::from_secs(1)
                    })
                })
                .cloned(),
        )
        .collect();
    let must = payloads(&counted);
    eprintln!(
        "kills: {:?}",
        kills
            .iter()
            .map(|(v, at)| (*v, at.duration_since(started)))
            .collect::<Vec<_>>()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, counts) = checks::agree_no_gap(&cluster, &[0, 1, 2, 3]);
        let missing: Vec<&Ack> = counted
            .iter()
            .filter(|a| !counts.contains_key(&a.payload))
            .collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let mut by_node = [0usize; 4];
            for a in &missing {
                by_node[a.node] += 1;
            }
            let first = missing.iter().map(|a| a.at).min().unwrap();
            let last = missing.iter().map(|a| a.at).max().unwrap();
            panic!(
                "{} acknowledged transactions never committed (by acking node {by_node:?}), \
                 acknowledged between {:?} and {:?} after the storm began; kills at {:?}; e.g. {:?}",
                missing.len(),
                first.saturating_duration_since(started),
                last.saturating_duration_since(started),
                kills.iter().map(|(v, at)| (*v, at.saturating_duration_since(started))).collect::<Vec<_>>(),
                missing.iter().take(3).map(|a| &a.payload).collect::<Vec<_>>(),
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let (height, counts) = checks::agree_no_gap(&cluster, &[0, 1, 2, 3]);
    for (payload, count) in &counts {
        assert_eq!(*count, 1, "{payload} committed {count} times");
    }
    let all = payloads(&safe).union(&payloads(&risky)).count();
    let lost = payloads(&safe)
        .union(&payloads(&risky))
        .filter(|p| !counts.contains_key(*p))
        .count();
    // Durable answers a victim gave in its last 300 ms (committed all the same).
    let last_moment = safe
        .iter()
        .filter(|a| {
            kills.iter().any(|(v, at)| {
                *v == a.node && a.at <= *at && *at - a.at < Duration::from_millis(1300)
            })
        })
        .count();
    eprintln!(
        "crash storm: seed {seed}, {cycles} cycles in {:?}; submitted {:?}, acknowledged {all}, counted {} \
         ({} durable, {last_moment} of them in a victim's last 300 ms), committed {} (all exactly once), \
         lost uncounted {lost}; common height {height}",
        started.elapsed(),
        sent,
        must.len(),
        safe.len(),
        counts.len(),
    );
}

#[test]
fn n4_crash_storm_kill9_random_node_keeps_one_gapless_sequence_exactly_once() {
    crash_storm(env_u64("ORDO_STORM_CYCLES", 6));
}

/// Soak: `cargo test --release -p ordo-node --test faults -- --ignored soak_crash_storm`
#[test]
#[ignore = "soak: 40 cycles, about 5 minutes"]
fn soak_crash_storm_40_cycles() {
    crash_storm(40);
}

/// Partitions through the userspace relay (every peer datagram goes
/// through it): a minority (one node) is cut off, then the leader, then the
/// committee is split 2|2 (no quorum on either side); each time the relay
/// heals. The majority keeps committing, a 2|2 split commits nothing new
/// beyond what was in flight, liveness returns after each heal within the
/// stated bound, and at the end every node holds the same gap-free chain
/// with every acknowledged transaction exactly once.
#[test]
fn n4_relay_partitions_minority_leader_and_split_heal_without_fork() {
    let (cluster, relay) = support::start_with_relay(4, env_u64("ORDO_SEED", 7), |_| {});
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let loader = checks::load(
        cluster.apis.clone(),
        Arc::new(Mutex::new(vec![0, 1, 2, 3])),
        "part",
        Duration::from_millis(5),
        stop.clone(),
        acked.clone(),
        checks::Wait::Accepted,
    );
    cluster.wait_delivered(0, 3, Duration::from_secs(30));

    // 1. A minority: node 3 alone.
    relay.isolate(&[3]);
    let majority = checks::progress(&cluster, 0, Duration::from_secs(6));
    eprintln!("minority {{3}} cut off: majority advanced {majority} heights in 6 s");
    assert!(majority >= 2, "majority stalled while node 3 was cut off");
    relay.heal();
    let healed = Instant::now();
    let target = cluster.delivered(0);
    cluster.wait_delivered(3, target, Duration::from_secs(30));
    eprintln!("node 3 caught up {:?} after heal", healed.elapsed());

    // 2. The leader: the author of the latest block.
    let h = cluster.delivered(0);
    let leader = checks::block(&cluster, 0, h).unwrap()["author"]
        .as_u64()
        .unwrap() as usize;
    relay.isolate(&[leader]);
    let other = (leader + 1) % 4;
    let rest = checks::progress(&cluster, other, Duration::from_secs(6));
    eprintln!("leader {leader} cut off: others advanced {rest} heights in 6 s");
    assert!(rest >= 2, "no progress with leader {leader} cut off");
    relay.heal();
    let healed = Instant::now();
    let target = cluster.delivered(other) + 1;
    for n in 0..4 {
        cluster.wait_delivered(n, target, Duration::from_secs(30));
    }
    eprintln!(
        "after leader heal all nodes past {target} in {:?}",
        healed.elapsed()
    );

    // 3. 2|2: no quorum anywhere.
    let before: Vec<u64> = (0..4).map(|n| cluster.delivered(n)).collect();
    relay.isolate(&[0, 1]);
    std::thread::sleep(Duration::from_secs(2));
    let settled: Vec<u64> = (0..4).map(|n| cluster.delivered(n)).collect();
    std::thread::sleep(Duration::from_secs(5));
    let during: Vec<u64> = (0..4).map(|n| cluster.delivered(n)).collect();
    eprintln!("2|2 split: heights before {before:?}, after 2 s {settled:?}, after 7 s {during:?}");
    assert_eq!(
        settled, during,
        "a side without a quorum committed during the split"
    );
    relay.heal();
    let healed = Instant::now();
    let target = during.iter().max().unwrap() + 1;
    for n in 0..4 {
        cluster.wait_delivered(n, target, Duration::from_secs(45));
    }
    let liveness = healed.elapsed();
    eprintln!("2|2 healed: every node past {target} after {liveness:?}");
    assert!(liveness < Duration::from_secs(45));

    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let must = payloads(&acked);
    let height = all_committed_once(&cluster, &must);
    eprintln!(
        "partitions: {} acknowledged, all committed once; height {height}; relay forwarded {}, dropped by partition {}",
        must.len(),
        relay.stats.forwarded.load(Ordering::Relaxed),
        relay.stats.dropped_partition.load(Ordering::Relaxed)
    );
}

/// WAN: every directed link 50 ms ± 10 ms one way, 1% loss, 1% reordered.
/// Load 50 tx/s round robin for `ORDO_WAN_SECS`; the cluster stays live,
/// every acknowledged transaction commits once, and the commit latency
/// (202 to visible in node 0's delivered blocks, polled every 10 ms) is
/// printed as p50/p99.
#[test]
fn n4_wan_50ms_jitter_loss_reorder_stays_live_and_reports_latency() {
    let (cluster, relay) = support::start_with_relay(4, env_u64("ORDO_SEED", 7), |_| {});
    relay.set_all(Link {
        delay_ms: 50,
        jitter_ms: 10,
        loss: 0.01,
        reorder: 0.01,
    });
    cluster.wait_delivered(0, 3, Duration::from_secs(30));
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = checks::watch_commits(cluster.apis[0], stop_watch.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let loader = checks::load(
        cluster.apis.clone(),
        Arc::new(Mutex::new(vec![0, 1, 2, 3])),
        "wan",
        Duration::from_millis(20),
        stop.clone(),
        acked.clone(),
        checks::Wait::Accepted,
    );
    let secs = env_u64("ORDO_WAN_SECS", 20);
    let h0 = cluster.delivered(0);
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let must = payloads(&acked);
    for n in 0..4 {
        checks::wait_committed(&cluster, n, &must, Duration::from_secs(60));
    }
    stop_watch.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    let mut latencies: Vec<f64> = acked
        .iter()
        .filter_map(|a| {
            seen.get(&a.payload)
                .map(|t| (*t - a.at).as_secs_f64() * 1000.0)
        })
        .collect();
    let n = latencies.len();
    let p50 = checks::quantile(&mut latencies, 0.5);
    let p99 = checks::quantile(&mut latencies, 0.99);
    let max = checks::quantile(&mut latencies, 1.0);
    let (height, counts) = checks::agree_no_gap(&cluster, &[0, 1, 2, 3]);
    for (payload, count) in &counts {
        assert_eq!(*count, 1, "{payload} committed {count} times");
    }
    eprintln!(
        "WAN 50±10 ms, 1% loss, 1% reorder: {} tx acknowledged in {secs} s, {n} latencies: p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms; heights {h0}..{height}; relay forwarded {}, lost {}, reordered {}",
        must.len(),
        relay.stats.forwarded.load(Ordering::Relaxed),
        relay.stats.dropped_loss.load(Ordering::Relaxed),
        relay.stats.reordered.load(Ordering::Relaxed),
    );
    assert_eq!(n, must.len());
    assert!(p99 < 10_000.0, "p99 {p99} ms: not live enough");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Unmounts on drop (lazily, so a still-running process cannot block it).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(path: &Path, size: &str) -> Option<Mount> {
    std::fs::create_dir_all(path).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(path)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then(|| Mount(path.to_path_buf()))
}

/// Fills the file system holding `dir` until a write fails.
fn fill(dir: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while f.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    // The last partial chunk.
    let small = vec![0u8; 4096];
    while f.write_all(&small).is_ok() {
        written += 4096;
    }
    let _ = f.sync_all();
    written
}

/// How a disk test breaks node 3's data dir (a tmpfs the test mounts) and
/// mends it again.
struct DiskFault {
    name: &'static str,
    /// Breaks the file system; returns what was done.
    break_it: fn(&Path) -> String,
    /// Break it under the running node (else while the node is down).
    while_running: bool,
    mend: fn(&Path),
    /// Restart the node while the disk is still broken: it must exit with a
    /// clear error naming the cause.
    restart_broken: Option<&'static str>,
}

/// Node 3's data dir fails under load. While it runs, node 3 must notice
/// (`storage_ok:false`, `/healthz` 503, a clear error in its log), stop
/// voting and acknowledging, keep running and serving reads; the other
/// three keep committing. After the disk is mended and node 3 is SIGKILLed
/// and restarted, its safety data and chain load (nothing corrupt), it
/// catches up and agrees with the others; every 202 of the others is
/// committed exactly once.
fn disk_fault(fault: DiskFault) {
    let name = fault.name;
    if !is_root() {
        eprintln!("SKIPPED: needs root to mount a tmpfs");
        return;
    }
    let mut mount = None;
    let mut cluster = Cluster::start_prepared(
        4,
        |_| {},
        |dir| mount = mount_tmpfs(&dir.join("data").join("node-3"), "64m"),
    );
    let Some(_mount) = mount else {
        eprintln!("SKIPPED: mount -t tmpfs failed");
        return;
    };
    let (stop, acked, loader) = load_012(&cluster, "disk");
    cluster.wait_delivered(3, 5, Duration::from_secs(30));
    if fault.while_running {
        broken_while_running(&mut cluster, &fault);
    } else {
        cluster.kill(3);
        let what = (fault.break_it)(&cluster.data_dir(3));
        // Right after a crash one or two views can time out (1 s, then
        // 2 s) before the election skips the dead member: 6 s covers both.
        let rest = checks::progress(&cluster, 0, Duration::from_secs(6));
        assert!(
            rest >= 1,
            "{name}: the other nodes stalled: {rest} heights in 6 s"
        );
        eprintln!("{name} ({what}) while node 3 is down; others advanced {rest} in 6 s");
    }
    if let Some(cause) = fault.restart_broken {
        // Started on the broken disk, the node refuses to run, saying why.
        let before = cluster.log(3).len();
        cluster.start_node(3);
        let deadline = Instant::now() + Duration::from_secs(20);
        while cluster.running(3) {
            assert!(
                Instant::now() < deadline,
                "{name}: node 3 runs on a broken disk"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = cluster.log(3);
        let fresh = &log[before.min(log.len())..];
        assert!(
            fresh.contains(cause),
            "{name}: the refusal does not name the cause ({cause}):\n{}",
            support::tail(fresh, 20)
        );
        eprintln!(
            "{name}: restart on the broken disk refused: {}",
            fresh
                .lines()
                .rev()
                .find(|l| l.contains(cause))
                .unwrap_or("")
                .trim()
        );
    }
    // Mend the disk, restart the node on the same data.
    (fault.mend)(&cluster.data_dir(3));
    let height = rejoin_3_and_check(&mut cluster, &stop, &acked, loader);
    eprintln!("{name}: node 3 recovered, all agree up to {height}");
    cluster.kill(3);
}

/// The disk breaks under the running node 3: it must stop cleanly and keep
/// serving reads while the others go on; then it is SIGKILLed.
fn broken_while_running(cluster: &mut Cluster, fault: &DiskFault) {
    let name = fault.name;
    let what = (fault.break_it)(&cluster.data_dir(3));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = cluster.status(3).and_then(|s| s["storage_ok"].as_bool());
        if ok == Some(false) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: node 3 never reported storage_ok:false ({what}); log:\n{}",
            support::tail(&cluster.log(3), 30)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = cluster.log(3);
    assert!(
        log.contains("cannot persist safety data") || log.contains("cannot store"),
        "{name}: no clear storage error in the log:\n{}",
        support::tail(&log, 30)
    );
    let (health, _) = support::http(cluster.apis[3], "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(health, 503);
    assert_eq!(cluster.submit(3, 1, b"refused-when-broken"), 503);
    // The others keep committing without node 3's votes.
    let rest = checks::progress(cluster, 0, Duration::from_secs(5));
    assert!(
        rest >= 2,
        "{name}: the other nodes stalled: {rest} heights in 5 s"
    );
    assert!(
        cluster.running(3),
        "{name}: node 3 crashed instead of stopping cleanly"
    );
    assert!(
        cluster.status(3).is_some(),
        "{name}: node 3 stopped serving reads"
    );
    let stuck = cluster.delivered(3);
    eprintln!(
        "{name} ({what}): node 3 stuck at {stuck}, others advanced {rest} in 5 s; error: {}",
        log.lines()
            .find(|l| l.contains("cannot persist") || l.contains("cannot store"))
            .unwrap_or("")
    );

    cluster.kill(3);
}

/// Disk full: the test fills node 3's 64 MiB tmpfs under load, then frees it.
#[test]
fn n4_full_disk_stops_node_cleanly_and_it_recovers_after_restart() {
    disk_fault(DiskFault {
        name: "disk full",
        break_it: |dir| format!("filled {} bytes", fill(dir)),
        while_running: true,
        mend: |dir| std::fs::remove_file(dir.join("filler")).unwrap(),
        restart_broken: None,
    });
}

/// Read-only data dir: node 3 is SIGKILLed under load and its tmpfs
/// remounted read-only (as a file system is after an I/O error; a file
/// system with files open for writing cannot be switched under a running
/// node). A start on it must fail with a clear error naming the cause; once
/// it is read-write again the node starts, catches up and agrees.
#[test]
fn n4_read_only_data_dir_stops_node_cleanly_and_it_recovers_after_restart() {
    disk_fault(DiskFault {
        name: "read-only disk",
        break_it: |dir| {
            remount(dir, "ro");
            "remounted read-only".into()
        },
        while_running: false,
        mend: |dir| remount(dir, "rw"),
        restart_broken: Some("Read-only file system"),
    });
}

fn remount(dir: &Path, mode: &str) {
    let ok = Command::new("mount")
        .args(["-o", &format!("remount,{mode}")])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "mount -o remount,{mode} {} failed", dir.display());
}

/// Torn writes. Node 3 is SIGKILLed under load, then its files are left as
/// a power cut in the middle of a write could leave them:
///
/// 1. The last write is torn: redb commits in two phases and writes the
///    next record into the header's secondary slot; here that slot of
///    `ordo.redb` is garbage, and `votes.log` ends in half a record (a crash
///    while they were written). The node must start by itself on the last
///    complete commit and vote, catch up and agree. (What a torn record
///    protected was never acted on: a vote leaves only after its write
///    returned.) A damaged *committed* record is refused, see
///    `storage::tests::torn_last_commit_record_is_recovered_damaged_one_refused`
///    and `vote_log::tests::a_damaged_record_before_intact_ones_is_refused`.
/// 2. The file ends in a partial page of garbage, which both refuse: the
///    node must refuse to start with an error naming the file and what to
///    do, never start on it. Then the operator's way out, as the error tells
///    it: `votes.log` is restored from a backup; `ordo.redb` is moved
///    aside, and the node catches up from its peers with its votes intact.
///
/// At the end all nodes agree, every 202 committed exactly once.
#[test]
fn n4_torn_writes_are_recovered_or_refused_with_the_operator_path() {
    use std::io::Write;
    let mut cluster = Cluster::start(4);
    let (stop, acked, loader) = load_012(&cluster, "torn");
    cluster.wait_delivered(3, 10, Duration::from_secs(30));
    cluster.kill(3);
    let dir = cluster.data_dir(3);
    let mut rng = Rng(env_u64("ORDO_SEED", 7));
    let mut tear = |file: &str| {
        let path = dir.join(file);
        let garbage: Vec<u8> = (0..3_000).map(|_| rng.below(256) as u8).collect();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&garbage).unwrap();
        f.sync_all().unwrap();
    };
    let refused = |cluster: &mut Cluster, file: &str, advice: &str| {
        let before = cluster.log(3).len();
        cluster.start_node(3);
        let deadline = Instant::now() + Duration::from_secs(20);
        while cluster.running(3) {
            assert!(Instant::now() < deadline, "node 3 started on a torn {file}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = cluster.log(3);
        let fresh = &log[before.min(log.len())..];
        assert!(
            fresh.contains(file) && fresh.contains(advice),
            "the refusal does not name {file} and say what to do:\n{}",
            support::tail(fresh, 20)
        );
        eprintln!(
            "torn {file}: refused: {}",
            fresh
                .lines()
                .rev()
                .find(|l| l.contains(file))
                .unwrap_or("")
                .trim()
        );
    };

    // 1. Torn last writes: the node starts on the last complete ones.
    ordo_node::storage::testing::tear_commit_slot(
        &dir.join("ordo.redb"),
        ordo_node::storage::testing::Slot::Secondary,
    )
    .unwrap();
    ordo_node::storage::testing::tear_last_vote(&dir.join("votes.log")).unwrap();
    let before = cluster.log(3).len();
    cluster.start_node(3);
    cluster.wait_healthy(3, Duration::from_secs(30));
    let peers = cluster.delivered(0);
    cluster.wait_delivered(3, peers, Duration::from_secs(60));
    let log = cluster.log(3);
    assert!(
        !log[before.min(log.len())..].contains("cannot open"),
        "node 3 did not recover the torn commit records:\n{}",
        support::tail(&log, 20)
    );
    eprintln!("torn commit records: node 3 recovered by itself and caught up to {peers}");
    cluster.kill(3);

    // 2. Torn tails: refused, then the operator's way out.
    let backup = std::fs::read(dir.join("votes.log")).unwrap();
    tear("votes.log");
    refused(&mut cluster, "votes.log", "restore it from a backup");
    std::fs::write(dir.join("votes.log"), &backup).unwrap();

    tear("ordo.redb");
    refused(&mut cluster, "ordo.redb", "move it aside");
    std::fs::rename(dir.join("ordo.redb"), dir.join("ordo.redb.torn")).unwrap();

    let height = rejoin_3_and_check(&mut cluster, &stop, &acked, loader);
    eprintln!("torn tail: node 3 recovered from its peers, all agree up to {height}");
}

/// Partitions through real links: each node in its own network namespace
/// on a bridge (see `support::netns`); a partition takes a node's bridge
/// port down. Isolate node 3 (a minority of one), heal; then node 0 (the
/// first leader of every rotation), heal. While one node is cut off the
/// other three keep committing and it is frozen; after the heal it catches
/// up. End: identical gap-free sequences, every 202 committed exactly once.
/// Needs root and iproute2; skips with a message otherwise.
#[test]
fn n4_netns_link_partitions_minority_and_leader_heal_without_fork() {
    let netns = match support::netns::Netns::create(4) {
        Ok(netns) => netns,
        Err(why) => {
            eprintln!("SKIPPED: cannot build network namespaces: {why}");
            return;
        }
    };
    let cluster = support::start_in_netns(4, &netns);
    let stop = Arc::new(AtomicBool::new(false));
    let targets = Arc::new(Mutex::new(vec![0, 1, 2, 3]));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let loader = checks::load(
        cluster.apis.clone(),
        targets.clone(),
        "netns",
        Duration::from_millis(3),
        stop.clone(),
        acked.clone(),
        checks::Wait::Accepted,
    );
    cluster.wait_delivered(0, 5, Duration::from_secs(30));
    for cut in [3usize, 0] {
        targets.lock().unwrap().retain(|n| *n != cut);
        std::thread::sleep(Duration::from_millis(300));
        netns.isolate(cut);
        let frozen_from = Instant::now();
        let others: Vec<usize> = (0..4).filter(|n| *n != cut).collect();
        let before = cluster.delivered(others[0]);
        std::thread::sleep(Duration::from_secs(6));
        let after = cluster.delivered(others[0]);
        assert!(
            after >= before + 2,
            "majority without node {cut} stalled: {before} -> {after} in 6 s"
        );
        netns.heal(cut);
        let healed = Instant::now();
        cluster.wait_delivered(cut, after, Duration::from_secs(60));
        eprintln!(
            "netns: node {cut} cut off for {:?}: others {before} -> {after}; \
             node {cut} back to {after} {:?} after the heal",
            healed - frozen_from,
            healed.elapsed()
        );
        targets.lock().unwrap().push(cut);
    }
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();
    let must = payloads(&acked.lock().unwrap());
    let height = all_committed_once(&cluster, &must);
    eprintln!(
        "netns partitions: {} acknowledged, all committed once; all agree up to {height}",
        must.len()
    );
    drop(cluster);
}
