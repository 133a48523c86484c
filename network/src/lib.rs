//! Authenticated transport between Ordo committee members.
//!
//! This crate owns the QUIC endpoint (quinn, rustls TLS 1.3, `ring` crypto),
//! the connection to every other member, and the framing of bytes on the
//! wire. It knows no protocol: it moves opaque frames, tagged with a
//! [`Class`], between members and hands them to the node as [`Incoming`]
//! through an [`Inbox`].
//!
//! Invariants kept here:
//! - **Only members talk.** Every connection is mutually authenticated: each
//!   side's self-signed certificate carries its ed25519 committee key, and a
//!   key outside the committee (or, when dialing, not the member we meant)
//!   fails the handshake. [`Incoming::from`] is therefore always the sender.
//! - **One connection per pair.** The member with the lower index dials, the
//!   higher one accepts; an accepted connection replaces an older one from
//!   the same member, which is how a restarted member is reached again.
//! - **Classes do not block each other.** Each class has its own send
//!   queue and long-lived QUIC stream per peer (Consensus streams are sent
//!   first) and its own inbound channel, so a consumer slow on Batches does
//!   not hold up Consensus frames.
//! - **Everything is bounded.** Frames are at most
//!   [`Config::max_frame_bytes`] (an oversize length prefix is refused
//!   before allocation); send queues, the inbound channels, concurrent
//!   streams and handshakes, reconnect delays and shutdown all have limits.
//! - **Peers are adversaries.** Malformed input is counted against the peer,
//!   never a panic; a peer that keeps sending it is disconnected and banned
//!   for [`Config::ban_ms`]. The node reports frames it cannot decode
//!   ([`Network::report_bad_frame`]); they count the same way.
//!
//! Delivery is at most once and in order per (peer, class) while a
//! connection lasts; frames in flight when a connection drops may be lost.

mod acceptor;
mod backoff;
mod class;
mod config;
mod dialer;
mod error;
pub mod frame;
mod inbox;
mod metrics;
mod network;
mod peer;
mod queue;
mod quic;
mod reader;
mod shared;
mod tls;
mod writer;

pub use class::Class;
pub use config::Config;
pub use error::{Error, Result};
pub use inbox::Inbox;
pub use metrics::{ClassSnapshot, MetricsSnapshot, PathSnapshot, PeerSnapshot};
pub use network::{Bound, Incoming, Network};
