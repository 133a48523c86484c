//! What we keep per remote member: its send queues, its current connection
//! and its standing (strikes for bad frames, ban).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ordo_types::NodeIndex;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::config::Config;
use crate::queue::{Overflow, SendQueue};
use crate::Class;

/// QUIC application error codes we close connections and streams with.
pub(crate) mod code {
    use quinn::VarInt;
    pub const SHUTDOWN: VarInt = VarInt::from_u32(0);
    pub const REPLACED: VarInt = VarInt::from_u32(1);
    pub const BANNED: VarInt = VarInt::from_u32(2);
    pub const WRONG_DIRECTION: VarInt = VarInt::from_u32(3);
    pub const BAD_FRAME: VarInt = VarInt::from_u32(4);
    /// A writer stopped inside a frame (aborted): the stream is reset.
    pub const ABORTED: VarInt = VarInt::from_u32(5);
}

#[derive(Debug)]
pub(crate) struct Peer {
    pub index: NodeIndex,
    pub address: SocketAddr,
    /// Indexed by [`Class::index`].
    pub queues: [SendQueue; 3],
    connection: watch::Sender<Option<quinn::Connection>>,
    banned_until: Mutex<Option<Instant>>,
    strikes: AtomicU32,
}

impl Peer {
    pub fn new(index: NodeIndex, address: SocketAddr, config: &Config) -> Self {
        let queue = |class: Class| {
            let overflow = match class {
                Class::Consensus => Overflow::DropOldest,
                Class::Batches | Class::Sync => Overflow::RejectNewest,
            };
            SendQueue::new(config.queue_frames(class), overflow)
        };
        Peer {
            index,
            address,
            queues: Class::ALL.map(queue),
            connection: watch::Sender::new(None),
            banned_until: Mutex::new(None),
            strikes: AtomicU32::new(0),
        }
    }

    pub fn queue(&self, class: Class) -> &SendQueue {
        &self.queues[class.index()]
    }

    /// Makes `connection` the one to use, closing any previous one.
    pub fn install(&self, connection: quinn::Connection) {
        let old = self.connection.send_replace(Some(connection));
        if let Some(old) = old {
            old.close(code::REPLACED, b"replaced");
        }
    }

    /// The current connection, if it is still open.
    pub fn live(&self) -> Option<quinn::Connection> {
        self.connection
            .borrow()
            .as_ref()
            .filter(|c| c.close_reason().is_none())
            .cloned()
    }

    pub fn watch(&self) -> watch::Receiver<Option<quinn::Connection>> {
        self.connection.subscribe()
    }

    /// How long the peer stays banned, if it is.
    pub fn banned_for(&self, now: Instant) -> Option<Duration> {
        let until = (*self.banned_until.lock())?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Records one bad frame; returns true if that was one too many, in
    /// which case the peer is now banned until `now + ban`.
    pub fn strike(&self, max_bad_frames: u32, now: Instant, ban: Duration) -> bool {
        if self.strikes.fetch_add(1, Ordering::Relaxed) + 1 < max_bad_frames {
            return false;
        }
        self.strikes.store(0, Ordering::Relaxed);
        *self.banned_until.lock() = Some(now + ban);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn third_strike_bans_for_the_configured_time() {
        let peer = Peer::new(1, "127.0.0.1:1".parse().unwrap(), &Config::default());
        let now = Instant::now();
        let ban = Duration::from_secs(5);
        assert!(!peer.strike(3, now, ban));
        assert!(!peer.strike(3, now, ban));
        assert_eq!(peer.banned_for(now), None);
        assert!(peer.strike(3, now, ban));
        assert_eq!(peer.banned_for(now), Some(ban));
        assert_eq!(peer.banned_for(now + ban), None);
        assert!(!peer.strike(3, now, ban), "strikes start over after a ban");
    }
}
