//! Byzantine nodes: a real [`ordo_consensus::Core`] whose inputs and
//! outputs are tampered with. A Byzantine node only ever signs with its own
//! key (even though the simulated scheme would let it forge others'): the
//! point is to test the protocol, not the signature scheme.
//!
//! Every Byzantine node also runs a real mempool, untouched (a silent node's
//! sends are dropped, mempool ones too): the behaviours tamper with
//! consensus.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use ordo_consensus::messages::{payload_digest, proposal_message, timeout_message, vote_message};
use ordo_consensus::{
    Action, Block, Event, LeaderElection, Message, QuorumCert, RoundRobin, Timeout, TimeoutCert,
    View, Vote,
};
use ordo_types::{Committee, Digest, Keypair, NodeIndex, Signature};

use crate::rng::Rng;
use crate::scenario::{Behaviour, ByzantineSpec};

/// Marker item that makes an equivocating leader's second proposal differ
/// when it knows no certificate to add or drop (not a certificate, so no
/// honest node votes for that block).
const EQUIVOCATION_MARKER: &[u8] = b"equivocal";
/// Views used by the flood: far beyond anything legitimate.
const ABSURD_VIEW: View = 1 << 40;
/// Old messages a replaying node remembers.
const REPLAY_MEMORY: usize = 256;

pub struct Byzantine {
    spec: ByzantineSpec,
    me: NodeIndex,
    keypair: Keypair,
    committee: Arc<Committee>,
    leaders: RoundRobin,
    rng: Rng,
    /// Equivocate: valid votes received as a next leader, per (view, block).
    votes: BTreeMap<(View, Digest), BTreeMap<NodeIndex, Signature>>,
    qcs_formed: HashSet<(View, Digest)>,
    /// Double vote: views already double-voted in.
    double_voted: HashSet<(View, Digest)>,
    history: VecDeque<Message>,
    /// Equivocate: the last payload item its mempool offered, to make a
    /// second proposal that is just as valid.
    spare: Option<Vec<u8>>,
}

impl Byzantine {
    pub fn new(
        spec: ByzantineSpec,
        keypair: Keypair,
        committee: Arc<Committee>,
        seed: u64,
    ) -> Self {
        Byzantine {
            me: spec.node,
            leaders: RoundRobin::new(committee.size()),
            rng: Rng::fork(seed, 0xB12 + u64::from(spec.node)),
            spec,
            keypair,
            committee,
            votes: BTreeMap::new(),
            qcs_formed: HashSet::new(),
            double_voted: HashSet::new(),
            history: VecDeque::new(),
            spare: None,
        }
    }

    pub fn behaviour(&self) -> Behaviour {
        self.spec.behaviour
    }

    /// Period of injected messages, for behaviours that inject.
    pub fn tick_every_ms(&self) -> Option<u64> {
        matches!(self.spec.behaviour, Behaviour::Flood | Behaviour::Replay)
            .then_some(self.spec.every_ms)
    }

    /// Tampers with an input before the core sees it; `extra` collects
    /// actions the tampering itself causes. `censored(item)`: whether a
    /// payload item (a batch certificate) holds a victim's transaction.
    pub fn on_input(
        &mut self,
        event: Event,
        extra: &mut Vec<Action>,
        censored: &dyn Fn(&[u8]) -> bool,
    ) -> Option<Event> {
        match (self.spec.behaviour, event) {
            (Behaviour::Censor, Event::PayloadAvailable(items)) => {
                let kept: Vec<_> = items.into_iter().filter(|i| !censored(i)).collect();
                (!kept.is_empty()).then_some(Event::PayloadAvailable(kept))
            }
            (Behaviour::Equivocate, Event::PayloadAvailable(items)) => {
                if let Some(last) = items.last() {
                    self.spare = Some(last.clone());
                }
                Some(Event::PayloadAvailable(items))
            }
            (Behaviour::Equivocate, Event::Message { from, message }) => {
                if let Message::Vote(vote) = &message {
                    self.collect_vote(from, vote, extra);
                }
                Some(Event::Message { from, message })
            }
            (Behaviour::DoubleVote, Event::Message { from, message }) => {
                if let Message::Proposal(block) = &message {
                    self.double_vote(block, extra);
                }
                Some(Event::Message { from, message })
            }
            (Behaviour::Replay, Event::Message { from, message }) => {
                self.remember(&message);
                Some(Event::Message { from, message })
            }
            (_, event) => Some(event),
        }
    }

    /// Tampers with the core's outputs.
    pub fn on_output(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut out = Vec::with_capacity(actions.len());
        for action in actions {
            match (self.spec.behaviour, action) {
                (Behaviour::Silent, Action::Send { .. } | Action::Broadcast { .. }) => {}
                (Behaviour::Silent, Action::FetchBlock { .. }) => {}
                (
                    Behaviour::WithholdVotes,
                    Action::Send {
                        message: Message::Vote(_),
                        ..
                    },
                ) => {}
                (Behaviour::Equivocate, Action::Broadcast { message }) => match message {
                    Message::Proposal(block) if block.author() == self.me => {
                        self.equivocate(*block, &mut out)
                    }
                    message => out.push(Action::Broadcast { message }),
                },
                (Behaviour::InvalidSignatures, Action::Send { to, message }) => {
                    out.push(Action::Send {
                        to,
                        message: corrupt(message),
                    })
                }
                (Behaviour::InvalidSignatures, Action::Broadcast { message }) => {
                    out.push(Action::Broadcast {
                        message: corrupt(message),
                    })
                }
                (Behaviour::Replay, action) => {
                    if let Action::Send { message, .. } | Action::Broadcast { message } = &action {
                        self.remember(message);
                    }
                    out.push(action);
                }
                (_, action) => out.push(action),
            }
        }
        out
    }

    /// Injected messages, every `every_ms`.
    pub fn on_tick(&mut self, view: View) -> Vec<Action> {
        match self.spec.behaviour {
            Behaviour::Flood => self.flood(view),
            Behaviour::Replay => {
                let n = self.committee.size() as u64;
                let mut out = Vec::new();
                for _ in 0..4 {
                    if self.history.is_empty() {
                        break;
                    }
                    let k = self.rng.range(0, self.history.len() as u64 - 1) as usize;
                    let to = self.rng.range(0, n - 1) as NodeIndex;
                    if to != self.me {
                        out.push(Action::Send {
                            to,
                            message: self.history[k].clone(),
                        });
                    }
                }
                out
            }
            _ => Vec::new(),
        }
    }

    fn remember(&mut self, message: &Message) {
        if self.history.len() >= REPLAY_MEMORY {
            // Keep old messages around: replace a random one.
            let k = self.rng.range(0, REPLAY_MEMORY as u64 - 1) as usize;
            self.history[k] = message.clone();
        } else {
            self.history.push_back(message.clone());
        }
    }

    fn sign_vote(&self, view: View, block: Digest) -> Vote {
        Vote {
            view,
            block,
            author: self.me,
            signature: self.keypair.sign(&vote_message(view, &block)),
            inclusion: None,
        }
    }

    /// Sends `A` to one half of the others and a conflicting `B` to the
    /// other half (or both to everyone), and votes for `B` too. `B` is as
    /// valid as `A`: its payload is `A`'s less the last certificate or, if
    /// `A`'s is empty, a certificate its mempool offered earlier (a marker
    /// that is no certificate only if it knows none).
    fn equivocate(&mut self, a: Block, out: &mut Vec<Action>) {
        let mut b = a.clone();
        if b.payload.items.pop().is_none() {
            let extra = self.spare.clone();
            b.payload
                .items
                .push(extra.unwrap_or_else(|| EQUIVOCATION_MARKER.to_vec()));
        }
        b.header.payload = payload_digest(&b.payload, &b.inclusion);
        b.signature = self.keypair.sign(&proposal_message(&b.digest()));
        let view = a.view();
        let next = self
            .leaders
            .leader_after(&[&a])
            .unwrap_or_else(|| self.leaders.leader(view + 1));
        let vote_b = self.sign_vote(view, b.digest());
        if next == self.me {
            self.add_vote(&vote_b, out);
        } else {
            out.push(Action::Send {
                to: next,
                message: Message::Vote(vote_b),
            });
        }
        let others: Vec<NodeIndex> = self.committee.indices().filter(|i| *i != self.me).collect();
        let half = others.len() / 2;
        for (k, to) in others.into_iter().enumerate() {
            if self.spec.to_all {
                for block in [&a, &b] {
                    out.push(Action::Send {
                        to,
                        message: Message::Proposal(Box::new(block.clone())),
                    });
                }
            } else {
                let block = if k < half { &a } else { &b };
                out.push(Action::Send {
                    to,
                    message: Message::Proposal(Box::new(block.clone())),
                });
            }
        }
    }

    /// As the next leader, forms a QC for every block that gathers a quorum
    /// (an honest aggregator forms at most one per view) and broadcasts it.
    fn collect_vote(&mut self, from: NodeIndex, vote: &Vote, out: &mut Vec<Action>) {
        // Votes reach this node only where it is the next leader (under
        // any election), so it collects whatever it receives.
        if from != vote.author {
            return;
        }
        let message = vote_message(vote.view, &vote.block);
        if self
            .committee
            .verify(vote.author, &message, &vote.signature)
            .is_err()
        {
            return;
        }
        let own = self.sign_vote(vote.view, vote.block);
        self.add_vote(&own, out);
        self.add_vote(vote, out);
    }

    fn add_vote(&mut self, vote: &Vote, out: &mut Vec<Action>) {
        let key = (vote.view, vote.block);
        if self.qcs_formed.contains(&key) {
            return;
        }
        let votes = self.votes.entry(key).or_default();
        votes.insert(vote.author, vote.signature);
        if votes.len() >= self.committee.quorum() {
            let qc = QuorumCert {
                view: vote.view,
                block: vote.block,
                votes: votes.iter().map(|(i, s)| (*i, *s)).collect(),
            };
            self.qcs_formed.insert(key);
            out.push(Action::Broadcast {
                message: Message::Qc(Box::new(qc)),
            });
        }
        // Bound memory: forget views far behind.
        while self.votes.len() > 4_096 {
            self.votes.pop_first();
        }
    }

    /// Votes for every proposal seen, and for a made-up block as well.
    fn double_vote(&mut self, block: &Block, out: &mut Vec<Action>) {
        let view = block.view();
        let next = self
            .leaders
            .leader_after(&[block])
            .unwrap_or_else(|| self.leaders.leader(view + 1));
        if !self.double_voted.insert((view, block.digest())) {
            return;
        }
        let fake = Digest::hasher("ordo-sim-fake-block")
            .update_u64(view)
            .finalize();
        for digest in [block.digest(), fake] {
            out.push(Action::Send {
                to: next,
                message: Message::Vote(self.sign_vote(view, digest)),
            });
        }
        if self.double_voted.len() > 4_096 {
            self.double_voted.clear();
        }
    }

    /// Timeouts, QCs and TCs for absurd views, with made-up signatures for
    /// everyone but itself.
    fn flood(&mut self, view: View) -> Vec<Action> {
        let jump = ABSURD_VIEW + self.rng.range(0, 1 << 20);
        let garbage = |k: u64| {
            let mut s = [0u8; 64];
            s[..8].copy_from_slice(&k.to_le_bytes());
            Signature(s)
        };
        let quorum = self.committee.quorum() as NodeIndex;
        let bogus_qc = QuorumCert {
            view: jump - 1,
            block: Digest::hasher("ordo-sim-bogus").update_u64(jump).finalize(),
            votes: (0..quorum).map(|i| (i, garbage(u64::from(i)))).collect(),
        };
        let timeout = Timeout {
            view: jump,
            high_qc: bogus_qc.clone(),
            author: self.me,
            signature: self.keypair.sign(&timeout_message(jump, bogus_qc.view)),
            inclusion: None,
        };
        // A near-future timeout too: within max_view_ahead, so it reaches
        // the QC check rather than the view bound.
        let near = view + 3;
        let near_qc = QuorumCert {
            view: near - 1,
            ..bogus_qc.clone()
        };
        let near_timeout = Timeout {
            view: near,
            high_qc: near_qc.clone(),
            author: self.me,
            signature: self.keypair.sign(&timeout_message(near, near_qc.view)),
            inclusion: None,
        };
        let tc = TimeoutCert {
            view: jump,
            high_qc: bogus_qc.clone(),
            signers: (0..quorum)
                .map(|i| (i, bogus_qc.view, garbage(u64::from(i) + 7)))
                .collect(),
        };
        vec![
            Action::Broadcast {
                message: Message::Timeout(Box::new(timeout)),
            },
            Action::Broadcast {
                message: Message::Timeout(Box::new(near_timeout)),
            },
            Action::Broadcast {
                message: Message::Qc(Box::new(bogus_qc)),
            },
            Action::Broadcast {
                message: Message::Tc(Box::new(tc)),
            },
        ]
    }
}

/// The message with its signature flipped (for what carries one).
fn corrupt(message: Message) -> Message {
    let flip = |s: &mut Signature| s.0[0] ^= 0xFF;
    match message {
        Message::Proposal(mut b) => {
            flip(&mut b.signature);
            Message::Proposal(b)
        }
        Message::Vote(mut v) => {
            flip(&mut v.signature);
            Message::Vote(v)
        }
        Message::Timeout(mut t) => {
            flip(&mut t.signature);
            Message::Timeout(t)
        }
        other => other,
    }
}
