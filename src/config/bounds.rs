//! The allowed range of every number in the file, and the one check that reports a number outside
//! its range. Every section's validation goes through [`Bounds::check`], so every number has an
//! upper bound (a value near `u64::MAX` would overflow the arithmetic that turns it into a time or
//! a size) and its finding always says the range allowed, with the unit.
//!
//! The upper bounds are far beyond any sensible value; they exist so that nothing downstream can
//! wrap, never to second-guess an operator.

use std::fmt::Display;

use super::findings::Findings;
use super::locate::FieldPath;

/// One millisecond-valued key's unit, for the messages.
pub(super) const MS: &str = "ms";

/// An inclusive range of allowed values, with the unit said in findings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds<T> {
    /// The smallest allowed value.
    pub(super) min: T,
    /// The largest allowed value.
    pub(super) max: T,
    /// The unit, as said after the range (`ms`, `hours`, `bytes`, or empty).
    pub(super) unit: &'static str,
}

/// `min..=max` in `unit`.
pub(super) const fn bounds<T>(min: T, max: T, unit: &'static str) -> Bounds<T> {
    Bounds { min, max, unit }
}

impl<T: PartialOrd + Display + Copy> Bounds<T> {
    /// Adds a finding at `at` when `v` is outside the range.
    pub(super) fn check(&self, v: T, at: FieldPath, out: &mut Findings) {
        if !(self.min <= v && v <= self.max) {
            out.push((at, self.outside(v)));
        }
    }

    /// What is said of a value outside the range.
    fn outside(&self, v: T) -> String {
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        format!(
            "{v} is out of range: allowed from {} to {}{unit}",
            self.min, self.max
        )
    }
}

/// One minute, in milliseconds.
const MINUTE_MS: u64 = 60_000;
/// One day, in milliseconds.
const DAY_MS: u64 = 24 * 60 * MINUTE_MS;

/// `[probe] interval_ms`: 100 ms to a day.
pub(super) const INTERVAL_MS: Bounds<u64> = bounds(100, DAY_MS, MS);
/// `[probe] confirm_interval_ms`: 10 ms to 10 minutes.
pub(super) const CONFIRM_INTERVAL_MS: Bounds<u64> = bounds(10, 10 * MINUTE_MS, MS);
/// `[probe.timeouts] *_ms`: 1 ms to 10 minutes.
pub(super) const TIMEOUT_MS: Bounds<u64> = bounds(1, 10 * MINUTE_MS, MS);
/// `[probe] max_edges`.
pub(super) const MAX_EDGES: Bounds<usize> = bounds(1, 256, "edges");
/// `[probe] max_body_bytes`, and a path's `expect_size` / `min_size`: up to 1 GiB.
pub(super) const BODY_BYTES: Bounds<u64> = bounds(1, 1 << 30, "bytes");
/// A path's `expect_size` / `min_size`: 0 (an empty body) up to 1 GiB.
pub(super) const EXPECTED_BYTES: Bounds<u64> = bounds(0, 1 << 30, "bytes");
/// `[probe] max_header_bytes`: up to 1 MiB.
pub(super) const HEADER_BYTES: Bounds<usize> = bounds(1, 1 << 20, "bytes");
/// `[probe] concurrency`.
pub(super) const CONCURRENCY: Bounds<usize> = bounds(1, 65_536, "probes");
/// `[client] *_interval_ms`: what clients are told, 1 s to 7 days.
pub(super) const CLIENT_INTERVAL_MS: Bounds<u64> = bounds(1_000, 7 * DAY_MS, MS);
/// `[store] raw_retention_hours`: up to 10 years.
pub(super) const RETENTION_HOURS: Bounds<u64> = bounds(1, 10 * 365 * 24, "hours");
/// `[store] *_rollup_days`: up to 100 years.
pub(super) const RETENTION_DAYS: Bounds<u64> = bounds(1, 100 * 365, "days");
/// `[store] batch_size`.
pub(super) const BATCH_SIZE: Bounds<usize> = bounds(1, 1_000_000, "results");
/// `[store] queue_capacity`.
pub(super) const QUEUE_CAPACITY: Bounds<usize> = bounds(1, 100_000_000, "results");
/// `[store] maintenance_interval_ms`: 1 ms to a day.
pub(super) const MAINTENANCE_MS: Bounds<u64> = bounds(1, DAY_MS, MS);
/// `[engine] *_rounds` and `min_quorum`.
pub(super) const ROUNDS: Bounds<usize> = bounds(1, 10_000, "");
/// `[engine] hold_base_ms`, `hold_cap_ms`: up to 30 days.
pub(super) const HOLD_MS: Bounds<u64> = bounds(0, 30 * DAY_MS, MS);
/// `[engine] hold_decay_ms`: 1 ms to 365 days.
pub(super) const HOLD_DECAY_MS: Bounds<u64> = bounds(1, 365 * DAY_MS, MS);
/// `[dashboard] cert_warn_days`.
pub(super) const CERT_WARN_DAYS: Bounds<u64> = bounds(1, 365, "days");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_outside_its_range_is_said_with_the_range_and_unit() {
        let mut out = Vec::new();
        let at = FieldPath::root().key("probe").key("interval_ms");
        INTERVAL_MS.check(u64::MAX, at.clone(), &mut out);
        INTERVAL_MS.check(100, at.clone(), &mut out);
        INTERVAL_MS.check(DAY_MS, at.clone(), &mut out);
        assert_eq!(
            out,
            vec![(
                at,
                "18446744073709551615 is out of range: allowed from 100 to 86400000 ms".to_string()
            )]
        );
    }

    #[test]
    fn every_upper_bound_survives_the_conversions_it_goes_through() {
        // The longest of each kind, as a chrono span in milliseconds: no overflow anywhere.
        for ms in [
            INTERVAL_MS.max,
            HOLD_MS.max,
            HOLD_DECAY_MS.max,
            CLIENT_INTERVAL_MS.max,
        ] {
            assert!(chrono::Duration::try_milliseconds(i64::try_from(ms).unwrap()).is_some());
        }
        let hours = RETENTION_HOURS.max.checked_mul(3_600_000).unwrap();
        let days = RETENTION_DAYS.max.checked_mul(DAY_MS).unwrap();
        assert!(i64::try_from(hours).is_ok() && i64::try_from(days).is_ok());
    }
}
