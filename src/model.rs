//! The shared vocabulary: phases, failure classes, host roles and the per-edge result record.
//!
//! Every closed set here is an enum with exactly one spelling (`as_str`), used alike in SQL, metric
//! labels, JSON and HTML. This module holds data only; it performs no I/O.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One timed step of a probe. The spellings are Prometheus blackbox_exporter's `phase` label values,
/// so a dashboard built for blackbox_exporter reads ours unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// DNS lookup through one resolver.
    Resolve,
    /// TCP connect to one edge IP.
    Connect,
    /// TLS handshake (SNI = host) including certificate checks.
    Tls,
    /// Request written until the response head arrived (time to first byte).
    Processing,
    /// Response body read to its end (or to the cap).
    Transfer,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Resolve,
        Phase::Connect,
        Phase::Tls,
        Phase::Processing,
        Phase::Transfer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Processing => "processing",
            Phase::Transfer => "transfer",
        }
    }

    /// Reads [`Phase::as_str`] back.
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe failed. Closed: every failure the prober can meet maps to exactly one of these; the
/// phase it was met in travels beside it in [`Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The resolver did not answer within the DNS timeout.
    DnsTimeout,
    /// The resolver answered SERVFAIL.
    DnsServfail,
    /// The resolver answered NXDOMAIN: the name does not exist.
    DnsNxdomain,
    /// The resolver answered REFUSED.
    DnsRefused,
    /// NOERROR but no A/AAAA record at the end of the CNAME chain.
    DnsNoAnswer,
    /// The reply was malformed, truncated beyond repair, or another rcode.
    DnsProtocol,
    /// The edge actively refused the TCP connection (RST to SYN).
    TcpRefused,
    /// The TCP connect did not complete within its timeout.
    TcpTimeout,
    /// The TCP connect failed for another reason (unreachable, no route …).
    TcpError,
    /// The connection was reset by the peer after it had been established.
    ConnReset,
    /// The TLS handshake failed for a reason other than the certificate, or timed out.
    TlsHandshake,
    /// The leaf certificate's notAfter is in the past.
    TlsCertExpired,
    /// The leaf certificate's notBefore is in the future.
    TlsCertNotYetValid,
    /// The chain does not lead to a trusted root (system roots plus the vendor's CA file).
    TlsCertUntrusted,
    /// The certificate does not cover the host name.
    TlsCertNameMismatch,
    /// No response head (or no next body byte) within the HTTP timeouts.
    HttpTimeout,
    /// The peer spoke broken HTTP or closed the connection mid-response.
    HttpProtocol,
    /// The status code is not one the path accepts (the code is kept beside the class).
    HttpStatus,
    /// The body did not match the path's content check (size, sha256 or minimum size).
    ContentMismatch,
    /// The body exceeded the configured byte cap.
    BodyTooLarge,
    /// The response head exceeded the configured header byte cap.
    HeadersTooLarge,
}

impl FailureClass {
    pub const ALL: [FailureClass; 21] = [
        FailureClass::DnsTimeout,
        FailureClass::DnsServfail,
        FailureClass::DnsNxdomain,
        FailureClass::DnsRefused,
        FailureClass::DnsNoAnswer,
        FailureClass::DnsProtocol,
        FailureClass::TcpRefused,
        FailureClass::TcpTimeout,
        FailureClass::TcpError,
        FailureClass::ConnReset,
        FailureClass::TlsHandshake,
        FailureClass::TlsCertExpired,
        FailureClass::TlsCertNotYetValid,
        FailureClass::TlsCertUntrusted,
        FailureClass::TlsCertNameMismatch,
        FailureClass::HttpTimeout,
        FailureClass::HttpProtocol,
        FailureClass::HttpStatus,
        FailureClass::ContentMismatch,
        FailureClass::BodyTooLarge,
        FailureClass::HeadersTooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::DnsTimeout => "dns_timeout",
            FailureClass::DnsServfail => "dns_servfail",
            FailureClass::DnsNxdomain => "dns_nxdomain",
            FailureClass::DnsRefused => "dns_refused",
            FailureClass::DnsNoAnswer => "dns_no_answer",
            FailureClass::DnsProtocol => "dns_protocol",
            FailureClass::TcpRefused => "tcp_refused",
            FailureClass::TcpTimeout => "tcp_timeout",
            FailureClass::TcpError => "tcp_error",
            FailureClass::ConnReset => "conn_reset",
            FailureClass::TlsHandshake => "tls_handshake",
            FailureClass::TlsCertExpired => "tls_cert_expired",
            FailureClass::TlsCertNotYetValid => "tls_cert_not_yet_valid",
            FailureClass::TlsCertUntrusted => "tls_cert_untrusted",
            FailureClass::TlsCertNameMismatch => "tls_cert_name_mismatch",
            FailureClass::HttpTimeout => "http_timeout",
            FailureClass::HttpProtocol => "http_protocol",
            FailureClass::HttpStatus => "http_status",
            FailureClass::ContentMismatch => "content_mismatch",
            FailureClass::BodyTooLarge => "body_too_large",
            FailureClass::HeadersTooLarge => "headers_too_large",
        }
    }

    pub fn parse(s: &str) -> Option<FailureClass> {
        FailureClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether this class says something about the resolver rather than the edge.
    pub fn is_dns(self) -> bool {
        self.as_str().starts_with("dns_")
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a failed probe came to: its class and, for [`FailureClass::HttpStatus`] only, the status
/// code (a 403 and a 502 mean different things to on-call). Kept typed from the probe to the page;
/// spelled only where it is stored ([`Outcome::key`]) or shown (`Display`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outcome {
    pub class: FailureClass,
    /// The status code; `None` for every class but `http_status` (and for an `http_status` whose
    /// code was not kept).
    pub status: Option<u16>,
}

impl Outcome {
    /// The outcome of a failure of `class` with the response's `status`, which is kept only for
    /// `http_status`.
    pub fn new(class: FailureClass, status: Option<u16>) -> Self {
        let status = status.filter(|_| class == FailureClass::HttpStatus);
        Outcome { class, status }
    }

    /// Like [`Outcome::new`] from a stored row's columns; `None` for a class not in the set.
    pub fn from_columns(class: &str, status: Option<i64>) -> Option<Self> {
        let status = status.and_then(|s| u16::try_from(s).ok());
        FailureClass::parse(class).map(|c| Outcome::new(c, status))
    }

    /// The one stored spelling, used in the rollups' `by_class` and on the charts:
    /// `http_status:502`, or the class alone.
    pub fn key(&self) -> String {
        match self.status {
            Some(code) => format!("{}:{code}", self.class.as_str()),
            None => self.class.as_str().to_string(),
        }
    }

    /// Reads [`Outcome::key`] back.
    pub fn parse_key(key: &str) -> Option<Self> {
        match key.split_once(':') {
            Some((class, code)) => Some(Outcome::new(
                FailureClass::parse(class)?,
                Some(code.parse().ok()?),
            )),
            None => FailureClass::parse(key).map(|c| Outcome::new(c, None)),
        }
    }

    /// A failure of the CDN. HTTP 4xx is recorded and shown but is not one: a 403 is usually the
    /// customer's own referer rule, a 404 a missing object.
    pub fn is_cdn_failure(&self) -> bool {
        !(self.class == FailureClass::HttpStatus
            && self.status.is_some_and(|s| (400..500).contains(&s)))
    }
}

/// As people read it: `http_status 502`, or the class alone.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.class.as_str())?;
        match self.status {
            Some(code) => write!(f, " {code}"),
            None => Ok(()),
        }
    }
}

/// In the order of [`Outcome::key`]'s text, so maps keyed by outcomes list (and store) them as
/// they were listed when keyed by that text.
impl Ord for Outcome {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.class.as_str(), self.status).cmp(&(other.class.as_str(), other.status))
    }
}

impl PartialOrd for Outcome {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key())
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Outcome::parse_key(&key)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown outcome `{key}`")))
    }
}

/// A host's place in its failover group, in the order clients fall through them
/// (the article, section 3.2: primary -> same-vendor backup -> other-vendor backup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum HostRole {
    Primary,
    SameVendorBackup,
    OtherVendorBackup,
}

impl HostRole {
    pub fn as_str(self) -> &'static str {
        match self {
            HostRole::Primary => "primary",
            HostRole::SameVendorBackup => "same_vendor_backup",
            HostRole::OtherVendorBackup => "other_vendor_backup",
        }
    }
}

/// A probe failure: the class, the phase it happened in, and a human-readable detail
/// (never containing secrets: it is shown on pages and in logs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub class: FailureClass,
    pub phase: Phase,
    pub detail: String,
}

impl Failure {
    pub fn new(class: FailureClass, phase: Phase, detail: impl Into<String>) -> Self {
        Failure {
            class,
            phase,
            detail: detail.into(),
        }
    }
}

/// What the leaf certificate of one TLS handshake said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertInfo {
    pub not_after: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub issuer: String,
    pub subject: String,
    /// True when the chain verified for the host against the trust store in force.
    pub verified: bool,
}

impl CertInfo {
    /// Whole days until notAfter (negative once expired).
    pub fn days_left(&self, now: DateTime<Utc>) -> i64 {
        (self.not_after - now).num_days()
    }
}

/// A DNS response code (RFC 1035 and the IANA registry). Spelled as hickory's `Debug` spells its
/// `ResponseCode` (`NoError`, `ServFail`, `NXDomain`, `Unknown(3841)` …), the text the probe
/// always wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rcode {
    #[default]
    NoError,
    FormErr,
    ServFail,
    NXDomain,
    NotImp,
    Refused,
    /// Any other code, by its number.
    Other(u16),
}

/// The registered names of the codes past `Refused`.
const RCODE_NAMES: [(u16, &str); 13] = [
    (6, "YXDomain"),
    (7, "YXRRSet"),
    (8, "NXRRSet"),
    (9, "NotAuth"),
    (10, "NotZone"),
    (16, "BADSIG"),
    (17, "BADKEY"),
    (18, "BADTIME"),
    (19, "BADMODE"),
    (20, "BADNAME"),
    (21, "BADALG"),
    (22, "BADTRUNC"),
    (23, "BADCOOKIE"),
];

impl Rcode {
    const NAMED: [Rcode; 6] = [
        Rcode::NoError,
        Rcode::FormErr,
        Rcode::ServFail,
        Rcode::NXDomain,
        Rcode::NotImp,
        Rcode::Refused,
    ];

    /// The code's number.
    pub fn code(self) -> u16 {
        match self {
            Rcode::NoError => 0,
            Rcode::FormErr => 1,
            Rcode::ServFail => 2,
            Rcode::NXDomain => 3,
            Rcode::NotImp => 4,
            Rcode::Refused => 5,
            Rcode::Other(n) => n,
        }
    }

    /// The one spelling.
    pub fn as_str(self) -> std::borrow::Cow<'static, str> {
        match self {
            Rcode::NoError => "NoError".into(),
            Rcode::FormErr => "FormErr".into(),
            Rcode::ServFail => "ServFail".into(),
            Rcode::NXDomain => "NXDomain".into(),
            Rcode::NotImp => "NotImp".into(),
            Rcode::Refused => "Refused".into(),
            Rcode::Other(n) => match RCODE_NAMES.iter().find(|(c, _)| *c == n) {
                Some((_, name)) => (*name).into(),
                None => format!("Unknown({n})").into(),
            },
        }
    }

    /// Reads [`Rcode::as_str`] back.
    pub fn parse(s: &str) -> Option<Rcode> {
        if let Some(named) = Rcode::NAMED.into_iter().find(|r| r.as_str() == s) {
            return Some(named);
        }
        if let Some((n, _)) = RCODE_NAMES.iter().find(|(_, name)| *name == s) {
            return Some(Rcode::Other(*n));
        }
        let n: u16 = s
            .strip_prefix("Unknown(")?
            .strip_suffix(')')?
            .parse()
            .ok()?;
        Some(Rcode::from(n))
    }
}

impl From<u16> for Rcode {
    fn from(n: u16) -> Rcode {
        Rcode::NAMED
            .into_iter()
            .find(|r| r.code() == n)
            .unwrap_or(Rcode::Other(n))
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl Serialize for Rcode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for Rcode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Rcode::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown rcode `{text}`")))
    }
}

/// The DNS answer one resolver gave for one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DnsAnswer {
    /// The CNAME chain from the queried name to the name that holds the addresses.
    pub cname_chain: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// The smallest TTL of the answer records, in seconds.
    pub ttl_s: Option<u32>,
    /// The response code.
    pub rcode: Rcode,
}

/// One row of probe output: the probe of one edge IP for one (host, path, region, resolver), or — when
/// DNS itself failed — the one row that says so (with `edge_ip` empty).
///
/// Times are milliseconds with microsecond resolution; a phase that was not reached is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeResult {
    pub at: DateTime<Utc>,
    pub host: String,
    pub path: String,
    pub region: String,
    pub resolver: String,
    pub edge_ip: Option<IpAddr>,
    pub dns_ms: Option<f64>,
    pub connect_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    pub first_byte_ms: Option<f64>,
    pub transfer_ms: Option<f64>,
    /// From the start of the edge's TCP connect to the end of the body, plus the DNS time.
    pub total_ms: Option<f64>,
    pub status: Option<u16>,
    pub body_bytes: u64,
    pub cert: Option<CertInfo>,
    pub failure: Option<Failure>,
}

impl EdgeResult {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    pub fn failure_class(&self) -> Option<FailureClass> {
        self.failure.as_ref().map(|f| f.class)
    }

    /// The failure's outcome (its class, with the status for `http_status`).
    pub fn outcome(&self) -> Option<Outcome> {
        self.failure_class().map(|c| Outcome::new(c, self.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_class_round_trips_through_its_one_spelling() {
        for c in FailureClass::ALL {
            assert_eq!(FailureClass::parse(c.as_str()), Some(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
    }

    #[test]
    fn an_outcome_keeps_its_status_only_for_http_status_and_round_trips_its_key() {
        let o = Outcome::new(FailureClass::HttpStatus, Some(502));
        assert_eq!(
            (o.key(), o.to_string()),
            ("http_status:502".into(), "http_status 502".into())
        );
        assert_eq!(Outcome::parse_key("http_status:502"), Some(o));
        let c = Outcome::new(FailureClass::ContentMismatch, Some(200));
        assert_eq!((c.status, c.key()), (None, "content_mismatch".into()));
        assert_eq!(Outcome::parse_key("content_mismatch"), Some(c));
        assert_eq!(Outcome::parse_key("nonsense"), None);
        let map: std::collections::BTreeMap<Outcome, u64> = [(o, 2), (c, 1)].into();
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, r#"{"content_mismatch":1,"http_status:502":2}"#);
        assert_eq!(
            serde_json::from_str::<std::collections::BTreeMap<Outcome, u64>>(&json).unwrap(),
            map
        );
    }

    #[test]
    fn http_4xx_is_not_a_cdn_failure() {
        assert!(!Outcome::new(FailureClass::HttpStatus, Some(403)).is_cdn_failure());
        assert!(Outcome::new(FailureClass::HttpStatus, Some(502)).is_cdn_failure());
        assert!(Outcome::new(FailureClass::HttpStatus, None).is_cdn_failure());
        assert!(Outcome::new(FailureClass::TcpRefused, Some(404)).is_cdn_failure());
    }

    #[test]
    fn an_rcode_is_spelled_as_hickory_debug_prints_it_and_read_back() {
        for (code, text) in [
            (0, "NoError"),
            (2, "ServFail"),
            (3, "NXDomain"),
            (5, "Refused"),
            (4, "NotImp"),
            (9, "NotAuth"),
            (23, "BADCOOKIE"),
            (3841, "Unknown(3841)"),
        ] {
            let r = Rcode::from(code);
            assert_eq!((r.code(), r.to_string().as_str()), (code, text));
            assert_eq!(Rcode::parse(text), Some(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{text}\""));
        }
        assert_eq!(Rcode::from(3), Rcode::NXDomain);
    }

    #[test]
    fn phase_spelling_matches_serde_and_blackbox_vocabulary() {
        for p in Phase::ALL {
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
    }
}
