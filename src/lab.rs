//! The lab: a simulated two-vendor CDN on loopback (authoritative DNS per region and resolver,
//! HTTPS edges with a CA made at start, control targets) with a fault-injection API. Used by the
//! tests, by `demo` and by the benchmarks; `cdnwatch lab` runs it standalone.
//!
//! Addresses (all in 127.0.0.0/8, so no setup is needed on Linux):
//! - resolver `isp` / `public` of region R: 127.53.R.1 / 127.53.R.2, UDP and TCP on the DNS port;
//! - edges of vendor V in region R: 127.V.R.1 and 127.V.R.2 (alpha V=21, beta V=22) on the edge port;
//!   127.V.R.9 is a retired edge where nothing listens (what a `stale_dns` fault answers with);
//! - control target of region R: 127.99.R.1 on the edge port (plain TCP).

pub mod api;
mod ca;
mod config;
mod dns;
mod edge;
pub mod fault;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use ca::{CertVariant, LabCa};
pub use fault::{Fault, FaultKind, FaultSpec, Faults};

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

/// Why the lab could not start.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// An address could not be bound.
    #[error("binding {what} {addr}: {source}")]
    Bind {
        /// What was being bound.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
    /// No port was free on every lab address.
    #[error("no free {what} port shared by every lab address after {tries} tries")]
    NoPort {
        /// Which port.
        what: &'static str,
        /// Ports tried.
        tries: usize,
    },
    /// The lab CA could not be made.
    #[error("making the lab CA: {0}")]
    Ca(#[from] rcgen::Error),
}

/// Who owns an edge-port address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// `None` for a control target.
    pub vendor: Option<&'static str>,
    /// The region the address is in.
    pub region: &'static str,
}

/// The lab's fixed shape and the ports it got.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    /// The port every edge and control target listens on.
    pub edge_port: u16,
    /// The port every lab resolver listens on.
    pub dns_port: u16,
}

impl Topology {
    /// The fixed shape, with the ports the lab got.
    pub fn new(edge_port: u16, dns_port: u16) -> Topology {
        Topology {
            edge_port,
            dns_port,
        }
    }

    /// The vendor serving lab host `host`.
    pub fn vendor_of(host: &str) -> Option<&'static str> {
        HOSTS.iter().find(|h| h.0 == host).map(|h| h.1)
    }

    fn vendor_octet(vendor: &str) -> Option<u8> {
        VENDORS.iter().find(|v| v.0 == vendor).map(|v| v.1)
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
            for (vendor, _) in VENDORS {
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
    pub fn cname_of(host: &str) -> Option<String> {
        Some(format!("{host}.{}-cdn.test", Self::vendor_of(host)?))
    }

    /// The lab host a DNS name belongs to (the host itself or its CNAME target).
    pub fn host_of_name(name: &str) -> Option<&'static str> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        HOSTS
            .iter()
            .map(|h| h.0)
            .find(|h| name == *h || Self::cname_of(h).is_some_and(|c| c == name))
    }

    /// Checks that every scope field of `spec` names something in the lab.
    pub fn check_scope(&self, spec: &FaultSpec) -> Result<(), String> {
        let names = |list: &[&str]| {
            list.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(v) = &spec.vendor
            && Self::vendor_octet(v).is_none()
        {
            return Err(format!(
                "no vendor `{v}` in the lab (it has {})",
                names(&VENDORS.map(|v| v.0))
            ));
        }
        if let Some(h) = &spec.host
            && Self::vendor_of(h).is_none()
        {
            return Err(format!(
                "no host `{h}` in the lab (it has {})",
                names(&HOSTS.map(|h| h.0))
            ));
        }
        if let Some(r) = &spec.region
            && Self::region_octet(r).is_none()
        {
            return Err(format!(
                "no region `{r}` in the lab (it has {})",
                names(&REGIONS.map(|r| r.0))
            ));
        }
        if let Some(r) = &spec.resolver
            && !RESOLVERS.contains(&r.as_str())
        {
            return Err(format!(
                "no resolver `{r}` in the lab (it has {})",
                names(&RESOLVERS)
            ));
        }
        if let Some(e) = spec.edge {
            let known = Self::edge_port_addresses()
                .iter()
                .any(|(ip, _)| IpAddr::V4(*ip) == e);
            if !known {
                return Err(format!(
                    "no edge {e} in the lab (edges are 127.21-22.1-3.1-2, control targets 127.99.1-3.1)"
                ));
            }
        }
        if let Some(p) = &spec.path_prefix
            && !p.starts_with('/')
        {
            return Err(format!("`path_prefix` {p:?} must start with `/`"));
        }
        Ok(())
    }
}

/// The object an edge serves at `path` (the query string is ignored), or `None` (404).
///
/// Content is derived from the path alone, so every edge of every vendor serves the same bytes and
/// the config can carry their size and digest.
pub fn object(path: &str) -> Option<Vec<u8>> {
    let path = path.split('?').next().unwrap_or(path);
    if !MERGED
        .iter()
        .any(|(_, prefix, _)| path.starts_with(&format!("{prefix}/")))
    {
        return None;
    }
    let size = match path.rsplit('.').next() {
        Some("jpg" | "png" | "webp") => 16 * 1024,
        Some("json") => 600,
        Some("css" | "js") => 4 * 1024,
        _ => 1024,
    };
    let mut out = Vec::with_capacity(size);
    let mut block = 0u64;
    while out.len() < size {
        let mut h = Sha256::new();
        h.update(path.as_bytes());
        h.update(block.to_le_bytes());
        out.extend_from_slice(&h.finalize());
        block += 1;
    }
    out.truncate(size);
    Some(out)
}

/// [`object`], with the probe objects made once.
pub(crate) fn cached_object(path: &str) -> Option<bytes::Bytes> {
    static PROBES: std::sync::LazyLock<Vec<(&'static str, bytes::Bytes)>> =
        std::sync::LazyLock::new(|| {
            PROBE_PATHS
                .iter()
                .map(|p| (*p, bytes::Bytes::from(object(p).expect("probe object"))))
                .collect()
        });
    let bare = path.split('?').next().unwrap_or(path);
    match PROBES.iter().find(|(p, _)| *p == bare) {
        Some((_, body)) => Some(body.clone()),
        None => object(path).map(bytes::Bytes::from),
    }
}

/// How the lab starts.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The fault API's address (port 0: any).
    pub api_listen: SocketAddr,
    /// The port every edge and control target listens on (0: the first free one).
    pub edge_port: u16,
    /// The port every resolver listens on, UDP and TCP (0: the first free one).
    pub dns_port: u16,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            api_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            edge_port: 0,
            dns_port: 0,
        }
    }
}

/// What every server of the lab shares.
pub(crate) struct Shared {
    pub topology: Arc<Topology>,
    pub faults: Faults,
    pub ca: LabCa,
    pub dns_queries: AtomicU64,
    pub edge_connections: AtomicU64,
    pub cancel: CancellationToken,
    pub tasks: TaskTracker,
}

/// A running lab.
pub struct Lab {
    shared: Arc<Shared>,
    api_addr: SocketAddr,
    dns_servers: Vec<hickory_server::server::Server<dns::ResolverHandler>>,
}

impl Lab {
    /// Binds every address (edges, resolvers, the fault API) and starts serving.
    pub async fn start(opts: LabOptions) -> Result<Lab, LabError> {
        let (edge_port, edge_listeners) = bind_edges(opts.edge_port).await?;
        let (dns_port, dns_sockets) = bind_resolvers(opts.dns_port).await?;
        let topology = Arc::new(Topology::new(edge_port, dns_port));
        let shared = Arc::new(Shared {
            faults: Faults::new(topology.clone()),
            topology,
            ca: LabCa::new()?,
            dns_queries: AtomicU64::new(0),
            edge_connections: AtomicU64::new(0),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        for (listener, ip, owner) in edge_listeners {
            shared
                .tasks
                .spawn(edge::listen(shared.clone(), listener, ip, owner));
        }
        let dns_servers = dns_sockets
            .into_iter()
            .map(|(udp, tcp, region, resolver)| {
                dns::server(shared.clone(), udp, tcp, region, resolver)
            })
            .collect();
        let api_listener =
            TcpListener::bind(opts.api_listen)
                .await
                .map_err(|source| LabError::Bind {
                    what: "the fault API on",
                    addr: opts.api_listen,
                    source,
                })?;
        let api_addr = api_listener.local_addr().map_err(|source| LabError::Bind {
            what: "the fault API on",
            addr: opts.api_listen,
            source,
        })?;
        let router = api::router(shared.clone());
        let cancel = shared.cancel.clone();
        shared.tasks.spawn(async move {
            let _ = axum::serve(api_listener, router)
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await;
        });
        Ok(Lab {
            shared,
            api_addr,
            dns_servers,
        })
    }

    /// The lab's shape and ports.
    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    /// The active faults; changes apply at once.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Where the fault API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The lab CA's certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        self.shared.ca.ca_pem()
    }

    /// DNS queries answered (or dropped) since start, over every resolver.
    pub fn dns_queries(&self) -> u64 {
        self.shared.dns_queries.load(Ordering::Relaxed)
    }

    /// Connections accepted by the edges and control targets since start.
    pub fn edge_connections(&self) -> u64 {
        self.shared.edge_connections.load(Ordering::Relaxed)
    }

    /// Writes the config pointing at this lab to `path`, and the CA beside it as `lab-ca.pem`.
    /// The config is written to a temporary file and renamed, so a reader never sees half of it.
    pub fn write_config(&self, path: &Path) -> std::io::Result<()> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("lab-ca.pem"), self.ca_pem())?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, self.shared.topology.config_toml("lab-ca.pem"))?;
        std::fs::rename(&tmp, path)
    }

    /// Stops every server and waits for their tasks.
    pub async fn shutdown(mut self) {
        self.shared.cancel.cancel();
        for server in &mut self.dns_servers {
            let _ = server.shutdown_gracefully().await;
        }
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

const PORT_TRIES: usize = 50;

type EdgeListeners = Vec<(TcpListener, Ipv4Addr, Owner)>;

/// Binds every edge-port address on one port: `port`, or when 0 the first port the kernel gives
/// the first address that is free on all the others too.
async fn bind_edges(port: u16) -> Result<(u16, EdgeListeners), LabError> {
    let addrs = Topology::edge_port_addresses();
    for _ in 0..PORT_TRIES {
        let mut out = Vec::new();
        let mut chosen = port;
        let mut clash = false;
        for (ip, owner) in &addrs {
            let addr = SocketAddr::from((*ip, chosen));
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    chosen = l
                        .local_addr()
                        .map_err(|source| LabError::Bind {
                            what: "edge",
                            addr,
                            source,
                        })?
                        .port();
                    out.push((l, *ip, *owner));
                }
                Err(e) if port == 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                    clash = true;
                    break;
                }
                Err(source) => {
                    return Err(LabError::Bind {
                        what: "edge",
                        addr,
                        source,
                    });
                }
            }
        }
        if !clash {
            return Ok((chosen, out));
        }
    }
    Err(LabError::NoPort {
        what: "edge",
        tries: PORT_TRIES,
    })
}

type ResolverSockets = Vec<(UdpSocket, TcpListener, &'static str, &'static str)>;

/// Binds UDP and TCP for every resolver address on one port, as [`bind_edges`] does.
async fn bind_resolvers(port: u16) -> Result<(u16, ResolverSockets), LabError> {
    let addrs = Topology::resolver_addresses();
    for _ in 0..PORT_TRIES {
        let mut out = Vec::new();
        let mut chosen = port;
        let mut clash = false;
        for (ip, region, resolver) in &addrs {
            let addr = SocketAddr::from((*ip, chosen));
            let bound = async {
                let udp = UdpSocket::bind(addr).await?;
                let addr = udp.local_addr()?;
                let tcp = TcpListener::bind(addr).await?;
                Ok::<_, std::io::Error>((udp, tcp, addr.port()))
            };
            match bound.await {
                Ok((udp, tcp, p)) => {
                    chosen = p;
                    out.push((udp, tcp, *region, *resolver));
                }
                Err(e) if port == 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                    clash = true;
                    break;
                }
                Err(source) => {
                    return Err(LabError::Bind {
                        what: "resolver",
                        addr,
                        source,
                    });
                }
            }
        }
        if !clash {
            return Ok((chosen, out));
        }
    }
    Err(LabError::NoPort {
        what: "resolver",
        tries: PORT_TRIES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_deterministic_and_only_under_the_merged_prefixes() {
        let a = object("/image/probe.jpg").unwrap();
        assert_eq!(a.len(), 16 * 1024);
        assert_eq!(a, object("/image/probe.jpg?v=2").unwrap());
        assert_ne!(a, object("/image/other.jpg").unwrap());
        assert_eq!(object("/product/probe.json").unwrap().len(), 600);
        assert!(object("/video/x.mp4").is_none());
        assert!(object("/imagex/probe.jpg").is_none());
    }

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
        assert_eq!(
            Topology::host_of_name("CDN.shop.test."),
            Some("cdn.shop.test")
        );
        assert_eq!(
            Topology::host_of_name("cdn-bak.shop.test.beta-cdn.test"),
            Some("cdn-bak.shop.test")
        );
        assert_eq!(
            Topology::edges("beta", "cn-south"),
            [Ipv4Addr::new(127, 22, 3, 1), Ipv4Addr::new(127, 22, 3, 2)]
        );
    }
}
