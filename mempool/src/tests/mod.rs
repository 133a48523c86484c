//! Scenario tests of the core: single-node tables in `core`, a wired
//! four-node cluster with plain queues in `cluster`. Not built under loom.
#![cfg(not(loom))]

mod cluster;
mod core;
mod support;
