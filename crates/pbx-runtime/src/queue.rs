//! Unbounded queues between tasks that weigh little while they wait.
//!
//! Every call holds a few queues (its leg's commands, its task's inputs,
//! its dialog's states) that carry a handful of items in the call's life.
//! tokio's unbounded queue sets aside room for 32 items and some padding up
//! front (about 700 bytes even for pointers); these allocate a small node
//! per item instead, about 100 bytes when empty.

use std::pin::Pin;

use futures_core::Stream;

/// The sending end; cheap to clone.
#[derive(Debug)]
pub struct Sender<T>(futures_channel::mpsc::UnboundedSender<T>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        Sender(self.0.clone())
    }
}

/// The receiving end.
#[derive(Debug)]
pub struct Receiver<T>(futures_channel::mpsc::UnboundedReceiver<T>);

/// A new queue.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let (sender, receiver) = futures_channel::mpsc::unbounded();
    (Sender(sender), Receiver(receiver))
}

impl<T> Sender<T> {
    /// Queues `item`; gives it back when the receiver is gone.
    pub fn send(&self, item: T) -> Result<(), T> {
        self.0.unbounded_send(item).map_err(|error| error.into_inner())
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|context| Pin::new(&mut self.0).poll_next(context)).await
    }

    /// An item already queued, if any.
    pub fn try_recv(&mut self) -> Option<T> {
        self.0.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_arrive_in_order_and_the_end_is_seen() {
        let (sender, mut receiver) = unbounded();
        let other = sender.clone();
        sender.send(1).unwrap();
        other.send(2).unwrap();
        assert_eq!(receiver.try_recv(), Some(1));
        assert_eq!(receiver.recv().await, Some(2));
        assert_eq!(receiver.try_recv(), None);
        drop((sender, other));
        assert_eq!(receiver.recv().await, None);
        let (sender, receiver) = unbounded::<u8>();
        drop(receiver);
        assert!(sender.is_closed());
        assert_eq!(sender.send(7), Err(7));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_an_item_from_another_thread() {
        let (sender, mut receiver) = unbounded();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let _ = sender.send("hello");
        });
        assert_eq!(receiver.recv().await, Some("hello"));
    }
}
