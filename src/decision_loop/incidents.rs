//! The decision loop's incidents: the tracker read back from the store at the first round, each
//! round's diagnoses and events applied to it (the events then name their incident), the changed
//! incidents saved (kept until a save succeeds, so a failed write loses no resolution), and the
//! board the pages and `/metrics` read.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::engine::policy::span;
use crate::engine::{Evaluation, Round};
use crate::incident::{Board, Context, Observed, Tracker};
use crate::notify::dispatch::Outbox;
use crate::notify::silence::{self, Silence};
use crate::notify::{Notice, route};
use crate::store::Store;
use crate::store::outbox::NewNotice;

/// The incidents as the decision loop keeps them.
pub(super) struct Incidents {
    /// `None` until read back from the store (a failed read is tried again next round: numbering
    /// from scratch could hand out a number already used).
    tracker: Option<Tracker>,
    /// Changed incidents not saved yet.
    unsaved: BTreeSet<i64>,
    board: Arc<Board>,
    /// Rung when notices were recorded: the channels' senders wait on it.
    outbox: Arc<Outbox>,
}

impl Incidents {
    pub(super) fn new(board: Arc<Board>) -> Incidents {
        Incidents {
            tracker: None,
            unsaved: BTreeSet::new(),
            board,
            outbox: Outbox::new(),
        }
    }

    /// Applies the round to the incidents and links `evaluation`'s events to theirs; saves what
    /// changed. A `new_round` false (confirmations between two intervals) counts no clean round.
    /// `None` while the incidents cannot be read back.
    pub(super) async fn observe(
        &mut self,
        config: &Config,
        (round, new_round): (&Round, bool),
        evaluation: &mut Evaluation,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Option<Observed> {
        let cx = Context {
            counts_round: new_round,
            ..context(config, round, now)
        };
        if self.tracker.is_none() {
            match store
                .kept_incidents((now - cx.reopen_within).timestamp_millis())
                .await
            {
                Ok((kept, next)) => self.tracker = Some(Tracker::new(kept, next)),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the incidents failed; trying again next round");
                    return None;
                }
            }
        }
        let tracker = self.tracker.as_mut()?;
        let observed = tracker.observe(&evaluation.diagnoses, &evaluation.events, cx);
        for (event, link) in evaluation.events.iter_mut().zip(&observed.links) {
            event.incident = *link;
        }
        self.unsaved.extend(observed.changed.iter().copied());
        self.save(store).await;
        Some(observed)
    }

    /// Ends the round: records the version its decisions published (if any) on their incidents,
    /// and saves them with the notices their new timeline entries make, routed to their channels,
    /// in one transaction (`serving`: the version being served, for the notices).
    pub(super) async fn finish(
        &mut self,
        config: &Config,
        (observed, published): (Option<&Observed>, Option<i64>),
        serving: Option<i64>,
        store: &Store,
        now: DateTime<Utc>,
    ) {
        let Some(tracker) = self.tracker.as_mut() else {
            return;
        };
        if let (Some(observed), Some(version)) = (observed, published) {
            tracker.published(observed, version, now);
            self.unsaved.extend(observed.changed.iter().copied());
        }
        let untold: Vec<i64> = tracker
            .incidents()
            .filter(|i| i.entries_ever() > i.told)
            .map(|i| i.id)
            .collect();
        let silences = if untold.is_empty() {
            Vec::new()
        } else {
            silences(store, now).await
        };
        let mut notices = Vec::new();
        let mut told = Vec::new();
        for id in untold {
            let Some(incident) = tracker.get_mut(id) else {
                continue;
            };
            self.unsaved.insert(id);
            for n in Notice::of(incident, incident.told, serving, config) {
                routed_unless_muted(config, n, (&silences, now), &mut notices);
            }
            told.push((id, incident.told));
            incident.told = incident.entries_ever();
            incident.trim();
        }
        let routed: Vec<NewNotice<'_>> = notices
            .iter()
            .map(|(channel, n)| NewNotice {
                channel,
                incident: n.incident,
                seq: n.seq,
                change: n.change.as_str(),
                body: serde_json::to_string(n).expect("a notice serializes"),
            })
            .collect();
        if !self.save_with(store, &routed, now).await {
            // Told again at the next save (the outbox ignores a notice it already has).
            if let Some(tracker) = self.tracker.as_mut() {
                for (id, before) in told {
                    if let Some(incident) = tracker.get_mut(id) {
                        incident.told = before;
                    }
                }
            }
        }
    }

    /// Saves the unsaved incidents the tracker still holds, and shows the open ones.
    async fn save(&mut self, store: &Store) {
        self.save_with(store, &[], DateTime::UNIX_EPOCH).await;
    }

    /// Rings `outbox` whenever notices are recorded.
    pub(super) fn wake(&mut self, outbox: Arc<Outbox>) {
        self.outbox = outbox;
    }

    /// Saves the unsaved incidents with `notices` (recorded at `now`), and shows the open ones. A
    /// failed save keeps them unsaved, their notices untold (`told` is saved with them).
    async fn save_with(
        &mut self,
        store: &Store,
        notices: &[NewNotice<'_>],
        now: DateTime<Utc>,
    ) -> bool {
        let Some(tracker) = &self.tracker else {
            return false;
        };
        let changed: Vec<_> = self
            .unsaved
            .iter()
            .filter_map(|id| tracker.get(*id))
            .collect();
        let saved = match store
            .save_incidents(&changed, notices, now.timestamp_millis())
            .await
        {
            Ok(()) => {
                self.unsaved.clear();
                if !notices.is_empty() {
                    self.outbox.ring();
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "saving the incidents failed; trying again next round");
                false
            }
        };
        self.board.show(tracker);
        saved
    }
}

/// The silences live at `now`; none when they cannot be read (a message too many beats a missed
/// one).
async fn silences(store: &Store, now: DateTime<Utc>) -> Vec<Silence> {
    match store.live_silences(now.timestamp_millis()).await {
        Ok(rows) => silence::read_rows(&rows),
        Err(e) => {
            tracing::warn!(error = %e, "reading the silences failed; nothing is muted this round");
            Vec::new()
        }
    }
}

/// Adds `n` for each of its channels to `out`, unless a silence in effect at `now` mutes it (then
/// it is recorded for no channel: the incident and the engine's decisions are kept as ever, only
/// the message is not sent). A fail-open is never muted.
fn routed_unless_muted(
    config: &Config,
    n: Notice,
    (silences, now): (&[Silence], DateTime<Utc>),
    out: &mut Vec<(String, Notice)>,
) {
    if let Some(s) = silence::muting(silences, &n, now) {
        tracing::info!(
            incident = n.incident,
            change = n.change.as_str(),
            silence = s.id,
            "notice muted by a silence"
        );
        return;
    }
    for channel in route::channels_for(&config.notify, &n) {
        out.push((channel.to_string(), n.clone()));
    }
}

/// The round's context: the engine's rise rounds and quorum; a scope failing again within the
/// longest hold (the article's reviveProbeInterval) after its incident resolved reopens it.
fn context(config: &Config, round: &Round, now: DateTime<Utc>) -> Context {
    let policy = &config.engine;
    let valid = round.regions.iter().filter(|r| r.control_ok).count();
    Context {
        now,
        counts_round: true,
        rise_rounds: policy.rise_rounds,
        quorum: policy.quorum(valid),
        reopen_within: span(std::time::Duration::from_millis(policy.hold_cap_ms)),
    }
}
