use ordo_types::{Digest, NodeIndex};

/// Everything that can go wrong in the mempool. Variants raised by peer input
/// double as the `reason` of [`crate::Action::Misbehaviour`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // Intake (client-facing).
    #[error("the transaction queue is full; retry later")]
    Busy,
    #[error("transaction of {size} bytes exceeds the {max}-byte limit")]
    TxTooLarge { size: usize, max: usize },

    // Batches.
    #[error("empty batch")]
    EmptyBatch,
    #[error("batch of {bytes} bytes exceeds the {max}-byte limit")]
    BatchTooLarge { bytes: usize, max: usize },
    #[error("batch of {count} transactions exceeds the limit of {max}")]
    TooManyTxs { count: usize, max: usize },
    #[error("message claims author/signer {claimed} but came from {sender}")]
    WrongSender {
        claimed: NodeIndex,
        sender: NodeIndex,
    },
    #[error("author {author} sent two different batches with seq {seq}")]
    Equivocation { author: NodeIndex, seq: u64 },
    #[error("digest mismatch: expected {expected:?}, got {got:?}")]
    DigestMismatch { expected: Digest, got: Digest },
    #[error("certificate fields do not match batch {0:?}")]
    CertMismatch(Digest),

    // Signatures and certificates.
    #[error("node {0} is not a committee member")]
    NotAMember(NodeIndex),
    #[error("bad signature by node {0}")]
    BadSignature(NodeIndex),
    #[error("certificate signatures do not verify")]
    BadSignatures,
    #[error("certificate has {got} signers; {needed} needed")]
    TooFewSigners { got: usize, needed: usize },
    #[error("certificate signers are not strictly increasing at signer {0}")]
    UnsortedSigners(NodeIndex),

    // Inclusion rule.
    #[error("{valid} valid inclusion lists; {needed} needed")]
    TooFewInclusionLists { valid: usize, needed: usize },
    #[error("certificate {0:?} is required by the inclusion lists but omitted")]
    CertOmitted(Digest),
    #[error("block is full but skips the older required certificate {0:?}")]
    NotOldestFirst(Digest),
    #[error("proposal carries {count} certificates; at most {max}")]
    TooManyCerts { count: usize, max: usize },

    // Local.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("codec: {0}")]
    Codec(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<ordo_types::Error> for Error {
    fn from(error: ordo_types::Error) -> Self {
        Error::Codec(error.to_string())
    }
}
