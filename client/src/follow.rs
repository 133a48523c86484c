//! Following committed blocks over the nodes' WebSocket stream, verifying
//! each, resuming after disconnects.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use ordo_types::codec::decode_local;
use ordo_types::{Committee, Digest};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::block::OutputBlock;
use crate::error::{Error, Result};
use crate::verify::verify;

pub struct FollowerConfig {
    /// API addresses of nodes to read from; on a failure the follower moves
    /// to the next.
    pub nodes: Vec<SocketAddr>,
    pub committee: Arc<Committee>,
    /// First height to deliver.
    pub from: u64,
    /// Only transactions of this namespace (the node leaves out batches
    /// without any; their certificates are still checked).
    pub namespace: Option<u64>,
    /// Wait between reconnection attempts.
    pub retry: Duration,
}

/// Yields verified blocks in height order, gap-free, from `from` on.
pub struct Follower {
    config: FollowerConfig,
    next: u64,
    parent: Option<Digest>,
    node: usize,
    socket: Option<WebSocketStream<MaybeTlsStream<TcpStream>>>,
}

impl Follower {
    pub fn new(config: FollowerConfig) -> Self {
        let parent = (config.from == 1)
            .then(|| ordo_consensus::Block::genesis(config.committee.digest()).digest());
        Follower {
            next: config.from.max(1),
            parent,
            node: 0,
            socket: None,
            config,
        }
    }

    /// The height the next block will have.
    pub fn next_height(&self) -> u64 {
        self.next
    }

    /// The next verified block. Connection failures are retried (moving to
    /// the next node) without limit; a block that does not verify is
    /// returned as an error, and the follower switches node.
    pub async fn next(&mut self) -> Result<OutputBlock> {
        loop {
            if self.socket.is_none() {
                if let Err(e) = self.connect().await {
                    tracing::debug!("{e}; retrying");
                    self.switch_node();
                    tokio::time::sleep(self.config.retry).await;
                    continue;
                }
            }
            let Some(socket) = self.socket.as_mut() else {
                continue;
            };
            let message = match socket.next().await {
                Some(Ok(message)) => message,
                Some(Err(_)) | None => {
                    self.socket = None;
                    self.switch_node();
                    tokio::time::sleep(self.config.retry).await;
                    continue;
                }
            };
            let bytes = match message {
                Message::Binary(bytes) => bytes,
                Message::Text(text) if text.contains("\"pruned\"") => {
                    self.socket = None;
                    return Err(Error::Pruned { height: self.next });
                }
                Message::Close(_) => {
                    self.socket = None;
                    continue;
                }
                _ => continue,
            };
            let block: OutputBlock = match decode_local(&bytes) {
                Ok(block) => block,
                Err(e) => {
                    self.socket = None;
                    self.switch_node();
                    return Err(Error::Decode(e.to_string()));
                }
            };
            if block.height() != self.next {
                self.socket = None;
                self.switch_node();
                return Err(Error::Invalid {
                    height: self.next,
                    reason: format!("the node sent height {} instead", block.height()),
                });
            }
            if let Err(e) = verify(&block, &self.config.committee, self.parent.as_ref()) {
                self.socket = None;
                self.switch_node();
                return Err(e);
            }
            self.parent = Some(block.header.digest());
            self.next += 1;
            return Ok(block);
        }
    }

    fn switch_node(&mut self) {
        if !self.config.nodes.is_empty() {
            self.node = (self.node + 1) % self.config.nodes.len();
        }
    }

    async fn connect(&mut self) -> Result<()> {
        let addr = *self
            .config
            .nodes
            .get(self.node)
            .ok_or_else(|| Error::Connection {
                addr: String::new(),
                message: "no nodes configured".into(),
            })?;
        let mut url = format!("ws://{addr}/v1/stream?from={}", self.next);
        if let Some(namespace) = self.config.namespace {
            url.push_str(&format!("&namespace={namespace}"));
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(ordo_types::codec::MAX_LOCAL_BYTES))
            .max_frame_size(Some(ordo_types::codec::MAX_LOCAL_BYTES));
        let (socket, _) =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                .await
                .map_err(|e| Error::Connection {
                    addr: addr.to_string(),
                    message: e.to_string(),
                })?;
        self.socket = Some(socket);
        Ok(())
    }
}
