//! `cdnwatch agent`: a small process inside a region (an ISP's network, a province) that probes
//! the series of the regions it speaks for with the same scheduler and prober as the service,
//! and sends the results to the service, which decides with them exactly as with its own.
//!
//! Nothing is configured on the agent but where the service is, its id and its token: it pulls
//! its assignment (a long poll with an ETag), spools every batch to disk before sending it, and
//! deletes a batch only once the service has acknowledged it durable.

pub mod wire;

mod link;
pub mod spool;
mod uplink;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Config;
use crate::probe::Prober;
use crate::scheduler::{ControlSink, Scheduler, SchedulerStats, Sink};
use link::Link;
use spool::Spool;
use uplink::{Uplink, UplinkStats};
use wire::{Assignment, Batch, ControlCheck, Exchange, HEARTBEAT_EVERY, Heartbeat, Probed};

/// A batch is sealed at least this often while results come in.
const SEAL_EVERY: Duration = Duration::from_secs(1);
/// Most results in one batch.
const MAX_BATCH_RESULTS: usize = 5_000;
/// Results (and control checks) waiting to be sealed before new ones are dropped and counted.
const UNSEALED_CAP: usize = 200_000;

/// What `cdnwatch agent` is given.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The service's base URL, `http(s)://host:port`.
    pub server: String,
    /// This agent's id, as `[[agents]]` names it.
    pub id: String,
    /// Its token.
    pub token: String,
    /// Where its spool lives.
    pub spool_dir: PathBuf,
    /// The spool's bounds.
    pub spool_max_bytes: u64,
    /// See `spool_max_bytes`.
    pub spool_max_age: Duration,
    /// What the service's certificate is verified against (https).
    pub roots: Arc<rustls::RootCertStore>,
    /// The clock results are stamped with (the system's; a test sets it off).
    pub clock: Clock,
}

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The spool could not be opened or written.
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    /// The agent stopped before it ever got an assignment.
    #[error("stopped before the service gave an assignment")]
    NoAssignment,
}

/// A running agent's shared handles.
struct Parts {
    link: Link,
    spool: Arc<Mutex<Spool>>,
    sealed: Arc<Notify>,
    heartbeat_now: Arc<Notify>,
    version: watch::Sender<Option<String>>,
    boot: String,
    clock: Clock,
}

/// Runs the agent until `stop`: pulls the assignment, probes, spools, uploads, sends heartbeats.
/// On `stop` it starts no probe, waits for the running ones, seals and syncs their batch, sends
/// what it can for a few seconds and returns.
pub async fn run(opts: AgentOptions, stop: CancellationToken) -> Result<(), AgentError> {
    let spool = Spool::open(&opts.spool_dir, opts.spool_max_bytes, opts.spool_max_age)?;
    let parts = Arc::new(Parts {
        link: Link::new(&opts.server, &opts.id, &opts.token, opts.roots.clone()),
        spool: Arc::new(Mutex::new(spool)),
        sealed: Arc::default(),
        heartbeat_now: Arc::default(),
        version: watch::Sender::new(None),
        boot: hex::encode(crate::auth::random_bytes::<8>()),
        clock: opts.clock.clone(),
    });
    tracing::info!(agent = %opts.id, boot = %parts.boot, server = %opts.server, "agent starting");
    let tasks = TaskTracker::new();
    let stats: Arc<Mutex<Option<Arc<SchedulerStats>>>> = Arc::default();
    let rest = stop.clone();
    tasks.spawn(heartbeats(parts.clone(), stats.clone(), rest.clone()));
    let Some((assignment, config, prober)) = first_assignment(&parts, &stop).await else {
        tasks.close();
        tasks.wait().await;
        return Err(AgentError::NoAssignment);
    };
    let (tx, rx) = mpsc::channel(UNSEALED_CAP);
    let scheduler = schedule(&config, prober, &tx);
    *stats.lock().expect("stats") = Some(scheduler.stats());
    let (reload_tx, reload_rx) = mpsc::channel(4);
    parts
        .version
        .send_replace(Some(assignment.assignment_version.clone()));
    let probes = CancellationToken::new();
    let probing = tasks.spawn(scheduler.run(reload_rx, probes.clone()));
    tasks.spawn(assignments(
        parts.clone(),
        assignment,
        reload_tx,
        rest.clone(),
    ));
    let sealing = tasks.spawn(seal(parts.clone(), rx));
    drop(tx);
    let sender_stop = CancellationToken::new();
    let sending = tasks.spawn(uplink(&parts).run(sender_stop.clone()));
    stop.cancelled().await;
    tracing::info!("stopping: no new probes; finishing the running ones");
    probes.cancel();
    let _ = probing.await;
    let _ = sealing.await; // every sink clone is gone with the scheduler: the last batch is sealed
    sender_stop.cancel();
    let _ = sending.await;
    tasks.close();
    tasks.wait().await;
    let left = parts.spool.lock().expect("spool").len();
    tracing::info!(spooled = left, "agent stopped");
    Ok(())
}

/// The sender of the spool, on the agent's handles.
fn uplink(parts: &Parts) -> Uplink {
    let clock = parts.clock.clone();
    Uplink {
        link: parts.link.clone(),
        spool: parts.spool.clone(),
        sealed: parts.sealed.clone(),
        heartbeat_now: parts.heartbeat_now.clone(),
        assignment: parts.version.subscribe(),
        stats: Arc::new(UplinkStats::default()),
        now_ms: Arc::new(move || clock.now().timestamp_millis()),
    }
}

/// Something the scheduler finished: a probe's results or a control check.
enum Done {
    Probe(Vec<Probed>),
    Control(ControlCheck),
}

/// The scheduler of the assignment's series, handing results to the sealer.
fn schedule(config: &Config, prober: Arc<Prober>, tx: &mpsc::Sender<Done>) -> Scheduler {
    let to_seal = tx.clone();
    let sink: Sink = Arc::new(move |_spec, report| {
        let probed = Probed::probe(report.results, report.started_late);
        if to_seal.try_send(Done::Probe(probed)).is_err() {
            tracing::warn!("too many results waiting to be sealed: a probe's results were dropped");
        }
    });
    let to_seal = tx.clone();
    let control: ControlSink = Arc::new(move |region, at, ok| {
        let check = ControlCheck {
            region: region.to_string(),
            at,
            ok,
        };
        let _ = to_seal.try_send(Done::Control(check));
    });
    let now = tokio::time::Instant::now();
    Scheduler::new(config, prober, sink, now).with_control(config, control, now)
}

/// Seals what the scheduler finished into batches — every second, or at 5 000 results — and
/// spools each before the sender sees it. Returns once every sender is gone and all is sealed.
async fn seal(parts: Arc<Parts>, mut rx: mpsc::Receiver<Done>) {
    let mut seq = 0u64;
    let mut pending = Batch {
        boot: parts.boot.clone(),
        seq: 0,
        assignment_version: String::new(),
        results: Vec::new(),
        controls: Vec::new(),
    };
    let mut ticker = tokio::time::interval(SEAL_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // (still open, a seal is due)
        let (open, due) = tokio::select! {
            done = rx.recv() => match done {
                Some(Done::Probe(p)) => {
                    pending.results.extend(p);
                    (true, pending.results.len() >= MAX_BATCH_RESULTS)
                }
                Some(Done::Control(c)) => { pending.controls.push(c); (true, false) }
                None => (false, true),
            },
            _ = ticker.tick() => (true, true),
        };
        if due && !(pending.results.is_empty() && pending.controls.is_empty()) {
            pending.seq = seq;
            pending.assignment_version = parts.version.borrow().clone().unwrap_or_default();
            let batch = std::mem::replace(
                &mut pending,
                Batch {
                    boot: parts.boot.clone(),
                    seq: 0,
                    assignment_version: String::new(),
                    results: Vec::new(),
                    controls: Vec::new(),
                },
            );
            seq += 1;
            spool_batch(&parts, batch).await;
        }
        if !open {
            return;
        }
    }
}

/// Compresses a batch and appends it to the spool (fsynced) off the async threads.
async fn spool_batch(parts: &Arc<Parts>, batch: Batch) {
    let now = parts.clock.now().timestamp_millis();
    let (spool, sealed) = (parts.spool.clone(), parts.sealed.clone());
    let written = tokio::task::spawn_blocking(move || {
        let json = serde_json::to_vec(&batch).expect("a batch serializes");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&json).expect("writing to memory");
        let body = gz.finish().expect("writing to memory");
        let key = (batch.boot.as_str(), batch.seq, batch.results.len() as u64);
        spool.lock().expect("spool").append(key, &body, now)
    })
    .await;
    match written {
        Ok(Ok(b)) => {
            // Said once it is durable: what a test of "nothing synced is lost" counts.
            tracing::debug!(
                "batch spooled: boot {} seq {} results {}",
                b.boot,
                b.seq,
                b.results
            );
            sealed.notify_one();
        }
        Ok(Err(e)) => tracing::error!(error = %e, "cannot spool a batch: its results are lost"),
        Err(e) => tracing::error!(error = %e, "spooling a batch panicked"),
    }
}

/// Fetches the assignment until one parses (retrying with backoff), or `stop`.
async fn first_assignment(
    parts: &Parts,
    stop: &CancellationToken,
) -> Option<(Assignment, Config, Arc<Prober>)> {
    let mut wait = Duration::from_millis(200);
    loop {
        match parts.link.assignment(None).await {
            Ok(Some(a)) => match apply(&a, &parts.clock) {
                Ok((config, prober)) => return Some((a, config, prober)),
                Err(why) => tracing::error!(%why, "the assignment cannot be used"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot get the assignment yet"),
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(uplink::jitter(wait)) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

/// The config and prober an assignment describes.
fn apply(a: &Assignment, clock: &Clock) -> Result<(Config, Arc<Prober>), String> {
    let config = Config::parse(&a.config, "assignment", std::path::Path::new("."))
        .map_err(|e| e.to_string())?;
    let pems: HashMap<String, String> = a.ca_certificates.clone().into_iter().collect();
    let prober = Prober::with_cas(&config, &pems).map_err(|e| e.to_string())?;
    Ok((config, Arc::new(prober.with_clock(clock.clone()))))
}

/// Long-polls the assignment and hands each new one to the scheduler, which keeps every
/// unchanged series on its rhythm.
async fn assignments(
    parts: Arc<Parts>,
    first: Assignment,
    reloads: mpsc::Sender<(Config, Arc<Prober>)>,
    stop: CancellationToken,
) {
    let mut known = first.assignment_version;
    let mut wait = Duration::from_millis(200);
    loop {
        let polled = tokio::select! {
            _ = stop.cancelled() => return,
            p = parts.link.assignment(Some(&known)) => p,
        };
        match polled {
            Ok(None) => wait = Duration::from_millis(200),
            Ok(Some(a)) => {
                wait = Duration::from_millis(200);
                known.clone_from(&a.assignment_version);
                match apply(&a, &parts.clock) {
                    Ok(new) => {
                        tracing::info!(assignment = %known, "new assignment applied");
                        parts.version.send_replace(Some(known.clone()));
                        let _ = reloads.send(new).await;
                        // Tell the service at once which assignment runs now.
                        parts.heartbeat_now.notify_one();
                    }
                    Err(why) => {
                        tracing::error!(%why, "the new assignment cannot be used; keeping the old one")
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "assignment poll failed");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(uplink::jitter(wait)) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Sends a heartbeat every 10 s (and at once when the sender asks), each carrying the previous
/// exchange's four instants so the service can measure this agent's clock.
async fn heartbeats(
    parts: Arc<Parts>,
    stats: Arc<Mutex<Option<Arc<SchedulerStats>>>>,
    stop: CancellationToken,
) {
    let mut previous: Option<Exchange> = None;
    loop {
        let (backlog, dropped) = {
            let spool = parts.spool.lock().expect("spool");
            (spool.backlog_results(), spool.dropped)
        };
        let (in_flight, concurrency) = stats.lock().expect("stats").as_ref().map_or((0, 0), |s| {
            (
                s.in_flight.load(Ordering::Relaxed),
                s.peak_in_flight.load(Ordering::Relaxed),
            )
        });
        let t0 = parts.clock.now().timestamp_millis();
        let hb = Heartbeat {
            boot: parts.boot.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            assignment_version: parts.version.borrow().clone(),
            backlog_records: backlog,
            in_flight,
            concurrency,
            sent_ms: t0,
            previous,
            spool_dropped: dropped,
        };
        match parts.link.heartbeat(&hb).await {
            Ok(answer) => {
                let t3 = parts.clock.now().timestamp_millis();
                previous = Some(Exchange {
                    t0,
                    t1: answer.received_ms,
                    t2: answer.answered_ms,
                    t3,
                });
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
        // A second heartbeat soon after the first completes the exchange the clock is measured by.
        let next = if previous.is_some() && hb.previous.is_none() {
            Duration::from_millis(200)
        } else {
            HEARTBEAT_EVERY
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            () = parts.heartbeat_now.notified() => {}
            _ = tokio::time::sleep(next) => {}
        }
    }
}
