//! Transport settings. Every queue, window, timeout and retry is bounded here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ordo_types::{codec, NodeIndex};

use crate::{Class, Error, Result};

/// Largest `socket_buffer_bytes` (the OS takes an `int`, and Linux doubles it).
const MAX_SOCKET_BUFFER: usize = 1 << 30;

/// Settings of one endpoint. [`Config::default`] suits a production node;
/// tests shorten the timeouts.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest frame payload sent or accepted; a larger incoming length
    /// prefix is refused before anything is allocated.
    pub max_frame_bytes: usize,
    /// Per-peer Consensus queue; overflow drops the oldest frame.
    pub consensus_queue_frames: usize,
    /// Per-peer Batches queue; overflow refuses the new frame.
    pub batches_queue_frames: usize,
    /// Per-peer Sync queue; overflow refuses the new frame.
    pub sync_queue_frames: usize,
    /// Capacity of the inbound Consensus channel of the [`crate::Inbox`]
    /// (all peers together). When a class's channel is full its readers stop
    /// reading and QUIC flow control slows that class's senders; the other
    /// classes keep flowing.
    pub incoming_consensus_frames: usize,
    /// Capacity of the inbound Batches channel (all peers together).
    pub incoming_batches_frames: usize,
    /// Capacity of the inbound Sync channel (all peers together).
    pub incoming_sync_frames: usize,
    /// First reconnect delay; doubles per failed attempt up to the maximum.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// A connection silent for this long is considered dead.
    pub idle_timeout_ms: u64,
    /// Keep-alive ping interval; must be below the idle timeout.
    pub keep_alive_ms: u64,
    /// Bad frames a peer may send before it is disconnected and banned:
    /// oversize or truncated frames and streams of unknown class seen here,
    /// plus frames the node could not decode
    /// ([`crate::Network::report_bad_frame`]).
    pub max_bad_frames: u32,
    /// How long a banned peer is neither dialed nor accepted.
    pub ban_ms: u64,
    /// How long [`crate::Network::shutdown`] waits for queues to drain.
    pub shutdown_drain_ms: u64,
    /// Per-stream QUIC receive window (flow control), in bytes.
    pub stream_window_bytes: u32,
    /// Largest UDP payload this endpoint accepts and MTU discovery searches
    /// up to (1200..=65527). The default, 1,452, fits any 1500-byte path
    /// and keeps segmentation offload (GSO). On loopback or jumbo frames a
    /// higher bound (up to 65,527; `ordo testnet` writes that) cuts the
    /// packets, and the per-packet crypto and syscalls, of a 500 KiB batch
    /// by an order of magnitude; above 6,500 bytes GSO is off.
    pub max_udp_payload_bytes: u16,
    /// Send and receive buffer asked of the OS for the UDP socket; 0 keeps
    /// the OS default. The kernel caps it (`net.core.rmem_max`,
    /// `net.core.wmem_max`); the node logs what it got when that is less.
    pub socket_buffer_bytes: usize,
    /// Where to reach a member instead of its committee address.
    pub peer_addresses: BTreeMap<NodeIndex, SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_bytes: codec::MAX_MESSAGE_BYTES,
            consensus_queue_frames: 1024,
            batches_queue_frames: 64,
            sync_queue_frames: 256,
            incoming_consensus_frames: 1024,
            incoming_batches_frames: 128,
            incoming_sync_frames: 256,
            reconnect_min_ms: 100,
            reconnect_max_ms: 5_000,
            idle_timeout_ms: 5_000,
            keep_alive_ms: 1_000,
            max_bad_frames: 3,
            ban_ms: 30_000,
            shutdown_drain_ms: 2_000,
            stream_window_bytes: 4 * 1024 * 1024,
            max_udp_payload_bytes: 1_452,
            socket_buffer_bytes: 4 * 1024 * 1024,
            peer_addresses: BTreeMap::new(),
        }
    }
}

impl Config {
    pub(crate) fn queue_frames(&self, class: Class) -> usize {
        match class {
            Class::Consensus => self.consensus_queue_frames,
            Class::Batches => self.batches_queue_frames,
            Class::Sync => self.sync_queue_frames,
        }
    }

    pub(crate) fn incoming_frames(&self, class: Class) -> usize {
        match class {
            Class::Consensus => self.incoming_consensus_frames,
            Class::Batches => self.incoming_batches_frames,
            Class::Sync => self.incoming_sync_frames,
        }
    }

    pub(crate) fn ban(&self) -> Duration {
        Duration::from_millis(self.ban_ms)
    }

    /// Refuses settings that would make a queue unbounded-by-zero, a frame
    /// larger than its length prefix can say, or keep-alives that cannot
    /// keep a connection alive.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(what.to_string()));
        if self.max_frame_bytes == 0 || u32::try_from(self.max_frame_bytes).is_err() {
            return bad("max_frame_bytes must be in 1..=u32::MAX");
        }
        if Class::ALL
            .iter()
            .any(|c| self.queue_frames(*c) == 0 || self.incoming_frames(*c) == 0)
        {
            return bad("queue capacities must be at least 1");
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return bad("need 0 < reconnect_min_ms <= reconnect_max_ms");
        }
        if self.keep_alive_ms == 0 || self.keep_alive_ms >= self.idle_timeout_ms {
            return bad("need 0 < keep_alive_ms < idle_timeout_ms");
        }
        if self.max_bad_frames == 0 {
            return bad("max_bad_frames must be at least 1");
        }
        if self.stream_window_bytes < 64 * 1024 {
            return bad("stream_window_bytes must be at least 64 KiB");
        }
        if !(1200..=65_527).contains(&self.max_udp_payload_bytes) {
            return bad("max_udp_payload_bytes must be in 1200..=65527");
        }
        if self.socket_buffer_bytes > MAX_SOCKET_BUFFER {
            return bad("socket_buffer_bytes must be at most 1 GiB");
        }
        Ok(())
    }
}
