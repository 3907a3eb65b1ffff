//! Spreads one listener's connections evenly over its HTTP threads. The threads all accept on
//! the same socket, and the one that wins a burst of accepts keeps them all (a benchmark's 64
//! connections landed on one thread in 2 runs of 6, which then did all the work on one core);
//! so a thread that accepts a connection while it holds more than the least-loaded thread hands
//! the socket to that thread instead. Only accepts cross threads; requests never do.
//!
//! Written here rather than with `SO_REUSEPORT`: the kernel's per-socket queues split by a hash
//! (uneven for a few long-lived connections), and a reused port would also let a second instance
//! bind the same address silently and take half the traffic.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// One thread's open-connection count, on its own cache line: each thread writes its own at
/// every connection's start and end, and reads the others only when it accepts.
#[derive(Default)]
#[repr(align(64))]
struct Load(AtomicUsize);

/// The threads' loads and the inboxes through which a socket (`T`, with whatever travels with
/// it) is handed over.
pub(super) struct Balance<T> {
    loads: Vec<Load>,
    inboxes: Vec<mpsc::UnboundedSender<T>>,
}

/// Where an accepted connection is to be served.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Placement {
    /// By the thread that accepted it.
    Here,
    /// Handed to this thread.
    There(usize),
}

impl<T> Balance<T> {
    /// A balance over `threads` threads and the inbox each reads.
    pub(super) fn new(threads: usize) -> (Balance<T>, Vec<mpsc::UnboundedReceiver<T>>) {
        let (inboxes, receivers) = (0..threads).map(|_| mpsc::unbounded_channel()).unzip();
        let loads = (0..threads).map(|_| Load::default()).collect();
        (Balance { loads, inboxes }, receivers)
    }

    /// Places a connection accepted by thread `at` and counts it on the thread it goes to: here
    /// unless another thread holds fewer connections.
    pub(super) fn place(&self, at: usize) -> Placement {
        let here = self.loads[at].0.load(Ordering::Relaxed);
        let (least, fewest) = self
            .loads
            .iter()
            .enumerate()
            .map(|(i, l)| (i, l.0.load(Ordering::Relaxed)))
            .min_by_key(|&(_, n)| n)
            .unwrap_or((at, here));
        let to = if fewest < here { least } else { at };
        self.loads[to].0.fetch_add(1, Ordering::Relaxed);
        if to == at {
            Placement::Here
        } else {
            Placement::There(to)
        }
    }

    /// Hands `socket` to thread `to`; given back if that thread has stopped reading.
    pub(super) fn hand(&self, to: usize, socket: T) -> Result<(), T> {
        self.inboxes[to].send(socket).map_err(|e| e.0)
    }

    /// Moves a connection's count from thread `from` to `to` (a handoff that came back).
    pub(super) fn moved(&self, from: usize, to: usize) {
        self.loads[from].0.fetch_sub(1, Ordering::Relaxed);
        self.loads[to].0.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection served by thread `at` has ended.
    pub(super) fn left(&self, at: usize) {
        self.loads[at].0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_accepted_by_one_thread_is_spread_evenly() {
        let (balance, _inboxes) = Balance::<()>::new(2);
        let placed: Vec<Placement> = (0..64).map(|_| balance.place(0)).collect();
        let handed = placed.iter().filter(|p| **p == Placement::There(1)).count();
        assert_eq!(handed, 32, "{placed:?}");
        assert_eq!(placed[0], Placement::Here, "an idle pair keeps the first");
    }

    #[test]
    fn an_ended_connection_makes_room_on_its_thread() {
        let (balance, _inboxes) = Balance::<()>::new(3);
        for _ in 0..3 {
            balance.place(0);
        }
        // One on each thread now; thread 2's ends, so the next accept on 0 goes to 2.
        balance.left(2);
        assert_eq!(balance.place(0), Placement::There(2));
        assert_eq!(balance.place(1), Placement::Here, "all level: kept");
    }

    #[test]
    fn a_handoff_to_a_stopped_thread_comes_back() {
        let (balance, inboxes) = Balance::new(2);
        drop(inboxes);
        assert_eq!(balance.hand(1, "socket"), Err("socket"));
    }
}
