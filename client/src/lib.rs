//! `ordo-client`: what a rollup needs to use Ordo without trusting the node
//! it talks to.
//!
//! - [`OutputBlock`]: a committed block as nodes serve it (header, commit
//!   certificate, batch certificates, batches);
//! - [`verify`]: checks a block against the committee — its commit
//!   certificate (a quorum of valid, distinct signatures over a descendant
//!   that follows it in the next view), its payload digest, every batch
//!   certificate, every batch against its certificate, and the parent link to
//!   the previous block;
//! - [`Follower`]: a stream of verified blocks from a height, over the node's
//!   WebSocket stream, resuming after disconnects (on the next node if
//!   several are given) from the height after the last verified block;
//! - [`submit`]: one transaction over HTTP.
//!
//! A forged, short or mismatched certificate is an error, never a block.

mod block;
mod error;
mod follow;
mod http;
mod verify;

pub use crate::block::OutputBlock;
pub use crate::error::{Error, Result};
pub use crate::follow::{Follower, FollowerConfig};
pub use crate::http::{submit, submit_durable};
pub use crate::verify::verify;
