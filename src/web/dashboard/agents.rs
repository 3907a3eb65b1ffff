//! `GET /agents`: one row per configured regional agent — its regions, whether it is up, when it
//! was last heard (by the service's clock), its clock's skew and the round trip that figure stands
//! on (flagged beyond 2 s), its backlog and rate, the assignment it runs, its version, and what of
//! its results was received and refused. With no agent configured, a sentence saying so.
//!
//! Reads only what the fleet keeps ([`crate::fleet::Fleet::views`]); decides nothing.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};

use super::{PageError, param, stamp};
use crate::fleet::AgentView;
use crate::web::AppState;

/// One agent as the page shows it.
pub(super) struct Row {
    pub id: String,
    pub regions: String,
    pub up: bool,
    /// `12 s ago`, `never`; its full time as the tooltip.
    pub last_seen: String,
    pub last_seen_title: String,
    /// `+3.000 s`, `—` when no heartbeat came yet.
    pub skew: String,
    /// `round trip 2 ms`, or that the figure is a one-way estimate.
    pub skew_basis: String,
    pub skew_flagged: bool,
    pub backlog: u64,
    pub spool_dropped: u64,
    pub rate: String,
    pub assignment: String,
    /// The agent said which assignment it runs (and `assignment_current` whether it is in force).
    pub assignment_known: bool,
    pub assignment_current: bool,
    pub version: String,
    pub boot: String,
    pub probes: String,
    pub received: u64,
    /// `foreign_region 2, too_old 1`, non-zero reasons only; `—` for none.
    pub refused: String,
}

impl Row {
    fn of(v: &AgentView, now_ms: i64) -> Row {
        let heard = v.last_seen_ms.is_some();
        Row {
            id: v.id.clone(),
            regions: v.regions.join(", "),
            up: v.up,
            last_seen: v
                .last_seen_ms
                .map_or_else(|| "never".into(), |t| ago(t, now_ms)),
            last_seen_title: v.last_seen_ms.map(stamp).unwrap_or_default(),
            skew: v
                .skew_ms
                .map_or_else(|| "—".into(), |s| format!("{:+.3} s", s / 1000.0)),
            skew_basis: match (v.skew_ms, v.skew_rtt_ms) {
                (None, _) => String::new(),
                (Some(_), Some(rtt)) => format!("round trip {rtt} ms"),
                (Some(_), None) => "one-way estimate (no round trip yet)".into(),
            },
            skew_flagged: v.skew_flagged,
            backlog: v.backlog_records,
            spool_dropped: v.spool_dropped,
            rate: format!("{:.1}/s", v.results_per_sec),
            assignment: v.assignment_version.clone().unwrap_or_else(|| "—".into()),
            assignment_known: v.assignment_version.is_some(),
            assignment_current: v.assignment_current,
            version: if heard {
                v.version.clone()
            } else {
                "—".into()
            },
            boot: v.boot.clone(),
            probes: format!("{} / {}", v.in_flight, v.concurrency),
            received: v.received,
            refused: refused(v),
        }
    }
}

/// The non-zero refusals of `v`, by reason: `foreign_region 2, too_old 1`; `—` for none.
fn refused(v: &AgentView) -> String {
    let parts: Vec<String> = v
        .refused
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(why, n)| format!("{why} {n}"))
        .collect();
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(", ")
    }
}

/// How long before `now_ms` a time `ms` was: `12 s ago`, `3 min ago`, `2 h ago`, `4 d ago`.
fn ago(ms: i64, now_ms: i64) -> String {
    let s = (now_ms - ms).max(0) / 1000;
    match s {
        0..60 => format!("{s} s ago"),
        60..3_600 => format!("{} min ago", s / 60),
        3_600..86_400 => format!("{} h ago", s / 3_600),
        _ => format!("{} d ago", s / 86_400),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "agents.html")]
pub(super) struct AgentsPage {
    pub rows: Vec<Row>,
    pub up: usize,
    pub generated: String,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<AgentsPage, PageError> {
    param::only(&params, &[])?;
    let now_ms = state.clock.now().timestamp_millis();
    let rows: Vec<Row> = state
        .fleet
        .views()
        .iter()
        .map(|v| Row::of(v, now_ms))
        .collect();
    Ok(AgentsPage {
        up: rows.iter().filter(|r| r.up).count(),
        rows,
        generated: stamp(now_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn how_long_ago_is_said_in_the_largest_whole_unit() {
        let now = 1_800_000_000_000;
        assert_eq!(ago(now - 12_400, now), "12 s ago");
        assert_eq!(ago(now + 300, now), "0 s ago", "a time ahead is now");
        assert_eq!(ago(now - 185_000, now), "3 min ago");
        assert_eq!(ago(now - 2 * 3_600_000 - 1, now), "2 h ago");
        assert_eq!(ago(now - 4 * 86_400_000, now), "4 d ago");
    }
}
