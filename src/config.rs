//! The typed configuration, loaded from TOML and validated once.
//!
//! Loading never stops at the first problem: syntax errors, unknown keys, wrong types and semantic
//! mistakes (a host naming a vendor that does not exist, a resolver with two transports …) are all
//! collected, each with its line, column and field path, so `check-config` can list every one.
//! Defaults are named constants with their unit in the name.

mod live;
mod locate;

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue, ValueDeserializer};

pub use live::LiveConfig;
pub use locate::FieldPath;
use locate::{line_col, span_of};

use crate::model::HostRole;

/// Default time between two runs of one probe series.
pub const DEFAULT_INTERVAL_MS: u64 = 30_000;
pub const DEFAULT_DNS_TIMEOUT_MS: u64 = 2_000;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_000;
pub const DEFAULT_TLS_TIMEOUT_MS: u64 = 3_000;
pub const DEFAULT_FIRST_BYTE_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_TRANSFER_TIMEOUT_MS: u64 = 10_000;
/// Most edge IPs probed from one DNS answer.
pub const DEFAULT_MAX_EDGES: usize = 4;
/// Body bytes read at most per probe; more is `body_too_large`.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;
/// Response-head bytes read at most per probe; more is `headers_too_large`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Probes in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 64;
pub const DEFAULT_RAW_RETENTION_HOURS: u64 = 48;
pub const DEFAULT_MINUTE_ROLLUP_DAYS: u64 = 7;
pub const DEFAULT_HOUR_ROLLUP_DAYS: u64 = 90;
/// The article's values (section 3.2): ten minutes each, in milliseconds.
pub const DEFAULT_CONFIG_REQUEST_INTERVAL_MS: u64 = 600_000;
pub const DEFAULT_REVIVE_PROBE_INTERVAL_MS: u64 = 600_000;
/// Certificates expiring in fewer days than this are shown in the warning style on the dashboard.
pub const DEFAULT_CERT_WARN_DAYS: u64 = 14;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub probe: ProbeSettings,
    #[serde(default)]
    pub client: ClientSettings,
    #[serde(default)]
    pub vendors: Vec<Vendor>,
    #[serde(default)]
    pub hosts: Vec<Host>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_hosts: Vec<MergedHost>,
    #[serde(default)]
    pub regions: Vec<Region>,
    #[serde(default)]
    pub store: StoreSettings,
    /// The decision engine's thresholds (README: "Decision rules").
    #[serde(default)]
    pub engine: crate::engine::Policy,
    /// The on-call pages (README: "Dashboard").
    #[serde(default)]
    pub dashboard: DashboardSettings,
    /// The directory relative paths in the file (CA files) are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// How probes run: timing, caps and concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSettings {
    /// Time between two runs of one series, in ms. Default 30 000.
    pub interval_ms: u64,
    pub timeouts: Timeouts,
    /// Most edge IPs probed per DNS answer. Default 4.
    pub max_edges: usize,
    /// Body bytes read at most; beyond is `body_too_large`. Default 4 MiB.
    pub max_body_bytes: u64,
    /// Response-head bytes read at most; beyond is `headers_too_large`. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Probes in flight at once. Default 64.
    pub concurrency: usize,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            interval_ms: DEFAULT_INTERVAL_MS,
            timeouts: Timeouts::default(),
            max_edges: DEFAULT_MAX_EDGES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

impl ProbeSettings {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
}

/// How long the store keeps each kind of row, and how it batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Raw per-edge results, in hours. Default 48.
    pub raw_retention_hours: u64,
    /// Per-minute rollups, in days. Default 7 (a minute row per series is ~60 bytes; 90 days of them
    /// would be 50× the hour rows for detail no chart shows past a week).
    pub minute_rollup_days: u64,
    /// Per-hour rollups, in days. Default 90.
    pub hour_rollup_days: u64,
    /// Most results per write transaction. Default 2000.
    pub batch_size: usize,
    /// Results queued before new ones are dropped (and counted). Default 100 000.
    pub queue_capacity: usize,
    /// Time between rollup/retention rounds, in ms. Default 10 000.
    pub maintenance_interval_ms: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            raw_retention_hours: DEFAULT_RAW_RETENTION_HOURS,
            minute_rollup_days: DEFAULT_MINUTE_ROLLUP_DAYS,
            hour_rollup_days: DEFAULT_HOUR_ROLLUP_DAYS,
            batch_size: 2_000,
            queue_capacity: 100_000,
            maintenance_interval_ms: 10_000,
        }
    }
}

/// What the on-call pages show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardSettings {
    /// A certificate with fewer days left than this is shown as a warning. Default 14.
    pub cert_warn_days: u64,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            cert_warn_days: DEFAULT_CERT_WARN_DAYS,
        }
    }
}

/// One timeout per phase, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub dns_ms: u64,
    pub connect_ms: u64,
    pub tls_ms: u64,
    /// From the request written to the response head received.
    pub first_byte_ms: u64,
    /// For the whole body once the head has arrived.
    pub transfer_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            dns_ms: DEFAULT_DNS_TIMEOUT_MS,
            connect_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            tls_ms: DEFAULT_TLS_TIMEOUT_MS,
            first_byte_ms: DEFAULT_FIRST_BYTE_TIMEOUT_MS,
            transfer_ms: DEFAULT_TRANSFER_TIMEOUT_MS,
        }
    }
}

impl Timeouts {
    pub fn dns(&self) -> Duration {
        Duration::from_millis(self.dns_ms)
    }
    pub fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms)
    }
    pub fn tls(&self) -> Duration {
        Duration::from_millis(self.tls_ms)
    }
    pub fn first_byte(&self) -> Duration {
        Duration::from_millis(self.first_byte_ms)
    }
    pub fn transfer(&self) -> Duration {
        Duration::from_millis(self.transfer_ms)
    }
}

/// The client-facing fields of the published host-list document (the article, section 3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSettings {
    /// `configRequestInterval`: how often clients call the fallback config API, in ms.
    pub config_request_interval_ms: u64,
    /// `reviveProbeInterval`: how often clients HEAD-probe disabled hosts, in ms.
    pub revive_probe_interval_ms: u64,
    /// `publicIpList`: addresses clients ping to tell their own network is up.
    pub public_ip_list: Vec<String>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            config_request_interval_ms: DEFAULT_CONFIG_REQUEST_INTERVAL_MS,
            revive_probe_interval_ms: DEFAULT_REVIVE_PROBE_INTERVAL_MS,
            public_ip_list: Vec::new(),
        }
    }
}

/// A CDN vendor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vendor {
    pub name: String,
    /// Extra trusted CA certificates (PEM), relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Whether the system roots are trusted too. Default true.
    #[serde(default = "yes")]
    pub system_roots: bool,
}

fn yes() -> bool {
    true
}

/// The scheme a host is probed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Https,
    Http,
}

/// A CDN domain in the failover group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub domain: String,
    pub vendor: String,
    pub role: HostRole,
    #[serde(default)]
    pub scheme: Scheme,
    /// Port override; default 443 (https) or 80 (http).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `rate` in `hostListConfig`: the share of clients that may use this host, 0..1. Default 1.
    #[serde(default = "one")]
    pub rate: f64,
    pub paths: Vec<ProbePath>,
}

impl Host {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
        })
    }
}

fn one() -> f64 {
    1.0
}

/// The HTTP method of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Head,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }
}

/// One object probed on a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbePath {
    pub path: String,
    #[serde(default)]
    pub method: Method,
    /// Accepted status codes. Default `[200]`.
    #[serde(default = "ok_only")]
    pub accept_status: Vec<u16>,
    /// Content check: the body must be exactly this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_size: Option<u64>,
    /// Content check: the body's sha256, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_sha256: Option<String>,
    /// Content check: the body must be at least this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<u64>,
}

fn ok_only() -> Vec<u16> {
    vec![200]
}

/// A content check on a probe body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentCheck {
    Size(u64),
    Sha256(String),
    MinSize(u64),
}

impl ProbePath {
    /// The content check in force, if any (validation allows at most one).
    pub fn content_check(&self) -> Option<ContentCheck> {
        if let Some(n) = self.expect_size {
            return Some(ContentCheck::Size(n));
        }
        if let Some(h) = &self.expect_sha256 {
            return Some(ContentCheck::Sha256(h.to_ascii_lowercase()));
        }
        self.min_size.map(ContentCheck::MinSize)
    }
}

/// An original domain merged into the unified domain under a path prefix (the article, section 2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergedHost {
    pub host: String,
    pub path_prefix: String,
    /// Rollout rate 0..1.
    #[serde(default = "one")]
    pub rate: f64,
}

/// A vantage region: its resolvers and its control targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub name: String,
    /// EDNS client subnet sent with every query, as `ip/prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_subnet: Option<String>,
    /// `ip:port` addresses that do not depend on any CDN; when none connects, the region's own
    /// network is down and its results do not count.
    #[serde(default)]
    pub control_targets: Vec<String>,
    pub resolvers: Vec<ResolverConfig>,
}

impl Region {
    /// The parsed client subnet (validated at load).
    pub fn subnet(&self) -> Option<(IpAddr, u8)> {
        self.client_subnet
            .as_deref()
            .and_then(|s| parse_subnet(s).ok())
    }

    pub fn control_addrs(&self) -> Vec<SocketAddr> {
        self.control_targets
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }
}

/// A resolver: a name plus exactly one of `udp`, `tcp` (`ip:port`) or `doh` (an https URL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doh: Option<String>,
}

/// A resolver's transport, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Udp(SocketAddr),
    Tcp(SocketAddr),
    Doh(String),
}

impl ResolverConfig {
    /// The transport (validated at load; `None` only for an unvalidated config).
    pub fn transport(&self) -> Option<Transport> {
        match (&self.udp, &self.tcp, &self.doh) {
            (Some(a), None, None) => a.parse().ok().map(Transport::Udp),
            (None, Some(a), None) => a.parse().ok().map(Transport::Tcp),
            (None, None, Some(u)) => Some(Transport::Doh(u.clone())),
            _ => None,
        }
    }
}

/// One probe series: what is probed (host, path) and from where (region, resolver).
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub host: &'a Host,
    pub path: &'a ProbePath,
    pub region: &'a Region,
    pub resolver: &'a ResolverConfig,
}

/// One thing wrong with a configuration file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line; 0 when the problem has no place in the file.
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
    /// The field path, such as `hosts[1].paths[0].method`; empty for the file as a whole.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {} problem(s):\n{}", problems.len(), render_problems(file, problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

fn render_problems(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            let sep = if p.line > 0 { ":" } else { ": " };
            format!("  {file}{sep}{p}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            ConfigError::Read { .. } => &[],
        }
    }
}

/// What a valid config amounts to: the numbers `check-config` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub hosts: usize,
    pub host_paths: usize,
    pub regions: usize,
    pub resolvers: usize,
    pub series: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} hosts with {} paths in all × {} regions with {} resolvers in all = {} probe series",
            self.hosts, self.host_paths, self.regions, self.resolvers, self.series
        )
    }
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().map(Path::to_owned).unwrap_or_default();
        Config::parse(&text, &path.display().to_string(), &base)
    }

    /// Parses and validates TOML text; `file` names it in errors, `base_dir` anchors relative paths.
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let (root, syntax) = DeTable::parse_recoverable(text);
        let mut problems: Vec<Problem> = syntax
            .iter()
            .map(|e| toml_problem(text, &FieldPath::root(), e))
            .collect();
        let mut config = Config {
            base_dir: base_dir.to_owned(),
            ..Config::default()
        };
        if problems.is_empty() {
            deserialize_sections(text, root.get_ref(), &mut config, &mut problems);
        }
        if problems.is_empty() {
            for (path, message) in config.semantic_problems() {
                let (line, column) = span_of(root.get_ref(), &path)
                    .map(|s| line_col(text, s.start))
                    .unwrap_or((0, 0));
                problems.push(Problem {
                    line,
                    column,
                    field: path.to_string(),
                    message,
                });
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                file: file.to_owned(),
                problems,
            })
        }
    }

    /// Serializes back to TOML (the lab writes its config this way).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }

    pub fn summary(&self) -> Summary {
        let host_paths: usize = self.hosts.iter().map(|h| h.paths.len()).sum();
        let resolvers: usize = self.regions.iter().map(|r| r.resolvers.len()).sum();
        Summary {
            hosts: self.hosts.len(),
            host_paths,
            regions: self.regions.len(),
            resolvers,
            series: host_paths * resolvers,
        }
    }

    /// Every probe series: each host path from each region through each of its resolvers.
    pub fn series(&self) -> impl Iterator<Item = Series<'_>> {
        self.hosts.iter().flat_map(move |host| {
            host.paths.iter().flat_map(move |path| {
                self.regions.iter().flat_map(move |region| {
                    region.resolvers.iter().map(move |resolver| Series {
                        host,
                        path,
                        region,
                        resolver,
                    })
                })
            })
        })
    }

    pub fn vendor(&self, name: &str) -> Option<&Vendor> {
        self.vendors.iter().find(|v| v.name == name)
    }

    pub fn host(&self, domain: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.domain == domain)
    }

    /// A vendor's CA file, resolved against the config's directory.
    pub fn ca_path(&self, vendor: &Vendor) -> Option<PathBuf> {
        vendor.ca_file.as_ref().map(|p| self.base_dir.join(p))
    }

    /// Every problem that types alone cannot catch, with the field it concerns.
    fn semantic_problems(&self) -> Vec<(FieldPath, String)> {
        let mut out = Vec::new();
        self.check_probe(&mut out);
        self.check_client(&mut out);
        self.check_vendors(&mut out);
        self.check_hosts(&mut out);
        self.check_merged(&mut out);
        self.check_regions(&mut out);
        self.check_store(&mut out);
        self.check_engine(&mut out);
        self.check_dashboard(&mut out);
        out
    }

    fn check_probe(&self, out: &mut Vec<(FieldPath, String)>) {
        let p = &self.probe;
        let at = |k: &str| FieldPath::root().key("probe").key(k);
        if p.interval_ms < 100 {
            out.push((at("interval_ms"), "must be at least 100 ms".into()));
        }
        let t = &p.timeouts;
        for (name, v) in [
            ("dns_ms", t.dns_ms),
            ("connect_ms", t.connect_ms),
            ("tls_ms", t.tls_ms),
            ("first_byte_ms", t.first_byte_ms),
            ("transfer_ms", t.transfer_ms),
        ] {
            if v == 0 {
                out.push((
                    at("timeouts").key(name),
                    "a timeout must be above 0 ms".into(),
                ));
            }
        }
        for (name, zero) in [
            ("max_edges", p.max_edges == 0),
            ("max_body_bytes", p.max_body_bytes == 0),
            ("max_header_bytes", p.max_header_bytes == 0),
            ("concurrency", p.concurrency == 0),
        ] {
            if zero {
                out.push((at(name), "must be at least 1".into()));
            }
        }
    }

    fn check_engine(&self, out: &mut Vec<(FieldPath, String)>) {
        let e = &self.engine;
        let at = |k: &str| FieldPath::root().key("engine").key(k);
        for (name, v) in [
            ("round_fail_ratio", e.round_fail_ratio),
            ("window_fail_ratio", e.window_fail_ratio),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                out.push((at(name), format!("{v} must be above 0 and at most 1")));
            }
        }
        for (name, v) in [
            ("fall_rounds", e.fall_rounds),
            ("window_rounds", e.window_rounds),
            ("rise_rounds", e.rise_rounds),
            ("min_quorum", e.min_quorum),
        ] {
            if v == 0 {
                out.push((at(name), "must be at least 1".into()));
            }
        }
        if e.hold_cap_ms < e.hold_base_ms {
            out.push((
                at("hold_cap_ms"),
                "the cap must not be below hold_base_ms".into(),
            ));
        }
    }

    fn check_dashboard(&self, out: &mut Vec<(FieldPath, String)>) {
        let days = self.dashboard.cert_warn_days;
        if days == 0 || days > 365 {
            let at = FieldPath::root().key("dashboard").key("cert_warn_days");
            out.push((at, format!("{days} must be from 1 to 365 days")));
        }
    }

    fn check_store(&self, out: &mut Vec<(FieldPath, String)>) {
        let st = &self.store;
        let at = |k: &str| FieldPath::root().key("store").key(k);
        for (name, zero) in [
            ("raw_retention_hours", st.raw_retention_hours == 0),
            ("minute_rollup_days", st.minute_rollup_days == 0),
            ("hour_rollup_days", st.hour_rollup_days == 0),
            ("batch_size", st.batch_size == 0),
            ("queue_capacity", st.queue_capacity == 0),
            ("maintenance_interval_ms", st.maintenance_interval_ms == 0),
        ] {
            if zero {
                out.push((at(name), "must be at least 1".into()));
            }
        }
    }

    fn check_client(&self, out: &mut Vec<(FieldPath, String)>) {
        for (i, ip) in self.client.public_ip_list.iter().enumerate() {
            if ip.parse::<IpAddr>().is_err() {
                let path = FieldPath::root()
                    .key("client")
                    .key("public_ip_list")
                    .index(i);
                out.push((path, format!("`{ip}` is not an IP address")));
            }
        }
    }

    fn check_vendors(&self, out: &mut Vec<(FieldPath, String)>) {
        let mut seen = HashSet::new();
        for (i, v) in self.vendors.iter().enumerate() {
            let at = FieldPath::root().key("vendors").index(i);
            if !seen.insert(v.name.as_str()) {
                out.push((
                    at.key("name"),
                    format!("vendor `{}` is defined twice", v.name),
                ));
            }
            if let Some(ca) = self.ca_path(v)
                && let Err(why) = crate::trust::read_pem_certs(&ca)
            {
                out.push((at.key("ca_file"), why));
            }
        }
    }

    fn check_hosts(&self, out: &mut Vec<(FieldPath, String)>) {
        if self.hosts.is_empty() {
            out.push((
                FieldPath::root(),
                "no [[hosts]]: there is nothing to probe".into(),
            ));
        }
        let mut seen = HashSet::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let at = FieldPath::root().key("hosts").index(i);
            if let Err(why) = check_domain(&h.domain) {
                out.push((at.key("domain"), why));
            }
            if !seen.insert(h.domain.to_ascii_lowercase()) {
                out.push((
                    at.key("domain"),
                    format!("host `{}` is listed twice", h.domain),
                ));
            }
            if self.vendor(&h.vendor).is_none() {
                out.push((
                    at.key("vendor"),
                    unknown_name(
                        "vendor",
                        &h.vendor,
                        self.vendors.iter().map(|v| v.name.as_str()),
                    ),
                ));
            }
            if !(0.0..=1.0).contains(&h.rate) {
                out.push((at.key("rate"), format!("rate {} is outside 0..1", h.rate)));
            }
            if h.port == Some(0) {
                out.push((at.key("port"), "port 0 cannot be probed".into()));
            }
            if h.paths.is_empty() {
                out.push((
                    at.key("paths"),
                    "a host needs at least one probe path".into(),
                ));
            }
            for (j, p) in h.paths.iter().enumerate() {
                check_path(p, &at.key("paths").index(j), out);
            }
        }
    }

    fn check_merged(&self, out: &mut Vec<(FieldPath, String)>) {
        let mut seen = HashSet::new();
        for (i, m) in self.merged_hosts.iter().enumerate() {
            let at = FieldPath::root().key("merged_hosts").index(i);
            if let Err(why) = check_domain(&m.host) {
                out.push((at.key("host"), why));
            }
            if !m.path_prefix.starts_with('/')
                || m.path_prefix.len() < 2
                || m.path_prefix.ends_with('/')
            {
                out.push((
                    at.key("path_prefix"),
                    format!(
                        "`{}` must look like `/image`: a leading slash, no trailing slash",
                        m.path_prefix
                    ),
                ));
            }
            if !seen.insert(m.path_prefix.as_str()) {
                out.push((
                    at.key("path_prefix"),
                    format!("path prefix `{}` is used twice", m.path_prefix),
                ));
            }
            if !(0.0..=1.0).contains(&m.rate) {
                out.push((at.key("rate"), format!("rate {} is outside 0..1", m.rate)));
            }
        }
    }

    fn check_regions(&self, out: &mut Vec<(FieldPath, String)>) {
        if self.regions.is_empty() {
            out.push((
                FieldPath::root(),
                "no [[regions]]: probes need at least one region with a resolver".into(),
            ));
        }
        let mut seen = HashSet::new();
        for (i, r) in self.regions.iter().enumerate() {
            let at = FieldPath::root().key("regions").index(i);
            if !seen.insert(r.name.as_str()) {
                out.push((
                    at.key("name"),
                    format!("region `{}` is defined twice", r.name),
                ));
            }
            if let Some(s) = &r.client_subnet
                && let Err(why) = parse_subnet(s)
            {
                out.push((at.key("client_subnet"), why));
            }
            for (j, t) in r.control_targets.iter().enumerate() {
                if t.parse::<SocketAddr>().is_err() {
                    out.push((
                        at.key("control_targets").index(j),
                        format!("`{t}` is not an ip:port address"),
                    ));
                }
            }
            if r.resolvers.is_empty() {
                out.push((
                    at.key("resolvers"),
                    "a region needs at least one resolver".into(),
                ));
            }
            let mut names = HashSet::new();
            for (j, res) in r.resolvers.iter().enumerate() {
                let rat = at.key("resolvers").index(j);
                if !names.insert(res.name.as_str()) {
                    out.push((
                        rat.key("name"),
                        format!(
                            "resolver `{}` is defined twice in region `{}`",
                            res.name, r.name
                        ),
                    ));
                }
                check_resolver(res, r.client_subnet.is_some(), &rat, out);
            }
        }
    }
}

fn check_path(p: &ProbePath, at: &FieldPath, out: &mut Vec<(FieldPath, String)>) {
    if !p.path.starts_with('/') {
        out.push((at.key("path"), format!("`{}` must start with `/`", p.path)));
    }
    if p.accept_status.is_empty() {
        out.push((
            at.key("accept_status"),
            "at least one status code must be accepted".into(),
        ));
    }
    for (k, s) in p.accept_status.iter().enumerate() {
        if !(100..=599).contains(s) {
            out.push((
                at.key("accept_status").index(k),
                format!("{s} is not an HTTP status code"),
            ));
        }
    }
    let checks = [
        p.expect_size.is_some(),
        p.expect_sha256.is_some(),
        p.min_size.is_some(),
    ];
    if checks.iter().filter(|c| **c).count() > 1 {
        out.push((
            at.clone(),
            "set at most one of expect_size, expect_sha256, min_size".into(),
        ));
    }
    if let Some(h) = &p.expect_sha256
        && (h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()))
    {
        out.push((at.key("expect_sha256"), "must be 64 hex digits".into()));
    }
    if p.method == Method::Head
        && (p.expect_sha256.is_some() || p.expect_size.is_some() || p.min_size.is_some())
    {
        out.push((
            at.key("method"),
            "a HEAD probe has no body, so it cannot have a content check".into(),
        ));
    }
}

fn check_resolver(
    r: &ResolverConfig,
    has_subnet: bool,
    at: &FieldPath,
    out: &mut Vec<(FieldPath, String)>,
) {
    let set = [r.udp.is_some(), r.tcp.is_some(), r.doh.is_some()];
    if set.iter().filter(|s| **s).count() != 1 {
        out.push((
            at.clone(),
            format!("resolver `{}` needs exactly one of udp, tcp or doh", r.name),
        ));
        return;
    }
    for (key, addr) in [("udp", &r.udp), ("tcp", &r.tcp)] {
        if let Some(a) = addr
            && a.parse::<SocketAddr>().is_err()
        {
            out.push((at.key(key), format!("`{a}` is not an ip:port address")));
        }
    }
    if let Some(u) = &r.doh {
        if !u.starts_with("https://") {
            out.push((at.key("doh"), format!("`{u}` is not an https:// URL")));
        }
        if has_subnet {
            out.push((at.key("doh"), "an EDNS client subnet cannot be sent over DoH here; use udp or tcp in a region with client_subnet".into()));
        }
    }
}

/// Checks a DNS host name: labels of letters, digits and hyphens, at most 253 characters.
fn check_domain(d: &str) -> Result<(), String> {
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if d.len() > 253 || !d.trim_end_matches('.').split('.').all(ok_label) {
        return Err(format!("`{d}` is not a valid domain name"));
    }
    Ok(())
}

fn unknown_name<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.collect();
    format!(
        "no {what} is named `{name}` (known: {})",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// Parses `ip/prefix`, checking the prefix fits the address family.
pub fn parse_subnet(s: &str) -> Result<(IpAddr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not a subnet like 198.51.100.0/24"))?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("`{ip}` is not an IP address"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("`{len}` is not a prefix length"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!("prefix /{len} is longer than {max} bits"));
    }
    Ok((ip, len))
}

/// The sections the file may have, each deserialized on its own so one bad entry does not hide
/// the others' problems.
fn deserialize_sections(
    text: &str,
    root: &DeTable<'_>,
    config: &mut Config,
    problems: &mut Vec<Problem>,
) {
    for (key, value) in root.iter() {
        let at = FieldPath::root().key(key.get_ref());
        match key.get_ref().as_ref() {
            "probe" => take(text, &at, value, problems, |v| config.probe = v),
            "client" => take(text, &at, value, problems, |v| config.client = v),
            "vendors" => take_each(text, &at, value, problems, |v| config.vendors.push(v)),
            "hosts" => take_each(text, &at, value, problems, |v| config.hosts.push(v)),
            "merged_hosts" => {
                take_each(text, &at, value, problems, |v| config.merged_hosts.push(v))
            }
            "regions" => take_each(text, &at, value, problems, |v| config.regions.push(v)),
            "store" => take(text, &at, value, problems, |v| config.store = v),
            "engine" => take(text, &at, value, problems, |v| config.engine = v),
            "dashboard" => take(text, &at, value, problems, |v| config.dashboard = v),
            other => {
                let (line, column) = line_col(text, key.span().start);
                problems.push(Problem {
                    line,
                    column,
                    field: at.to_string(),
                    message: format!(
                        "unknown section `{other}` (expected one of probe, client, vendors, hosts, merged_hosts, regions, store, engine, dashboard)"
                    ),
                });
            }
        }
    }
}

fn take<T: for<'de> Deserialize<'de>>(
    text: &str,
    at: &FieldPath,
    value: &toml::Spanned<DeValue<'_>>,
    problems: &mut Vec<Problem>,
    mut put: impl FnMut(T),
) {
    let de = ValueDeserializer::from(value.clone());
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => put(v),
        Err(e) => {
            let inner = FieldPath::from_serde(e.path());
            let path = at.join(&inner);
            let mut p = toml_problem(text, &path, e.inner());
            if p.line == 0 {
                let (line, column) = line_col(text, value.span().start);
                p.line = line;
                p.column = column;
            }
            problems.push(p);
        }
    }
}

fn take_each<T: for<'de> Deserialize<'de>>(
    text: &str,
    at: &FieldPath,
    value: &toml::Spanned<DeValue<'_>>,
    problems: &mut Vec<Problem>,
    mut put: impl FnMut(T),
) {
    match value.get_ref() {
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                take(text, &at.index(i), item, problems, &mut put);
            }
        }
        other => {
            let (line, column) = line_col(text, value.span().start);
            problems.push(Problem {
                line,
                column,
                field: at.to_string(),
                message: format!(
                    "expected an array of tables (`[[{at}]]`), found a {}",
                    other.type_str()
                ),
            });
        }
    }
}

fn toml_problem(text: &str, path: &FieldPath, e: &toml::de::Error) -> Problem {
    let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
    Problem {
        line,
        column,
        field: path.to_string(),
        message: e.message().trim().to_string(),
    }
}

#[cfg(test)]
mod tests;
