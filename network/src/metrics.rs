//! Transport counters: plain atomics written on the hot path, read as a
//! [`MetricsSnapshot`]. The node exports them; this crate knows no exporter.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ordo_types::NodeIndex;

use crate::Class;

/// Live counters of one endpoint.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Handshakes refused by our certificate verifiers (unknown key,
    /// mismatched key, bad signature).
    pub refused_handshakes: AtomicU64,
    /// Authenticated connections closed at once (banned peer, or a peer
    /// dialing in the wrong direction).
    pub refused_connections: AtomicU64,
    pub peers: Vec<PeerCounters>,
}

#[derive(Debug, Default)]
pub(crate) struct PeerCounters {
    pub classes: [ClassCounters; 3],
    pub connected: AtomicBool,
    /// Connections established with this peer after the first one.
    pub reconnects: AtomicU64,
    pub connections: AtomicU64,
    pub bad_frames: AtomicU64,
    pub bans: AtomicU64,
}

#[derive(Debug, Default)]
pub(crate) struct ClassCounters {
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Frames dropped by the overflow policy, refused by the peer, or
    /// refused at `send` because the queue was full.
    pub dropped: AtomicU64,
    /// Of `dropped`: refused at `send` because the queue was full
    /// (Batches, Sync), the caller told with [`crate::Error::QueueFull`].
    pub refused: AtomicU64,
}

impl Metrics {
    pub fn new(committee_size: usize) -> Self {
        Metrics {
            refused_handshakes: AtomicU64::new(0),
            refused_connections: AtomicU64::new(0),
            peers: (0..committee_size)
                .map(|_| PeerCounters::default())
                .collect(),
        }
    }
}

impl PeerCounters {
    pub fn class(&self, class: Class) -> &ClassCounters {
        &self.classes[class.index()]
    }

    pub fn connected_once_more(&self) {
        if self.connections.fetch_add(1, Ordering::Relaxed) > 0 {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        self.connected.store(true, Ordering::Relaxed);
    }
}

impl ClassCounters {
    pub fn sent(&self, bytes: usize) {
        self.frames_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn received(&self, bytes: usize) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn refuse_one(&self) {
        self.drop_one();
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self, queue_depth: usize) -> ClassSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClassSnapshot {
            queue_depth,
            dropped: load(&self.dropped),
            refused: load(&self.refused),
            frames_out: load(&self.frames_out),
            bytes_out: load(&self.bytes_out),
            frames_in: load(&self.frames_in),
            bytes_in: load(&self.bytes_in),
        }
    }
}

/// Counters of one traffic class towards / from one peer (or summed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassSnapshot {
    /// Frames waiting in the send queue now.
    pub queue_depth: usize,
    /// Frames lost on the way out: evicted by a full Consensus queue,
    /// refused twice by the peer, or `refused` below.
    pub dropped: u64,
    /// Of `dropped`: refused at `send` by a full Batches or Sync queue
    /// ([`crate::Error::QueueFull`]).
    pub refused: u64,
    pub frames_out: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub bytes_in: u64,
}

impl ClassSnapshot {
    fn add(&mut self, other: &ClassSnapshot) {
        self.queue_depth += other.queue_depth;
        self.dropped += other.dropped;
        self.refused += other.refused;
        self.frames_out += other.frames_out;
        self.bytes_out += other.bytes_out;
        self.frames_in += other.frames_in;
        self.bytes_in += other.bytes_in;
    }
}

/// Counters of one peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerSnapshot {
    pub index: NodeIndex,
    pub connected: bool,
    /// Smoothed round-trip time of the current connection (quinn's estimate).
    pub rtt: Option<Duration>,
    /// The current connection's path: its UDP payload size found by MTU
    /// discovery, and the packets it sent and lost.
    pub path: Option<PathSnapshot>,
    pub reconnects: u64,
    pub bad_frames: u64,
    pub bans: u64,
    /// Indexed by [`Class::index`].
    pub classes: [ClassSnapshot; 3],
}

/// The path of one peer's current connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathSnapshot {
    pub mtu: u16,
    pub sent_packets: u64,
    pub lost_packets: u64,
}

impl PathSnapshot {
    pub(crate) fn of(connection: &quinn::Connection) -> Self {
        let path = connection.stats().path;
        PathSnapshot {
            mtu: path.current_mtu,
            sent_packets: path.sent_packets,
            lost_packets: path.lost_packets,
        }
    }
}

/// A point-in-time copy of all counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub refused_handshakes: u64,
    pub refused_connections: u64,
    /// One entry per other committee member.
    pub peers: Vec<PeerSnapshot>,
}

impl MetricsSnapshot {
    pub fn peer(&self, index: NodeIndex) -> Option<&PeerSnapshot> {
        self.peers.iter().find(|p| p.index == index)
    }

    /// One class summed over all peers.
    pub fn total(&self, class: Class) -> ClassSnapshot {
        let mut sum = ClassSnapshot::default();
        for peer in &self.peers {
            sum.add(&peer.classes[class.index()]);
        }
        sum
    }

    pub fn bad_frames(&self) -> u64 {
        self.peers.iter().map(|p| p.bad_frames).sum()
    }

    pub fn bans(&self) -> u64 {
        self.peers.iter().map(|p| p.bans).sum()
    }

    pub fn reconnects(&self) -> u64 {
        self.peers.iter().map(|p| p.reconnects).sum()
    }
}

impl PeerCounters {
    pub fn snapshot(
        &self,
        index: NodeIndex,
        queue_depths: [usize; 3],
        rtt: Option<Duration>,
        path: Option<PathSnapshot>,
    ) -> PeerSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PeerSnapshot {
            index,
            connected: self.connected.load(Ordering::Relaxed),
            rtt,
            path,
            reconnects: load(&self.reconnects),
            bad_frames: load(&self.bad_frames),
            bans: load(&self.bans),
            classes: [0, 1, 2].map(|i| self.classes[i].snapshot(queue_depths[i])),
        }
    }
}
