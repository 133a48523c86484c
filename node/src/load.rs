//! Open-loop load generation and commit observation over the HTTP API, used
//! by `ordo localnet`.
//!
//! Each transaction starts with its 8-byte id; the observer reads committed
//! blocks from one node, recognises the ids and measures submit → commit
//! latency as a client sees it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
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

/// Submits `rate` transactions a second to `api`, open loop: if a request
/// is slow, the schedule does not stretch; the sender catches up (in
/// bounded bursts) and refused transactions are counted, not retried.
pub async fn drive(
    api: SocketAddr,
    rate: f64,
    tx_size: usize,
    first_id: u64,
    id_stride: u64,
    ledger: Arc<Ledger>,
    mut stop: watch::Receiver<bool>,
) {
    if rate <= 0.0 {
        return;
    }
    let mut client = HttpClient::new(api);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut id = first_id;
    loop {
        if *stop.borrow() {
            return;
        }
        let due = ((start.elapsed().as_secs_f64() * rate) as u64)
            .saturating_sub(sent)
            .min(1_000);
        if due == 0 {
            let next = start + interval.mul_f64((sent + 1) as f64);
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        for _ in 0..due {
            let tx = make_tx(id, tx_size);
            let at = Instant::now();
            ledger.record_sent(id, at);
            match client
                .request("POST", "/v1/transactions?namespace=1", &tx)
                .await
            {
                Ok((202, _)) => {
                    ledger.submitted.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {
                    ledger.refused.fetch_add(1, Ordering::Relaxed);
                    ledger.sent.lock().remove(&id);
                }
                Err(_) => {
                    ledger.errors.fetch_add(1, Ordering::Relaxed);
                    ledger.sent.lock().remove(&id);
                }
            }
            id += id_stride;
            sent += 1;
        }
    }
}

/// Follows the committed blocks of `api` and records commit latencies.
/// Returns the last height it read.
pub async fn observe(
    api: SocketAddr,
    ledger: Arc<Ledger>,
    height: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut client = HttpClient::new(api);
    let mut next = 1u64;
    loop {
        if *stop.borrow() {
            return;
        }
        let tip = match client.request("GET", "/v1/status", b"").await {
            Ok((200, body)) => serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["delivered_height"].as_u64())
                .unwrap_or(0),
            _ => 0,
        };
        while next <= tip {
            let Ok((200, body)) = client
                .request("GET", &format!("/v1/blocks/{next}"), b"")
                .await
            else {
                break;
            };
            let now = Instant::now();
            if let Ok(block) = serde_json::from_slice::<serde_json::Value>(&body) {
                for tx in block["transactions"].as_array().into_iter().flatten() {
                    let bytes = tx["payload"]
                        .as_str()
                        .and_then(|p| BASE64.decode(p).ok())
                        .unwrap_or_default();
                    if let Some(id) = bytes
                        .get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_be_bytes)
                    {
                        ledger.record_committed(id, now);
                    }
                }
            }
            height.store(next, Ordering::Relaxed);
            next += 1;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = stop.changed() => return,
        }
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
