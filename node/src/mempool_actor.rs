//! The mempool driver: drains the intake into the pure mempool core, feeds it
//! peers' batch messages and commits, forwards new certificates to consensus,
//! and hands the core's actions to an executor task.
//!
//! The executor runs the actions in order (batches durable before any later
//! action, so before their acks) while the core goes on with new events: a
//! write and its `fdatasync` no longer stop the core. Whenever persists are
//! queued it writes all of them first, in one group (moving a write earlier
//! never breaks the order rule), so the slower the disk, the larger the
//! groups, and a new batch is never stored behind a backlog of deliveries.
//! The actions queued ahead of the group (deliveries, mostly) run while it
//! is stored, and once it is, acknowledgements and own certificates go
//! before older deliveries: the certification path waits for neither. It
//! also turns delivered blocks into the ordered output and prunes. An own batch is sent to the peers before it is stored, so
//! that they store it while this node does; its certificate is neither
//! broadcast nor handed to consensus until the batch is durable here, since
//! this node's own acknowledgement is in it.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use ordo_mempool::{Action, Batch, BatchCert, Event, Intake, Mempool, Message, Timer};
use ordo_network::{Class, Network};
use ordo_types::codec::{decode, encode};
use ordo_types::{Digest, NodeIndex};
use tokio::sync::{mpsc, Notify};

use crate::consensus_actor::ConsensusInput;
use crate::output::Output;
use crate::payload::{encode_cert, VerifiedCerts};
use crate::shared::Shared;
use crate::storage::Storage;
use crate::timers::{Clock, Timers};

/// Most certificates forwarded to consensus at once.
const MAX_FORWARD: usize = 4_096;

pub enum MempoolInput {
    Message {
        from: NodeIndex,
        message: Message,
    },
    /// A message off the wire; for a batch, also its encoding as received.
    Received {
        from: NodeIndex,
        message: Message,
        raw_batch: Option<Bytes>,
    },
    /// Consensus committed (and stored) block `height` with these certificates.
    Committed {
        height: u64,
        certs: Vec<BatchCert>,
    },
    /// Consensus restarted its core: forward every pending certificate again.
    ResendPayload,
    /// After a restart: this node's stored, undelivered own batches, to be
    /// disseminated again (sent after the committed-undelivered blocks).
    ResumeOwn(Vec<Batch>),
    /// Block `height` was synced from a peer that had pruned its batches:
    /// it is delivered without output.
    Pruned {
        height: u64,
    },
}

/// How often the stall watch looks.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How long dissemination may be paused (own batches not certified or not
/// ordered) before the API refuses new transactions: until then they are
/// sealed, stored and held back (up to `max_inflight_batches` batches),
/// then they would wait in the intake, undurably.
const INTAKE_STALL: std::time::Duration = std::time::Duration::from_secs(1);

/// How long delivery or the intake may be stuck before it is logged (and
/// then again at this interval while it lasts).
const STALL_WARN: std::time::Duration = std::time::Duration::from_secs(5);

/// Watches for a stuck delivery or intake: logs them, and tells the API to
/// refuse transactions while the intake cannot be drained.
#[derive(Default)]
struct Stalls {
    /// The head block waiting for batches, since when.
    waiting: Option<(u64, std::time::Instant)>,
    intake_paused_since: Option<std::time::Instant>,
    last_warning: Option<std::time::Instant>,
}

impl Stalls {
    fn check(&mut self, core: &Mempool, intake: &Intake, shared: &Shared) {
        let now = std::time::Instant::now();
        let may_warn = self
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= STALL_WARN);
        let waiting = core.delivery_wait();
        self.waiting = match (waiting, self.waiting) {
            (Some(wait), Some((before, since))) if wait.height == before => {
                if may_warn && now.duration_since(since) >= STALL_WARN {
                    let missing: Vec<String> = wait
                        .missing
                        .iter()
                        .map(|(digest, asked)| match asked {
                            Some(peer) => format!("{digest} (asking node {peer})"),
                            None => format!("{digest} (asking nobody)"),
                        })
                        .collect();
                    tracing::warn!(
                        height = before,
                        "delivery waits for batches: {}",
                        missing.join(", ")
                    );
                    self.last_warning = Some(now);
                }
                Some((before, since))
            }
            (Some(wait), _) => Some((wait.height, now)),
            (None, _) => None,
        };
        if core.disseminates() {
            self.intake_paused_since = None;
        } else {
            let since = *self.intake_paused_since.get_or_insert(now);
            if may_warn && now.duration_since(since) >= STALL_WARN {
                tracing::warn!(
                    in_flight = core.own_in_flight(),
                    uncommitted = core.pending().author_len(core.me()),
                    held = core.held(),
                    queued = intake.len(),
                    "intake paused: own batches await certificates or a block"
                );
                self.last_warning = Some(now);
            }
        }
        shared.set_intake_stalled(
            self.intake_paused_since
                .is_some_and(|since| now.duration_since(since) >= INTAKE_STALL),
        );
    }
}

/// Own batches whose sealing time is remembered for the latency histogram.
const MAX_SEALED_TRACKED: usize = 4_096;

/// Heights pruned at a time once the retention is exceeded.
const PRUNE_CHUNK: u64 = 256;

pub struct MempoolActor {
    pub core: Mempool,
    pub intake: Arc<Intake>,
    pub intake_ready: Arc<Notify>,
    pub consensus: mpsc::Sender<ConsensusInput>,
    pub shared: Arc<Shared>,
    pub clock: Clock,
    pub inbox: mpsc::Receiver<MempoolInput>,
    timers: Timers<Timer>,
    forwarded: HashSet<Digest>,
    verified: Arc<VerifiedCerts>,
    /// Own batches handed to the executor and not yet durable.
    undurable: Arc<parking_lot::Mutex<HashSet<Digest>>>,
    work: mpsc::Sender<Work>,
    /// Received batches' encodings by digest, until persisted.
    raw_batches: RawBatches,
    /// Batches the last handled event persisted (cleared per event).
    persisting: ordo_types::DigestSet,
    executor: Option<Executor>,
    work_rx: Option<mpsc::Receiver<Work>>,
}

/// What the actor hands the executor, in order.
type RawBatches = Arc<parking_lot::Mutex<ordo_types::DigestMap<Bytes>>>;

enum Work {
    /// The core's actions, with the time they were produced.
    Actions(Vec<Action>, u64),
    /// Block `height` was synced without batches: deliver it without output.
    SkipPruned(u64),
}

/// Received batch encodings kept until the executor stores them (a bound
/// that only a stalled executor reaches; then they are encoded again).
const MAX_RAW_BATCHES: usize = 256;

/// Work items queued between the actor and the executor.
const WORK_QUEUE: usize = 32;

/// Runs the core's actions in order; see the module doc.
struct Executor {
    storage: Arc<Storage>,
    network: Arc<Network>,
    output: Output,
    shared: Arc<Shared>,
    clock: Clock,
    retention_heights: u64,
    pruned_below: u64,
    /// Sealing time of own batches not yet delivered, by seq.
    sealed_at: std::collections::HashMap<u64, u64>,
    /// Events for the core (a batch found in storage), back to the actor.
    feedback: mpsc::Sender<MempoolInput>,
    undurable: Arc<parking_lot::Mutex<HashSet<Digest>>>,
    raw_batches: RawBatches,
    /// Wakes the actor when own batches became durable.
    wake: Arc<Notify>,
}

impl MempoolActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        core: Mempool,
        intake: Arc<Intake>,
        intake_ready: Arc<Notify>,
        storage: Arc<Storage>,
        network: Arc<Network>,
        consensus: mpsc::Sender<ConsensusInput>,
        output: Output,
        shared: Arc<Shared>,
        clock: Clock,
        inbox: mpsc::Receiver<MempoolInput>,
        feedback: mpsc::Sender<MempoolInput>,
        retention_heights: u64,
        verified: Arc<VerifiedCerts>,
    ) -> Self {
        let pruned_below = storage.pruned_below().unwrap_or(0);
        let undurable = Arc::new(parking_lot::Mutex::new(HashSet::new()));
        let (work, work_rx) = mpsc::channel(WORK_QUEUE);
        let raw_batches = RawBatches::default();
        let executor = Executor {
            storage,
            network,
            output,
            shared: shared.clone(),
            clock,
            retention_heights,
            pruned_below,
            sealed_at: std::collections::HashMap::new(),
            feedback,
            undurable: undurable.clone(),
            raw_batches: raw_batches.clone(),
            wake: intake_ready.clone(),
        };
        MempoolActor {
            verified,
            core,
            intake,
            intake_ready,
            consensus,
            shared,
            clock,
            inbox,
            timers: Timers::new(),
            forwarded: HashSet::new(),
            undurable,
            work,
            raw_batches,
            persisting: Default::default(),
            executor: Some(executor),
            work_rx: Some(work_rx),
        }
    }

    pub async fn run(mut self) {
        if let (Some(executor), Some(work)) = (self.executor.take(), self.work_rx.take()) {
            tokio::spawn(executor.run(work));
        }
        let mut watch = tokio::time::interval(WATCH_EVERY);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stalls = Stalls::default();
        loop {
            let deadline = self.timers.next_deadline();
            let sleep = tokio::time::sleep_until(
                self.clock
                    .instant(deadline.unwrap_or(self.clock.now_ms() + 3_600_000))
                    .into(),
            );
            tokio::select! {
                input = self.inbox.recv() => match input {
                    Some(input) => self.on_input(input).await,
                    None => break,
                },
                _ = self.intake_ready.notified() => {}
                _ = sleep => {}
                _ = watch.tick() => stalls.check(&self.core, &self.intake, &self.shared),
            }
            for timer in self.timers.due(self.clock.now_ms()) {
                self.handle(Event::TimerFired(timer)).await;
            }
            self.drain_intake().await;
            self.forward_certs();
            self.shared.pending_certificates.store(
                self.core.pending().len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    async fn on_input(&mut self, input: MempoolInput) {
        match input {
            MempoolInput::Message { from, message } => {
                self.handle(Event::Message { from, message }).await
            }
            MempoolInput::Received {
                from,
                message,
                raw_batch,
            } => {
                let mut kept = None;
                if let (Some(raw), Message::Batch(batch) | Message::BatchResponse(batch)) =
                    (raw_batch, &message)
                {
                    // Computed here, the transaction digests are cached for
                    // the core; the raw bytes are stored as they are if the
                    // core persists this batch.
                    let digest = batch.digest();
                    let mut raws = self.raw_batches.lock();
                    if raws.len() >= MAX_RAW_BATCHES {
                        raws.clear();
                    }
                    raws.insert(digest, raw);
                    kept = Some(digest);
                }
                self.handle(Event::Message { from, message }).await;
                // Not persisted (a repeat, refused): do not keep its bytes.
                if let Some(digest) = kept.filter(|d| !self.persisting.contains(d)) {
                    self.raw_batches.lock().remove(&digest);
                }
            }
            MempoolInput::Committed { height, certs } => {
                for cert in &certs {
                    self.forwarded.remove(&cert.batch);
                }
                self.handle(Event::Committed { height, certs }).await
            }
            MempoolInput::ResendPayload => self.forwarded.clear(),
            MempoolInput::ResumeOwn(batches) => {
                let actions = self.core.resume_own(self.clock.now_ms(), batches);
                self.execute(actions).await;
            }
            MempoolInput::Pruned { height } => {
                let _ = self.work.send(Work::SkipPruned(height)).await;
            }
        }
    }

    /// Feeds the intake to the core while it accepts transactions; when it
    /// does not, the intake fills up and the API answers busy.
    async fn drain_intake(&mut self) {
        let batch_bytes = self.core.config().batch_bytes;
        let max_txs = self.core.config().max_batch_txs;
        while self.core.accepts_transactions() && !self.intake.is_empty() {
            let txs = self.intake.drain(batch_bytes, max_txs);
            if txs.is_empty() {
                break;
            }
            self.handle(Event::Transactions(txs)).await;
        }
    }

    /// Hands certificates consensus has not seen yet to it. Never waits:
    /// if consensus is busy they are offered again on the next turn.
    fn forward_certs(&mut self) {
        let certs = {
            let undurable = self.undurable.lock();
            if undurable.is_empty() {
                self.core.payload(MAX_FORWARD, &self.forwarded)
            } else {
                let exclude: HashSet<Digest> = self.forwarded.union(&undurable).copied().collect();
                self.core.payload(MAX_FORWARD, &exclude)
            }
        };
        if certs.is_empty() {
            return;
        }
        let items: Vec<Vec<u8>> = certs.iter().filter_map(encode_cert).collect();
        // The mempool accepted these only after verifying them.
        for item in &items {
            self.verified.insert(item);
        }
        if self
            .consensus
            .try_send(ConsensusInput::Payload(items))
            .is_ok()
        {
            self.forwarded.extend(certs.iter().map(|c| c.batch));
        }
    }

    async fn handle(&mut self, event: Event) {
        self.persisting.clear();
        let actions = self.core.handle(self.clock.now_ms(), event);
        self.execute(actions).await;
    }

    /// Hands the actions to the executor, noting own batches to persist as
    /// not yet durable.
    async fn execute(&mut self, mut actions: Vec<Action>) {
        // Timers are the actor's; they only produce events, which queue
        // behind whatever is being executed anyway.
        actions.retain(|action| match action {
            Action::ScheduleTimer { timer, at_ms } => {
                self.timers.schedule(*at_ms, *timer);
                false
            }
            _ => true,
        });
        if actions.is_empty() {
            return;
        }
        {
            let mut undurable = self.undurable.lock();
            for action in &actions {
                if let Action::Persist(batch) = action {
                    let digest = batch.digest();
                    if batch.author == self.shared.me {
                        undurable.insert(digest);
                    }
                    self.persisting.insert(digest);
                }
            }
        }
        let started = std::time::Instant::now();
        let _ = self
            .work
            .send(Work::Actions(actions, self.clock.now_ms()))
            .await;
        let waited = started.elapsed();
        if waited > std::time::Duration::from_millis(50) {
            tracing::debug!(?waited, "waited for the executor's queue");
        }
    }
}

/// The queued persists, taken out of the queue as one group.
#[derive(Debug, Default)]
struct Persists {
    /// Broadcasts of own batches: sent before the group is stored.
    sends: Vec<Message>,
    /// The batches to store, with the time each was queued.
    group: Vec<(Batch, u64)>,
    /// The actions queued ahead of the first persist: run while the group
    /// is stored, as they come before it in order.
    ahead: Vec<(Action, u64)>,
}

/// Takes the queued persists out of `queue` as one group, with the queued
/// broadcasts of own batches and the actions ahead of the first persist;
/// the other actions stay queued, in order.
fn take_persists(queue: &mut VecDeque<(Action, u64)>, me: NodeIndex) -> Persists {
    let mut taken = Persists::default();
    let mut rest = VecDeque::with_capacity(queue.len());
    for (action, at) in queue.drain(..) {
        match action {
            Action::Persist(b) => taken.group.push((b, at)),
            Action::Broadcast(Message::Batch(b)) if b.author == me => {
                taken.sends.push(Message::Batch(b))
            }
            other if taken.group.is_empty() => taken.ahead.push((other, at)),
            other => rest.push_back((other, at)),
        }
    }
    *queue = rest;
    taken
}

/// A group of batches being stored.
struct Storing {
    /// Digests of the own batches in it.
    own: Vec<Digest>,
    /// Own batches a client waits for.
    waited: Vec<Batch>,
    started_ms: u64,
    /// `None` if storage had failed: nothing is stored.
    task: Option<tokio::task::JoinHandle<crate::Result<()>>>,
}

/// The next action to run: the first acknowledgement or own certificate
/// (the certification path; no persist is ever left queued, so each
/// follows its batch's store), else the oldest action.
fn next_action(queue: &mut VecDeque<(Action, u64)>) -> Option<(Action, u64)> {
    let urgent = queue.iter().position(|(action, _)| {
        matches!(
            action,
            Action::Send {
                message: Message::Ack(_),
                ..
            } | Action::Broadcast(Message::Cert(_))
        )
    });
    match urgent {
        Some(i) => queue.remove(i),
        None => queue.pop_front(),
    }
}

impl Executor {
    async fn run(mut self, mut work: mpsc::Receiver<Work>) {
        let mut queue: VecDeque<(Action, u64)> = VecDeque::new();
        loop {
            // Whether a persist was queued since the last group.
            let mut persists = false;
            if queue.is_empty() {
                match work.recv().await {
                    Some(item) => persists |= self.enqueue(&mut queue, item).await,
                    None => return,
                }
            }
            while let Ok(item) = work.try_recv() {
                persists |= self.enqueue(&mut queue, item).await;
            }
            // Every persist queued goes first, in one group: moving a write
            // earlier never breaks the order rule, and a batch sealed while
            // hundreds of caught-up blocks wait to be delivered is durable
            // (its transactions' `202` kept) in one fsync, not after them.
            //
            // An own batch is sent before it is stored, so that the peers
            // store it while this node does: its certificate still waits for
            // the store, as the actions it leads to (the certificate's
            // broadcast, its hand-over to consensus) queue behind it.
            //
            // The actions queued ahead of the group (deliveries, mostly) run
            // while it is stored: they come before it, so the order rule
            // holds, and a store no longer waits for the deliveries queued
            // before it nor they for the store.
            if persists {
                let taken = take_persists(&mut queue, self.shared.me);
                if !self.shared.storage_failed() {
                    for message in &taken.sends {
                        self.broadcast(message);
                    }
                }
                let storing = self.start_storing(taken.group);
                for (action, _) in taken.ahead {
                    self.run_action(action).await;
                }
                self.finish_storing(storing).await;
                continue;
            }
            if let Some((action, _)) = next_action(&mut queue) {
                self.run_action(action).await;
            }
        }
    }

    /// Queues a work item; true if it queued a persist.
    async fn enqueue(&mut self, queue: &mut VecDeque<(Action, u64)>, item: Work) -> bool {
        match item {
            Work::Actions(actions, at) => {
                let persists = actions.iter().any(|a| matches!(a, Action::Persist(_)));
                queue.extend(actions.into_iter().map(|a| (a, at)));
                persists
            }
            Work::SkipPruned(height) => {
                // In order with the deliveries queued before it.
                while let Some((action, at)) = queue.pop_front() {
                    match action {
                        Action::Persist(batch) => self.persist_group(vec![(batch, at)]).await,
                        other => self.run_action(other).await,
                    }
                }
                if let Err(e) = self.output.skip_pruned(height) {
                    tracing::warn!(height, "cannot skip a pruned height: {e}");
                }
                false
            }
        }
    }

    async fn persist_group(&mut self, group: Vec<(Batch, u64)>) {
        let storing = self.start_storing(group);
        self.finish_storing(storing).await;
    }

    /// Starts storing a group of batches on a blocking thread (nothing, if
    /// storage has failed); [`Executor::finish_storing`] waits for it.
    fn start_storing(&mut self, group: Vec<(Batch, u64)>) -> Storing {
        let me = self.shared.me;
        let mut own = Vec::new();
        let now = self.clock.now_ms();
        for (batch, sealed) in &group {
            if batch.author == me {
                tracing::debug!(
                    seq = batch.seq,
                    txs = batch.txs.len(),
                    queued_ms = now.saturating_sub(*sealed),
                    "storing own batch"
                );
                own.push(batch.digest());
                if self.sealed_at.len() < MAX_SEALED_TRACKED {
                    self.sealed_at.insert(batch.seq, *sealed);
                }
            }
        }
        let mut waited = Vec::new();
        let task = (!self.shared.storage_failed()).then(|| {
            // Own batches, kept only if a client waits for one of theirs.
            if !self.shared.durable.is_empty() {
                waited = group
                    .iter()
                    .filter(|(b, _)| b.author == me)
                    .map(|(b, _)| b.clone())
                    .collect();
            }
            self.store(group.into_iter().map(|(b, _)| b).collect())
        });
        Storing {
            own,
            waited,
            started_ms: now,
            task,
        }
    }

    async fn finish_storing(&mut self, storing: Storing) {
        let Storing {
            own,
            waited,
            started_ms,
            task,
        } = storing;
        if let Some(task) = task {
            let stored = task
                .await
                .map_err(|e| crate::Error::Storage(e.to_string()))
                .and_then(|r| r);
            match stored {
                Ok(()) => self.shared.durable.stored(&waited),
                Err(e) => {
                    tracing::error!("cannot store batches: {e}; this node stops acknowledging");
                    self.shared.mark_storage_failed();
                }
            }
        }
        // An own batch that could not be stored (storage failed, now or
        // before) stays undurable: its certificate, which holds this node's
        // acknowledgement, is neither handed to consensus nor broadcast.
        if !own.is_empty() && !self.shared.storage_failed() {
            tracing::debug!(
                batches = own.len(),
                ms = self.clock.now_ms().saturating_sub(started_ms),
                "own batches durable"
            );
            let mut undurable = self.undurable.lock();
            for digest in &own {
                undurable.remove(digest);
            }
            drop(undurable);
            self.wake.notify_one();
        }
    }

    async fn run_action(&mut self, action: Action) {
        let blocked = self.shared.storage_failed();
        match action {
            Action::Persist(batch) => self.persist_group(vec![(batch, 0)]).await,
            Action::Send { to, message } => {
                if !blocked || !matches!(message, Message::Ack(_)) {
                    self.send(to, &message);
                }
            }
            Action::Broadcast(message) => {
                if let Message::Cert(cert) = &message {
                    if blocked {
                        // Our acknowledgement in it may not be durable.
                        return;
                    }
                    self.record_certified(cert);
                }
                self.broadcast(&message)
            }
            Action::ScheduleTimer { .. } => {} // taken by the actor
            Action::FetchBatch { digest, from } => match self.stored_batch(&digest) {
                Some(batch) => {
                    tracing::debug!(%digest, "committed batch found in storage");
                    // If the actor is busy the fetch is retried later.
                    let _ = self.feedback.try_send(MempoolInput::Message {
                        from,
                        message: Message::BatchResponse(batch),
                    });
                }
                None => {
                    tracing::debug!(%digest, peer = from, "fetching a committed batch");
                    self.send(from, &Message::BatchRequest { digest })
                }
            },
            Action::ServeFromStore { digest, to } => match self.stored_batch(&digest) {
                Some(batch) => self.send(to, &Message::BatchResponse(batch)),
                None => tracing::debug!(%digest, peer = to, "asked for a batch not stored here"),
            },
            Action::Deliver { height, batches } => {
                tracing::debug!(height, batches = batches.len(), "delivering");
                self.record_delivery(&batches);
                if let Err(e) = self.output.deliver(height, batches) {
                    tracing::error!(height, "cannot deliver block: {e}");
                }
                self.maybe_prune(height).await;
            }
            Action::Misbehaviour { peer, reason } => {
                self.shared
                    .misbehaviour
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(peer, %reason, "mempool misbehaviour");
            }
        }
    }
    /// Once more than `retention_heights + PRUNE_CHUNK` heights are
    /// delivered beyond the pruning mark, prunes a chunk.
    async fn maybe_prune(&mut self, delivered: u64) {
        let keep_from = delivered.saturating_sub(self.retention_heights);
        if keep_from < self.pruned_below + PRUNE_CHUNK {
            return;
        }
        let storage = self.storage.clone();
        let result = tokio::task::spawn_blocking(move || {
            storage.prune_below(keep_from)?;
            storage.pruned_below()
        })
        .await;
        match result {
            Ok(Ok(mark)) => {
                tracing::debug!(below = mark, "pruned batches");
                self.pruned_below = mark;
            }
            Ok(Err(e)) => tracing::warn!("pruning failed: {e}"),
            Err(e) => tracing::warn!("pruning task failed: {e}"),
        }
    }

    /// Seal → certificate, for own batches sealed in this run.
    fn record_certified(&self, cert: &ordo_mempool::BatchCert) {
        if cert.author != self.shared.me {
            return;
        }
        if let Some(sealed) = self.sealed_at.get(&cert.seq) {
            let ms = self.clock.now_ms().saturating_sub(*sealed);
            self.shared.certify_latency.observe(ms as f64 / 1000.0);
        }
    }

    /// Counts delivered batches and transactions, and the seal → deliver
    /// latency of this node's own batches.
    fn record_delivery(&mut self, batches: &[Batch]) {
        use std::sync::atomic::Ordering::Relaxed;
        let txs: usize = batches.iter().map(|b| b.txs.len()).sum();
        self.shared
            .delivered_transactions
            .fetch_add(txs as u64, Relaxed);
        self.shared
            .delivered_batches
            .fetch_add(batches.len() as u64, Relaxed);
        let now = self.clock.now_ms();
        let instant = std::time::Instant::now();
        for batch in batches.iter().filter(|b| b.author == self.shared.me) {
            for accepted in batch.txs.iter().filter_map(|tx| tx.accepted_at()) {
                self.shared
                    .accept_to_commit
                    .observe(instant.duration_since(accepted).as_secs_f64());
            }
            if let Some(sealed) = self.sealed_at.remove(&batch.seq) {
                self.shared
                    .commit_latency
                    .observe(now.saturating_sub(sealed) as f64 / 1000.0);
            }
        }
    }

    /// Stores `batches` on a blocking thread.
    fn store(&self, batches: Vec<Batch>) -> tokio::task::JoinHandle<crate::Result<()>> {
        let storage = self.storage.clone();
        let me = self.shared.me;
        let raw_batches = self.raw_batches.clone();
        tokio::task::spawn_blocking(move || {
            let mut own = Vec::new();
            let mut encoded: Vec<(Digest, Bytes)> = Vec::with_capacity(batches.len());
            for batch in &batches {
                let digest = batch.digest();
                if batch.author == me {
                    own.push((digest, batch.seq));
                }
                // As received if it came off the wire, else encoded here.
                let bytes = match raw_batches.lock().remove(&digest) {
                    Some(raw) => raw,
                    None => Bytes::from(encode(batch)?),
                };
                encoded.push((digest, bytes));
            }
            storage.save_batches_and_own(encoded.iter().map(|(d, b)| (*d, b.as_ref())), &own)
        })
    }

    fn stored_batch(&self, digest: &Digest) -> Option<Batch> {
        let bytes = self.storage.batch(digest).ok()??;
        decode(&bytes).ok()
    }

    fn send(&self, to: NodeIndex, message: &Message) {
        if let Ok(bytes) = encode(message) {
            let _ = self.network.send(to, Class::Batches, Bytes::from(bytes));
        }
    }

    fn broadcast(&self, message: &Message) {
        if let Ok(bytes) = encode(message) {
            let _ = self.network.broadcast(Class::Batches, Bytes::from(bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::batch;
    use ordo_mempool::BatchAck;
    use ordo_types::Keypair;

    #[test]
    fn own_batches_are_sent_before_the_group_is_stored_and_acks_after() {
        let me = 0;
        let own = Batch {
            seq: 7,
            ..batch(me, &[b"own"])
        };
        let peer = Batch {
            seq: 3,
            ..batch(2, &[b"peer"])
        };
        let keypair = Keypair::from_seed([1; 32]);
        let ack = BatchAck::sign(&peer.header(), me, &keypair);
        let mut queue: VecDeque<(Action, u64)> = VecDeque::from(vec![
            (Action::Persist(own.clone()), 1),
            (Action::Broadcast(Message::Batch(own.clone())), 1),
            (Action::Persist(peer.clone()), 2),
            (
                Action::Send {
                    to: 2,
                    message: Message::Ack(ack.clone()),
                },
                2,
            ),
            // A peer's batch passed on (a response) is not sent early.
            (Action::Broadcast(Message::Batch(peer.clone())), 3),
        ]);
        let taken = take_persists(&mut queue, me);
        assert_eq!(taken.sends, vec![Message::Batch(own.clone())]);
        assert_eq!(taken.group, vec![(own, 1), (peer.clone(), 2)]);
        assert!(taken.ahead.is_empty());
        // The ack is sent only after the group is stored, in order.
        let rest: Vec<_> = queue.into_iter().map(|(a, _)| a).collect();
        assert!(matches!(
            rest.as_slice(),
            [Action::Send { to: 2, message: Message::Ack(a) }, Action::Broadcast(Message::Batch(b))]
                if *a == ack && *b == peer
        ));
    }

    #[test]
    fn actions_ahead_of_the_group_run_while_it_is_stored_and_acks_go_first() {
        let me = 0;
        let keypair = Keypair::from_seed([1; 32]);
        let peer = |seq| Batch {
            seq,
            ..batch(2, &[b"peer"])
        };
        let (a, b) = (peer(3), peer(4));
        let ack = |batch: &Batch| Action::Send {
            to: 2,
            message: Message::Ack(BatchAck::sign(&batch.header(), me, &keypair)),
        };
        let deliver = |height| Action::Deliver {
            height,
            batches: Vec::new(),
        };
        let mut queue: VecDeque<(Action, u64)> = VecDeque::from(vec![
            (deliver(10), 1),
            (ack(&a), 1),
            (Action::Persist(b.clone()), 2),
            (deliver(11), 2),
            (ack(&b), 2),
        ]);
        let taken = take_persists(&mut queue, me);
        assert_eq!(taken.group, vec![(b.clone(), 2)]);
        // Ahead of the persist: run while it is stored.
        let ahead: Vec<_> = taken.ahead.into_iter().map(|(a, _)| a).collect();
        assert!(
            matches!(ahead.as_slice(), [Action::Deliver { height: 10, .. }, Action::Send { message: Message::Ack(x), .. }] if x.batch == a.digest()),
            "{ahead:?}"
        );
        // Behind it: after the store, the ack before the older delivery.
        let first = next_action(&mut queue).map(|(a, _)| a);
        assert!(
            matches!(&first, Some(Action::Send { message: Message::Ack(x), .. }) if x.batch == b.digest()),
            "{first:?}"
        );
        assert!(matches!(
            next_action(&mut queue),
            Some((Action::Deliver { height: 11, .. }, _))
        ));
        assert!(next_action(&mut queue).is_none());
    }
}
