/// Errors of the client: transport, decoding, and blocks that do not verify.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connection to {addr}: {message}")]
    Connection { addr: String, message: String },
    #[error("the node answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("cannot decode a block: {0}")]
    Decode(String),
    #[error("block at height {height} does not verify: {reason}")]
    Invalid { height: u64, reason: String },
    #[error("height {height} is no longer served (pruned)")]
    Pruned { height: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
