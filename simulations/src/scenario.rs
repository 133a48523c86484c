//! Scenario files: what a run simulates, as TOML.
//!
//! Every field has a default except `name` and `nodes`, unknown fields are
//! refused, and [`Scenario::validate`] turns every inconsistency (a node
//! index out of range, a probability above one, too many faulty nodes for
//! the checks to mean anything) into an error naming the field.

use std::path::Path;

use ordo_types::NodeIndex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One simulated deployment and what happens to it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Where the scenario was read from (for reproduce commands).
    #[serde(skip)]
    pub path: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Committee size.
    pub nodes: usize,
    /// Virtual time simulated per seed.
    #[serde(default = "default_duration_ms")]
    pub duration_ms: u64,
    /// Seeds run by default (`A..B`, end exclusive).
    #[serde(default = "default_seeds")]
    pub seeds: String,
    /// `simulated` (cheap, forgeable; the default) or `ed25519`.
    #[serde(default)]
    pub signatures: Signatures,
    /// The consensus core's configuration (`ordo_consensus::Config` fields).
    #[serde(default)]
    pub consensus: ordo_consensus::Config,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub clock: ClockSpec,
    #[serde(default)]
    pub load: LoadSpec,
    #[serde(default)]
    pub crashes: Vec<CrashSpec>,
    pub crash_storm: Option<CrashStormSpec>,
    #[serde(default)]
    pub byzantine: Vec<ByzantineSpec>,
    pub twins: Option<TwinsSpec>,
    #[serde(default)]
    pub checks: ChecksSpec,
    /// Parameters of the inclusion rule (on when `checks.inclusion_rule`).
    #[serde(default)]
    pub inclusion: InclusionSpec,
    /// The mempool core's configuration (`ordo_mempool::Config` fields):
    /// batch size and delay, back-pressure, retransmit and fetch timers.
    #[serde(default)]
    pub mempool: ordo_mempool::Config,
}

/// Inclusion lists: an item a node has held uncommitted for `delay_ms` goes
/// on its lists (at most `max_list_len`, oldest first).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InclusionSpec {
    pub delay_ms: u64,
    pub max_list_len: usize,
}

impl Default for InclusionSpec {
    fn default() -> Self {
        InclusionSpec {
            delay_ms: 300,
            max_list_len: 64,
        }
    }
}

fn default_duration_ms() -> u64 {
    30_000
}

fn default_seeds() -> String {
    "0..8".into()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signatures {
    #[default]
    Simulated,
    Ed25519,
}

/// The network model.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSpec {
    pub latency: LatencySpec,
    /// Extra delay uniform in `[0, jitter_ms]` on every message.
    pub jitter_ms: u64,
    /// Probability a message is lost (before GST only).
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Probability a message is held back by `reorder_delay_ms` so later
    /// messages overtake it (before GST only).
    pub reorder: f64,
    pub reorder_delay_ms: u64,
    /// Uplink bandwidth per node; 0 = unlimited. A message occupies the
    /// sender's uplink for `encoded bytes * 8 / bandwidth`.
    pub bandwidth_mbps: u64,
    /// Global stabilisation time: from then on no loss, no reordering, no
    /// partition (partitions must heal by then), and every propagation delay
    /// is capped at `delta_ms`; the sender's uplink queue (`bandwidth_mbps`)
    /// comes on top.
    pub gst_ms: u64,
    pub delta_ms: u64,
    pub partitions: Vec<PartitionSpec>,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            latency: LatencySpec::Fixed { ms: 10 },
            jitter_ms: 0,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay_ms: 50,
            bandwidth_mbps: 0,
            gst_ms: 0,
            delta_ms: 2_000,
            partitions: Vec::new(),
        }
    }
}

/// One-way latency of a link.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum LatencySpec {
    Fixed {
        ms: u64,
    },
    Uniform {
        min_ms: u64,
        max_ms: u64,
    },
    Normal {
        mean_ms: f64,
        std_ms: f64,
    },
    /// Nodes are placed round-robin in the listed regions; a link's latency
    /// is the one-way time between its regions (see `network::REGIONS`),
    /// times a normal factor of standard deviation `spread`.
    Regions {
        regions: Vec<String>,
        #[serde(default)]
        spread: f64,
    },
}

/// Links between the groups are cut from `at_ms` until `heal_ms`. Nodes not
/// listed form one more group together. A partition must heal by GST
/// (`heal_ms <= network.gst_ms`): after GST links are reliable.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    pub at_ms: u64,
    pub heal_ms: u64,
    pub groups: Vec<Vec<NodeIndex>>,
}

/// Per-node timer clocks: each node's clock runs at `1 + drift` (drift
/// uniform in `±max_drift_ppm`) from an offset uniform in
/// `[0, max_offset_ms]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockSpec {
    pub max_drift_ppm: u64,
    pub max_offset_ms: u64,
}

/// Client load: transactions of `item_bytes` at `rate_per_s` (Poisson),
/// each from one of `clients` clients (its namespace), submitted to the
/// intakes of the nodes `submit_to` names.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadSpec {
    pub rate_per_s: f64,
    /// Transaction payload size (also accepted as `tx_bytes`).
    #[serde(alias = "tx_bytes")]
    pub item_bytes: usize,
    pub clients: u16,
    pub submit_to: SubmitTo,
    pub start_ms: u64,
    /// Last submission; default: `duration_ms - checks.drain_ms`.
    pub stop_ms: Option<u64>,
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec {
            rate_per_s: 0.0,
            item_bytes: 128,
            clients: 4,
            submit_to: SubmitTo::One,
            start_ms: 0,
            stop_ms: None,
        }
    }
}

/// Where a client sends a transaction. Any one honest node is enough: its
/// mempool disseminates the batch and every leader can propose the
/// certificate. `all` puts a copy in every node's batches (the ordered
/// output keeps the first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmitTo {
    /// Every node.
    All,
    /// One node chosen at random per transaction.
    #[default]
    One,
    /// The client's home node: client `c` always sends to node `c mod n`
    /// (so a censored client's transactions are in one node's batches).
    Home,
}

/// A scheduled crash, with an optional restart.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashSpec {
    pub node: NodeIndex,
    pub at_ms: u64,
    pub restart_ms: Option<u64>,
    /// On restart, lose the last persisted safety-data write.
    #[serde(default)]
    pub torn_write: bool,
}

/// Random crashes and restarts of honest nodes, at most `max_down` at once.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrashStormSpec {
    pub start_ms: u64,
    pub stop_ms: u64,
    pub mean_interval_ms: u64,
    pub min_down_ms: u64,
    pub max_down_ms: u64,
    /// Default: `f` minus the Byzantine nodes.
    pub max_down: Option<usize>,
    /// Probability a restart loses the last persisted write.
    pub torn_write_probability: f64,
}

impl Default for CrashStormSpec {
    fn default() -> Self {
        CrashStormSpec {
            start_ms: 0,
            stop_ms: 0,
            mean_interval_ms: 2_000,
            min_down_ms: 200,
            max_down_ms: 3_000,
            max_down: None,
            torn_write_probability: 0.0,
        }
    }
}

/// A Byzantine node: a real core whose inputs and outputs are tampered with.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByzantineSpec {
    pub node: NodeIndex,
    pub behaviour: Behaviour,
    /// `censor`: the client whose transactions' batch certificates are
    /// left out.
    pub victim: Option<u16>,
    /// `equivocate`: send both proposals to everyone instead of one to each
    /// half (with a broken vote rule this lets honest nodes vote twice).
    #[serde(default)]
    pub to_all: bool,
    /// `flood`, `replay`: period of the injected messages.
    #[serde(default = "default_every_ms")]
    pub every_ms: u64,
}

fn default_every_ms() -> u64 {
    100
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Two proposals for its view, one to each half of the others; also
    /// votes for both and forms every QC it can from the votes it gets.
    Equivocate,
    /// Votes for every proposal it sees, and for a made-up block too.
    DoubleVote,
    /// Never sends its votes.
    WithholdVotes,
    /// Leaves every batch certificate holding a victim client's transaction
    /// out of its proposals.
    Censor,
    /// Floods timeouts, QCs and TCs with absurd views and bogus signatures.
    Flood,
    /// Corrupts the signature of everything it signs.
    InvalidSignatures,
    /// Re-sends old messages it sent or received.
    Replay,
    /// Receives everything, sends nothing.
    Silent,
}

/// Two honest cores sharing `node`'s key and index: twin A talks to
/// `group_a`, twin B to `group_b` (the groups may overlap).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinsSpec {
    pub node: NodeIndex,
    pub group_a: Vec<NodeIndex>,
    pub group_b: Vec<NodeIndex>,
}

/// What the checkers require.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChecksSpec {
    /// After this time (default: GST + 5 s and the last scheduled fault),
    /// some honest node must commit a new block at least every
    /// `liveness_bound_ms`.
    pub liveness_after_ms: Option<u64>,
    pub liveness_bound_ms: u64,
    /// After the liveness start, the highest honest view may run at most
    /// this many views past the highest honest view at the last new commit
    /// (commits within a bounded number of views); 0 turns it off.
    pub liveness_bound_views: u64,
    /// Items must be committed within the last `drain_ms` of the run (the
    /// load stops this long before the end).
    pub drain_ms: u64,
    /// Require every accepted item committed exactly once.
    pub items_exactly_once: bool,
    /// Whether the inclusion-list rule is on: every core runs with
    /// `ordo_mempool::consensus::MempoolInclusion` (parameters in
    /// `[inclusion]`). Off is the negative control.
    pub inclusion_rule: bool,
    /// Fail if an honest node signs two different votes in one view.
    pub honest_equivocation_is_violation: bool,
    /// The censorship bound, checked as the run goes when set: a censored
    /// client's transaction accepted by an honest node must commit within
    /// this many views, counted from its submission or GST, whichever is
    /// later. Set it with the inclusion rule on (with it off, the check is
    /// the negative control's failure).
    pub censorship_bound_views: Option<u64>,
    /// The same bound in virtual ms.
    pub censorship_bound_ms: Option<u64>,
}

impl Default for ChecksSpec {
    fn default() -> Self {
        ChecksSpec {
            liveness_after_ms: None,
            liveness_bound_ms: 20_000,
            liveness_bound_views: 20,
            drain_ms: 10_000,
            items_exactly_once: true,
            inclusion_rule: false,
            honest_equivocation_is_violation: true,
            censorship_bound_views: None,
            censorship_bound_ms: None,
        }
    }
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let mut scenario = Scenario::parse(&text, &path.display().to_string())?;
        scenario.path = Some(path.display().to_string());
        Ok(scenario)
    }

    /// Parses and validates scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| Error::Scenario {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        scenario.validate().map_err(|message| Error::Scenario {
            origin: origin.to_string(),
            message,
        })?;
        Ok(scenario)
    }

    pub fn f(&self) -> usize {
        (self.nodes.saturating_sub(1)) / 3
    }

    /// Nodes that are not honest (Byzantine or twinned).
    pub fn faulty_nodes(&self) -> Vec<NodeIndex> {
        let mut v: Vec<NodeIndex> = self.byzantine.iter().map(|b| b.node).collect();
        if let Some(t) = &self.twins {
            v.push(t.node);
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    pub fn load_stop_ms(&self) -> u64 {
        self.load
            .stop_ms
            .unwrap_or(self.duration_ms.saturating_sub(self.checks.drain_ms))
    }

    /// When the liveness check starts: the given time, or 5 s after GST,
    /// the last heal, the last scheduled restart and the end of the storm.
    pub fn liveness_after_ms(&self) -> u64 {
        if let Some(t) = self.checks.liveness_after_ms {
            return t;
        }
        let mut t = self.network.gst_ms;
        for p in &self.network.partitions {
            t = t.max(p.heal_ms);
        }
        for c in &self.crashes {
            t = t.max(c.restart_ms.unwrap_or(c.at_ms));
        }
        if let Some(s) = &self.crash_storm {
            t = t.max(s.stop_ms + s.max_down_ms);
        }
        t + 5_000
    }

    /// Checks consistency; the error names the offending field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let n = self.nodes;
        if n == 0 || n > 1_000 {
            return Err(format!("nodes = {n}: must be 1..=1000"));
        }
        let node_ok = |i: NodeIndex| usize::from(i) < n;
        let prob = |name: &str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("{name} = {p}: must be a probability in [0, 1]"))
            }
        };
        // Bounds that keep every µs computation far from overflow.
        let bounded = |name: &str, v: u64, max: u64| {
            if v <= max {
                Ok(())
            } else {
                Err(format!("{name} = {v}: at most {max}"))
            }
        };
        const DAY_MS: u64 = 86_400_000;
        if self.duration_ms == 0 {
            return Err("duration_ms must be positive".into());
        }
        bounded("duration_ms", self.duration_ms, 365 * DAY_MS)?;
        bounded("network.jitter_ms", self.network.jitter_ms, DAY_MS)?;
        bounded("network.delta_ms", self.network.delta_ms, DAY_MS)?;
        bounded(
            "network.reorder_delay_ms",
            self.network.reorder_delay_ms,
            DAY_MS,
        )?;
        bounded("clock.max_offset_ms", self.clock.max_offset_ms, DAY_MS)?;
        bounded("clock.max_drift_ppm", self.clock.max_drift_ppm, 100_000)?;
        if self.load.rate_per_s > 100_000.0 {
            return Err("load.rate_per_s: at most 100000".into());
        }
        for (k, b) in self.byzantine.iter().enumerate() {
            bounded(&format!("byzantine[{k}].every_ms"), b.every_ms, DAY_MS)?;
        }
        if let LatencySpec::Fixed { ms } | LatencySpec::Uniform { max_ms: ms, .. } =
            &self.network.latency
        {
            bounded("network.latency", *ms, DAY_MS)?;
        }
        if let LatencySpec::Normal { mean_ms, std_ms } = &self.network.latency {
            if *mean_ms + 10.0 * *std_ms > DAY_MS as f64 {
                return Err("network.latency: mean_ms/std_ms too large".into());
            }
        }
        prob("network.loss", self.network.loss)?;
        prob("network.duplicate", self.network.duplicate)?;
        prob("network.reorder", self.network.reorder)?;
        if self.network.delta_ms == 0 {
            return Err("network.delta_ms must be positive".into());
        }
        match &self.network.latency {
            LatencySpec::Uniform { min_ms, max_ms } if min_ms > max_ms => {
                return Err("network.latency: min_ms above max_ms".into())
            }
            LatencySpec::Normal { mean_ms, std_ms }
                if !(mean_ms.is_finite()
                    && std_ms.is_finite()
                    && *mean_ms >= 0.0
                    && *std_ms >= 0.0) =>
            {
                return Err("network.latency: mean_ms and std_ms must be non-negative".into())
            }
            LatencySpec::Regions { regions, spread } => {
                if regions.is_empty() {
                    return Err("network.latency.regions is empty".into());
                }
                for r in regions {
                    if crate::network::region_index(r).is_none() {
                        return Err(format!(
                            "network.latency.regions: unknown region {r:?} (known: {})",
                            crate::network::REGIONS.join(", ")
                        ));
                    }
                }
                if !(0.0..=1.0).contains(spread) {
                    return Err("network.latency.spread must be in [0, 1]".into());
                }
            }
            _ => {}
        }
        for (k, p) in self.network.partitions.iter().enumerate() {
            if p.heal_ms < p.at_ms {
                return Err(format!("network.partitions[{k}]: heal_ms before at_ms"));
            }
            if p.heal_ms > self.network.gst_ms {
                return Err(format!(
                    "network.partitions[{k}]: heals at {} ms, after network.gst_ms = {} ms; \
                     links are reliable after GST, so a partition must heal by then \
                     (raise gst_ms)",
                    p.heal_ms, self.network.gst_ms
                ));
            }
            if let Some(i) = p.groups.iter().flatten().find(|i| !node_ok(**i)) {
                return Err(format!("network.partitions[{k}]: node {i} out of range"));
            }
        }
        if !(self.load.rate_per_s.is_finite() && self.load.rate_per_s >= 0.0) {
            return Err("load.rate_per_s must be non-negative".into());
        }
        if self.load.rate_per_s > 0.0 {
            if self.load.clients == 0 {
                return Err("load.clients must be positive".into());
            }
            let max = self.mempool.max_tx_bytes;
            if self.load.item_bytes < crate::load::ITEM_HEADER_BYTES || self.load.item_bytes > max {
                return Err(format!(
                    "load.item_bytes = {}: must be in {}..={max} (mempool.max_tx_bytes)",
                    self.load.item_bytes,
                    crate::load::ITEM_HEADER_BYTES,
                ));
            }
        }
        self.mempool
            .validate()
            .map_err(|e| format!("mempool: {e}"))?;
        for (k, c) in self.crashes.iter().enumerate() {
            if !node_ok(c.node) {
                return Err(format!("crashes[{k}]: node {} out of range", c.node));
            }
            if c.restart_ms.is_some_and(|r| r < c.at_ms) {
                return Err(format!("crashes[{k}]: restart_ms before at_ms"));
            }
        }
        if let Some(s) = &self.crash_storm {
            prob(
                "crash_storm.torn_write_probability",
                s.torn_write_probability,
            )?;
            if s.min_down_ms > s.max_down_ms || s.mean_interval_ms == 0 {
                return Err(
                    "crash_storm: need min_down_ms <= max_down_ms and mean_interval_ms > 0".into(),
                );
            }
        }
        let mut seen = Vec::new();
        for (k, b) in self.byzantine.iter().enumerate() {
            if !node_ok(b.node) {
                return Err(format!("byzantine[{k}]: node {} out of range", b.node));
            }
            if seen.contains(&b.node) {
                return Err(format!("byzantine[{k}]: node {} listed twice", b.node));
            }
            seen.push(b.node);
            if b.behaviour == Behaviour::Censor && b.victim.is_none() {
                return Err(format!("byzantine[{k}]: censor needs a victim client"));
            }
            if b.every_ms == 0 {
                return Err(format!("byzantine[{k}]: every_ms must be positive"));
            }
        }
        if let Some(t) = &self.twins {
            if !node_ok(t.node) || t.group_a.iter().chain(&t.group_b).any(|i| !node_ok(*i)) {
                return Err("twins: node out of range".into());
            }
            if seen.contains(&t.node) {
                return Err("twins.node is also listed as byzantine".into());
            }
        }
        let faulty = self.faulty_nodes().len();
        if faulty > self.f() {
            return Err(format!(
                "{faulty} faulty nodes but f = {} for n = {n}: the checks assume at most f",
                self.f()
            ));
        }
        parse_seeds(&self.seeds).map_err(|e| format!("seeds: {e}"))?;
        Ok(())
    }
}

/// Parses `A..B` (end exclusive), `A..=B` or a single seed `A`.
pub fn parse_seeds(text: &str) -> std::result::Result<std::ops::Range<u64>, String> {
    let text = text.trim();
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("{s:?} is not a seed number (expected A..B)"))
    };
    let range = if let Some((a, b)) = text.split_once("..=") {
        let end = num(b)?
            .checked_add(1)
            .ok_or_else(|| "end too large".to_string())?;
        num(a)?..end
    } else if let Some((a, b)) = text.split_once("..") {
        num(a)?..num(b)?
    } else {
        let a = num(text)?;
        a..a.saturating_add(1)
    };
    if range.is_empty() {
        return Err(format!("{text:?} is an empty range"));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "name = \"t\"\nnodes = 4\n";

    #[test]
    fn defaults_are_valid() {
        let s = Scenario::parse(BASE, "t").unwrap();
        assert_eq!(s.f(), 1);
        assert_eq!(parse_seeds(&s.seeds).unwrap(), 0..8);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        // (extra TOML, text the error must contain)
        let table = [
            ("[network]\nloss = 1.5\n", "network.loss"),
            ("[network]\nlatency = { model = \"regions\", regions = [\"mars-1\"] }\n", "mars-1"),
            ("[[crashes]]\nnode = 9\nat_ms = 1\n", "crashes[0]"),
            ("[[byzantine]]\nnode = 0\nbehaviour = \"censor\"\n", "victim"),
            ("[[byzantine]]\nnode = 0\nbehaviour = \"flood\"\n[[byzantine]]\nnode = 1\nbehaviour = \"flood\"\n", "faulty nodes"),
            ("[[byzantine]]\nnode = 0\nbehaviour = \"teleport\"\n", "teleport"),
            ("[clock]\nmax_drift_ppm = 1000000\n", "clock.max_drift_ppm"),
            ("bogus = 1\n", "bogus"),
            ("seeds = \"9..3\"\n", "seeds"),
            ("[network]\n[[network.partitions]]\nat_ms = 1\nheal_ms = 5\ngroups = [[0]]\n", "after network.gst_ms"),
            ("[consensus]\ntest_only_break_vote_rule = true\n", "test_only_break_vote_rule"),
        ];
        for (extra, expected) in table {
            let text = format!("{BASE}{extra}");
            let err = Scenario::parse(&text, "t").unwrap_err().to_string();
            assert!(err.contains(expected), "{extra:?}: {err}");
        }
    }

    #[test]
    fn seed_ranges() {
        assert_eq!(parse_seeds("3..5").unwrap(), 3..5);
        assert_eq!(parse_seeds("3..=5").unwrap(), 3..6);
        assert_eq!(parse_seeds("7").unwrap(), 7..8);
        assert!(parse_seeds("x..5").is_err());
        assert!(parse_seeds("5..5").is_err());
    }
}
