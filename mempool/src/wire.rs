//! Decoding [`Message`] frames without copying transactions.
//!
//! A `Batch` or `BatchResponse` frame is parsed by hand (the wire format is
//! bincode 2's standard configuration, see [`ordo_types::codec`]) and every
//! transaction's payload becomes a slice of the received frame: no
//! allocation or copy per transaction. The batch's own encoding is the frame
//! after the variant tag, returned too, so a node can store the batch as it
//! arrived instead of encoding it again. Every other message goes through
//! [`ordo_types::codec::decode`]. Both paths accept exactly the same frames
//! (property-tested against bincode), and never panic or allocate more than
//! the frame could hold.

use bytes::Bytes;
use ordo_types::codec::{decode, MAX_MESSAGE_BYTES};

use crate::{Batch, Message, Transaction};

/// Variant tags of [`Message`] on the wire.
const TAG_BATCH: u8 = 0;
const TAG_BATCH_RESPONSE: u8 = 4;

/// A decoded frame; `raw` is the encoding of the batch it carries, if any.
#[derive(Debug)]
pub struct Decoded {
    pub message: Message,
    pub raw_batch: Option<Bytes>,
}

/// Decodes one message frame.
pub fn decode_message(frame: &Bytes) -> ordo_types::Result<Decoded> {
    match frame.first() {
        Some(&tag @ (TAG_BATCH | TAG_BATCH_RESPONSE)) if frame.len() <= MAX_MESSAGE_BYTES => {
            let raw = frame.slice(1..);
            let batch = decode_batch(&raw)?;
            let message = if tag == TAG_BATCH {
                Message::Batch(batch)
            } else {
                Message::BatchResponse(batch)
            };
            Ok(Decoded {
                message,
                raw_batch: Some(raw),
            })
        }
        _ => Ok(Decoded {
            message: decode(frame)?,
            raw_batch: None,
        }),
    }
}

/// Decodes a batch's encoding; payloads are slices of `bytes`.
pub fn decode_batch(bytes: &Bytes) -> ordo_types::Result<Batch> {
    let mut reader = Reader { bytes, at: 0 };
    let author = reader.varint_u16()?;
    let seq = reader.varint()?;
    let count = reader.varint()?;
    // Each transaction takes at least two bytes: no capacity beyond that.
    let room = (bytes.len() - reader.at) / 2;
    if count > room as u64 {
        return Err(bad("more transactions than bytes"));
    }
    let mut txs = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let namespace = reader.varint()?;
        let len = reader.varint()?;
        let payload = reader.take(len)?;
        txs.push(Transaction::new(namespace, payload));
    }
    if reader.at != bytes.len() {
        return Err(ordo_types::Error::TrailingBytes {
            len: bytes.len() - reader.at,
        });
    }
    // Every receiver needs every digest (batch digest, dedupe): all at once.
    Transaction::compute_digests(&txs);
    Ok(Batch { author, seq, txs })
}

fn bad(why: &str) -> ordo_types::Error {
    ordo_types::Error::Decode(why.to_string())
}

struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn fixed<const N: usize>(&mut self) -> ordo_types::Result<[u8; N]> {
        let end = self
            .at
            .checked_add(N)
            .ok_or_else(|| bad("length overflow"))?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| bad("unexpected end"))?;
        self.at = end;
        slice.try_into().map_err(|_| bad("unexpected end"))
    }

    /// bincode's unsigned varint: one byte below 251, else a marker and 2,
    /// 4 or 8 little-endian bytes.
    fn varint(&mut self) -> ordo_types::Result<u64> {
        let [first] = self.fixed::<1>()?;
        match first {
            0..=250 => Ok(u64::from(first)),
            251 => Ok(u64::from(u16::from_le_bytes(self.fixed()?))),
            252 => Ok(u64::from(u32::from_le_bytes(self.fixed()?))),
            253 => Ok(u64::from_le_bytes(self.fixed()?)),
            _ => Err(bad("invalid integer marker")),
        }
    }

    /// A `u16` as bincode writes it: only the one-byte and 2-byte forms.
    fn varint_u16(&mut self) -> ordo_types::Result<u16> {
        let [first] = self.fixed::<1>()?;
        match first {
            0..=250 => Ok(u16::from(first)),
            251 => Ok(u16::from_le_bytes(self.fixed()?)),
            _ => Err(bad("invalid integer marker for a u16")),
        }
    }

    fn take(&mut self, len: u64) -> ordo_types::Result<Bytes> {
        let len = usize::try_from(len).map_err(|_| bad("length overflow"))?;
        let end = self
            .at
            .checked_add(len)
            .ok_or_else(|| bad("length overflow"))?;
        if end > self.bytes.len() {
            return Err(bad("unexpected end"));
        }
        let slice = self.bytes.slice(self.at..end);
        self.at = end;
        Ok(slice)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::BatchAck;
    use ordo_types::codec::encode;
    use ordo_types::{Digest, Keypair};

    fn batch(author: u16, seq: u64, txs: &[(u64, Vec<u8>)]) -> Batch {
        Batch {
            author,
            seq,
            txs: txs
                .iter()
                .map(|(ns, p)| Transaction::new(*ns, p.clone()))
                .collect(),
        }
    }

    proptest! {
        /// Same value as bincode, for every batch; the raw part re-encodes
        /// to the same bytes; payloads share the frame.
        #[test]
        fn batches_decode_like_bincode(
            author: u16,
            seq: u64,
            txs in proptest::collection::vec((any::<u64>(), proptest::collection::vec(any::<u8>(), 0..600)), 0..20),
            response: bool,
        ) {
            let b = batch(author, seq, &txs);
            let message = if response { Message::BatchResponse(b.clone()) } else { Message::Batch(b.clone()) };
            let frame = Bytes::from(encode(&message).unwrap());
            let decoded = decode_message(&frame).unwrap();
            prop_assert_eq!(&decoded.message, &message);
            let raw = decoded.raw_batch.clone().unwrap();
            let reencoded = encode(&b).unwrap();
            prop_assert_eq!(raw.as_ref(), reencoded.as_slice());
            if let Message::Batch(got) | Message::BatchResponse(got) = decoded.message {
                for tx in got.txs.iter().filter(|t| !t.payload.is_empty()) {
                    let start = tx.payload.as_ptr() as usize;
                    let frame_start = frame.as_ptr() as usize;
                    prop_assert!(start >= frame_start && start < frame_start + frame.len());
                }
            }
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// On arbitrary bytes (most starting with a batch tag) the two
        /// decoders agree on accepting, and on the value.
        #[test]
        fn arbitrary_frames_agree_with_bincode(
            tag in prop_oneof![Just(0u8), Just(4u8), any::<u8>()],
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut bytes = vec![tag];
            bytes.extend_from_slice(&body);
            let frame = Bytes::from(bytes);
            let ours = decode_message(&frame).map(|d| d.message);
            let theirs = decode::<Message>(&frame);
            match (ours, theirs) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "disagree: {:?} vs {:?}", a, b),
            }
        }
    }

    #[test]
    fn wide_integers_and_other_messages() {
        let b = batch(
            u16::MAX,
            u64::MAX,
            &[(300, vec![1; 70_000]), (1 << 40, vec![])],
        );
        let frame = Bytes::from(encode(&Message::Batch(b.clone())).unwrap());
        assert_eq!(decode_message(&frame).unwrap().message, Message::Batch(b));
        let key = Keypair::from_seed([3; 32]);
        let ack = BatchAck::sign(&batch(1, 2, &[(1, vec![1])]).header(), 0, &key);
        let frame = Bytes::from(encode(&Message::Ack(ack.clone())).unwrap());
        let decoded = decode_message(&frame).unwrap();
        assert_eq!(decoded.message, Message::Ack(ack));
        assert!(decoded.raw_batch.is_none());
        let request = Message::BatchRequest {
            digest: Digest::of(b"x"),
        };
        let frame = Bytes::from(encode(&request).unwrap());
        assert_eq!(decode_message(&frame).unwrap().message, request);
        // An author written in a wider form than a u16's, as bincode says.
        for marker in [252u8, 253] {
            let mut frame = vec![0u8, marker];
            frame.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0][..if marker == 252 { 4 } else { 8 }]);
            frame.extend_from_slice(&[1, 0]);
            let ours = decode_message(&Bytes::from(frame.clone()));
            assert!(ours.is_err());
            assert!(decode::<Message>(&frame).is_err());
        }
        // A count larger than the bytes could hold is refused up front.
        let mut huge = vec![0u8, 1, 1, 253];
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_message(&Bytes::from(huge)).is_err());
    }
}
