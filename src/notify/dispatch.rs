//! The channels' senders: one task per channel, so a channel that is down delays no other, nor
//! the engine or the publisher (they only write the outbox). Each takes its due pending notices,
//! waits out the grouping window from the oldest, sends them as one message within the channel's
//! rate, and records the outcome: sent, pending again after a backoff (timeouts, 5xx, 429, the
//! receiver's throttle answer), or failed (refused, or past `max_attempts`). An Alertmanager
//! channel also pushes its firing alerts again on its resend timer. Delivery is kept per channel
//! for the dashboard ([`Outbox::deliveries`]) and counted on `/metrics`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Notice;
use super::alertmanager::{self, Firing};
use super::channels::{self, Answer, Batch, Target};
use super::{route, silence};
use crate::clock::Clock;
use crate::config::{ChannelKind, Config, Language, NotifySettings};
use crate::incident::IncidentState;
use crate::metrics::Metrics;
use crate::outbound as post;
use crate::store::Store;

/// Notices one message lists at most; the rest are folded into "… (+N more)".
pub const LISTED: usize = 10;
/// Notices one look takes from the outbox at most (the rest wait for the next message).
const TAKEN: i64 = 500;
/// How often a sender looks at the outbox while notices wait (a stepped clock moves under it).
const LOOK: Duration = Duration::from_millis(100);
/// How often it looks while the outbox is empty (a recorded notice rings it at once).
const IDLE: Duration = Duration::from_secs(1);
/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long one send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the senders could not start.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// A channel's URL or secret cannot be read (the message names the channel, never the value).
    #[error("notify.channels `{channel}`: {why}")]
    Channel {
        /// The channel.
        channel: String,
        /// What is wrong.
        why: String,
    },
}

/// One channel's delivery, as the dashboard shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The channel's kind.
    pub kind: &'static str,
    /// When a message last went through.
    pub last_ok: Option<DateTime<Utc>>,
    /// When one last failed, and why.
    pub last_error: Option<(DateTime<Utc>, String)>,
    /// Notices waiting.
    pub queued: usize,
    /// Messages sent.
    pub sent: u64,
    /// Messages given up.
    pub failed: u64,
}

/// The outbox's doorbell (rung when notices are recorded) and every channel's delivery.
#[derive(Debug)]
pub struct Outbox {
    /// A count of rings: each sender sees every change, even one rung while it was sending
    /// (a `Notify` would have woken only the senders waiting at that moment).
    wake: watch::Sender<u64>,
    deliveries: Mutex<BTreeMap<String, Delivery>>,
}

impl Outbox {
    /// A new outbox handle.
    pub fn new() -> Arc<Outbox> {
        Arc::new(Outbox {
            wake: watch::Sender::new(0),
            deliveries: Mutex::default(),
        })
    }

    /// Wakes every sender: notices were recorded.
    pub fn ring(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Every channel's delivery, by name.
    pub fn deliveries(&self) -> BTreeMap<String, Delivery> {
        self.deliveries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, channel: &str, f: impl FnOnce(&mut Delivery)) {
        let mut all = self.deliveries.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry(channel.to_string()).or_default());
    }
}

/// What every sender shares.
#[derive(Clone)]
pub struct Shared {
    /// The outbox.
    pub store: Store,
    /// The service's clock (outbox times are the clock's).
    pub clock: Clock,
    /// Where results are counted.
    pub metrics: Metrics,
    /// The doorbell and the deliveries.
    pub outbox: Arc<Outbox>,
    /// The roots receivers' certificates are verified against (Mozilla's; a test's CA).
    pub roots: Arc<rustls::RootCertStore>,
}

/// Starts one sender per configured channel on `tracker`, until `stop`.
pub fn spawn(
    config: &Arc<Config>,
    shared: &Shared,
    stop: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), DispatchError> {
    let tls = post::tls(shared.roots.clone());
    for c in &config.notify.channels {
        let err = |why| DispatchError::Channel {
            channel: c.name.clone(),
            why,
        };
        let target = Target {
            kind: c.kind,
            url: c.url(&config.base_dir).map_err(err)?,
            secret: c.secret(&config.base_dir).map_err(err)?,
        };
        shared.metrics.notify_channel(&c.name);
        shared.outbox.update(&c.name, |d| d.kind = c.kind.as_str());
        let sender = Sender {
            name: c.name.clone(),
            target,
            settings: config.notify.clone(),
            tls: tls.clone(),
            shared: shared.clone(),
            sent: VecDeque::new(),
            firing: Firing::default(),
        };
        tracker.spawn(sender.run(stop.clone(), config.clone()));
    }
    Ok(())
}

/// One channel's sender.
struct Sender {
    name: String,
    target: Target,
    settings: NotifySettings,
    tls: Arc<rustls::ClientConfig>,
    shared: Shared,
    /// When its last messages went out (real time: receivers count real time), for its rate.
    sent: VecDeque<tokio::time::Instant>,
    /// For Alertmanager: what fires.
    firing: Firing,
}

impl Sender {
    async fn run(mut self, stop: CancellationToken, config: Arc<Config>) {
        let alertmanager = self.target.kind == ChannelKind::Alertmanager;
        if alertmanager {
            // After a restart Alertmanager must hear again of what still fires.
            match self
                .shared
                .store
                .incidents(Some(IncidentState::Open), 0)
                .await
            {
                Ok(open) => {
                    let now = self.shared.clock.now();
                    let silences = self
                        .shared
                        .store
                        .live_silences(now.timestamp_millis())
                        .await
                        .map(|rows| silence::read_rows(&rows))
                        .unwrap_or_default();
                    // What this channel would be told of each: routes and silences applied.
                    let name = self.name.as_str();
                    let standing: Vec<Notice> = open
                        .iter()
                        .map(|i| Notice::standing(i, None, &config))
                        .filter(|n| route::channels_for(&config.notify, n).contains(&name))
                        .filter(|n| silence::muting(&silences, n, now).is_none())
                        .collect();
                    self.firing.apply(&standing, now);
                }
                Err(e) => {
                    tracing::warn!(channel = %self.name, error = %e, "reading the open incidents failed")
                }
            }
        }
        let mut resend = tokio::time::interval(self.settings.alertmanager_resend());
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rung = self.shared.outbox.wake.subscribe();
        let mut pause = LOOK;
        loop {
            let resend_due = tokio::select! {
                () = stop.cancelled() => return,
                _ = rung.changed() => false,
                _ = resend.tick(), if alertmanager => true,
                () = tokio::time::sleep(pause) => false,
            };
            // A send in flight is dropped at shutdown: its notices stay pending for the next start.
            let busy = tokio::select! {
                () = stop.cancelled() => return,
                busy = self.turn(resend_due) => busy,
            };
            pause = if busy { LOOK } else { IDLE };
        }
    }

    /// One turn: the firing alerts pushed again when their resend is due, then a look.
    async fn turn(&mut self, resend_due: bool) -> bool {
        if resend_due && !self.firing.is_empty() {
            let alerts = self.firing.firing();
            self.push_alerts(&alerts).await;
        }
        self.look().await
    }

    /// Sends what is due, if its grouping window and the channel's rate allow; whether anything
    /// was due.
    async fn look(&mut self) -> bool {
        let now = self.shared.clock.now();
        let due = match self
            .shared
            .store
            .due_notices(&self.name, now.timestamp_millis(), TAKEN)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(channel = %self.name, error = %e, "reading the outbox failed");
                return true;
            }
        };
        self.shared
            .metrics
            .notification_queue(&self.name, due.len() as i64);
        self.shared
            .outbox
            .update(&self.name, |d| d.queued = due.len());
        let Some(first) = due.first() else {
            return false;
        };
        let window = i64::try_from(self.settings.group_window_ms).unwrap_or(i64::MAX);
        if now.timestamp_millis() < first.created_at_ms.saturating_add(window) || !self.may_send() {
            return true;
        }
        let ids: Vec<i64> = due.iter().map(|r| r.id).collect();
        // A row that does not read is left out of the message, and marked with the others.
        let notices: Vec<Notice> = due
            .iter()
            .filter_map(|r| serde_json::from_str(&r.body).ok())
            .collect();
        let attempts = due.iter().map(|r| r.attempts).max().unwrap_or(0);
        let answer = self.send(&notices).await;
        self.record(&ids, attempts, answer, now).await;
        true
    }

    /// Whether the channel's rate leaves room for a message now.
    fn may_send(&mut self) -> bool {
        let rate = channels::rate(self.target.kind);
        let now = tokio::time::Instant::now();
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.sent.pop_front();
        }
        let in_second = self
            .sent
            .iter()
            .filter(|t| now.duration_since(**t) < Duration::from_secs(1))
            .count();
        self.sent.len() < rate.per_minute as usize
            && rate.per_second.is_none_or(|s| in_second < s as usize)
    }

    /// One message of `notices`.
    async fn send(&mut self, notices: &[Notice]) -> Answer {
        self.sent.push_back(tokio::time::Instant::now());
        if self.target.kind == ChannelKind::Alertmanager {
            let alerts = self.firing.apply(notices, self.shared.clock.now());
            return self.push_alerts(&alerts).await;
        }
        let listed = listed(notices);
        let batch = Batch {
            notices: &listed,
            folded: notices.len() - listed.len(),
        };
        let language: Language = self.settings.language;
        let out = channels::request(&self.target, &batch, language, Utc::now());
        let sent = post::post(
            &out.url,
            out.content_type,
            out.body,
            &self.tls,
            SEND_TIMEOUT,
        )
        .await;
        self.read_answer(sent)
    }

    /// Pushes `alerts` to the channel's Alertmanager.
    async fn push_alerts(&self, alerts: &[serde_json::Value]) -> Answer {
        let url = alertmanager::alerts_url(&self.target.url);
        let body = serde_json::to_vec(alerts).expect("alerts serialize");
        let sent = post::post(&url, "application/json", body, &self.tls, SEND_TIMEOUT).await;
        self.read_answer(sent)
    }

    /// How the receiver's answer (or its silence) reads.
    fn read_answer(&self, sent: Result<post::Posted, post::PostError>) -> Answer {
        match sent {
            Err(e) => Answer::Retry {
                after: None,
                why: format!("no answer: {e}"),
            },
            Ok(p) => match channels::answer(self.target.kind, p.status, &p.body) {
                Answer::Retry { after: None, why } => Answer::Retry {
                    after: p.retry_after,
                    why,
                },
                other => other,
            },
        }
    }

    /// Records what became of a message of `ids`.
    async fn record(&self, ids: &[i64], attempts: u32, answer: Answer, now: DateTime<Utc>) {
        let now_ms = now.timestamp_millis();
        let (store, name) = (&self.shared.store, self.name.as_str());
        let result = match &answer {
            Answer::Delivered => {
                self.shared.outbox.update(name, |d| {
                    d.last_ok = Some(now);
                    d.sent += 1;
                });
                store.notices_sent(ids, now_ms).await.map(|()| "sent")
            }
            Answer::Retry { after, why } => {
                let backoff = after.unwrap_or_else(|| backoff(attempts));
                let retry_ms = now_ms + i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX / 2);
                let max = self.settings.max_attempts;
                self.failed(why, now, attempts + 1 >= max);
                let r = store.notices_failed(ids, why, (now_ms, Some(retry_ms)), max);
                r.await.map(|()| {
                    if attempts + 1 >= max {
                        "failed"
                    } else {
                        "retried"
                    }
                })
            }
            Answer::Refused { why } => {
                self.failed(why, now, true);
                let r = store.notices_failed(ids, why, (now_ms, None), self.settings.max_attempts);
                r.await.map(|()| "failed")
            }
        };
        match result {
            Ok(result) => self.shared.metrics.notification(name, result),
            Err(e) => {
                tracing::warn!(channel = %name, error = %e, "recording a notification failed")
            }
        }
    }

    fn failed(&self, why: &str, now: DateTime<Utc>, given_up: bool) {
        tracing::warn!(channel = %self.name, given_up, "a notification was not delivered: {why}");
        self.shared.outbox.update(&self.name, |d| {
            d.last_error = Some((now, why.to_string()));
            if given_up {
                d.failed += 1;
            }
        });
    }
}

/// The notices a message lists, at most [`LISTED`], in order: when there are more, an incident's
/// own changes (opened, widened, resolved …) before its decisions, so that a storm's hundreds of
/// host flips never fold away the one line saying it opened or resolved.
fn listed(notices: &[Notice]) -> Vec<Notice> {
    if notices.len() <= LISTED {
        return notices.to_vec();
    }
    let (decided, changes): (Vec<&Notice>, Vec<&Notice>) = notices
        .iter()
        .partition(|n| n.change == super::Change::Decided);
    let mut out: Vec<Notice> = changes.into_iter().take(LISTED).cloned().collect();
    let room = LISTED - out.len();
    out.extend(decided.into_iter().take(room).cloned());
    out
}

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s … up to five minutes.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(9)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;
    use crate::engine::FaultScope;
    use crate::notify::Change;

    fn notice(seq: u32, change: Change) -> Notice {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Notice {
            incident: 1,
            seq,
            change,
            at,
            scope: FaultScope::Vendor {
                vendor: "alpha".into(),
            },
            severity: Severity::Critical,
            classes: Vec::new(),
            hosts: Vec::new(),
            vendors: Vec::new(),
            regions: Vec::new(),
            decision: None,
            version: None,
            opened_at: at,
            resolved_at: None,
            link: "/incidents/1".into(),
        }
    }

    #[test]
    fn a_storms_resolution_is_listed_before_its_hundreds_of_decisions() {
        let mut notices: Vec<Notice> = (0..200).map(|i| notice(i, Change::Decided)).collect();
        notices.push(notice(200, Change::Resolved));
        let out = listed(&notices);
        assert_eq!(out.len(), LISTED);
        assert_eq!(out[0].change, Change::Resolved);
        let seqs: Vec<u32> = out[1..].iter().map(|n| n.seq).collect();
        assert_eq!(
            seqs,
            (0..9).collect::<Vec<u32>>(),
            "decisions keep their order"
        );
        // A message with room lists everything as it came.
        assert_eq!(listed(&notices[191..]), notices[191..].to_vec());
    }
}
