//! Which diagnosed scopes are one fault: a diagnosis belongs to an incident when its scope is the
//! incident's, or one of the two contains the other on the same hosts — an edge within its vendor
//! in that region, a vendor in a region within the vendor everywhere, a path prefix on one vendor
//! within the origin fault of a path under it, a path prefix on a vendor within that vendor
//! everywhere. A resolver is itself, except that a resolver failing only on the hosts of a vendor
//! failing everywhere is that vendor's fault seen through fewer results (a round as the vendor
//! recovers, when only the series behind one resolver still fail); a broken resolver and a broken
//! edge in one region are two faults. A region's probe network is only ever itself.

use std::collections::BTreeSet;

use crate::engine::{Diagnosis, FaultScope};

use super::Incident;

/// Whether an incident of scope `from` may take `to` as its scope when it is the widest of a
/// round's diagnoses of it: within its family, or wider (a prefix's fault that became the whole
/// vendor's). A scope it only absorbed never becomes its scope: a vendor's incident does not turn
/// into "resolver cn-east/isp" or "prefix /image on alpha" as it recovers.
pub(super) fn may_rescope(from: &FaultScope, to: &FaultScope) -> bool {
    family(from) == family(to) || rank(to) > rank(from)
}

/// The family a scope is of: the CDN's (an edge, a vendor in a region, a vendor), a path's (a
/// prefix on a vendor, the origin), a resolver's, a probe network's.
fn family(scope: &FaultScope) -> u8 {
    match scope {
        FaultScope::Edge { .. } | FaultScope::RegionVendor { .. } | FaultScope::Vendor { .. } => 0,
        FaultScope::PrefixVendor { .. } | FaultScope::Origin { .. } => 1,
        FaultScope::Resolver { .. } => 2,
        FaultScope::ProbeNetwork { .. } => 3,
    }
}

/// How wide a scope is, within its family: a wider one absorbs narrower related ones.
pub(super) fn rank(scope: &FaultScope) -> u8 {
    match scope {
        FaultScope::Edge { .. }
        | FaultScope::Resolver { .. }
        | FaultScope::PrefixVendor { .. }
        | FaultScope::ProbeNetwork { .. } => 0,
        FaultScope::RegionVendor { .. } | FaultScope::Origin { .. } => 1,
        FaultScope::Vendor { .. } => 2,
    }
}

/// The region a scope lies in, when it lies in one.
fn region_of(scope: &FaultScope) -> Option<&str> {
    match scope {
        FaultScope::Edge { region, .. }
        | FaultScope::Resolver { region, .. }
        | FaultScope::RegionVendor { region, .. }
        | FaultScope::ProbeNetwork { region } => Some(region),
        FaultScope::Vendor { .. } | FaultScope::PrefixVendor { .. } | FaultScope::Origin { .. } => {
            None
        }
    }
}

/// Whether `d` is part of the fault `incident` follows: related to its scope now, or to the widest
/// it has had (a vendor's fault narrowed to one edge as it recovers is still the vendor's).
pub(super) fn belongs(d: &Diagnosis, incident: &Incident) -> bool {
    related(d, &incident.scope, incident)
        || incident
            .widest
            .as_ref()
            .is_some_and(|w| related(d, w, incident))
}

/// Whether `d` is related to `scope`, the scope of `incident` now or once.
fn related(d: &Diagnosis, scope: &FaultScope, incident: &Incident) -> bool {
    if d.scope == *scope {
        return true;
    }
    let shares_hosts = !d.hosts.is_disjoint(&incident.hosts);
    match (&d.scope, scope) {
        (FaultScope::Resolver { region, .. }, FaultScope::Vendor { .. }) => {
            !d.hosts.is_empty()
                && d.hosts.is_subset(&incident.hosts)
                && (incident.regions.is_empty() || incident.regions.contains(region))
        }
        (FaultScope::PrefixVendor { vendor: a, .. }, FaultScope::Vendor { vendor: b })
        | (FaultScope::Vendor { vendor: a }, FaultScope::PrefixVendor { vendor: b, .. }) => {
            a == b && shares_hosts
        }
        (FaultScope::Resolver { .. } | FaultScope::ProbeNetwork { .. }, _)
        | (_, FaultScope::Resolver { .. } | FaultScope::ProbeNetwork { .. }) => false,
        (FaultScope::PrefixVendor { prefix, .. }, FaultScope::Origin { path })
        | (FaultScope::Origin { path }, FaultScope::PrefixVendor { prefix, .. }) => {
            under(path, prefix)
        }
        (
            FaultScope::PrefixVendor { prefix: a, .. },
            FaultScope::PrefixVendor { prefix: b, .. },
        ) => a == b,
        (FaultScope::Origin { path: a }, FaultScope::Origin { path: b }) => a == b,
        (FaultScope::PrefixVendor { .. } | FaultScope::Origin { .. }, _)
        | (_, FaultScope::PrefixVendor { .. } | FaultScope::Origin { .. }) => false,
        // The CDN family: an edge, a vendor in a region, a vendor everywhere.
        (a, b) => shares_hosts && same_place(a, b, &incident.regions),
    }
}

/// Whether two scopes of the CDN family lie in the same place: a vendor everywhere contains every
/// region; else their regions are the same (an incident's own region set counts as its place).
fn same_place(a: &FaultScope, b: &FaultScope, regions: &BTreeSet<String>) -> bool {
    match (region_of(a), region_of(b)) {
        (Some(x), Some(y)) => x == y,
        (Some(x), None) => regions.is_empty() || regions.contains(x),
        (None, _) => true,
    }
}

/// Whether `path` lies under the path prefix `prefix` (`/image` covers `/image/a.jpg`).
pub(super) fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'))
}
