//! Who is told about incidents (`[notify]`): the channels (Alertmanager, an Alertmanager-style
//! webhook, DingTalk, Feishu/Lark, WeCom and Slack robots), where each one's URL and signing secret
//! are read from (a file or an environment variable, never the config file itself), the routes
//! from an incident to its channels, the language of the texts, and the grouping window. Owns the
//! defaults and checks; `notify` sends. Read at start: a reload does not change them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::findings::Findings;
use super::locate::FieldPath;

/// Default time notices of one channel are gathered into one message.
pub const DEFAULT_GROUP_WINDOW_MS: u64 = 10_000;
/// Default attempts at one message before it is given up (and shown as failed).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Default interval at which open incidents are pushed to Alertmanager again (half of its default
/// `resolve_timeout` of 5 minutes would be 150 s; one minute leaves room for a lost push).
pub const DEFAULT_ALERTMANAGER_RESEND_MS: u64 = 60_000;
/// Longest grouping window and resend interval: ten minutes.
const MAX_WINDOW_MS: u64 = 600_000;
/// Most attempts at one message.
const MAX_ATTEMPTS_BOUND: u32 = 100;

/// The language of the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Language {
    /// English.
    #[default]
    #[serde(rename = "en")]
    En,
    /// Simplified Chinese.
    #[serde(rename = "zh-CN")]
    ZhCn,
}

/// What kind of receiver a channel is; each has its own format, signature and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Alertmanager's v2 API: `POST /api/v2/alerts` at the URL's base.
    Alertmanager,
    /// Alertmanager's webhook payload (version 4), POSTed to the URL.
    Webhook,
    /// A DingTalk group robot (markdown; signed when a secret is given).
    Dingtalk,
    /// A Feishu/Lark custom bot (a post; signed when a secret is given).
    Feishu,
    /// A WeCom group robot (markdown).
    Wecom,
    /// A Slack incoming webhook.
    Slack,
}

impl ChannelKind {
    /// The one spelling, as in the config and the `channel` label's kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Alertmanager => "alertmanager",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Feishu => "feishu",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Slack => "slack",
        }
    }

    /// Whether the kind signs its messages with a secret.
    pub fn signs(self) -> bool {
        matches!(self, ChannelKind::Dingtalk | ChannelKind::Feishu)
    }
}

/// One receiver (`[[notify.channels]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    /// Its name, as routes and the `channel` label name it.
    pub name: String,
    /// What it is.
    pub kind: ChannelKind,
    /// A file holding its URL (relative to the config file); or `url_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// An environment variable holding its URL; or `url_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// A file holding its signing secret (DingTalk, Feishu); or `secret_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// An environment variable holding its signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
}

/// Where a value is read from.
fn read_secret(
    file: Option<&Path>,
    env: Option<&str>,
    base_dir: &Path,
) -> Result<Option<String>, String> {
    match (file, env) {
        (Some(_), Some(_)) => Err("give a file or an environment variable, not both".into()),
        (Some(f), None) => {
            let path = base_dir.join(f);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let v = text.trim();
            if v.is_empty() {
                return Err(format!("{} is empty", path.display()));
            }
            Ok(Some(v.to_string()))
        }
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_string())),
            _ => Err(format!("the environment variable {var} is not set")),
        },
        (None, None) => Ok(None),
    }
}

impl ChannelSettings {
    /// The channel's URL, read from its file or variable (never shown: it may carry a token).
    pub fn url(&self, base_dir: &Path) -> Result<String, String> {
        read_secret(self.url_file.as_deref(), self.url_env.as_deref(), base_dir)?
            .ok_or_else(|| "a channel needs `url_file` or `url_env`".into())
    }

    /// The channel's signing secret, if it has one.
    pub fn secret(&self, base_dir: &Path) -> Result<Option<String>, String> {
        read_secret(
            self.secret_file.as_deref(),
            self.secret_env.as_deref(),
            base_dir,
        )
    }
}

/// How urgent an incident is: critical when users are (or would be) moved or cannot load, a
/// warning when it is partial or on our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A warning.
    Warning,
    /// Critical.
    Critical,
}

impl Severity {
    /// The one spelling, as in the config and the `severity` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One route (`[[notify.routes]]`): incidents it matches go to its channels. Routes are tried in
/// order and the first that matches decides; a route with no matcher matches everything (the
/// default; put it last). Without routes, everything goes to every channel.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteSettings {
    /// The channels, by name.
    pub channels: Vec<String>,
    /// Scope kinds it matches (`edge`, `vendor` …); empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Vendors it matches; empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vendors: Vec<String>,
    /// Hosts it matches (any of the incident's); empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The severity it matches; none: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// Who is told (`[notify]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// The messages' language: `en` (default) or `zh-CN`.
    pub language: Language,
    /// Notices of one channel within this many ms are one message. Default 10 000.
    pub group_window_ms: u64,
    /// Attempts at one message before it is given up. Default 8.
    pub max_attempts: u32,
    /// Open incidents are pushed to Alertmanager again this often, in ms. Default 60 000.
    pub alertmanager_resend_ms: u64,
    /// The receivers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelSettings>,
    /// The routes; none: everything to every channel.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteSettings>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            language: Language::En,
            group_window_ms: DEFAULT_GROUP_WINDOW_MS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            alertmanager_resend_ms: DEFAULT_ALERTMANAGER_RESEND_MS,
            channels: Vec::new(),
            routes: Vec::new(),
        }
    }
}

impl NotifySettings {
    /// [`NotifySettings::group_window_ms`] as a duration.
    pub fn group_window(&self) -> Duration {
        Duration::from_millis(self.group_window_ms)
    }

    /// [`NotifySettings::alertmanager_resend_ms`] as a duration.
    pub fn alertmanager_resend(&self) -> Duration {
        Duration::from_millis(self.alertmanager_resend_ms)
    }
}

/// The scope kinds a route (or a silence) may name.
pub const SCOPE_KINDS: [&str; 7] = [
    "edge",
    "resolver",
    "region_vendor",
    "vendor",
    "prefix_vendor",
    "origin",
    "probe_network",
];

/// Every problem with `[notify]`, each at its field.
pub(super) fn check(n: &NotifySettings, base_dir: &Path, out: &mut Findings) {
    let at = || FieldPath::root().key("notify");
    if n.group_window_ms > MAX_WINDOW_MS {
        let why = format!("must be at most {MAX_WINDOW_MS} (ten minutes)");
        out.push((at().key("group_window_ms"), why));
    }
    if n.alertmanager_resend_ms < 1_000 || n.alertmanager_resend_ms > MAX_WINDOW_MS {
        let why = format!("must be from 1000 to {MAX_WINDOW_MS}");
        out.push((at().key("alertmanager_resend_ms"), why));
    }
    if n.max_attempts == 0 || n.max_attempts > MAX_ATTEMPTS_BOUND {
        let why = format!("must be from 1 to {MAX_ATTEMPTS_BOUND}");
        out.push((at().key("max_attempts"), why));
    }
    let names = check_channels(n, base_dir, out);
    check_routes(n, &names, out);
}

/// The channels' problems; returns their names.
fn check_channels<'a>(
    n: &'a NotifySettings,
    base_dir: &Path,
    out: &mut Findings,
) -> std::collections::BTreeSet<&'a str> {
    let at = || FieldPath::root().key("notify");
    let mut names = std::collections::BTreeSet::new();
    for (i, c) in n.channels.iter().enumerate() {
        let here = at().key("channels").index(i);
        if c.name.trim().is_empty() || !names.insert(c.name.as_str()) {
            out.push((
                here.key("name"),
                format!("`{}` is empty or used twice", c.name),
            ));
        }
        if let Err(why) = c.url(base_dir) {
            let key = if c.url_env.is_some() {
                "url_env"
            } else {
                "url_file"
            };
            out.push((here.key(key), why));
        }
        match c.secret(base_dir) {
            Err(why) => {
                let key = if c.secret_env.is_some() {
                    "secret_env"
                } else {
                    "secret_file"
                };
                out.push((here.key(key), why));
            }
            Ok(Some(_)) if !c.kind.signs() => out.push((
                here.key("kind"),
                format!("a {} channel takes no signing secret", c.kind.as_str()),
            )),
            Ok(_) => {}
        }
    }
    names
}

/// The routes' problems: each names known channels and scope kinds.
fn check_routes(n: &NotifySettings, names: &std::collections::BTreeSet<&str>, out: &mut Findings) {
    let at = || FieldPath::root().key("notify");
    for (i, r) in n.routes.iter().enumerate() {
        let here = at().key("routes").index(i);
        if r.channels.is_empty() {
            out.push((
                here.key("channels"),
                "a route needs at least one channel".into(),
            ));
        }
        for (j, name) in r.channels.iter().enumerate() {
            if !names.contains(name.as_str()) {
                let known: Vec<&str> = names.iter().copied().collect();
                let why = format!(
                    "no channel is named `{name}` (channels: {})",
                    known.join(", ")
                );
                out.push((here.key("channels").index(j), why));
            }
        }
        for (j, kind) in r.scopes.iter().enumerate() {
            if !SCOPE_KINDS.contains(&kind.as_str()) {
                let why = format!(
                    "`{kind}` is not a scope kind (expected one of {})",
                    SCOPE_KINDS.join(", ")
                );
                out.push((here.key("scopes").index(j), why));
            }
        }
    }
}
