//! Which diagnosed scopes are one fault: a diagnosis belongs to an incident when its scope is the
//! incident's, or one of the two contains the other on the same hosts — an edge within its vendor
//! in that region, a vendor in a region within the vendor everywhere, a path prefix on one vendor
//! within the origin fault of a path under it. A resolver and a region's probe network are only
//! ever themselves: a broken resolver and a broken edge in one region are two faults.

use std::collections::BTreeSet;

use crate::engine::{Diagnosis, FaultScope};

use super::Incident;

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

/// Whether `d` is part of the fault `incident` follows.
pub(super) fn belongs(d: &Diagnosis, incident: &Incident) -> bool {
    if d.scope == incident.scope {
        return true;
    }
    let shares_hosts = !d.hosts.is_disjoint(&incident.hosts);
    match (&d.scope, &incident.scope) {
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
