//! Where probes run from: regions with their EDNS client subnet, control targets and resolvers.
//! Each is parsed once from the text the file writes (`RegionDoc`, `ResolverDoc`) into typed
//! values — a [`ClientSubnet`], `SocketAddr`s, a [`Transport`] — with positioned problems, so no
//! caller parses an address again. Owns no checks across regions (that is `validate.rs`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::findings::{self, Findings};
use super::locate::FieldPath;

/// Why a value in the file does not parse; the text is what the file says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not `ip/prefix`.
    #[error("`{0}` is not a subnet like 198.51.100.0/24")]
    NotASubnet(String),
    /// Not an IP address.
    #[error("`{0}` is not an IP address")]
    NotAnIp(String),
    /// Not a number of bits.
    #[error("`{0}` is not a prefix length")]
    NotAPrefix(String),
    /// A prefix longer than the address.
    #[error("prefix /{len} is longer than {max} bits")]
    PrefixTooLong {
        /// The prefix length written.
        len: u8,
        /// The family's address length in bits.
        max: u8,
    },
    /// Not `ip:port`.
    #[error("`{0}` is not an ip:port address")]
    NotAnAddress(String),
    /// Not a DoH URL this prober can use: what is wrong with it.
    #[error("{0}")]
    BadDoh(String),
}

/// An EDNS client subnet: an address and a prefix length that fits its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    /// The subnet's address.
    pub ip: IpAddr,
    /// The prefix length in bits.
    pub prefix: u8,
}

impl FromStr for ClientSubnet {
    type Err = ValueError;

    /// Parses `ip/prefix`, checking the prefix fits the address family.
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| ValueError::NotASubnet(s.to_owned()))?;
        let ip: IpAddr = ip.parse().map_err(|_| ValueError::NotAnIp(ip.to_owned()))?;
        let len: u8 = len
            .parse()
            .map_err(|_| ValueError::NotAPrefix(len.to_owned()))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(ValueError::PrefixTooLong { len, max });
        }
        Ok(ClientSubnet { ip, prefix: len })
    }
}

impl fmt::Display for ClientSubnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

/// A DNS-over-HTTPS endpoint: an `https://` URL (its host is checked when a probe uses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DohUrl(String);

impl DohUrl {
    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DohUrl {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        split_doh_url(s).map_err(ValueError::BadDoh)?;
        Ok(DohUrl(s.to_owned()))
    }
}

/// Splits `https://IP[:PORT][/PATH]` into the server's IP, its port (443) and the path
/// (`/dns-query`). The host must be an IP address: a DoH server named by host name would need
/// another resolver to find it, which would blur whose answer a probe's is.
pub fn split_doh_url(url: &str) -> Result<(IpAddr, u16, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("`{url}` is not an https:// URL"))?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/dns-query".to_string()), |(a, p)| {
            (a, format!("/{p}"))
        });
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, rest) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{authority}` has no closing `]`"))?;
        (h, rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("`{p}` is not a port"))?,
        None => 443,
    };
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("the DoH host `{host}` must be an IP address"))?;
    Ok((ip, port, path))
}

impl fmt::Display for DohUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn socket_addr(s: &str) -> Result<SocketAddr, ValueError> {
    s.parse()
        .map_err(|_| ValueError::NotAnAddress(s.to_owned()))
}

/// Keeps a parsed value, or records why it did not parse at `at`.
fn found<T>(parsed: Result<T, ValueError>, at: FieldPath, out: &mut Findings) -> Option<T> {
    parsed.map_err(|e| out.push((at, e.to_string()))).ok()
}

/// A vantage region: its resolvers and its control targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "RegionDoc", try_from = "RegionDoc")]
pub struct Region {
    /// The region's name, as results and pages show it.
    pub name: String,
    /// EDNS client subnet sent with every query (`client_subnet = "ip/prefix"`).
    pub client_subnet: Option<ClientSubnet>,
    /// Addresses that do not depend on any CDN; when none connects, the region's own network is
    /// down and its results do not count.
    pub control_targets: Vec<SocketAddr>,
    /// The resolvers probes in this region go through.
    pub resolvers: Vec<ResolverConfig>,
}

/// A region as the file writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegionDoc {
    pub(super) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_subnet: Option<String>,
    #[serde(default)]
    control_targets: Vec<String>,
    resolvers: Vec<ResolverDoc>,
}

impl From<Region> for RegionDoc {
    fn from(r: Region) -> Self {
        RegionDoc {
            name: r.name,
            client_subnet: r.client_subnet.map(|s| s.to_string()),
            control_targets: r.control_targets.iter().map(|a| a.to_string()).collect(),
            resolvers: r.resolvers.into_iter().map(ResolverDoc::from).collect(),
        }
    }
}

impl TryFrom<RegionDoc> for Region {
    type Error = String;

    fn try_from(doc: RegionDoc) -> Result<Self, String> {
        findings::standalone(doc, Region::from_doc)
    }
}

impl Region {
    /// Parses a region as written, adding each problem (under `at`) to `out`; `None` when there
    /// is one.
    pub(super) fn from_doc(doc: RegionDoc, at: &FieldPath, out: &mut Findings) -> Option<Region> {
        let before = out.len();
        let client_subnet = doc
            .client_subnet
            .as_deref()
            .and_then(|s| found(s.parse(), at.key("client_subnet"), out));
        let control_targets: Vec<SocketAddr> = (doc.control_targets.iter().enumerate())
            .filter_map(|(j, t)| found(socket_addr(t), at.key("control_targets").index(j), out))
            .collect();
        if doc.resolvers.is_empty() {
            out.push((
                at.key("resolvers"),
                "a region needs at least one resolver".into(),
            ));
        }
        let resolvers = resolvers(&doc, at, out);
        (out.len() == before).then_some(Region {
            name: doc.name,
            client_subnet,
            control_targets,
            resolvers,
        })
    }
}

fn resolvers(doc: &RegionDoc, at: &FieldPath, out: &mut Findings) -> Vec<ResolverConfig> {
    let mut names = std::collections::HashSet::new();
    let mut parsed = Vec::new();
    for (j, res) in doc.resolvers.iter().enumerate() {
        let rat = at.key("resolvers").index(j);
        if !names.insert(res.name.as_str()) {
            out.push((
                rat.key("name"),
                format!(
                    "resolver `{}` is defined twice in region `{}`",
                    res.name, doc.name
                ),
            ));
        }
        parsed.extend(ResolverConfig::from_doc(res, &rat, out));
    }
    parsed
}

/// A resolver: a name and its transport.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(into = "ResolverDoc")]
pub struct ResolverConfig {
    /// The resolver's name, unique within its region.
    pub name: String,
    /// How it is asked.
    pub transport: Transport,
}

/// A resolver's transport: `udp` or `tcp` (`ip:port`), or `doh` (an https URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Plain DNS over UDP; a truncated answer is asked again over TCP.
    Udp(SocketAddr),
    /// Plain DNS over TCP.
    Tcp(SocketAddr),
    /// DNS over HTTPS.
    Doh(DohUrl),
}

/// A resolver as the file writes it: a name plus exactly one of `udp`, `tcp` or `doh`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolverDoc {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    udp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tcp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    doh: Option<String>,
}

impl From<ResolverConfig> for ResolverDoc {
    fn from(r: ResolverConfig) -> Self {
        let (mut udp, mut tcp, mut doh) = (None, None, None);
        match r.transport {
            Transport::Udp(a) => udp = Some(a.to_string()),
            Transport::Tcp(a) => tcp = Some(a.to_string()),
            Transport::Doh(u) => doh = Some(u.0),
        }
        ResolverDoc {
            name: r.name,
            udp,
            tcp,
            doh,
        }
    }
}

impl ResolverConfig {
    /// Parses a resolver as written (a DoH query carries the region's client subnet too).
    fn from_doc(doc: &ResolverDoc, at: &FieldPath, out: &mut Findings) -> Option<ResolverConfig> {
        let transport = match (&doc.udp, &doc.tcp, &doc.doh) {
            (Some(a), None, None) => found(socket_addr(a), at.key("udp"), out).map(Transport::Udp),
            (None, Some(a), None) => found(socket_addr(a), at.key("tcp"), out).map(Transport::Tcp),
            (None, None, Some(u)) => found(u.parse(), at.key("doh"), out).map(Transport::Doh),
            _ => {
                out.push((
                    at.clone(),
                    format!(
                        "resolver `{}` needs exactly one of udp, tcp or doh",
                        doc.name
                    ),
                ));
                None
            }
        }?;
        Some(ResolverConfig {
            name: doc.name.clone(),
            transport,
        })
    }
}
