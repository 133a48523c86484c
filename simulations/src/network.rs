//! The simulated network: per-link latency, jitter, loss, duplication,
//! reordering, per-node uplink bandwidth, scheduled partitions, and a global
//! stabilisation time (GST) after which links are reliable and bounded.
//!
//! All randomness comes from the run's seed, drawn in the order messages
//! are sent, so a run is a pure function of (scenario, seed).

use ordo_types::NodeIndex;

use crate::rng::Rng;
use crate::scenario::{LatencySpec, NetworkSpec};

/// Regions known to the `regions` latency model.
pub const REGIONS: [&str; 7] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-northeast-1",
    "ap-southeast-1",
    "sa-east-1",
];

/// Plausible one-way latencies in ms between the regions above (half of
/// typical public inter-region round-trip times); 1 ms inside a region.
const ONE_WAY_MS: [[u64; 7]; 7] = [
    // use1 usw2 euw1 euc1 apne1 apse1 sae1
    [1, 35, 34, 45, 73, 108, 58],   // us-east-1
    [35, 1, 63, 73, 50, 83, 88],    // us-west-2
    [34, 63, 1, 13, 100, 85, 90],   // eu-west-1
    [45, 73, 13, 1, 113, 80, 100],  // eu-central-1
    [73, 50, 100, 113, 1, 35, 128], // ap-northeast-1
    [108, 83, 85, 80, 35, 1, 163],  // ap-southeast-1
    [58, 88, 90, 100, 128, 163, 1], // sa-east-1
];

pub fn region_index(name: &str) -> Option<usize> {
    REGIONS.iter().position(|r| *r == name)
}

/// When (if ever) copies of one message arrive.
#[derive(Debug, Default)]
pub struct Plan {
    /// Delivery times in µs; empty if the message was lost.
    pub deliveries: Vec<u64>,
    pub cut: bool,
}

pub struct Network {
    spec: NetworkSpec,
    /// Region of each node (regions model only).
    region_of: Vec<usize>,
    /// When each sender's uplink is free again (µs), by host.
    uplink_free_us: Vec<u64>,
    rng: Rng,
    gst_us: u64,
}

impl Network {
    pub fn new(spec: &NetworkSpec, nodes: usize, hosts: usize, seed: u64) -> Self {
        let region_of = match &spec.latency {
            LatencySpec::Regions { regions, .. } => (0..nodes)
                .map(|i| region_index(&regions[i % regions.len()]).unwrap_or(0))
                .collect(),
            _ => vec![0; nodes],
        };
        Network {
            spec: spec.clone(),
            region_of,
            uplink_free_us: vec![0; hosts],
            rng: Rng::fork(seed, 0x4E45_5457),
            gst_us: spec.gst_ms * 1_000,
        }
    }

    /// Region name of a node, for reports.
    pub fn region(&self, node: NodeIndex) -> Option<&'static str> {
        match self.spec.latency {
            LatencySpec::Regions { .. } => {
                self.region_of.get(usize::from(node)).map(|r| REGIONS[*r])
            }
            _ => None,
        }
    }

    /// Whether a partition cuts `a` from `b` at `now_ms`.
    pub fn partitioned(&self, now_ms: u64, a: NodeIndex, b: NodeIndex) -> bool {
        self.spec.partitions.iter().any(|p| {
            if now_ms < p.at_ms || now_ms >= p.heal_ms {
                return false;
            }
            let group = |x: NodeIndex| p.groups.iter().position(|g| g.contains(&x));
            group(a) != group(b)
        })
    }

    fn base_latency_us(&mut self, from: NodeIndex, to: NodeIndex) -> u64 {
        let ms = match &self.spec.latency {
            LatencySpec::Fixed { ms } => *ms as f64,
            LatencySpec::Uniform { min_ms, max_ms } => {
                *min_ms as f64 + self.rng.f64() * (max_ms - min_ms) as f64
            }
            LatencySpec::Normal { mean_ms, std_ms } => {
                (mean_ms + std_ms * self.rng.normal()).max(0.0)
            }
            LatencySpec::Regions { spread, .. } => {
                let a = self.region_of[usize::from(from)];
                let b = self.region_of[usize::from(to)];
                let base = ONE_WAY_MS[a][b] as f64;
                (base * (1.0 + spread * self.rng.normal())).max(base * 0.5)
            }
        };
        (ms * 1_000.0) as u64
    }

    /// Plans one message of `bytes` from host `from_host` (member `from`)
    /// to member `to`, sent at `now_us`.
    pub fn plan(
        &mut self,
        now_us: u64,
        from_host: usize,
        from: NodeIndex,
        to: NodeIndex,
        bytes: usize,
    ) -> Plan {
        let mut plan = Plan::default();
        if self.partitioned(now_us / 1_000, from, to) {
            plan.cut = true;
            return plan;
        }
        let mut depart = now_us;
        if self.spec.bandwidth_mbps > 0 {
            let start = now_us.max(self.uplink_free_us[from_host]);
            let tx_us = (bytes as u64 * 8).div_ceil(self.spec.bandwidth_mbps);
            self.uplink_free_us[from_host] = start + tx_us;
            depart = start + tx_us;
        }
        let stable = now_us >= self.gst_us;
        let mut latency = self.base_latency_us(from, to);
        if self.spec.jitter_ms > 0 {
            latency += self.rng.range(0, self.spec.jitter_ms * 1_000);
        }
        if stable {
            latency = latency.min(self.spec.delta_ms * 1_000);
        } else {
            if self.rng.chance(self.spec.loss) {
                return plan;
            }
            if self.rng.chance(self.spec.reorder) {
                latency += self.spec.reorder_delay_ms * 1_000;
            }
        }
        let at = depart + latency.max(1);
        plan.deliveries.push(at);
        if self.rng.chance(self.spec.duplicate) {
            let extra = self.rng.range(1, 1_000 + self.spec.jitter_ms * 1_000);
            plan.deliveries.push(at + extra);
        }
        plan
    }
}
