//! A userspace UDP relay that sits between the nodes of a cluster and
//! applies a link model (delay, jitter, loss, reordering) and partitions.
//! `tc netem` is not available on the build machines, so this is how the
//! tests emulate a WAN.
//!
//! One relay port per destination node `j`: the committee file names the
//! relay port as `j`'s address, and `j` really listens elsewhere (its
//! `listen = ...` override). Everything any node sends to the relay port is
//! forwarded to `j`'s real address from an upstream socket kept per client
//! address (NAT-like), so `j`'s replies come back through the relay too and
//! get the same model in the other direction. QUIC authenticates keys, not
//! addresses, so the handshakes succeed through the relay.
//!
//! A node's QUIC endpoint sends everything from one socket, bound to its
//! real address, so the relay knows the sending node of each datagram from
//! its source address and can apply a per (from, to) link model and drop
//! everything between partitioned groups.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::type_complexity)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How one directed link treats datagrams.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Link {
    /// Base one-way delay.
    pub delay_ms: u64,
    /// Uniform jitter added to the delay: `delay ± jitter`.
    pub jitter_ms: u64,
    /// Probability of dropping a datagram.
    pub loss: f64,
    /// Probability of holding a datagram back an extra `delay_ms` (so it
    /// arrives after datagrams sent after it).
    pub reorder: f64,
}

/// Counts of what the relay did.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub forwarded: AtomicU64,
    pub dropped_loss: AtomicU64,
    pub dropped_partition: AtomicU64,
    pub reordered: AtomicU64,
}

struct Model {
    default: Link,
    links: HashMap<(usize, usize), Link>,
    blocked: HashSet<(usize, usize)>,
    rng: u64,
}

impl Model {
    fn next_f64(&mut self) -> f64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Pending {
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    bytes: Vec<u8>,
}

struct Scheduler {
    queue: Mutex<(
        BinaryHeap<Reverse<(Instant, u64)>>,
        HashMap<u64, Pending>,
        u64,
    )>,
    wake: Condvar,
}

/// The relay for a whole cluster.
pub struct Relay {
    /// Relay address of node `j` (what the committee file names).
    pub fronts: Vec<SocketAddr>,
    /// Real listen address of node `j`.
    pub reals: Vec<SocketAddr>,
    model: Arc<Mutex<Model>>,
    pub stats: Arc<RelayStats>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn free_udp_addr() -> SocketAddr {
    // Bind, read the port, release: the node binds it right after.
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

impl Relay {
    /// A relay for `reals.len()` nodes whose real addresses are `reals`.
    pub fn start(reals: Vec<SocketAddr>, seed: u64) -> Relay {
        let n = reals.len();
        let model = Arc::new(Mutex::new(Model {
            default: Link::default(),
            links: HashMap::new(),
            blocked: HashSet::new(),
            rng: seed | 1,
        }));
        let stats = Arc::new(RelayStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let scheduler = Arc::new(Scheduler {
            queue: Mutex::new((BinaryHeap::new(), HashMap::new(), 0)),
            wake: Condvar::new(),
        });
        let mut threads = Vec::new();
        {
            let scheduler = scheduler.clone();
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || run_scheduler(&scheduler, &stop)));
        }
        let who: Arc<HashMap<SocketAddr, usize>> =
            Arc::new(reals.iter().enumerate().map(|(i, a)| (*a, i)).collect());
        let mut fronts = Vec::new();
        for (j, real) in reals.iter().copied().enumerate() {
            let front = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
            front
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            fronts.push(front.local_addr().unwrap());
            let ctx = Ctx {
                model: model.clone(),
                stats: stats.clone(),
                scheduler: scheduler.clone(),
                stop: stop.clone(),
            };
            let who = who.clone();
            threads.push(std::thread::spawn(move || {
                front_loop(j, real, front, &who, ctx)
            }));
        }
        assert_eq!(fronts.len(), n);
        Relay {
            fronts,
            reals,
            model,
            stats,
            stop,
            threads,
        }
    }

    /// Real addresses for `n` nodes (free loopback UDP ports).
    pub fn free_reals(n: usize) -> Vec<SocketAddr> {
        (0..n).map(|_| free_udp_addr()).collect()
    }

    /// Applies `link` to every directed pair.
    pub fn set_all(&self, link: Link) {
        let mut m = self.model.lock().unwrap();
        m.default = link;
        m.links.clear();
    }

    pub fn set_link(&self, from: usize, to: usize, link: Link) {
        self.model.lock().unwrap().links.insert((from, to), link);
    }

    /// Drops everything between `group` and the other nodes, both ways.
    pub fn isolate(&self, group: &[usize]) {
        let n = self.reals.len();
        let mut m = self.model.lock().unwrap();
        for a in group {
            for b in 0..n {
                if !group.contains(&b) {
                    m.blocked.insert((*a, b));
                    m.blocked.insert((b, *a));
                }
            }
        }
    }

    pub fn heal(&self) {
        self.model.lock().unwrap().blocked.clear();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[derive(Clone)]
struct Ctx {
    model: Arc<Mutex<Model>>,
    stats: Arc<RelayStats>,
    scheduler: Arc<Scheduler>,
    stop: Arc<AtomicBool>,
}

impl Ctx {
    /// Applies the (from, to) link to one datagram and schedules it.
    fn forward(
        &self,
        from: Option<usize>,
        to: usize,
        socket: &Arc<UdpSocket>,
        dest: SocketAddr,
        bytes: &[u8],
    ) {
        let delay = {
            let mut m = self.model.lock().unwrap();
            let link = match from {
                Some(f) => {
                    if m.blocked.contains(&(f, to)) {
                        self.stats.dropped_partition.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    m.links.get(&(f, to)).copied().unwrap_or(m.default)
                }
                None => m.default,
            };
            if link.loss > 0.0 && m.next_f64() < link.loss {
                self.stats.dropped_loss.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let jitter = if link.jitter_ms > 0 {
                (m.next_f64() * (2 * link.jitter_ms) as f64) as i64 - link.jitter_ms as i64
            } else {
                0
            };
            let mut delay = (link.delay_ms as i64 + jitter).max(0) as u64;
            if link.reorder > 0.0 && m.next_f64() < link.reorder {
                self.stats.reordered.fetch_add(1, Ordering::Relaxed);
                delay += link.delay_ms.max(5);
            }
            delay
        };
        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        if delay == 0 {
            let _ = socket.send_to(bytes, dest);
            return;
        }
        let at = Instant::now() + Duration::from_millis(delay);
        let mut q = self.scheduler.queue.lock().unwrap();
        let seq = q.2;
        q.2 += 1;
        q.0.push(Reverse((at, seq)));
        q.1.insert(
            seq,
            Pending {
                socket: socket.clone(),
                to: dest,
                bytes: bytes.to_vec(),
            },
        );
        drop(q);
        self.scheduler.wake.notify_one();
    }
}

fn run_scheduler(s: &Scheduler, stop: &AtomicBool) {
    let mut q = s.queue.lock().unwrap();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        match q.0.peek().copied() {
            Some(Reverse((at, seq))) if at <= now => {
                q.0.pop();
                let p = q.1.remove(&seq).unwrap();
                drop(q);
                let _ = p.socket.send_to(&p.bytes, p.to);
                q = s.queue.lock().unwrap();
            }
            Some(Reverse((at, _))) => {
                let wait = (at - now).min(Duration::from_millis(50));
                q = s.wake.wait_timeout(q, wait).unwrap().0;
            }
            None => {
                q = s.wake.wait_timeout(q, Duration::from_millis(50)).unwrap().0;
            }
        }
    }
}

/// Receives on node `to`'s relay port; forwards each datagram to its real
/// address through an upstream socket kept per client address.
fn front_loop(
    to: usize,
    real: SocketAddr,
    front: Arc<UdpSocket>,
    who: &HashMap<SocketAddr, usize>,
    ctx: Ctx,
) {
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    while !ctx.stop.load(Ordering::Relaxed) {
        let (len, client) = match front.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue,
        };
        let from = who.get(&client).copied();
        let up = upstreams
            .entry(client)
            .or_insert_with(|| {
                let up = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
                up.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                // Replies from `to` to this client: same model, other way.
                let (up2, front2, ctx2) = (up.clone(), front.clone(), ctx.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while !ctx2.stop.load(Ordering::Relaxed) {
                        if let Ok((len, src)) = up2.recv_from(&mut buf) {
                            if src == real {
                                match from {
                                    Some(f) => {
                                        ctx2.forward(Some(to), f, &front2, client, &buf[..len])
                                    }
                                    None => {
                                        let _ = front2.send_to(&buf[..len], client);
                                    }
                                }
                            }
                        }
                    }
                });
                up
            })
            .clone();
        ctx.forward(from, to, &up, real, &buf[..len]);
    }
}
