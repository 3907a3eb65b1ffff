//! Which channels a notice goes to: the first `[[notify.routes]]` entry whose matchers all match
//! (scope kind, vendor, host, severity; an empty matcher matches anything), or every channel when
//! no route is configured. A notice no route matches goes nowhere (and is counted as unrouted).

use crate::config::{NotifySettings, RouteSettings};

use super::Notice;

/// The names of the channels `notice` goes to.
pub fn channels_for<'a>(settings: &'a NotifySettings, notice: &Notice) -> Vec<&'a str> {
    if settings.routes.is_empty() {
        return settings.channels.iter().map(|c| c.name.as_str()).collect();
    }
    settings
        .routes
        .iter()
        .find(|r| matches(r, notice))
        .map(|r| r.channels.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

fn matches(r: &RouteSettings, n: &Notice) -> bool {
    let any =
        |want: &[String], have: &[String]| want.is_empty() || have.iter().any(|h| want.contains(h));
    (r.scopes.is_empty() || r.scopes.iter().any(|k| k == n.scope.kind()))
        && any(&r.vendors, &n.vendors)
        && any(&r.hosts, &n.hosts)
        && r.severity.is_none_or(|s| s == n.severity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ChannelKind, ChannelSettings, Severity};
    use crate::engine::FaultScope;
    use crate::notify::Change;

    fn notice(scope: FaultScope, severity: Severity, vendors: &[&str]) -> Notice {
        Notice {
            incident: 1,
            seq: 0,
            change: Change::Opened,
            at: chrono::DateTime::UNIX_EPOCH,
            scope,
            severity,
            classes: Vec::new(),
            hosts: vec!["cdn.shop.test".into()],
            vendors: vendors.iter().map(|v| v.to_string()).collect(),
            regions: Vec::new(),
            decision: None,
            version: None,
            opened_at: chrono::DateTime::UNIX_EPOCH,
            resolved_at: None,
            link: "/incidents/1".into(),
        }
    }

    fn settings(routes: Vec<RouteSettings>) -> NotifySettings {
        let channel = |name: &str| ChannelSettings {
            name: name.into(),
            kind: ChannelKind::Slack,
            url_file: None,
            url_env: Some("X".into()),
            secret_file: None,
            secret_env: None,
        };
        NotifySettings {
            channels: vec![channel("pager"), channel("chat")],
            routes,
            ..NotifySettings::default()
        }
    }

    #[test]
    fn without_routes_everything_goes_everywhere() {
        let n = notice(
            FaultScope::Vendor {
                vendor: "alpha".into(),
            },
            Severity::Critical,
            &["alpha"],
        );
        assert_eq!(channels_for(&settings(vec![]), &n), ["pager", "chat"]);
    }

    #[test]
    fn the_first_matching_route_decides_and_the_last_catches_the_rest() {
        let routes = vec![
            RouteSettings {
                channels: vec!["pager".into()],
                severity: Some(Severity::Critical),
                vendors: vec!["alpha".into()],
                ..RouteSettings::default()
            },
            RouteSettings {
                channels: vec!["chat".into()],
                ..RouteSettings::default()
            },
        ];
        let s = settings(routes);
        let vendor = FaultScope::Vendor {
            vendor: "alpha".into(),
        };
        assert_eq!(
            channels_for(&s, &notice(vendor.clone(), Severity::Critical, &["alpha"])),
            ["pager"]
        );
        assert_eq!(
            channels_for(&s, &notice(vendor.clone(), Severity::Warning, &["alpha"])),
            ["chat"]
        );
        assert_eq!(
            channels_for(&s, &notice(vendor, Severity::Critical, &["beta"])),
            ["chat"]
        );
    }

    #[test]
    fn a_route_by_scope_kind_leaves_the_others_unrouted() {
        let routes = vec![RouteSettings {
            channels: vec!["chat".into()],
            scopes: vec!["probe_network".into()],
            ..RouteSettings::default()
        }];
        let s = settings(routes);
        let probe = FaultScope::ProbeNetwork {
            region: "cn-east".into(),
        };
        assert_eq!(
            channels_for(&s, &notice(probe, Severity::Warning, &[])),
            ["chat"]
        );
        let edge = FaultScope::Edge {
            region: "cn-east".into(),
            edge: "127.0.0.1".parse().unwrap(),
        };
        assert!(channels_for(&s, &notice(edge, Severity::Warning, &[])).is_empty());
    }
}
