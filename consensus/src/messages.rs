//! What consensus nodes say to each other, and what they output.
//!
//! Signed messages are domain-separated digests: a signature made for one kind
//! of message can never be replayed as another.

use ordo_types::{Digest, NodeIndex, Signature};
use serde::{Deserialize, Serialize};

/// A consensus round. View 0 belongs to the genesis block.
pub type View = u64;
/// Position of a block in the chain; genesis is height 0.
pub type Height = u64;

/// One opaque payload item (the mempool puts an encoded batch certificate
/// here). Consensus only counts, sizes and hashes them.
pub type PayloadItem = Vec<u8>;

/// An opaque, separately signed inclusion list (the mempool encodes its
/// `InclusionList` here). Consensus only carries it from votes and timeouts
/// to the next leader's proposal; [`crate::InclusionRules`] interprets it.
pub type InclusionAttachment = Vec<u8>;

/// The digest a block header names as its payload: the payload itself and,
/// when there are any, the inclusion lists its leader attached. With no
/// lists it is exactly [`Payload::digest`], so blocks without lists (rule
/// off, genesis) keep their old digests. Covering the lists by the header
/// (and so by the block digest, the proposal signature and every QC) means
/// nobody can swap a block's lists after the fact: every replica judges the
/// inclusion rule on the same bytes.
pub fn payload_digest(payload: &Payload, inclusion: &[InclusionAttachment]) -> Digest {
    let items = payload.digest();
    if inclusion.is_empty() {
        return items;
    }
    let mut h = Digest::hasher("ordo-payload-inclusion");
    h.update(items.as_bytes())
        .update_u64(inclusion.len() as u64);
    for list in inclusion {
        h.update_u64(list.len() as u64).update(list);
    }
    h.finalize()
}

/// The ordered payload of a block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub items: Vec<PayloadItem>,
}

impl Payload {
    pub fn digest(&self) -> Digest {
        let mut h = Digest::hasher("ordo-payload");
        h.update_u64(self.items.len() as u64);
        for item in &self.items {
            h.update_u64(item.len() as u64).update(item);
        }
        h.finalize()
    }

    pub fn byte_size(&self) -> usize {
        self.items.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Everything about a block that its digest covers. Headers alone are enough
/// to check a commit certificate, so rollups never need the payload of the
/// blocks that certify theirs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    pub view: View,
    pub height: Height,
    /// Digest of the parent block, certified by the block's `parent_qc`.
    pub parent: Digest,
    pub parent_view: View,
    pub payload: Digest,
    pub author: NodeIndex,
}

impl BlockHeader {
    pub fn digest(&self) -> Digest {
        Digest::hasher("ordo-block")
            .update_u64(self.view)
            .update_u64(self.height)
            .update(self.parent.as_bytes())
            .update_u64(self.parent_view)
            .update(self.payload.as_bytes())
            .update_u64(u64::from(self.author))
            .finalize()
    }
}

/// A proposal: a header, the QC of its parent, the TC that justifies its view
/// when the previous view failed, the payload and the author's signature over
/// the header digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub parent_qc: QuorumCert,
    pub tc: Option<TimeoutCert>,
    pub payload: Payload,
    /// The inclusion lists (for the previous view) the leader used; covered
    /// by `header.payload` (see [`payload_digest`]).
    #[serde(default)]
    pub inclusion: Vec<InclusionAttachment>,
    pub signature: Signature,
}

impl Block {
    /// The genesis block of a committee: view 0, height 0, never signed. Its
    /// parent field names the committee so chains of different committees
    /// never share a block.
    pub fn genesis(committee: Digest) -> Block {
        let payload = Payload::default();
        Block {
            header: BlockHeader {
                view: 0,
                height: 0,
                parent: committee,
                parent_view: 0,
                payload: payload.digest(),
                author: 0,
            },
            parent_qc: QuorumCert {
                view: 0,
                block: committee,
                votes: Vec::new(),
            },
            tc: None,
            payload,
            inclusion: Vec::new(),
            signature: Signature::ZERO,
        }
    }

    pub fn digest(&self) -> Digest {
        self.header.digest()
    }

    pub fn view(&self) -> View {
        self.header.view
    }

    pub fn height(&self) -> Height {
        self.header.height
    }

    pub fn author(&self) -> NodeIndex {
        self.header.author
    }
}

/// The message a proposal's author signs.
pub fn proposal_message(block: &Digest) -> Vec<u8> {
    Digest::hasher("ordo-proposal")
        .update(block.as_bytes())
        .finalize()
        .0
        .to_vec()
}

/// The message a voter signs: the block digest and its view.
pub fn vote_message(view: View, block: &Digest) -> Vec<u8> {
    Digest::hasher("ordo-vote")
        .update_u64(view)
        .update(block.as_bytes())
        .finalize()
        .0
        .to_vec()
}

/// The message a node signs when it gives up on `view`, naming the view of
/// the highest QC it holds.
pub fn timeout_message(view: View, high_qc_view: View) -> Vec<u8> {
    Digest::hasher("ordo-timeout")
        .update_u64(view)
        .update_u64(high_qc_view)
        .finalize()
        .0
        .to_vec()
}

/// A vote for a block, sent to the leader of the next view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub view: View,
    pub block: Digest,
    pub author: NodeIndex,
    pub signature: Signature,
    /// The voter's inclusion list for `view` (separately signed, not
    /// covered by `signature`); `None` when the rule is off.
    #[serde(default)]
    pub inclusion: Option<InclusionAttachment>,
}

/// A quorum certificate: `2f+1` distinct votes for one block in one view,
/// sorted by signer. The genesis QC has no votes and is valid only as itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumCert {
    pub view: View,
    pub block: Digest,
    pub votes: Vec<(NodeIndex, Signature)>,
}

/// A node's timeout for a view, carrying its highest QC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeout {
    pub view: View,
    pub high_qc: QuorumCert,
    pub author: NodeIndex,
    pub signature: Signature,
    /// The signer's inclusion list for `view`, as in [`Vote::inclusion`].
    #[serde(default)]
    pub inclusion: Option<InclusionAttachment>,
}

/// A timeout certificate: `2f+1` distinct timeouts for one view, each with
/// the view of the signer's highest QC; carries a QC at least as high as all
/// of those, so the next leader can always extend it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutCert {
    pub view: View,
    pub high_qc: QuorumCert,
    pub signers: Vec<(NodeIndex, View, Signature)>,
}

impl TimeoutCert {
    /// The highest QC view any signer reported.
    pub fn max_qc_view(&self) -> View {
        self.signers.iter().map(|(_, v, _)| *v).max().unwrap_or(0)
    }
}

/// Every consensus message on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Proposal(Box<Block>),
    Vote(Vote),
    Timeout(Box<Timeout>),
    Tc(Box<TimeoutCert>),
    Qc(Box<QuorumCert>),
    /// Asks a peer for a block it holds (uncommitted or recently committed).
    BlockRequest(Digest),
    BlockResponse(Box<Block>),
}

/// Proof that a block is committed: the headers from the block's child up to
/// a block `B'`, and a QC for `B'`, where `B'` directly follows its parent
/// (`B'.view == parent.view + 1`). That is the 2-chain commit rule, and a
/// rollup can check it with the committee alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCert {
    pub chain: Vec<BlockHeader>,
    pub qc: QuorumCert,
}

/// A committed block with its certificate, in strict height order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedBlock {
    pub block: Block,
    pub cert: CommitCert,
}
