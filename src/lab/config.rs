//! The config file that points cdnwatch at the lab: built as a [`Config`] value from the lab's
//! topology and written with `toml`, so it always loads. Owns no servers and no faults.

use std::net::{IpAddr, SocketAddr};

use sha2::{Digest, Sha256};

use super::objects::object;
use super::topology::{HOSTS, MERGED, ORIGIN, REGIONS, RESOLVERS, Topology, VENDORS};
use crate::config::{
    ClientSettings, Config, ContentCheck, Host, MergedHost, Method, ProbePath, ProbeSettings,
    Region, ResolverConfig, Scheme, Timeouts, Transport, Vendor,
};
use crate::model::HostRole;

impl Topology {
    /// The config that points cdnwatch at this lab; `ca_file` is the CA's path as written in the
    /// file (relative to it).
    pub fn config(&self, ca_file: &str) -> Config {
        let timeouts = Timeouts {
            dns_ms: 1_000,
            connect_ms: 2_000,
            tls_ms: 2_000,
            first_byte_ms: 2_000,
            transfer_ms: 2_000,
        };
        let vendor = |name: &str| Vendor {
            name: name.to_owned(),
            ca_file: Some(ca_file.into()),
            system_roots: false,
        };
        let merged = |(host, prefix, rate): (&str, &str, f64)| MergedHost {
            host: host.to_owned(),
            path_prefix: prefix.to_owned(),
            rate,
            vendor: Some(ORIGIN.0.to_owned()),
        };
        Config {
            probe: ProbeSettings {
                interval_ms: 5_000,
                max_edges: 4,
                timeouts,
                ..ProbeSettings::default()
            },
            client: ClientSettings {
                config_request_interval_ms: 60_000,
                revive_probe_interval_ms: 30_000,
                public_ip_list: vec!["223.5.5.5".into(), "119.29.29.29".into()],
            },
            vendors: VENDORS
                .iter()
                .chain([&ORIGIN])
                .map(|(name, _)| vendor(name))
                .collect(),
            hosts: HOSTS
                .iter()
                .copied()
                .chain(self.generated.iter().map(generated))
                .map(|h| self.host_config(h))
                .collect(),
            merged_hosts: MERGED.into_iter().map(merged).collect(),
            regions: REGIONS
                .iter()
                .map(|r| self.region_config(r.0, r.2))
                .collect(),
            ..Config::default()
        }
    }

    /// [`Topology::config`] as the TOML file cdnwatch reads.
    pub fn config_toml(&self, ca_file: &str) -> String {
        format!(
            "# Written by `cdnwatch lab`: the simulated CDN on loopback.\n\n{}",
            self.config(ca_file).to_toml()
        )
    }

    fn host_config(&self, (domain, vendor, role): (&str, &str, HostRole)) -> Host {
        let image = object("/image/probe.jpg").expect("probe object");
        let product = object("/product/probe.json").expect("probe object");
        let path = |path: &str, check| ProbePath {
            path: path.to_owned(),
            method: Method::Get,
            accept_status: vec![200],
            check: Some(check),
        };
        Host {
            domain: domain.to_owned(),
            vendor: vendor.to_owned(),
            role,
            scheme: Scheme::Https,
            port: Some(self.edge_port),
            rate: 1.0,
            paths: vec![
                path(
                    "/image/probe.jpg",
                    ContentCheck::Sha256(hex::encode(Sha256::digest(&image))),
                ),
                path(
                    "/product/probe.json",
                    ContentCheck::Size(product.len() as u64),
                ),
                path("/community/probe.css", ContentCheck::MinSize(1024)),
            ],
        }
    }

    fn region_config(&self, region: &str, subnet: &str) -> Region {
        let control = Self::control_ip(region).expect("known region");
        let resolver = |name: &str| ResolverConfig {
            name: name.to_owned(),
            transport: Transport::Udp(SocketAddr::new(
                IpAddr::V4(Self::resolver_ip(region, name).expect("known resolver")),
                self.dns_port,
            )),
        };
        Region {
            name: region.to_owned(),
            client_subnet: Some(subnet.parse().expect("the lab's subnets parse")),
            control_targets: vec![SocketAddr::new(IpAddr::V4(control), self.edge_port)],
            resolvers: RESOLVERS.iter().map(|r| resolver(r)).collect(),
        }
    }
}

/// A generated host as the fixed ones are written: a same-vendor backup.
fn generated(
    &(host, vendor): &(&'static str, &'static str),
) -> (&'static str, &'static str, HostRole) {
    (host, vendor, HostRole::SameVendorBackup)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::lab::LabCa;

    #[test]
    fn the_written_config_is_valid_and_covers_the_whole_lab() {
        let topo = Topology::new(8443, 5353);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lab-ca.pem"),
            LabCa::new().unwrap().ca_pem(),
        )
        .unwrap();
        let text = topo.config_toml("lab-ca.pem");
        let c = crate::config::Config::parse(&text, "lab.toml", dir.path()).unwrap();
        let s = c.summary();
        assert_eq!(
            (s.hosts, s.host_paths, s.regions, s.resolvers, s.series),
            (3, 9, 3, 6, 54)
        );
        assert_eq!(topo.host_of_name("CDN.shop.test."), Some("cdn.shop.test"));
        assert_eq!(
            topo.host_of_name("cdn-bak.shop.test.beta-cdn.test"),
            Some("cdn-bak.shop.test")
        );
        assert_eq!(
            Topology::edges("beta", "cn-south"),
            [Ipv4Addr::new(127, 22, 3, 1), Ipv4Addr::new(127, 22, 3, 2)]
        );
    }
}
