//! The mempool side of a host, driven as the node's mempool actor drives it
//! (`node/src/mempool_actor.rs`): client transactions go into the host's
//! [`Intake`]; while the core [`Mempool::accepts_transactions`] the intake
//! is drained into it; its batches, acks, certificates and batch fetches
//! travel over the simulated network like consensus messages (a batch's
//! encoded size counts against the sender's uplink); its timers are events
//! of the queue on the host's skewed clock; certificates it holds are handed
//! to the consensus core as payload (encoded [`BatchCert`]s); every block
//! the host commits goes back to it, and it fetches the batches it misses
//! and delivers each height once, in order.
//!
//! Storage is what the mempool's [`MpAction::Persist`] wrote: a crash loses
//! the core and the intake; a restart builds a new core from the next own
//! seq, hands it the committed heights it had not delivered, then its own
//! stored, undelivered batches ([`Mempool::resume_own`]), as
//! `node/src/runtime.rs` does.

use std::collections::BTreeMap;
use std::rc::Rc;

use ordo_consensus::Event;
use ordo_mempool::{
    Action as MpAction, Batch, BatchCert, Event as MpEvent, Intake, IntakeConfig, Mempool,
    Message as MpMessage, Timer as MpTimer,
};
use ordo_types::{codec, Digest, DigestMap, DigestSet, NodeIndex};

use super::{Kind, Sim};
use crate::checker::short;
use crate::load::item_id;
use crate::payload::{decode_certs, encode_cert};
use crate::scenario::Behaviour;

/// Most certificates handed to consensus at once (as the node).
const MAX_FORWARD: usize = 4_096;
/// Delivered batches stay in storage this many heights, for peers that
/// fetch them late (`Action::ServeFromStore`); then they are pruned.
const RETENTION_HEIGHTS: u64 = 1_024;

/// A stored batch and the height that delivered it here, if any.
struct Stored {
    batch: Batch,
    delivered_at: Option<u64>,
}

/// A host's mempool: the core and intake (lost in a crash) and what its
/// storage holds (kept).
pub(super) struct Pool {
    core: Option<Mempool>,
    intake: Intake,
    intake_config: IntakeConfig,
    /// Timers of an older core are ignored.
    pub(super) epoch: u32,
    /// Certificates handed to the consensus core, by batch digest.
    forwarded: DigestSet,
    /// Storage: every batch persisted here, by digest.
    stored: DigestMap<Stored>,
    /// Storage: this node's own batches not yet delivered, by seq.
    own_undelivered: BTreeMap<u64, Digest>,
    /// Storage: the seq of the next own batch.
    next_own_seq: u64,
    /// Storage: the last height delivered.
    delivered_height: u64,
    pruned_at: u64,
    /// Counters (honest hosts' are reported).
    pub(super) fetches: u64,
}

impl Pool {
    pub(super) fn new(intake_config: IntakeConfig) -> Self {
        Pool {
            core: None,
            intake: Intake::new(intake_config.clone()),
            intake_config,
            epoch: 0,
            forwarded: DigestSet::default(),
            stored: DigestMap::default(),
            own_undelivered: BTreeMap::new(),
            next_own_seq: 0,
            delivered_height: 0,
            pruned_at: 0,
            fetches: 0,
        }
    }

    /// The crash: the core, its timers and the intake's queue are gone.
    pub(super) fn crash(&mut self) {
        self.core = None;
        self.epoch += 1;
        self.intake = Intake::new(self.intake_config.clone());
        self.forwarded.clear();
    }

    /// Drops delivered batches older than the retention.
    fn prune(&mut self) {
        let keep_from = self.delivered_height.saturating_sub(RETENTION_HEIGHTS);
        if keep_from < self.pruned_at + RETENTION_HEIGHTS / 4 {
            return;
        }
        self.stored
            .retain(|_, s| s.delivered_at.is_none_or(|h| h >= keep_from));
        self.pruned_at = keep_from;
    }
}

impl Sim<'_> {
    /// Builds the host's mempool core from its storage and resumes what it
    /// had not finished: committed heights not delivered, then own batches
    /// not delivered (certified again if their certificate died with the
    /// old process).
    pub(super) fn start_pool(&mut self, host: usize) {
        let node = self.hosts[host].node;
        let core = Mempool::new(
            node,
            self.keys[usize::from(node)].clone(),
            (*self.committee).clone(),
            self.scenario.mempool.clone(),
            self.hosts[host].pool.next_own_seq,
        );
        let core = match core {
            Ok(core) => core,
            // The scenario's mempool config was validated and the key is
            // the member's: unreachable, but a host without a mempool only
            // stops proposing its own transactions.
            Err(_) => return,
        };
        let h = &mut self.hosts[host];
        h.pool.core = Some(core);
        h.pool.epoch += 1;
        let delivered = h.pool.delivered_height;
        let undelivered: Vec<(u64, Vec<BatchCert>)> = h
            .chain
            .iter()
            .filter(|c| c.block.height() > delivered)
            .map(|c| {
                let certs = decode_certs(&c.block.payload).unwrap_or_default();
                (c.block.height(), certs)
            })
            .collect();
        for (height, certs) in undelivered {
            self.pool_run(host, MpEvent::Committed { height, certs });
        }
        let h = &mut self.hosts[host];
        let own: Vec<Batch> = h
            .pool
            .own_undelivered
            .values()
            .filter_map(|d| h.pool.stored.get(d).map(|s| s.batch.clone()))
            .collect();
        if !own.is_empty() {
            let now_ms = h.clock.local_ms(self.now_us);
            let actions = match h.pool.core.as_mut() {
                Some(core) => core.resume_own(now_ms, own),
                None => Vec::new(),
            };
            self.pool_execute(host, actions);
        }
        self.pump(host);
    }

    /// After a mempool input: drain the intake while the core takes
    /// transactions, and hand new certificates to consensus.
    pub(super) fn pump(&mut self, host: usize) {
        self.drain_intake(host);
        self.forward_certs(host);
    }

    /// One mempool event, then [`Sim::pump`].
    pub(super) fn pool_event(&mut self, host: usize, event: MpEvent) {
        self.pool_run(host, event);
        self.pump(host);
    }

    /// Feeds one event to the host's mempool core and executes its actions.
    fn pool_run(&mut self, host: usize, event: MpEvent) {
        let now_us = self.now_us;
        let h = &mut self.hosts[host];
        let now_ms = h.clock.local_ms(now_us);
        let Some(core) = h.pool.core.as_mut() else {
            return;
        };
        let actions = core.handle(now_ms, event);
        self.pool_execute(host, actions);
    }

    fn drain_intake(&mut self, host: usize) {
        let (batch_bytes, max_txs) = (
            self.scenario.mempool.batch_bytes,
            self.scenario.mempool.max_batch_txs,
        );
        loop {
            let pool = &self.hosts[host].pool;
            let accepts = pool
                .core
                .as_ref()
                .is_some_and(Mempool::accepts_transactions);
            if !accepts || pool.intake.is_empty() {
                return;
            }
            let txs = pool.intake.drain(batch_bytes, max_txs);
            if txs.is_empty() {
                return;
            }
            self.pool_run(host, MpEvent::Transactions(txs));
        }
    }

    /// Hands the certificates consensus has not seen to its core.
    fn forward_certs(&mut self, host: usize) {
        let pool = &mut self.hosts[host].pool;
        let Some(core) = pool.core.as_ref() else {
            return;
        };
        // Forwarded certificates are pending until committed (then both
        // forget them), so equal sizes mean nothing new.
        if core.pending().len() <= pool.forwarded.len() {
            return;
        }
        let certs = core.payload(MAX_FORWARD, &pool.forwarded);
        if certs.is_empty() {
            return;
        }
        pool.forwarded.extend(certs.iter().map(|c| c.batch));
        let items: Vec<Vec<u8>> = certs.iter().filter_map(encode_cert).collect();
        // The mempool accepted these only after verifying them.
        for item in &items {
            self.verified.insert(item);
        }
        self.handle(host, Event::PayloadAvailable(items));
    }

    /// The host committed block `height` carrying these certificates.
    pub(super) fn pool_committed(&mut self, host: usize, height: u64, certs: Vec<BatchCert>) {
        let pool = &mut self.hosts[host].pool;
        if pool.core.is_none() {
            return;
        }
        for cert in &certs {
            pool.forwarded.remove(&cert.batch);
        }
        self.pool_event(host, MpEvent::Committed { height, certs });
        let pool = &mut self.hosts[host].pool;
        if let Some(core) = pool.core.as_ref() {
            let pending = core.pending();
            if pool.forwarded.len() > pending.len() {
                pool.forwarded.retain(|d| pending.contains(d));
            }
        }
    }

    /// The consensus core was rebuilt (restart, catch-up): it holds no
    /// payload, so every pending certificate goes to it again.
    pub(super) fn resend_payload(&mut self, host: usize) {
        self.hosts[host].pool.forwarded.clear();
        self.forward_certs(host);
    }

    /// A client transaction reaches the host's intake (the API). Returns
    /// whether it was accepted.
    pub(super) fn submit(&mut self, host: usize, tx: ordo_mempool::Transaction) -> bool {
        let pool = &mut self.hosts[host].pool;
        if pool.core.is_none() {
            return false;
        }
        let accepted = matches!(
            pool.intake.submit(tx),
            Ok(ordo_mempool::Admission::Accepted(_))
        );
        self.pump(host);
        accepted
    }

    /// Runs the mempool's actions in order (a persist is durable at once).
    fn pool_execute(&mut self, host: usize, actions: Vec<MpAction>) {
        for action in actions {
            match action {
                MpAction::Persist(batch) => self.persist_batch(host, batch),
                MpAction::Send { to, message } => self.pool_transmit(host, Some(to), message),
                MpAction::Broadcast(message) => self.pool_transmit(host, None, message),
                MpAction::ScheduleTimer { timer, at_ms } => {
                    let h = &self.hosts[host];
                    let at = h.clock.global_us_for(at_ms).max(self.now_us);
                    let epoch = h.pool.epoch;
                    self.schedule(at, Kind::PoolTimer { host, epoch, timer });
                }
                MpAction::FetchBatch { digest, from } => {
                    self.hosts[host].pool.fetches += 1;
                    let stored = self.hosts[host]
                        .pool
                        .stored
                        .get(&digest)
                        .map(|s| s.batch.clone());
                    match stored {
                        // In storage already (stored before a restart).
                        Some(batch) => self.pool_run(
                            host,
                            MpEvent::Message {
                                from,
                                message: MpMessage::BatchResponse(batch),
                            },
                        ),
                        None => {
                            self.pool_transmit(host, Some(from), MpMessage::BatchRequest { digest })
                        }
                    }
                }
                MpAction::ServeFromStore { digest, to } => {
                    let stored = self.hosts[host]
                        .pool
                        .stored
                        .get(&digest)
                        .map(|s| s.batch.clone());
                    if let Some(batch) = stored {
                        self.pool_transmit(host, Some(to), MpMessage::BatchResponse(batch));
                    }
                }
                MpAction::Deliver { height, batches } => self.deliver(host, height, batches),
                MpAction::Misbehaviour { peer, .. } => {
                    self.net.misbehaviour_reports += 1;
                    if self.hosts[host].honest() && self.checker.is_honest(peer) {
                        self.net.honest_blamed += 1;
                    }
                }
            }
        }
    }

    fn persist_batch(&mut self, host: usize, batch: Batch) {
        let digest = batch.digest();
        let h = &mut self.hosts[host];
        if batch.author == h.node {
            h.pool.own_undelivered.insert(batch.seq, digest);
            h.pool.next_own_seq = h.pool.next_own_seq.max(batch.seq + 1);
            self.checker.on_batch(&batch, digest);
        }
        h.pool.stored.entry(digest).or_insert(Stored {
            batch,
            delivered_at: None,
        });
    }

    /// The mempool delivered committed `height`: the node's output takes
    /// it, storage notes it delivered.
    fn deliver(&mut self, host: usize, height: u64, batches: Vec<Batch>) {
        let digests: Vec<Digest> = batches.iter().map(Batch::digest).collect();
        let h = &mut self.hosts[host];
        let me = h.node;
        h.pool.delivered_height = height;
        for (batch, digest) in batches.iter().zip(&digests) {
            if batch.author == me {
                h.pool.own_undelivered.remove(&batch.seq);
            }
            if let Some(s) = h.pool.stored.get_mut(digest) {
                s.delivered_at = Some(height);
            }
        }
        h.pool.prune();
        if h.honest() {
            self.checker.on_deliver(me, height, &digests, self.now_us);
        }
    }

    /// Sends a mempool message from `host` to member `to`, or to every
    /// other member, through the simulated network.
    fn pool_transmit(&mut self, host: usize, to: Option<NodeIndex>, message: MpMessage) {
        if matches!(&self.hosts[host].role, super::Role::Byzantine(b) if b.behaviour() == Behaviour::Silent)
        {
            return;
        }
        let Ok(bytes) = codec::encode(&message) else {
            self.net.lost += 1;
            return;
        };
        let digest = *blake3::hash(&bytes).as_bytes();
        let message = Rc::new(message);
        self.fan_out(host, to, bytes.len(), |receiver, from| Kind::PoolDeliver {
            host: receiver,
            from,
            message: message.clone(),
            digest,
        });
    }

    /// A mempool message arrives at `host`.
    pub(super) fn on_pool_deliver(
        &mut self,
        host: usize,
        from: NodeIndex,
        message: Rc<MpMessage>,
        digest: [u8; 32],
    ) {
        if self.hosts[host].pool.core.is_none() {
            self.net.to_down_node += 1;
            return;
        }
        self.trace(host, 9, &[&from.to_le_bytes(), &digest], || {
            format!("<- n{from} {}", describe_pool(&message))
        });
        let message = Rc::try_unwrap(message).unwrap_or_else(|rc| (*rc).clone());
        self.pool_event(host, MpEvent::Message { from, message });
    }

    pub(super) fn on_pool_timer(&mut self, host: usize, epoch: u32, timer: MpTimer) {
        let pool = &self.hosts[host].pool;
        if pool.core.is_none() || pool.epoch != epoch {
            return;
        }
        let (tag, digest) = match timer {
            MpTimer::SealBatch => (0u8, [0u8; 32]),
            MpTimer::Fetch(d) => (1, *d.as_bytes()),
            MpTimer::Retransmit(d) => (2, *d.as_bytes()),
        };
        self.trace(host, 10, &[&[tag], &digest], || {
            format!("mempool timer {}", describe_timer(&timer))
        });
        self.pool_event(host, MpEvent::TimerFired(timer));
    }
}

fn describe_timer(timer: &MpTimer) -> String {
    match timer {
        MpTimer::SealBatch => "seal-batch".into(),
        MpTimer::Fetch(d) => format!("fetch {}", short(d)),
        MpTimer::Retransmit(d) => format!("retransmit {}", short(d)),
    }
}

/// One line describing a mempool message, for traces.
pub fn describe_pool(message: &MpMessage) -> String {
    let batch = |what: &str, b: &Batch| {
        let first = b
            .txs
            .first()
            .and_then(|tx| item_id(&tx.payload))
            .map_or(String::new(), |id| {
                format!(" first=c{}#{}", id.client, id.seq)
            });
        format!(
            "{what} n{}#{} {} txs={}{first}",
            b.author,
            b.seq,
            short(&b.digest()),
            b.txs.len()
        )
    };
    match message {
        MpMessage::Batch(b) => batch("batch", b),
        MpMessage::BatchResponse(b) => batch("batch-response", b),
        MpMessage::Ack(a) => format!("ack {} by n{}", short(&a.batch), a.signer),
        MpMessage::Cert(c) => format!(
            "cert n{}#{} {} signers={}",
            c.author,
            c.seq,
            short(&c.batch),
            c.signatures.len()
        ),
        MpMessage::BatchRequest { digest } => format!("batch-request {}", short(digest)),
    }
}
