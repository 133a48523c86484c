use std::path::PathBuf;

/// Errors of the shared types: decoding, keys and committee files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("decode failed: {0}")]
    Decode(String),
    #[error("encode failed: {0}")]
    Encode(String),
    #[error("{len} trailing bytes after a complete message")]
    TrailingBytes { len: usize },
    #[error("invalid public key: {0}")]
    InvalidKey(String),
    #[error("invalid signature")]
    InvalidSignature,
    #[error("invalid hex: {0}")]
    InvalidHex(String),
    #[error("committee is empty")]
    EmptyCommittee,
    #[error("committee lists key {0} more than once")]
    DuplicateKey(String),
    #[error("committee has {0} members; at most {max} are supported", max = u16::MAX)]
    CommitteeTooLarge(usize),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Toml { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
