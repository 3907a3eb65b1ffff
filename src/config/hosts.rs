//! What is probed: vendors, hosts, their probe paths with one typed content check, and the merged
//! hosts. A probe path is parsed from the form the file writes (`PathDoc`: `expect_size`,
//! `expect_sha256`, `min_size`) into [`ContentCheck`] once, with positioned problems; callers never
//! see the three keys. Owns no cross-section checks (a host's vendor existing is `validate.rs`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::findings::{self, Findings};
use super::locate::FieldPath;
use crate::model::HostRole;

/// A CDN vendor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vendor {
    /// The vendor's name, as hosts refer to it.
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
    /// TLS, then HTTP/1.1 (port 443 by default).
    #[default]
    Https,
    /// Plain HTTP/1.1 (port 80 by default).
    Http,
}

/// A CDN domain in the failover group. `P` is how its paths are held: [`ProbePath`] in a loaded
/// config; the file's own form only while loading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host<P = ProbePath> {
    /// The domain clients use and probes ask for.
    pub domain: String,
    /// The name of the vendor serving it.
    pub vendor: String,
    /// Its place in the failover order.
    pub role: HostRole,
    /// `https` (default) or `http`.
    #[serde(default)]
    pub scheme: Scheme,
    /// Port override; default 443 (https) or 80 (http).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `rate` in `hostListConfig`: the share of clients that may use this host, 0..1. Default 1.
    #[serde(default = "one")]
    pub rate: f64,
    /// The objects probed on it.
    pub paths: Vec<P>,
}

impl<P> Host<P> {
    /// The port probed: the override, else the scheme's.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
        })
    }

    /// The same host holding `paths` instead.
    pub(super) fn with_paths<Q>(self, paths: Vec<Q>) -> Host<Q> {
        Host {
            domain: self.domain,
            vendor: self.vendor,
            role: self.role,
            scheme: self.scheme,
            port: self.port,
            rate: self.rate,
            paths,
        }
    }
}

fn one() -> f64 {
    1.0
}

/// The HTTP method of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`: the body is read and checked.
    #[default]
    Get,
    /// `HEAD`: the head only.
    Head,
}

impl Method {
    /// The one spelling, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }
}

/// A content check on a probe body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentCheck {
    /// `expect_size`: the body must be exactly this many bytes.
    Size(u64),
    /// `expect_sha256`: the body's sha256, 64 lowercase hex digits.
    Sha256(String),
    /// `min_size`: the body must be at least this many bytes.
    MinSize(u64),
}

/// One object probed on a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "PathDoc", try_from = "PathDoc")]
pub struct ProbePath {
    /// The request path, starting with `/`.
    pub path: String,
    /// `GET` (default) or `HEAD`.
    pub method: Method,
    /// Accepted status codes. Default `[200]`.
    pub accept_status: Vec<u16>,
    /// The content check, if any (the file sets at most one of its three keys).
    pub check: Option<ContentCheck>,
}

/// A probe path as the file writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PathDoc {
    path: String,
    #[serde(default)]
    method: Method,
    #[serde(default = "ok_only")]
    accept_status: Vec<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expect_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expect_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_size: Option<u64>,
}

fn ok_only() -> Vec<u16> {
    vec![200]
}

impl From<ProbePath> for PathDoc {
    fn from(p: ProbePath) -> Self {
        let (mut expect_size, mut expect_sha256, mut min_size) = (None, None, None);
        match p.check {
            Some(ContentCheck::Size(n)) => expect_size = Some(n),
            Some(ContentCheck::Sha256(h)) => expect_sha256 = Some(h),
            Some(ContentCheck::MinSize(n)) => min_size = Some(n),
            None => {}
        }
        PathDoc {
            path: p.path,
            method: p.method,
            accept_status: p.accept_status,
            expect_size,
            expect_sha256,
            min_size,
        }
    }
}

impl TryFrom<PathDoc> for ProbePath {
    type Error = String;

    fn try_from(doc: PathDoc) -> Result<Self, String> {
        findings::standalone(doc, ProbePath::from_doc)
    }
}

impl ProbePath {
    /// Parses a path as written, adding each problem (under `at`) to `out`; `None` when there is one.
    pub(super) fn from_doc(doc: PathDoc, at: &FieldPath, out: &mut Findings) -> Option<ProbePath> {
        let before = out.len();
        if !doc.path.starts_with('/') {
            out.push((
                at.key("path"),
                format!("`{}` must start with `/`", doc.path),
            ));
        }
        check_statuses(&doc.accept_status, at, out);
        let check = content_check(&doc, at, out);
        if doc.method == Method::Head && doc.sets_a_check() {
            out.push((
                at.key("method"),
                "a HEAD probe has no body, so it cannot have a content check".into(),
            ));
        }
        (out.len() == before).then_some(ProbePath {
            path: doc.path,
            method: doc.method,
            accept_status: doc.accept_status,
            check,
        })
    }
}

fn check_statuses(accept: &[u16], at: &FieldPath, out: &mut Findings) {
    if accept.is_empty() {
        out.push((
            at.key("accept_status"),
            "at least one status code must be accepted".into(),
        ));
    }
    for (k, s) in accept.iter().enumerate() {
        if !(100..=599).contains(s) {
            out.push((
                at.key("accept_status").index(k),
                format!("{s} is not an HTTP status code"),
            ));
        }
    }
}

impl PathDoc {
    fn sets_a_check(&self) -> bool {
        self.expect_size.is_some() || self.expect_sha256.is_some() || self.min_size.is_some()
    }
}

/// The one content check a path sets; `None` when it sets none, or when what it sets is not
/// usable (then the problem is in `out`).
fn content_check(doc: &PathDoc, at: &FieldPath, out: &mut Findings) -> Option<ContentCheck> {
    let set = [
        doc.expect_size.is_some(),
        doc.expect_sha256.is_some(),
        doc.min_size.is_some(),
    ];
    if set.iter().filter(|s| **s).count() > 1 {
        out.push((
            at.clone(),
            "set at most one of expect_size, expect_sha256, min_size".into(),
        ));
    }
    let sha256 = doc.expect_sha256.as_deref().map(|h| {
        let ok = h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit());
        if !ok {
            out.push((at.key("expect_sha256"), "must be 64 hex digits".into()));
        }
        ok.then(|| h.to_ascii_lowercase())
    });
    for (key, size) in [("expect_size", doc.expect_size), ("min_size", doc.min_size)] {
        if let Some(n) = size {
            super::bounds::EXPECTED_BYTES.check(n, at.key(key), out);
        }
    }
    match (doc.expect_size, sha256, doc.min_size) {
        (Some(n), None, None) => Some(ContentCheck::Size(n)),
        (None, Some(Some(h)), None) => Some(ContentCheck::Sha256(h)),
        (None, None, Some(n)) => Some(ContentCheck::MinSize(n)),
        _ => None,
    }
}

/// An original domain merged into the unified domain under a path prefix (the article, section 2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergedHost {
    /// The original domain.
    pub host: String,
    /// The path prefix it is served under on the unified domain, such as `/image`.
    pub path_prefix: String,
    /// Rollout rate 0..1.
    #[serde(default = "one")]
    pub rate: f64,
    /// The vendor whose trust (CA file, system roots) the original domain's probes use; default
    /// the vendor of the first host probing a path under the prefix. The original domain is
    /// probed with that host's scheme and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
}
