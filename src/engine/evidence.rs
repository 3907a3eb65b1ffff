//! One round of evidence and what it says: which regions may vote, each region's round verdict per
//! host, origin faults (a path failing on every vendor) and the failed results kept as samples. It reads the round only: no history, no
//! decisions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::sample::Sample;
use super::{HostInfo, Policy};
use crate::model::{FailureClass, Outcome, Phase};

/// One result of the round, keyed by (host, path, region, resolver, edge IP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The host's domain.
    pub host: String,
    /// The probe path.
    pub path: String,
    /// The resolver (within the region) the probe went through.
    pub resolver: String,
    /// The edge IP probed; `None` when resolving failed.
    pub edge: Option<IpAddr>,
    /// The failure class; `None` for a success.
    pub class: Option<FailureClass>,
    /// The HTTP status, when a response head arrived.
    pub status: Option<u16>,
    /// The phase the failure was met in; `None` for a success (or when not known).
    #[serde(default)]
    pub phase: Option<Phase>,
    /// Failed confirmations in a row of this result's series (its failed probes in a row after
    /// the first): each counts as a failed round of the series. 0 when it passes.
    #[serde(default)]
    pub confirmations: u32,
}

impl Observation {
    /// A failure of the CDN. HTTP 4xx is recorded and shown but is not one: a 403 is usually the
    /// customer's own referer rule, a 404 a missing object.
    pub fn cdn_failure(&self) -> bool {
        self.class
            .is_some_and(|c| Outcome::new(c, self.status).is_cdn_failure())
    }
}

/// One region's part of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionRound {
    /// The region's name.
    pub region: String,
    /// Whether any of the region's control targets answered; when none did, the region's own
    /// network is down and its round does not vote.
    pub control_ok: bool,
    /// The region's results for the interval.
    pub observations: Vec<Observation>,
}

/// Every region's latest results for one interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// One entry per region that reported.
    pub regions: Vec<RegionRound>,
}

/// A region's round for one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundVerdict {
    /// The region's control targets failed: neither healthy nor failing.
    Invalid,
    /// The region has no results for this host (after origin-faulted paths are set aside).
    NoData,
    /// The region voted with its results for this host.
    Voted {
        /// Results that were not CDN failures.
        ok: u32,
        /// Results that were CDN failures.
        failed: u32,
        /// Failed confirmations the region's round stands on: the most `k` for which the failed
        /// results of series with at least `k` failed confirmations still fail the round.
        confirmed: u32,
    },
}

/// Evidence counts of one region (in an analysis and in the events made from it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionCounts {
    /// Results that were not CDN failures.
    pub ok: u32,
    /// Results that were CDN failures.
    pub failed: u32,
    /// The region's control targets failed: its round did not vote.
    pub invalid: bool,
}

/// What a round says, before any decision.
#[derive(Debug, Default)]
pub(super) struct Analysis {
    pub valid_regions: BTreeSet<String>,
    pub verdicts: BTreeMap<String, BTreeMap<String, RoundVerdict>>,
    pub origin_faults: BTreeSet<String>,
    pub host_counts: BTreeMap<String, BTreeMap<String, RegionCounts>>,
    pub path_counts: BTreeMap<String, BTreeMap<String, RegionCounts>>,
    pub samples: Vec<Sample>,
}

const MAX_SAMPLES: usize = 40;

pub(super) fn analyse(round: &Round, hosts: &[HostInfo], policy: &Policy) -> Analysis {
    let mut a = Analysis::default();
    for r in &round.regions {
        if r.control_ok && !r.observations.is_empty() {
            a.valid_regions.insert(r.region.clone());
        }
    }
    let vendor_of: BTreeMap<&str, &str> = hosts
        .iter()
        .map(|h| (h.host.as_str(), h.vendor.as_str()))
        .collect();
    a.origin_faults = origin_faults(round, &a.valid_regions, &vendor_of, policy);
    for r in &round.regions {
        count(&mut a, r);
    }
    for h in hosts {
        let per_region = round
            .regions
            .iter()
            .map(|r| {
                (
                    r.region.clone(),
                    verdict(r, &h.host, &a.origin_faults, policy.round_fail_ratio),
                )
            })
            .collect();
        a.verdicts.insert(h.host.clone(), per_region);
    }
    a
}

/// Region `r`'s round for `host`, leaving out paths broken at the origin.
fn verdict(r: &RegionRound, host: &str, origin: &BTreeSet<String>, ratio: f64) -> RoundVerdict {
    if !r.control_ok {
        return RoundVerdict::Invalid;
    }
    let mine = r
        .observations
        .iter()
        .filter(|o| o.host == host && !origin.contains(&o.path));
    let (mut ok, mut confirmations) = (0, Vec::new());
    for o in mine {
        if o.cdn_failure() {
            confirmations.push(o.confirmations);
        } else {
            ok += 1;
        }
    }
    let failed = confirmations.len() as u32;
    if ok + failed == 0 {
        return RoundVerdict::NoData;
    }
    RoundVerdict::Voted {
        ok,
        failed,
        confirmed: confirmed(confirmations, ok + failed, ratio),
    }
}

/// The most `k` for which the failures with at least `k` confirmations are still at least
/// `ratio` of `total` results: the `⌈ratio × total⌉`-th largest count (0 when too few failed).
fn confirmed(mut confirmations: Vec<u32>, total: u32, ratio: f64) -> u32 {
    confirmations.sort_unstable_by(|a, b| b.cmp(a));
    let needed = (ratio * f64::from(total)).ceil().max(1.0) as usize;
    confirmations.get(needed - 1).copied().unwrap_or(0)
}

fn count(a: &mut Analysis, r: &RegionRound) {
    for o in &r.observations {
        let failed = o.cdn_failure();
        for counts in [
            a.host_counts
                .entry(o.host.clone())
                .or_default()
                .entry(r.region.clone())
                .or_default(),
            a.path_counts
                .entry(o.path.clone())
                .or_default()
                .entry(r.region.clone())
                .or_default(),
        ] {
            counts.invalid = !r.control_ok;
            if failed {
                counts.failed += 1
            } else {
                counts.ok += 1
            }
        }
        if failed && a.samples.len() < MAX_SAMPLES {
            a.samples.extend(sample(&r.region, o));
        }
    }
}

/// A failed observation as a sample (an observation with no failure class has none).
pub(super) fn sample(region: &str, o: &Observation) -> Option<Sample> {
    Some(Sample {
        host: o.host.clone(),
        region: region.to_string(),
        resolver: o.resolver.clone(),
        edge: o.edge,
        path: o.path.clone(),
        class: o.class?,
        status: o.status,
    })
}

/// Paths that fail on every vendor (at least two) while some other path works somewhere.
fn origin_faults(
    round: &Round,
    valid: &BTreeSet<String>,
    vendor_of: &BTreeMap<&str, &str>,
    p: &Policy,
) -> BTreeSet<String> {
    // (path, vendor) -> (results, failures), over valid regions only.
    let mut tally: BTreeMap<(&str, &str), (u32, u32)> = BTreeMap::new();
    for r in round.regions.iter().filter(|r| valid.contains(&r.region)) {
        for o in &r.observations {
            let Some(vendor) = vendor_of.get(o.host.as_str()) else {
                continue;
            };
            let t = tally.entry((o.path.as_str(), vendor)).or_default();
            t.0 += 1;
            t.1 += u32::from(o.cdn_failure());
        }
    }
    let failing = |t: &(u32, u32)| t.0 > 0 && f64::from(t.1) >= p.round_fail_ratio * f64::from(t.0);
    let paths: BTreeSet<&str> = tally.keys().map(|(path, _)| *path).collect();
    let broken: BTreeSet<&str> = paths
        .iter()
        .copied()
        .filter(|path| {
            let per_vendor: Vec<&(u32, u32)> = tally
                .iter()
                .filter(|((p, _), _)| p == path)
                .map(|(_, t)| t)
                .collect();
            per_vendor.len() >= 2 && per_vendor.iter().all(|t| failing(t))
        })
        .collect();
    let something_works = tally
        .iter()
        .any(|((path, _), t)| !broken.contains(path) && !failing(t));
    if something_works {
        broken.into_iter().map(str::to_string).collect()
    } else {
        BTreeSet::new()
    }
}
