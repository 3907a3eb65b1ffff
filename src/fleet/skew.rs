//! An agent's clock offset, estimated from its heartbeats the way NTP's clock filter does: of the
//! last few exchanges, the one with the shortest round trip says the offset best (its error is at
//! most half that round trip). Before the first complete exchange, the first heartbeat alone
//! gives a rough figure (its one-way time is unknown, so it counts as the longest).

use std::collections::VecDeque;

use crate::agent::wire::Exchange;

/// Exchanges kept for the filter.
const SAMPLES: usize = 8;

/// One agent's clock offset estimate.
#[derive(Debug, Clone, Default)]
pub struct SkewEstimate {
    /// (skew ms, round trip ms) of the latest exchanges; a one-way sample has no round trip.
    samples: VecDeque<(f64, Option<i64>)>,
}

impl SkewEstimate {
    /// Adds a complete exchange.
    pub fn exchange(&mut self, e: &Exchange) {
        if e.delay_ms() < 0 || e.t2 < e.t1 {
            return; // not a real exchange: a clock stepped in the middle, or forged
        }
        self.push((e.skew_ms(), Some(e.delay_ms())));
    }

    /// Adds a heartbeat sent at `sent_ms` (agent clock) that arrived at `received_ms` (service
    /// clock), when no complete exchange is known yet.
    pub fn one_way(&mut self, sent_ms: i64, received_ms: i64) {
        if self.samples.iter().all(|(_, d)| d.is_none()) {
            self.push(((sent_ms - received_ms) as f64, None));
        }
    }

    fn push(&mut self, sample: (f64, Option<i64>)) {
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The agent's clock minus the service's, in ms, and the round trip it stands on (`None`
    /// when only a one-way sample is known); `None` before any heartbeat.
    pub fn best(&self) -> Option<(f64, Option<i64>)> {
        let full = self
            .samples
            .iter()
            .filter_map(|(s, d)| d.map(|d| (*s, d)))
            .min_by_key(|(_, d)| *d);
        match full {
            Some((s, d)) => Some((s, Some(d))),
            None => self.samples.back().copied(),
        }
    }

    /// The skew in ms, if known.
    pub fn skew_ms(&self) -> Option<f64> {
        self.best().map(|(s, _)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_round_trip_wins() {
        let mut s = SkewEstimate::default();
        assert_eq!(s.skew_ms(), None);
        // Agent 300 000 ms ahead; the first heartbeat took 2 ms one way.
        s.one_way(1_300_002, 1_000_004);
        assert_eq!(s.skew_ms(), Some(299_998.0));
        // A slow exchange (asymmetric: 40 ms out, 0 back) then a fast one.
        s.exchange(&Exchange {
            t0: 1_300_000,
            t1: 1_000_040,
            t2: 1_000_041,
            t3: 1_300_041,
        });
        s.exchange(&Exchange {
            t0: 1_310_000,
            t1: 1_010_001,
            t2: 1_010_001,
            t3: 1_310_002,
        });
        assert_eq!(s.skew_ms(), Some(300_000.0));
        assert_eq!(s.best().unwrap().1, Some(2));
        // A one-way sample no longer counts once exchanges are known.
        s.one_way(0, 5_000_000);
        assert_eq!(s.skew_ms(), Some(300_000.0));
    }

    #[test]
    fn forged_exchanges_are_ignored() {
        let mut s = SkewEstimate::default();
        s.exchange(&Exchange {
            t0: 10,
            t1: 100,
            t2: 50,
            t3: 20,
        });
        s.exchange(&Exchange {
            t0: 10,
            t1: 100,
            t2: 200,
            t3: 20,
        });
        assert_eq!(s.skew_ms(), None);
    }
}
