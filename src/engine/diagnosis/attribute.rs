//! The attribution: a round's failing results given to the smallest scopes that cover them, widest
//! rule first so a wide fault is named once — a region's probe network, then the origin, then per
//! vendor a path prefix, a whole vendor or the vendor in one region, then a resolver, then an edge.
//! Each rule takes only results no earlier rule explained, and only a group whose every result
//! failed; a failure no rule explains (a flaky share) is left to the round verdicts.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use super::super::HostInfo;
use super::super::evidence::{Analysis, Observation, RegionCounts, Round, sample};
use super::{ClassCount, Diagnosis, FaultScope};
use crate::model::{Outcome, Phase};

/// Samples one diagnosis keeps at most.
const SAMPLES: usize = 5;

/// One result of a valid region, with what the rules group it by.
struct Flat<'a> {
    region: &'a str,
    vendor: &'a str,
    prefix: &'a str,
    o: &'a Observation,
    failed: bool,
}

/// The round's diagnoses, from the round and what its analysis found (the regions that vote, the
/// paths failing on every vendor).
pub(in crate::engine) fn diagnose(
    round: &Round,
    hosts: &[HostInfo],
    a: &Analysis,
) -> Vec<Diagnosis> {
    let vendor_of: BTreeMap<&str, &str> = hosts
        .iter()
        .map(|h| (h.host.as_str(), h.vendor.as_str()))
        .collect();
    let (vendor_of, valid, origin) = (&vendor_of, &a.valid_regions, &a.origin_faults);
    let mut out = probe_networks(round, vendor_of);
    for path in origin {
        let of_path = flatten(round, vendor_of, valid, |p| p == path);
        let all: Vec<&Flat> = of_path.iter().collect();
        out.push(build(FaultScope::Origin { path: path.clone() }, &all));
    }
    let flat = flatten(round, vendor_of, valid, |p| !origin.contains(p));
    let mut left = vec![true; flat.len()];
    out.extend(prefixes(&flat, &mut left));
    out.extend(vendors(&flat, &mut left));
    out.extend(host_parts(&flat, &mut left, &RESOLVER));
    out.extend(host_parts(&flat, &mut left, &EDGE));
    out
}

/// The first path segment: `/image/probe.jpg` → `/image`.
pub(in crate::engine) fn prefix_of(path: &str) -> &str {
    let end = path[1.min(path.len())..]
        .find('/')
        .map_or(path.len(), |i| i + 1);
    &path[..end]
}

fn flatten<'a>(
    round: &'a Round,
    vendor_of: &BTreeMap<&str, &'a str>,
    valid: &BTreeSet<String>,
    keep_path: impl Fn(&String) -> bool,
) -> Vec<Flat<'a>> {
    let mut out = Vec::new();
    for r in round.regions.iter().filter(|r| valid.contains(&r.region)) {
        for o in r.observations.iter().filter(|o| keep_path(&o.path)) {
            if let Some(vendor) = vendor_of.get(o.host.as_str()) {
                out.push(Flat {
                    region: &r.region,
                    vendor,
                    prefix: prefix_of(&o.path),
                    o,
                    failed: o.cdn_failure(),
                });
            }
        }
    }
    out
}

/// Every region whose control targets failed while it had results, with those results.
fn probe_networks(round: &Round, vendor_of: &BTreeMap<&str, &str>) -> Vec<Diagnosis> {
    let invalid: BTreeSet<String> = round
        .regions
        .iter()
        // A region with no results has not reported (no agent, no check yet): not known down.
        .filter(|r| !r.control_ok && !r.observations.is_empty())
        .map(|r| r.region.clone())
        .collect();
    invalid
        .iter()
        .map(|region| {
            let only = BTreeSet::from([region.clone()]);
            let flat = flatten(round, vendor_of, &only, |_| true);
            let all: Vec<&Flat> = flat.iter().collect();
            build(
                FaultScope::ProbeNetwork {
                    region: region.clone(),
                },
                &all,
            )
        })
        .collect()
}

fn dead(group: &[&Flat]) -> bool {
    !group.is_empty() && group.iter().all(|f| f.failed)
}

fn works(group: &[&Flat]) -> bool {
    group.iter().any(|f| !f.failed)
}

/// The results not yet explained that `keep` selects, with their indices.
fn pick<'f, 'a>(
    flat: &'f [Flat<'a>],
    left: &[bool],
    keep: impl Fn(&Flat) -> bool,
) -> Vec<(usize, &'f Flat<'a>)> {
    flat.iter()
        .enumerate()
        .filter(|(i, f)| left[*i] && keep(f))
        .collect()
}

/// Marks `picked` explained and makes their diagnosis.
fn take(scope: FaultScope, picked: &[(usize, &Flat)], left: &mut [bool]) -> Diagnosis {
    for (i, _) in picked {
        left[*i] = false;
    }
    let group: Vec<&Flat> = picked.iter().map(|(_, f)| *f).collect();
    build(scope, &group)
}

fn vendor_names<'a>(flat: &[Flat<'a>]) -> BTreeSet<&'a str> {
    flat.iter().map(|f| f.vendor).collect()
}

/// A prefix whose every result on a vendor failed, in each region where that vendor's other
/// prefixes work: that prefix on that vendor, not a degraded host.
fn prefixes(flat: &[Flat], left: &mut [bool]) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for vendor in vendor_names(flat) {
        let mine = pick(flat, left, |f| f.vendor == vendor);
        let prefixes: BTreeSet<&str> = mine.iter().map(|(_, f)| f.prefix).collect();
        let regions: BTreeSet<&str> = mine.iter().map(|(_, f)| f.region).collect();
        let mut found = Vec::new();
        for prefix in &prefixes {
            let broken_in: BTreeSet<&str> = regions
                .iter()
                .copied()
                .filter(|region| {
                    let here = |same: bool| -> Vec<&Flat> {
                        mine.iter()
                            .map(|(_, f)| *f)
                            .filter(|f| f.region == *region && (f.prefix == *prefix) == same)
                            .collect()
                    };
                    dead(&here(true)) && works(&here(false))
                })
                .collect();
            let picked: Vec<(usize, &Flat)> = mine
                .iter()
                .filter(|(_, f)| f.prefix == *prefix && broken_in.contains(f.region))
                .copied()
                .collect();
            if !picked.is_empty() {
                found.push((prefix.to_string(), picked));
            }
        }
        for (prefix, picked) in found {
            let scope = FaultScope::PrefixVendor {
                prefix,
                vendor: vendor.to_string(),
            };
            out.push(take(scope, &picked, left));
        }
    }
    out
}

/// A vendor whose every result in a region failed: that vendor in that region, or the vendor when
/// it is so in every region it has results in.
fn vendors(flat: &[Flat], left: &mut [bool]) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for vendor in vendor_names(flat) {
        let mine = pick(flat, left, |f| f.vendor == vendor);
        let by_region = group_by(&mine, |f| Some(f.region));
        let dead_regions: Vec<&str> = by_region
            .iter()
            .filter(|(_, g)| dead(&flats(g)))
            .map(|(r, _)| *r)
            .collect();
        if dead_regions.is_empty() {
            continue;
        }
        if dead_regions.len() == by_region.len() {
            let scope = FaultScope::Vendor {
                vendor: vendor.to_string(),
            };
            out.push(take(scope, &mine, left));
            continue;
        }
        for region in dead_regions {
            let scope = FaultScope::RegionVendor {
                region: region.to_string(),
                vendor: vendor.to_string(),
            };
            out.push(take(scope, &by_region[region], left));
        }
    }
    out
}

/// A part of a host (a resolver, an edge): the scope a result would be in, and whether that scope
/// fails alone among the host's results.
struct Part {
    scope: fn(&Flat) -> Option<FaultScope>,
    alone: fn(&FaultScope, &[&Flat]) -> bool,
}

/// A region's resolver whose every result for a host failed while another resolver of the region
/// works for it.
const RESOLVER: Part = Part {
    scope: |f| {
        Some(FaultScope::Resolver {
            region: f.region.to_string(),
            resolver: f.o.resolver.clone(),
        })
    },
    alone: |scope, host| {
        let FaultScope::Resolver { region, resolver } = scope else {
            return false;
        };
        host.iter()
            .any(|g| g.region == region && g.o.resolver != *resolver && !g.failed)
    },
};

/// An edge whose every result for a host, from one region, failed while the host works elsewhere.
const EDGE: Part = Part {
    scope: |f| {
        Some(FaultScope::Edge {
            region: f.region.to_string(),
            edge: f.o.edge?,
        })
    },
    alone: |_, host| works(host),
};

/// Per host, the parts that fail alone; a part failing on several hosts is one diagnosis.
fn host_parts(flat: &[Flat], left: &mut [bool], part: &Part) -> Vec<Diagnosis> {
    let mut scopes: BTreeMap<FaultScope, Vec<(usize, &Flat)>> = BTreeMap::new();
    let hosts: BTreeSet<&str> = flat.iter().map(|f| f.o.host.as_str()).collect();
    for host in hosts {
        let all: Vec<&Flat> = flat.iter().filter(|f| f.o.host == host).collect();
        // Every result of the host in each part, not only those not yet explained: a part is
        // dead only when all of it failed.
        let mut whole: BTreeMap<FaultScope, Vec<&Flat>> = BTreeMap::new();
        for f in &all {
            if let Some(scope) = (part.scope)(f) {
                whole.entry(scope).or_default().push(f);
            }
        }
        for (i, f) in pick(flat, left, |f| f.o.host == host) {
            let Some(scope) = (part.scope)(f) else {
                continue;
            };
            if dead(&whole[&scope]) && (part.alone)(&scope, &all) {
                scopes.entry(scope).or_default().push((i, f));
            }
        }
    }
    scopes
        .into_iter()
        .map(|(scope, picked)| take(scope, &picked, left))
        .collect()
}

fn flats<'f, 'a>(picked: &[(usize, &'f Flat<'a>)]) -> Vec<&'f Flat<'a>> {
    picked.iter().map(|(_, f)| *f).collect()
}

fn group_by<'f, 'a, K: Ord>(
    picked: &[(usize, &'f Flat<'a>)],
    key: impl Fn(&Flat<'a>) -> Option<K>,
) -> BTreeMap<K, Vec<(usize, &'f Flat<'a>)>> {
    let mut out: BTreeMap<K, Vec<(usize, &Flat)>> = BTreeMap::new();
    for p in picked {
        if let Some(k) = key(p.1) {
            out.entry(k).or_default().push(*p);
        }
    }
    out
}

/// The diagnosis of `scope` made of `group`'s results.
fn build(scope: FaultScope, group: &[&Flat]) -> Diagnosis {
    let mut d = Diagnosis {
        scope,
        classes: Vec::new(),
        regions: BTreeMap::new(),
        hosts: BTreeSet::new(),
        paths: BTreeSet::new(),
        resolvers: BTreeSet::new(),
        edges: BTreeSet::new(),
        samples: Vec::new(),
    };
    let mut classes: BTreeMap<(Outcome, Option<Phase>), u32> = BTreeMap::new();
    for f in group {
        let counts: &mut RegionCounts = d.regions.entry(f.region.to_string()).or_default();
        if f.failed {
            counts.failed += 1;
        } else {
            counts.ok += 1;
        }
        d.hosts.insert(f.o.host.clone());
        d.paths.insert(f.o.path.clone());
        d.resolvers
            .insert((f.region.to_string(), f.o.resolver.clone()));
        d.edges.extend(f.o.edge);
        if let (true, Some(class)) = (f.failed, f.o.class) {
            *classes
                .entry((Outcome::new(class, f.o.status), f.o.phase))
                .or_default() += 1;
        }
    }
    d.samples = group
        .iter()
        .filter(|f| f.failed)
        .filter_map(|f| sample(f.region, f.o))
        .take(SAMPLES)
        .collect();
    d.classes = classes
        .into_iter()
        .map(|((outcome, phase), count)| ClassCount {
            outcome,
            phase,
            count,
        })
        .collect();
    d.classes.sort_by_key(|c| Reverse(c.count));
    d
}
