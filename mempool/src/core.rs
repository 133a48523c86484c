//! The mempool state machine: `handle(now_ms, event) -> actions`.
//!
//! It glues the pieces together: the [`BatchMaker`] seals this node's
//! batches, peers' batches are checked and acknowledged, acks become
//! certificates, certificates wait in [`PendingCerts`] for consensus, and
//! committed blocks wait in the [`Fetcher`] until all their batches are here.
//!
//! Ordering contract with the host: actions are executed in order, and a
//! [`Action::Persist`] must be durable before any later action runs. That is
//! what makes an ack a promise: it leaves only after the batch is stored.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use ordo_types::{Committee, Digest, Keypair, NodeIndex, Signature};

use crate::batch_maker::BatchMaker;
use crate::fetch::{Fetcher, Request};
use crate::pending::PendingCerts;
use crate::{
    Batch, BatchAck, BatchCert, BatchHeader, Config, Error, InclusionList, Message, Result,
    Transaction,
};

/// Timers the core asks the host for; they come back as
/// [`Event::TimerFired`]. A timer firing late or twice is harmless: the core
/// keeps its own deadlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// The open batch's `batch_delay_ms` is up.
    SealBatch,
    /// A batch fetch may need to move on to the next signer.
    Fetch(Digest),
    /// An own batch not yet certified: send it again to the peers that have
    /// not acknowledged it (its broadcast or their acks may have been lost).
    Retransmit(Digest),
}

/// Inputs of the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Transactions drained from the [`crate::Intake`] (host loop:
    /// while `accepts_transactions()`, drain up to `batch_bytes` and feed).
    Transactions(Vec<Transaction>),
    /// A message from an authenticated committee member.
    Message {
        from: NodeIndex,
        message: Message,
    },
    TimerFired(Timer),
    /// Consensus committed a block carrying these (verified) certificates;
    /// `height` is the block's gap-free height.
    Committed {
        height: u64,
        certs: Vec<BatchCert>,
    },
}

/// Outputs of the core, to be executed in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Store the batch durably before executing any later action.
    Persist(Batch),
    Send {
        to: NodeIndex,
        message: Message,
    },
    /// Send to every other member.
    Broadcast(Message),
    /// Deliver [`Event::TimerFired`] with `timer` at `at_ms` (or later).
    ScheduleTimer {
        timer: Timer,
        at_ms: u64,
    },
    /// Send [`Message::BatchRequest`] for `digest` to `from`.
    FetchBatch {
        digest: Digest,
        from: NodeIndex,
    },
    /// A peer asked for a batch no longer held in memory: answer from storage
    /// with [`Message::BatchResponse`] if it is there.
    ServeFromStore {
        digest: Digest,
        to: NodeIndex,
    },
    /// Every batch of committed block `height` is here, in certificate
    /// order (a batch committed twice is delivered once). Blocks come out
    /// in commit order.
    Deliver {
        height: u64,
        batches: Vec<Batch>,
    },
    /// A peer sent invalid input; it was dropped.
    Misbehaviour {
        peer: NodeIndex,
        reason: Error,
    },
}

#[derive(Debug)]
struct OwnBatch {
    header: BatchHeader,
    signatures: BTreeMap<NodeIndex, Signature>,
    retransmits: u32,
    /// Sealed before a restart: does not count toward
    /// `max_inflight_batches` (see [`Mempool::accepts_transactions`]).
    resumed: bool,
}

/// The seqs acknowledged for one peer author: catches equivocation, bounds
/// what one author can make this node store.
#[derive(Debug, Default)]
struct AuthorWindow {
    seqs: BTreeMap<u64, Digest>,
    floor: u64,
}

/// The mempool of one committee member.
#[derive(Debug)]
pub struct Mempool {
    me: NodeIndex,
    keypair: Keypair,
    committee: Committee,
    config: Config,
    maker: BatchMaker,
    own: BTreeMap<Digest, OwnBatch>,
    /// How many of `own` were sealed before a restart.
    own_resumed: usize,
    /// Own batches sealed and stored while dissemination was paused (see
    /// [`Mempool::disseminates`]), oldest first: sent once it resumes.
    held: VecDeque<Batch>,
    store: HashMap<Digest, Batch>,
    windows: HashMap<NodeIndex, AuthorWindow>,
    pending: PendingCerts,
    fetcher: Fetcher,
}

impl Mempool {
    /// A mempool for member `me`. `next_seq` is the seq of the next own
    /// batch, restored from storage after a restart (0 on a fresh node).
    pub fn new(
        me: NodeIndex,
        keypair: Keypair,
        committee: Committee,
        config: Config,
        next_seq: u64,
    ) -> Result<Self> {
        config.validate()?;
        if committee.key(me) != Some(keypair.public()) {
            return Err(Error::InvalidConfig(format!(
                "the keypair is not member {me}'s committee key"
            )));
        }
        Ok(Mempool {
            me,
            maker: BatchMaker::new(me, next_seq, &config),
            pending: PendingCerts::new(config.max_pending_per_author, config.committed_memory),
            fetcher: Fetcher::new(config.fetch_retry_ms, config.committed_memory),
            keypair,
            committee,
            config,
            own: BTreeMap::new(),
            own_resumed: 0,
            held: VecDeque::new(),
            store: HashMap::new(),
            windows: HashMap::new(),
        })
    }

    /// The one entry point: consumes an event at time `now_ms`.
    pub fn handle(&mut self, now_ms: u64, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Transactions(txs) => self.on_transactions(now_ms, txs, &mut actions),
            Event::Message { from, message } => {
                self.on_message(now_ms, from, message, &mut actions)
            }
            Event::TimerFired(Timer::SealBatch) => {
                if let Some(batch) = self.maker.on_timer(now_ms) {
                    self.disseminate(now_ms, batch, &mut actions);
                }
            }
            Event::TimerFired(Timer::Retransmit(digest)) => {
                self.retransmit(now_ms, digest, &mut actions)
            }
            Event::TimerFired(Timer::Fetch(digest)) => {
                if let Some(request) = self.fetcher.on_timer(now_ms, &digest) {
                    push_request(request, &mut actions);
                }
            }
            Event::Committed { height, certs } => {
                self.on_committed(now_ms, height, certs, &mut actions)
            }
        }
        self.release_held(now_ms, &mut actions);
        actions
    }

    /// After a restart: this node's own batches that were stored but not
    /// delivered (oldest first). Those not known to be committed are
    /// disseminated again (without a new persist: they are stored), so a
    /// batch whose certificate died with the old process is certified
    /// again. A peer holding the old certificate answers with it instead of
    /// an ack, and one that knows the batch committed does not answer; a
    /// batch certified twice all the same is delivered once (the output
    /// skips repeated transactions).
    ///
    /// Feed the committed-but-undelivered blocks ([`Event::Committed`])
    /// first, so their batches are known committed.
    pub fn resume_own(&mut self, now_ms: u64, batches: Vec<Batch>) -> Vec<Action> {
        let mut actions = Vec::new();
        for batch in batches {
            let digest = batch.digest();
            if batch.author != self.me
                || self.own.contains_key(&digest)
                || self.pending.contains(&digest)
                || self.pending.is_committed(&digest)
                || self.fetcher.wanted_cert(&digest).is_some()
            {
                continue;
            }
            if self.track_own(now_ms, digest, batch, true, &mut actions) {
                self.retransmit(now_ms, digest, &mut actions);
            }
        }
        actions
    }

    /// The next block payload; see [`PendingCerts::payload`].
    /// `exclude` may use any hasher (the simulator's is cheaper).
    pub fn payload<S: std::hash::BuildHasher>(
        &self,
        max_certs: usize,
        exclude: &HashSet<Digest, S>,
    ) -> Vec<BatchCert> {
        self.pending.payload(max_certs, exclude)
    }

    /// Certificates held uncommitted for `inclusion_delay_ms`, oldest first,
    /// at most `max_inclusion_len`.
    pub fn due_for_inclusion(&self, now_ms: u64) -> Vec<Digest> {
        self.pending.due_for_inclusion(
            now_ms,
            self.config.inclusion_delay_ms,
            self.config.max_inclusion_len,
        )
    }

    /// This node's signed inclusion list for `view`.
    pub fn inclusion_list(&self, now_ms: u64, view: u64) -> InclusionList {
        InclusionList::sign(&self.keypair, self.me, view, self.due_for_inclusion(now_ms))
    }

    pub fn pending(&self) -> &PendingCerts {
        &self.pending
    }

    /// A batch held in memory (stored and not yet delivered).
    pub fn batch(&self, digest: &Digest) -> Option<&Batch> {
        self.store.get(digest)
    }

    /// False while `max_inflight_batches` own batches await certificates,
    /// or `max_uncommitted_batches` own certified ones await a block: new
    /// own batches are then sealed and stored but held back (a paused
    /// intake's transactions are durable all the same), and sent once this
    /// is true again.
    ///
    /// Batches resumed after a restart do not count as in flight: peers
    /// that already committed one do not answer for it, so it may wait
    /// until this node has caught up; new transactions meanwhile are
    /// sealed (and so made durable) at once.
    pub fn disseminates(&self) -> bool {
        self.own.len() - self.own_resumed < self.config.max_inflight_batches
            && self.pending.author_len(self.me) < self.config.max_uncommitted_batches
    }

    /// False while dissemination is paused ([`Mempool::disseminates`]) and
    /// `max_inflight_batches` sealed batches are held back already: the
    /// host should stop draining the intake (which then answers busy).
    pub fn accepts_transactions(&self) -> bool {
        self.disseminates() || self.held.len() < self.config.max_inflight_batches
    }

    /// Own batches sealed and stored but held back while dissemination is
    /// paused.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Own batches disseminated and still collecting acks.
    pub fn own_in_flight(&self) -> usize {
        self.own.len()
    }

    /// The oldest committed block still waiting for batches.
    pub fn delivery_wait(&self) -> Option<crate::DeliveryWait> {
        self.fetcher.waiting(|d| self.store.contains_key(d))
    }

    pub fn next_seq(&self) -> u64 {
        self.maker.next_seq()
    }

    /// Batches of committed blocks still being fetched.
    pub fn missing_batches(&self) -> usize {
        self.fetcher.missing()
    }

    pub fn me(&self) -> NodeIndex {
        self.me
    }

    pub fn committee(&self) -> &Committee {
        &self.committee
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn on_transactions(&mut self, now_ms: u64, txs: Vec<Transaction>, actions: &mut Vec<Action>) {
        let sealed = self.maker.add(now_ms, txs);
        for batch in sealed.batches {
            self.disseminate(now_ms, batch, actions);
        }
        if let Some(at_ms) = sealed.timer_at_ms {
            actions.push(Action::ScheduleTimer {
                timer: Timer::SealBatch,
                at_ms,
            });
        }
    }

    /// Holds an own batch until it is certified and counts this node's own
    /// ack; true while it still waits for acks (false: certified at once,
    /// as in a committee of one).
    fn track_own(
        &mut self,
        now_ms: u64,
        digest: Digest,
        batch: Batch,
        resumed: bool,
        actions: &mut Vec<Action>,
    ) -> bool {
        let header = batch.header_with(digest);
        self.store.insert(digest, batch);
        let replaced = self.own.insert(
            digest,
            OwnBatch {
                header,
                signatures: BTreeMap::new(),
                retransmits: 0,
                resumed,
            },
        );
        self.own_resumed += usize::from(resumed);
        self.own_resumed -= usize::from(replaced.is_some_and(|o| o.resumed));
        let ack = BatchAck::sign(&header, self.me, &self.keypair);
        self.add_ack(now_ms, ack, actions);
        self.own.contains_key(&digest)
    }

    /// Stops tracking an own batch (certified or committed).
    fn untrack_own(&mut self, digest: &Digest) -> Option<OwnBatch> {
        let own = self.own.remove(digest)?;
        self.own_resumed -= usize::from(own.resumed);
        Some(own)
    }

    /// Own batch: store, send to all, and count our own ack; while
    /// dissemination is paused (or earlier batches are held), store it and
    /// hold it back.
    fn disseminate(&mut self, now_ms: u64, batch: Batch, actions: &mut Vec<Action>) {
        actions.push(Action::Persist(batch.clone()));
        if !self.held.is_empty() || !self.disseminates() {
            self.held.push_back(batch);
            return;
        }
        self.send_own(now_ms, batch, actions);
    }

    /// Sends held batches, oldest first, while dissemination allows.
    fn release_held(&mut self, now_ms: u64, actions: &mut Vec<Action>) {
        while self.disseminates() {
            let Some(batch) = self.held.pop_front() else {
                return;
            };
            self.send_own(now_ms, batch, actions);
        }
    }

    /// Sends a stored own batch to all and counts our own ack.
    fn send_own(&mut self, now_ms: u64, batch: Batch, actions: &mut Vec<Action>) {
        let digest = batch.digest();
        actions.push(Action::Broadcast(Message::Batch(batch.clone())));
        if self.track_own(now_ms, digest, batch, false, actions) {
            actions.push(Action::ScheduleTimer {
                timer: Timer::Retransmit(digest),
                at_ms: now_ms + self.config.retransmit_ms,
            });
        }
    }

    /// Re-sends an uncertified own batch to the peers whose acks are missing,
    /// with doubling intervals (capped at 16x `retransmit_ms`). Peers that
    /// stored it already just acknowledge it again.
    fn retransmit(&mut self, now_ms: u64, digest: Digest, actions: &mut Vec<Action>) {
        let Some(own) = self.own.get_mut(&digest) else {
            return;
        };
        let Some(batch) = self.store.get(&digest) else {
            return;
        };
        for peer in self.committee.indices() {
            if peer != self.me && !own.signatures.contains_key(&peer) {
                actions.push(Action::Send {
                    to: peer,
                    message: Message::Batch(batch.clone()),
                });
            }
        }
        own.retransmits = own.retransmits.saturating_add(1);
        let backoff = 1u64 << own.retransmits.min(4);
        actions.push(Action::ScheduleTimer {
            timer: Timer::Retransmit(digest),
            at_ms: now_ms + self.config.retransmit_ms.saturating_mul(backoff),
        });
    }

    fn on_message(
        &mut self,
        now_ms: u64,
        from: NodeIndex,
        message: Message,
        actions: &mut Vec<Action>,
    ) {
        if from == self.me {
            return;
        }
        if self.committee.member(from).is_none() {
            return misbehaved(from, Error::NotAMember(from), actions);
        }
        let outcome = match message {
            Message::Batch(batch) => self.on_batch(from, batch, actions),
            Message::Ack(ack) => self.on_ack(now_ms, from, ack, actions),
            Message::Cert(cert) => self.on_cert(now_ms, cert),
            Message::BatchRequest { digest } => {
                actions.push(match self.store.get(&digest) {
                    Some(batch) => Action::Send {
                        to: from,
                        message: Message::BatchResponse(batch.clone()),
                    },
                    None => Action::ServeFromStore { digest, to: from },
                });
                Ok(())
            }
            Message::BatchResponse(batch) => self.on_response(from, batch, actions),
        };
        if let Err(reason) = outcome {
            misbehaved(from, reason, actions);
        }
    }

    /// A peer's batch: check it, store it, then (and only then) ack it.
    fn on_batch(&mut self, from: NodeIndex, batch: Batch, actions: &mut Vec<Action>) -> Result<()> {
        if batch.author != from {
            return Err(Error::WrongSender {
                claimed: batch.author,
                sender: from,
            });
        }
        batch.check_limits(&self.config.batch_limits())?;
        let digest = batch.digest();
        if let Some(cert) = self.pending.get(from, &digest) {
            // Certified already (the author restarted and lost the
            // certificate): hand it back rather than help certify it twice.
            actions.push(Action::Send {
                to: from,
                message: Message::Cert(cert.clone()),
            });
            return Ok(());
        }
        if self.pending.is_committed(&digest) && self.fetcher.wanted_cert(&digest).is_none() {
            return Ok(()); // committed and here: a second certificate is no use
        }
        let header = batch.header_with(digest);
        let window = self.windows.entry(from).or_default();
        if batch.seq < window.floor {
            return Ok(()); // too old to track; not worth storing
        }
        if let Some(known) = window.seqs.get(&batch.seq) {
            if *known != digest {
                return Err(Error::Equivocation {
                    author: from,
                    seq: batch.seq,
                });
            }
            // A retransmission: it is stored already, ack again.
            actions.push(self.ack_to(&header));
            return Ok(());
        }
        window.seqs.insert(batch.seq, digest);
        if window.seqs.len() > self.config.max_batches_per_author {
            if let Some((old_seq, old_digest)) = window.seqs.pop_first() {
                window.floor = old_seq + 1;
                self.store.remove(&old_digest);
            }
        }
        actions.push(Action::Persist(batch.clone()));
        actions.push(self.ack_to(&header));
        self.store.insert(digest, batch);
        if self.fetcher.wanted_cert(&digest).is_some() {
            self.fetcher.resolve(&digest);
            self.deliver_ready(actions);
        }
        Ok(())
    }

    fn ack_to(&self, header: &BatchHeader) -> Action {
        Action::Send {
            to: header.author,
            message: Message::Ack(BatchAck::sign(header, self.me, &self.keypair)),
        }
    }

    fn on_ack(
        &mut self,
        now_ms: u64,
        from: NodeIndex,
        ack: BatchAck,
        actions: &mut Vec<Action>,
    ) -> Result<()> {
        if ack.signer != from {
            return Err(Error::WrongSender {
                claimed: ack.signer,
                sender: from,
            });
        }
        let Some(own) = self.own.get(&ack.batch) else {
            return Ok(()); // late (already certified) or unknown: harmless
        };
        if own.signatures.contains_key(&ack.signer) {
            return Ok(());
        }
        ack.verify(&own.header, &self.committee)?;
        self.add_ack(now_ms, ack, actions);
        Ok(())
    }

    /// Counts a verified ack; forms and broadcasts the certificate at quorum.
    fn add_ack(&mut self, now_ms: u64, ack: BatchAck, actions: &mut Vec<Action>) {
        let Some(own) = self.own.get_mut(&ack.batch) else {
            return;
        };
        own.signatures.insert(ack.signer, ack.signature);
        if own.signatures.len() < self.committee.quorum() {
            return;
        }
        let Some(own) = self.untrack_own(&ack.batch) else {
            return;
        };
        let cert = BatchCert::new(&own.header, own.signatures.into_iter().collect());
        actions.push(Action::Broadcast(Message::Cert(cert.clone())));
        self.pending.insert(now_ms, cert);
    }

    fn on_cert(&mut self, now_ms: u64, cert: BatchCert) -> Result<()> {
        if self.pending.contains(&cert.batch) || self.pending.is_committed(&cert.batch) {
            return Ok(());
        }
        cert.verify(&self.committee)?;
        // An own batch certified before a restart: stop collecting acks.
        self.untrack_own(&cert.batch);
        self.pending.insert(now_ms, cert);
        Ok(())
    }

    fn on_response(
        &mut self,
        from: NodeIndex,
        batch: Batch,
        actions: &mut Vec<Action>,
    ) -> Result<()> {
        let digest = batch.digest();
        let Some(cert) = self.fetcher.wanted_cert(&digest) else {
            if self.store.contains_key(&digest) || self.fetcher.known(&digest) {
                // A late (or duplicated) answer to a resolved request, even
                // once the batch has left the store: not the peer's fault.
                return Ok(());
            }
            return match self.fetcher.requested_from(from) {
                Some(expected) => Err(Error::DigestMismatch {
                    expected,
                    got: digest,
                }),
                None => Ok(()),
            };
        };
        cert.matches(&batch)?;
        batch.check_limits(&self.config.batch_limits())?;
        self.fetcher.resolve(&digest);
        actions.push(Action::Persist(batch.clone()));
        self.store.insert(digest, batch);
        self.deliver_ready(actions);
        Ok(())
    }

    fn on_committed(
        &mut self,
        now_ms: u64,
        height: u64,
        certs: Vec<BatchCert>,
        actions: &mut Vec<Action>,
    ) {
        self.pending.on_commit(&certs);
        for cert in &certs {
            self.untrack_own(&cert.batch);
        }
        let kept = self.fetcher.commit(height, certs).to_vec();
        for cert in &kept {
            if !self.store.contains_key(&cert.batch) {
                if let Some(request) = self.fetcher.want(now_ms, cert, self.me) {
                    push_request(request, actions);
                }
            }
        }
        self.deliver_ready(actions);
    }

    fn deliver_ready(&mut self, actions: &mut Vec<Action>) {
        loop {
            let store = &self.store;
            let Some(block) = self.fetcher.next_ready(|d| store.contains_key(d)) else {
                return;
            };
            let batches = block
                .certs
                .iter()
                .filter_map(|c| self.store.remove(&c.batch))
                .collect();
            actions.push(Action::Deliver {
                height: block.height,
                batches,
            });
        }
    }
}

fn push_request(request: Request, actions: &mut Vec<Action>) {
    actions.push(Action::FetchBatch {
        digest: request.digest,
        from: request.from,
    });
    actions.push(Action::ScheduleTimer {
        timer: Timer::Fetch(request.digest),
        at_ms: request.retry_at_ms,
    });
}

fn misbehaved(peer: NodeIndex, reason: Error, actions: &mut Vec<Action>) {
    actions.push(Action::Misbehaviour { peer, reason });
}
