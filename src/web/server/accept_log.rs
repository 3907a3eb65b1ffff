//! Accept errors of one listener, logged at most once a second with the count of those not
//! logged: when descriptors run out every thread's `accept` fails every few milliseconds, and a
//! log line for each would bury everything else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The shortest time between two logged accept errors.
pub(super) const EVERY: Duration = Duration::from_secs(1);

/// The accept-error log of one listener, shared by its threads.
pub(super) struct AcceptLog {
    origin: Instant,
    /// Milliseconds since `origin` before which nothing more is logged.
    next_ms: AtomicU64,
    /// Errors not logged since the last line.
    suppressed: AtomicU64,
}

impl AcceptLog {
    /// Nothing logged yet.
    pub(super) fn new() -> AcceptLog {
        AcceptLog {
            origin: Instant::now(),
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Logs `error` unless one was logged less than [`EVERY`] ago (then counts it).
    pub(super) fn failed(&self, error: &std::io::Error) {
        if let Some(suppressed) = self.admit(Instant::now()) {
            tracing::warn!(%error, suppressed, "accept failed (errors since the last line: suppressed)");
        }
    }

    /// `Some(errors suppressed since the last line)` when an error at `now` is to be logged.
    fn admit(&self, now: Instant) -> Option<u64> {
        let every = u64::try_from(EVERY.as_millis()).unwrap_or(1000);
        let t = u64::try_from(now.saturating_duration_since(self.origin).as_millis())
            .unwrap_or(u64::MAX - every);
        let next = self.next_ms.load(Ordering::Relaxed);
        if t >= next
            && self
                .next_ms
                .compare_exchange(next, t + every, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_are_logged_at_most_once_a_second_with_the_count_suppressed() {
        let log = AcceptLog::new();
        let o = log.origin;
        let at = |ms: u64| o + Duration::from_millis(ms);
        assert_eq!(log.admit(at(0)), Some(0));
        // Two threads failing every 50 ms for a second: nothing more is logged…
        let logged: Vec<_> = (1..20)
            .flat_map(|i| [at(i * 50), at(i * 50 + 1)])
            .filter_map(|t| log.admit(t))
            .collect();
        assert!(logged.is_empty(), "{logged:?}");
        // …until a second has passed; that line counts what was not logged.
        assert_eq!(log.admit(at(1000)), Some(38));
        assert_eq!(log.admit(at(1001)), None);
    }
}
