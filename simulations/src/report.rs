//! What a run reports: one [`SeedReport`] per seed, a [`Summary`] per
//! scenario, and their JSON, CSV and table forms.

use std::fmt::Write as _;

use serde::Serialize;

use crate::checker::Violation;

/// Percentiles of a sample, in the sample's unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Sorts `values` and summarises them (all zero when empty).
    pub fn of(values: &mut [f64]) -> Self {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Percentiles {
            count: values.len() as u64,
            mean: values.iter().sum::<f64>() / values.len() as f64,
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: values[values.len() - 1],
        }
    }
}

/// The outcome and measurements of one seed.
#[derive(Clone, Debug, Serialize)]
pub struct SeedReport {
    pub scenario: String,
    pub seed: u64,
    pub ok: bool,
    pub violation: Option<Violation>,
    /// The command that replays this seed (set by the runner).
    pub reproduce: String,
    /// blake3 over every processed event: equal for equal (scenario, seed).
    pub trace_hash: String,
    pub sim_ms: u64,
    pub wall_ms: f64,
    pub events: u64,
    pub committed_height: u64,
    pub max_view: u64,
    pub views_per_s: f64,
    pub blocks_per_s: f64,
    pub proposals: u64,
    pub timeouts: u64,
    pub qcs_formed: u64,
    pub tcs_formed: u64,
    pub restarts: u64,
    pub items_submitted: u64,
    pub items_committed: u64,
    pub items_lost_to_crashes: u64,
    pub duplicate_commits: u64,
    /// Committed copies of transactions in other authors' batches (from
    /// `submit_to = "all"`; the ordered output keeps the first).
    pub redundant_copies: u64,
    /// Uncommitted transactions no honest node's intake accepted (sent to
    /// nodes that were down, busy or faulty); not required to commit.
    pub txs_not_accepted: u64,
    /// Distinct batches committed.
    pub batches_committed: u64,
    /// Batches honest mempools fetched because a commit found them missing.
    pub batch_fetches: u64,
    pub items_per_s: f64,
    /// Submission to first commit by an honest node, per item.
    pub latency_ms: Percentiles,
    /// The same for the censored clients' items (censorship scenarios).
    pub victim_latency_ms: Option<Percentiles>,
    /// Longest time without a new committed height after the liveness start.
    pub max_commit_gap_ms: u64,
    /// Most views the highest honest view ran past the one at the last new
    /// commit, after the liveness start.
    pub max_commit_gap_views: u64,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_lost: u64,
    pub messages_cut: u64,
    pub messages_to_down_nodes: u64,
    pub misbehaviour_reports: u64,
    /// Misbehaviour reports by honest nodes against honest nodes.
    pub honest_blamed: u64,
    /// Times a censoring leader left a victim's batch certificate out of
    /// the payload it was offered.
    pub censored_certs: u64,
    pub honest_double_votes: u64,
    /// Per node: views in which it (a faulty node) sent two different votes.
    pub faulty_double_votes: Vec<u64>,
    /// Per node: views in which two different proposals it signed were sent
    /// (an equivocating leader, or both Twins leading).
    pub conflicting_proposals: Vec<u64>,
    /// Misbehaviour reports by honest nodes, per accused node.
    pub misbehaviour_against: Vec<u64>,
    /// `(commit time ms, latency ms)` per committed item, for charts.
    #[serde(skip)]
    pub samples: Vec<(f64, f64)>,
    /// `(latency ms, views)` per committed victim item: `views` is the view
    /// of the block that committed it minus the highest honest view at its
    /// submission (the `K` of the censorship bound; the ms are `T`).
    #[serde(skip)]
    pub victim_samples: Vec<(f64, f64)>,
    /// Victim items never committed in the run.
    pub victims_uncommitted: u64,
}

impl SeedReport {
    /// Simulated seconds per wall-clock second.
    pub fn speed(&self) -> f64 {
        self.sim_ms as f64 / self.wall_ms.max(1e-3)
    }
}

/// A failed seed and how to reproduce it.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub seed: u64,
    pub violation: Option<Violation>,
    pub reproduce: String,
}

/// All seeds of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub nodes: usize,
    pub seeds: u64,
    pub passed: u64,
    pub failures: Vec<Failure>,
    /// Percentiles over all items of all seeds.
    pub latency_ms: Percentiles,
    pub victim_latency_ms: Option<Percentiles>,
    /// Over every victim item of every seed (pooled): `T`, ms from
    /// submission to commit, and `K`, views from submission to the
    /// committing block.
    pub victim_pooled_ms: Option<Percentiles>,
    pub victim_pooled_views: Option<Percentiles>,
    pub victims_uncommitted: u64,
    pub views_per_s: f64,
    pub blocks_per_s: f64,
    pub items_per_s: f64,
    pub timeouts_per_seed: f64,
    pub max_commit_gap_ms: u64,
    pub sim_s: f64,
    pub wall_s: f64,
    /// Simulated seconds per wall second (summed over seeds, single core).
    pub speed: f64,
    #[serde(skip)]
    pub reports: Vec<SeedReport>,
}

impl Summary {
    pub fn from_reports(scenario: &str, nodes: usize, reports: Vec<SeedReport>) -> Self {
        let n = reports.len().max(1) as f64;
        let mut all: Vec<f64> = reports
            .iter()
            .flat_map(|r| r.samples.iter().map(|s| s.1))
            .collect();
        let victims: Vec<&SeedReport> = reports
            .iter()
            .filter(|r| r.victim_latency_ms.is_some())
            .collect();
        let victim_latency_ms = (!victims.is_empty()).then(|| {
            let mut v = Percentiles::default();
            for r in &victims {
                if let Some(p) = r.victim_latency_ms {
                    v.count += p.count;
                    v.p50 += p.p50 / victims.len() as f64;
                    v.p90 += p.p90 / victims.len() as f64;
                    v.p99 += p.p99 / victims.len() as f64;
                    v.mean += p.mean / victims.len() as f64;
                    v.max = v.max.max(p.max);
                }
            }
            v
        });
        let (mut pooled_ms, mut pooled_views): (Vec<f64>, Vec<f64>) = reports
            .iter()
            .flat_map(|r| r.victim_samples.iter().copied())
            .unzip();
        let victim_pooled_ms = (!victims.is_empty()).then(|| Percentiles::of(&mut pooled_ms));
        let victim_pooled_views = (!victims.is_empty()).then(|| Percentiles::of(&mut pooled_views));
        let sim_s = reports.iter().map(|r| r.sim_ms as f64 / 1e3).sum::<f64>();
        let wall_s = reports.iter().map(|r| r.wall_ms / 1e3).sum::<f64>();
        let failures = reports
            .iter()
            .filter(|r| !r.ok)
            .map(|r| Failure {
                seed: r.seed,
                violation: r.violation.clone(),
                reproduce: r.reproduce.clone(),
            })
            .collect::<Vec<_>>();
        Summary {
            scenario: scenario.to_string(),
            nodes,
            seeds: reports.len() as u64,
            passed: reports.iter().filter(|r| r.ok).count() as u64,
            failures,
            latency_ms: Percentiles::of(&mut all),
            victim_latency_ms,
            victim_pooled_ms,
            victim_pooled_views,
            victims_uncommitted: reports.iter().map(|r| r.victims_uncommitted).sum(),
            views_per_s: reports.iter().map(|r| r.views_per_s).sum::<f64>() / n,
            blocks_per_s: reports.iter().map(|r| r.blocks_per_s).sum::<f64>() / n,
            items_per_s: reports.iter().map(|r| r.items_per_s).sum::<f64>() / n,
            timeouts_per_seed: reports.iter().map(|r| r.timeouts as f64).sum::<f64>() / n,
            max_commit_gap_ms: reports
                .iter()
                .map(|r| r.max_commit_gap_ms)
                .max()
                .unwrap_or(0),
            sim_s,
            wall_s,
            speed: sim_s / wall_s.max(1e-6),
            reports,
        }
    }

    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// A human table: one row per seed, then the totals.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>6} {:>4} {:>8} {:>7} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8}  trace",
            "seed",
            "ok",
            "height",
            "views",
            "views/s",
            "timeouts",
            "items",
            "p50 ms",
            "p99 ms",
            "sim/wall",
        );
        for r in &self.reports {
            let _ = writeln!(
                s,
                "{:>6} {:>4} {:>8} {:>7} {:>8.1} {:>8} {:>8} {:>9.1} {:>9.1} {:>8.0}  {}",
                r.seed,
                if r.ok { "ok" } else { "FAIL" },
                r.committed_height,
                r.max_view,
                r.views_per_s,
                r.timeouts,
                r.items_committed,
                r.latency_ms.p50,
                r.latency_ms.p99,
                r.speed(),
                &r.trace_hash[..16]
            );
        }
        let _ = writeln!(
            s,
            "{}: {}/{} seeds passed (n = {}); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
             {:.1} views/s, {:.1} blocks/s, {:.1} items/s; {:.1} timeouts/seed; \
             longest commit gap after the liveness start {} ms; {:.1} simulated s in {:.2} wall s \
             ({:.0}x)",
            self.scenario,
            self.passed,
            self.seeds,
            self.nodes,
            self.latency_ms.p50,
            self.latency_ms.p99,
            self.latency_ms.max,
            self.views_per_s,
            self.blocks_per_s,
            self.items_per_s,
            self.timeouts_per_seed,
            self.max_commit_gap_ms,
            self.sim_s,
            self.wall_s,
            self.speed
        );
        if let Some(v) = &self.victim_latency_ms {
            let _ = writeln!(
                s,
                "censored clients' items: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (mean over seeds)",
                v.p50, v.p99, v.max
            );
        }
        if let (Some(t), Some(k)) = (&self.victim_pooled_ms, &self.victim_pooled_views) {
            let _ = writeln!(
                s,
                "censored clients' items, pooled over {} items of all seeds: \
                 K (views) p50 {:.0}, p99 {:.0}, max {:.0}; T (ms) p50 {:.1}, p99 {:.1}, max {:.1}; \
                 {} never committed",
                t.count, k.p50, k.p99, k.max, t.p50, t.p99, t.max, self.victims_uncommitted
            );
        }
        for f in &self.failures {
            if let Some(v) = &f.violation {
                let _ = writeln!(s, "FAILED seed {}: {v}", f.seed);
            }
            let _ = writeln!(s, "  reproduce: {}", f.reproduce);
        }
        s
    }

    /// One CSV row per seed.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "seed,ok,sim_ms,wall_ms,height,max_view,views_per_s,blocks_per_s,timeouts,tcs,\
             items_submitted,items_committed,items_per_s,latency_p50_ms,latency_p90_ms,\
             latency_p99_ms,latency_max_ms,victim_p50_ms,victim_p99_ms,max_commit_gap_ms,\
             messages_sent,bytes_sent,trace_hash\n",
        );
        for r in &self.reports {
            let (vp50, vp99) = r
                .victim_latency_ms
                .map_or((String::new(), String::new()), |v| {
                    (format!("{:.3}", v.p50), format!("{:.3}", v.p99))
                });
            let _ = writeln!(
                s,
                "{},{},{},{:.1},{},{},{:.3},{:.3},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{},{},{},{},{},{}",
                r.seed,
                r.ok,
                r.sim_ms,
                r.wall_ms,
                r.committed_height,
                r.max_view,
                r.views_per_s,
                r.blocks_per_s,
                r.timeouts,
                r.tcs_formed,
                r.items_submitted,
                r.items_committed,
                r.items_per_s,
                r.latency_ms.p50,
                r.latency_ms.p90,
                r.latency_ms.p99,
                r.latency_ms.max,
                vp50,
                vp99,
                r.max_commit_gap_ms,
                r.messages_sent,
                r.bytes_sent,
                r.trace_hash
            );
        }
        s
    }
}
