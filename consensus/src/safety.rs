//! The one place that decides whether this node may sign a vote or a timeout.
//!
//! These are the 2-chain HotStuff safety rules of Jolteon (Gelashvili et al.,
//! "Jolteon and Ditto", FC 2022), in the form of aptos-core's
//! `safety_rules_2chain.rs`. [`SafetyRules`] owns the signing key for votes
//! and timeouts, so no other code can produce either. Every signature it
//! releases comes with the [`SafetyData`] that must be durable before the
//! signed message leaves the node; a re-sent vote or timeout for the same
//! view is the stored one, never a fresh signature.
//!
//! **Safety here, validity and liveness in the core.** The rules take
//! genuine certificates as given: the QC and TC a block carries and every
//! QC passed to [`SafetyRules::observe_qc`] or [`SafetyRules::timeout`] have
//! been verified by the core (`Core::validate_block`, `on_qc`, `on_tc`,
//! `on_timeout`) before they reach here; a forged QC could fake a lock or a
//! 2-chain. Given that, the rules below are the complete set agreement
//! depends on: no two conflicting blocks can both commit as long as every
//! honest node signs only what they allow. The core applies further checks
//! before it *asks* for a signature; none of them is needed for safety (a
//! node that skipped them would still never sign two votes in a view, a
//! vote at or below its last voted view, or a timeout below its lock).
//! They decide whether signing is useful or fair, not whether it is safe:
//!
//! - *Validity of the proposal* beyond its certificates
//!   (`Core::validate_block`, on receipt): the author is a member and the
//!   expected leader, its signature, the payload's bounds, digest and
//!   rules. An invalid block is never inserted, so never offered here.
//! - *Vote only in the current view, for a block in the tree whose leader
//!   is the expected one* (`Core::try_vote`): the leader is checked again
//!   once the parent arrives. A vote in an older view (above
//!   `last_voted_view`) would be safe but useless: its QC would be stale.
//!   Leader election is a liveness matter (who proposes), judged from the
//!   chain, which the rules here do not hold.
//! - *The inclusion rule* (`Core::try_vote`, [`crate::InclusionRules`]):
//!   censorship resistance. It refuses votes only, so it can cost a view,
//!   never safety.
//! - *When to time out* (`Core::on_view_timer`, and joining after `f + 1`
//!   timeouts in `Core::on_timeout`): the pacemaker. The timeout rule
//!   below still decides whether the timeout may be signed.
//!
//! The one pure rule the core also uses on its own is [`SafetyRules::safe_to_vote`]:
//! a proposal that breaks it is reported as misbehaviour on receipt
//! (`Fault::UnsafeProposal`), since no honest replica could vote for it.

use ordo_types::{Keypair, NodeIndex};
use serde::{Deserialize, Serialize};

use crate::messages::{
    timeout_message, vote_message, Block, QuorumCert, Timeout, TimeoutCert, View, Vote,
};

/// What a node must remember across restarts to never contradict itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyData {
    /// The highest view this node voted or timed out in. It never votes in
    /// this view or below again.
    pub last_voted_view: View,
    /// The highest view of a QC this node has seen (the 2-chain lock): any
    /// timeout it signs carries a QC at least this high.
    pub highest_qc_view: View,
    /// The QC whose view is `highest_qc_view` (`None` only while the lock is
    /// the genesis QC, or in data written before this field existed). A
    /// restarted node resumes from it, so that it can still sign a timeout
    /// that respects its lock, and extend the block it certifies.
    pub highest_qc: Option<QuorumCert>,
    /// The highest view this node timed out in.
    pub highest_timeout_view: View,
    /// The highest TC this node held when it signed a timeout (the one that
    /// justified a timeout right after a TC). A restarted node resumes after
    /// it: if a quorum timed out after a TC and then all restarted, nobody
    /// could rebuild that TC, and their stored timeouts are for the view
    /// after it.
    pub highest_tc: Option<TimeoutCert>,
    /// The last vote signed, re-sent as is if asked for the same view.
    pub last_vote: Option<Vote>,
    /// The last timeout signed, re-sent as is for the same view.
    pub last_timeout: Option<Timeout>,
}

/// A signature the rules allowed. Returned once per signature, so the size
/// difference between the variants does not matter.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Signed<T> {
    /// Newly signed: `persist` must be durable before `message` leaves.
    New { message: T, persist: SafetyData },
    /// The message signed before for this view, unchanged; nothing new to
    /// persist.
    Repeat(T),
}

/// Why the rules refused to sign. Refusals are normal (late messages, a
/// view already voted in); whether the input was also misbehaviour is the
/// caller's judgement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("already voted for another block in view {0}")]
    AlreadyVoted(View),
    #[error("view {view} is not above the last voted view {last_voted}")]
    NotAboveLastVoted { view: View, last_voted: View },
    #[error("view {view} neither follows its QC (view {qc_view}) nor a TC that allows it")]
    NotSafeToVote { view: View, qc_view: View },
    #[error("timeout for view {view} is below the last voted view {last_voted}")]
    TimeoutBelowLastVoted { view: View, last_voted: View },
    #[error("timeout would carry QC view {qc_view}, below the lock {lock}")]
    TimeoutBelowLock { qc_view: View, lock: View },
    #[error("timeout for view {view} follows neither its QC nor a TC")]
    TimeoutNotJustified { view: View },
}

/// The safety rules and the key they guard.
pub struct SafetyRules {
    me: NodeIndex,
    keypair: Keypair,
    data: SafetyData,
    test_only_break_vote_rule: bool,
}

impl SafetyRules {
    pub fn new(me: NodeIndex, keypair: Keypair, data: SafetyData) -> Self {
        SafetyRules {
            me,
            keypair,
            data,
            test_only_break_vote_rule: false,
        }
    }

    /// **Test only: breaks safety.** Skips vote rule 1 (see
    /// [`crate::Config::test_only_break_vote_rule`]).
    pub fn test_only_break_vote_rule(&mut self) {
        self.test_only_break_vote_rule = true;
    }

    pub fn data(&self) -> &SafetyData {
        &self.data
    }

    /// **Lock update.** `highest_qc_view := max(highest_qc_view, qc.view)`
    /// for every valid QC observed; when the view rises, `highest_qc := qc`
    /// (the lock's view and object always match). The caller has verified
    /// `qc`. It is persisted with the next signature.
    pub fn observe_qc(&mut self, qc: &QuorumCert) {
        if qc.view > self.data.highest_qc_view {
            self.data.highest_qc_view = qc.view;
            self.data.highest_qc = Some(qc.clone());
        }
    }

    /// **Vote rule.** Vote for block `B` only if
    /// 1. `B.view > last_voted_view` (at most one vote per view, views only
    ///    increase), and
    /// 2. `B.view == B.qc.view + 1`, or `B` carries a TC with
    ///    `B.view == TC.view + 1` and `B.qc.view >= max QC view in TC`.
    ///
    /// A vote already signed for `B` in `B.view` is returned as is.
    pub fn vote(&mut self, block: &Block) -> Result<Signed<Vote>, Refusal> {
        let view = block.view();
        let digest = block.digest();
        if self.test_only_break_vote_rule {
            Self::safe_to_vote(block)?;
            return self.sign_vote(block);
        }
        if let Some(vote) = &self.data.last_vote {
            if vote.view == view {
                return if vote.block == digest {
                    Ok(Signed::Repeat(vote.clone()))
                } else {
                    Err(Refusal::AlreadyVoted(view))
                };
            }
        }
        if view <= self.data.last_voted_view {
            return Err(Refusal::NotAboveLastVoted {
                view,
                last_voted: self.data.last_voted_view,
            });
        }
        Self::safe_to_vote(block)?;
        self.sign_vote(block)
    }

    fn sign_vote(&mut self, block: &Block) -> Result<Signed<Vote>, Refusal> {
        let view = block.view();
        let digest = block.digest();
        self.observe_qc(&block.parent_qc);
        self.data.last_voted_view = self.data.last_voted_view.max(view);
        let vote = Vote {
            view,
            block: digest,
            author: self.me,
            signature: self.keypair.sign(&vote_message(view, &digest)),
            inclusion: None,
        };
        self.data.last_vote = Some(vote.clone());
        Ok(Signed::New {
            message: vote,
            persist: self.data.clone(),
        })
    }

    /// Rule 2 of [`Self::vote`], a pure function of the block: either the
    /// block directly extends its QC, or a TC for the previous view allows
    /// it and its QC is at least as high as any QC the TC's signers held.
    pub fn safe_to_vote(block: &Block) -> Result<(), Refusal> {
        let view = block.view();
        let qc_view = block.parent_qc.view;
        if view == qc_view + 1 {
            return Ok(());
        }
        match &block.tc {
            Some(tc) if view == tc.view + 1 && qc_view >= tc.max_qc_view() => Ok(()),
            _ => Err(Refusal::NotSafeToVote { view, qc_view }),
        }
    }

    /// **Timeout rule.** Sign a timeout for `view` carrying `high_qc` only if
    /// 1. `view >= last_voted_view`,
    /// 2. `high_qc.view >= highest_qc_view` (never time out below the lock),
    /// 3. `view == high_qc.view + 1` or `view == high_tc.view + 1` (the view
    ///    was entered legitimately).
    ///
    /// Afterwards `last_voted_view >= view`: the node never votes in `view`;
    /// `highest_tc` keeps `high_tc` if it is higher.
    /// A timeout already signed for `view` is returned as is.
    pub fn timeout(
        &mut self,
        view: View,
        high_qc: &QuorumCert,
        high_tc: Option<&TimeoutCert>,
    ) -> Result<Signed<Timeout>, Refusal> {
        if let Some(timeout) = &self.data.last_timeout {
            if timeout.view == view {
                return Ok(Signed::Repeat(timeout.clone()));
            }
        }
        if view < self.data.last_voted_view {
            return Err(Refusal::TimeoutBelowLastVoted {
                view,
                last_voted: self.data.last_voted_view,
            });
        }
        if high_qc.view < self.data.highest_qc_view {
            return Err(Refusal::TimeoutBelowLock {
                qc_view: high_qc.view,
                lock: self.data.highest_qc_view,
            });
        }
        let after_tc = high_tc.is_some_and(|tc| view == tc.view + 1);
        if view != high_qc.view + 1 && !after_tc {
            return Err(Refusal::TimeoutNotJustified { view });
        }
        self.observe_qc(high_qc);
        if let Some(tc) = high_tc {
            if self
                .data
                .highest_tc
                .as_ref()
                .is_none_or(|h| tc.view > h.view)
            {
                self.data.highest_tc = Some(tc.clone());
            }
        }
        self.data.last_voted_view = view;
        self.data.highest_timeout_view = self.data.highest_timeout_view.max(view);
        let timeout = Timeout {
            view,
            high_qc: high_qc.clone(),
            author: self.me,
            signature: self.keypair.sign(&timeout_message(view, high_qc.view)),
            inclusion: None,
        };
        self.data.last_timeout = Some(timeout.clone());
        Ok(Signed::New {
            message: timeout,
            persist: self.data.clone(),
        })
    }
}
