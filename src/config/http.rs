//! The HTTP server's edge (`[http]`): how long a client may take to send a request head or sit
//! idle, how many connections and parked watchers one listener holds, how large a request head
//! may be, which `Host` names the internal routes answer, and where the `/metrics` token is read
//! from. Each listener gets these limits on its own. Owns their defaults and checks; the server
//! (`web::server`) applies them. Read once at start: a reload does not change them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::findings::Findings;
use super::locate::FieldPath;

/// Default time a client has to send a whole request head, from its connection (or from the
/// first byte of a request on a kept-alive one).
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Default time a kept-alive connection may sit with no request before it is closed.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Default most open connections per listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Default connections of [`DEFAULT_MAX_CONNECTIONS`] kept for host-list clients.
pub const DEFAULT_RESERVE_CONNECTIONS: usize = 1_024;
/// Default most long polls (`GET /api/v1/hostlist/watch`) parked at once per listener.
pub const DEFAULT_MAX_WATCHERS: usize = 10_000;
/// Default longest request target (path and query), in bytes; longer is 414.
pub const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;
/// Default largest request header block (names and values), in bytes; larger is 431.
pub const DEFAULT_MAX_REQUEST_HEADER_BYTES: usize = 16 * 1024;
/// The shortest `/metrics` token accepted, in characters.
pub const MIN_TOKEN_CHARS: usize = 32;

/// Timeouts are bounded so no arithmetic on them can overflow: one hour.
const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// hyper refuses a request target longer than this itself (with an empty 414).
const HYPER_MAX_URI_BYTES: usize = 65_534;
/// Beyond this a head is not worth reading: 1 MiB.
const MAX_HEADER_BYTES_BOUND: usize = 1024 * 1024;
/// More connections than this per listener is a typo (descriptors, memory).
const MAX_CONNECTIONS_BOUND: usize = 1_000_000;

/// The HTTP server's limits, per listener (`[http]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Time to send a whole request head, in ms: from the connection for its first request, from
    /// a request's first byte on a kept-alive connection. Default 10 000.
    pub header_read_timeout_ms: u64,
    /// Time a kept-alive connection may wait for its next request, in ms; a parked long poll is
    /// not idle. Default 60 000.
    pub idle_timeout_ms: u64,
    /// Most open connections per listener; beyond, new ones are closed at once. Default 16 384.
    pub max_connections: usize,
    /// Of `max_connections`, how many are kept for host-list clients: once fewer are free, only
    /// `GET /api/v1/hostlist` and `POST /app/config-center/module-config` are answered, every
    /// other request gets a 503. Default 1 024.
    pub reserve_connections: usize,
    /// Most long polls parked at once per listener; beyond, 503 with `Retry-After`. Default 10 000.
    pub max_watchers: usize,
    /// Longest request target (path and query), in bytes; longer is 414. Default 8 KiB.
    pub max_uri_bytes: usize,
    /// Largest request header block, in bytes; larger is 431. Default 16 KiB.
    pub max_header_bytes: usize,
    /// `Host` names (without port) the internal routes answer; others get 421. Empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// A file holding the bearer token `/metrics` requires (relative to the config file); none:
    /// `/metrics` is open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token_file: Option<PathBuf>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout_ms: DEFAULT_HEADER_READ_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            reserve_connections: DEFAULT_RESERVE_CONNECTIONS,
            max_watchers: DEFAULT_MAX_WATCHERS,
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
            max_header_bytes: DEFAULT_MAX_REQUEST_HEADER_BYTES,
            allowed_hosts: Vec::new(),
            metrics_token_file: None,
        }
    }
}

impl HttpSettings {
    /// Time to send a request head (`header_read_timeout_ms`).
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// Time a kept-alive connection may wait for its next request (`idle_timeout_ms`).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// The `/metrics` token, read from `metrics_token_file` (resolved against `base_dir`);
    /// `Ok(None)` when none is configured. The error names the file, never the token.
    pub fn metrics_token(&self, base_dir: &Path) -> Result<Option<String>, String> {
        let Some(file) = &self.metrics_token_file else {
            return Ok(None);
        };
        let path = base_dir.join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let token = text.trim();
        if token.chars().count() < MIN_TOKEN_CHARS {
            return Err(format!(
                "the token in {} is shorter than {MIN_TOKEN_CHARS} characters",
                path.display()
            ));
        }
        Ok(Some(token.to_string()))
    }
}

/// Every problem with `[http]`, each at its field.
pub(super) fn check(h: &HttpSettings, base_dir: &Path, out: &mut Findings) {
    let at = |k: &str| FieldPath::root().key("http").key(k);
    for (name, v) in [
        ("header_read_timeout_ms", h.header_read_timeout_ms),
        ("idle_timeout_ms", h.idle_timeout_ms),
    ] {
        if v == 0 || v > MAX_TIMEOUT_MS {
            out.push((
                at(name),
                format!("{v} must be from 1 to {MAX_TIMEOUT_MS} ms"),
            ));
        }
    }
    let in_range = |v: usize, lo: usize, hi: usize| (lo..=hi).contains(&v);
    for (name, v, lo, hi) in [
        (
            "max_connections",
            h.max_connections,
            1,
            MAX_CONNECTIONS_BOUND,
        ),
        ("max_watchers", h.max_watchers, 1, MAX_CONNECTIONS_BOUND),
        ("max_uri_bytes", h.max_uri_bytes, 256, HYPER_MAX_URI_BYTES),
        (
            "max_header_bytes",
            h.max_header_bytes,
            1024,
            MAX_HEADER_BYTES_BOUND,
        ),
    ] {
        if !in_range(v, lo, hi) {
            out.push((at(name), format!("{v} must be from {lo} to {hi}")));
        }
    }
    if h.reserve_connections >= h.max_connections {
        out.push((
            at("reserve_connections"),
            format!(
                "{} must be below max_connections ({})",
                h.reserve_connections, h.max_connections
            ),
        ));
    }
    for (i, host) in h.allowed_hosts.iter().enumerate() {
        if let Err(why) = check_host_name(host) {
            out.push((at("allowed_hosts").index(i), why));
        }
    }
    if let Err(why) = h.metrics_token(base_dir) {
        out.push((at("metrics_token_file"), why));
    }
}

/// A `Host` name as it is compared: no port, no scheme, no spaces.
fn check_host_name(host: &str) -> Result<(), String> {
    let bad = host.is_empty()
        || host.contains(['/', ' ', '@'])
        || (host.contains(':') && !host.starts_with('['));
    if bad {
        return Err(format!(
            "`{host}` is not a host name (write it without scheme or port; an IPv6 address in brackets)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(edit: impl FnOnce(&mut HttpSettings)) -> Vec<String> {
        let mut h = HttpSettings::default();
        edit(&mut h);
        let mut out = Vec::new();
        check(&h, Path::new("."), &mut out);
        out.into_iter()
            .map(|(at, why)| format!("{at}: {why}"))
            .collect()
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(problems(|_| {}), Vec::<String>::new());
    }

    #[test]
    fn out_of_range_limits_are_refused_at_their_field() {
        let p = problems(|h| {
            h.header_read_timeout_ms = 0;
            h.idle_timeout_ms = u64::MAX;
            h.max_connections = 10;
            h.reserve_connections = 10;
            h.max_uri_bytes = 100_000;
            h.allowed_hosts = vec!["ok.test".into(), "bad.test:8080".into()];
        });
        let fields: Vec<&str> = p.iter().map(|p| p.split(':').next().unwrap()).collect();
        assert_eq!(
            fields,
            [
                "http.header_read_timeout_ms",
                "http.idle_timeout_ms",
                "http.max_uri_bytes",
                "http.reserve_connections",
                "http.allowed_hosts[1]"
            ],
            "{p:#?}"
        );
    }

    #[test]
    fn a_short_or_missing_metrics_token_file_is_refused_without_showing_the_token() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("short"), "secret-metrics\n").unwrap();
        let mut h = HttpSettings {
            metrics_token_file: Some("short".into()),
            ..HttpSettings::default()
        };
        let err = h.metrics_token(dir.path()).unwrap_err();
        assert!(
            err.contains("shorter than 32") && !err.contains("secret"),
            "{err}"
        );
        h.metrics_token_file = Some("absent".into());
        assert!(
            h.metrics_token(dir.path())
                .unwrap_err()
                .contains("cannot read")
        );
    }
}
