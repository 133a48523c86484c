//! Open-loop load generation and commit observation over the HTTP API, used
//! by `ordo localnet` and `ordo bench`.
//!
//! Each transaction starts with its 8-byte id; the observer reads committed
//! blocks from one node, recognises the ids and measures submit → commit
//! latency as a client sees it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::http_client::HttpClient;

/// Submit times of transactions not yet seen committed, by id.
#[derive(Default)]
pub struct Ledger {
    sent: Mutex<HashMap<u64, Instant>>,
    pub submitted: AtomicU64,
    pub refused: AtomicU64,
    pub errors: AtomicU64,
    pub committed: AtomicU64,
    latencies_ms: Mutex<Vec<u32>>,
}

/// Most submitted-but-unseen transactions tracked; beyond it the oldest are
/// no longer measured.
const MAX_TRACKED: usize = 2_000_000;

impl Ledger {
    fn record_sent(&self, id: u64, at: Instant) {
        let mut sent = self.sent.lock();
        if sent.len() < MAX_TRACKED {
            sent.insert(id, at);
        }
    }

    fn record_committed(&self, id: u64, at: Instant) {
        if let Some(sent_at) = self.sent.lock().remove(&id) {
            let ms = at.duration_since(sent_at).as_millis().min(u32::MAX as u128) as u32;
            self.latencies_ms.lock().push(ms);
            self.committed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Latency percentiles (ms) over every observed commit so far, or over
    /// those from index `from` on.
    pub fn percentiles(&self, from: usize, ps: &[f64]) -> Vec<Option<u32>> {
        let all = self.latencies_ms.lock();
        let mut window: Vec<u32> = all.get(from..).map(<[u32]>::to_vec).unwrap_or_default();
        window.sort_unstable();
        ps.iter()
            .map(|p| {
                if window.is_empty() {
                    None
                } else {
                    let i = ((window.len() as f64 - 1.0) * p).round() as usize;
                    window.get(i).copied()
                }
            })
            .collect()
    }

    pub fn observed(&self) -> usize {
        self.latencies_ms.lock().len()
    }
}

/// A transaction of `size` bytes (at least 8) carrying `id`.
pub fn make_tx(id: u64, size: usize) -> Vec<u8> {
    let mut tx = vec![0xA5u8; size.max(8)];
    tx[..8].copy_from_slice(&id.to_be_bytes());
    tx
}

/// Submits `rate` transactions a second to `api` in chunks through
/// `POST /v1/transactions/batch`, open loop: every `tick` it sends what the
/// schedule says is due (capped per chunk), whatever happened to the last
/// chunk; refused transactions are counted, not retried. Every
/// `sample_every`-th transaction is timed.
#[allow(clippy::too_many_arguments)]
pub async fn drive_chunks(
    api: SocketAddr,
    rate: f64,
    tx_size: usize,
    first_id: u64,
    id_stride: u64,
    sample_every: u64,
    ledger: Arc<Ledger>,
    mut stop: watch::Receiver<bool>,
) {
    if rate <= 0.0 {
        return;
    }
    const TICK: Duration = Duration::from_millis(5);
    const MAX_CHUNK_TXS: u64 = 4_096;
    let mut client = HttpClient::new(api);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut id = first_id;
    let mut next_tick = start;
    let mut body = Vec::new();
    loop {
        if *stop.borrow() {
            return;
        }
        let due = ((start.elapsed().as_secs_f64() * rate) as u64)
            .saturating_sub(sent)
            .min(MAX_CHUNK_TXS);
        if due > 0 {
            body.clear();
            let at = Instant::now();
            let mut ids = Vec::with_capacity(due as usize);
            for _ in 0..due {
                let tx = make_tx(id, tx_size);
                body.extend_from_slice(&(tx.len() as u32).to_be_bytes());
                body.extend_from_slice(&tx);
                ids.push(id);
                if id.is_multiple_of(sample_every.max(1)) {
                    ledger.record_sent(id, at);
                }
                id += id_stride;
            }
            sent += due;
            match client
                .request("POST", "/v1/transactions/batch?namespace=1", &body)
                .await
            {
                Ok((status, response)) if status == 200 || status == 503 => {
                    let v: serde_json::Value =
                        serde_json::from_slice(&response).unwrap_or_default();
                    let accepted =
                        v["accepted"].as_u64().unwrap_or(0) + v["duplicates"].as_u64().unwrap_or(0);
                    let refused = v["refused"].as_u64().unwrap_or(due);
                    ledger.submitted.fetch_add(accepted, Ordering::Relaxed);
                    ledger.refused.fetch_add(refused, Ordering::Relaxed);
                    let mut sent_map = ledger.sent.lock();
                    for id in ids.iter().skip(accepted as usize) {
                        sent_map.remove(id);
                    }
                }
                _ => {
                    ledger.errors.fetch_add(due, Ordering::Relaxed);
                    let mut sent_map = ledger.sent.lock();
                    for id in &ids {
                        sent_map.remove(id);
                    }
                }
            }
        }
        next_tick += TICK;
        let now = Instant::now();
        if next_tick < now {
            next_tick = now;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_tick.into()) => {}
            _ = stop.changed() => return,
        }
    }
}

/// When each observed block arrived and how many transactions it held.
pub type CommitLog = Arc<Mutex<Vec<(Instant, u64)>>>;

/// Follows node `api`'s verified stream and records, per committed sampled
/// transaction, its latency, and per second how many transactions committed.
pub async fn observe_stream(
    api: SocketAddr,
    committee: Arc<ordo_types::Committee>,
    ledger: Arc<Ledger>,
    height: Arc<AtomicU64>,
    committed_at: Option<CommitLog>,
    mut stop: watch::Receiver<bool>,
) {
    let mut follower = ordo_client::Follower::new(ordo_client::FollowerConfig {
        nodes: vec![api],
        committee,
        from: 1,
        namespace: None,
        retry: Duration::from_millis(200),
    });
    loop {
        let block = tokio::select! {
            b = follower.next() => b,
            _ = stop.changed() => return,
        };
        let Ok(block) = block else {
            continue;
        };
        let now = Instant::now();
        let mut count = 0u64;
        for tx in block.transactions() {
            count += 1;
            if let Some(id) = tx
                .payload
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
            {
                ledger.record_committed(id, now);
            }
        }
        if let Some(log) = &committed_at {
            log.lock().push((now, count));
        }
        height.store(block.height(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_over_a_window() {
        let ledger = Ledger::default();
        let t0 = Instant::now();
        for (id, ms) in [(1u64, 10u64), (2, 20), (3, 30), (4, 40)] {
            ledger.record_sent(id, t0);
            ledger.record_committed(id, t0 + Duration::from_millis(ms));
        }
        assert_eq!(ledger.percentiles(0, &[0.5, 1.0]), vec![Some(30), Some(40)]);
        assert_eq!(ledger.percentiles(2, &[0.0]), vec![Some(30)]);
        assert_eq!(ledger.percentiles(9, &[0.5]), vec![None]);
        // Unknown ids (not sent by us) are ignored.
        ledger.record_committed(99, t0);
        assert_eq!(ledger.observed(), 4);
        assert_eq!(make_tx(7, 4).len(), 8);
    }
}
