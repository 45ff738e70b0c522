//! The per-socket queue: one [`Queue`] per socket (held by its
//! `SocketState`), and the places events take in it ([`InOrder`]).
//!
//! socketioxide runs each event in its own task; handlers that first wait
//! for their turn run one at a time in arrival order, so a client's
//! messages are delivered in the order it sent them and `add user`
//! completes before the events that follow it. The queue also counts what
//! waits in it (events and their bytes), which flood control reads as the
//! socket's backlog; who may take a place is decided by the extractor
//! (`chat::extract`), not here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::limits::Backlog;

/// One socket's queue of events.
#[derive(Default)]
pub struct Queue {
    /// Completion signal of the socket's latest queued event.
    tail: Mutex<Option<oneshot::Receiver<()>>>,
    /// The connect handler's place at the head of the queue, reserved by
    /// the connect middleware (see [`Queue::reserve_first`]).
    connect_place: Mutex<Option<InOrder>>,
    /// Events admitted and not finished yet.
    events: AtomicUsize,
    /// Their packets' bytes.
    bytes: AtomicUsize,
}

impl Queue {
    /// Takes the next place. Runs synchronously, in packet order.
    pub fn enqueue(&self) -> InOrder {
        let (done, tail) = oneshot::channel();
        let previous = self.tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).replace(tail);
        InOrder { previous, done, in_flight: None }
    }

    /// Takes the next place for an admitted event of `bytes`, counted in
    /// the backlog until its handler finishes.
    pub fn enqueue_counted(self: &Arc<Self>, bytes: usize) -> InOrder {
        self.events.fetch_add(1, Ordering::AcqRel);
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
        let mut place = self.enqueue();
        place.in_flight = Some(InFlight(self.clone(), bytes));
        place
    }

    /// Events waiting or running, and their bytes.
    pub fn backlog(&self) -> Backlog {
        Backlog { events: self.events.load(Ordering::Acquire), bytes: self.bytes.load(Ordering::Acquire) }
    }

    /// Reserves the socket's first place for its connect handler, from the
    /// connect middleware. socketioxide sends the client its connect packet
    /// before it marks the socket connected and runs the connect handler, so
    /// a quick client's first event could otherwise run (and fail to emit)
    /// before the socket counts as connected.
    pub fn reserve_first(&self) {
        let place = self.enqueue();
        *self.connect_place.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(place);
    }

    /// The place reserved by [`Queue::reserve_first`], or the next one.
    pub fn take_first(&self) -> InOrder {
        let reserved = self.connect_place.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        reserved.unwrap_or_else(|| self.enqueue())
    }
}

/// An event's place in its socket's queue (see the module docs). As an
/// extractor it is also where flood control happens: an event over the
/// socket's allowance is answered `rate_limited` at once and never parsed.
pub struct InOrder {
    previous: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
    in_flight: Option<InFlight>,
}

/// Held while a handler runs; dropping it lets the socket's next event proceed.
pub struct Turn {
    _done: oneshot::Sender<()>,
    _in_flight: Option<InFlight>,
}

/// Counts an admitted event (and its packet's bytes) in the backlog until dropped.
struct InFlight(Arc<Queue>, usize);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.events.fetch_sub(1, Ordering::AcqRel);
        self.0.bytes.fetch_sub(self.1, Ordering::AcqRel);
    }
}

impl InOrder {
    /// Waits until every earlier event of this socket has been handled.
    pub async fn wait(self) -> Turn {
        if let Some(previous) = self.previous {
            // Err means the previous handler finished (or panicked): our turn either way.
            let _ = previous.await;
        }
        Turn { _done: self.done, _in_flight: self.in_flight }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn places_are_served_in_order_and_counted_until_done() {
        let queue = Arc::new(Queue::default());
        let first = queue.enqueue_counted(10);
        let second = queue.enqueue_counted(5);
        assert_eq!(queue.backlog(), Backlog { events: 2, bytes: 15 });
        let waiting = tokio::spawn(second.wait());
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the second waits for the first");
        drop(first.wait().await);
        let turn = tokio::time::timeout(Duration::from_secs(1), waiting).await.unwrap().unwrap();
        assert_eq!(queue.backlog(), Backlog { events: 1, bytes: 5 });
        drop(turn);
        assert_eq!(queue.backlog(), Backlog { events: 0, bytes: 0 });
    }
}
