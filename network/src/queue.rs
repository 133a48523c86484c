//! A bounded per-peer, per-class send queue with an explicit overflow
//! policy. One writer task pops; any number of callers push.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// What a full queue does with a new frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Evict the oldest queued frame and accept the new one.
    DropOldest,
    /// Refuse the new frame; the caller is told.
    RejectNewest,
}

/// What became of a pushed frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Queued, and the oldest frame was evicted to make room.
    EvictedOldest,
    /// Not queued: the queue is full.
    Rejected,
}

#[derive(Debug)]
pub(crate) struct SendQueue {
    frames: Mutex<VecDeque<Bytes>>,
    ready: Notify,
    capacity: usize,
    overflow: Overflow,
}

impl SendQueue {
    pub fn new(capacity: usize, overflow: Overflow) -> Self {
        assert!(capacity > 0, "a send queue needs room for one frame");
        SendQueue {
            frames: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            ready: Notify::new(),
            capacity,
            overflow,
        }
    }

    pub fn push(&self, frame: Bytes) -> Pushed {
        let outcome = {
            let mut frames = self.frames.lock();
            let outcome = if frames.len() < self.capacity {
                Pushed::Queued
            } else if self.overflow == Overflow::DropOldest {
                frames.pop_front();
                Pushed::EvictedOldest
            } else {
                return Pushed::Rejected;
            };
            frames.push_back(frame);
            debug_assert!(frames.len() <= self.capacity);
            outcome
        };
        self.ready.notify_one();
        outcome
    }

    pub fn try_pop(&self) -> Option<Bytes> {
        self.frames.lock().pop_front()
    }

    /// Waits for a frame. Only one task may wait at a time.
    pub async fn pop(&self) -> Bytes {
        loop {
            if let Some(frame) = self.try_pop() {
                return frame;
            }
            self.ready.notified().await;
        }
    }

    pub fn len(&self) -> usize {
        self.frames.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: u8) -> Bytes {
        Bytes::from(vec![i])
    }

    #[test]
    fn drop_oldest_keeps_the_newest_frames() {
        let q = SendQueue::new(2, Overflow::DropOldest);
        assert_eq!(q.push(frame(1)), Pushed::Queued);
        assert_eq!(q.push(frame(2)), Pushed::Queued);
        assert_eq!(q.push(frame(3)), Pushed::EvictedOldest);
        assert_eq!(q.len(), 2);
        assert_eq!(q.try_pop(), Some(frame(2)));
        assert_eq!(q.try_pop(), Some(frame(3)));
        assert_eq!(q.try_pop(), None);
    }

    #[test]
    fn reject_newest_keeps_the_queued_frames() {
        let q = SendQueue::new(1, Overflow::RejectNewest);
        assert_eq!(q.push(frame(1)), Pushed::Queued);
        assert_eq!(q.push(frame(2)), Pushed::Rejected);
        assert_eq!(q.try_pop(), Some(frame(1)));
        assert_eq!(q.push(frame(3)), Pushed::Queued);
    }

    #[tokio::test]
    async fn pop_wakes_on_push() {
        let q = std::sync::Arc::new(SendQueue::new(4, Overflow::RejectNewest));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await }
        });
        tokio::task::yield_now().await;
        q.push(frame(9));
        assert_eq!(waiter.await.unwrap(), frame(9));
    }
}
