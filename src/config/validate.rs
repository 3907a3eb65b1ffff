//! What types alone cannot catch: ranges, duplicates, names that must refer to something, CA files
//! that must read. Every problem comes with the field it concerns, in the order of the file's
//! sections, so `load.rs` can place it at a line and column. Hosts and regions are parsed from
//! their written form here too (by `hosts.rs` and `regions.rs`), in the same pass, so their
//! problems keep that order. Owns no TOML and no positions.

use std::collections::HashSet;
use std::net::IpAddr;

use super::bounds;
use super::findings::Findings;
use super::hosts::{Host, PathDoc, ProbePath};
use super::locate::FieldPath;
use super::regions::{Region, RegionDoc};
use super::{ClientSettings, Config, DashboardSettings, ProbeSettings, StoreSettings};

/// The file's sections as deserialized: hosts and regions still as written (their values are
/// parsed by validation), every other section already in `config`.
pub(super) struct Document {
    pub(super) config: Config,
    pub(super) hosts: Vec<Host<PathDoc>>,
    pub(super) regions: Vec<RegionDoc>,
}

/// The config a document describes, and every problem with it (the config counts only when there
/// are none).
pub(super) fn validate(doc: Document) -> (Config, Findings) {
    let Document {
        mut config,
        hosts,
        regions,
    } = doc;
    let mut out = Vec::new();
    check_probe(&config.probe, &mut out);
    check_client(&config.client, &mut out);
    check_vendors(&config, &mut out);
    let hosts = parse_hosts(&config, hosts, &mut out);
    check_merged(&config, &mut out);
    let regions = parse_regions(regions, &mut out);
    check_store(&config.store, &mut out);
    check_engine(&config.engine, &mut out);
    check_dashboard(&config.dashboard, &mut out);
    super::http::check(&config.http, &config.base_dir, &mut out);
    super::notify::check(&config.notify, &config.base_dir, &mut out);
    super::agents::check(&config.agents, &regions, &config.base_dir, &mut out);
    config.hosts = hosts;
    config.regions = regions;
    (config, out)
}

fn check_probe(p: &ProbeSettings, out: &mut Findings) {
    let at = |k: &str| FieldPath::root().key("probe").key(k);
    bounds::INTERVAL_MS.check(p.interval_ms, at("interval_ms"), out);
    bounds::CONFIRM_INTERVAL_MS.check(p.confirm_interval_ms, at("confirm_interval_ms"), out);
    let t = &p.timeouts;
    for (name, v) in [
        ("dns_ms", t.dns_ms),
        ("connect_ms", t.connect_ms),
        ("tls_ms", t.tls_ms),
        ("first_byte_ms", t.first_byte_ms),
        ("transfer_ms", t.transfer_ms),
    ] {
        bounds::TIMEOUT_MS.check(v, at("timeouts").key(name), out);
    }
    bounds::MAX_EDGES.check(p.max_edges, at("max_edges"), out);
    bounds::BODY_BYTES.check(p.max_body_bytes, at("max_body_bytes"), out);
    bounds::HEADER_BYTES.check(p.max_header_bytes, at("max_header_bytes"), out);
    bounds::CONCURRENCY.check(p.concurrency, at("concurrency"), out);
}

fn check_engine(e: &crate::engine::Policy, out: &mut Findings) {
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
        bounds::ROUNDS.check(v, at(name), out);
    }
    bounds::HOLD_MS.check(e.hold_base_ms, at("hold_base_ms"), out);
    bounds::HOLD_MS.check(e.hold_cap_ms, at("hold_cap_ms"), out);
    bounds::HOLD_DECAY_MS.check(e.hold_decay_ms, at("hold_decay_ms"), out);
    if e.hold_cap_ms < e.hold_base_ms {
        out.push((
            at("hold_cap_ms"),
            "the cap must not be below hold_base_ms".into(),
        ));
    }
}

fn check_dashboard(d: &DashboardSettings, out: &mut Findings) {
    let at = |k: &str| FieldPath::root().key("dashboard").key(k);
    bounds::CERT_WARN_DAYS.check(d.cert_warn_days, at("cert_warn_days"), out);
    if let Some(url) = &d.external_url
        && let Err(why) = check_external_url(url)
    {
        out.push((at("external_url"), why));
    }
}

/// An external URL is `http://` or `https://`, a host, and nothing after it but a path.
fn check_external_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let host = rest.map(|r| r.split('/').next().unwrap_or(""));
    match host {
        Some(h) if !h.is_empty() && !url.contains(['?', '#', ' ']) => Ok(()),
        _ => Err(format!(
            "`{url}` is not an http(s) URL such as `https://watch.example.com`"
        )),
    }
}

fn check_store(st: &StoreSettings, out: &mut Findings) {
    let at = |k: &str| FieldPath::root().key("store").key(k);
    bounds::RETENTION_HOURS.check(st.raw_retention_hours, at("raw_retention_hours"), out);
    bounds::RETENTION_DAYS.check(st.minute_rollup_days, at("minute_rollup_days"), out);
    bounds::RETENTION_DAYS.check(st.hour_rollup_days, at("hour_rollup_days"), out);
    bounds::BATCH_SIZE.check(st.batch_size, at("batch_size"), out);
    bounds::QUEUE_CAPACITY.check(st.queue_capacity, at("queue_capacity"), out);
    let maintenance = st.maintenance_interval_ms;
    bounds::MAINTENANCE_MS.check(maintenance, at("maintenance_interval_ms"), out);
}

fn check_client(client: &ClientSettings, out: &mut Findings) {
    let at = |k: &str| FieldPath::root().key("client").key(k);
    for (name, v) in [
        (
            "config_request_interval_ms",
            client.config_request_interval_ms,
        ),
        ("revive_probe_interval_ms", client.revive_probe_interval_ms),
    ] {
        bounds::CLIENT_INTERVAL_MS.check(v, at(name), out);
    }
    for (i, ip) in client.public_ip_list.iter().enumerate() {
        if ip.parse::<IpAddr>().is_err() {
            let path = FieldPath::root()
                .key("client")
                .key("public_ip_list")
                .index(i);
            out.push((path, format!("`{ip}` is not an IP address")));
        }
    }
}

fn check_vendors(config: &Config, out: &mut Findings) {
    let mut seen = HashSet::new();
    for (i, v) in config.vendors.iter().enumerate() {
        let at = FieldPath::root().key("vendors").index(i);
        if !seen.insert(v.name.as_str()) {
            out.push((
                at.key("name"),
                format!("vendor `{}` is defined twice", v.name),
            ));
        }
        if let Some(ca) = config.ca_path(v)
            && let Err(why) = crate::trust::read_pem_certs(&ca)
        {
            out.push((at.key("ca_file"), why));
        }
    }
}

fn parse_hosts(config: &Config, hosts: Vec<Host<PathDoc>>, out: &mut Findings) -> Vec<Host> {
    if hosts.is_empty() {
        out.push((
            FieldPath::root(),
            "no [[hosts]]: there is nothing to probe".into(),
        ));
    }
    let mut seen = HashSet::new();
    let mut parsed = Vec::new();
    for (i, mut h) in hosts.into_iter().enumerate() {
        let at = FieldPath::root().key("hosts").index(i);
        let twice = !seen.insert(h.domain.to_ascii_lowercase());
        check_host(config, &h, &at, twice, out);
        // Every path is parsed, so each one's problems are found, before the host is kept or not.
        let docs = std::mem::take(&mut h.paths);
        let paths: Vec<Option<ProbePath>> = (docs.into_iter().enumerate())
            .map(|(j, p)| ProbePath::from_doc(p, &at.key("paths").index(j), out))
            .collect();
        let paths: Option<Vec<ProbePath>> = paths.into_iter().collect();
        parsed.extend(paths.map(|paths| h.with_paths(paths)));
    }
    parsed
}

/// The checks on one host's own fields; `twice` says its domain came before.
fn check_host(config: &Config, h: &Host<PathDoc>, at: &FieldPath, twice: bool, out: &mut Findings) {
    if let Err(why) = check_domain(&h.domain) {
        out.push((at.key("domain"), why));
    }
    if twice {
        out.push((
            at.key("domain"),
            format!("host `{}` is listed twice", h.domain),
        ));
    }
    if config.vendor(&h.vendor).is_none() {
        let known = config.vendors.iter().map(|v| v.name.as_str());
        out.push((at.key("vendor"), unknown_name("vendor", &h.vendor, known)));
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
}

fn check_merged(config: &Config, out: &mut Findings) {
    let mut seen = HashSet::new();
    for (i, m) in config.merged_hosts.iter().enumerate() {
        let at = FieldPath::root().key("merged_hosts").index(i);
        if let Some(v) = m.vendor.as_deref().filter(|v| config.vendor(v).is_none()) {
            out.push((at.key("vendor"), format!("no vendor `{v}` in [[vendors]]")));
        }
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

fn parse_regions(regions: Vec<RegionDoc>, out: &mut Findings) -> Vec<Region> {
    if regions.is_empty() {
        out.push((
            FieldPath::root(),
            "no [[regions]]: probes need at least one region with a resolver".into(),
        ));
    }
    let mut seen = HashSet::new();
    let mut parsed = Vec::new();
    for (i, r) in regions.into_iter().enumerate() {
        let at = FieldPath::root().key("regions").index(i);
        if !seen.insert(r.name.clone()) {
            out.push((
                at.key("name"),
                format!("region `{}` is defined twice", r.name),
            ));
        }
        parsed.extend(Region::from_doc(r, &at, out));
    }
    parsed
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
