//! Every consensus wire type round-trips through the codec, and random
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! bytes never make the decoder panic.

use ordo_consensus::testing::Fixture;
use ordo_consensus::{Block, CommitCert, CommittedBlock, Message, SafetyData, Vote};
use ordo_types::codec::{decode, encode};
use ordo_types::Digest;
use proptest::prelude::*;

fn sample_messages(seed: u8, items: Vec<Vec<u8>>) -> Vec<Message> {
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
    let timeout = ordo_consensus::Timeout {
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

    #[test]
    fn messages_round_trip(seed in any::<u8>(), items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 0..6)) {
        for message in sample_messages(seed, items) {
            let bytes = encode(&message).unwrap();
            prop_assert_eq!(decode::<Message>(&bytes).unwrap(), message);
        }
    }
}

#[test]
fn committed_block_and_safety_data_round_trip() {
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
    committed.cert.verify(&b1.header, &f.committee).unwrap();
    let back: CommittedBlock = decode(&encode(&committed).unwrap()).unwrap();
    assert_eq!(back, committed);
    let data = SafetyData {
        last_voted_view: 9,
        highest_qc_view: 8,
        highest_qc: Some(f.qc(&b2)),
        highest_timeout_view: 7,
        highest_tc: Some(f.tc(7, &[2], &f.qc(&b2))),
        last_vote: None,
        last_timeout: None,
    };
    assert_eq!(decode::<SafetyData>(&encode(&data).unwrap()).unwrap(), data);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode::<Message>(&bytes);
        let _ = decode::<Block>(&bytes);
        let _ = decode::<CommittedBlock>(&bytes);
        let _ = decode::<SafetyData>(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(seed in any::<u8>(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        for message in sample_messages(seed, vec![vec![seed; 4]]) {
            let mut bytes = encode(&message).unwrap();
            for (at, value) in &flips {
                let i = at % bytes.len();
                bytes[i] ^= value;
            }
            let _ = decode::<Message>(&bytes);
        }
    }
}
