//! proptest strategies for every consensus wire type, of any shape (not
//! valid protocol values), shared by the wire property tests of this crate
//! and the node (feature `strategies`).

use ordo_types::strategies::{bytes, digest, signature};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::{
    Block, BlockHeader, CommitCert, CommittedBlock, Message, Payload, QuorumCert, SafetyData,
    Timeout, TimeoutCert, Vote,
};

pub fn header() -> impl Strategy<Value = BlockHeader> {
    (
        any::<u64>(),
        any::<u64>(),
        digest(),
        any::<u64>(),
        digest(),
        any::<u16>(),
    )
        .prop_map(
            |(view, height, parent, parent_view, payload, author)| BlockHeader {
                view,
                height,
                parent,
                parent_view,
                payload,
                author,
            },
        )
}

pub fn qc() -> impl Strategy<Value = QuorumCert> {
    (
        any::<u64>(),
        digest(),
        vec((any::<u16>(), signature()), 0..8),
    )
        .prop_map(|(view, block, votes)| QuorumCert { view, block, votes })
}

pub fn tc() -> impl Strategy<Value = TimeoutCert> {
    (
        any::<u64>(),
        qc(),
        vec((any::<u16>(), any::<u64>(), signature()), 0..8),
    )
        .prop_map(|(view, high_qc, signers)| TimeoutCert {
            view,
            high_qc,
            signers,
        })
}

pub fn vote() -> impl Strategy<Value = Vote> {
    (
        any::<u64>(),
        digest(),
        any::<u16>(),
        signature(),
        option::of(bytes(64)),
    )
        .prop_map(|(view, block, author, signature, inclusion)| Vote {
            view,
            block,
            author,
            signature,
            inclusion,
        })
}

pub fn timeout() -> impl Strategy<Value = Timeout> {
    (
        any::<u64>(),
        qc(),
        any::<u16>(),
        signature(),
        option::of(bytes(64)),
    )
        .prop_map(|(view, high_qc, author, signature, inclusion)| Timeout {
            view,
            high_qc,
            author,
            signature,
            inclusion,
        })
}

pub fn payload() -> impl Strategy<Value = Payload> {
    vec(bytes(64), 0..6).prop_map(|items| Payload { items })
}

pub fn block() -> impl Strategy<Value = Block> {
    (
        header(),
        qc(),
        option::of(tc()),
        payload(),
        vec(bytes(32), 0..4),
        signature(),
    )
        .prop_map(
            |(header, parent_qc, tc, payload, inclusion, signature)| Block {
                header,
                parent_qc,
                tc,
                payload,
                inclusion,
                signature,
            },
        )
}

pub fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        block().prop_map(|b| Message::Proposal(Box::new(b))),
        vote().prop_map(Message::Vote),
        timeout().prop_map(|t| Message::Timeout(Box::new(t))),
        tc().prop_map(|t| Message::Tc(Box::new(t))),
        qc().prop_map(|q| Message::Qc(Box::new(q))),
        digest().prop_map(Message::BlockRequest),
        block().prop_map(|b| Message::BlockResponse(Box::new(b))),
    ]
}

pub fn commit_cert() -> impl Strategy<Value = CommitCert> {
    (vec(header(), 0..4), qc()).prop_map(|(chain, qc)| CommitCert { chain, qc })
}

pub fn committed_block() -> impl Strategy<Value = CommittedBlock> {
    (block(), commit_cert()).prop_map(|(block, cert)| CommittedBlock { block, cert })
}

pub fn safety_data() -> impl Strategy<Value = SafetyData> {
    (
        any::<u64>(),
        any::<u64>(),
        option::of(qc()),
        any::<u64>(),
        option::of(tc()),
        option::of(vote()),
        option::of(timeout()),
    )
        .prop_map(
            |(
                last_voted_view,
                highest_qc_view,
                highest_qc,
                highest_timeout_view,
                highest_tc,
                last_vote,
                last_timeout,
            )| SafetyData {
                last_voted_view,
                highest_qc_view,
                highest_qc,
                highest_timeout_view,
                highest_tc,
                last_vote,
                last_timeout,
            },
        )
}
