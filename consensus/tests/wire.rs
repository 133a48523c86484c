//! Every consensus wire type round-trips through the codec with generated
//! values of any shape, and neither random bytes nor mutated encodings make
//! the decoder panic: it returns an error or a value that re-encodes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ordo_consensus::strategies::*;
use ordo_consensus::testing::Fixture;
use ordo_consensus::{
    Block, BlockHeader, CommitCert, CommittedBlock, Message, Payload, QuorumCert, SafetyData,
    Timeout, TimeoutCert, Vote,
};
use ordo_types::codec::{check_arbitrary_bytes, check_round_trip, decode, encode};
use ordo_types::strategies::{bytes, flips, ok};
use ordo_types::Digest;
use proptest::collection::vec;
use proptest::prelude::*;

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
