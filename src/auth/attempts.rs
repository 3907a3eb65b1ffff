//! How often a token may be tried: per peer, a few free failures and then a doubling backoff; for
//! everyone together, a bucket of failures that refills at a steady rate. Asked before a token is
//! checked (a peer in its backoff is refused without its token being looked at), told after.
//!
//! In memory only, bounded ([`MAX_PEERS`] addresses; past it the longest-quiet one is forgotten),
//! on the real monotonic clock: a restart forgives everyone. Owns no I/O, logs nothing (the
//! caller logs, with the peer, never the token).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures a peer may make in a row; the last of them starts its backoff.
pub const FREE_FAILURES: u32 = 5;
/// The first backoff; each further failure doubles it.
pub(super) const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest backoff.
pub(super) const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// A peer with no failure for this long starts again from zero.
pub(super) const FORGET_AFTER: Duration = Duration::from_secs(900);
/// Most peers remembered at once.
pub(super) const MAX_PEERS: usize = 10_000;
/// Failures of all peers together that may come at once …
pub(super) const GLOBAL_BURST: f64 = 100.0;
/// … and how many more per second after that.
pub(super) const GLOBAL_PER_SECOND: f64 = 10.0;

/// An attempt refused before its token was looked at: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// How long until an attempt may be made (at least a second, as `Retry-After` counts).
    pub retry_after: Duration,
}

#[derive(Debug)]
struct Peer {
    failures: u32,
    blocked_until: Option<Instant>,
    last_failure: Instant,
}

#[derive(Debug)]
struct Inner {
    peers: HashMap<IpAddr, Peer>,
    /// Failures the bucket still allows, as of `refilled`.
    allowance: f64,
    refilled: Instant,
}

/// The attempt counts of one service. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Attempts {
    inner: Mutex<Inner>,
}

impl Default for Attempts {
    fn default() -> Self {
        Attempts {
            inner: Mutex::new(Inner {
                peers: HashMap::new(),
                allowance: GLOBAL_BURST,
                refilled: Instant::now(),
            }),
        }
    }
}

impl Attempts {
    /// Whether `peer` (when known) may try a token at `now`.
    pub fn check(&self, peer: Option<IpAddr>, now: Instant) -> Result<(), Refused> {
        let mut inner = self.inner.lock().expect("attempts lock");
        inner.refill(now);
        if inner.allowance < 1.0 {
            let missing = 1.0 - inner.allowance;
            return Err(refused(Duration::from_secs_f64(
                missing / GLOBAL_PER_SECOND,
            )));
        }
        let until = peer
            .and_then(|p| inner.peers.get(&p))
            .and_then(|p| p.blocked_until)
            .filter(|until| *until > now);
        match until {
            Some(until) => Err(refused(until - now)),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt of `peer` at `now`; returns how many it has made in a row.
    pub fn failed(&self, peer: Option<IpAddr>, now: Instant) -> u32 {
        let mut inner = self.inner.lock().expect("attempts lock");
        inner.refill(now);
        inner.allowance = (inner.allowance - 1.0).max(0.0);
        let Some(peer) = peer else { return 0 };
        if !inner.peers.contains_key(&peer) && inner.peers.len() >= MAX_PEERS {
            inner.forget_one(now);
        }
        let p = inner.peers.entry(peer).or_insert(Peer {
            failures: 0,
            blocked_until: None,
            last_failure: now,
        });
        if now.duration_since(p.last_failure) >= FORGET_AFTER {
            p.failures = 0;
        }
        p.failures = p.failures.saturating_add(1);
        p.last_failure = now;
        p.blocked_until = backoff(p.failures).map(|b| now + b);
        p.failures
    }

    /// A good token from `peer`: its failures are forgiven.
    pub fn succeeded(&self, peer: Option<IpAddr>) {
        if let Some(peer) = peer {
            self.inner
                .lock()
                .expect("attempts lock")
                .peers
                .remove(&peer);
        }
    }
}

impl Inner {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.allowance = (self.allowance + elapsed * GLOBAL_PER_SECOND).min(GLOBAL_BURST);
        self.refilled = now;
    }

    /// Makes room for one peer: the forgotten ones go, else the one quiet the longest.
    fn forget_one(&mut self, now: Instant) {
        self.peers
            .retain(|_, p| now.duration_since(p.last_failure) < FORGET_AFTER);
        if self.peers.len() >= MAX_PEERS
            && let Some(oldest) = (self.peers.iter())
                .min_by_key(|(_, p)| p.last_failure)
                .map(|(ip, _)| *ip)
        {
            self.peers.remove(&oldest);
        }
    }
}

/// The wait after the `failures`-th failure in a row: none before [`FREE_FAILURES`], then the base,
/// doubling with each further failure, capped.
fn backoff(failures: u32) -> Option<Duration> {
    let over = failures.checked_sub(FREE_FAILURES)?;
    let factor = 2u32.checked_pow(over.min(16)).unwrap_or(u32::MAX);
    Some(BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_CAP))
}

fn refused(wait: Duration) -> Refused {
    Refused {
        retry_after: wait.max(Duration::from_secs(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    #[test]
    fn a_peer_gets_a_few_free_failures_then_a_doubling_backoff_up_to_the_cap() {
        let attempts = Attempts::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(attempts.check(A, t0), Ok(()));
            attempts.failed(A, t0);
        }
        assert_eq!(
            attempts.check(A, t0),
            Err(Refused {
                retry_after: BACKOFF_BASE
            })
        );
        assert_eq!(attempts.check(B, t0), Ok(()), "another peer is not held");
        let t1 = t0 + BACKOFF_BASE;
        assert_eq!(attempts.check(A, t1), Ok(()));
        attempts.failed(A, t1);
        assert_eq!(
            attempts.check(A, t1).unwrap_err().retry_after,
            2 * BACKOFF_BASE
        );
        assert_eq!(backoff(FREE_FAILURES + 40), Some(BACKOFF_CAP));
        assert_eq!(backoff(u32::MAX), Some(BACKOFF_CAP));
    }

    #[test]
    fn a_good_token_forgives_and_a_long_quiet_forgets() {
        let attempts = Attempts::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            attempts.failed(A, t0);
        }
        assert!(attempts.check(A, t0).is_err());
        attempts.succeeded(A);
        assert_eq!(attempts.check(A, t0), Ok(()));
        for _ in 0..FREE_FAILURES - 1 {
            attempts.failed(A, t0);
        }
        assert_eq!(attempts.failed(A, t0 + FORGET_AFTER), 1);
    }

    #[test]
    fn failures_of_every_peer_together_drain_the_global_bucket_which_refills() {
        let attempts = Attempts::default();
        let t0 = Instant::now();
        for i in 0..GLOBAL_BURST as u32 {
            let peer = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            attempts.failed(Some(peer), t0);
        }
        let refused = attempts.check(B, t0).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        let later = t0 + Duration::from_secs_f64(1.0 / GLOBAL_PER_SECOND);
        assert_eq!(attempts.check(B, later), Ok(()));
    }

    #[test]
    fn the_peers_remembered_are_bounded() {
        let attempts = Attempts::default();
        let t0 = Instant::now();
        for i in 0..MAX_PEERS as u32 + 50 {
            let peer = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            attempts.failed(Some(peer), t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(attempts.inner.lock().unwrap().peers.len(), MAX_PEERS);
    }
}
