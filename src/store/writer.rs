//! The one ingest path into the store: a bounded queue in front of a single writer task.
//!
//! Probers (local, or a remote regional agent through the HTTP ingest endpoint) call
//! [`Ingest::submit`], which never waits: when the queue is full the record is dropped and counted,
//! because a stalled database must never stall probing. The writer takes whatever is queued (up to
//! a batch) and writes it in one transaction; between batches it rolls up and prunes in small steps.
//!
//! Agents' batches have a queue of their own ([`Ingest::submit_agent_batch`]): each is written
//! whole, with its idempotency key, in one transaction, and its sender is told once it is durable
//! (the agent deletes it from its spool only then). A full agent queue refuses at once and the
//! agent keeps the batch; agents never take the local results' share.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{BatchKey, BatchStored, Record, Retention, Store};
use crate::clock::Clock;
use crate::hist::Histogram;

/// How the writer batches and maintains.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Most records per transaction.
    pub batch_size: usize,
    /// Records the queue holds before new ones are dropped.
    pub queue_capacity: usize,
    /// Time between two maintenance rounds (rollup + retention steps).
    pub maintenance_interval: Duration,
    /// How long each kind of row is kept.
    pub retention: Retention,
    /// The service's clock: a minute is rolled up once it is complete by this clock, the same one
    /// that stamped the results in it.
    pub clock: Clock,
}

/// Counters the writer keeps about itself (read by `/metrics` and the status API).
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Records taken into the queue.
    pub queued: AtomicU64,
    /// Records written.
    pub written: AtomicU64,
    /// Queued records given up at shutdown (also counted in `dropped`).
    pub given_up: AtomicU64,
    /// Records dropped: the queue was full, or a batch was given up at shutdown.
    pub dropped: AtomicU64,
    /// Batch writes that failed (each retry counts).
    pub write_errors: AtomicU64,
    /// The last write failed and its batch is waiting for a retry.
    pub failing: AtomicBool,
    /// Batches written.
    pub batches: AtomicU64,
    /// Duration of the last batch write, in microseconds.
    pub last_write_us: AtomicU64,
    /// Durations of every successful batch write (one transaction), and their sum in µs.
    pub write_latency: Mutex<Histogram>,
    /// See `write_latency`.
    pub write_sum_us: AtomicU64,
}

/// A cheap handle for submitting records.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Record>,
    agents: mpsc::Sender<AgentBatch>,
    stats: Arc<IngestStats>,
}

/// Agents' batches the writer's queue holds before it refuses more.
pub const AGENT_BATCHES_QUEUED: usize = 64;

/// One agent batch on its way to the store, and who waits for it to be durable.
struct AgentBatch {
    key: BatchKey,
    records: Vec<Record>,
    done: oneshot::Sender<BatchStored>,
}

/// The agents' queue is full, or the writer has stopped: the batch was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// The queue was full (or the writer has stopped); the record was counted as dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped;

impl Ingest {
    /// Queues a record without waiting.
    pub fn submit(&self, record: Record) -> Result<(), Dropped> {
        // Counted before the send, so `flush` never sees a record written but not yet queued.
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.tx.try_send(record).map_err(|_| {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            Dropped
        })
    }

    /// Waits until every record queued before this call is written (or given up), at most
    /// `limit`; true when they all were. False at once while the database refuses writes: the
    /// writer is retrying and waiting would not help. A stepped service calls it at the end of
    /// each round, so what the round measured is in the database before anyone reads it.
    pub async fn flush(&self, limit: Duration) -> bool {
        let target = self.stats.queued.load(Ordering::Acquire);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let done = self.stats.written.load(Ordering::Acquire)
                + self.stats.given_up.load(Ordering::Acquire);
            if done >= target {
                return true;
            }
            if self.stats.failing.load(Ordering::Acquire) || tokio::time::Instant::now() >= deadline
            {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Queues an agent's batch without waiting; the receiver answers once it is committed (or
    /// was stored before). A dropped receiver means the writer stopped before writing it.
    pub fn submit_agent_batch(
        &self,
        key: BatchKey,
        records: Vec<Record>,
    ) -> Result<oneshot::Receiver<BatchStored>, Busy> {
        let (done, stored) = oneshot::channel();
        self.agents
            .try_send(AgentBatch { key, records, done })
            .map_err(|_| Busy)?;
        Ok(stored)
    }

    /// Records waiting to be written.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Records the queue holds before it drops.
    pub fn capacity(&self) -> usize {
        self.tx.max_capacity()
    }

    /// The writer's counters.
    pub fn stats(&self) -> &Arc<IngestStats> {
        &self.stats
    }
}

/// Starts the writer task on `tracker`. It stops when `token` is cancelled, after writing every
/// record already queued.
pub fn spawn(
    store: Store,
    settings: WriterSettings,
    token: CancellationToken,
    tracker: &TaskTracker,
) -> Ingest {
    let (tx, rx) = mpsc::channel(settings.queue_capacity.max(1));
    let (agents, agents_rx) = mpsc::channel(AGENT_BATCHES_QUEUED);
    let stats = Arc::new(IngestStats::default());
    tracker.spawn(run(store, settings, (rx, agents_rx), stats.clone(), token));
    Ingest { tx, agents, stats }
}

async fn run(
    store: Store,
    settings: WriterSettings,
    (mut rx, mut agents): (mpsc::Receiver<Record>, mpsc::Receiver<AgentBatch>),
    stats: Arc<IngestStats>,
    token: CancellationToken,
) {
    let mut batch = Vec::with_capacity(settings.batch_size);
    let mut maintenance = tokio::time::interval(settings.maintenance_interval);
    maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, settings.batch_size) => {
                if n == 0 { break }
                write_with_retry(&store, &mut batch, &stats, &token).await;
            }
            Some(agent) = agents.recv() => {
                write_agent_batch(&store, agent, &settings.clock, &token).await;
            }
            _ = maintenance.tick() => {
                let now = settings.clock.now().timestamp_millis();
                maintain(&store, &settings.retention, now).await;
            }
            _ = token.cancelled() => break,
        }
    }
    // Shutdown: take what is queued, write it, and leave a checkpointed file. Agents' batches
    // still queued are not written: their senders are told nothing, and the agents send them again.
    agents.close();
    rx.close();
    while rx.recv_many(&mut batch, settings.batch_size).await > 0 {
        write_with_retry(&store, &mut batch, &stats, &token).await;
    }
    if let Err(e) = store.checkpoint().await {
        tracing::warn!(error = %e, "final WAL checkpoint failed");
    }
}

/// Writes a batch, retrying with backoff while the database refuses; once shutdown has begun a
/// batch gets three more tries before it is given up (and counted as dropped).
async fn write_with_retry(
    store: &Store,
    batch: &mut Vec<Record>,
    stats: &IngestStats,
    token: &CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut tries_after_cancel = 0;
    loop {
        let started = Instant::now();
        match store.write_batch(batch).await {
            Ok(()) => {
                let took = started.elapsed();
                let took_us = took.as_micros() as u64;
                stats.last_write_us.store(took_us, Ordering::Relaxed);
                stats.write_sum_us.fetch_add(took_us, Ordering::Relaxed);
                stats
                    .write_latency
                    .lock()
                    .expect("write latency histogram")
                    .record_ms(took.as_secs_f64() * 1000.0);
                stats
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Release);
                stats.failing.store(false, Ordering::Release);
                stats.batches.fetch_add(1, Ordering::Relaxed);
                batch.clear();
                return;
            }
            Err(e) => {
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
                stats.failing.store(true, Ordering::Release);
                tracing::warn!(error = %e, rows = batch.len(), "writing results failed; retrying");
                if token.is_cancelled() {
                    tries_after_cancel += 1;
                    if tries_after_cancel >= 3 {
                        stats
                            .dropped
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        stats
                            .given_up
                            .fetch_add(batch.len() as u64, Ordering::Release);
                        tracing::error!(rows = batch.len(), "giving up on a batch at shutdown");
                        batch.clear();
                        return;
                    }
                }
                pause(backoff, token).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Writes an agent's batch with its key, retrying while the database refuses (until shutdown),
/// and tells its sender once it is durable.
async fn write_agent_batch(
    store: &Store,
    batch: AgentBatch,
    clock: &Clock,
    token: &CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let now = clock.now().timestamp_millis();
        match store
            .write_agent_batch(&batch.key, &batch.records, now)
            .await
        {
            Ok(stored) => {
                let _ = batch.done.send(stored);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, agent = %batch.key.agent, "writing an agent batch failed");
                if token.is_cancelled() {
                    return; // unacknowledged: the agent sends it again
                }
                pause(backoff, token).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The first pause between two tries of a batch; it doubles up to five seconds.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Waits `backoff` before the next try, unless shutdown begins meanwhile: a backoff never holds
/// up shutdown, and the tries after it are spaced by the first backoff only.
async fn pause(backoff: Duration, token: &CancellationToken) {
    if token.is_cancelled() {
        tokio::time::sleep(FIRST_BACKOFF).await;
        return;
    }
    tokio::select! {
        _ = tokio::time::sleep(backoff) => {}
        _ = token.cancelled() => {}
    }
}

/// One maintenance round: roll up what is complete, then prune a few steps. Errors are logged and
/// retried next round; they never stop ingest.
async fn maintain(store: &Store, retention: &Retention, now: i64) {
    if let Err(e) = store.roll_up(now).await {
        tracing::warn!(error = %e, "rollup failed");
    }
    for _ in 0..4 {
        match store.prune_step(now, retention).await {
            Ok(0) => break,
            Ok(_) => tokio::task::yield_now().await,
            Err(e) => {
                tracing::warn!(error = %e, "retention step failed");
                break;
            }
        }
    }
}
