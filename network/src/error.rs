use std::net::SocketAddr;

use ordo_types::NodeIndex;

use crate::Class;

/// Everything that can go wrong in the transport.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("our key {0} is not a committee member")]
    NotInCommittee(String),
    #[error("node {0} is not a peer (unknown index, or ourselves)")]
    UnknownPeer(NodeIndex),
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { len: usize, max: usize },
    #[error("stream ended inside a frame ({got} of {expected} bytes)")]
    TruncatedFrame { expected: usize, got: usize },
    #[error("{class:?} send queue full for peers {peers:?}; frame dropped")]
    QueueFull { class: Class, peers: Vec<NodeIndex> },
    #[error("the network is shutting down")]
    ShuttingDown,
    #[error("tls setup: {0}")]
    Tls(String),
    #[error("quic setup: {0}")]
    Quic(String),
    #[error("config: {0}")]
    Config(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
