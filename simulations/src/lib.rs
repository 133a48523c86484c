//! `ordo-sim`: a deterministic discrete-event simulator that runs Ordo's
//! real consensus cores ([`ordo_consensus::Core`]) over a simulated network.
//!
//! What it owns and the invariants it keeps:
//! - **one seed drives everything**: the network, the load, crashes and
//!   Byzantine choices draw from [`rng::Rng`] streams forked from the seed;
//!   there is no wall clock, thread or hash-map order inside a run, so the
//!   same (scenario, seed) gives the same trace byte for byte, fingerprinted
//!   by a blake3 trace hash;
//! - **the cores are the production cores**: Byzantine nodes are real cores
//!   with tampered inputs and outputs ([`byzantine`]), crashes restore only
//!   what the core asked to persist plus the committed prefix;
//! - **checks run as the simulation goes** ([`checker`]) and the first
//!   violation stops the run with the command that reproduces it.
//!
//! Entry points: [`run_scenario`] and [`replay`] for the `ordo` binary,
//! [`cli`] for a ready-made command line. Payload items are opaque bytes so
//! the mempool's batch certificates can replace generated items later.

pub mod byzantine;
pub mod checker;
pub mod cli;
mod error;
pub mod load;
pub mod network;
pub mod payload;
pub mod plot;
pub mod report;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod sim;

pub use crate::checker::{Violation, ViolationKind};
pub use crate::error::{Error, Result};
pub use crate::report::{Percentiles, SeedReport, Summary};
pub use crate::runner::{replay, reproduce_command, run_scenario, run_seed, RunConfig};
pub use crate::scenario::Scenario;
pub use crate::sim::{RunOptions, Sim};
