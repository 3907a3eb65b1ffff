//! Confirmations: which failed series run again before their next interval, and when. A series
//! that fails is probed again at once — after a stable offset of its own, up to half the confirm
//! interval, so the series of a vendor-wide failure do not all go at the same instant — and then
//! every `confirm_interval_ms`, until it passes or has `fall_rounds` failed confirmations; then no
//! more until it has passed again. A series that passes costs nothing here.
//!
//! Timing only: it says what is due; the scheduler runs it. Any run of a series being confirmed
//! (its regular one too) serves as its next confirmation, so a series never runs twice at once.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::phase_of;
use crate::series::SeriesKey;

/// One failing series' state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Confirmed `done` times so far; the next run is due then (`None` while one is in flight).
    Confirming { done: u32, due: Option<Instant> },
    /// Its confirmations reached the fall: nothing more until it passes.
    Done,
}

/// Every failing series' confirmations.
#[derive(Debug)]
pub(super) struct Confirmations {
    interval: Duration,
    fall: u32,
    failing: HashMap<SeriesKey, State>,
}

impl Confirmations {
    /// Confirmations every `interval`, `fall` of them at most.
    pub(super) fn new(interval: Duration, fall: u32) -> Confirmations {
        Confirmations {
            interval,
            fall,
            failing: HashMap::new(),
        }
    }

    /// A new confirm interval and fall (a reload); `keep` says which series are still scheduled.
    pub(super) fn reload(
        &mut self,
        interval: Duration,
        fall: u32,
        keep: impl Fn(&SeriesKey) -> bool,
    ) {
        self.interval = interval;
        self.fall = fall;
        self.failing.retain(|k, _| keep(k));
    }

    /// When the next confirmation is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.failing
            .values()
            .filter_map(|s| match s {
                State::Confirming { due, .. } => *due,
                State::Done => None,
            })
            .min()
    }

    /// The confirmations due at or before `now`, each with its planned start, oldest first; they
    /// are in flight from here on.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<(SeriesKey, Instant)> {
        let mut due: Vec<(SeriesKey, Instant)> = Vec::new();
        for (key, state) in &mut self.failing {
            if let State::Confirming {
                due: d @ Some(_), ..
            } = state
                && d.is_some_and(|at| at <= now)
            {
                due.push((key.clone(), d.take().expect("matched")));
            }
        }
        due.sort_by_key(|(_, at)| *at);
        due
    }

    /// A regular run of `key` started: it serves as the pending confirmation.
    pub(super) fn started(&mut self, key: &SeriesKey) {
        if let Some(State::Confirming { due, .. }) = self.failing.get_mut(key) {
            *due = None;
        }
    }

    /// A run of `key` planned at `planned` ended, `failed` or not.
    pub(super) fn finished(&mut self, key: &SeriesKey, planned: Instant, failed: bool) {
        if !failed {
            self.failing.remove(key);
            return;
        }
        let next = match self.failing.get(key) {
            None => State::Confirming {
                done: 0,
                due: Some(planned + phase_of(key, self.interval / 2)),
            },
            Some(State::Confirming { done, .. }) if done + 1 >= self.fall => State::Done,
            Some(State::Confirming { done, .. }) => State::Confirming {
                done: done + 1,
                due: Some(planned + self.interval),
            },
            Some(State::Done) => State::Done,
        };
        self.failing.insert(key.clone(), next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> SeriesKey {
        SeriesKey {
            host: format!("h{i}"),
            path: "/p".into(),
            region: "east".into(),
            resolver: "isp".into(),
        }
    }

    #[test]
    fn a_failed_series_is_confirmed_fall_times_then_left_until_it_passes() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut c = Confirmations::new(2 * second, 3);
        c.finished(&key(1), t0, true);
        let first = c.next_due().unwrap();
        assert!(
            first >= t0 && first < t0 + second,
            "at once, within half the interval"
        );
        let mut at = first;
        for n in 0..3 {
            assert_eq!(
                c.take_due(at + 10 * second),
                vec![(key(1), at)],
                "confirmation {n}"
            );
            assert!(c.take_due(at + 10 * second).is_empty(), "in flight");
            c.finished(&key(1), at, true);
            at += 2 * second;
        }
        assert_eq!(c.next_due(), None, "three failed confirmations: no more");
        c.finished(&key(1), at, true);
        assert_eq!(
            c.next_due(),
            None,
            "a regular failure after the fall costs nothing more"
        );
        c.finished(&key(1), at, false);
        c.finished(&key(1), at, true);
        assert!(
            c.next_due().is_some(),
            "a failure after a pass is confirmed again"
        );
    }

    #[test]
    fn a_passing_confirmation_ends_it_and_passing_series_cost_nothing() {
        let t0 = Instant::now();
        let mut c = Confirmations::new(Duration::from_secs(2), 3);
        c.finished(&key(2), t0, false);
        assert_eq!(c.next_due(), None);
        c.finished(&key(1), t0, true);
        let (k, at) = c.take_due(t0 + Duration::from_secs(5)).remove(0);
        c.finished(&k, at, false);
        assert_eq!(c.next_due(), None);
    }

    #[test]
    fn the_first_confirmations_of_series_failing_together_are_spread() {
        let t0 = Instant::now();
        let mut c = Confirmations::new(Duration::from_secs(2), 3);
        for i in 0..100 {
            c.finished(&key(i), t0, true);
        }
        let due = c.take_due(t0 + Duration::from_secs(1));
        assert_eq!(due.len(), 100);
        let distinct: std::collections::BTreeSet<Instant> = due.iter().map(|(_, at)| *at).collect();
        assert!(distinct.len() > 90, "{} distinct instants", distinct.len());
        let spread = due[99].1 - due[0].1;
        assert!(spread > Duration::from_millis(800), "{spread:?}");
    }
}
