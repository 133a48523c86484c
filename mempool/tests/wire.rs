//! Every mempool wire type round-trips through the codec with generated
//! values of any shape, and neither random bytes nor mutated encodings make
//! a decoder panic (bincode's or the zero-copy `wire::decode_message`): they
//! return an error or a value that re-encodes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use ordo_mempool::wire::decode_message;
use ordo_mempool::{Batch, BatchAck, BatchCert, BatchHeader, InclusionList, Message, Transaction};
use ordo_types::codec::{check_arbitrary_bytes, check_round_trip, decode, encode};
use ordo_types::strategies::{digest, flips, ok, signature};
use proptest::collection::vec;
use proptest::prelude::*;

fn transaction() -> impl Strategy<Value = Transaction> {
    (any::<u64>(), vec(any::<u8>(), 0..64)).prop_map(|(ns, payload)| Transaction::new(ns, payload))
}

fn batch() -> impl Strategy<Value = Batch> {
    (any::<u16>(), any::<u64>(), vec(transaction(), 0..8)).prop_map(|(author, seq, txs)| Batch {
        author,
        seq,
        txs,
    })
}

fn batch_header() -> impl Strategy<Value = BatchHeader> {
    (
        digest(),
        any::<u16>(),
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(|(digest, author, seq, tx_count, byte_size)| BatchHeader {
            digest,
            author,
            seq,
            tx_count,
            byte_size,
        })
}

fn batch_ack() -> impl Strategy<Value = BatchAck> {
    (digest(), any::<u16>(), signature()).prop_map(|(batch, signer, signature)| BatchAck {
        batch,
        signer,
        signature,
    })
}

fn batch_cert() -> impl Strategy<Value = BatchCert> {
    (batch_header(), vec((any::<u16>(), signature()), 0..8)).prop_map(|(header, signatures)| {
        BatchCert {
            batch: header.digest,
            author: header.author,
            seq: header.seq,
            tx_count: header.tx_count,
            byte_size: header.byte_size,
            signatures,
        }
    })
}

fn inclusion_list() -> impl Strategy<Value = InclusionList> {
    (any::<u16>(), any::<u64>(), vec(digest(), 0..8), signature()).prop_map(
        |(author, view, certs, signature)| InclusionList {
            author,
            view,
            certs,
            signature,
        },
    )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        batch().prop_map(Message::Batch),
        batch_ack().prop_map(Message::Ack),
        batch_cert().prop_map(Message::Cert),
        digest().prop_map(|digest| Message::BatchRequest { digest }),
        batch().prop_map(Message::BatchResponse),
    ]
}

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
                fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
                    ok(check_arbitrary_bytes::<$ty>(&bytes))?;
                }

                #[test]
                fn mutated_encodings_never_panic(value in $values, flips in flips()) {
                    let mut bytes = encode::<$ty>(&value).unwrap();
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

wire_type!(transaction, Transaction, transaction());
wire_type!(batch, Batch, batch());
wire_type!(batch_header, BatchHeader, batch_header());
wire_type!(batch_ack, BatchAck, batch_ack());
wire_type!(batch_cert, BatchCert, batch_cert());
wire_type!(inclusion_list, InclusionList, inclusion_list());
wire_type!(message, Message, message());

/// `decode_message` on a frame: an error, or a message that re-encodes and
/// decodes (by both decoders) to itself.
fn check_frame(frame: &[u8]) -> Result<(), TestCaseError> {
    let Ok(decoded) = decode_message(&Bytes::copy_from_slice(frame)) else {
        return Ok(());
    };
    let again = encode(&decoded.message).unwrap();
    prop_assert!(again.len() <= frame.len());
    prop_assert_eq!(&decode::<Message>(&again).unwrap(), &decoded.message);
    let back = decode_message(&Bytes::from(again)).unwrap();
    prop_assert_eq!(back.message, decoded.message);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The zero-copy decoder returns every generated message unchanged.
    #[test]
    fn decode_message_round_trips(message in message()) {
        let frame = Bytes::from(encode(&message).unwrap());
        prop_assert_eq!(decode_message(&frame).unwrap().message, message);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Random frames, a third of them with a batch tag so the hand parser
    /// runs past the tag.
    #[test]
    fn decode_message_random_frames_never_panic(
        tag in prop_oneof![Just(0u8), Just(4u8), any::<u8>()],
        body in vec(any::<u8>(), 0..600),
    ) {
        let mut frame = vec![tag];
        frame.extend_from_slice(&body);
        check_frame(&frame)?;
    }

    #[test]
    fn decode_message_mutated_frames_never_panic(message in message(), flips in flips()) {
        let mut frame = encode(&message).unwrap();
        for (at, x) in &flips {
            let i = at % frame.len();
            frame[i] ^= x;
        }
        check_frame(&frame)?;
    }
}
