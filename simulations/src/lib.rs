//! `ordo-sim`: a deterministic discrete-event simulator that runs Ordo's
//! real consensus and mempool cores ([`ordo_consensus::Core`],
//! [`ordo_mempool::Mempool`] with its [`ordo_mempool::Intake`]) for every
//! node, over a simulated network, in one thread and virtual time.
//!
//! What it owns and the invariants it keeps:
//! - **one seed drives everything**: the network, the load, crashes and
//!   Byzantine choices draw from [`rng::Rng`] streams forked from the seed;
//!   there is no wall clock, thread or hash-map order inside a run, so the
//!   same (scenario, seed) gives the same trace byte for byte, fingerprinted
//!   by a blake3 trace hash;
//! - **the cores are the production cores, wired as in the node**: client
//!   transactions enter a node's intake, its mempool seals, disseminates and
//!   certifies batches over the simulated links (batches count against the
//!   uplink like any message), consensus orders the batch certificates
//!   ([`payload`]: the node's encoding, payload rule and inclusion key), and
//!   commits go back to the mempool, which fetches missing batches and
//!   delivers each height once; Byzantine nodes are real cores with tampered
//!   inputs and outputs ([`byzantine`]); crashes restore only what the cores
//!   asked to persist (safety data, voted blocks, stored batches) plus the
//!   committed prefix;
//! - **checks run as the simulation goes** ([`checker`]), following every
//!   transaction through its batch and certificate to its commit, and the
//!   first violation stops the run with the command that reproduces it.
//!
//! Entry points: [`run_scenario`] and [`replay`] for the `ordo` binary,
//! [`cli`] for a ready-made command line.

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
