//! Faults the lab injects: what (the kind), where (a scope over vendor, host, region, resolver, edge
//! IP and path prefix; an absent field matches all) and how often (a ratio for intermittent faults).
//!
//! Pure data and matching; the servers ask [`Faults::pick`] at each decision point.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::topology::{ORIGIN, REGIONS, RESOLVERS, Topology, VENDORS};

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with `status` (502, 504, 403, 404 …).
    HttpStatus,
    /// Wait `ms` before the response head.
    Delay,
    /// Send the body at `bytes_per_sec`.
    SlowBody,
    /// Reset the connection (RST) once the request is read.
    Reset,
    /// Refuse connections: the edge's (or control target's) listener is closed while active.
    Refuse,
    /// Accept, then never answer.
    Blackhole,
    /// Answer 200 with bytes of the right length but the wrong content (a stale or poisoned cache).
    WrongContent,
    /// Answer 200 with a body that never ends.
    EndlessBody,
    /// Answer 200 with 10 MiB of response headers.
    HugeHeaders,
    /// After the TLS handshake, answer with bytes that are not HTTP.
    HttpGarbage,
    /// An expired certificate.
    CertExpired,
    /// A certificate that expires in `days`.
    CertExpiring,
    /// A certificate whose validity starts tomorrow.
    CertNotYetValid,
    /// A certificate issued for another name.
    CertWrongName,
    /// A self-signed certificate, from no CA the vendor is trusted with.
    CertUntrusted,
    /// Answer SERVFAIL.
    DnsServfail,
    /// Answer NXDOMAIN.
    DnsNxdomain,
    /// Answer REFUSED.
    DnsRefused,
    /// NOERROR with the CNAME but no address record.
    DnsEmpty,
    /// Never answer the query.
    DnsTimeout,
    /// Wait `ms` before answering.
    DnsDelay,
    /// Keep answering with an edge that has gone dead (the region's retired edge).
    StaleDns,
}

impl FaultKind {
    /// Whether the kind is scoped as a DNS fault (by resolver, never by edge or path):
    /// `dns_servfail`, `dns_nxdomain`, `dns_refused`, `dns_timeout`, `dns_delay`, `stale_dns`.
    pub fn is_dns(self) -> bool {
        matches!(
            self,
            FaultKind::DnsServfail
                | FaultKind::DnsNxdomain
                | FaultKind::DnsRefused
                | FaultKind::DnsTimeout
                | FaultKind::DnsDelay
                | FaultKind::StaleDns
        )
    }

    /// Whether the kind is `cert_expired`, `cert_expiring` or `cert_wrong_name`.
    pub fn is_cert(self) -> bool {
        matches!(
            self,
            FaultKind::CertExpired | FaultKind::CertExpiring | FaultKind::CertWrongName
        )
    }
}

/// A fault as the API takes it: the kind, its parameter, its scope and its ratio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Only this vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Only this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Only this region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Only this resolver (DNS faults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    /// Only this edge IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<IpAddr>,
    /// Only paths starting with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// For `http_status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// For `delay` and `dns_delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    /// For `cert_expiring`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<i64>,
    /// For `slow_body`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_sec: Option<u64>,
    /// Share of requests (or queries) hit, 0..1; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
}

impl FaultSpec {
    /// A fault of `kind` everywhere, with no parameter.
    pub fn new(kind: FaultKind) -> FaultSpec {
        FaultSpec {
            kind,
            vendor: None,
            host: None,
            region: None,
            resolver: None,
            edge: None,
            path_prefix: None,
            status: None,
            ms: None,
            days: None,
            bytes_per_sec: None,
            ratio: None,
        }
    }

    /// Checks parameters and scope against the lab; the error names the field and says why.
    pub fn validate(&self, topo: &Topology) -> Result<(), String> {
        let need = |ok: bool, field: &str| {
            if ok {
                Ok(())
            } else {
                Err(format!("`{field}` is required for kind {:?}", self.kind).to_lowercase())
            }
        };
        match self.kind {
            FaultKind::HttpStatus => {
                need(self.status.is_some(), "status")?;
                if !self.status.is_some_and(|s| (100..=599).contains(&s)) {
                    return Err("`status` must be an HTTP status code (100-599)".into());
                }
            }
            FaultKind::Delay | FaultKind::DnsDelay => need(self.ms.is_some(), "ms")?,
            FaultKind::CertExpiring => need(self.days.is_some_and(|d| d >= 0), "days")?,
            FaultKind::SlowBody => {
                need(self.bytes_per_sec.is_some_and(|b| b > 0), "bytes_per_sec")?
            }
            _ => {}
        }
        if let Some(r) = self.ratio
            && !(0.0..=1.0).contains(&r)
        {
            return Err(format!("`ratio` {r} is outside 0..1"));
        }
        if self.kind.is_dns() && (self.edge.is_some() || self.path_prefix.is_some()) {
            return Err("a DNS fault cannot be scoped by `edge` or `path_prefix`".into());
        }
        if !self.kind.is_dns() && self.resolver.is_some() {
            return Err("only DNS faults can be scoped by `resolver`".into());
        }
        if (self.kind.is_cert() || self.kind == FaultKind::HttpGarbage)
            && self.path_prefix.is_some()
        {
            return Err("a certificate or `http_garbage` fault acts before the request is read, so it cannot be scoped by `path_prefix`".into());
        }
        if self.kind == FaultKind::Refuse {
            if self.host.is_some() || self.path_prefix.is_some() {
                return Err("`refuse` closes a listener, so it can be scoped only by vendor, region and edge".into());
            }
            if self.ratio.is_some_and(|r| r < 1.0) {
                return Err(
                    "`refuse` closes a listener, so it cannot be intermittent (`ratio` must be 1)"
                        .into(),
                );
            }
        }
        topo.check_scope(self)
    }
}

// The scope check lives here, beside `validate`, so that the topology knows nothing of faults.
impl Topology {
    /// Checks that every scope field of `spec` names something in the lab.
    pub fn check_scope(&self, spec: &FaultSpec) -> Result<(), String> {
        let vendors: Vec<&str> = VENDORS.iter().chain([&ORIGIN]).map(|v| v.0).collect();
        named("vendor", spec.vendor.as_deref(), &vendors)?;
        let hosts: Vec<&str> = self.served_hosts().collect();
        named("host", spec.host.as_deref(), &hosts)?;
        named("region", spec.region.as_deref(), &REGIONS.map(|r| r.0))?;
        named("resolver", spec.resolver.as_deref(), &RESOLVERS)?;
        if let Some(e) = spec.edge {
            let known = Topology::edge_port_addresses()
                .iter()
                .any(|(ip, _)| IpAddr::V4(*ip) == e);
            if !known {
                return Err(format!(
                    "no edge {e} in the lab (edges are 127.21-23.1-3.1-2, control targets 127.99.1-3.1)"
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

/// Checks that `name`, when given, is one of the lab's `names` of `what`.
fn named(what: &str, name: Option<&str>, names: &[&str]) -> Result<(), String> {
    match name {
        Some(n) if !names.contains(&n) => {
            let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            Err(format!(
                "no {what} `{n}` in the lab (it has {})",
                names.join(", ")
            ))
        }
        _ => Ok(()),
    }
}

/// An active fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Its id, for removal.
    pub id: u64,
    /// What it does and where.
    #[serde(flatten)]
    pub spec: FaultSpec,
}

/// Where a decision is being made: what is known there (the rest is `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The vendor, when known.
    pub vendor: Option<&'a str>,
    /// The host, when known.
    pub host: Option<&'a str>,
    /// The region, when known.
    pub region: Option<&'a str>,
    /// The resolver, when known.
    pub resolver: Option<&'a str>,
    /// The edge IP, when known.
    pub edge: Option<IpAddr>,
    /// The request path, when known.
    pub path: Option<&'a str>,
}

impl FaultSpec {
    /// Whether every scope field this fault sets is known in `ctx` and equal.
    pub fn matches(&self, ctx: &Context<'_>) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        eq(&self.vendor, ctx.vendor)
            && eq(&self.host, ctx.host)
            && eq(&self.region, ctx.region)
            && eq(&self.resolver, ctx.resolver)
            && self.edge.is_none_or(|e| ctx.edge == Some(e))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| ctx.path.is_some_and(|path| path.starts_with(p)))
    }
}

/// The active faults, shared by every server of the lab. Each change bumps a generation that
/// listeners watch (refuse faults close and reopen them).
#[derive(Clone)]
pub struct Faults {
    inner: Arc<RwLock<Vec<Fault>>>,
    next_id: Arc<AtomicU64>,
    changed: Arc<watch::Sender<u64>>,
    topology: Arc<Topology>,
}

impl Faults {
    /// No faults, for the lab of `topology`.
    pub fn new(topology: Arc<Topology>) -> Faults {
        let (changed, _) = watch::channel(0);
        Faults {
            inner: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            changed: Arc::new(changed),
            topology,
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|g| *g += 1);
    }

    /// Adds a fault after validating it; returns its id.
    pub fn add(&self, spec: FaultSpec) -> Result<u64, String> {
        spec.validate(&self.topology)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.write().expect("faults").push(Fault { id, spec });
        self.bump();
        Ok(id)
    }

    /// Every active fault, oldest first.
    pub fn list(&self) -> Vec<Fault> {
        self.inner.read().expect("faults").clone()
    }

    /// Removes one fault; false if there was none with that id.
    pub fn remove(&self, id: u64) -> bool {
        let mut faults = self.inner.write().expect("faults");
        let before = faults.len();
        faults.retain(|f| f.id != id);
        let removed = faults.len() != before;
        drop(faults);
        if removed {
            self.bump();
        }
        removed
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.inner.write().expect("faults").clear();
        self.bump();
    }

    /// A receiver of the generation, bumped on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The first fault among `kinds` that matches `ctx` and wins its ratio draw.
    pub fn pick(&self, ctx: &Context<'_>, kinds: &[FaultKind]) -> Option<FaultSpec> {
        self.pick_where(ctx, kinds, |_| true)
    }

    /// As [`Faults::pick`], among the faults `only` accepts.
    pub fn pick_where(
        &self,
        ctx: &Context<'_>,
        kinds: &[FaultKind],
        only: impl Fn(&FaultSpec) -> bool,
    ) -> Option<FaultSpec> {
        let faults = self.inner.read().expect("faults");
        faults
            .iter()
            .filter(|f| kinds.contains(&f.spec.kind) && only(&f.spec) && f.spec.matches(ctx))
            .find(|f| f.spec.ratio.is_none_or(|r| fastrand::f64() < r))
            .map(|f| f.spec.clone())
    }

    /// Whether a fault of `kind` matching `ctx` is active (no ratio draw; for listeners).
    pub fn active(&self, ctx: &Context<'_>, kind: FaultKind) -> bool {
        self.inner
            .read()
            .expect("faults")
            .iter()
            .any(|f| f.spec.kind == kind && f.spec.matches(ctx))
    }
}

/// Waits `ms` milliseconds, as exactly as a delay fault promises. tokio's timer works in whole
/// milliseconds and fires up to about two late, which a test of phase timing (±2 ms) would see as
/// the prober's error; so the timer sleeps to two milliseconds short and the rest is waited by
/// yielding (at most 2 ms of one core per delayed request, only while a delay fault is set).
pub(crate) async fn delay(ms: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    let slack = std::time::Duration::from_millis(2);
    if let Some(early) = deadline.checked_sub(slack) {
        tokio::time::sleep_until(early.into()).await;
    }
    while std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults() -> Faults {
        Faults::new(Arc::new(Topology::new(8443, 5353)))
    }

    fn spec(json: &str) -> FaultSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_scope_matches_only_what_it_names_and_only_where_that_is_known() {
        let f = spec(
            r#"{"kind":"http_status","status":502,"vendor":"alpha","region":"cn-east","path_prefix":"/image"}"#,
        );
        let ctx = Context {
            vendor: Some("alpha"),
            region: Some("cn-east"),
            path: Some("/image/probe.jpg"),
            ..Context::default()
        };
        assert!(f.matches(&ctx));
        assert!(!f.matches(&Context {
            vendor: Some("beta"),
            ..ctx
        }));
        assert!(!f.matches(&Context {
            path: Some("/product/probe.json"),
            ..ctx
        }));
        assert!(
            !f.matches(&Context { path: None, ..ctx }),
            "a path scope needs the path to be known"
        );
    }

    #[test]
    fn bad_faults_are_refused_with_the_field_named() {
        let f = faults();
        let err = |json: &str| f.add(spec(json)).unwrap_err();
        assert!(err(r#"{"kind":"http_status"}"#).contains("`status` is required"));
        assert!(err(r#"{"kind":"http_status","status":999}"#).contains("`status` must be"));
        assert!(err(r#"{"kind":"delay"}"#).contains("`ms` is required"));
        assert!(err(r#"{"kind":"reset","ratio":1.5}"#).contains("`ratio`"));
        assert!(
            err(r#"{"kind":"refuse","host":"cdn.shop.test"}"#)
                .contains("only by vendor, region and edge")
        );
        assert!(err(r#"{"kind":"dns_servfail","path_prefix":"/image"}"#).contains("DNS fault"));
        assert!(err(r#"{"kind":"reset","vendor":"gamma"}"#).contains("no vendor `gamma`"));
        assert!(err(r#"{"kind":"reset","edge":"127.0.0.1"}"#).contains("no edge 127.0.0.1"));
        assert!(
            serde_json::from_str::<FaultSpec>(r#"{"kind":"reset","vendr":"alpha"}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown field `vendr`")
        );
    }

    #[test]
    fn a_ratio_makes_a_fault_intermittent() {
        let f = faults();
        f.add(spec(r#"{"kind":"reset","ratio":0.5}"#)).unwrap();
        let hits = (0..2000)
            .filter(|_| f.pick(&Context::default(), &[FaultKind::Reset]).is_some())
            .count();
        assert!((800..1200).contains(&hits), "{hits}");
    }

    #[test]
    fn faults_are_listed_removed_and_cleared_and_each_change_is_signalled() {
        let f = faults();
        let rx = f.subscribe();
        let a = f.add(spec(r#"{"kind":"reset"}"#)).unwrap();
        let b = f
            .add(spec(r#"{"kind":"blackhole","region":"cn-north"}"#))
            .unwrap();
        assert_eq!(f.list().iter().map(|x| x.id).collect::<Vec<_>>(), [a, b]);
        assert!(f.remove(a));
        assert!(!f.remove(a));
        assert_eq!(f.list().len(), 1);
        f.clear();
        assert!(f.list().is_empty());
        assert_eq!(*rx.borrow(), 4);
    }
}
