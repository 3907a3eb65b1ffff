//! The tunable sections (`[probe]`, `[client]`, `[store]`, `[dashboard]`) with their named
//! defaults. Times are written in the file with their unit in the key (`interval_ms`,
//! `raw_retention_hours`) and read in code as `Duration`s through the accessors here; nothing else
//! multiplies them. Owns no validation (that is `validate.rs`) and no I/O.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default time between two runs of one probe series.
pub const DEFAULT_INTERVAL_MS: u64 = 30_000;
/// Default time between two confirmations of a failed series (see [`ProbeSettings::confirm_interval_ms`]).
pub const DEFAULT_CONFIRM_INTERVAL_MS: u64 = 2_000;
/// Default budget of the resolve phase.
pub const DEFAULT_DNS_TIMEOUT_MS: u64 = 2_000;
/// Default budget of the TCP connect phase.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_000;
/// Default budget of the TLS handshake.
pub const DEFAULT_TLS_TIMEOUT_MS: u64 = 3_000;
/// Default time from the request written to the response head received.
pub const DEFAULT_FIRST_BYTE_TIMEOUT_MS: u64 = 5_000;
/// Default time for the whole body once the head has arrived.
pub const DEFAULT_TRANSFER_TIMEOUT_MS: u64 = 10_000;
/// Most edge IPs probed from one DNS answer.
pub const DEFAULT_MAX_EDGES: usize = 4;
/// Body bytes read at most per probe; more is `body_too_large`.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;
/// Response-head bytes read at most per probe; more is `headers_too_large`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Probes in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// How long raw per-edge results are kept.
pub const DEFAULT_RAW_RETENTION_HOURS: u64 = 48;
/// How long per-minute rollups are kept.
pub const DEFAULT_MINUTE_ROLLUP_DAYS: u64 = 7;
/// How long per-hour rollups are kept.
pub const DEFAULT_HOUR_ROLLUP_DAYS: u64 = 90;
/// Most results per write transaction.
pub const DEFAULT_BATCH_SIZE: usize = 2_000;
/// Results queued for the writer before new ones are dropped (and counted).
pub const DEFAULT_QUEUE_CAPACITY: usize = 100_000;
/// Time between two rollup/retention rounds.
pub const DEFAULT_MAINTENANCE_INTERVAL_MS: u64 = 10_000;
/// The article's values (section 3.2): ten minutes each, in milliseconds.
pub const DEFAULT_CONFIG_REQUEST_INTERVAL_MS: u64 = 600_000;
/// See [`DEFAULT_CONFIG_REQUEST_INTERVAL_MS`].
pub const DEFAULT_REVIVE_PROBE_INTERVAL_MS: u64 = 600_000;
/// Certificates expiring in fewer days than this are shown in the warning style on the dashboard.
pub const DEFAULT_CERT_WARN_DAYS: u64 = 14;

const SECONDS_PER_HOUR: u64 = 3_600;
const SECONDS_PER_DAY: u64 = 24 * SECONDS_PER_HOUR;

/// How probes run: timing, caps and concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSettings {
    /// Time between two runs of one series, in ms. Default 30 000.
    pub interval_ms: u64,
    /// A series that fails is probed again at once (within a stable per-series offset of up to
    /// half this) and then every this long, until it passes or has `[engine] fall_rounds` failed
    /// confirmations, which the engine counts as rounds; in ms. Default 2 000.
    pub confirm_interval_ms: u64,
    /// One timeout per phase.
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
            confirm_interval_ms: DEFAULT_CONFIRM_INTERVAL_MS,
            timeouts: Timeouts::default(),
            max_edges: DEFAULT_MAX_EDGES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

impl ProbeSettings {
    /// Time between two runs of one series (`interval_ms`).
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// Time between two confirmations of a failed series (`confirm_interval_ms`).
    pub fn confirm_interval(&self) -> Duration {
        Duration::from_millis(self.confirm_interval_ms)
    }
}

/// One timeout per phase, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// The resolve phase's budget, in ms. Default 2 000.
    pub dns_ms: u64,
    /// The connect phase's budget, in ms. Default 3 000.
    pub connect_ms: u64,
    /// The TLS handshake's budget, in ms. Default 3 000.
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
    /// The resolve phase's budget (`dns_ms`).
    pub fn dns(&self) -> Duration {
        Duration::from_millis(self.dns_ms)
    }
    /// The connect phase's budget (`connect_ms`).
    pub fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms)
    }
    /// The TLS handshake's budget (`tls_ms`).
    pub fn tls(&self) -> Duration {
        Duration::from_millis(self.tls_ms)
    }
    /// The wait for the response head (`first_byte_ms`).
    pub fn first_byte(&self) -> Duration {
        Duration::from_millis(self.first_byte_ms)
    }
    /// The body's budget (`transfer_ms`).
    pub fn transfer(&self) -> Duration {
        Duration::from_millis(self.transfer_ms)
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
            batch_size: DEFAULT_BATCH_SIZE,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            maintenance_interval_ms: DEFAULT_MAINTENANCE_INTERVAL_MS,
        }
    }
}

impl StoreSettings {
    /// How long raw results are kept (`raw_retention_hours`).
    pub fn raw_retention(&self) -> Duration {
        Duration::from_secs(self.raw_retention_hours.saturating_mul(SECONDS_PER_HOUR))
    }
    /// How long minute rollups are kept (`minute_rollup_days`).
    pub fn minute_rollup_retention(&self) -> Duration {
        Duration::from_secs(self.minute_rollup_days.saturating_mul(SECONDS_PER_DAY))
    }
    /// How long hour rollups are kept (`hour_rollup_days`).
    pub fn hour_rollup_retention(&self) -> Duration {
        Duration::from_secs(self.hour_rollup_days.saturating_mul(SECONDS_PER_DAY))
    }
    /// Time between rollup/retention rounds (`maintenance_interval_ms`).
    pub fn maintenance_interval(&self) -> Duration {
        Duration::from_millis(self.maintenance_interval_ms)
    }
}

/// What the on-call pages show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardSettings {
    /// A certificate with fewer days left than this is shown as a warning. Default 14.
    pub cert_warn_days: u64,
    /// The URL browsers reach the pages at (`https://watch.example.com`), when it is not the
    /// listener's own plain-http address: behind a TLS proxy, an `https://` URL makes the config
    /// page's session cookie `Secure` and `__Host-` prefixed. Default: none (plain http).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            cert_warn_days: DEFAULT_CERT_WARN_DAYS,
            external_url: None,
        }
    }
}

impl DashboardSettings {
    /// Whether browsers reach the service over https (`external_url`'s scheme).
    pub fn is_https(&self) -> bool {
        self.external_url.as_deref().is_some_and(|u| {
            u.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        })
    }
}

/// The client-facing fields of the published host-list document (the article, section 3.2).
/// They stay in milliseconds: that is what the document carries on the wire.
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
