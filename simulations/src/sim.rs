//! The discrete-event engine: one virtual clock, one event queue, one seed.
//!
//! Events are ordered by (virtual time in µs, insertion number), so two runs
//! of the same scenario and seed process the same events in the same order.
//! Every processed event is fed, in a canonical encoding, to a blake3
//! hasher: the resulting trace hash is the run's fingerprint.
//!
//! Each host runs a consensus core and a mempool core ([`pool`]), wired as
//! in the node: the mempool's certificates are the consensus payload, and
//! the blocks consensus commits go back to the mempool.

mod pool;

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use ordo_consensus::{
    election, Action, Block, CommitCert, CommittedBlock, Config, Core, Event, Message, Recovery,
    SafetyData, Timer,
};
use ordo_mempool::consensus::MempoolInclusion;
use ordo_mempool::{BatchCert, IntakeConfig, Message as MpMessage, Timer as MpTimer};
use ordo_types::{codec, Committee, Digest, DigestMap, Keypair, NodeIndex};

use crate::byzantine::Byzantine;
use crate::checker::{short, Checker, ItemState};
use crate::load::{make_tx, ItemId};
use crate::network::Network;
use crate::payload::{cert_key, decode_certs, CertRules, VerifiedCerts};
use crate::report::{Percentiles, SeedReport};
use crate::rng::Rng;
use crate::scenario::{Behaviour, Scenario, Signatures, SubmitTo};

/// Options of one run that are not part of the scenario.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Override the scenario's signature scheme.
    pub signatures: Option<Signatures>,
    /// **Test only**: honest cores run with a broken vote rule
    /// (`Config::test_only_break_vote_rule`). Not reachable from files.
    pub test_only_break_vote_rule: bool,
}

enum Kind {
    Deliver {
        host: usize,
        from: NodeIndex,
        message: Rc<Message>,
        digest: [u8; 32],
    },
    Timer {
        host: usize,
        epoch: u32,
        timer: Timer,
    },
    Load,
    Crash {
        host: usize,
    },
    Restart {
        host: usize,
        torn: bool,
    },
    Storm,
    ByzTick {
        host: usize,
        epoch: u32,
    },
    /// An honest host checks whether it is far behind a peer (catch-up).
    SyncTick {
        host: usize,
        epoch: u32,
    },
    /// A peer's committed blocks arrive at a host that asked for them.
    SyncDeliver {
        host: usize,
        epoch: u32,
        from: NodeIndex,
        blocks: Vec<CommittedBlock>,
    },
    /// A mempool message arrives.
    PoolDeliver {
        host: usize,
        from: NodeIndex,
        message: Rc<MpMessage>,
        digest: [u8; 32],
    },
    PoolTimer {
        host: usize,
        epoch: u32,
        timer: MpTimer,
    },
}

/// Catch-up as the node does it: a host more than `SYNC_LAG` heights behind
/// a peer asks it for up to `SYNC_MAX_BLOCKS` committed blocks, takes them
/// as commits and restarts its core from the new tip. Checked every
/// `SYNC_EVERY_MS` of the host's time.
const SYNC_LAG: usize = 8;
const SYNC_MAX_BLOCKS: usize = 64;
const SYNC_EVERY_MS: u64 = 500;

struct Scheduled {
    at: u64,
    seq: u64,
    kind: Kind,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A node's timer clock: `local = offset + t * (1 + ppm / 10^6)`.
#[derive(Clone, Copy, Debug, Default)]
struct Clock {
    offset_us: i128,
    ppm: i128,
}

impl Clock {
    fn local_us(&self, global_us: u64) -> u64 {
        let g = i128::from(global_us);
        (self.offset_us + g + g * self.ppm / 1_000_000).max(0) as u64
    }

    fn local_ms(&self, global_us: u64) -> u64 {
        self.local_us(global_us) / 1_000
    }

    /// The first global instant at which the local clock reads `at_ms`.
    fn global_us_for(&self, at_ms: u64) -> u64 {
        let target = i128::from(at_ms) * 1_000;
        let mut g = ((target - self.offset_us) * 1_000_000 / (1_000_000 + self.ppm)).max(0) as u64;
        while i128::from(self.local_us(g)) < target {
            g += 1;
        }
        g
    }
}

enum Role {
    Honest,
    Byzantine(Box<Byzantine>),
    Twin,
}

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    proposals: u64,
    timeouts: u64,
    qcs: u64,
    tcs: u64,
}

struct Host {
    node: NodeIndex,
    role: Role,
    core: Option<Core>,
    epoch: u32,
    /// Members this host can talk to (twins); `None` = everyone.
    links: Option<Vec<bool>>,
    persisted: Option<SafetyData>,
    prev_persisted: Option<SafetyData>,
    /// Blocks persisted before voting (`Action::PersistBlock`), pruned at
    /// or below the last committed view.
    persisted_blocks: Vec<Block>,
    /// Every block this host committed, by digest (its index in `chain`):
    /// the node's block store, from which an honest host answers a
    /// `BlockRequest` its core cannot (the node's catch-up from storage).
    stored_commits: HashMap<Digest, usize>,
    /// The committed chain (height `i + 1` at index `i`), served to peers
    /// that catch up; the last one is the root a restart resumes from.
    chain: Vec<StoredCommit>,
    clock: Clock,
    down_since_us: Option<u64>,
    /// Down intervals `(from, to)`, for deciding which items a node lost.
    downtime: Vec<(u64, u64)>,
    counters: Counters,
    restarts: u64,
    pool: pool::Pool,
}

/// A committed block in a host's storage: the block, one copy shared by
/// every host that committed it (blocks of large committees are large), and
/// this host's commit certificate.
struct StoredCommit {
    block: Rc<Block>,
    cert: CommitCert,
}

impl StoredCommit {
    fn to_committed(&self) -> CommittedBlock {
        CommittedBlock {
            block: (*self.block).clone(),
            cert: self.cert.clone(),
        }
    }
}

impl Host {
    fn honest(&self) -> bool {
        matches!(self.role, Role::Honest)
    }

    /// Stores a commit as the node's storage would: the block by digest and
    /// height, as the new root; persisted blocks at or below it go.
    fn record_commit(&mut self, block: Rc<Block>, cert: CommitCert) {
        let root_view = block.view();
        self.persisted_blocks.retain(|b| b.view() > root_view);
        self.stored_commits.insert(block.digest(), self.chain.len());
        self.chain.push(StoredCommit { block, cert });
    }

    /// What the host's storage holds for a restarted core: the persisted
    /// safety data, the last committed block (the QC of its certificate as
    /// the high QC) with the committed blocks below it, and the blocks
    /// persisted before voting above it.
    fn recovery(&self, committee: &Committee) -> Recovery {
        let safety = self.persisted.clone().unwrap_or_default();
        let last_committed = self.chain.last();
        let root_view = last_committed.map_or(0, |c| c.block.view());
        let blocks: Vec<Block> = self
            .persisted_blocks
            .iter()
            .filter(|b| b.view() > root_view)
            .cloned()
            .collect();
        match last_committed {
            Some(last) => Recovery {
                safety,
                root: (*last.block).clone(),
                high_qc: last.cert.qc.clone(),
                high_tc: None,
                blocks,
                ancestors: Vec::new(),
            }
            .with_ancestors(
                self.chain.iter().rev().skip(1).map(|c| (*c.block).clone()),
                committee,
            ),
            None => Recovery {
                safety,
                blocks,
                ..Recovery::genesis(committee)
            },
        }
    }

    fn fold_counters(&mut self) {
        if let Some(core) = &self.core {
            let s = core.stats();
            self.counters.proposals += s.proposals;
            self.counters.timeouts += s.timeouts;
            self.counters.qcs += s.qcs_formed;
            self.counters.tcs += s.tcs_formed;
        }
    }
}

#[derive(Clone, Debug, Default)]
struct NetStats {
    sent: u64,
    bytes: u64,
    lost: u64,
    cut: u64,
    to_down_node: u64,
    misbehaviour_reports: u64,
    honest_blamed: u64,
    /// Victims' batch certificates a censoring leader left out of its
    /// payload (counted each time it was offered them).
    censored_certs: u64,
    /// Reports by honest nodes, per accused node.
    misbehaviour_against: Vec<u64>,
}

/// One run of a scenario with one seed.
pub struct Sim<'a> {
    scenario: &'a Scenario,
    seed: u64,
    options: RunOptions,
    committee: Arc<Committee>,
    keys: Vec<Keypair>,
    hosts: Vec<Host>,
    hosts_of: Vec<Vec<usize>>,
    queue: BinaryHeap<Scheduled>,
    next_seq: u64,
    now_us: u64,
    network: Network,
    checker: Checker,
    load_rng: Rng,
    storm_rng: Rng,
    client_seq: Vec<u64>,
    net: NetStats,
    events: u64,
    trace_hash: blake3::Hasher,
    trace_out: Option<&'a mut dyn Write>,
    /// Batch certificates known to verify (a memo shared by the hosts).
    verified: Arc<VerifiedCerts>,
    /// Committed blocks by digest, one copy for all hosts.
    committed_blocks: DigestMap<Rc<Block>>,
}

impl<'a> Sim<'a> {
    pub fn new(scenario: &'a Scenario, seed: u64, options: RunOptions) -> Self {
        let n = scenario.nodes;
        let (committee, keys) = Committee::for_testing(n);
        let scheme = options.signatures.unwrap_or(scenario.signatures);
        let (committee, keys) = match scheme {
            Signatures::Simulated => (
                committee.insecure_simulated(),
                keys.into_iter().map(Keypair::insecure_simulated).collect(),
            ),
            Signatures::Ed25519 => (committee, keys),
        };
        let committee = Arc::new(committee);
        let mut clock_rng = Rng::fork(seed, 0xC10C);
        let intake = IntakeConfig {
            max_tx_bytes: scenario.mempool.max_tx_bytes,
            ..IntakeConfig::default()
        };
        let mut hosts = Vec::with_capacity(n + 1);
        for (i, key) in keys.iter().enumerate() {
            let node = i as NodeIndex;
            let role = match scenario.byzantine.iter().find(|b| b.node == node) {
                Some(spec) => Role::Byzantine(Box::new(Byzantine::new(
                    spec.clone(),
                    key.clone(),
                    committee.clone(),
                    seed,
                ))),
                None if scenario.twins.as_ref().is_some_and(|t| t.node == node) => Role::Twin,
                None => Role::Honest,
            };
            hosts.push(Host::new(
                node,
                role,
                draw_clock(scenario, &mut clock_rng),
                &intake,
            ));
        }
        let mut hosts_of: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
        if let Some(t) = &scenario.twins {
            let twin = usize::from(t.node);
            let mask = |group: &[NodeIndex]| {
                let mut m = vec![false; n];
                for g in group {
                    m[usize::from(*g)] = true;
                }
                Some(m)
            };
            hosts[twin].links = mask(&t.group_a);
            let mut b = Host::new(t.node, Role::Twin, hosts[twin].clock, &intake);
            b.links = mask(&t.group_b);
            hosts.push(b);
            hosts_of[twin].push(n);
        }
        let host_count = hosts.len();
        let checker = Checker::new(scenario, committee.clone());
        let mut sim = Sim {
            scenario,
            seed,
            options,
            committee,
            keys,
            hosts,
            hosts_of,
            queue: BinaryHeap::new(),
            next_seq: 0,
            now_us: 0,
            network: Network::new(&scenario.network, n, host_count, seed),
            checker,
            load_rng: Rng::fork(seed, 0x10AD),
            storm_rng: Rng::fork(seed, 0x5708),
            client_seq: vec![0; usize::from(scenario.load.clients.max(1))],
            net: NetStats {
                misbehaviour_against: vec![0; n],
                ..NetStats::default()
            },
            events: 0,
            trace_hash: blake3::Hasher::new(),
            trace_out: None,
            verified: Arc::new(VerifiedCerts::default()),
            committed_blocks: DigestMap::default(),
        };
        sim.trace_hash.update(b"ordo-sim-trace-v1");
        sim.trace_hash.update(&seed.to_le_bytes());
        sim
    }

    /// Prints every processed event to `out`.
    pub fn with_trace(mut self, out: &'a mut dyn Write) -> Self {
        self.trace_out = Some(out);
        self
    }

    /// Runs to the end of the scenario or the first violation.
    pub fn run(mut self) -> SeedReport {
        let wall = Instant::now();
        self.boot();
        let end_us = self.scenario.duration_ms * 1_000;
        while let Some(event) = self.queue.pop() {
            if event.at > end_us {
                break;
            }
            self.now_us = self.now_us.max(event.at);
            self.step(event.kind);
            self.events += 1;
            if self.checker.violation.is_some() {
                break;
            }
        }
        let mut lost = 0;
        if self.checker.violation.is_none() {
            self.now_us = end_us;
            let load_stop_us = self.scenario.load_stop_ms() * 1_000;
            let hosts = &self.hosts;
            let hosts_of = &self.hosts_of;
            lost = self.checker.finish(end_us, load_stop_us, |item| {
                kept(hosts, hosts_of, item, end_us)
            });
        }
        self.report(wall.elapsed().as_secs_f64() * 1_000.0, lost)
    }

    fn boot(&mut self) {
        for host in 0..self.hosts.len() {
            self.start_core(host, Recovery::genesis(&self.committee));
        }
        for host in 0..self.hosts.len() {
            self.start_pool(host);
        }
        let s = self.scenario;
        if s.load.rate_per_s > 0.0 && s.load.start_ms <= s.load_stop_ms() {
            self.schedule(s.load.start_ms * 1_000, Kind::Load);
        }
        for c in &s.crashes {
            for k in 0..self.hosts_of[usize::from(c.node)].len() {
                let host = self.hosts_of[usize::from(c.node)][k];
                self.schedule(c.at_ms * 1_000, Kind::Crash { host });
                if let Some(r) = c.restart_ms {
                    let torn = c.torn_write;
                    self.schedule(r * 1_000, Kind::Restart { host, torn });
                }
            }
        }
        if let Some(storm) = &s.crash_storm {
            self.schedule(storm.start_ms * 1_000, Kind::Storm);
        }
    }

    fn make_core(&self, host: usize, recovery: Recovery) -> Core {
        let h = &self.hosts[host];
        let mut config: Config = self.scenario.consensus.clone();
        config.test_only_break_vote_rule = self.options.test_only_break_vote_rule && h.honest();
        let leaders = election(self.committee.size(), &config);
        // The node's core: payload items must be valid batch certificates.
        let core = Core::new(
            config,
            self.committee.clone(),
            h.node,
            self.keys[usize::from(h.node)].clone(),
            leaders,
            recovery,
        )
        .with_payload_rules(Box::new(CertRules::new(
            self.committee.clone(),
            self.verified.clone(),
        )));
        if !self.scenario.checks.inclusion_rule {
            return core;
        }
        // Every node (Byzantine ones too: a censor is a real core that never
        // sees the victim's certificates) runs the mempool's rule, naming a
        // certificate by its batch digest as the node does.
        let spec = &self.scenario.inclusion;
        core.with_inclusion_rules(Box::new(MempoolInclusion::new(
            h.node,
            self.keys[usize::from(h.node)].clone(),
            self.committee.clone(),
            spec.delay_ms,
            spec.max_list_len,
            cert_key,
        )))
    }

    fn start_core(&mut self, host: usize, recovery: Recovery) {
        let mut core = self.make_core(host, recovery);
        let now_ms = self.hosts[host].clock.local_ms(self.now_us);
        let actions = core.start(now_ms);
        let h = &mut self.hosts[host];
        h.core = Some(core);
        let tick = match &h.role {
            Role::Byzantine(b) => b.tick_every_ms(),
            _ => None,
        };
        let epoch = h.epoch;
        let actions = match &mut h.role {
            Role::Byzantine(b) => b.on_output(actions),
            _ => actions,
        };
        self.execute(host, actions);
        if let Some(every) = tick {
            self.schedule(self.now_us + every * 1_000, Kind::ByzTick { host, epoch });
        }
        if self.hosts[host].honest() {
            self.schedule(
                self.now_us + SYNC_EVERY_MS * 1_000,
                Kind::SyncTick { host, epoch },
            );
        }
    }

    fn schedule(&mut self, at: u64, kind: Kind) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Scheduled { at, seq, kind });
    }

    fn up(&self, host: usize) -> bool {
        self.hosts[host].core.is_some()
    }

    // ----- events ------------------------------------------------------------

    fn step(&mut self, kind: Kind) {
        match kind {
            Kind::Deliver {
                host,
                from,
                message,
                digest,
            } => {
                if !self.up(host) {
                    self.net.to_down_node += 1;
                    return;
                }
                self.trace(host, 1, &[&from.to_le_bytes(), &digest], || {
                    format!("<- n{from} {}", describe(&message))
                });
                if let Message::BlockRequest(digest) = &*message {
                    if let Some(block) = self.stored_commit(host, digest) {
                        let response = Message::BlockResponse(Box::new(block));
                        self.transmit(host, Some(from), response);
                        return;
                    }
                }
                let message = Rc::try_unwrap(message).unwrap_or_else(|rc| (*rc).clone());
                self.handle(host, Event::Message { from, message });
            }
            Kind::Timer { host, epoch, timer } => {
                if !self.up(host) || self.hosts[host].epoch != epoch {
                    return;
                }
                let (tag, view) = match timer {
                    Timer::View(v) => (0u8, v),
                    Timer::Propose(v) => (1u8, v),
                };
                self.trace(host, 2, &[&[tag], &view.to_le_bytes()], || {
                    format!("timer {timer:?}")
                });
                self.handle(host, Event::TimerFired(timer));
            }
            Kind::SyncTick { host, epoch } => {
                if !self.up(host) || self.hosts[host].epoch != epoch {
                    return;
                }
                self.on_sync_tick(host);
                self.schedule(
                    self.now_us + SYNC_EVERY_MS * 1_000,
                    Kind::SyncTick { host, epoch },
                );
            }
            Kind::SyncDeliver {
                host,
                epoch,
                from,
                blocks,
            } => {
                if !self.up(host) || self.hosts[host].epoch != epoch {
                    return;
                }
                self.on_sync_deliver(host, from, blocks);
            }
            Kind::PoolDeliver {
                host,
                from,
                message,
                digest,
            } => self.on_pool_deliver(host, from, message, digest),
            Kind::PoolTimer { host, epoch, timer } => self.on_pool_timer(host, epoch, timer),
            Kind::Load => self.on_load(),
            Kind::Crash { host } => self.crash(host),
            Kind::Restart { host, torn } => self.restart(host, torn),
            Kind::Storm => self.on_storm(),
            Kind::ByzTick { host, epoch } => {
                if !self.up(host) || self.hosts[host].epoch != epoch {
                    return;
                }
                self.trace(host, 3, &[], || "byzantine tick".into());
                let h = &mut self.hosts[host];
                let view = h.core.as_ref().map_or(0, Core::view);
                let (actions, every) = match &mut h.role {
                    Role::Byzantine(b) => (b.on_tick(view), b.tick_every_ms()),
                    _ => (Vec::new(), None),
                };
                self.execute(host, actions);
                if let Some(every) = every {
                    self.schedule(self.now_us + every * 1_000, Kind::ByzTick { host, epoch });
                }
            }
        }
    }

    /// A committed block an honest host's core no longer holds in memory
    /// (a restart empties its window of recent blocks) but its storage does.
    /// Without this, a node that lagged behind a restart of every holder of
    /// a committed block could never fetch it.
    fn stored_commit(&self, host: usize, digest: &Digest) -> Option<Block> {
        let h = &self.hosts[host];
        if !h.honest() || h.core.as_ref()?.block(digest).is_some() {
            return None;
        }
        let k = *h.stored_commits.get(digest)?;
        h.chain.get(k).map(|c| (*c.block).clone())
    }

    /// Stores `host`'s commit, sharing the block with every other host that
    /// committed it.
    fn record_commit(&mut self, host: usize, committed: CommittedBlock) {
        let CommittedBlock { block, cert } = committed;
        let shared = self
            .committed_blocks
            .entry(block.digest())
            .or_insert_with(|| Rc::new(block))
            .clone();
        self.hosts[host].record_commit(shared, cert);
    }

    fn handle(&mut self, host: usize, event: Event) {
        let now_us = self.now_us;
        let h = &mut self.hosts[host];
        let now_ms = h.clock.local_ms(now_us);
        let Some(core) = h.core.as_mut() else {
            return;
        };
        let checker = &self.checker;
        let left_out = std::cell::Cell::new(0u64);
        let censored = |item: &[u8]| {
            let victim =
                codec::decode::<BatchCert>(item).is_ok_and(|c| checker.batch_has_victim(&c.batch));
            left_out.set(left_out.get() + u64::from(victim));
            victim
        };
        let actions = match &mut h.role {
            Role::Byzantine(b) => {
                let mut out = Vec::new();
                if let Some(event) = b.on_input(event, &mut out, &censored) {
                    let actions = core.handle(now_ms, event);
                    out.extend(b.on_output(actions));
                }
                out
            }
            _ => core.handle(now_ms, event),
        };
        self.net.censored_certs += left_out.get();
        let view = core.view();
        if h.honest() {
            let node = h.node;
            self.checker.on_view(node, view, now_us);
        }
        self.execute(host, actions);
    }

    fn execute(&mut self, host: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { to, message } => self.transmit(host, Some(to), message),
                Action::Broadcast { message } => self.transmit(host, None, message),
                Action::ScheduleTimer { timer, at_ms } => {
                    let h = &self.hosts[host];
                    let at = h.clock.global_us_for(at_ms).max(self.now_us);
                    let epoch = h.epoch;
                    self.schedule(at, Kind::Timer { host, epoch, timer });
                }
                Action::Persist(data) => {
                    let h = &mut self.hosts[host];
                    h.prev_persisted = h.persisted.replace(data);
                }
                Action::PersistBlock(block) => self.hosts[host].persisted_blocks.push(*block),
                Action::FetchBlock { digest, from } => {
                    self.transmit(host, Some(from), Message::BlockRequest(digest))
                }
                Action::Commit(block) => {
                    let h = &self.hosts[host];
                    if h.honest() {
                        let node = h.node;
                        self.checker.on_commit(node, &block, self.now_us);
                    }
                    let height = block.block.height();
                    let certs = decode_certs(&block.block.payload).unwrap_or_default();
                    self.record_commit(host, *block);
                    self.pool_committed(host, height, certs);
                }
                Action::Misbehaviour { peer, .. } => {
                    self.net.misbehaviour_reports += 1;
                    if self.hosts[host].honest() {
                        if let Some(c) = self.net.misbehaviour_against.get_mut(usize::from(peer)) {
                            *c += 1;
                        }
                        if self.checker.is_honest(peer) {
                            self.net.honest_blamed += 1;
                        }
                    }
                }
            }
        }
    }

    /// Sends `message` from `host` to member `to`, or to every other member.
    fn transmit(&mut self, host: usize, to: Option<NodeIndex>, message: Message) {
        let from = self.hosts[host].node;
        let Ok(bytes) = codec::encode(&message) else {
            self.net.lost += 1;
            return;
        };
        let digest = *blake3::hash(&bytes).as_bytes();
        self.checker.on_send(from, &message, self.now_us);
        let message = Rc::new(message);
        self.fan_out(host, to, bytes.len(), |receiver, from| Kind::Deliver {
            host: receiver,
            from,
            message: message.clone(),
            digest,
        });
    }

    /// Plans one message of `bytes` from `host` to member `to` (or every
    /// other member) over each link, scheduling `deliver(receiver, from)`
    /// at every arrival.
    fn fan_out(
        &mut self,
        host: usize,
        to: Option<NodeIndex>,
        bytes: usize,
        deliver: impl Fn(usize, NodeIndex) -> Kind,
    ) {
        let from = self.hosts[host].node;
        let n = self.scenario.nodes as NodeIndex;
        let targets = match to {
            Some(to) if usize::from(to) < self.scenario.nodes => to..to + 1,
            Some(_) => return,
            None => 0..n,
        };
        for to in targets {
            if to == from {
                continue;
            }
            for k in 0..self.hosts_of[usize::from(to)].len() {
                let receiver = self.hosts_of[usize::from(to)][k];
                if !self.linked(host, receiver) {
                    continue;
                }
                let plan = self.network.plan(self.now_us, host, from, to, bytes);
                self.net.sent += 1;
                self.net.bytes += bytes as u64;
                if plan.cut {
                    self.net.cut += 1;
                } else if plan.deliveries.is_empty() {
                    self.net.lost += 1;
                }
                for at in plan.deliveries {
                    self.schedule(at, deliver(receiver, from));
                }
            }
        }
    }

    /// Whether two hosts are connected (twins talk to their group only).
    fn linked(&self, a: usize, b: usize) -> bool {
        let allows = |x: usize, y: usize| {
            self.hosts[x]
                .links
                .as_ref()
                .is_none_or(|m| m[usize::from(self.hosts[y].node)])
        };
        allows(a, b) && allows(b, a)
    }

    // ----- load, crashes -------------------------------------------------------

    fn on_load(&mut self) {
        let spec = &self.scenario.load;
        let clients = u64::from(spec.clients.max(1));
        let client = self.load_rng.range(0, clients - 1) as u16;
        let seq = self.client_seq[usize::from(client)];
        self.client_seq[usize::from(client)] += 1;
        let id = ItemId { client, seq };
        let tx = make_tx(id, spec.item_bytes);
        let n = self.scenario.nodes;
        let recipients: Vec<NodeIndex> = match spec.submit_to {
            SubmitTo::All => {
                self.checker.on_submit(id, None, self.now_us);
                (0..n as NodeIndex).collect()
            }
            SubmitTo::One | SubmitTo::Home => {
                let node = match spec.submit_to {
                    SubmitTo::One => self.load_rng.range(0, n as u64 - 1) as NodeIndex,
                    _ => (usize::from(client) % n) as NodeIndex,
                };
                self.checker.on_submit(id, Some(node), self.now_us);
                vec![node]
            }
        };
        self.trace(
            usize::MAX,
            4,
            &[&client.to_le_bytes(), &seq.to_le_bytes()],
            || format!("submit tx c{client}#{seq} to {recipients:?}"),
        );
        for node in recipients {
            for k in 0..self.hosts_of[usize::from(node)].len() {
                let host = self.hosts_of[usize::from(node)][k];
                if self.up(host) && self.submit(host, tx.clone()) && self.hosts[host].honest() {
                    self.checker.on_accept(id, node);
                }
            }
        }
        let mean_us = 1e6 / spec.rate_per_s;
        let next = self.now_us + (self.load_rng.exponential(mean_us) as u64).max(1);
        if next <= self.scenario.load_stop_ms() * 1_000 {
            self.schedule(next, Kind::Load);
        }
    }

    fn crash(&mut self, host: usize) {
        if !self.up(host) {
            return;
        }
        self.trace(host, 5, &[], || "crash".into());
        let now = self.now_us;
        let h = &mut self.hosts[host];
        h.fold_counters();
        h.core = None;
        h.epoch += 1;
        h.down_since_us = Some(now);
        h.pool.crash();
        if h.honest() {
            let node = h.node;
            self.checker.on_crash(node);
        }
    }

    /// Restarts from what storage holds: the persisted safety data (minus
    /// the last write if `torn`), the last committed block, whose
    /// certificate's QC becomes the high QC, and the blocks persisted before
    /// voting above it. A torn write loses only the safety data: the block
    /// written just before it stays (a harmless extra block). Then the
    /// mempool restarts from its stored batches ([`Sim::start_pool`]).
    fn restart(&mut self, host: usize, torn: bool) {
        if self.up(host) {
            return;
        }
        self.trace(host, 6, &[&[u8::from(torn)]], || {
            format!("restart{}", if torn { " (torn write)" } else { "" })
        });
        let now = self.now_us;
        let h = &mut self.hosts[host];
        if let Some(since) = h.down_since_us.take() {
            h.downtime.push((since, now));
        }
        h.restarts += 1;
        if torn {
            h.persisted = h.prev_persisted.take();
        }
        let recovery = h.recovery(&self.committee);
        self.start_core(host, recovery);
        self.start_pool(host);
    }

    /// If a reachable honest peer is more than `SYNC_LAG` heights ahead
    /// (the node learns peers' heights from their messages), asks the one
    /// furthest ahead for the blocks after this host's tip; they arrive
    /// after a round trip through the simulated network (lost or cut like
    /// any message).
    fn on_sync_tick(&mut self, host: usize) {
        let mine = self.hosts[host].chain.len();
        let mut best: Option<(usize, usize)> = None;
        for peer in 0..self.hosts.len() {
            let p = &self.hosts[peer];
            if peer == host || !self.up(peer) || !p.honest() || !self.linked(host, peer) {
                continue;
            }
            if p.chain.len() > mine + SYNC_LAG && best.is_none_or(|(_, h)| p.chain.len() > h) {
                best = Some((peer, p.chain.len()));
            }
        }
        let Some((peer, _)) = best else {
            return;
        };
        let (me, them) = (self.hosts[host].node, self.hosts[peer].node);
        let request = self.network.plan(self.now_us, host, me, them, 64);
        let Some(&asked) = request.deliveries.first() else {
            return;
        };
        let blocks: Vec<CommittedBlock> = self.hosts[peer]
            .chain
            .iter()
            .skip(mine)
            .take(SYNC_MAX_BLOCKS)
            .map(StoredCommit::to_committed)
            .collect();
        let bytes = blocks
            .iter()
            .map(|b| codec::encode(b).map_or(0, |e| e.len()))
            .sum();
        let response = self.network.plan(asked, peer, them, me, bytes);
        let Some(&arrives) = response.deliveries.first() else {
            return;
        };
        self.trace(
            host,
            7,
            &[&them.to_le_bytes(), &(mine as u64).to_le_bytes()],
            || {
                format!(
                    "sync: asks n{them} for {} blocks after height {mine}",
                    blocks.len()
                )
            },
        );
        let epoch = self.hosts[host].epoch;
        self.schedule(
            arrives,
            Kind::SyncDeliver {
                host,
                epoch,
                from: them,
                blocks,
            },
        );
    }

    /// Takes the synced blocks that continue this host's chain as commits
    /// and restarts its core from the new tip with its safety data.
    fn on_sync_deliver(&mut self, host: usize, from: NodeIndex, blocks: Vec<CommittedBlock>) {
        let mine = self.hosts[host].chain.len() as u64;
        let fresh: Vec<CommittedBlock> = blocks
            .into_iter()
            .filter(|b| b.block.height() > mine)
            .collect();
        if fresh.first().is_none_or(|b| b.block.height() != mine + 1) {
            return;
        }
        self.trace(host, 8, &[&from.to_le_bytes(), &mine.to_le_bytes()], || {
            format!(
                "sync: {} blocks from n{from} after height {mine}",
                fresh.len()
            )
        });
        let node = self.hosts[host].node;
        // As in the node: the synced blocks go to the mempool (which
        // fetches their batches), the core restarts from the new tip, and
        // the mempool hands it every pending certificate again.
        for block in fresh {
            self.checker.on_commit(node, &block, self.now_us);
            let height = block.block.height();
            let certs = decode_certs(&block.block.payload).unwrap_or_default();
            self.record_commit(host, block);
            self.pool_committed(host, height, certs);
        }
        let h = &mut self.hosts[host];
        h.fold_counters();
        h.core = None;
        h.epoch += 1;
        let recovery = h.recovery(&self.committee);
        self.start_core(host, recovery);
        self.resend_payload(host);
    }

    fn on_storm(&mut self) {
        let Some(spec) = &self.scenario.crash_storm else {
            return;
        };
        let now_ms = self.now_us / 1_000;
        if now_ms >= spec.stop_ms {
            return;
        }
        let n = self.scenario.nodes;
        let max_down = spec.max_down.unwrap_or(
            self.scenario
                .f()
                .saturating_sub(self.scenario.faulty_nodes().len()),
        );
        let honest: Vec<usize> = (0..n).filter(|h| self.hosts[*h].honest()).collect();
        let down = honest.iter().filter(|h| !self.up(**h)).count();
        let candidates: Vec<usize> = honest.into_iter().filter(|h| self.up(*h)).collect();
        if down < max_down && !candidates.is_empty() {
            let k = self.storm_rng.range(0, candidates.len() as u64 - 1) as usize;
            let host = candidates[k];
            let down_ms = self.storm_rng.range(spec.min_down_ms, spec.max_down_ms);
            let torn = self.storm_rng.chance(spec.torn_write_probability);
            self.crash(host);
            self.schedule(self.now_us + down_ms * 1_000, Kind::Restart { host, torn });
        }
        let next = self.now_us
            + (self
                .storm_rng
                .exponential(spec.mean_interval_ms as f64 * 1_000.0) as u64)
                .max(1);
        if next < spec.stop_ms * 1_000 {
            self.schedule(next, Kind::Storm);
        }
    }

    // ----- trace and report ------------------------------------------------------

    /// Feeds one processed event to the trace hash, and prints it if tracing.
    fn trace(&mut self, host: usize, tag: u8, fields: &[&[u8]], line: impl FnOnce() -> String) {
        self.trace_hash.update(&self.now_us.to_le_bytes());
        self.trace_hash.update(&(host as u64).to_le_bytes());
        self.trace_hash.update(&[tag]);
        for f in fields {
            self.trace_hash.update(f);
        }
        if let Some(out) = self.trace_out.as_mut() {
            let who = match self.hosts.get(host) {
                Some(h) if host >= self.scenario.nodes => format!("n{}'", h.node),
                Some(h) => format!("n{}", h.node),
                None => "client".into(),
            };
            let _ = writeln!(
                out,
                "{:>12.3} {who:>6} {}",
                self.now_us as f64 / 1_000.0,
                line()
            );
        }
    }

    fn report(mut self, wall_ms: f64, lost: u64) -> SeedReport {
        let sim_ms = (self.now_us / 1_000).max(1);
        let mut counters = Counters::default();
        let mut max_view = 0;
        let mut restarts = 0;
        let mut fetches = 0;
        for h in &mut self.hosts {
            if !h.honest() {
                continue;
            }
            fetches += h.pool.fetches;
            h.fold_counters();
            counters.proposals += h.counters.proposals;
            counters.timeouts += h.counters.timeouts;
            counters.qcs += h.counters.qcs;
            counters.tcs += h.counters.tcs;
            restarts += h.restarts;
            if let Some(core) = &h.core {
                max_view = max_view.max(core.view());
            }
        }
        let victims: Vec<u16> = self
            .scenario
            .byzantine
            .iter()
            .filter(|b| b.behaviour == Behaviour::Censor)
            .filter_map(|b| b.victim)
            .collect();
        let mut latencies = Vec::new();
        let mut victim_latencies = Vec::new();
        let mut victim_samples = Vec::new();
        let mut samples = Vec::new();
        let mut committed_items = 0;
        let mut ids: Vec<(&ItemId, &ItemState)> = self.checker.items.iter().collect();
        ids.sort_unstable_by_key(|(id, _)| **id);
        for (id, state) in &ids {
            let Some(at) = state.committed_us else {
                continue;
            };
            committed_items += 1;
            let latency_ms = (at - state.submitted_us) as f64 / 1_000.0;
            latencies.push(latency_ms);
            samples.push((at as f64 / 1_000.0, latency_ms));
            if victims.contains(&id.client) {
                victim_latencies.push(latency_ms);
                let views = state
                    .committed_view
                    .unwrap_or(0)
                    .saturating_sub(state.submitted_view);
                victim_samples.push((latency_ms, views as f64));
            }
        }
        samples.sort_by(|a, b| a.0.total_cmp(&b.0));
        let sim_s = sim_ms as f64 / 1_000.0;
        let height = self.checker.chain.len() as u64;
        let violation = self.checker.violation.clone();
        SeedReport {
            scenario: self.scenario.name.clone(),
            seed: self.seed,
            ok: violation.is_none(),
            violation,
            reproduce: String::new(),
            trace_hash: self.trace_hash.finalize().to_hex().to_string(),
            sim_ms,
            wall_ms,
            events: self.events,
            committed_height: height,
            max_view,
            views_per_s: max_view as f64 / sim_s,
            blocks_per_s: height as f64 / sim_s,
            proposals: counters.proposals,
            timeouts: counters.timeouts,
            qcs_formed: counters.qcs,
            tcs_formed: counters.tcs,
            restarts,
            items_submitted: self.checker.items.len() as u64,
            items_committed: committed_items,
            items_lost_to_crashes: lost,
            duplicate_commits: self.checker.duplicate_commits,
            redundant_copies: self.checker.redundant_copies,
            txs_not_accepted: self.checker.not_accepted,
            batches_committed: self.checker.batches_committed(),
            batch_fetches: fetches,
            items_per_s: committed_items as f64 / sim_s,
            latency_ms: Percentiles::of(&mut latencies),
            victim_latency_ms: (!victims.is_empty())
                .then(|| Percentiles::of(&mut victim_latencies)),
            max_commit_gap_ms: self.checker.max_commit_gap_us / 1_000,
            max_commit_gap_views: self.checker.max_commit_gap_views,
            messages_sent: self.net.sent,
            bytes_sent: self.net.bytes,
            messages_lost: self.net.lost,
            messages_cut: self.net.cut,
            messages_to_down_nodes: self.net.to_down_node,
            misbehaviour_reports: self.net.misbehaviour_reports,
            honest_blamed: self.net.honest_blamed,
            censored_certs: self.net.censored_certs,
            honest_double_votes: self.checker.honest_double_votes,
            faulty_double_votes: self.checker.faulty_double_votes.clone(),
            conflicting_proposals: self.checker.conflicting_proposals.clone(),
            misbehaviour_against: self.net.misbehaviour_against.clone(),
            samples,
            victim_samples,
            victims_uncommitted: ids
                .iter()
                .filter(|(id, s)| victims.contains(&id.client) && s.committed_us.is_none())
                .count() as u64,
        }
    }
}

impl Host {
    fn new(node: NodeIndex, role: Role, clock: Clock, intake: &IntakeConfig) -> Self {
        Host {
            node,
            role,
            core: None,
            epoch: 0,
            links: None,
            persisted: None,
            prev_persisted: None,
            persisted_blocks: Vec::new(),
            stored_commits: HashMap::new(),
            chain: Vec::new(),
            clock,
            down_since_us: None,
            downtime: Vec::new(),
            counters: Counters::default(),
            restarts: 0,
            pool: pool::Pool::new(intake.clone()),
        }
    }
}

fn draw_clock(scenario: &Scenario, rng: &mut Rng) -> Clock {
    let c = &scenario.clock;
    let ppm = if c.max_drift_ppm == 0 {
        0
    } else {
        rng.range(0, 2 * c.max_drift_ppm) as i128 - i128::from(c.max_drift_ppm)
    };
    Clock {
        offset_us: i128::from(rng.range(0, c.max_offset_ms * 1_000)),
        ppm,
    }
}

/// Whether an honest node whose intake accepted `item` still holds it at
/// the end: it is up, and it either never crashed since the submission or
/// had stored the transaction in one of its own batches before (a restart
/// disseminates the batch again). A transaction only in an intake or an
/// open batch dies with its node.
fn kept(hosts: &[Host], hosts_of: &[Vec<usize>], item: &ItemState, end_us: u64) -> bool {
    item.accepted_by.iter().any(|node| {
        let sealed = item.sealed_by.contains(node);
        hosts_of[usize::from(*node)].iter().any(|k| {
            let h = &hosts[*k];
            h.honest()
                && h.down_since_us.is_none_or(|d| d > end_us)
                && (sealed || h.downtime.iter().all(|(_, up)| *up < item.submitted_us))
        })
    })
}

/// One line describing a message, for traces.
pub fn describe(message: &Message) -> String {
    match message {
        Message::Proposal(b) => describe_block("proposal", b),
        Message::BlockResponse(b) => describe_block("block-response", b),
        Message::Vote(v) => format!("vote v{} {} by n{}", v.view, short(&v.block), v.author),
        Message::Timeout(t) => format!(
            "timeout v{} qc=v{} by n{}",
            t.view, t.high_qc.view, t.author
        ),
        Message::Tc(tc) => format!(
            "tc v{} qc=v{} signers={}",
            tc.view,
            tc.high_qc.view,
            tc.signers.len()
        ),
        Message::Qc(qc) => format!(
            "qc v{} {} votes={}",
            qc.view,
            short(&qc.block),
            qc.votes.len()
        ),
        Message::BlockRequest(d) => format!("block-request {}", short(d)),
    }
}

fn describe_block(what: &str, b: &Block) -> String {
    format!(
        "{what} v{} h{} {} by n{} parent=v{} items={}{}",
        b.view(),
        b.height(),
        short(&b.digest()),
        b.author(),
        b.header.parent_view,
        b.payload.items.len(),
        if b.tc.is_some() { " +tc" } else { "" }
    )
}
