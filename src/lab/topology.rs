//! The lab's fixed shape: its vendors, hosts, regions, resolvers and merged paths, and the
//! loopback address of every edge, resolver and control target (see [`super`] for the plan).
//! Pure facts and arithmetic on them: binds nothing, serves nothing, knows no faults.

use std::net::Ipv4Addr;

use serde::Serialize;

use crate::model::HostRole;

/// The lab's vendors and the second octet of their edge addresses.
pub const VENDORS: [(&str, u8); 2] = [("alpha", 21), ("beta", 22)];
/// The failover group (the article's primary, same-vendor backup and other-vendor backup).
pub const HOSTS: [(&str, &str, HostRole); 3] = [
    ("cdn.shop.test", "alpha", HostRole::Primary),
    ("cdn-ss.shop.test", "alpha", HostRole::SameVendorBackup),
    ("cdn-bak.shop.test", "beta", HostRole::OtherVendorBackup),
];
/// Regions, the third octet of their addresses and the client subnet their probes carry.
pub const REGIONS: [(&str, u8, &str); 3] = [
    ("cn-east", 1, "198.51.100.0/24"),
    ("cn-north", 2, "198.51.101.0/24"),
    ("cn-south", 3, "198.51.102.0/24"),
];
/// Each region's resolvers; the index + 1 is the last octet of the resolver's address.
pub const RESOLVERS: [&str; 2] = ["isp", "public"];
/// Merged hosts: the original domain, its path prefix on the unified domain, rollout rate.
pub const MERGED: [(&str, &str, f64); 3] = [
    ("image.shop.test", "/image", 1.0),
    ("product.shop.test", "/product", 0.5),
    ("community.shop.test", "/community", 0.1),
];
/// The servers of the original domains (the merged hosts as they were before the merge), as a
/// vendor of its own: its name and the second octet of its edge addresses.
pub const ORIGIN: (&str, u8) = ("origin", 23);
/// The probe objects every host serves, one per merged prefix.
pub const PROBE_PATHS: [&str; 3] = [
    "/image/probe.jpg",
    "/product/probe.json",
    "/community/probe.css",
];
/// Last octet of the edges that serve, and of the retired one.
const EDGE_OCTETS: [u8; 2] = [1, 2];
const RETIRED_OCTET: u8 = 9;
const RESOLVER_NET: u8 = 53;
const CONTROL_NET: u8 = 99;

/// Who owns an edge-port address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// `None` for a control target.
    pub vendor: Option<&'static str>,
    /// The region the address is in.
    pub region: &'static str,
}

/// The lab's fixed shape, the hosts generated beside it, and the ports it got.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    /// The port every edge and control target listens on.
    pub edge_port: u16,
    /// The port every lab resolver listens on.
    pub dns_port: u16,
    /// Hosts generated beside the fixed ones (a big config, e.g. a storm of 200 hosts failing
    /// at once), with their vendor; none by default.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generated: Vec<(&'static str, &'static str)>,
}

impl Topology {
    /// The fixed shape, with the ports the lab got.
    pub fn new(edge_port: u16, dns_port: u16) -> Topology {
        Topology {
            edge_port,
            dns_port,
            generated: Vec::new(),
        }
    }

    /// This shape with `count` more hosts of lab vendor `vendor`, named
    /// `gen-{i}.{vendor}.shop.test`: each served like a fixed host (its CNAME, its vendor's
    /// edges, the probe objects), in the config as a same-vendor backup. `None` for an unknown
    /// vendor. The names are leaked, once per lab: a few bytes each, for the lab's lifetime.
    pub fn with_generated(mut self, vendor: &str, count: usize) -> Option<Topology> {
        let vendor = VENDORS.iter().find(|v| v.0 == vendor)?.0;
        self.generated = (0..count)
            .map(|i| {
                let name: &'static str = format!("gen-{i}.{vendor}.shop.test").leak();
                (name, vendor)
            })
            .collect();
        Some(self)
    }

    /// The vendor serving lab host `host`; [`ORIGIN`] for an original domain.
    pub fn vendor_of(&self, host: &str) -> Option<&'static str> {
        if MERGED.iter().any(|m| m.0 == host) {
            return Some(ORIGIN.0);
        }
        let fixed = HOSTS.iter().map(|h| (h.0, h.1));
        let mut all = fixed.chain(self.generated.iter().copied());
        all.find(|h| h.0 == host).map(|h| h.1)
    }

    /// Every name the lab serves: the failover group's hosts, the original domains, then the
    /// generated hosts.
    pub fn served_hosts(&self) -> impl Iterator<Item = &'static str> + '_ {
        let fixed = HOSTS.iter().map(|h| h.0).chain(MERGED.iter().map(|m| m.0));
        fixed.chain(self.generated.iter().map(|h| h.0))
    }

    /// The object path a request for `path` on `host` reads: an original domain serves what the
    /// unified domains serve under its prefix (`image.shop.test/probe.jpg` is
    /// `cdn.shop.test/image/probe.jpg`, the article's section 2.2).
    pub fn object_path(host: &str, path: &str) -> String {
        match MERGED.iter().find(|m| m.0 == host) {
            Some((_, prefix, _)) => format!("{prefix}{path}"),
            None => path.to_string(),
        }
    }

    fn vendor_octet(vendor: &str) -> Option<u8> {
        VENDORS
            .iter()
            .chain([&ORIGIN])
            .find(|v| v.0 == vendor)
            .map(|v| v.1)
    }

    fn region_octet(region: &str) -> Option<u8> {
        REGIONS.iter().find(|r| r.0 == region).map(|r| r.1)
    }

    /// The serving edges of `vendor` in `region`.
    pub fn edges(vendor: &str, region: &str) -> Vec<Ipv4Addr> {
        match (Self::vendor_octet(vendor), Self::region_octet(region)) {
            (Some(v), Some(r)) => EDGE_OCTETS
                .iter()
                .map(|&e| Ipv4Addr::new(127, v, r, e))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The retired edge of `vendor` in `region`: nothing listens there.
    pub fn retired_edge(vendor: &str, region: &str) -> Option<Ipv4Addr> {
        Some(Ipv4Addr::new(
            127,
            Self::vendor_octet(vendor)?,
            Self::region_octet(region)?,
            RETIRED_OCTET,
        ))
    }

    /// The address of resolver `resolver` in `region`.
    pub fn resolver_ip(region: &str, resolver: &str) -> Option<Ipv4Addr> {
        let i = RESOLVERS.iter().position(|r| *r == resolver)?;
        Some(Ipv4Addr::new(
            127,
            RESOLVER_NET,
            Self::region_octet(region)?,
            i as u8 + 1,
        ))
    }

    /// The address of `region`'s control target.
    pub fn control_ip(region: &str) -> Option<Ipv4Addr> {
        Some(Ipv4Addr::new(
            127,
            CONTROL_NET,
            Self::region_octet(region)?,
            1,
        ))
    }

    /// Every address that listens on the edge port, with its owner.
    pub fn edge_port_addresses() -> Vec<(Ipv4Addr, Owner)> {
        let mut out = Vec::new();
        for (region, _, _) in REGIONS {
            for (vendor, _) in VENDORS.into_iter().chain([ORIGIN]) {
                for ip in Self::edges(vendor, region) {
                    out.push((
                        ip,
                        Owner {
                            vendor: Some(vendor),
                            region,
                        },
                    ));
                }
            }
            out.push((
                Self::control_ip(region).expect("known region"),
                Owner {
                    vendor: None,
                    region,
                },
            ));
        }
        out
    }

    /// Every resolver address with its (region, resolver).
    pub fn resolver_addresses() -> Vec<(Ipv4Addr, &'static str, &'static str)> {
        let mut out = Vec::new();
        for (region, _, _) in REGIONS {
            for resolver in RESOLVERS {
                out.push((
                    Self::resolver_ip(region, resolver).expect("known"),
                    region,
                    resolver,
                ));
            }
        }
        out
    }

    /// The CNAME target of a lab host: `{host}.{vendor}-cdn.test`.
    pub fn cname_of(&self, host: &str) -> Option<String> {
        Some(format!("{host}.{}-cdn.test", self.vendor_of(host)?))
    }

    /// The lab host a DNS name belongs to (the host itself or its CNAME target).
    pub fn host_of_name(&self, name: &str) -> Option<&'static str> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.served_hosts().find(|h| {
            name.starts_with(h) && (name == *h || self.cname_of(h).is_some_and(|c| c == name))
        })
    }
}
