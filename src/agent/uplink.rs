//! Sends the spool to the service: the live batch first, the backlog after it, oldest first, at a
//! bounded rate (so a service that comes back is not flooded by every agent at once), each retried
//! with jittered backoff until the service acknowledges it. A batch leaves the spool only when
//! acknowledged — or when the service says it can never take it (400, 413).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::link::Link;
use super::spool::{Spool, Spooled};
use super::wire::BatchAnswer;

/// Backlog batches sent per second at most, besides the live one.
pub(super) const BACKLOG_PER_SEC: u32 = 20;
/// A batch sealed within this long is live: it goes before the backlog.
const LIVE_WITHIN_MS: i64 = 5_000;
/// The first wait after a failure; it doubles (with full jitter) up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long the last sends may take at shutdown (what is left stays spooled).
const LAST_SENDS: Duration = Duration::from_secs(3);

/// What the sender counts.
#[derive(Debug, Default)]
pub(super) struct UplinkStats {
    /// Batches acknowledged.
    pub(super) acknowledged: std::sync::atomic::AtomicU64,
    /// Batches the service refused for good (dropped).
    pub(super) refused: std::sync::atomic::AtomicU64,
    /// Failed sends (each retry counts).
    pub(super) failures: std::sync::atomic::AtomicU64,
}

/// The sender's handles.
pub(super) struct Uplink {
    /// The service.
    pub(super) link: Link,
    /// The spool it sends from.
    pub(super) spool: Arc<Mutex<Spool>>,
    /// Rung when a batch is sealed.
    pub(super) sealed: Arc<Notify>,
    /// Rung to make the heartbeat go now (the service does not know this agent's clock).
    pub(super) heartbeat_now: Arc<Notify>,
    /// The assignment version in force.
    pub(super) assignment: watch::Receiver<Option<String>>,
    /// Its counters.
    pub(super) stats: Arc<UplinkStats>,
    /// The agent's clock, in Unix ms.
    pub(super) now_ms: Arc<dyn Fn() -> i64 + Send + Sync>,
}

/// What became of one send.
enum Sent {
    /// Acknowledged (or refused for good): out of the spool.
    Done,
    /// Try again after this long.
    Again(Duration),
}

impl Uplink {
    /// Sends until `stop`, then for a few seconds more.
    pub(super) async fn run(self, stop: CancellationToken) {
        let mut backoff = FIRST_BACKOFF;
        let mut next_backlog = Instant::now();
        let mut last_live: Option<std::path::PathBuf> = None;
        loop {
            if stop.is_cancelled() {
                break;
            }
            let pick = self.pick(last_live.as_deref(), Instant::now() >= next_backlog);
            let Some((batch, live)) = pick else {
                let wait = next_backlog.saturating_duration_since(Instant::now());
                let wait = if self.spool.lock().expect("spool").is_empty() {
                    Duration::from_secs(3600)
                } else {
                    wait.max(Duration::from_millis(10))
                };
                tokio::select! {
                    _ = stop.cancelled() => break,
                    () = self.sealed.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            };
            match self.send(&batch).await {
                Sent::Done => {
                    backoff = FIRST_BACKOFF;
                    if live {
                        last_live = Some(batch.path.clone());
                    } else {
                        next_backlog = Instant::now() + Duration::from_secs(1) / BACKLOG_PER_SEC;
                    }
                }
                Sent::Again(at_least) => {
                    let wait = jitter(backoff).max(at_least);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        self.last_sends().await;
    }

    /// The next batch: the newest if it is live and not the one sent live before, else (when
    /// `backlog_due`) the oldest.
    fn pick(
        &self,
        last_live: Option<&std::path::Path>,
        backlog_due: bool,
    ) -> Option<(Spooled, bool)> {
        let spool = self.spool.lock().expect("spool");
        let now = (self.now_ms)();
        if let Some(newest) = spool.newest()
            && now - newest.sealed_ms <= LIVE_WITHIN_MS
            && last_live != Some(newest.path.as_path())
        {
            return Some((newest.clone(), true));
        }
        if backlog_due {
            return spool.pending().next().cloned().map(|b| (b, false));
        }
        None
    }

    async fn send(&self, batch: &Spooled) -> Sent {
        let body = match std::fs::read(&batch.path) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!(error = %e, path = %batch.path.display(), "cannot read a spooled batch; dropping it");
                self.spool.lock().expect("spool").remove(&batch.path);
                return Sent::Done;
            }
        };
        let assignment = self.assignment.borrow().clone();
        let answer = self.link.batch(body, assignment.as_deref()).await;
        let count = |c: &std::sync::atomic::AtomicU64| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        match answer {
            Ok(a) if a.status == 200 => {
                if let Ok(answer) = serde_json::from_slice::<BatchAnswer>(&a.body)
                    && !answer.refused.is_empty()
                {
                    tracing::warn!(seq = batch.seq, refused = ?answer.refused, "the service refused some results");
                }
                self.spool.lock().expect("spool").remove(&batch.path);
                count(&self.stats.acknowledged);
                Sent::Done
            }
            Ok(a) if a.status == 400 || a.status == 413 => {
                let why = String::from_utf8_lossy(&a.body).into_owned();
                tracing::error!(seq = batch.seq, status = a.status, %why, "the service can never take this batch; dropping it");
                self.spool.lock().expect("spool").remove(&batch.path);
                count(&self.stats.refused);
                Sent::Done
            }
            Ok(a) => {
                count(&self.stats.failures);
                if a.status == 428 {
                    self.heartbeat_now.notify_one();
                }
                let why = String::from_utf8_lossy(&a.body).into_owned();
                tracing::warn!(seq = batch.seq, status = a.status, %why, "batch not taken; keeping it");
                Sent::Again(a.retry_after.unwrap_or(Duration::ZERO))
            }
            Err(e) => {
                count(&self.stats.failures);
                tracing::warn!(error = %e, "cannot reach the service; keeping the spool");
                Sent::Again(Duration::ZERO)
            }
        }
    }

    /// At shutdown: sends what is spooled for a few seconds, newest first; the rest stays.
    async fn last_sends(&self) {
        let until = Instant::now() + LAST_SENDS;
        while Instant::now() < until {
            let next = self.spool.lock().expect("spool").newest().cloned();
            let Some(batch) = next else { return };
            match tokio::time::timeout_at(until, self.send(&batch)).await {
                Ok(Sent::Done) => {}
                _ => return,
            }
        }
    }
}

/// A wait drawn evenly from half of `backoff` up to all of it (so agents that lost the service
/// together do not all come back at the same instant).
pub(super) fn jitter(backoff: Duration) -> Duration {
    backoff.mul_f64(0.5 + fastrand::f64() * 0.5)
}
