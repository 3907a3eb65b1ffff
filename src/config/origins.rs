//! The original domains of the merged prefixes (`[[merged_hosts]]`, the article's
//! `mergeHostConfigs`) as hosts to probe: each with the probe objects the unified hosts have under
//! its prefix, at the path they had before the merge (`cdn.shop.test/image/probe.jpg` is
//! `image.shop.test/probe.jpg`), so the engine knows whether a rolled-back prefix would load.
//! Derived from the loaded config; owns no checks.

use super::{Config, Host, MergedHost, ProbePath};

impl Config {
    /// Every merged prefix's original domain as a host: the scheme, port and role of the first
    /// host probing a path under the prefix, the merged entry's vendor (else that host's) for
    /// trust, and each distinct probe path under the prefix with the prefix taken off. A prefix no
    /// host probes has no original to probe.
    pub fn origin_hosts(&self) -> Vec<Host> {
        self.merged_hosts
            .iter()
            .filter_map(|m| self.origin_host(m))
            .collect()
    }

    fn origin_host(&self, m: &MergedHost) -> Option<Host> {
        let under = |p: &ProbePath| original_path(&p.path, &m.path_prefix).is_some();
        let template = self.hosts.iter().find(|h| h.paths.iter().any(under))?;
        let mut paths: Vec<ProbePath> = Vec::new();
        for p in self.hosts.iter().flat_map(|h| &h.paths) {
            let Some(bare) = original_path(&p.path, &m.path_prefix) else {
                continue;
            };
            if !paths.iter().any(|q| q.path == bare) {
                paths.push(ProbePath {
                    path: bare.to_string(),
                    ..p.clone()
                });
            }
        }
        Some(Host {
            domain: m.host.clone(),
            vendor: m.vendor.clone().unwrap_or_else(|| template.vendor.clone()),
            rate: m.rate,
            paths,
            ..template.clone()
        })
    }
}

/// `path` as it is on the original domain of `prefix`: `/image/probe.jpg` → `/probe.jpg`; `None`
/// when it is not under the prefix.
pub fn original_path<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)
        .filter(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ContentCheck, Method, Vendor};
    use crate::model::HostRole;

    fn path(p: &str) -> ProbePath {
        ProbePath {
            path: p.into(),
            method: Method::Get,
            accept_status: vec![200],
            check: Some(ContentCheck::MinSize(1)),
        }
    }

    #[test]
    fn an_original_domain_is_probed_for_its_prefix_objects_without_the_prefix() {
        let host = |domain: &str, vendor: &str, paths: &[&str]| Host {
            domain: domain.into(),
            vendor: vendor.into(),
            role: HostRole::Primary,
            scheme: super::super::Scheme::Https,
            port: Some(8443),
            rate: 1.0,
            paths: paths.iter().map(|p| path(p)).collect(),
        };
        let merged = |host: &str, prefix: &str, vendor: Option<&str>| MergedHost {
            host: host.into(),
            path_prefix: prefix.into(),
            rate: 0.5,
            vendor: vendor.map(str::to_string),
        };
        let config = Config {
            vendors: vec![Vendor {
                name: "alpha".into(),
                ca_file: None,
                system_roots: true,
            }],
            hosts: vec![
                host("cdn.test", "alpha", &["/image/a.jpg", "/imagex/b.jpg"]),
                host("bak.test", "beta", &["/image/a.jpg", "/image/c.jpg"]),
            ],
            merged_hosts: vec![
                merged("image.test", "/image", Some("origin")),
                merged("video.test", "/video", None),
            ],
            ..Config::default()
        };
        let origins = config.origin_hosts();
        assert_eq!(origins.len(), 1, "no host probes /video");
        let o = &origins[0];
        assert_eq!(
            (o.domain.as_str(), o.vendor.as_str()),
            ("image.test", "origin")
        );
        assert_eq!((o.port, o.rate), (Some(8443), 0.5));
        let paths: Vec<&str> = o.paths.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["/a.jpg", "/c.jpg"]);
        assert_eq!(original_path("/imagex/b.jpg", "/image"), None);
    }
}
