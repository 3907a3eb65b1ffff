//! The host-list document's content with the article's field names (section 3.2), and the served
//! document around it: version number, timestamps, key id. Data only: no signing, no I/O.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::VALIDITY;
use crate::config::Config;

/// One entry of `hostListConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    /// The domain.
    pub host: String,
    /// The share of clients that may use it, 0..1.
    pub rate: f64,
    /// Whether the engine (or an operator) took it out.
    pub is_disabled: bool,
}

/// One entry of `mergeHostConfigs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeEntry {
    /// The original domain.
    pub host: String,
    /// The prefix it is served under on the unified domain.
    pub path_prefix: String,
    /// The share of clients that use the merge, 0..1.
    pub rate: f64,
}

/// What a version says, without its version number and timestamps: equal content, no new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// The hosts in client order.
    pub host_list_config: Vec<HostEntry>,
    /// The merged original domains.
    pub merge_host_configs: Vec<MergeEntry>,
    /// How often clients HEAD-probe disabled hosts, in ms.
    pub revive_probe_interval: u64,
    /// How often a client asks for the host list, in ms.
    pub config_request_interval: u64,
    /// Addresses clients ping to tell their own network is up.
    pub public_ip_list: Vec<String>,
}

impl Content {
    /// The document content for `config` with the engine's `disabled` hosts, hosts in client order
    /// (primary, same-vendor backup, other-vendor backup; config order within a role).
    pub fn new(config: &Config, disabled: impl Fn(&str) -> bool) -> Content {
        let mut hosts: Vec<&crate::config::Host> = config.hosts.iter().collect();
        hosts.sort_by_key(|h| h.role);
        Content {
            host_list_config: hosts
                .iter()
                .map(|h| HostEntry {
                    host: h.domain.clone(),
                    rate: h.rate,
                    is_disabled: disabled(&h.domain),
                })
                .collect(),
            merge_host_configs: config
                .merged_hosts
                .iter()
                .map(|m| MergeEntry {
                    host: m.host.clone(),
                    path_prefix: m.path_prefix.clone(),
                    rate: m.rate,
                })
                .collect(),
            revive_probe_interval: config.client.revive_probe_interval_ms,
            config_request_interval: config.client.config_request_interval_ms,
            public_ip_list: config.client.public_ip_list.clone(),
        }
    }

    /// The same content with the merges of `prefixes` rolled back: published with rate 0, so
    /// clients load those URLs from the original domain again (the article, section 6).
    pub fn with_rollbacks(mut self, prefixes: &BTreeSet<String>) -> Content {
        for m in &mut self.merge_host_configs {
            if prefixes.contains(&m.path_prefix) {
                m.rate = 0.0;
            }
        }
        self
    }

    /// The prefixes this content rolls back: published with rate 0 while `config` gives them a rate.
    pub fn rollbacks(&self, config: &Config) -> BTreeSet<String> {
        let configured = |prefix: &str| {
            config
                .merged_hosts
                .iter()
                .any(|m| m.path_prefix == prefix && m.rate > 0.0)
        };
        self.merge_host_configs
            .iter()
            .filter(|m| m.rate == 0.0 && configured(&m.path_prefix))
            .map(|m| m.path_prefix.clone())
            .collect()
    }

    /// The stored text of the content (`versions.content`): equal text, equal content.
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).expect("content serializes")
    }

    /// Reads [`Content::canonical`] back; `None` when the text is not a content. The one place a
    /// stored content is parsed.
    pub fn parse(text: &str) -> Option<Content> {
        serde_json::from_str(text).ok()
    }
}

/// The served document: the article's fields, then `configVersion`, `issuedAt`, `expiresAt`, `keyId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// The hosts in client order.
    pub host_list_config: Vec<HostEntry>,
    /// The merged original domains.
    pub merge_host_configs: Vec<MergeEntry>,
    /// How often clients HEAD-probe disabled hosts, in ms.
    pub revive_probe_interval: u64,
    /// How often a client asks for the host list, in ms.
    pub config_request_interval: u64,
    /// The version; a client keeps the largest it verified.
    pub config_version: i64,
    /// Addresses clients ping to tell their own network is up.
    pub public_ip_list: Vec<String>,
    /// When the version was issued.
    pub issued_at: DateTime<Utc>,
    /// When a client should stop trusting this document.
    pub expires_at: DateTime<Utc>,
    /// The id of the key that signed it.
    pub key_id: String,
}

impl Document {
    pub(super) fn new(
        content: &Content,
        version: i64,
        issued_at: DateTime<Utc>,
        key_id: &str,
    ) -> Document {
        let c = content.clone();
        Document {
            host_list_config: c.host_list_config,
            merge_host_configs: c.merge_host_configs,
            revive_probe_interval: c.revive_probe_interval,
            config_request_interval: c.config_request_interval,
            config_version: version,
            public_ip_list: c.public_ip_list,
            issued_at,
            expires_at: issued_at + VALIDITY,
            key_id: key_id.to_string(),
        }
    }
}
