//! Silences and maintenance windows, as pure logic: which notices a silence mutes, and when it is
//! in effect (until it expires, or during a weekly window in UTC). A silence mutes messages only —
//! the engine and the publisher decide as ever — and never a notice that records a fail-open: that
//! one always reaches on-call. No I/O and no clock reads here; the store keeps silences as rows
//! (`store::silences`) and the decision loop applies them when it routes a round's notices.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};

use super::Notice;
use crate::engine::Reason;
use crate::incident::{Decision, Refusal};
use crate::store::silences::SilenceRow;

/// Minutes in a week: the longest weekly window is one minute shorter (a window of a whole week
/// is a silence without end, which an expiry says better).
pub const WEEK_MINUTES: u32 = 7 * 24 * 60;

/// A value that is not what its field should hold: the field's path and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {why}")]
pub struct BadField {
    /// The field, as the API spells it (`every.weekly.start`).
    pub field: &'static str,
    /// What is wrong with it.
    pub why: String,
}

fn bad(field: &'static str, why: impl Into<String>) -> BadField {
    BadField {
        field,
        why: why.into(),
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Day {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Day {
    /// Every day, Monday first.
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// The one spelling (`mon` … `sun`).
    pub fn as_str(self) -> &'static str {
        match self {
            Day::Mon => "mon",
            Day::Tue => "tue",
            Day::Wed => "wed",
            Day::Thu => "thu",
            Day::Fri => "fri",
            Day::Sat => "sat",
            Day::Sun => "sun",
        }
    }

    /// The day spelt `s`, if any.
    pub fn parse(s: &str) -> Option<Day> {
        Day::ALL.into_iter().find(|d| d.as_str() == s)
    }

    fn index(self) -> u32 {
        Day::ALL
            .iter()
            .position(|d| *d == self)
            .map_or(0, |i| i as u32)
    }
}

/// A window every week: from `start` (minutes after midnight UTC) on `day`, for `minutes`; it may
/// run past midnight and past Sunday into the next week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weekly {
    /// The day it starts on.
    pub day: Day,
    /// Minutes after midnight UTC it starts at (0 to 1,439).
    pub start_min: u32,
    /// How long it lasts, in minutes (1 to a week less one minute).
    pub minutes: u32,
}

impl Weekly {
    /// Whether `now` falls in the window.
    pub fn covers(&self, now: DateTime<Utc>) -> bool {
        let week_s = i64::from(WEEK_MINUTES) * 60;
        let at = i64::from(now.weekday().num_days_from_monday()) * 86_400
            + i64::from(now.num_seconds_from_midnight());
        let start = (i64::from(self.day.index()) * 1440 + i64::from(self.start_min)) * 60;
        (at - start).rem_euclid(week_s) < i64::from(self.minutes) * 60
    }
}

/// When a recurring silence is in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recurrence {
    /// Once a week.
    Weekly(Weekly),
}

/// A recurrence as written in JSON (`{"weekly": {"day": "sun", "start": "02:00", "minutes": 120}}`),
/// in the API and in the store alike; read into a [`Recurrence`] by [`Recurrence::parse`], so a bad
/// value is named by its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrenceWire {
    /// The weekly window.
    pub weekly: WeeklyWire,
}

/// A weekly window as written: `day` `mon`…`sun`, `start` `HH:MM` in UTC, `minutes` its length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyWire {
    /// `mon` … `sun`.
    pub day: String,
    /// `HH:MM`, UTC.
    pub start: String,
    /// Its length in minutes.
    pub minutes: i64,
}

impl Recurrence {
    /// Reads a recurrence as written, naming the field that is wrong.
    pub fn parse(w: &RecurrenceWire) -> Result<Recurrence, BadField> {
        let w = &w.weekly;
        let day = Day::parse(&w.day).ok_or_else(|| {
            bad(
                "every.weekly.day",
                format!(
                    "`{}` is not a day (mon, tue, wed, thu, fri, sat, sun)",
                    w.day
                ),
            )
        })?;
        let start_min = parse_hhmm(&w.start).ok_or_else(|| {
            bad(
                "every.weekly.start",
                format!("`{}` is not a time HH:MM (UTC)", w.start),
            )
        })?;
        let minutes = u32::try_from(w.minutes)
            .ok()
            .filter(|m| (1..WEEK_MINUTES).contains(m))
            .ok_or_else(|| {
                bad(
                    "every.weekly.minutes",
                    format!("must be from 1 to {}", WEEK_MINUTES - 1),
                )
            })?;
        Ok(Recurrence::Weekly(Weekly {
            day,
            start_min,
            minutes,
        }))
    }

    /// As written.
    pub fn wire(&self) -> RecurrenceWire {
        let Recurrence::Weekly(w) = self;
        RecurrenceWire {
            weekly: WeeklyWire {
                day: w.day.as_str().into(),
                start: format!("{:02}:{:02}", w.start_min / 60, w.start_min % 60),
                minutes: i64::from(w.minutes),
            },
        }
    }

    /// Whether `now` falls in a window.
    pub fn covers(&self, now: DateTime<Utc>) -> bool {
        match self {
            Recurrence::Weekly(w) => w.covers(now),
        }
    }
}

impl std::fmt::Display for Recurrence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self.wire().weekly;
        write!(
            f,
            "every {} from {} UTC for {} min",
            w.day, w.start, w.minutes
        )
    }
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let ok = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
    if !ok(h) || !ok(m) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// What a silence matches: each matcher given must hold, and at least one is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Matchers {
    /// A host: the notice is about this host alone.
    pub host: Option<String>,
    /// A vendor: the notice is about this vendor's hosts alone.
    pub vendor: Option<String>,
    /// A region: the notice is about this region alone.
    pub region: Option<String>,
    /// A scope kind (`vendor`, `edge` …, as `FaultScope::kind`).
    pub scope: Option<String>,
}

impl Matchers {
    /// Whether no matcher is given (such a silence would mute everything, and is refused).
    pub fn is_empty(&self) -> bool {
        self.host.is_none()
            && self.vendor.is_none()
            && self.region.is_none()
            && self.scope.is_none()
    }

    /// Whether `n` lies wholly inside: every host, vendor and region the notice names is the
    /// matched one (a notice that names none, or another one too, is not muted: an incident that
    /// spreads beyond a silence is news).
    pub fn matches(&self, n: &Notice) -> bool {
        let inside = |want: &Option<String>, have: &[String]| {
            want.as_ref()
                .is_none_or(|w| !have.is_empty() && have.iter().all(|h| h == w))
        };
        inside(&self.host, &n.hosts)
            && inside(&self.vendor, &n.vendors)
            && inside(&self.region, &n.regions)
            && self.scope.as_ref().is_none_or(|k| k == n.scope.kind())
    }
}

impl std::fmt::Display for Matchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            ("host", &self.host),
            ("vendor", &self.vendor),
            ("region", &self.region),
            ("scope", &self.scope),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
        .collect();
        f.write_str(&parts.join(", "))
    }
}

/// One silence: what it matches, who made it and why, and when it is in effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// Its id, for clearing it.
    pub id: i64,
    /// What it mutes.
    pub matchers: Matchers,
    /// Why.
    pub reason: String,
    /// Who made it.
    pub actor: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it ends; `None` for a recurring window kept until cleared.
    pub expires_at: Option<DateTime<Utc>>,
    /// Its weekly window; `None` for a silence in effect from its making to its expiry.
    pub every: Option<Recurrence>,
}

impl Silence {
    /// Reads a stored silence.
    pub fn from_row(r: &SilenceRow) -> Result<Silence, BadField> {
        let every = match &r.every {
            None => None,
            Some(text) => {
                let wire = serde_json::from_str(text).map_err(|e| bad("every", e.to_string()))?;
                Some(Recurrence::parse(&wire)?)
            }
        };
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        Ok(Silence {
            id: r.id,
            matchers: Matchers {
                host: r.host.clone(),
                vendor: r.vendor.clone(),
                region: r.region.clone(),
                scope: r.scope.clone(),
            },
            reason: r.reason.clone(),
            actor: r.actor.clone(),
            created_at: at(r.created_at_ms),
            expires_at: r.expires_at_ms.map(at),
            every,
        })
    }

    /// Whether it mutes anything at `now`: not expired and, if recurring, inside a window.
    pub fn in_effect(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| now < e) && self.every.is_none_or(|w| w.covers(now))
    }
}

/// `rows` read into silences; a row that does not read is logged and left out (it mutes nothing).
pub fn read_rows(rows: &[SilenceRow]) -> Vec<Silence> {
    rows.iter()
        .filter_map(|r| {
            Silence::from_row(r)
                .inspect_err(|e| tracing::warn!(id = r.id, error = %e, "a stored silence does not read; it mutes nothing"))
                .ok()
        })
        .collect()
}

/// Whether `n` records a fail-open: never muted. The engine says it two ways: a host kept (or put
/// back) in the list by the fail-open guard (a flip for `fail_open`), or a refusal to disable.
pub fn is_fail_open(n: &Notice) -> bool {
    matches!(
        n.decision,
        Some(
            Decision::Refused {
                refusal: Refusal::FailOpen,
                ..
            } | Decision::Flip {
                reason: Reason::FailOpen,
                ..
            }
        )
    )
}

/// The silence that mutes `n` at `now`, if any (never one for a fail-open).
pub fn muting<'a>(silences: &'a [Silence], n: &Notice, now: DateTime<Utc>) -> Option<&'a Silence> {
    if is_fail_open(n) {
        return None;
    }
    silences
        .iter()
        .find(|s| s.in_effect(now) && s.matchers.matches(n))
}

#[cfg(test)]
mod tests;
