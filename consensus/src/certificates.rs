//! Checking QCs, TCs and commit certificates against a committee.
//!
//! These are pure functions of the certificate and the committee, shared by
//! the core, the simulator and the rollup client. Signatures are checked with
//! batch verification.

use ordo_types::{Committee, NodeIndex};

use crate::messages::{
    timeout_message, vote_message, Block, BlockHeader, CommitCert, QuorumCert, TimeoutCert,
};
use crate::Fault;

/// Longest header chain a commit certificate may carry. Indirect commits
/// cover the views since the last direct commit; beyond this bound a node
/// would have had to stall for thousands of views.
pub const MAX_COMMIT_CHAIN: usize = 4096;

impl QuorumCert {
    /// The QC of the genesis block: view 0, no votes.
    pub fn genesis(committee: &Committee) -> QuorumCert {
        QuorumCert {
            view: 0,
            block: Block::genesis(committee.digest()).digest(),
            votes: Vec::new(),
        }
    }

    /// A QC is valid if it is the genesis QC, or it holds at least a quorum
    /// of votes from distinct members, sorted by signer, each signing
    /// `vote_message(view, block)`.
    pub fn verify(&self, committee: &Committee) -> Result<(), Fault> {
        if self.view == 0 {
            return if *self == QuorumCert::genesis(committee) {
                Ok(())
            } else {
                Err(Fault::MalformedQc("view 0 is reserved for genesis"))
            };
        }
        check_signers(self.votes.iter().map(|(i, _)| *i), committee).map_err(Fault::MalformedQc)?;
        let message = vote_message(self.view, &self.block);
        let items: Vec<(NodeIndex, &[u8], ordo_types::Signature)> = self
            .votes
            .iter()
            .map(|(i, s)| (*i, message.as_slice(), *s))
            .collect();
        committee
            .verify_many(&items)
            .map_err(|_| Fault::BadSignature("quorum certificate"))
    }
}

impl TimeoutCert {
    /// A TC is valid if a quorum of distinct members, sorted by signer, each
    /// signed `timeout_message(view, qc_view)` with `qc_view < view`, and it
    /// carries a valid QC below `view` and at least as high as every
    /// `qc_view` reported (so the next leader can always extend it).
    pub fn verify(&self, committee: &Committee) -> Result<(), Fault> {
        if self.view == 0 {
            return Err(Fault::MalformedTc("view 0 cannot time out"));
        }
        check_signers(self.signers.iter().map(|(i, _, _)| *i), committee)
            .map_err(Fault::MalformedTc)?;
        if self
            .signers
            .iter()
            .any(|(_, qc_view, _)| *qc_view >= self.view)
        {
            return Err(Fault::MalformedTc(
                "signer reports a QC at or above the TC view",
            ));
        }
        if self.high_qc.view < self.max_qc_view() || self.high_qc.view >= self.view {
            return Err(Fault::MalformedTc(
                "carried QC is below a reported QC or not below the TC",
            ));
        }
        let messages: Vec<Vec<u8>> = self
            .signers
            .iter()
            .map(|(_, qc_view, _)| timeout_message(self.view, *qc_view))
            .collect();
        let items: Vec<(NodeIndex, &[u8], ordo_types::Signature)> = self
            .signers
            .iter()
            .zip(&messages)
            .map(|((i, _, s), m)| (*i, m.as_slice(), *s))
            .collect();
        committee
            .verify_many(&items)
            .map_err(|_| Fault::BadSignature("timeout certificate"))?;
        self.high_qc.verify(committee)
    }
}

impl CommitCert {
    /// Checks that `header` is committed: the chain links `header` to a block
    /// `B'` by parent digests and consecutive heights, `B'` directly follows
    /// its parent (consecutive views: the 2-chain rule), and the QC certifies
    /// `B'` with a quorum of valid signatures.
    pub fn verify(&self, header: &BlockHeader, committee: &Committee) -> Result<(), Fault> {
        if self.chain.is_empty() || self.chain.len() > MAX_COMMIT_CHAIN {
            return Err(Fault::MalformedCommitCert("chain length out of bounds"));
        }
        let mut parent = header;
        let mut parent_digest = header.digest();
        for link in &self.chain {
            if link.parent != parent_digest
                || link.parent_view != parent.view
                || link.height != parent.height + 1
                || link.view <= parent.view
            {
                return Err(Fault::MalformedCommitCert("broken parent link"));
            }
            parent = link;
            parent_digest = link.digest();
        }
        let certified = parent;
        let before = match self.chain.len() {
            1 => header,
            len => &self.chain[len - 2],
        };
        if certified.view != before.view + 1 {
            return Err(Fault::MalformedCommitCert(
                "certified block does not directly follow its parent",
            ));
        }
        if self.qc.block != parent_digest || self.qc.view != certified.view {
            return Err(Fault::MalformedCommitCert("QC certifies another block"));
        }
        if self.qc.view == 0 {
            return Err(Fault::MalformedCommitCert("genesis QC commits nothing"));
        }
        self.qc.verify(committee)
    }
}

/// Signers must be members, strictly increasing (so distinct), and at least
/// a quorum.
fn check_signers(
    signers: impl ExactSizeIterator<Item = NodeIndex>,
    committee: &Committee,
) -> Result<(), &'static str> {
    if signers.len() < committee.quorum() {
        return Err("fewer signers than a quorum");
    }
    if signers.len() > committee.size() {
        return Err("more signers than members");
    }
    let mut previous: Option<NodeIndex> = None;
    for index in signers {
        if usize::from(index) >= committee.size() {
            return Err("signer is not a member");
        }
        if previous.is_some_and(|p| p >= index) {
            return Err("signers not sorted or duplicated");
        }
        previous = Some(index);
    }
    Ok(())
}
