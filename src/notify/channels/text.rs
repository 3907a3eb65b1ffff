//! What a notice says, in English or Simplified Chinese, for the person woken at 3 a.m.: a first
//! line with what and where, then the classes, hosts, vendors, regions, the decision, the version,
//! the duration of a resolution, and the incident's page. A notice about our own probing says so
//! and never reads as "CDN down". Markup is the channels' business: this gives lines.

use crate::config::{Language, Severity};
use crate::engine::{ClassCount, FaultScope};
use crate::incident::{Decision, Refusal};

use super::super::{Change, Notice};

/// Items of a list (hosts, regions …) shown before "(+N more)".
const LIST_SHOWN: usize = 10;

/// One line of a message, before markup.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Line {
    /// A notice's first line: what and where.
    Head(String),
    /// A labelled value.
    Field(&'static str, String),
    /// A link with its label.
    Link(&'static str, String),
}

/// The tag a first line starts with: `[CRITICAL]`, `【严重】` …
pub(super) fn tag(n: &Notice, lang: Language) -> &'static str {
    match (n.change, n.severity, lang) {
        (Change::Resolved, _, Language::En) => "[RESOLVED]",
        (Change::Resolved, _, Language::ZhCn) => "【已恢复】",
        (_, Severity::Critical, Language::En) => "[CRITICAL]",
        (_, Severity::Critical, Language::ZhCn) => "【严重】",
        (_, Severity::Warning, Language::En) => "[WARNING]",
        (_, Severity::Warning, Language::ZhCn) => "【警告】",
    }
}

/// The first line of a message of several notices: the worst tag and how many.
pub(super) fn batch_title(notices: &[Notice], folded: usize, lang: Language) -> String {
    let worst = notices
        .iter()
        .max_by_key(|n| match (n.change, n.severity) {
            (Change::Resolved, _) => 0,
            (_, Severity::Warning) => 1,
            (_, Severity::Critical) => 2,
        })
        .map_or("", |n| tag(n, lang));
    let count = notices.len() + folded;
    match lang {
        Language::En => format!("{worst} {count} incident changes"),
        Language::ZhCn => format!("{worst}{count} 条故障变更"),
    }
}

/// The closing line of a message that could not say everything.
pub(super) fn more(count: usize, lang: Language) -> String {
    match lang {
        Language::En => format!("… (+{count} more)"),
        Language::ZhCn => format!("…（另有 {count} 条）"),
    }
}

/// A notice's first line.
pub(super) fn headline(n: &Notice, lang: Language) -> String {
    let tag = tag(n, lang);
    let scope = scope(&n.scope, lang);
    let lasted = n.duration().map(|d| duration(d, lang)).unwrap_or_default();
    let probing = n.about_probing();
    match lang {
        Language::En => {
            let side = if probing {
                "our own probing, not the CDN: "
            } else {
                ""
            };
            match n.change {
                Change::Opened => format!("{tag} {side}{scope} fails"),
                Change::Widened => format!("{tag} widened: {side}{scope} fails"),
                Change::Reopened => format!("{tag} reopened: {side}{scope} fails again"),
                Change::Resolved => format!("{tag} {side}{scope} works again after {lasted}"),
                Change::Decided => format!("{tag} {scope}: {}", short(n, lang)),
            }
        }
        Language::ZhCn => {
            let side = if probing {
                "我方探测问题（非 CDN 故障）："
            } else {
                ""
            };
            match n.change {
                Change::Opened => format!("{tag}{side}{scope}故障"),
                Change::Widened => format!("{tag}范围扩大：{side}{scope}故障"),
                Change::Reopened => format!("{tag}再次故障：{side}{scope}"),
                Change::Resolved => format!("{tag}{side}{scope}已恢复，持续 {lasted}"),
                Change::Decided => format!("{tag}{scope}：{}", short(n, lang)),
            }
        }
    }
}

/// What was decided, in a few words, for a first line.
fn short(n: &Notice, lang: Language) -> String {
    let zh = lang == Language::ZhCn;
    match &n.decision {
        // Fail-open puts a host back because disabling every host would leave clients none.
        Some(Decision::Flip {
            host,
            reason: crate::engine::Reason::FailOpen,
            ..
        }) => {
            if zh {
                format!("fail-open，保留 {host} 启用（否则无可用域名）")
            } else {
                format!("fail-open, {host} kept enabled (else no host would be left)")
            }
        }
        Some(Decision::Flip { host, enabled, .. }) => match (enabled, zh) {
            (false, false) => format!("{host} disabled"),
            (true, false) => format!("{host} enabled again"),
            (false, true) => format!("{host} 已停用"),
            (true, true) => format!("{host} 已恢复启用"),
        },
        Some(Decision::Merge {
            prefix,
            rolled_back,
            ..
        }) => match (rolled_back, zh) {
            (true, false) => format!("merge of {prefix} rolled back"),
            (false, false) => format!("merge of {prefix} restored"),
            (true, true) => format!("{prefix} 的合并已回滚"),
            (false, true) => format!("{prefix} 的合并已恢复"),
        },
        Some(Decision::Refused {
            refusal: Refusal::FailOpen,
            host,
        }) => {
            let host = host.as_deref().unwrap_or("");
            if zh {
                format!("fail-open，保留 {host} 启用")
            } else {
                format!("fail-open, {host} kept enabled")
            }
        }
        Some(Decision::Refused {
            refusal: Refusal::Freeze,
            ..
        }) => if zh {
            "引擎冻结，未做变更"
        } else {
            "engine frozen, nothing changed"
        }
        .into(),
        _ => if zh {
            "未做变更"
        } else {
            "nothing changed"
        }
        .into(),
    }
}

/// Every line of one notice, the first line first and its page last.
pub(super) fn lines(n: &Notice, lang: Language) -> Vec<Line> {
    let zh = lang == Language::ZhCn;
    let label = |en: &'static str, cn: &'static str| if zh { cn } else { en };
    let mut out = vec![Line::Head(headline(n, lang))];
    if n.about_probing() {
        out.push(Line::Field(label("Note", "说明"), probing_note(n, lang)));
    }
    let opened = n.opened_at.format("%Y-%m-%d %H:%M UTC");
    let incident = if zh {
        format!("#{}，开始于 {opened}", n.incident)
    } else {
        format!("#{}, opened {opened}", n.incident)
    };
    out.push(Line::Field(label("Incident", "故障单"), incident));
    let classes: Vec<String> = n.classes.iter().map(|c| class(c, lang)).collect();
    let lists = [
        (label("Classes", "类别"), classes),
        (label("Hosts", "主机"), n.hosts.clone()),
        (label("Vendors", "厂商"), n.vendors.clone()),
        (label("Regions", "地区"), n.regions.clone()),
    ];
    for (name, items) in lists {
        if !items.is_empty() {
            out.push(Line::Field(name, list(&items, lang)));
        }
    }
    if let Some(d) = &n.decision {
        out.push(Line::Field(label("Decision", "决定"), decision(d, lang)));
    }
    if let Some(v) = n.version {
        out.push(Line::Field(label("Version", "版本"), v.to_string()));
    }
    if let Some(d) = n.duration() {
        out.push(Line::Field(label("Lasted", "持续时间"), duration(d, lang)));
    }
    out.push(Line::Link(
        label("Incident page", "故障页面"),
        n.link.clone(),
    ));
    out
}

fn probing_note(n: &Notice, lang: Language) -> String {
    let region = match &n.scope {
        FaultScope::ProbeNetwork { region } => region.as_str(),
        _ => "",
    };
    match lang {
        Language::En => format!(
            "our own probe network in {region} fails; its results do not vote and nothing is flipped for it. The CDN is not known to be down."
        ),
        Language::ZhCn => format!(
            "这是我方在 {region} 的探测网络故障，其结果不参与投票，不会因此切换主机；不代表 CDN 故障。"
        ),
    }
}

/// `items`, the first ten and "(+N more)".
fn list(items: &[String], lang: Language) -> String {
    let sep = if lang == Language::ZhCn { "、" } else { ", " };
    let shown = items[..items.len().min(LIST_SHOWN)].join(sep);
    match items.len().saturating_sub(LIST_SHOWN) {
        0 => shown,
        rest => match lang {
            Language::En => format!("{shown} (+{rest} more)"),
            Language::ZhCn => format!("{shown}（另有 {rest} 个）"),
        },
    }
}

/// A scope as the reader names it.
pub(super) fn scope(s: &FaultScope, lang: Language) -> String {
    if lang == Language::En {
        return s.to_string();
    }
    match s {
        FaultScope::Edge { region, edge } => format!("边缘节点 {edge}（{region}）"),
        FaultScope::Resolver { region, resolver } => format!("解析器 {region}/{resolver}"),
        FaultScope::RegionVendor { region, vendor } => format!("厂商 {vendor} 在 {region}"),
        FaultScope::Vendor { vendor } => format!("厂商 {vendor} 在所有地区"),
        FaultScope::PrefixVendor { prefix, vendor } => format!("厂商 {vendor} 的路径前缀 {prefix}"),
        FaultScope::Origin { path } => format!("所有厂商的路径 {path}（源站）"),
        FaultScope::ProbeNetwork { region } => format!("{region} 的探测网络"),
    }
}

fn class(c: &ClassCount, lang: Language) -> String {
    match (lang, c.phase) {
        (Language::ZhCn, Some(phase)) => format!("{}（{phase} 阶段）", c.outcome),
        _ => c.to_string(),
    }
}

fn decision(d: &Decision, lang: Language) -> String {
    if lang == Language::En {
        return d.to_string();
    }
    let version = |v: &Option<i64>| match v {
        Some(v) => format!("，版本 {v}"),
        None => "，尚未发布".into(),
    };
    match d {
        Decision::Flip {
            host,
            enabled,
            reason,
            version: v,
        } => {
            let verb = if *enabled {
                "已恢复启用"
            } else {
                "已停用"
            };
            format!("{host} {verb}（{}）{}", reason.as_str(), version(v))
        }
        Decision::Merge {
            prefix,
            rolled_back,
            version: v,
        } => {
            let what = if *rolled_back {
                "合并已回滚（rate 0）：客户端从原域名加载"
            } else {
                "合并已恢复（按配置的 rate）"
            };
            format!("前缀 {prefix}：{what}{}", version(v))
        }
        Decision::Refused { refusal, host } => {
            let why = refusal_zh(*refusal);
            match host {
                Some(h) => format!("{h}：{why}"),
                None => why.into(),
            }
        }
    }
}

fn refusal_zh(r: Refusal) -> &'static str {
    match r {
        Refusal::BelowQuorum => "未做变更：故障地区数不足法定数",
        Refusal::Freeze => "未做变更：有效证据的地区太少（冻结）",
        Refusal::FailOpen => "保持启用：停用会导致没有可用主机（fail-open）",
        Refusal::Origin => "未做变更：源站在所有厂商上都故障",
        Refusal::ProbeNetwork => "未做变更：我方探测网络故障，其结果不参与投票",
    }
}

/// `d` as `1h 5m` / `1小时5分`.
pub(super) fn duration(d: chrono::Duration, lang: Language) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins, secs) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    let units: [(i64, &str, &str); 4] = [
        (days, "d", "天"),
        (hours, "h", "小时"),
        (mins, "m", "分"),
        (secs, "s", "秒"),
    ];
    let parts: Vec<String> = units
        .iter()
        .skip_while(|(v, ..)| *v == 0)
        .take(2)
        .filter(|(v, ..)| *v > 0)
        .map(|(v, en, zh)| match lang {
            Language::En => format!("{v}{en}"),
            Language::ZhCn => format!("{v}{zh}"),
        })
        .collect();
    match (parts.is_empty(), lang) {
        (true, Language::En) => "0s".into(),
        (true, Language::ZhCn) => "0秒".into(),
        (false, Language::En) => parts.join(" "),
        (false, Language::ZhCn) => parts.concat(),
    }
}
