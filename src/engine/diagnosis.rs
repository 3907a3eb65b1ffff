//! What a round's failures are attributed to: a [`Diagnosis`] per smallest [`FaultScope`] that
//! explains them (one edge, one resolver, one vendor in one region, one vendor, one path prefix on
//! one vendor, the origin, a region's own probe network), with the failure classes and the counts
//! behind it and what it touches. The attribution (`attribute`) reads one round only: no history,
//! no decisions; text is made only where a diagnosis is shown (`Display`).

mod attribute;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::evidence::RegionCounts;
use super::sample::Sample;
use crate::model::{Outcome, Phase};

pub(super) use attribute::{diagnose, prefix_of};

/// Where a fault lies: the smallest part of the CDN (or of our own probing) that explains what
/// fails. Closed; an agent that is down will join it with the agents issue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultScope {
    /// One edge IP, from one region: `edge 127.21.1.1 (cn-east)`.
    Edge {
        /// The region it fails from.
        region: String,
        /// The edge IP.
        edge: IpAddr,
    },
    /// One resolver of one region: `resolver cn-east/isp`.
    Resolver {
        /// The resolver's region.
        region: String,
        /// The resolver's name.
        resolver: String,
    },
    /// Every edge of one vendor in one region: `alpha in cn-east`.
    RegionVendor {
        /// The region.
        region: String,
        /// The vendor.
        vendor: String,
    },
    /// One vendor in every region that votes: `vendor alpha in every region`.
    Vendor {
        /// The vendor.
        vendor: String,
    },
    /// One path prefix (the first path segment) on one vendor while its other prefixes work:
    /// `prefix /image on alpha`.
    PrefixVendor {
        /// The prefix, e.g. `/image`.
        prefix: String,
        /// The vendor.
        vendor: String,
    },
    /// A path failing on every vendor while other paths work: the origin, not the CDN.
    Origin {
        /// The probe path.
        path: String,
    },
    /// A region's control targets fail: its own network is down and its results do not vote.
    ProbeNetwork {
        /// The region.
        region: String,
    },
}

impl FaultScope {
    /// Every kind's spelling, as [`FaultScope::kind`] gives them.
    pub const KINDS: [&'static str; 7] = [
        "edge",
        "resolver",
        "region_vendor",
        "vendor",
        "prefix_vendor",
        "origin",
        "probe_network",
    ];

    /// The kind's one spelling, as in JSON, SQL and labels.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultScope::Edge { .. } => "edge",
            FaultScope::Resolver { .. } => "resolver",
            FaultScope::RegionVendor { .. } => "region_vendor",
            FaultScope::Vendor { .. } => "vendor",
            FaultScope::PrefixVendor { .. } => "prefix_vendor",
            FaultScope::Origin { .. } => "origin",
            FaultScope::ProbeNetwork { .. } => "probe_network",
        }
    }
}

impl fmt::Display for FaultScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultScope::Edge { region, edge } => write!(f, "edge {edge} ({region})"),
            FaultScope::Resolver { region, resolver } => write!(f, "resolver {region}/{resolver}"),
            FaultScope::RegionVendor { region, vendor } => write!(f, "{vendor} in {region}"),
            FaultScope::Vendor { vendor } => write!(f, "vendor {vendor} in every region"),
            FaultScope::PrefixVendor { prefix, vendor } => write!(f, "prefix {prefix} on {vendor}"),
            FaultScope::Origin { path } => write!(f, "path {path} on every vendor"),
            FaultScope::ProbeNetwork { region } => write!(f, "the probe network of {region}"),
        }
    }
}

/// How many failed results of one outcome, met in one phase, a diagnosis is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    /// The class, with its status for `http_status`.
    pub outcome: Outcome,
    /// The phase it was met in, when known.
    pub phase: Option<Phase>,
    /// Failed results of this outcome and phase.
    pub count: u32,
}

impl fmt::Display for ClassCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.outcome)?;
        match self.phase {
            Some(phase) => write!(f, " in {phase}"),
            None => Ok(()),
        }
    }
}

/// One scope that explains failures of the round, with what it is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// Where the fault lies.
    pub scope: FaultScope,
    /// The failed results' classes, most frequent first.
    pub classes: Vec<ClassCount>,
    /// Per region, the scope's results (ok and failed).
    pub regions: BTreeMap<String, RegionCounts>,
    /// The hosts it touches.
    pub hosts: BTreeSet<String>,
    /// The probe paths it touches.
    pub paths: BTreeSet<String>,
    /// The resolvers it touches, as (region, resolver).
    pub resolvers: BTreeSet<(String, String)>,
    /// The edges it touches.
    pub edges: BTreeSet<IpAddr>,
    /// A few of its failed results.
    pub samples: Vec<Sample>,
}

impl Diagnosis {
    /// The scope's failed results.
    pub fn failed(&self) -> u32 {
        self.regions.values().map(|c| c.failed).sum()
    }

    /// All the scope's results.
    pub fn total(&self) -> u32 {
        self.regions.values().map(|c| c.ok + c.failed).sum()
    }
}

/// As on-call reads it: `alpha in cn-east fails: http_status 502 in processing, 8 of 8 results, on
/// cdn.shop.test and cdn-ss.shop.test`.
impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} fails", self.scope)?;
        let classes: Vec<String> = self.classes.iter().map(ToString::to_string).collect();
        if !classes.is_empty() {
            write!(f, ": {}", classes.join(", "))?;
        }
        write!(f, ", {} of {} results", self.failed(), self.total())?;
        let hosts: Vec<&str> = self.hosts.iter().map(String::as_str).collect();
        match hosts.as_slice() {
            [] => Ok(()),
            [one] => write!(f, ", on {one}"),
            [init @ .., last] => write!(f, ", on {} and {last}", init.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests;
