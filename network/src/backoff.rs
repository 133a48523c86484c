//! Reconnect delays: exponential with "equal jitter" (half fixed, half
//! random), so a committee that lost a member does not redial in lockstep.
//! The jitter comes from a seed the caller owns.

use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Backoff {
    min_ms: u64,
    max_ms: u64,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(min_ms: u64, max_ms: u64, seed: u64) -> Self {
        Backoff {
            min_ms,
            max_ms,
            attempt: 0,
            rng: seed,
        }
    }

    /// The delay before the next attempt: `cap/2 + rand(0..=cap/2)` where
    /// `cap = min(max, min * 2^attempts)`.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self
            .min_ms
            .saturating_mul(1u64 << self.attempt.min(30))
            .min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        let half = cap / 2;
        Duration::from_millis(cap - half + self.next_random() % (half + 1))
    }

    /// After a successful connection, start again from the minimum.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// splitmix64.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_caps() {
        let mut b = Backoff::new(100, 1_000, 7);
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        let caps = [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000];
        for (d, cap) in delays.iter().zip(caps) {
            assert!(
                *d >= cap / 2 && *d <= cap,
                "{d} not in [{}, {cap}]",
                cap / 2
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn different_seeds_spread_out() {
        let first = |seed| Backoff::new(1_000, 1_000, seed).next_delay();
        assert!(
            (0..8)
                .map(first)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 1
        );
    }
}
