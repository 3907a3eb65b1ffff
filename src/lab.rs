//! The lab: a simulated two-vendor CDN on loopback (authoritative DNS per region and resolver,
//! HTTPS edges with a CA made at start, control targets) with a fault-injection API. Used by the
//! tests, by `demo` and by the benchmarks; `cdnwatch lab` runs it standalone.
//!
//! Addresses (all in 127.0.0.0/8, so no setup is needed on Linux):
//! - resolver `isp` / `public` of region R: 127.53.R.1 / 127.53.R.2, UDP and TCP on the DNS port;
//! - edges of vendor V in region R: 127.V.R.1 and 127.V.R.2 (alpha V=21, beta V=22) on the edge port;
//!   the original domains of the merged prefixes (`image.shop.test` …, before the merge) are served
//!   by vendor `origin`, V=23, each object at the path it has under its prefix on the unified hosts;
//!   127.V.R.9 is a retired edge where nothing listens (what a `stale_dns` fault answers with);
//! - control target of region R: 127.99.R.1 on the edge port (plain TCP).
//!
//! Layout: `topology` the fixed shape and its addresses; `objects` the bytes the edges serve;
//! `bind` the sockets, bound before anything serves; `edge` and `dns` the servers; `fault` the
//! faults and `api` their HTTP API; `ca` the certificates; `config` the cdnwatch config that
//! points at the lab. This module starts and stops them; it holds no server logic of its own.

pub mod api;
mod bind;
mod ca;
mod config;
mod dns;
mod edge;
pub mod fault;
mod objects;
mod topology;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use ca::{CertVariant, LabCa};
pub use fault::{Fault, FaultKind, FaultSpec, Faults};
pub use objects::object;
pub use topology::{
    HOSTS, MERGED, ORIGIN, Owner, PROBE_PATHS, REGIONS, RESOLVERS, Topology, VENDORS,
};

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
    /// Hosts were to be generated for a vendor the lab does not have.
    #[error("no lab vendor `{0}` to generate hosts of (the lab's vendors are alpha and beta)")]
    Vendor(String),
    /// The lab CA could not be made.
    #[error("making the lab CA: {0}")]
    Ca(#[from] rcgen::Error),
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
    /// A vendor and how many hosts of it to generate beside the fixed ones, served and written
    /// in the config like them ([`Topology::with_generated`]); none by default.
    pub generated: Option<(String, usize)>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            api_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            edge_port: 0,
            dns_port: 0,
            generated: None,
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
        let (edge_port, edge_listeners) = bind::edges(opts.edge_port).await?;
        let (dns_port, dns_sockets) = bind::resolvers(opts.dns_port).await?;
        let mut topology = Topology::new(edge_port, dns_port);
        if let Some((vendor, count)) = &opts.generated {
            topology = topology
                .with_generated(vendor, *count)
                .ok_or_else(|| LabError::Vendor(vendor.clone()))?;
        }
        let topology = Arc::new(topology);
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
        let (api_listener, api_addr) = bind::api(opts.api_listen).await?;
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
