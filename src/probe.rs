//! One probe: a (host, path) from a region through one resolver — the DNS answer, then every edge IP
//! in it (up to the cap, concurrently): connect, TLS, first byte, transfer, content check.
//!
//! A failed probe is a measurement, not an `Err`: every row carries the phases it reached and at most
//! one failure class. `Err` is for our own faults (a CA file that cannot be read). Each phase lives
//! in its own file; this one only orchestrates.

pub mod control;
pub mod dns;
pub mod http;
pub mod tcp;
pub mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

pub use dns::DnsOutcome;

use crate::clock::Clock;
use crate::config::{Config, Host, ProbePath, ProbeSettings, Region, ResolverConfig, Scheme};
use crate::model::{CertInfo, EdgeResult, Failure, FailureClass, Phase};

/// Why the prober could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    /// A vendor's trust store or TLS setup could not be built.
    #[error("vendor `{vendor}`: {why}")]
    Vendor {
        /// The vendor's name.
        vendor: String,
        /// What went wrong.
        why: String,
    },
}

/// A phase that ended in a failure: why, and — when its timeout ended it — the time it waited,
/// which is then the phase's figure (a phase that failed fast has none: it did not finish).
#[derive(Debug)]
pub struct PhaseFailure {
    /// Why the phase failed.
    pub failure: Failure,
    /// From the phase's start to its timeout firing, in ms; `None` when it failed otherwise.
    pub waited_ms: Option<f64>,
}

impl PhaseFailure {
    /// `failure`, ending a phase that started at `started`: the time waited is kept when the
    /// failure is a timeout.
    pub fn ended(failure: Failure, started: Instant) -> PhaseFailure {
        let waited_ms = failure
            .class
            .is_timeout()
            .then(|| started.elapsed().as_secs_f64() * 1000.0);
        PhaseFailure { failure, waited_ms }
    }
}

impl From<Failure> for PhaseFailure {
    /// A failure met before the phase's clock started: nothing waited.
    fn from(failure: Failure) -> PhaseFailure {
        PhaseFailure {
            failure,
            waited_ms: None,
        }
    }
}

/// The result of one probe: the DNS outcome and one row per edge probed (or the one row that
/// carries the DNS failure).
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// The resolve phase's outcome.
    pub dns: DnsOutcome,
    /// One row per edge probed, or the one row of a DNS failure.
    pub results: Vec<EdgeResult>,
    /// How late the probe started after its slot in the schedule (set by the scheduler; zero
    /// for a probe run by hand): the slot is the results' `at` minus this.
    pub started_late: std::time::Duration,
}

/// Probes; built once per config (TLS setups per vendor are reused by every probe).
pub struct Prober {
    settings: ProbeSettings,
    vendors: HashMap<String, Arc<tls::VendorTls>>,
    /// What stamps each result's start (`at`).
    clock: Clock,
}

impl Prober {
    /// A prober for `config`: each vendor's trust store read and its TLS setup built.
    pub fn new(config: &Config) -> Result<Prober, ProbeSetupError> {
        Prober::with_cas(config, &HashMap::new())
    }

    /// A prober for `config` whose vendors' extra CA certificates are `pems` (PEM text by vendor,
    /// as an agent's assignment carries them) where given, else read from their CA files.
    pub fn with_cas(
        config: &Config,
        pems: &HashMap<String, String>,
    ) -> Result<Prober, ProbeSetupError> {
        tls::install_default_provider();
        let mut vendors = HashMap::new();
        for v in &config.vendors {
            let bad = |why| ProbeSetupError::Vendor {
                vendor: v.name.clone(),
                why,
            };
            let extra = match (pems.get(&v.name), config.ca_path(v)) {
                (Some(pem), _) => {
                    crate::trust::parse_pem_certs(pem.as_bytes(), &v.name).map_err(bad)?
                }
                (None, Some(path)) => crate::trust::read_pem_certs(&path).map_err(bad)?,
                (None, None) => Vec::new(),
            };
            let roots = crate::trust::root_store(v.system_roots, &extra);
            let setup = tls::VendorTls::new(roots).map_err(|why| ProbeSetupError::Vendor {
                vendor: v.name.clone(),
                why,
            })?;
            vendors.insert(v.name.clone(), Arc::new(setup));
        }
        Ok(Prober {
            settings: config.probe.clone(),
            vendors,
            clock: Clock::system(),
        })
    }

    /// The same prober, stamping its results with `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Prober {
        self.clock = clock;
        self
    }

    /// The clock this prober stamps its results with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// One probe of (host, path) from `region` through `resolver`. Never fails: failures are data.
    pub async fn probe(
        &self,
        host: &Host,
        path: &ProbePath,
        region: &Region,
        resolver: &ResolverConfig,
    ) -> ProbeReport {
        let at = self.clock.now();
        let row = Row {
            at,
            host,
            path,
            region,
            resolver,
        };
        let dns = dns::resolve(
            &resolver.transport,
            &host.domain,
            region.client_subnet,
            self.settings.timeouts.dns(),
        )
        .await;
        if let Some(f) = &dns.failure {
            return ProbeReport {
                results: vec![row.dns_failure(dns.dns_ms, f.clone())],
                dns,
                started_late: std::time::Duration::ZERO,
            };
        }
        let ips: Vec<IpAddr> = dns
            .answer
            .iter()
            .flat_map(|a| a.ips.iter().copied())
            .take(self.settings.max_edges)
            .collect();
        let edges = ips.iter().map(|ip| self.probe_edge(&row, *ip, dns.dns_ms));
        let results = futures_util::future::join_all(edges).await;
        ProbeReport {
            dns,
            results,
            started_late: std::time::Duration::ZERO,
        }
    }

    async fn probe_edge(&self, row: &Row<'_>, ip: IpAddr, dns_ms: f64) -> EdgeResult {
        let mut r = row.base(Some(ip), dns_ms);
        let t = &self.settings.timeouts;
        let (tcp, connect_ms) =
            match tcp::connect(SocketAddr::new(ip, row.host.port()), t.connect()).await {
                Ok(ok) => ok,
                Err(e) => {
                    r.connect_ms = e.waited_ms;
                    return r.failed(e.failure);
                }
            };
        r.connect_ms = Some(connect_ms);
        let spec = http::RequestSpec {
            host_header: &host_header(row.host),
            method: row.path.method,
            path: &row.path.path,
            accept_status: &row.path.accept_status,
            check: row.path.check.clone(),
            first_byte_timeout: t.first_byte(),
            transfer_timeout: t.transfer(),
            max_header_bytes: self.settings.max_header_bytes,
            max_body_bytes: self.settings.max_body_bytes,
        };
        let (outcome, cert_failure) = match row.host.scheme {
            Scheme::Http => (http::request(tcp, &spec).await, None),
            Scheme::Https => {
                let Some(vendor) = self.vendors.get(&row.host.vendor) else {
                    let f = Failure::new(
                        FailureClass::TlsHandshake,
                        Phase::Tls,
                        format!("no TLS setup for vendor {}", row.host.vendor),
                    );
                    return r.failed(f);
                };
                let hs = match tls::handshake(tcp, &row.host.domain, vendor, t.tls()).await {
                    Ok(hs) => hs,
                    Err(e) => {
                        r.tls_ms = e.waited_ms;
                        return r.failed(e.failure);
                    }
                };
                r.tls_ms = Some(hs.tls_ms);
                r.cert = hs.cert.clone();
                (http::request(hs.stream, &spec).await, hs.cert_failure)
            }
        };
        r.first_byte_ms = outcome.first_byte_ms;
        r.transfer_ms = outcome.transfer_ms;
        r.status = outcome.status;
        r.body_bytes = outcome.body_bytes;
        // A certificate failure is the edge's failure even when HTTP then worked.
        r.failure = cert_failure.or(outcome.failure);
        r.total_ms = Some(total(&r));
        r
    }
}

/// The Host header: the domain, with the port when it is not the scheme's default.
fn host_header(h: &Host) -> String {
    let default = match h.scheme {
        Scheme::Https => 443,
        Scheme::Http => 80,
    };
    if h.port() == default {
        h.domain.clone()
    } else {
        format!("{}:{}", h.domain, h.port())
    }
}

fn total(r: &EdgeResult) -> f64 {
    [
        r.dns_ms,
        r.connect_ms,
        r.tls_ms,
        r.first_byte_ms,
        r.transfer_ms,
    ]
    .iter()
    .flatten()
    .sum()
}

/// The fixed part of every row of one probe.
struct Row<'a> {
    at: DateTime<Utc>,
    host: &'a Host,
    path: &'a ProbePath,
    region: &'a Region,
    resolver: &'a ResolverConfig,
}

impl Row<'_> {
    fn base(&self, edge_ip: Option<IpAddr>, dns_ms: f64) -> EdgeResult {
        EdgeResult {
            at: self.at,
            host: self.host.domain.clone(),
            path: self.path.path.clone(),
            region: self.region.name.clone(),
            resolver: self.resolver.name.clone(),
            edge_ip,
            dns_ms: Some(dns_ms),
            connect_ms: None,
            tls_ms: None,
            first_byte_ms: None,
            transfer_ms: None,
            total_ms: None,
            status: None,
            body_bytes: 0,
            cert: None::<CertInfo>,
            failure: None,
        }
    }

    fn dns_failure(&self, dns_ms: f64, f: Failure) -> EdgeResult {
        let mut r = self.base(None, dns_ms);
        r.failure = Some(f);
        r.total_ms = Some(dns_ms);
        r
    }
}

trait Failed {
    fn failed(self, f: Failure) -> Self;
}

impl Failed for EdgeResult {
    fn failed(mut self, f: Failure) -> EdgeResult {
        self.failure = Some(f);
        self.total_ms = Some(total(&self));
        self
    }
}
