//! Helpers shared by the simulator's integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;

use ordo_sim::Scenario;

pub fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"))
}

pub fn load(name: &str) -> Scenario {
    Scenario::load(&scenario_path(name)).unwrap()
}
