//! The service's wall clock: the system's, or a stepped one that only moves when told to.
//!
//! Whatever stamps a result or decides with "now" (the prober, the decision loop) reads this clock,
//! so a test can run a whole outage — failing rounds, a hold, recovery — in a few steps instead of
//! waiting for it on the wall clock. Durations inside one probe are measured with `Instant` and are
//! real either way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A cheap handle; clones of a stepped clock share its time.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<Mutex<DateTime<Utc>>>>, chrono::Duration);

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock(None, chrono::Duration::zero())
    }

    /// The system's clock set `ms` milliseconds off (an agent's test of a wrong clock).
    pub fn off_by_ms(ms: i64) -> Clock {
        Clock(None, chrono::Duration::milliseconds(ms))
    }

    /// A clock that stands at `start` until [`Clock::advance`] moves it.
    pub fn stepped(start: DateTime<Utc>) -> Clock {
        Clock(Some(Arc::new(Mutex::new(start))), chrono::Duration::zero())
    }

    /// Whether this clock only moves when told to.
    pub fn is_stepped(&self) -> bool {
        self.0.is_some()
    }

    /// Now, by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            None => Utc::now() + self.1,
            Some(t) => *t.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a stepped clock forward by `by`; the system clock moves by itself and ignores this.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.0 {
            let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
            let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
            *t = t.checked_add_signed(by).unwrap_or(*t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stepped_clock_stands_still_until_advanced_and_its_clones_share_it() {
        let start = Utc::now() - chrono::Duration::days(1);
        let clock = Clock::stepped(start);
        let other = clock.clone();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now(), start);
        other.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), start + chrono::Duration::milliseconds(1500));
    }

    #[test]
    fn the_system_clock_follows_the_system_and_ignores_advance() {
        let clock = Clock::system();
        clock.advance(Duration::from_secs(3600));
        let skew = (clock.now() - Utc::now()).num_seconds().abs();
        assert!(skew < 5, "{skew}");
    }
}
