//! `ordo-mempool`: batch dissemination, availability certificates and
//! inclusion lists, as a pure, deterministic state machine.
//!
//! What this crate owns:
//! - the client-facing [`Intake`], the one concurrent structure (bounded by
//!   bytes, count, namespace and transaction size; duplicates accepted once;
//!   fair across namespaces when drained);
//! - the [`Mempool`] core, `handle(now_ms, Event) -> Vec<Action>`: it seals
//!   own [`Batch`]es, acknowledges peers' batches, forms [`BatchCert`]s from a
//!   quorum of [`BatchAck`]s, queues certificates for consensus
//!   ([`Mempool::payload`]), and after a commit fetches missing batches and
//!   delivers blocks in order;
//! - the inclusion-list rule ([`inclusion::check_inclusion`]) consensus
//!   applies to proposals.
//!
//! Invariants:
//! - no clock, socket, thread or randomness in the core: time comes in as
//!   `now_ms`, timers go out as [`Action::ScheduleTimer`]; the same events
//!   give the same actions;
//! - an ack is sent only after the [`Action::Persist`] of its batch, and the
//!   host makes a persist durable before running later actions, so a
//!   certificate's `n - f` signers really hold the bytes;
//! - a certificate is accepted only with a quorum of distinct members'
//!   valid signatures over its header;
//! - peer input never panics: invalid messages are dropped and reported as
//!   [`Action::Misbehaviour`];
//! - every queue and memory is bounded by [`Config`] or [`IntakeConfig`].
//!
//! The intake's races are model-checked with loom:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p ordo-mempool --release --lib loom
//! ```

mod ack;
mod batch;
mod batch_maker;
mod bounded;
mod certificate;
mod config;
pub mod consensus;
mod core;
mod error;
mod fetch;
pub mod inclusion;
mod intake;
mod message;
pub mod payload;
mod pending;
mod sync;
mod transaction;
pub mod wire;

#[cfg(test)]
mod tests;

pub use crate::ack::{ack_message, BatchAck};
pub use crate::batch::{Batch, BatchHeader, BatchLimits};
pub use crate::batch_maker::{BatchMaker, Sealed};
pub use crate::certificate::BatchCert;
pub use crate::config::Config;
pub use crate::core::{Action, Event, Mempool, Timer};
pub use crate::error::{Error, Result};
pub use crate::fetch::{CommittedBlock, DeliveryWait, Fetcher, Request};
pub use crate::inclusion::{InclusionList, InclusionRule};
pub use crate::intake::{Admission, Intake, IntakeConfig};
pub use crate::message::Message;
pub use crate::pending::PendingCerts;
pub use crate::transaction::Transaction;
