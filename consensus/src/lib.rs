//! The pure 2-chain HotStuff consensus core of Ordo (Jolteon / DiemBFT-v4
//! family).
//!
//! [`Core::handle`] takes the time and one [`Event`] and returns the
//! [`Action`]s to execute, in order. There is no clock, socket, thread or
//! randomness in here: the node drives it with tokio and the simulator with
//! virtual time, and both get the same behaviour.
//!
//! Invariants the core keeps:
//! - it never signs a vote or timeout except through [`safety::SafetyRules`],
//!   and every new signature is preceded by an [`Action::Persist`] of the
//!   safety data that protects it;
//! - [`Action::Commit`] outputs blocks in strict height order without gaps,
//!   each with a [`CommitCert`] a rollup can verify with the committee alone;
//! - no peer input changes state before it is validated (membership, leader,
//!   signatures, certificates, view bounds); invalid input becomes an
//!   [`Action::Misbehaviour`] and never a panic. The one deferred check is a
//!   vote's signature: votes wait unverified in the bounded pending set of
//!   [`aggregator::VoteAggregator`] (one per author and view), which decides
//!   nothing until a quorum is batch-verified; a double vote is reported
//!   only once both votes verified;
//! - memory is bounded: votes and timeouts only within `max_view_ahead`
//!   views, orphans, fetches and pending payload all capped.
//!
//! The payload is opaque here ([`Payload`] is a list of byte items) so the
//! mempool can carry batch certificates without the core knowing them.

pub mod aggregator;
pub mod block_tree;
pub mod certificates;
pub mod config;
pub mod core;
pub mod event;
mod fault;
pub mod inclusion;
pub mod leader;
pub mod messages;
pub mod pacemaker;
pub mod safety;
#[cfg(feature = "strategies")]
pub mod strategies;
pub mod testing;

pub use crate::config::Config;
pub use crate::core::{Core, PayloadRules, Recovery, Stats};
pub use crate::event::{Action, Event, Timer};
pub use crate::fault::Fault;
pub use crate::inclusion::{InclusionAttachment, InclusionRules};
pub use crate::leader::{election, LeaderElection, Reputation, RoundRobin, StableLeaders};
pub use crate::messages::{
    Block, BlockHeader, CommitCert, CommittedBlock, Height, Message, Payload, PayloadItem,
    QuorumCert, Timeout, TimeoutCert, View, Vote,
};
pub use crate::safety::{Refusal, SafetyData, SafetyRules, Signed};
