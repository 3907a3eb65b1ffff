//! What an agent's batch must be before any of it is stored or votes: every result of the
//! agent's own regions (else the whole batch is refused: it is forged), of a configured series,
//! with bounded strings, and dated — once moved onto the service's clock — neither in the future
//! nor older than an agent spools. A result that fails is refused with its [`Refusal`], counted,
//! and never stored; the rest of the batch stands.

use std::collections::BTreeMap;

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

use crate::agent::wire::{Batch, ControlCheck, Probed, Refusal};
use crate::model::EdgeResult;
use crate::series::SeriesKey;

/// How far in the future (service clock) a result may be dated: its probe cannot have started
/// after it arrived, beyond the skew estimate's error.
pub const MAX_AHEAD: Duration = Duration::seconds(10);
/// How old a result may be: an agent's spool keeps at most 24 h, plus an hour of slack.
pub const MAX_AGE: Duration = Duration::hours(25);
/// Beyond this skew an agent's times are re-stamped but the agent is flagged (page, log).
pub const FLAG_SKEW_MS: f64 = 2_000.0;
/// Beyond this skew an agent's times are not trusted at all: its results are refused.
pub const MAX_SKEW_MS: f64 = 600_000.0;
/// The longest failure detail, certificate name or other free text in a result, in bytes.
pub const MAX_TEXT_BYTES: usize = 4_096;
/// The longest host, path, region or resolver name in a result, in bytes.
pub const MAX_NAME_BYTES: usize = 2_048;

/// A batch after its checks.
#[derive(Debug, Default)]
pub struct Checked {
    /// The results that stand, re-stamped (start and slot) onto the service's clock.
    pub results: Vec<Probed>,
    /// The control checks that stand, re-stamped.
    pub controls: Vec<ControlCheck>,
    /// The refused ones, by reason.
    pub refused: BTreeMap<Refusal, usize>,
    /// Some result names a region that is not the agent's: the batch is forged and refused whole.
    pub foreign: bool,
}

/// Checks `batch` of an agent speaking for `regions`, whose clock is `skew_ms` ahead of the
/// service's, at `now` (service clock); `series` are the configured series.
pub fn check(
    series: &HashSet<SeriesKey>,
    regions: &[String],
    skew_ms: f64,
    now: DateTime<Utc>,
    batch: Batch,
) -> Checked {
    let mut out = Checked::default();
    let mine = |r: &str| regions.iter().any(|x| x == r);
    let shift = Duration::microseconds((skew_ms * 1000.0) as i64);
    let untrusted = skew_ms.abs() > MAX_SKEW_MS;
    for probed in batch.results {
        let r = probed.result;
        let refusal = if !names_fit(&r) {
            Some(Refusal::Oversized)
        } else if !mine(&r.region) {
            out.foreign = true;
            Some(Refusal::ForeignRegion)
        } else if !texts_fit(&r) {
            Some(Refusal::Oversized)
        } else if !series.contains(&SeriesKey::of(&r)) {
            Some(Refusal::UnknownSeries)
        } else if untrusted {
            Some(Refusal::ClockSkew)
        } else {
            dated(r.at - shift, now)
                .and_then(|()| slotted(probed.slot, r.at))
                .err()
        };
        match refusal {
            Some(why) => *out.refused.entry(why).or_default() += 1,
            None => out.results.push(Probed {
                slot: probed.slot - shift,
                result: EdgeResult {
                    at: r.at - shift,
                    ..r
                },
            }),
        }
    }
    for c in batch.controls {
        if c.region.len() > MAX_NAME_BYTES || !mine(&c.region) {
            out.foreign = true;
            *out.refused.entry(Refusal::ForeignRegion).or_default() += 1;
        } else if !untrusted && dated(c.at - shift, now).is_ok() {
            out.controls.push(ControlCheck {
                at: c.at - shift,
                ..c
            });
        }
    }
    out
}

/// A probe's slot is when it was planned: never after it started (`future`), and not before the
/// oldest start a result may have (`too_old`) — a forged slot must not pin a series' round.
fn slotted(slot: DateTime<Utc>, at: DateTime<Utc>) -> Result<(), Refusal> {
    if slot > at {
        Err(Refusal::Future)
    } else if slot < at - MAX_AGE {
        Err(Refusal::TooOld)
    } else {
        Ok(())
    }
}

fn dated(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Refusal> {
    if at > now + MAX_AHEAD {
        Err(Refusal::Future)
    } else if at < now - MAX_AGE {
        Err(Refusal::TooOld)
    } else {
        Ok(())
    }
}

fn names_fit(r: &EdgeResult) -> bool {
    [&r.host, &r.path, &r.region, &r.resolver]
        .iter()
        .all(|s| s.len() <= MAX_NAME_BYTES)
}

fn texts_fit(r: &EdgeResult) -> bool {
    let failure = r.failure.as_ref().map_or(0, |f| f.detail.len());
    let cert = r
        .cert
        .as_ref()
        .map_or(0, |c| c.issuer.len().max(c.subject.len()));
    failure <= MAX_TEXT_BYTES && cert <= MAX_TEXT_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(region: &str, at: DateTime<Utc>) -> EdgeResult {
        EdgeResult {
            at,
            host: "cdn.test".into(),
            path: "/p".into(),
            region: region.into(),
            resolver: "isp".into(),
            edge_ip: None,
            dns_ms: None,
            connect_ms: None,
            tls_ms: None,
            first_byte_ms: None,
            transfer_ms: None,
            total_ms: None,
            status: Some(200),
            body_bytes: 0,
            cert: None,
            failure: None,
        }
    }

    fn batch(results: Vec<EdgeResult>) -> Batch {
        Batch {
            boot: "b".into(),
            seq: 0,
            assignment_version: String::new(),
            results: Probed::probe(results, std::time::Duration::ZERO),
            controls: Vec::new(),
        }
    }

    fn series() -> HashSet<SeriesKey> {
        let r = result("east", Utc::now());
        HashSet::from([SeriesKey::of(&r)])
    }

    #[test]
    fn a_skewed_agents_times_are_moved_onto_the_services_clock() {
        let now = Utc::now();
        let ahead = now + Duration::minutes(5);
        let out = check(
            &series(),
            &["east".into()],
            300_000.0,
            now,
            batch(vec![result("east", ahead)]),
        );
        assert!(out.refused.is_empty(), "{:?}", out.refused);
        assert!((out.results[0].result.at - now).num_milliseconds().abs() < 5);
        // Uncorrected, the same record would be an hour-ahead "future" one … and beyond the
        // bound the agent's times are not trusted at all.
        let out = check(
            &series(),
            &["east".into()],
            0.0,
            now,
            batch(vec![result("east", ahead)]),
        );
        assert_eq!(out.refused.get(&Refusal::Future), Some(&1));
        let far = now + Duration::minutes(11);
        let out = check(
            &series(),
            &["east".into()],
            660_000.0,
            now,
            batch(vec![result("east", far)]),
        );
        assert_eq!(out.refused.get(&Refusal::ClockSkew), Some(&1));
        let old = now - Duration::hours(26);
        let out = check(
            &series(),
            &["east".into()],
            0.0,
            now,
            batch(vec![result("east", old)]),
        );
        assert_eq!(out.refused.get(&Refusal::TooOld), Some(&1));
    }

    #[test]
    fn a_result_of_another_region_makes_the_batch_forged() {
        let now = Utc::now();
        let b = batch(vec![result("east", now), result("west", now)]);
        let out = check(&series(), &["east".into()], 0.0, now, b);
        assert!(out.foreign);
        assert_eq!(out.refused.get(&Refusal::ForeignRegion), Some(&1));
    }

    /// The slot is re-stamped with the start; a slot after its own start, or a day before it,
    /// is forged (it would pin the series' round) and refused.
    #[test]
    fn a_slot_is_re_stamped_and_a_forged_one_refused() {
        let now = Utc::now();
        let mut b = batch(vec![
            result("east", now),
            result("east", now),
            result("east", now),
        ]);
        b.results[0].slot = now - Duration::milliseconds(40);
        b.results[1].slot = now + Duration::seconds(1);
        b.results[2].slot = now - Duration::hours(26);
        let out = check(&series(), &["east".into()], 60_000.0, now, b);
        assert_eq!(out.results.len(), 1);
        let kept = &out.results[0];
        assert_eq!(kept.result.at - kept.slot, Duration::milliseconds(40));
        assert_eq!(kept.result.at, now - Duration::minutes(1));
        assert_eq!(out.refused.get(&Refusal::Future), Some(&1));
        assert_eq!(out.refused.get(&Refusal::TooOld), Some(&1));
    }
}
