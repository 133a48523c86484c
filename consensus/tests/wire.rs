//! Every consensus wire type round-trips through the codec with generated
//! values of any shape, and neither random bytes nor mutated encodings make
//! the decoder panic: it returns an error or a value that re-encodes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ordo_consensus::testing::Fixture;
use ordo_consensus::{
    Block, BlockHeader, CommitCert, CommittedBlock, Message, Payload, QuorumCert, SafetyData,
    Timeout, TimeoutCert, Vote,
};
use ordo_types::codec::{check_arbitrary_bytes, check_round_trip, decode, encode};
use ordo_types::{Digest, Signature};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

// ----- generated values of every shape ---------------------------------------

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn signature() -> impl Strategy<Value = Signature> {
    any::<([u8; 32], [u8; 32])>().prop_map(|(r, s)| {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r);
        bytes[32..].copy_from_slice(&s);
        Signature(bytes)
    })
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn header() -> impl Strategy<Value = BlockHeader> {
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

fn qc() -> impl Strategy<Value = QuorumCert> {
    (
        any::<u64>(),
        digest(),
        vec((any::<u16>(), signature()), 0..8),
    )
        .prop_map(|(view, block, votes)| QuorumCert { view, block, votes })
}

fn tc() -> impl Strategy<Value = TimeoutCert> {
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

fn vote() -> impl Strategy<Value = Vote> {
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

fn timeout() -> impl Strategy<Value = Timeout> {
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

fn payload() -> impl Strategy<Value = Payload> {
    vec(bytes(64), 0..6).prop_map(|items| Payload { items })
}

fn block() -> impl Strategy<Value = Block> {
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

fn message() -> impl Strategy<Value = Message> {
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

fn commit_cert() -> impl Strategy<Value = CommitCert> {
    (vec(header(), 0..4), qc()).prop_map(|(chain, qc)| CommitCert { chain, qc })
}

fn committed_block() -> impl Strategy<Value = CommittedBlock> {
    (block(), commit_cert()).prop_map(|(block, cert)| CommittedBlock { block, cert })
}

fn safety_data() -> impl Strategy<Value = SafetyData> {
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

/// Byte flips at arbitrary positions of an encoding.
fn flips() -> impl Strategy<Value = Vec<(usize, u8)>> {
    vec((any::<usize>(), 1u8..=255), 1..8)
}

fn ok(check: Result<(), String>) -> Result<(), TestCaseError> {
    check.map_err(TestCaseError::fail)
}

// ----- one module of properties per wire type --------------------------------

/// For a wire type and a strategy of its values: values round-trip (1,024
/// cases); 4,096 random byte strings and 4,096 mutated encodings decode to an
/// error or to a value that re-encodes, never a panic.
macro_rules! wire_type {
    ($name:ident, $ty:ty, $values:expr) => {
        mod $name {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(1024))]

                #[test]
                fn round_trips(value in $values) {
                    ok(check_round_trip::<$ty>(&value))?;
                }
            }

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(4096))]

                #[test]
                fn random_bytes_never_panic(bytes in bytes(600)) {
                    ok(check_arbitrary_bytes::<$ty>(&bytes))?;
                }

                #[test]
                fn mutated_encodings_never_panic(value in $values, flips in flips()) {
                    let encoded = encode::<$ty>(&value).unwrap();
                    // A strict prefix of an encoding is always an error.
                    let cut = flips[0].0 % encoded.len();
                    prop_assert!(decode::<$ty>(&encoded[..cut]).is_err());
                    let mut bytes = encoded;
                    for (at, x) in &flips {
                        let i = at % bytes.len();
                        bytes[i] ^= x;
                    }
                    ok(check_arbitrary_bytes::<$ty>(&bytes))?;
                }
            }
        }
    };
}

wire_type!(message, Message, message());
wire_type!(block, Block, block());
wire_type!(block_header, BlockHeader, header());
wire_type!(payload, Payload, payload());
wire_type!(vote, Vote, vote());
wire_type!(quorum_cert, QuorumCert, qc());
wire_type!(timeout, Timeout, timeout());
wire_type!(timeout_cert, TimeoutCert, tc());
wire_type!(commit_cert, CommitCert, commit_cert());
wire_type!(committed_block, CommittedBlock, committed_block());
wire_type!(safety_data, SafetyData, safety_data());

// ----- real, signed messages -------------------------------------------------

fn signed_messages(seed: u8, items: Vec<Vec<u8>>) -> Vec<Message> {
    let f = Fixture::new(4);
    let g = f.genesis();
    let b1 = f.block(1, 1, &g, &f.genesis_qc(), None, items);
    let qc1 = f.qc(&b1);
    let tc = f.tc(2, &[1, 0], &qc1);
    let b3 = f.block(3, 3, &b1, &qc1, Some(tc.clone()), vec![vec![seed]]);
    let vote = Vote {
        view: 3,
        block: b3.digest(),
        author: 2,
        signature: f.keys[2].sign(&[seed]),
        inclusion: Some(vec![seed, 1, 2]),
    };
    let timeout = Timeout {
        view: 2,
        high_qc: qc1.clone(),
        author: 0,
        signature: f.keys[0].sign(&[seed]),
        inclusion: None,
    };
    vec![
        Message::Proposal(Box::new(b1)),
        Message::Proposal(Box::new(b3.clone())),
        Message::Vote(vote),
        Message::Timeout(Box::new(timeout)),
        Message::Tc(Box::new(tc)),
        Message::Qc(Box::new(qc1)),
        Message::BlockRequest(Digest::of(&[seed])),
        Message::BlockResponse(Box::new(b3)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Messages a core would send come back equal, and their certificates
    /// still verify against the committee.
    #[test]
    fn signed_messages_round_trip_and_still_verify(seed in any::<u8>(), items in vec(bytes(32), 0..6)) {
        let f = Fixture::new(4);
        for message in signed_messages(seed, items) {
            let back: Message = decode(&encode(&message).unwrap()).unwrap();
            match &back {
                Message::Qc(qc) => prop_assert!(qc.verify(&f.committee).is_ok()),
                Message::Tc(tc) => prop_assert!(tc.verify(&f.committee).is_ok()),
                _ => {}
            }
            prop_assert_eq!(back, message);
        }
    }
}

#[test]
fn committed_block_with_a_real_certificate_round_trips_and_verifies() {
    let f = Fixture::new(4);
    let g = f.genesis();
    let b1 = f.block(1, 1, &g, &f.genesis_qc(), None, vec![b"x".to_vec()]);
    let qc1 = f.qc(&b1);
    let b2 = f.block(2, 2, &b1, &qc1, None, vec![]);
    let committed = CommittedBlock {
        block: b1.clone(),
        cert: CommitCert {
            chain: vec![b2.header.clone()],
            qc: f.qc(&b2),
        },
    };
    let back: CommittedBlock = decode(&encode(&committed).unwrap()).unwrap();
    back.cert.verify(&back.block.header, &f.committee).unwrap();
    assert_eq!(back, committed);
}
