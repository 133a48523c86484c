//! The mempool's wire messages between committee members.

use ordo_types::Digest;
use serde::{Deserialize, Serialize};

use crate::{Batch, BatchAck, BatchCert};

/// Everything one mempool says to another. Encoded with
/// [`ordo_types::codec`]; the host authenticates the sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// An author disseminates its freshly sealed batch.
    Batch(Batch),
    /// A peer has stored the batch (sent to its author only).
    Ack(BatchAck),
    /// The author announces a formed certificate.
    Cert(BatchCert),
    /// Ask a certificate signer for a batch missing at commit time.
    BatchRequest { digest: Digest },
    /// The answer to a [`Message::BatchRequest`].
    BatchResponse(Batch),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transaction;

    #[test]
    fn codec_round_trip() {
        let messages = vec![
            Message::Batch(Batch {
                author: 2,
                seq: 1,
                txs: vec![Transaction::new(1, &b"a"[..])],
            }),
            Message::BatchRequest {
                digest: Digest::of(b"x"),
            },
        ];
        for m in messages {
            let bytes = ordo_types::codec::encode(&m).unwrap();
            assert_eq!(ordo_types::codec::decode::<Message>(&bytes).unwrap(), m);
        }
    }
}
