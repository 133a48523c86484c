//! The consensus driver: feeds network messages, timers and payload to the
//! pure consensus core and executes its actions in order, making every
//! `Persist` durable before the next action. It also owns catch-up: a node
//! that finds a peer far ahead fetches committed blocks with their
//! certificates and batches, verifies them, stores them and restarts its
//! core from the new tip (keeping its safety data); whom to ask and what to
//! accept is decided in [`crate::sync`].

use std::sync::Arc;

use bytes::Bytes;
use ordo_consensus::{election, Action, CommittedBlock, Core, Event, Message, PayloadItem, Timer};
use ordo_mempool::consensus::MempoolInclusion;
use ordo_network::{Class, Network};
use ordo_types::codec::encode;
use ordo_types::{Committee, Keypair, NodeIndex};
use tokio::sync::mpsc;

use crate::mempool_actor::MempoolInput;
use crate::payload::{cert_key, decode_certs, CertRules, VerifiedCerts};
use crate::shared::Shared;
use crate::storage::Storage;
use crate::sync::{read_synced, verify_synced, BlocksRequest, CatchUp};
use crate::timers::{Clock, Timers};
use crate::wire::{SyncMessage, SyncedBlock};

/// How often a node asks a peer for its committed height.
const SYNC_INTERVAL_MS: u64 = 500;

pub enum ConsensusInput {
    Message {
        from: NodeIndex,
        message: Message,
    },
    Sync {
        from: NodeIndex,
        message: SyncMessage,
    },
    Payload(Vec<PayloadItem>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ActorTimer {
    Core(Timer),
    SyncTick,
}

pub struct ConsensusActor {
    pub core: Core,
    pub settings: CoreSettings,
    pub committee: Arc<Committee>,
    pub storage: Arc<Storage>,
    pub network: Arc<Network>,
    pub mempool: mpsc::Sender<MempoolInput>,
    pub shared: Arc<Shared>,
    pub clock: Clock,
    pub inbox: mpsc::Receiver<ConsensusInput>,
    timers: Timers<ActorTimer>,
    next_sync_peer: NodeIndex,
    catch_up: CatchUp,
    /// When this node voted for each uncommitted block: (view, time).
    voted_at: std::collections::HashMap<ordo_types::Digest, (u64, std::time::Instant)>,
}

/// Builds a consensus core from what storage holds, with the batch
/// certificate payload rules and, if configured, the inclusion-list rule.
pub fn build_core(settings: &CoreSettings, storage: &Storage) -> crate::Result<Core> {
    let recovery = storage.recovery(&settings.committee)?;
    let n = settings.committee.size();
    let mut core = Core::new(
        settings.config.clone(),
        settings.committee.clone(),
        settings.me,
        settings.keypair.clone(),
        election(n, &settings.config),
        recovery,
    )
    .with_payload_rules(Box::new(CertRules::new(
        settings.committee.clone(),
        settings.verified.clone(),
    )));
    if settings.inclusion_lists {
        core = core.with_inclusion_rules(Box::new(MempoolInclusion::new(
            settings.me,
            settings.keypair.clone(),
            settings.committee.clone(),
            settings.inclusion_delay_ms,
            settings.max_inclusion_len,
            cert_key,
        )));
    }
    Ok(core)
}

/// What it takes to (re)build the consensus core.
#[derive(Clone)]
pub struct CoreSettings {
    pub config: ordo_consensus::Config,
    pub committee: Arc<Committee>,
    pub me: NodeIndex,
    pub keypair: Keypair,
    pub inclusion_lists: bool,
    pub inclusion_delay_ms: u64,
    pub max_inclusion_len: usize,
    /// Certificates already verified (shared with the mempool driver).
    pub verified: Arc<VerifiedCerts>,
}

impl ConsensusActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        core: Core,
        settings: CoreSettings,
        committee: Arc<Committee>,
        storage: Arc<Storage>,
        network: Arc<Network>,
        mempool: mpsc::Sender<MempoolInput>,
        shared: Arc<Shared>,
        clock: Clock,
        inbox: mpsc::Receiver<ConsensusInput>,
    ) -> Self {
        let next_sync_peer = (shared.me + 1) % committee.size() as NodeIndex;
        let catch_up = CatchUp::new(&committee, shared.me);
        ConsensusActor {
            core,
            settings,
            committee,
            storage,
            network,
            mempool,
            shared,
            clock,
            inbox,
            timers: Timers::new(),
            next_sync_peer,
            catch_up,
            voted_at: std::collections::HashMap::new(),
        }
    }

    pub async fn run(mut self) {
        let actions = self.core.start(self.clock.now_ms());
        self.execute(actions).await;
        self.timers
            .schedule(self.clock.now_ms() + SYNC_INTERVAL_MS, ActorTimer::SyncTick);
        loop {
            let deadline = self.timers.next_deadline();
            let input = match deadline {
                Some(at) => {
                    let sleep = tokio::time::sleep_until(self.clock.instant(at).into());
                    tokio::select! {
                        input = self.inbox.recv() => Some(input),
                        _ = sleep => None,
                    }
                }
                None => Some(self.inbox.recv().await),
            };
            match input {
                Some(None) => break,
                Some(Some(input)) => self.on_input(input).await,
                None => {}
            }
            for timer in self.timers.due(self.clock.now_ms()) {
                self.on_timer(timer).await;
            }
        }
    }

    async fn on_input(&mut self, input: ConsensusInput) {
        let now = self.clock.now_ms();
        let actions = match input {
            ConsensusInput::Message {
                from,
                message: Message::BlockRequest(digest),
            } if self.core.block(&digest).is_none() => {
                // Older than the core's memory: serve it from storage.
                if let Ok(Some(block)) = self.storage.block(&digest) {
                    self.send(from, &Message::BlockResponse(Box::new(block)));
                }
                return;
            }
            ConsensusInput::Message { from, message } => {
                self.core.handle(now, Event::Message { from, message })
            }
            ConsensusInput::Payload(items) => self.core.handle(now, Event::PayloadAvailable(items)),
            ConsensusInput::Sync { from, message } => return self.on_sync(from, message).await,
        };
        self.execute(actions).await;
    }

    async fn on_timer(&mut self, timer: ActorTimer) {
        match timer {
            ActorTimer::Core(timer) => {
                let actions = self
                    .core
                    .handle(self.clock.now_ms(), Event::TimerFired(timer));
                self.execute(actions).await;
            }
            ActorTimer::SyncTick => {
                let now = self.clock.now_ms();
                self.catch_up.on_tick(now);
                self.publish_target();
                let peer = self.next_peer();
                self.send_sync(peer, &SyncMessage::TipRequest);
                self.timers
                    .schedule(now + SYNC_INTERVAL_MS, ActorTimer::SyncTick);
            }
        }
    }

    fn next_peer(&mut self) -> NodeIndex {
        let n = self.committee.size() as NodeIndex;
        let mut peer = self.next_sync_peer;
        if peer == self.shared.me {
            peer = (peer + 1) % n;
        }
        self.next_sync_peer = (peer + 1) % n;
        peer
    }

    /// Executes the core's actions in order. A failed persist stops every
    /// later send of the batch (the vote or timeout it protected) and marks
    /// the node as not voting until it is restarted on a working disk.
    async fn execute(&mut self, actions: Vec<Action>) {
        let mut blocked = self.shared.storage_failed();
        let mut actions = actions.into_iter().peekable();
        while let Some(action) = actions.next() {
            match action {
                Action::PersistBlock(_) | Action::Persist(_) => {
                    if blocked {
                        continue;
                    }
                    // A voted block and the safety data of the vote go to
                    // disk in one transaction (one fsync).
                    let (block, data) = match action {
                        Action::PersistBlock(block) => {
                            if self.voted_at.len() < 1024 {
                                self.voted_at.insert(
                                    block.digest(),
                                    (block.view(), std::time::Instant::now()),
                                );
                            }
                            let data = match actions.peek() {
                                Some(Action::Persist(_)) => match actions.next() {
                                    Some(Action::Persist(data)) => Some(data),
                                    _ => None,
                                },
                                _ => None,
                            };
                            (Some(*block), data)
                        }
                        Action::Persist(data) => (None, Some(data)),
                        _ => (None, None),
                    };
                    let storage = self.storage.clone();
                    let saved = tokio::task::spawn_blocking(move || {
                        storage.save_vote(block.as_ref(), data.as_ref())
                    })
                    .await;
                    if let Err(e) = flatten(saved) {
                        tracing::error!(
                            "cannot persist safety data: {e}; this node stops voting until restarted with a working data dir"
                        );
                        self.shared.mark_storage_failed();
                        blocked = true;
                    }
                }
                Action::Send { to, message } => {
                    if !blocked {
                        self.send(to, &message);
                    }
                }
                Action::Broadcast { message } => {
                    if !blocked {
                        self.broadcast(&message);
                    }
                }
                Action::ScheduleTimer { timer, at_ms } => {
                    self.timers.schedule(at_ms, ActorTimer::Core(timer));
                }
                Action::FetchBlock { digest, from } => {
                    self.send(from, &Message::BlockRequest(digest));
                }
                Action::Commit(block) => self.on_commit(*block).await,
                Action::Misbehaviour { peer, fault } => {
                    self.shared
                        .misbehaviour
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::debug!(peer, %fault, "misbehaviour");
                }
            }
        }
        self.shared.set_view(self.core.view());
        self.shared.timeouts.store(
            self.core.stats().timeouts,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    async fn on_commit(&mut self, block: CommittedBlock) {
        let height = block.block.height();
        let tip = self.shared.committed();
        if height <= tip {
            // Already stored by catch-up; it must be the same block.
            if let Ok(Some(stored)) = self.storage.committed(height) {
                if stored.block.digest() != block.block.digest() {
                    tracing::error!(height, "SAFETY ALARM: consensus committed a block that differs from the stored one");
                }
            }
            return;
        }
        let (block_digest, block_view) = (block.block.digest(), block.block.view());
        let certs = match decode_certs(&block.block.payload) {
            Ok(certs) => certs,
            Err(e) => {
                tracing::error!(height, "committed payload does not decode: {e}");
                Vec::new()
            }
        };
        // Staged in memory (stored with the next write transaction): cheap
        // enough not to leave this task for.
        if let Err(e) = self.storage.save_commits(&[block]) {
            tracing::error!(height, "cannot store committed block: {e}");
            self.shared.mark_storage_failed();
            return;
        }
        self.shared.set_committed(height);
        let committed_view = block_view;
        if let Some((_, at)) = self.voted_at.remove(&block_digest) {
            self.shared
                .consensus_latency
                .observe(at.elapsed().as_secs_f64());
        }
        self.voted_at.retain(|_, (view, _)| *view > committed_view);
        if height.is_multiple_of(100) {
            tracing::info!(height, view = self.core.view(), "committed");
        }
        let _ = self
            .mempool
            .send(MempoolInput::Committed { height, certs })
            .await;
    }

    // ----- catch-up -----------------------------------------------------

    async fn on_sync(&mut self, from: NodeIndex, message: SyncMessage) {
        match message {
            SyncMessage::TipRequest => {
                let height = self.shared.committed();
                self.send_sync(from, &SyncMessage::Tip { height });
            }
            SyncMessage::Tip { height } => {
                let tip = self.shared.committed();
                let request = self.catch_up.on_tip(self.clock.now_ms(), from, height, tip);
                self.publish_target();
                if let Some(request) = request {
                    tracing::info!(
                        peer = from,
                        peer_height = height,
                        height = tip,
                        "behind a peer: catching up"
                    );
                    self.request_blocks(request);
                }
            }
            SyncMessage::BlocksRequest { from: start, count } => {
                let storage = self.storage.clone();
                let read =
                    tokio::task::spawn_blocking(move || read_synced(&storage, start, count)).await;
                match flatten(read) {
                    Ok(blocks) if !blocks.is_empty() => {
                        self.send_sync(from, &SyncMessage::Blocks(blocks));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("cannot serve sync request: {e}"),
                }
            }
            SyncMessage::Blocks(blocks) => self.on_synced(from, blocks).await,
        }
    }

    fn request_blocks(&mut self, request: BlocksRequest) {
        self.send_sync(
            request.peer,
            &SyncMessage::BlocksRequest {
                from: request.from,
                count: request.count(),
            },
        );
    }

    /// Publishes the height the lag is measured against.
    fn publish_target(&self) {
        self.shared
            .set_peer_height(self.catch_up.target(self.clock.now_ms()));
    }

    /// Verifies synced blocks against our tip and the committee, stores
    /// them, hands them to the mempool (which fetches their batches and
    /// delivers them), and restarts the core from the new tip.
    async fn on_synced(&mut self, from: NodeIndex, blocks: Vec<SyncedBlock>) {
        if !self.catch_up.take_answer(from) {
            return;
        }
        let tip = self.shared.committed();
        let parent = match self.storage.committed(tip) {
            Ok(Some(b)) => b.block.digest(),
            Ok(None) => ordo_consensus::Block::genesis(self.committee.digest()).digest(),
            Err(e) => return tracing::error!("cannot read the tip: {e}"),
        };
        let verified = verify_synced(&self.committee, tip, parent, blocks);
        let refused = verified.fault.is_some();
        if let Some(fault) = verified.fault {
            tracing::warn!(peer = from, "sync response refused: {fault}");
            self.shared
                .misbehaviour
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let (accepted, certs) = (verified.blocks, verified.certs);
        let count = accepted.len();
        if accepted.is_empty() {
            self.catch_up
                .after_answer(self.clock.now_ms(), from, 0, refused, tip);
            self.publish_target();
            return;
        }
        let last = tip + count as u64;
        let storage = self.storage.clone();
        // Batches are fetched by the mempool from the certificates' signers.
        let saved = tokio::task::spawn_blocking(move || storage.save_commits(&accepted)).await;
        if let Err(e) = flatten(saved) {
            tracing::error!("cannot store synced blocks: {e}");
            return;
        }
        self.shared.set_committed(last);
        for (i, certs) in certs.into_iter().enumerate() {
            let height = tip + 1 + i as u64;
            let input = match certs {
                Some(certs) => MempoolInput::Committed { height, certs },
                None => MempoolInput::Pruned { height },
            };
            let _ = self.mempool.send(input).await;
        }
        tracing::info!(height = last, peer = from, "caught up to height");
        match build_core(&self.settings, &self.storage) {
            Ok(core) => {
                self.core = core;
                let actions = self.core.start(self.clock.now_ms());
                self.execute(actions).await;
                let _ = self.mempool.send(MempoolInput::ResendPayload).await;
            }
            Err(e) => tracing::error!("cannot restart consensus after catch-up: {e}"),
        }
        let next = self
            .catch_up
            .after_answer(self.clock.now_ms(), from, count, refused, last);
        self.publish_target();
        if let Some(request) = next {
            self.request_blocks(request);
        }
    }

    // ----- network ------------------------------------------------------

    fn send(&self, to: NodeIndex, message: &Message) {
        if let Ok(bytes) = encode(message) {
            let _ = self.network.send(to, Class::Consensus, Bytes::from(bytes));
        }
    }

    fn broadcast(&self, message: &Message) {
        if let Ok(bytes) = encode(message) {
            let _ = self.network.broadcast(Class::Consensus, Bytes::from(bytes));
        }
    }

    fn send_sync(&self, to: NodeIndex, message: &SyncMessage) {
        match encode(message) {
            Ok(bytes) => {
                let _ = self.network.send(to, Class::Sync, Bytes::from(bytes));
            }
            Err(e) => tracing::warn!("sync message too large: {e}"),
        }
    }
}

fn flatten<T>(r: Result<crate::Result<T>, tokio::task::JoinError>) -> crate::Result<T> {
    r.map_err(|e| crate::Error::Storage(format!("storage task failed: {e}")))?
}
