//! The Ordo sequencer node: the tokio host that connects the pure consensus
//! and mempool cores to the QUIC transport, durable storage (redb), timers
//! and the HTTP API; and the `ordo` command line.
//!
//! Invariants the host keeps:
//! - actions of a core are executed in order, and an `Action::Persist` is
//!   durable (redb commit with fsync) before any later action runs;
//! - committed blocks are stored and served in strict height order, gap-free;
//! - bad input (config, frames, HTTP bodies) is an error message or a status
//!   code, never a crash.

pub mod api;
pub mod backends;
pub mod batch_log;
pub mod cli;
pub mod config;
pub mod consensus_actor;
pub mod durable;
pub mod error;
pub mod extract;
pub mod http_client;
pub mod keyfile;
pub mod load;
pub mod logging;
pub mod mempool_actor;
pub mod metrics;
pub mod output;
pub mod payload;
pub mod record;
pub mod runtime;
pub mod shared;
pub mod storage;
pub mod stream;
pub mod sync;
pub mod timers;
pub mod vote_log;
pub mod wire;

pub use crate::error::{Error, Result};
