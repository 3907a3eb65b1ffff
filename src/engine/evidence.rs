//! One round of evidence and what it says: which regions may vote, each region's round verdict per
//! host, origin faults (a path failing on every vendor) and degradations (one edge, one resolver).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{HostInfo, Policy, RegionCounts};
use crate::model::{FailureClass, Outcome};

/// One result of the round, keyed by (host, path, region, resolver, edge IP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub host: String,
    pub path: String,
    pub resolver: String,
    pub edge: Option<IpAddr>,
    pub class: Option<FailureClass>,
    pub status: Option<u16>,
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
    pub region: String,
    /// Whether any of the region's control targets answered; when none did, the region's own
    /// network is down and its round does not vote.
    pub control_ok: bool,
    pub observations: Vec<Observation>,
}

/// Every region's latest results for one interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub regions: Vec<RegionRound>,
}

/// A region's round for one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundVerdict {
    /// The region's control targets failed: neither healthy nor failing.
    Invalid,
    /// The region has no results for this host (after origin-faulted paths are set aside).
    NoData,
    Voted {
        ok: u32,
        failed: u32,
    },
}

/// What a round says, before any decision.
#[derive(Debug, Default)]
pub struct Analysis {
    pub valid_regions: BTreeSet<String>,
    pub verdicts: BTreeMap<String, BTreeMap<String, RoundVerdict>>,
    pub origin_faults: BTreeSet<String>,
    /// Per host, the scopes that fail alone (`edge 127.21.1.9 (cn-east)`, `resolver cn-east/isp`).
    pub degraded: BTreeMap<String, BTreeSet<String>>,
    pub host_counts: BTreeMap<String, BTreeMap<String, RegionCounts>>,
    pub path_counts: BTreeMap<String, BTreeMap<String, RegionCounts>>,
    pub samples: Vec<String>,
}

const MAX_SAMPLES: usize = 40;

pub fn analyse(round: &Round, hosts: &[HostInfo], policy: &Policy) -> Analysis {
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
        let per_region = a.verdicts.entry(h.host.clone()).or_default();
        for r in &round.regions {
            let verdict = if !r.control_ok {
                RoundVerdict::Invalid
            } else {
                let mine = r
                    .observations
                    .iter()
                    .filter(|o| o.host == h.host && !a.origin_faults.contains(&o.path));
                let (ok, failed) = mine.fold((0, 0), |(ok, f), o| {
                    if o.cdn_failure() {
                        (ok, f + 1)
                    } else {
                        (ok + 1, f)
                    }
                });
                if ok + failed == 0 {
                    RoundVerdict::NoData
                } else {
                    RoundVerdict::Voted { ok, failed }
                }
            };
            per_region.insert(r.region.clone(), verdict);
        }
        let degraded = degraded_scopes(round, &h.host, &a.valid_regions, &a.origin_faults);
        if !degraded.is_empty() {
            a.degraded.insert(h.host.clone(), degraded);
        }
    }
    a
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
            let class = o.class.map_or("-", |c| c.as_str());
            let status = o.status.map(|s| format!(" {s}")).unwrap_or_default();
            let edge = o.edge.map_or_else(|| "-".to_string(), |e| e.to_string());
            a.samples.push(format!(
                "{} {}/{} {edge} {} {class}{status}",
                o.host, r.region, o.resolver, o.path
            ));
        }
    }
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

/// An edge, or a region's resolver, whose every result failed while others of the same host work.
fn degraded_scopes(
    round: &Round,
    host: &str,
    valid: &BTreeSet<String>,
    origin: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut edges: BTreeMap<(String, IpAddr), (u32, u32)> = BTreeMap::new();
    let mut resolvers: BTreeMap<(String, String), (u32, u32)> = BTreeMap::new();
    for r in round.regions.iter().filter(|r| valid.contains(&r.region)) {
        for o in r
            .observations
            .iter()
            .filter(|o| o.host == host && !origin.contains(&o.path))
        {
            let failed = u32::from(o.cdn_failure());
            if let Some(edge) = o.edge {
                let e = edges.entry((r.region.clone(), edge)).or_default();
                *e = (e.0 + 1, e.1 + failed);
            }
            let s = resolvers
                .entry((r.region.clone(), o.resolver.clone()))
                .or_default();
            *s = (s.0 + 1, s.1 + failed);
        }
    }
    let dead = |t: &(u32, u32)| t.0 > 0 && t.0 == t.1;
    let mut out = BTreeSet::new();
    let any_edge_ok = edges.values().any(|t| t.1 < t.0);
    for ((region, edge), t) in &edges {
        if dead(t) && any_edge_ok {
            out.insert(format!("edge {edge} ({region})"));
        }
    }
    for ((region, resolver), t) in &resolvers {
        let others_ok = resolvers
            .iter()
            .any(|((rg, rs), u)| rg == region && rs != resolver && u.1 < u.0);
        if dead(t) && others_ok {
            out.insert(format!("resolver {region}/{resolver}"));
        }
    }
    out
}
