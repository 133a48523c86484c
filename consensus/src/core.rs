//! The consensus state machine: `handle(now, event) -> actions`.
//!
//! 2-chain HotStuff with linear votes (Jolteon): the leader of view `v`
//! proposes a block extending its highest QC; replicas vote to the leader of
//! `v + 1`, which forms a QC and proposes next. A view that fails times out:
//! timeouts are broadcast, `f + 1` of them make others join, `2f + 1` form a
//! TC that lets the next leader propose. A block commits when its child in
//! the very next view is certified (the 2-chain rule).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use ordo_types::{Committee, Digest, Keypair, NodeIndex};

use crate::aggregator::{TimeoutAggregator, VoteAggregator};
use crate::block_tree::{BlockTree, Inserted};
use crate::config::Config;
use crate::event::{Action, Event, Timer};
use crate::inclusion::{InclusionAttachment, InclusionRules};
use crate::leader::LeaderElection;
use crate::messages::{
    payload_digest, proposal_message, timeout_message, Block, BlockHeader, CommitCert,
    CommittedBlock, Height, Message, Payload, PayloadItem, QuorumCert, Timeout, TimeoutCert, View,
    Vote,
};
use crate::pacemaker::view_timeout_ms;
use crate::safety::{SafetyData, SafetyRules, Signed};
use crate::Fault;

/// Checks a proposal's payload beyond its size: for example that every item
/// is a valid batch certificate. A pure function of the payload, so every
/// honest replica judges a proposal the same way.
pub trait PayloadRules: Send {
    fn check(&self, payload: &Payload) -> Result<(), String>;
}

/// Most blocks being fetched at once.
const MAX_FETCHES: usize = 64;
/// Keys of committed items remembered so the inclusion rule never demands
/// an item committed a moment ago.
const RECENTLY_COMMITTED: usize = 4_096;
/// Largest inclusion list carried (bytes).
const MAX_LIST_BYTES: usize = 64 * 1024;

/// What a core resumes from: its safety data and what storage holds of the
/// chain. [`Recovery::genesis`] starts a fresh chain.
#[derive(Clone, Debug)]
pub struct Recovery {
    pub safety: SafetyData,
    /// The last committed block.
    pub root: Block,
    /// The highest QC known; certifies `root` or a block in `blocks`.
    pub high_qc: QuorumCert,
    pub high_tc: Option<TimeoutCert>,
    /// Uncommitted blocks extending `root`, in any order.
    pub blocks: Vec<Block>,
    /// Committed blocks just below `root` (its parent first), as many as
    /// the leader election looks back ([`crate::LeaderElection::history`]
    /// minus one); fewer only near genesis. Without them a restarted node
    /// cannot tell the leaders after `root` for a view or two.
    pub ancestors: Vec<Block>,
}

impl Recovery {
    /// Committed blocks below the root a host hands back on restart.
    pub const ANCESTORS: usize = crate::leader::MAX_TERM_VIEWS as usize;

    /// Sets `ancestors` from the committed blocks below `root`, newest
    /// first (the first [`Recovery::ANCESTORS`] are kept), adding genesis
    /// where the chain reaches it.
    pub fn with_ancestors(
        mut self,
        below_root: impl IntoIterator<Item = Block>,
        committee: &Committee,
    ) -> Self {
        if self.root.height() == 0 {
            return self;
        }
        let mut ancestors: Vec<Block> = below_root.into_iter().take(Self::ANCESTORS).collect();
        let reaches_genesis = ancestors
            .last()
            .map_or(self.root.height() == 1, |b| b.height() == 1);
        if ancestors.len() < Self::ANCESTORS && reaches_genesis {
            ancestors.push(Block::genesis(committee.digest()));
        }
        self.ancestors = ancestors;
        self
    }

    pub fn genesis(committee: &Committee) -> Self {
        Recovery {
            safety: SafetyData::default(),
            root: Block::genesis(committee.digest()),
            high_qc: QuorumCert::genesis(committee),
            high_tc: None,
            blocks: Vec::new(),
            ancestors: Vec::new(),
        }
    }
}

/// Counters for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub proposals: u64,
    pub votes: u64,
    pub timeouts: u64,
    pub qcs_formed: u64,
    pub tcs_formed: u64,
    pub committed_blocks: u64,
    pub faults: u64,
    pub refused_votes: u64,
    pub dropped_items: u64,
    pub fetches: u64,
    /// Proposals this node refused to vote for under the inclusion rule.
    pub inclusion_refusals: u64,
}

struct Fetch {
    requested_at_ms: u64,
    attempt: u16,
    first_peer: NodeIndex,
}

/// One node's consensus core.
pub struct Core {
    config: Config,
    committee: Arc<Committee>,
    me: NodeIndex,
    keypair: Keypair,
    leaders: Box<dyn LeaderElection>,
    payload_rules: Option<Box<dyn PayloadRules>>,
    inclusion_rules: Option<Box<dyn InclusionRules>>,
    /// Inclusion lists received with votes and timeouts, per view.
    lists: BTreeMap<View, BTreeMap<NodeIndex, InclusionAttachment>>,
    /// The leader is waiting for more lists before proposing.
    awaiting_lists: bool,
    recently_committed: VecDeque<Digest>,
    recently_committed_set: HashSet<Digest>,
    /// The view this node was in when it last asked a peer ahead of it for
    /// the certificates it missed, and when (see [`Core::ask_to_catch_up`]).
    catch_up_asked: Option<(View, u64)>,
    /// Blocks already refused under the inclusion rule.
    inclusion_refused: HashSet<Digest>,
    safety: SafetyRules,
    tree: BlockTree,
    votes: VoteAggregator,
    timeouts: TimeoutAggregator,
    view: View,
    high_qc: QuorumCert,
    high_tc: Option<TimeoutCert>,
    verified_qcs: HashSet<(View, Digest)>,
    proposed_view: View,
    view_deadline_ms: u64,
    pending_items: VecDeque<(Digest, PayloadItem)>,
    pending_digests: HashSet<Digest>,
    fetching: HashMap<Digest, Fetch>,
    now_ms: u64,
    inbox: VecDeque<Message>,
    out: Vec<Action>,
    stats: Stats,
}

impl Core {
    /// A core for member `me`, resuming from `recovery`. Call [`Core::start`]
    /// once before the first event.
    pub fn new(
        config: Config,
        committee: Arc<Committee>,
        me: NodeIndex,
        keypair: Keypair,
        leaders: Box<dyn LeaderElection>,
        recovery: Recovery,
    ) -> Self {
        let mut config = config;
        // A leader enters its view when it forms the QC, one idle wait before
        // the replicas do, and its view lasts until the next leader's idle
        // wait ends: two idle waits must fit well inside one view timeout.
        config.idle_block_interval_ms = config
            .idle_block_interval_ms
            .min(config.base_timeout_ms / 4)
            .max(1);
        // The highest certificates storage proves: the lock's QC (else a
        // restarted node could never time out above its lock), the TC of its
        // last timeouts, and the QCs and TCs carried by the blocks it voted
        // for. All were verified before they were stored.
        let mut high_qc = recovery.high_qc;
        let mut high_tc = recovery.high_tc;
        let stored_qcs =
            recovery
                .safety
                .highest_qc
                .iter()
                .chain(recovery.blocks.iter().flat_map(|b| {
                    std::iter::once(&b.parent_qc).chain(b.tc.iter().map(|tc| &tc.high_qc))
                }));
        for qc in stored_qcs {
            if qc.view > high_qc.view {
                high_qc = qc.clone();
            }
        }
        let stored_tcs = recovery.safety.highest_tc.iter();
        for tc in stored_tcs.chain(recovery.blocks.iter().filter_map(|b| b.tc.as_ref())) {
            if high_tc.as_ref().is_none_or(|h| tc.view > h.view) {
                high_tc = Some(tc.clone());
            }
        }
        let mut safety = SafetyRules::new(me, keypair.clone(), recovery.safety);
        if config.test_only_break_vote_rule {
            safety.test_only_break_vote_rule();
        }
        let mut tree = BlockTree::new(recovery.root, config.recent_blocks);
        tree.remember_ancestors(recovery.ancestors);
        let mut blocks = recovery.blocks;
        blocks.sort_by_key(|b| b.view());
        for block in blocks {
            // Stored blocks were validated before they were stored. A block
            // whose parent is missing waits as an orphan; stale ones drop.
            let _ = tree.insert(block);
        }
        let view = high_qc.view.max(high_tc.as_ref().map_or(0, |tc| tc.view)) + 1;
        let mut verified_qcs = HashSet::new();
        verified_qcs.insert((high_qc.view, high_qc.block));
        Core {
            config,
            committee,
            me,
            keypair,
            leaders,
            payload_rules: None,
            inclusion_rules: None,
            lists: BTreeMap::new(),
            awaiting_lists: false,
            recently_committed: VecDeque::new(),
            recently_committed_set: HashSet::new(),
            catch_up_asked: None,
            inclusion_refused: HashSet::new(),
            safety,
            tree,
            votes: VoteAggregator::default(),
            timeouts: TimeoutAggregator::default(),
            view,
            high_qc,
            high_tc,
            verified_qcs,
            proposed_view: 0,
            view_deadline_ms: 0,
            pending_items: VecDeque::new(),
            pending_digests: HashSet::new(),
            fetching: HashMap::new(),
            now_ms: 0,
            inbox: VecDeque::new(),
            out: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Adds payload checks every proposal must pass before this node votes.
    pub fn with_payload_rules(mut self, rules: Box<dyn PayloadRules>) -> Self {
        self.payload_rules = Some(rules);
        self
    }

    /// Turns the inclusion rule on (see [`crate::inclusion`]): lists in
    /// votes and timeouts, attached to proposals, checked before voting.
    /// Every member must run with the same setting.
    pub fn with_inclusion_rules(mut self, rules: Box<dyn InclusionRules>) -> Self {
        self.inclusion_rules = Some(rules);
        self
    }

    /// Arms the first view timer and, if this node leads the first view,
    /// proposes.
    pub fn start(&mut self, now_ms: u64) -> Vec<Action> {
        self.now_ms = now_ms;
        self.schedule_view_timer();
        self.try_propose(false);
        self.finish()
    }

    /// Handles one event and returns the actions to execute, in order.
    pub fn handle(&mut self, now_ms: u64, event: Event) -> Vec<Action> {
        self.now_ms = self.now_ms.max(now_ms);
        match event {
            Event::Message { from, message } => self.on_message(from, message),
            Event::TimerFired(Timer::View(view)) => self.on_view_timer(view),
            Event::TimerFired(Timer::Propose(view)) => {
                if view == self.view {
                    self.try_propose(true);
                }
            }
            Event::PayloadAvailable(items) => {
                if let Some(rules) = self.inclusion_rules.as_mut() {
                    rules.on_available(self.now_ms, &items);
                }
                self.add_payload(items);
                self.try_propose(false);
            }
        }
        self.finish()
    }

    pub fn me(&self) -> NodeIndex {
        self.me
    }

    pub fn view(&self) -> View {
        self.view
    }

    /// Payload items waiting to be proposed, oldest first (a host that
    /// restarts the core after a catch-up hands them to the new one).
    pub fn pending_payload(&self) -> Vec<PayloadItem> {
        self.pending_items
            .iter()
            .map(|(_, item)| item.clone())
            .collect()
    }

    pub fn high_qc(&self) -> &QuorumCert {
        &self.high_qc
    }

    pub fn committed_height(&self) -> Height {
        self.tree.root().height()
    }

    pub fn safety_data(&self) -> &SafetyData {
        self.safety.data()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A block this core holds (uncommitted or recently committed).
    pub fn block(&self, digest: &Digest) -> Option<&Block> {
        self.tree.get(digest)
    }

    /// Payload items waiting for a proposal.
    pub fn pending_items(&self) -> usize {
        self.pending_items.len()
    }

    fn finish(&mut self) -> Vec<Action> {
        while let Some(message) = self.inbox.pop_front() {
            self.on_message(self.me, message);
        }
        self.retry_fetches();
        std::mem::take(&mut self.out)
    }

    // ----- messages -------------------------------------------------------

    fn on_message(&mut self, from: NodeIndex, message: Message) {
        if usize::from(from) >= self.committee.size() {
            return;
        }
        match message {
            Message::Proposal(block) => self.on_proposal(from, *block),
            Message::Vote(vote) => self.on_vote(from, vote),
            Message::Timeout(timeout) => self.on_timeout(from, *timeout),
            Message::Tc(tc) => self.on_tc(from, *tc),
            Message::Qc(qc) => self.on_qc(from, *qc),
            Message::BlockRequest(digest) => {
                if let Some(block) = self.tree.get(&digest) {
                    let response = Message::BlockResponse(Box::new(block.clone()));
                    self.send(from, response);
                }
            }
            Message::BlockResponse(block) => self.on_block_response(from, *block),
        }
    }

    fn on_proposal(&mut self, from: NodeIndex, block: Block) {
        if from != block.author() {
            return self.fault(
                from,
                Fault::WrongSender {
                    from,
                    author: block.author(),
                },
            );
        }
        let digest = block.digest();
        if self.tree.contains(&digest) {
            // A retransmission: re-send our vote if we cast one.
            return self.try_vote(&digest);
        }
        if block.view() <= self.tree.root().view() || self.tree.is_orphan(&digest) {
            return;
        }
        if let Err(fault) = self.validate_block(&block) {
            return self.fault(from, fault);
        }
        if self.tree.conflicting(block.view(), block.author(), &digest) {
            self.fault(from, Fault::Equivocation(block.view()));
        }
        self.accept_block(block, from);
    }

    fn on_block_response(&mut self, from: NodeIndex, block: Block) {
        let digest = block.digest();
        if !self.fetching.contains_key(&digest) || self.tree.contains(&digest) {
            return;
        }
        if block.view() <= self.tree.root().view() {
            self.fetching.remove(&digest);
            return;
        }
        if let Err(fault) = self.validate_block(&block) {
            return self.fault(from, fault);
        }
        self.accept_block(block, from);
    }

    /// Checks everything about a block that does not need its parent: the
    /// author leads the view, the signature, the parent QC and TC, the
    /// payload, and that the view is justified by the QC or the TC.
    fn validate_block(&mut self, block: &Block) -> Result<(), Fault> {
        let header = &block.header;
        if header.view == 0 {
            return Err(Fault::MalformedBlock("view 0 belongs to genesis"));
        }
        if usize::from(header.author) >= self.committee.size() {
            return Err(Fault::MalformedBlock("author is not a member"));
        }
        // Without its parent the leader of a QC-justified view may not be
        // known yet: `try_vote` checks it again once the parent is here.
        if let Some(leader) = self.expected_leader(block) {
            if header.author != leader {
                return Err(Fault::WrongLeader {
                    view: header.view,
                    author: header.author,
                    leader,
                });
            }
        }
        if block.parent_qc.block != header.parent || block.parent_qc.view != header.parent_view {
            return Err(Fault::MalformedBlock(
                "parent QC does not certify the parent",
            ));
        }
        if header.view <= header.parent_view {
            return Err(Fault::MalformedBlock("view not above the parent's"));
        }
        if block.payload.items.len() > self.config.max_payload_items {
            return Err(Fault::BadPayload(format!(
                "{} items, limit {}",
                block.payload.items.len(),
                self.config.max_payload_items
            )));
        }
        if block
            .payload
            .items
            .iter()
            .any(|i| i.len() > self.config.max_item_bytes)
        {
            return Err(Fault::BadPayload("item too large".into()));
        }
        if block.inclusion.len() > self.committee.size()
            || block.inclusion.iter().any(|l| l.len() > MAX_LIST_BYTES)
        {
            return Err(Fault::BadPayload("inclusion lists out of bounds".into()));
        }
        if payload_digest(&block.payload, &block.inclusion) != header.payload {
            return Err(Fault::MalformedBlock("payload digest mismatch"));
        }
        if let Some(rules) = &self.payload_rules {
            rules.check(&block.payload).map_err(Fault::BadPayload)?;
        }
        match &block.tc {
            Some(tc) if tc.view + 1 != header.view => {
                return Err(Fault::MalformedBlock("TC is not for the previous view"));
            }
            None if header.view != header.parent_view + 1 => {
                return Err(Fault::UnsafeProposal("skips views without a TC"));
            }
            _ => {}
        }
        if SafetyRules::safe_to_vote(block).is_err() {
            return Err(Fault::UnsafeProposal("QC below the highest QC in the TC"));
        }
        self.committee
            .verify(
                header.author,
                &proposal_message(&block.digest()),
                &block.signature,
            )
            .map_err(|_| Fault::BadSignature("proposal"))?;
        self.verify_qc(&block.parent_qc)?;
        if let Some(tc) = &block.tc {
            if self.high_tc.as_ref() != Some(tc) {
                tc.verify(&self.committee)?;
            }
        }
        Ok(())
    }

    /// Verifies a QC, remembering those at or above the root's view (the
    /// set is pruned to them at every commit, so old QCs a peer shows are
    /// checked each time instead of piling up).
    fn verify_qc(&mut self, qc: &QuorumCert) -> Result<(), Fault> {
        if self.verified_qcs.contains(&(qc.view, qc.block)) {
            return Ok(());
        }
        qc.verify(&self.committee)?;
        if qc.view >= self.tree.root().view() {
            self.verified_qcs.insert((qc.view, qc.block));
        }
        Ok(())
    }

    /// Takes in a validated block: its certificates first, then the block.
    fn accept_block(&mut self, block: Block, source: NodeIndex) {
        self.process_qc(block.parent_qc.clone());
        if let Some(tc) = &block.tc {
            self.process_tc(tc.clone());
        }
        let digest = block.digest();
        match self.tree.insert(block) {
            Err(fault) => self.fault(source, fault),
            Ok(Inserted::Stale) => {
                self.fetching.remove(&digest);
            }
            Ok(Inserted::MissingParent(parent)) => self.fetch(parent, source),
            Ok(Inserted::Added(adopted)) => {
                self.fetching.remove(&digest);
                self.after_insert(&digest);
                for child in adopted {
                    self.after_insert(&child);
                }
            }
        }
    }

    fn after_insert(&mut self, digest: &Digest) {
        let Some(block) = self.tree.get(digest) else {
            return;
        };
        let parent_qc = block.parent_qc.clone();
        self.commit_via(&parent_qc);
        if self.high_qc.block == *digest {
            let high_qc = self.high_qc.clone();
            self.commit_via(&high_qc);
        }
        self.try_vote(digest);
        self.try_propose(false);
    }

    /// Who may propose `block`: by the TC for the view before it if it
    /// carries one, else by its parent (certified in the view before);
    /// `None` while the parent is not here.
    fn expected_leader(&self, block: &Block) -> Option<NodeIndex> {
        let view = block.view();
        match &block.tc {
            Some(tc) if tc.view + 1 == view => self.leader_after_tc(view, tc),
            _ => self
                .tree
                .get(&block.header.parent)
                .filter(|parent| parent.view() + 1 == view)
                .and_then(|parent| self.leader_after(parent)),
        }
    }

    /// The leader after a QC for `block`, from `block` and the ancestors
    /// the election looks at (as far as this node holds them).
    fn leader_after(&self, block: &Block) -> Option<NodeIndex> {
        self.leaders.leader_after(&self.chain_from(block))
    }

    /// The leader of `view` entered through `tc` (for `view - 1`), from the
    /// block of its high QC and that block's ancestors.
    fn leader_after_tc(&self, view: View, tc: &TimeoutCert) -> Option<NodeIndex> {
        let chain = match self.tree.get(&tc.high_qc.block) {
            Some(high) => self.chain_from(high),
            None => Vec::new(),
        };
        self.leaders.leader_after_tc(view, tc, &chain)
    }

    /// `block` and as many of its ancestors as the election looks at and
    /// this node holds, parent after child.
    fn chain_from<'a>(&'a self, block: &'a Block) -> Vec<&'a Block> {
        let mut chain = vec![block];
        while chain.len() < self.leaders.history() {
            let last = chain[chain.len() - 1];
            match self.tree.get(&last.header.parent) {
                Some(parent) if last.view() > 0 => chain.push(parent),
                _ => break,
            }
        }
        chain
    }

    fn on_vote(&mut self, from: NodeIndex, mut vote: Vote) {
        if from != vote.author {
            return self.fault(
                from,
                Fault::WrongSender {
                    from,
                    author: vote.author,
                },
            );
        }
        if vote.view + 1 < self.view || vote.view > self.view + self.config.max_view_ahead {
            return;
        }
        // Votes for a block not here yet are counted: a QC is a QC.
        let leader = self
            .tree
            .get(&vote.block)
            .and_then(|b| self.leader_after(b));
        if leader.is_some_and(|l| l != self.me) {
            return;
        }
        let vote_view = vote.view;
        // The list (up to a frame's size) is kept, bounded, by `add_list`;
        // the pending vote holds only what a QC needs.
        if let Some(list) = vote.inclusion.take() {
            self.add_list(vote_view, vote.author, list);
        }
        let outcome = self.votes.add(vote, &self.committee);
        for (peer, fault) in outcome.faults {
            self.fault(peer, fault);
        }
        if let Some(qc) = outcome.qc {
            self.stats.qcs_formed += 1;
            self.verified_qcs.insert((qc.view, qc.block));
            self.process_qc(qc);
        } else if self.awaiting_lists && vote_view + 1 == self.view {
            self.try_propose(false);
        }
    }

    /// Keeps the first list of each author for `view` (lists are checked by
    /// the rule when used; a bad one simply does not count).
    fn add_list(&mut self, view: View, author: NodeIndex, list: InclusionAttachment) {
        if self.inclusion_rules.is_none() || list.len() > MAX_LIST_BYTES || view + 1 < self.view {
            return;
        }
        self.lists
            .entry(view)
            .or_default()
            .entry(author)
            .or_insert(list);
    }

    fn on_timeout(&mut self, from: NodeIndex, timeout: Timeout) {
        if from != timeout.author {
            return self.fault(
                from,
                Fault::WrongSender {
                    from,
                    author: timeout.author,
                },
            );
        }
        if timeout.view > self.view + self.config.max_view_ahead {
            return;
        }
        if timeout.high_qc.view >= timeout.view {
            return self.fault(
                from,
                Fault::MalformedQc("timeout carries a QC at or above its view"),
            );
        }
        let message = timeout_message(timeout.view, timeout.high_qc.view);
        if self
            .committee
            .verify(timeout.author, &message, &timeout.signature)
            .is_err()
        {
            return self.fault(from, Fault::BadSignature("timeout"));
        }
        if timeout.view < self.view {
            // Signed by the sender: it really is behind.
            return self.help_lagging(from, timeout.view);
        }
        if timeout.high_qc.view > self.high_qc.view {
            if let Err(fault) = self.verify_qc(&timeout.high_qc) {
                return self.fault(from, fault);
            }
            self.process_qc(timeout.high_qc.clone());
        }
        if timeout.view > self.view {
            self.ask_to_catch_up(from);
        }
        if timeout.view < self.view {
            return;
        }
        if let Some(list) = timeout.inclusion.clone() {
            self.add_list(timeout.view, timeout.author, list);
        }
        let (count, tc) = self.timeouts.add(&timeout, &self.high_qc, &self.committee);
        let timed_out = self
            .safety
            .data()
            .last_timeout
            .as_ref()
            .is_some_and(|t| t.view == self.view);
        if timeout.view == self.view && count >= self.committee.validity() && !timed_out {
            // f + 1 timeouts include an honest one: join, so that a TC forms.
            self.local_timeout();
        }
        if let Some(tc) = tc {
            self.stats.tcs_formed += 1;
            self.process_tc(tc);
        }
    }

    /// A peer timed out in a view above ours: it left ours by a QC or TC we
    /// did not get (we restarted, or missed it). Its timeout carries only
    /// its high QC, so ask it for the rest by showing it our high QC; it
    /// answers as to any lagging peer ([`Core::help_lagging`]). Without
    /// this a restarted node waits for its own view timer, which after a
    /// run of timeouts is long, and the others cannot form a TC without it.
    /// At most once per `base_timeout_ms / 4` while in the same view.
    fn ask_to_catch_up(&mut self, peer: NodeIndex) {
        let spacing = self.config.base_timeout_ms / 4;
        if self
            .catch_up_asked
            .is_some_and(|(view, at)| view == self.view && self.now_ms < at + spacing)
        {
            return;
        }
        self.catch_up_asked = Some((self.view, self.now_ms));
        self.send(peer, Message::Qc(Box::new(self.high_qc.clone())));
    }

    /// A peer timed out in a view we already left: show it how we left.
    fn help_lagging(&mut self, peer: NodeIndex, peer_view: View) {
        if peer == self.me {
            return;
        }
        if self.high_qc.view >= peer_view {
            self.send(peer, Message::Qc(Box::new(self.high_qc.clone())));
        }
        if let Some(tc) = self.high_tc.as_ref().filter(|tc| tc.view >= peer_view) {
            self.send(peer, Message::Tc(Box::new(tc.clone())));
        }
    }

    fn on_tc(&mut self, from: NodeIndex, tc: TimeoutCert) {
        if tc.view < self.view {
            return;
        }
        if let Err(fault) = tc.verify(&self.committee) {
            return self.fault(from, fault);
        }
        self.verified_qcs
            .insert((tc.high_qc.view, tc.high_qc.block));
        self.process_tc(tc);
    }

    fn on_qc(&mut self, from: NodeIndex, qc: QuorumCert) {
        // Verified first, even when stale: a forged QC neither moves this
        // node nor makes it answer.
        if let Err(fault) = self.verify_qc(&qc) {
            return self.fault(from, fault);
        }
        if qc.view + 1 < self.view {
            // The sender is behind (a restarted node asks this way).
            self.help_lagging(from, qc.view + 1);
            if self.tree.contains(&qc.block) {
                return;
            }
        }
        self.process_qc(qc);
    }

    // ----- certificates, views and commits ---------------------------------

    /// Takes in a verified QC: commit what it commits, raise the high QC,
    /// and enter the view after it.
    fn process_qc(&mut self, qc: QuorumCert) {
        self.commit_via(&qc);
        if qc.view > self.high_qc.view {
            self.safety.observe_qc(&qc);
            self.high_qc = qc;
        }
        let next = self.high_qc.view + 1;
        self.advance_view(next);
    }

    /// Takes in a verified TC: its QC, then the view after it.
    fn process_tc(&mut self, tc: TimeoutCert) {
        self.process_qc(tc.high_qc.clone());
        let next = tc.view + 1;
        if self.high_tc.as_ref().is_none_or(|h| tc.view > h.view) {
            self.high_tc = Some(tc);
        }
        self.advance_view(next);
    }

    fn advance_view(&mut self, view: View) {
        if view <= self.view {
            return;
        }
        self.view = view;
        self.awaiting_lists = false;
        self.lists = self.lists.split_off(&(view - 1));
        self.votes.prune_below(view - 1);
        self.timeouts.prune_below(view);
        self.schedule_view_timer();
        self.try_propose(false);
        if self.timeouts.count(view) >= self.committee.validity() {
            // f + 1 members timed out here before this node arrived (it
            // was behind): join them, as on receiving the last of them.
            self.local_timeout();
        }
    }

    fn schedule_view_timer(&mut self) {
        let duration = view_timeout_ms(
            self.config.base_timeout_ms,
            self.config.max_timeout_ms,
            self.view,
            self.high_qc.view,
        );
        self.view_deadline_ms = self.now_ms + duration;
        self.out.push(Action::ScheduleTimer {
            timer: Timer::View(self.view),
            at_ms: self.view_deadline_ms,
        });
    }

    /// The 2-chain rule: a QC for `B'` whose parent `B` is in the previous
    /// view commits `B` and all its uncommitted ancestors.
    fn commit_via(&mut self, qc: &QuorumCert) {
        if qc.view <= self.tree.root().view() {
            return;
        }
        let Some(certified) = self.tree.get_extendable(&qc.block) else {
            if !self.tree.contains(&qc.block) {
                let peer = qc
                    .votes
                    .first()
                    .map_or(self.leaders.leader(qc.view), |(i, _)| *i);
                self.fetch(qc.block, peer);
            }
            return;
        };
        let head = certified.header.parent;
        if certified.view() != certified.header.parent_view + 1 || head == self.tree.root_digest() {
            return;
        }
        let certified_header = certified.header.clone();
        let Some(path) = self.tree.path_to_root(&head) else {
            return;
        };
        let mut headers: Vec<BlockHeader> = path.iter().rev().map(|b| b.header.clone()).collect();
        headers.push(certified_header);
        let committed = self.tree.commit(&head);
        let mut committed_items = HashSet::new();
        for (i, block) in committed.into_iter().enumerate() {
            for item in &block.payload.items {
                committed_items.insert(Digest::of(item));
            }
            if let Some(rules) = self.inclusion_rules.as_mut() {
                rules.on_committed(&block.payload.items);
                for item in &block.payload.items {
                    let key = rules.item_key(item);
                    if self.recently_committed_set.insert(key) {
                        self.recently_committed.push_back(key);
                    }
                }
                while self.recently_committed.len() > RECENTLY_COMMITTED {
                    if let Some(old) = self.recently_committed.pop_front() {
                        self.recently_committed_set.remove(&old);
                    }
                }
            }
            let cert = CommitCert {
                chain: headers[i + 1..].to_vec(),
                qc: qc.clone(),
            };
            self.stats.committed_blocks += 1;
            self.out
                .push(Action::Commit(Box::new(CommittedBlock { block, cert })));
        }
        self.inclusion_refused.clear();
        if !committed_items.is_empty() {
            self.pending_items
                .retain(|(d, _)| !committed_items.contains(d));
            self.pending_digests
                .retain(|d| !committed_items.contains(d));
        }
        let root_view = self.tree.root().view();
        self.verified_qcs.retain(|(view, _)| *view >= root_view);
        self.verified_qcs
            .insert((self.high_qc.view, self.high_qc.block));
    }

    // ----- timeouts -----------------------------------------------------------

    fn on_view_timer(&mut self, view: View) {
        if view != self.view || self.now_ms < self.view_deadline_ms {
            return;
        }
        self.local_timeout();
    }

    /// Gives up on the current view (or re-broadcasts the timeout already
    /// signed for it) and re-arms the timer.
    fn local_timeout(&mut self) {
        match self
            .safety
            .timeout(self.view, &self.high_qc, self.high_tc.as_ref())
        {
            Ok(Signed::New {
                mut message,
                persist,
            }) => {
                self.stats.timeouts += 1;
                self.out.push(Action::Persist(persist));
                message.inclusion = self.own_list(message.view);
                self.broadcast(Message::Timeout(Box::new(message)));
            }
            Ok(Signed::Repeat(mut message)) => {
                message.inclusion = self.own_list(message.view);
                self.broadcast(Message::Timeout(Box::new(message)))
            }
            Err(_) => {
                // The rules refuse to time out here: this node restarted
                // behind views it already signed in, and lost the
                // certificates that ended them. Show the peers its high QC;
                // one that is ahead answers with those certificates
                // (`on_qc`), so it can rejoin.
                self.out.push(Action::Broadcast {
                    message: Message::Qc(Box::new(self.high_qc.clone())),
                });
                // Also re-send the timeout it signed last (a stored
                // signature, nothing new): if a quorum restarted together,
                // nobody is ahead to help, and their stored timeouts
                // rebuild the TC they all lost.
                if let Some(timeout) = self.safety.data().last_timeout.clone() {
                    if timeout.view > self.view {
                        self.broadcast(Message::Timeout(Box::new(timeout)));
                    }
                }
            }
        }
        self.schedule_view_timer();
    }

    // ----- proposing and voting ---------------------------------------------

    fn add_payload(&mut self, items: Vec<PayloadItem>) {
        for item in items {
            if item.len() > self.config.max_item_bytes {
                self.stats.dropped_items += 1;
                continue;
            }
            if self.pending_items.len() >= self.config.max_pending_items {
                self.stats.dropped_items += 1;
                continue;
            }
            let digest = Digest::of(&item);
            if self.pending_digests.insert(digest) {
                self.pending_items.push_back((digest, item));
            }
        }
    }

    /// Proposes in the current view if this node leads it and has not yet.
    /// An idle leader (nothing to propose, nothing uncommitted to push
    /// through) waits for payload or the idle heartbeat unless `force`.
    fn try_propose(&mut self, force: bool) {
        let view = self.view;
        if self.proposed_view >= view || self.safety.data().last_voted_view >= view {
            return;
        }
        let tc = if self.high_qc.view + 1 == view {
            None
        } else {
            match &self.high_tc {
                Some(tc) if tc.view + 1 == view => Some(tc.clone()),
                _ => return,
            }
        };
        if let Some(tc) = &tc {
            if self.leader_after_tc(view, tc) != Some(self.me) {
                return;
            }
        }
        let parent_digest = self.high_qc.block;
        let Some(parent) = self.tree.get_extendable(&parent_digest) else {
            if !self.tree.contains(&parent_digest) {
                let peer = self.high_qc.votes.first().map_or(0, |(i, _)| *i);
                self.fetch(parent_digest, peer);
            }
            return;
        };
        if tc.is_none() && self.leader_after(parent) != Some(self.me) {
            return;
        }
        let parent_height = parent.height();
        let (required, inclusion) = match self.lists_for_proposal(view) {
            Ok(found) => found,
            Err(()) => {
                // Too few lists for the rule yet: wait for more votes (or
                // the idle timer); the view timer bounds the wait.
                self.awaiting_lists = true;
                self.out.push(Action::ScheduleTimer {
                    timer: Timer::Propose(view),
                    at_ms: self.now_ms + self.config.idle_block_interval_ms,
                });
                return;
            }
        };
        self.awaiting_lists = false;
        let payload = self.take_payload(&parent_digest, &required);
        if payload.is_empty() && !force && !self.chain_needs_blocks(&parent_digest) {
            self.out.push(Action::ScheduleTimer {
                timer: Timer::Propose(view),
                at_ms: self.now_ms + self.config.idle_block_interval_ms,
            });
            return;
        }
        let header = BlockHeader {
            view,
            height: parent_height + 1,
            parent: parent_digest,
            parent_view: self.high_qc.view,
            payload: payload_digest(&payload, &inclusion),
            author: self.me,
        };
        let signature = self.keypair.sign(&proposal_message(&header.digest()));
        let block = Block {
            header,
            parent_qc: self.high_qc.clone(),
            tc,
            payload,
            inclusion,
            signature,
        };
        self.proposed_view = view;
        self.stats.proposals += 1;
        // The proposal leaves first, and this node then stores it and votes
        // for it (block, safety data, vote) while the replicas do the same:
        // the leader's store is off the view's path. A proposal is not a
        // vote. Every signer of a QC stored the block before it voted, and
        // a leader that crashes before its store may, restarted, propose
        // again in this view: the replicas that voted refuse the second
        // proposal, and its own vote is still cast once.
        self.out.push(Action::Broadcast {
            message: Message::Proposal(Box::new(block.clone())),
        });
        self.accept_block(block, self.me);
    }

    /// The inclusion lists a proposal in `view` attaches (all collected for
    /// `view - 1`, by author) and the item keys the rule requires, oldest
    /// first. `Err` if the rule is on and the lists are not enough yet.
    #[allow(clippy::result_unit_err)]
    fn lists_for_proposal(
        &self,
        view: View,
    ) -> Result<(Vec<Digest>, Vec<InclusionAttachment>), ()> {
        let Some(rules) = &self.inclusion_rules else {
            return Ok((Vec::new(), Vec::new()));
        };
        if view <= 1 {
            return Ok((Vec::new(), Vec::new()));
        }
        let lists: Vec<InclusionAttachment> = self
            .lists
            .get(&(view - 1))
            .map(|by_author| by_author.values().cloned().collect())
            .unwrap_or_default();
        let required = rules.required(view - 1, &lists).map_err(|_| ())?;
        Ok((required, lists))
    }

    /// Pending items not already in the uncommitted chain ending at `parent`,
    /// the `required` ones (by inclusion-rule key) first, in that order.
    fn take_payload(&self, parent: &Digest, required: &[Digest]) -> Payload {
        if self.pending_items.is_empty() {
            return Payload::default();
        }
        let mut in_chain = HashSet::new();
        if let Some(path) = self.tree.path_to_root(parent) {
            for block in path {
                for item in &block.payload.items {
                    in_chain.insert(Digest::of(item));
                }
            }
        }
        let mut first: Vec<&(Digest, PayloadItem)> = Vec::new();
        let mut chosen = HashSet::new();
        if let (Some(rules), false) = (&self.inclusion_rules, required.is_empty()) {
            let by_key: HashMap<Digest, &(Digest, PayloadItem)> = self
                .pending_items
                .iter()
                .map(|entry| (rules.item_key(&entry.1), entry))
                .collect();
            for key in required {
                if let Some(entry) = by_key.get(key) {
                    if !in_chain.contains(&entry.0) && chosen.insert(entry.0) {
                        first.push(entry);
                    }
                }
            }
        }
        let items = first
            .into_iter()
            .chain(
                self.pending_items
                    .iter()
                    .filter(|(d, _)| !in_chain.contains(d) && !chosen.contains(d)),
            )
            .take(self.config.max_payload_items)
            .map(|(_, item)| item.clone())
            .collect();
        Payload { items }
    }

    /// This node's inclusion list for `view`, if the rule is on.
    fn own_list(&mut self, view: View) -> Option<InclusionAttachment> {
        let now = self.now_ms;
        self.inclusion_rules
            .as_mut()
            .and_then(|rules| rules.list_for(now, view))
    }

    /// The inclusion rule for a block whose parent is in the tree: judged on
    /// its items and lists against the items of its uncommitted ancestors,
    /// the root, and items this node saw committed recently.
    fn check_inclusion(&self, block: &Block) -> Result<(), String> {
        let Some(rules) = &self.inclusion_rules else {
            return Ok(());
        };
        if block.view() <= 1 {
            return Ok(());
        }
        // The path's items, looked up next to the recently committed ones
        // (a copy of those, thousands of digests, per vote cost more than
        // the rest of the check).
        let mut on_path = HashSet::new();
        let path = self
            .tree
            .path_to_root(&block.header.parent)
            .unwrap_or_default();
        for b in path.into_iter().chain(std::iter::once(self.tree.root())) {
            for item in &b.payload.items {
                on_path.insert(rules.item_key(item));
            }
        }
        let recent = &self.recently_committed_set;
        let ancestors = |d: &Digest| on_path.contains(d) || recent.contains(d);
        let items: Vec<Digest> = block
            .payload
            .items
            .iter()
            .map(|i| rules.item_key(i))
            .collect();
        rules.check(
            block.view() - 1,
            &items,
            &ancestors,
            &block.inclusion,
            self.config.max_payload_items,
        )
    }

    /// Whether payload near the tip still needs blocks on top to commit (and
    /// for every node to learn the commit): true if the parent, its parent,
    /// or any uncommitted ancestor carries payload.
    fn chain_needs_blocks(&self, parent: &Digest) -> bool {
        let uncommitted = self
            .tree
            .path_to_root(parent)
            .is_some_and(|path| path.iter().any(|b| !b.payload.is_empty()));
        let near = self.tree.get(parent).is_some_and(|p| {
            !p.payload.is_empty()
                || self
                    .tree
                    .get(&p.header.parent)
                    .is_some_and(|g| !g.payload.is_empty())
        });
        uncommitted || near
    }

    /// Votes for `digest` if it is in the current view and the safety rules
    /// allow; the vote goes to the next leader.
    fn try_vote(&mut self, digest: &Digest) {
        let Some(block) = self.tree.get_extendable(digest) else {
            return;
        };
        if block.view() != self.view || *digest == self.tree.root_digest() {
            return;
        }
        // Checked here because the parent may have been missing when the
        // proposal arrived (`None`: too little history here to judge).
        if self
            .expected_leader(block)
            .is_some_and(|l| l != block.author())
        {
            return;
        }
        let next_leader = self
            .leader_after(block)
            .unwrap_or_else(|| self.leaders.leader(block.view() + 1));
        let already_voted = self
            .safety
            .data()
            .last_vote
            .as_ref()
            .is_some_and(|v| v.view == block.view() && v.block == *digest);
        // A leader's own proposal was built to the rule from the same lists
        // (`required`): checking it again would verify them twice.
        let own = block.author() == self.me;
        if self.inclusion_rules.is_some() && !already_voted && !own {
            if self.inclusion_refused.contains(digest) {
                return;
            }
            if self.check_inclusion(block).is_err() {
                self.stats.refused_votes += 1;
                self.stats.inclusion_refusals += 1;
                self.inclusion_refused.insert(*digest);
                return;
            }
        }
        let view = block.view();
        match self.safety.vote(block) {
            Ok(Signed::New {
                mut message,
                persist,
            }) => {
                self.stats.votes += 1;
                // The block first: a QC may certify it while this node and
                // every other holder are down (more than f crashes).
                self.out.push(Action::PersistBlock(Box::new(block.clone())));
                self.out.push(Action::Persist(persist));
                message.inclusion = self.own_list(view);
                self.send(next_leader, Message::Vote(message));
            }
            Ok(Signed::Repeat(mut message)) => {
                message.inclusion = self.own_list(view);
                self.send(next_leader, Message::Vote(message))
            }
            Err(_) => self.stats.refused_votes += 1,
        }
    }

    // ----- fetching ------------------------------------------------------------

    fn fetch(&mut self, digest: Digest, peer: NodeIndex) {
        if self.fetching.contains_key(&digest) || self.fetching.len() >= MAX_FETCHES {
            return;
        }
        let peer = if peer == self.me {
            self.next_peer(peer, 1)
        } else {
            peer
        };
        self.fetching.insert(
            digest,
            Fetch {
                requested_at_ms: self.now_ms,
                attempt: 0,
                first_peer: peer,
            },
        );
        self.stats.fetches += 1;
        self.out.push(Action::FetchBlock { digest, from: peer });
    }

    /// Re-asks another peer for blocks not received within the retry delay;
    /// gives up after asking every peer three times.
    fn retry_fetches(&mut self) {
        if self.fetching.is_empty() {
            return;
        }
        let n = self.committee.size() as u16;
        let retry_ms = self.config.fetch_retry_ms;
        let now = self.now_ms;
        let mut retries = Vec::new();
        self.fetching.retain(|digest, fetch| {
            if now < fetch.requested_at_ms + retry_ms {
                return true;
            }
            fetch.attempt += 1;
            fetch.requested_at_ms = now;
            retries.push((*digest, fetch.first_peer, fetch.attempt));
            fetch.attempt < 3 * n
        });
        // HashMap order is random per process: sort so that the actions
        // (and a simulation trace) are a function of the inputs alone.
        retries.sort_by_key(|(digest, _, _)| *digest);
        for (digest, first, attempt) in retries {
            let peer = self.next_peer(first, attempt);
            self.out.push(Action::FetchBlock { digest, from: peer });
        }
    }

    /// The peer `offset` places after `start`, skipping this node.
    fn next_peer(&self, start: NodeIndex, offset: u16) -> NodeIndex {
        let n = self.committee.size() as u32;
        if n <= 1 {
            return start;
        }
        let mut peer = ((u32::from(start) + u32::from(offset)) % n) as NodeIndex;
        if peer == self.me {
            peer = ((u32::from(peer) + 1) % n) as NodeIndex;
        }
        peer
    }

    // ----- output ----------------------------------------------------------------

    fn send(&mut self, to: NodeIndex, message: Message) {
        if to == self.me {
            self.inbox.push_back(message);
        } else {
            self.out.push(Action::Send { to, message });
        }
    }

    fn broadcast(&mut self, message: Message) {
        self.inbox.push_back(message.clone());
        self.out.push(Action::Broadcast { message });
    }

    fn fault(&mut self, peer: NodeIndex, fault: Fault) {
        self.stats.faults += 1;
        self.out.push(Action::Misbehaviour { peer, fault });
    }
}
