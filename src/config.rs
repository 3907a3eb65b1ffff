//! The typed configuration, loaded from TOML and validated once.
//!
//! Loading never stops at the first problem: syntax errors, unknown keys, wrong types and semantic
//! mistakes (a host naming a vendor that does not exist, a resolver with two transports …) are all
//! collected, each with its line, column and field path, so `check-config` can list every one.
//! Values are parsed into types there and then (a resolver's [`Transport`], a path's
//! [`ContentCheck`], a region's [`ClientSubnet`] and control-target addresses), so no caller
//! parses them again. Defaults are named constants with their unit in the name.
//!
//! Layout: `settings` (the tunable sections and their defaults), `hosts` (what is probed),
//! `origins` (the merged prefixes' original domains, probed too), `regions` (from where), `http` (the HTTP server's edge), `load` + `locate` (text to config, problems placed), `validate` (what
//! types cannot catch), `findings` (the problems a parse collects), `problem` (how they are
//! reported), `summary` (what `check-config` prints), `bounds` (the range of every number).
//! Dependencies go one way: `load` → `validate` → `hosts`/`regions`/`bounds` → `findings` →
//! `locate`.

mod agents;
mod bounds;
mod findings;
mod hosts;
mod http;
mod live;
mod load;
mod locate;
mod notify;
mod origins;
mod problem;
mod regions;
mod settings;
mod summary;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use agents::{AgentSettings, MIN_AGENT_TOKEN_CHARS, read_token_file, valid_agent_id};
pub use hosts::{ContentCheck, Host, MergedHost, Method, ProbePath, Scheme, Vendor};
pub use http::*;
pub use live::LiveConfig;
pub use locate::FieldPath;
pub use notify::*;
pub use origins::original_path;
pub use problem::{ConfigError, Problem};
pub use regions::{
    ClientSubnet, DohUrl, Region, ResolverConfig, Transport, ValueError, split_doh_url,
};
pub use settings::*;
pub use summary::Summary;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How probes run: timing, caps, concurrency (`[probe]`).
    #[serde(default)]
    pub probe: ProbeSettings,
    /// What clients are told besides the hosts (`[client]`).
    #[serde(default)]
    pub client: ClientSettings,
    /// The CDN vendors (`[[vendors]]`).
    #[serde(default)]
    pub vendors: Vec<Vendor>,
    /// The domains probed and published (`[[hosts]]`).
    #[serde(default)]
    pub hosts: Vec<Host>,
    /// Original domains merged into the unified one (`[[merged_hosts]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_hosts: Vec<MergedHost>,
    /// Where probes run from (`[[regions]]`).
    #[serde(default)]
    pub regions: Vec<Region>,
    /// Storage, rollups and retention (`[store]`).
    #[serde(default)]
    pub store: StoreSettings,
    /// The decision engine's thresholds (README: "Decision rules").
    #[serde(default)]
    pub engine: crate::engine::Policy,
    /// The on-call pages (README: "Dashboard").
    #[serde(default)]
    pub dashboard: DashboardSettings,
    /// The HTTP server's limits per listener (`[http]`; README: "Listeners and limits").
    #[serde(default)]
    pub http: HttpSettings,
    /// Who is told about incidents (`[notify]`; README: "Notifications").
    #[serde(default)]
    pub notify: NotifySettings,
    /// The regional agents (`[[agents]]`; README: "Running agents in regions"). A region with no
    /// agent is probed by the service itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentSettings>,
    /// The directory relative paths in the file (CA files) are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// One probe series: what is probed (host, path) and from where (region, resolver).
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// The host probed.
    pub host: &'a Host,
    /// The object probed on it.
    pub path: &'a ProbePath,
    /// The region probed from.
    pub region: &'a Region,
    /// The resolver the region asks.
    pub resolver: &'a ResolverConfig,
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
        load::parse(text, file, base_dir)
    }

    /// Serializes back to TOML (the lab writes its config this way).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
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

    /// The vendor called `name`.
    pub fn vendor(&self, name: &str) -> Option<&Vendor> {
        self.vendors.iter().find(|v| v.name == name)
    }

    /// The host whose domain is `domain`.
    pub fn host(&self, domain: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.domain == domain)
    }

    /// A vendor's CA file, resolved against the config's directory.
    pub fn ca_path(&self, vendor: &Vendor) -> Option<PathBuf> {
        vendor.ca_file.as_ref().map(|p| self.base_dir.join(p))
    }

    /// The agent called `id`.
    pub fn agent(&self, id: &str) -> Option<&AgentSettings> {
        self.agents.iter().find(|a| a.id == id)
    }

    /// The agent that speaks for `region`, if one does.
    pub fn agent_of(&self, region: &str) -> Option<&AgentSettings> {
        self.agents
            .iter()
            .find(|a| a.regions.iter().any(|r| r == region))
    }

    /// This config with only the regions no agent speaks for: what the service probes itself.
    pub fn locally_probed(&self) -> Config {
        let mut local = self.clone();
        local.regions.retain(|r| self.agent_of(&r.name).is_none());
        local
    }

    /// What agent `id` is told to probe: the probe settings, vendors (their CA files left out:
    /// the assignment carries their certificates), hosts, merged hosts and the engine's rules
    /// (its confirmations), and only the agent's own regions. Nothing else of the file — no
    /// store, notify, dashboard, HTTP or other agents' settings — leaves the service.
    pub fn for_agent(&self, id: &str) -> Option<Config> {
        let agent = self.agent(id)?;
        let vendors = self
            .vendors
            .iter()
            .map(|v| Vendor {
                ca_file: None,
                ..v.clone()
            })
            .collect();
        Some(Config {
            probe: self.probe.clone(),
            vendors,
            hosts: self.hosts.clone(),
            merged_hosts: self.merged_hosts.clone(),
            regions: (self.regions.iter())
                .filter(|r| agent.regions.contains(&r.name))
                .cloned()
                .collect(),
            engine: self.engine.clone(),
            ..Config::default()
        })
    }
}

#[cfg(test)]
mod tests;
