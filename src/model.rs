//! The shared vocabulary: phases, failure classes and outcomes, DNS response codes, host roles and
//! the per-edge result record.
//!
//! Every closed set here is an enum with exactly one spelling (`as_str`), used alike in SQL, metric
//! labels, JSON and HTML. This module holds data only; it performs no I/O.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod outcome;
mod phase_time;
mod rcode;

pub use outcome::Outcome;
pub use phase_time::PhaseTime;
pub use rcode::Rcode;

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
    /// Every phase, in the order a probe goes through them.
    pub const ALL: [Phase; 5] = [
        Phase::Resolve,
        Phase::Connect,
        Phase::Tls,
        Phase::Processing,
        Phase::Transfer,
    ];

    /// The one spelling, as in SQL, labels, JSON and HTML.
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
    /// The TLS handshake failed for a reason other than the certificate.
    TlsHandshake,
    /// The TLS handshake did not complete within its timeout.
    TlsTimeout,
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
    /// Every class.
    pub const ALL: [FailureClass; 22] = [
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
        FailureClass::TlsTimeout,
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

    /// The one spelling, as in SQL, labels, JSON and HTML.
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
            FailureClass::TlsTimeout => "tls_timeout",
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

    /// The class spelled `s`, if any.
    pub fn parse(s: &str) -> Option<FailureClass> {
        FailureClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether this class is a phase's timeout firing: the phase's figure is then the time it
    /// waited, not the time it took. (A UDP query answered by "port unreachable" is a
    /// `dns_timeout` too, as a resolver that never answers, though it ends at once.)
    pub fn is_timeout(self) -> bool {
        matches!(
            self,
            FailureClass::DnsTimeout
                | FailureClass::TcpTimeout
                | FailureClass::TlsTimeout
                | FailureClass::HttpTimeout
        )
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

/// A host's place in its failover group, in the order clients fall through them
/// (the article, section 3.2: primary -> same-vendor backup -> other-vendor backup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum HostRole {
    /// The host clients use first.
    Primary,
    /// A backup on the same vendor.
    SameVendorBackup,
    /// A backup on another vendor.
    OtherVendorBackup,
}

impl HostRole {
    /// The one spelling, as in SQL, JSON and the pages.
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
    /// What went wrong.
    pub class: FailureClass,
    /// The phase it went wrong in.
    pub phase: Phase,
    /// What happened, in words.
    pub detail: String,
}

impl Failure {
    /// A failure of `class` in `phase`.
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
    /// The end of its validity.
    pub not_after: DateTime<Utc>,
    /// The start of its validity.
    pub not_before: DateTime<Utc>,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// The subject's distinguished name.
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

/// The DNS answer one resolver gave for one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DnsAnswer {
    /// The CNAME chain from the queried name to the name that holds the addresses.
    pub cname_chain: Vec<String>,
    /// The addresses at the end of the chain.
    pub ips: Vec<IpAddr>,
    /// The smallest TTL of the answer records, in seconds.
    pub ttl_s: Option<u32>,
    /// The response code.
    pub rcode: Rcode,
}

/// One row of probe output: the probe of one edge IP for one (host, path, region, resolver), or — when
/// DNS itself failed — the one row that says so (with `edge_ip` empty).
///
/// Times are milliseconds with microsecond resolution; a phase that was not reached, or that failed
/// fast, is `None`; a phase that timed out holds the time it waited (about its timeout), and the
/// total includes it ([`EdgeResult::phase_time`] says which).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeResult {
    /// When the probe started.
    pub at: DateTime<Utc>,
    /// The host's domain.
    pub host: String,
    /// The probe path.
    pub path: String,
    /// The region probed from.
    pub region: String,
    /// The resolver probed through.
    pub resolver: String,
    /// The edge probed; `None` on the row of a DNS failure.
    pub edge_ip: Option<IpAddr>,
    /// The resolve phase.
    pub dns_ms: Option<f64>,
    /// The TCP connect.
    pub connect_ms: Option<f64>,
    /// The TLS handshake.
    pub tls_ms: Option<f64>,
    /// From the request written to the response head.
    pub first_byte_ms: Option<f64>,
    /// The body read.
    pub transfer_ms: Option<f64>,
    /// From the start of the edge's TCP connect to the end of the body, plus the DNS time.
    pub total_ms: Option<f64>,
    /// The HTTP status, when a response head arrived.
    pub status: Option<u16>,
    /// Body bytes read.
    pub body_bytes: u64,
    /// The leaf certificate, when a handshake got one.
    pub cert: Option<CertInfo>,
    /// Why the probe failed; `None` when it passed.
    pub failure: Option<Failure>,
}

impl EdgeResult {
    /// Whether the probe passed.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// The failure's class, if it failed.
    pub fn failure_class(&self) -> Option<FailureClass> {
        self.failure.as_ref().map(|f| f.class)
    }

    /// The failure's outcome (its class, with the status for `http_status`).
    pub fn outcome(&self) -> Option<Outcome> {
        self.failure_class().map(|c| Outcome::new(c, self.status))
    }

    /// The figure of `phase`, marked when that phase's timeout ended it; `None` when the phase
    /// was not reached.
    pub fn phase_time(&self, phase: Phase) -> Option<PhaseTime> {
        let ms = match phase {
            Phase::Resolve => self.dns_ms,
            Phase::Connect => self.connect_ms,
            Phase::Tls => self.tls_ms,
            Phase::Processing => self.first_byte_ms,
            Phase::Transfer => self.transfer_ms,
        };
        let failure = self.failure.as_ref().map(|f| (f.class, f.phase));
        Some(PhaseTime::of_phase(ms?, phase, failure))
    }

    /// The total, marked when a timeout ended the probe (it then waited at least that long).
    pub fn total_time(&self) -> Option<PhaseTime> {
        let failure = self.failure.as_ref().map(|f| (f.class, f.phase));
        Some(PhaseTime::of_total(self.total_ms?, failure))
    }
}

/// One probe's edge result with the slot the schedule planned it for: results are aligned to
/// their slot, so a round compares the same round in every region (a probe that started late
/// still belongs to the round it was planned in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probed {
    /// The probe's planned start in the schedule (on the prober's clock until the service
    /// re-stamps an agent's onto its own).
    pub slot: DateTime<Utc>,
    /// The edge result (its `at` is the probe's actual start).
    pub result: EdgeResult,
}

impl Probed {
    /// One probe's results, planned `late` before they started.
    pub fn probe(results: Vec<EdgeResult>, late: std::time::Duration) -> Vec<Probed> {
        let late = chrono::Duration::from_std(late).unwrap_or_default();
        results
            .into_iter()
            .map(|result| Probed {
                slot: result.at - late,
                result,
            })
            .collect()
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
    fn phase_spelling_matches_serde_and_blackbox_vocabulary() {
        for p in Phase::ALL {
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
    }
}
