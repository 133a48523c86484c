//! Timers of a driver loop: a min-heap of deadlines in milliseconds since the
//! node started. Timers are never cancelled; the cores ignore stale ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Milliseconds since the node started: the `now_ms` handed to the cores.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn instant(&self, at_ms: u64) -> Instant {
        self.start + Duration::from_millis(at_ms)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Most timers held; beyond it the oldest-scheduled are dropped (the cores
/// re-arm what they still need).
const MAX_TIMERS: usize = 100_000;

pub struct Timers<T> {
    heap: BinaryHeap<Reverse<(u64, u64, T)>>,
    seq: u64,
}

impl<T: Ord> Timers<T> {
    pub fn new() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    pub fn schedule(&mut self, at_ms: u64, timer: T) {
        if self.heap.len() >= MAX_TIMERS {
            return;
        }
        self.seq += 1;
        self.heap.push(Reverse((at_ms, self.seq, timer)));
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns every timer due at `now_ms`.
    pub fn due(&mut self, now_ms: u64) -> Vec<T> {
        let mut out = Vec::new();
        while self
            .heap
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= now_ms)
        {
            if let Some(Reverse((_, _, timer))) = self.heap.pop() {
                out.push(timer);
            }
        }
        out
    }
}

impl<T: Ord> Default for Timers<T> {
    fn default() -> Self {
        Self::new()
    }
}
