//! The receiving end handed to the node: one bounded channel per traffic
//! class, so frames of one class never wait behind another's. A consumer
//! that falls behind on Batches fills only the Batches channel; its readers
//! then stop and QUIC flow control slows only the peers' Batches streams.

use tokio::sync::mpsc::{self, error::TryRecvError};

use crate::{Class, Incoming};

/// Frames received from authenticated members, by class.
///
/// Either read everything through [`Inbox::recv`], which always takes a
/// waiting Consensus frame first (then Sync, then Batches), or split it
/// with [`Inbox::into_classes`] and consume each class in its own task, so
/// slow processing of one class cannot delay another. Within a class,
/// frames from one peer keep their order.
#[derive(Debug)]
pub struct Inbox {
    /// Indexed by [`Class::index`].
    classes: [mpsc::Receiver<Incoming>; 3],
}

/// Classes in the order [`Inbox::recv`] serves them.
const PRIORITY: [Class; 3] = [Class::Consensus, Class::Sync, Class::Batches];

impl Inbox {
    pub(crate) fn new(classes: [mpsc::Receiver<Incoming>; 3]) -> Self {
        Inbox { classes }
    }

    /// The next frame, a waiting Consensus frame before any other, then
    /// Sync, then Batches. `None` once the network has shut down and every
    /// channel is empty.
    ///
    /// A peer flooding Consensus frames can starve the other classes of a
    /// consumer that only uses this; [`Inbox::into_classes`] cannot be.
    pub async fn recv(&mut self) -> Option<Incoming> {
        let [consensus, batches, sync] = &mut self.classes;
        tokio::select! {
            biased;
            Some(frame) = consensus.recv() => Some(frame),
            Some(frame) = sync.recv() => Some(frame),
            Some(frame) = batches.recv() => Some(frame),
            else => None,
        }
    }

    /// A frame if one is waiting, in the order of [`Inbox::recv`].
    /// `Disconnected` only once every channel is closed and empty.
    pub fn try_recv(&mut self) -> Result<Incoming, TryRecvError> {
        let mut open = false;
        for class in PRIORITY {
            match self.classes[class.index()].try_recv() {
                Ok(frame) => return Ok(frame),
                Err(TryRecvError::Empty) => open = true,
                Err(TryRecvError::Disconnected) => {}
            }
        }
        Err(match open {
            true => TryRecvError::Empty,
            false => TryRecvError::Disconnected,
        })
    }

    /// The per-class receivers, indexed by [`Class::index`].
    pub fn into_classes(self) -> [mpsc::Receiver<Incoming>; 3] {
        self.classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(class: Class, i: u8) -> Incoming {
        Incoming {
            from: 1,
            class,
            bytes: Bytes::from(vec![i]),
        }
    }

    fn inbox() -> (Inbox, [mpsc::Sender<Incoming>; 3]) {
        let (tx, rx): (Vec<_>, Vec<_>) = (0..3).map(|_| mpsc::channel(8)).unzip();
        let rx: [mpsc::Receiver<Incoming>; 3] = rx.try_into().unwrap();
        (Inbox::new(rx), tx.try_into().unwrap())
    }

    #[tokio::test]
    async fn consensus_is_served_before_frames_queued_earlier_on_other_classes() {
        let (mut inbox, tx) = inbox();
        for i in 0..3 {
            tx[Class::Batches.index()]
                .send(frame(Class::Batches, i))
                .await
                .unwrap();
        }
        tx[Class::Sync.index()]
            .send(frame(Class::Sync, 9))
            .await
            .unwrap();
        tx[Class::Consensus.index()]
            .send(frame(Class::Consensus, 7))
            .await
            .unwrap();
        let order: Vec<(Class, u8)> = [(); 5]
            .iter()
            .map(|_| inbox.try_recv().unwrap())
            .map(|f| (f.class, f.bytes[0]))
            .collect();
        assert_eq!(
            order,
            vec![
                (Class::Consensus, 7),
                (Class::Sync, 9),
                (Class::Batches, 0),
                (Class::Batches, 1),
                (Class::Batches, 2),
            ]
        );
        tx[Class::Batches.index()]
            .send(frame(Class::Batches, 3))
            .await
            .unwrap();
        tx[Class::Consensus.index()]
            .send(frame(Class::Consensus, 8))
            .await
            .unwrap();
        assert_eq!(inbox.recv().await.unwrap().class, Class::Consensus);
        assert_eq!(inbox.recv().await.unwrap().class, Class::Batches);
    }

    #[tokio::test]
    async fn ends_only_when_every_class_is_closed_and_drained() {
        let (mut inbox, [consensus, batches, sync]) = inbox();
        batches.send(frame(Class::Batches, 1)).await.unwrap();
        drop(consensus);
        drop(sync);
        assert!(matches!(inbox.try_recv(), Ok(f) if f.class == Class::Batches));
        assert!(matches!(inbox.try_recv(), Err(TryRecvError::Empty)));
        batches.send(frame(Class::Batches, 2)).await.unwrap();
        drop(batches);
        assert_eq!(inbox.recv().await.unwrap().bytes[0], 2);
        assert!(inbox.recv().await.is_none());
        assert!(matches!(inbox.try_recv(), Err(TryRecvError::Disconnected)));
    }
}
