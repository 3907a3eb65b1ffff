//! What changed between two consecutive published versions, field by field, read from the stored
//! content (`versions.content`, the document without its number and timestamps). Pure: no I/O.

use std::fmt;

use crate::publish::{Content, HostEntry, MergeEntry};

/// One difference between a version and the one before it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Change {
    /// The very first version: every host with its state.
    First(Vec<HostEntry>),
    Disabled(String),
    Enabled(String),
    HostAdded(HostEntry),
    HostRemoved(String),
    HostRate {
        host: String,
        from: f64,
        to: f64,
    },
    /// The hosts kept their set but not their failover order.
    HostOrder {
        from: Vec<String>,
        to: Vec<String>,
    },
    MergeAdded(MergeEntry),
    MergeRemoved(MergeEntry),
    MergeRate {
        merge: MergeEntry,
        from: f64,
    },
    ReviveInterval {
        from_ms: u64,
        to_ms: u64,
    },
    RequestInterval {
        from_ms: u64,
        to_ms: u64,
    },
    PublicIps {
        from: Vec<String>,
        to: Vec<String>,
    },
}

/// The changes from `old` to `new`, hosts first (in `new`'s order), then merged prefixes, then
/// the client fields. Empty when the content is equal (a re-signing).
pub(super) fn changes(old: &Content, new: &Content) -> Vec<Change> {
    let mut out = host_changes(&old.host_list_config, &new.host_list_config);
    out.extend(merge_changes(
        &old.merge_host_configs,
        &new.merge_host_configs,
    ));
    if old.revive_probe_interval != new.revive_probe_interval {
        out.push(Change::ReviveInterval {
            from_ms: old.revive_probe_interval,
            to_ms: new.revive_probe_interval,
        });
    }
    if old.config_request_interval != new.config_request_interval {
        out.push(Change::RequestInterval {
            from_ms: old.config_request_interval,
            to_ms: new.config_request_interval,
        });
    }
    if old.public_ip_list != new.public_ip_list {
        out.push(Change::PublicIps {
            from: old.public_ip_list.clone(),
            to: new.public_ip_list.clone(),
        });
    }
    out
}

fn host_changes(old: &[HostEntry], new: &[HostEntry]) -> Vec<Change> {
    let mut out = Vec::new();
    for n in new {
        match old.iter().find(|o| o.host == n.host) {
            None => out.push(Change::HostAdded(n.clone())),
            Some(o) => {
                if o.is_disabled != n.is_disabled {
                    out.push(if n.is_disabled {
                        Change::Disabled(n.host.clone())
                    } else {
                        Change::Enabled(n.host.clone())
                    });
                }
                if o.rate != n.rate {
                    out.push(Change::HostRate {
                        host: n.host.clone(),
                        from: o.rate,
                        to: n.rate,
                    });
                }
            }
        }
    }
    for o in old.iter().filter(|o| !new.iter().any(|n| n.host == o.host)) {
        out.push(Change::HostRemoved(o.host.clone()));
    }
    // Order matters to clients (the first enabled host wins), so a reordering is a change of its own.
    let kept = |list: &[HostEntry], other: &[HostEntry]| -> Vec<String> {
        list.iter()
            .filter(|h| other.iter().any(|x| x.host == h.host))
            .map(|h| h.host.clone())
            .collect()
    };
    let (from, to) = (kept(old, new), kept(new, old));
    if from != to {
        out.push(Change::HostOrder { from, to });
    }
    out
}

fn merge_changes(old: &[MergeEntry], new: &[MergeEntry]) -> Vec<Change> {
    let same = |a: &MergeEntry, b: &MergeEntry| a.host == b.host && a.path_prefix == b.path_prefix;
    let mut out = Vec::new();
    for n in new {
        match old.iter().find(|o| same(o, n)) {
            None => out.push(Change::MergeAdded(n.clone())),
            Some(o) if o.rate != n.rate => out.push(Change::MergeRate {
                merge: n.clone(),
                from: o.rate,
            }),
            Some(_) => {}
        }
    }
    for o in old.iter().filter(|o| !new.iter().any(|n| same(o, n))) {
        out.push(Change::MergeRemoved(o.clone()));
    }
    out
}

fn state(disabled: bool) -> &'static str {
    if disabled { "disabled" } else { "enabled" }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::First(hosts) => {
                let list: Vec<String> = hosts
                    .iter()
                    .map(|h| format!("{} {}", h.host, state(h.is_disabled)))
                    .collect();
                write!(f, "first version: {}", list.join(", "))
            }
            Change::Disabled(h) => write!(f, "{h}: enabled → disabled"),
            Change::Enabled(h) => write!(f, "{h}: disabled → enabled"),
            Change::HostAdded(h) => write!(
                f,
                "{}: added ({}, rate {})",
                h.host,
                state(h.is_disabled),
                h.rate
            ),
            Change::HostRemoved(h) => write!(f, "{h}: removed"),
            Change::HostRate { host, from, to } => write!(f, "{host}: rate {from} → {to}"),
            Change::HostOrder { from, to } => {
                write!(f, "host order: {} → {}", from.join(", "), to.join(", "))
            }
            Change::MergeAdded(m) => write!(
                f,
                "merged {} {}: added (rate {})",
                m.host, m.path_prefix, m.rate
            ),
            Change::MergeRemoved(m) => write!(f, "merged {} {}: removed", m.host, m.path_prefix),
            Change::MergeRate { merge, from } => write!(
                f,
                "merged {} {}: rate {from} → {}",
                merge.host, merge.path_prefix, merge.rate
            ),
            Change::ReviveInterval { from_ms, to_ms } => {
                write!(f, "reviveProbeInterval: {from_ms} → {to_ms} ms")
            }
            Change::RequestInterval { from_ms, to_ms } => {
                write!(f, "configRequestInterval: {from_ms} → {to_ms} ms")
            }
            Change::PublicIps { from, to } => {
                write!(f, "publicIpList: {} → {}", from.join(", "), to.join(", "))
            }
        }
    }
}

/// The lines shown for a version: its changes from `older` (the version before it, if any), read
/// from their stored content. Unreadable content is said, never an error.
pub(super) fn describe(older: Option<&str>, newer: &str) -> Vec<String> {
    let Some(new) = Content::parse(newer) else {
        return vec!["the stored content of this version cannot be read".into()];
    };
    let found = match older.map(Content::parse) {
        None => vec![Change::First(new.host_list_config)],
        Some(None) => {
            return vec!["the stored content of the version before cannot be read".into()];
        }
        Some(Some(old)) => changes(&old, &new),
    };
    if found.is_empty() {
        return vec!["no change (the same content, signed again)".into()];
    }
    found.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, rate: f64, disabled: bool) -> HostEntry {
        HostEntry {
            host: name.into(),
            rate,
            is_disabled: disabled,
        }
    }

    fn merge(host: &str, prefix: &str, rate: f64) -> MergeEntry {
        MergeEntry {
            host: host.into(),
            path_prefix: prefix.into(),
            rate,
        }
    }

    fn content() -> Content {
        Content {
            host_list_config: vec![
                host("a.test", 1.0, false),
                host("b.test", 1.0, false),
                host("c.test", 0.5, false),
            ],
            merge_host_configs: vec![merge("img.test", "/image", 1.0)],
            revive_probe_interval: 600_000,
            config_request_interval: 600_000,
            public_ip_list: vec!["223.5.5.5".into()],
        }
    }

    fn lines(old: &Content, new: &Content) -> Vec<String> {
        changes(old, new).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn equal_content_has_no_changes() {
        assert!(changes(&content(), &content()).is_empty());
    }

    #[test]
    fn a_host_going_down_and_coming_back_reads_as_enabled_to_disabled_and_back() {
        let old = content();
        let mut new = content();
        new.host_list_config[0].is_disabled = true;
        new.host_list_config[1].is_disabled = true;
        assert_eq!(
            changes(&old, &new),
            vec![
                Change::Disabled("a.test".into()),
                Change::Disabled("b.test".into())
            ]
        );
        assert_eq!(
            lines(&new, &old),
            ["a.test: disabled → enabled", "b.test: disabled → enabled"]
        );
    }

    #[test]
    fn rates_of_hosts_and_merged_prefixes_show_both_values() {
        let old = content();
        let mut new = content();
        new.host_list_config[2].rate = 0.25;
        new.merge_host_configs[0].rate = 0.1;
        assert_eq!(
            lines(&old, &new),
            [
                "c.test: rate 0.5 → 0.25",
                "merged img.test /image: rate 1 → 0.1"
            ]
        );
    }

    #[test]
    fn merged_prefixes_added_and_removed_are_named_by_host_and_prefix() {
        let old = content();
        let mut new = content();
        new.merge_host_configs = vec![merge("img.test", "/img", 1.0), merge("x.test", "/x", 0.5)];
        assert_eq!(
            lines(&old, &new),
            [
                "merged img.test /img: added (rate 1)",
                "merged x.test /x: added (rate 0.5)",
                "merged img.test /image: removed",
            ]
        );
    }

    #[test]
    fn intervals_and_the_public_ip_list_are_compared() {
        let old = content();
        let mut new = content();
        new.revive_probe_interval = 300_000;
        new.config_request_interval = 60_000;
        new.public_ip_list.push("180.76.76.76".into());
        assert_eq!(
            lines(&old, &new),
            [
                "reviveProbeInterval: 600000 → 300000 ms",
                "configRequestInterval: 600000 → 60000 ms",
                "publicIpList: 223.5.5.5 → 223.5.5.5, 180.76.76.76",
            ]
        );
    }

    #[test]
    fn hosts_added_removed_and_reordered_are_each_one_change() {
        let old = content();
        let mut new = content();
        new.host_list_config = vec![
            host("b.test", 1.0, false),
            host("a.test", 1.0, false),
            host("d.test", 1.0, true),
        ];
        assert_eq!(
            lines(&old, &new),
            [
                "d.test: added (disabled, rate 1)",
                "c.test: removed",
                "host order: a.test, b.test → b.test, a.test",
            ]
        );
    }

    #[test]
    fn the_first_version_lists_every_host_and_unreadable_content_is_said() {
        let c = content().canonical();
        assert_eq!(
            describe(None, &c),
            ["first version: a.test enabled, b.test enabled, c.test enabled"]
        );
        assert_eq!(
            describe(Some(&c), &c),
            ["no change (the same content, signed again)"]
        );
        assert_eq!(
            describe(Some(&c), "{"),
            ["the stored content of this version cannot be read"]
        );
        assert_eq!(
            describe(Some("nope"), &c),
            ["the stored content of the version before cannot be read"]
        );
    }
}
