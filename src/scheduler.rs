//! When each probe series runs: every series once per interval, spread evenly across the interval,
//! never overlapping a series with its own previous run, with bounded concurrency.
//!
//! The scheduler owns timing only: what a probe does is `probe`'s, where its results go is the
//! sink's. `tick(now)` starts everything due at `now`, so tests can step it; `run` is the loop the
//! service uses. A reload keeps every unchanged series on its rhythm.
//!
//! Beside the probe series it runs each region's control-target check once per interval, at the
//! start of the interval (see [`Scheduler::with_control`]), so whoever decides reads the verdict
//! instead of probing anything itself.
//!
//! A series that fails is run again before its next interval to confirm it (`confirm`): at once,
//! then every `confirm_interval_ms`, until it passes or has `[engine] fall_rounds` failed
//! confirmations. Passing series cost no extra run.

mod confirm;
mod stats;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Host, ProbePath, Region, ResolverConfig};
use crate::probe::{ProbeReport, Prober, control};
use crate::series::{SeriesKey, probe_failed};

use confirm::Confirmations;
pub use stats::{LAG_BUCKETS_S, SchedulerStats};

/// One probe series, owned (the scheduler outlives config reloads). The host and region are
/// shared by all their series, and the host is kept without its path list: with thousands of
/// series a per-series copy of every path would cost hundreds of megabytes.
#[derive(Debug, Clone)]
pub struct SeriesSpec {
    /// The series' four names.
    pub key: SeriesKey,
    /// The host, without its paths.
    pub host: Arc<Host>,
    /// The object probed.
    pub path: ProbePath,
    /// The region probed from.
    pub region: Arc<Region>,
    /// The resolver probed through.
    pub resolver: ResolverConfig,
}

/// Where finished probes go (the store's ingest, metrics, the engine).
pub type Sink = Arc<dyn Fn(&SeriesSpec, ProbeReport) + Send + Sync>;

/// Where finished control checks go: the region, when the check started, whether any target answered.
pub type ControlSink = Arc<dyn Fn(&str, DateTime<Utc>, bool) + Send + Sync>;

/// One region's control-target check in the schedule.
struct ControlSlot {
    region: String,
    targets: Arc<Vec<SocketAddr>>,
    due: Instant,
    running: Arc<AtomicBool>,
}

struct Slot {
    spec: Arc<SeriesSpec>,
    running: Arc<AtomicBool>,
    /// Bumped when the slot is replaced, so stale heap entries are ignored.
    generation: u64,
}

/// The schedule of every series.
pub struct Scheduler {
    interval: Duration,
    concurrency: usize,
    prober: Arc<Prober>,
    sink: Sink,
    permits: Arc<Semaphore>,
    slots: HashMap<SeriesKey, Slot>,
    due: BinaryHeap<Reverse<(Instant, u64, SeriesKey)>>,
    next_generation: u64,
    tasks: TaskTracker,
    stats: Arc<SchedulerStats>,
    /// Control checks, when a control sink is set; their timeout is the connect timeout.
    control: Option<ControlSink>,
    controls: Vec<ControlSlot>,
    control_timeout: Duration,
    /// The failing series' confirmations, updated as runs finish, and the loop's wake-up then.
    confirms: Arc<Mutex<Confirmations>>,
    finished: Arc<Notify>,
}

/// Every series of a config, in config order, then the merged prefixes' original domains
/// ([`Config::origin_hosts`]).
pub fn series_of(config: &Config) -> Vec<SeriesSpec> {
    let regions: Vec<Arc<Region>> = config.regions.iter().cloned().map(Arc::new).collect();
    let origins = config.origin_hosts();
    config
        .hosts
        .iter()
        .chain(&origins)
        .flat_map(|h| host_series(h, &regions))
        .collect()
}

/// Each path of `host` from each region through each of its resolvers.
fn host_series(host: &Host, regions: &[Arc<Region>]) -> Vec<SeriesSpec> {
    let bare = Arc::new(Host {
        paths: Vec::new(),
        ..host.clone()
    });
    let mut out = Vec::new();
    for path in &host.paths {
        for region in regions {
            for resolver in &region.resolvers {
                out.push(SeriesSpec {
                    key: SeriesKey {
                        host: host.domain.clone(),
                        path: path.path.clone(),
                        region: region.name.clone(),
                        resolver: resolver.name.clone(),
                    },
                    host: bare.clone(),
                    path: path.clone(),
                    region: region.clone(),
                    resolver: resolver.clone(),
                });
            }
        }
    }
    out
}

impl Scheduler {
    /// Schedules every series of `config`, the i-th of n first due at `start + interval × i / n`.
    pub fn new(config: &Config, prober: Arc<Prober>, sink: Sink, start: Instant) -> Scheduler {
        let mut s = Scheduler {
            interval: config.probe.interval(),
            concurrency: config.probe.concurrency,
            prober,
            sink,
            permits: Arc::new(Semaphore::new(config.probe.concurrency)),
            slots: HashMap::new(),
            due: BinaryHeap::new(),
            next_generation: 0,
            tasks: TaskTracker::new(),
            stats: Arc::default(),
            control: None,
            controls: Vec::new(),
            control_timeout: config.probe.timeouts.connect(),
            confirms: Arc::new(Mutex::new(Confirmations::new(
                config.probe.confirm_interval(),
                fall_of(config),
            ))),
            finished: Arc::default(),
        };
        let specs = series_of(config);
        let n = specs.len().max(1) as u32;
        for (i, spec) in specs.into_iter().enumerate() {
            let first = start + s.interval * i as u32 / n;
            s.insert(spec, first);
        }
        s.stats
            .series
            .store(s.slots.len() as u64, Ordering::Relaxed);
        s
    }

    fn insert(&mut self, spec: SeriesSpec, first_due: Instant) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.due
            .push(Reverse((first_due, generation, spec.key.clone())));
        // A replaced series keeps its in-flight flag, so its old run and its new one never overlap.
        let running = self
            .slots
            .get(&spec.key)
            .map_or_else(Arc::default, |old| old.running.clone());
        self.slots.insert(
            spec.key.clone(),
            Slot {
                spec: Arc::new(spec),
                running,
                generation,
            },
        );
    }

    /// The scheduler's counters, shared.
    pub fn stats(&self) -> Arc<SchedulerStats> {
        self.stats.clone()
    }

    /// Series in the schedule.
    pub fn series_count(&self) -> usize {
        self.slots.len()
    }

    /// When `key` is next planned to start.
    pub fn planned(&self, key: &SeriesKey) -> Option<Instant> {
        let generation = self.slots.get(key)?.generation;
        self.due
            .iter()
            .find(|Reverse((_, g, k))| *g == generation && k == key)
            .map(|Reverse((at, _, _))| *at)
    }

    /// Also checks every region's control targets once per interval, the first check due at
    /// `start`, and hands each verdict to `sink`.
    pub fn with_control(mut self, config: &Config, sink: ControlSink, start: Instant) -> Scheduler {
        self.control = Some(sink);
        self.set_controls(config, start);
        self
    }

    /// One control slot per region of `config`; a region already scheduled keeps its time.
    fn set_controls(&mut self, config: &Config, first_due: Instant) {
        let old = std::mem::take(&mut self.controls);
        self.controls = config
            .regions
            .iter()
            .map(|r| {
                let kept = old.iter().find(|c| c.region == r.name);
                ControlSlot {
                    region: r.name.clone(),
                    targets: Arc::new(r.control_targets.clone()),
                    due: kept.map_or(first_due, |c| c.due),
                    running: kept.map_or_else(Arc::default, |c| c.running.clone()),
                }
            })
            .collect();
        self.control_timeout = config.probe.timeouts.connect();
    }

    /// When the next series (or confirmation, or control check) is due.
    pub fn next_due(&self) -> Option<Instant> {
        let probe = self.due.peek().map(|Reverse((at, _, _))| *at);
        let control = self.controls.iter().map(|c| c.due).min();
        let confirm = self.next_confirmation();
        probe.into_iter().chain(control).chain(confirm).min()
    }

    /// When the next confirmation of a failed series is due.
    pub fn next_confirmation(&self) -> Option<Instant> {
        self.confirms.lock().expect("confirmations").next_due()
    }

    /// Starts every series due at or before `now`; returns how many were started.
    pub fn tick(&mut self, now: Instant) -> usize {
        let mut started = 0;
        while let Some(Reverse((at, generation, _))) = self.due.peek() {
            if *at > now {
                break;
            }
            let (at, generation) = (*at, *generation);
            let Reverse((_, _, key)) = self.due.pop().expect("peeked");
            let Some(slot) = self.slots.get(&key).filter(|s| s.generation == generation) else {
                continue; // removed or replaced by a reload
            };
            self.due
                .push(Reverse((at + self.interval, generation, key)));
            if slot.running.swap(true, Ordering::AcqRel) {
                self.stats.skipped_overlap.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.confirms
                .lock()
                .expect("confirmations")
                .started(&slot.spec.key);
            self.launch(slot.spec.clone(), slot.running.clone(), at);
            started += 1;
        }
        started += self.tick_confirmations(now);
        self.tick_controls(now);
        started
    }

    /// Starts the confirmations due at or before `now`; a series still running (or gone with a
    /// reload) is skipped: its run in flight serves as the confirmation.
    fn tick_confirmations(&mut self, now: Instant) -> usize {
        let due = self.confirms.lock().expect("confirmations").take_due(now);
        let mut started = 0;
        for (key, planned) in due {
            let Some(slot) = self.slots.get(&key) else {
                continue;
            };
            if slot.running.swap(true, Ordering::AcqRel) {
                continue;
            }
            self.stats.confirmations.fetch_add(1, Ordering::Relaxed);
            self.launch(slot.spec.clone(), slot.running.clone(), planned);
            started += 1;
        }
        started
    }

    /// Starts the control checks due at or before `now` (a check still running is skipped).
    fn tick_controls(&mut self, now: Instant) {
        let Some(sink) = self.control.clone() else {
            return;
        };
        for c in self.controls.iter_mut().filter(|c| c.due <= now) {
            c.due += self.interval;
            if c.running.swap(true, Ordering::AcqRel) {
                continue;
            }
            let (region, targets, running, sink) = (
                c.region.clone(),
                c.targets.clone(),
                c.running.clone(),
                sink.clone(),
            );
            let timeout = self.control_timeout;
            let at = self.prober.clock().now();
            self.tasks.spawn(async move {
                let ok = control::any_reachable(&targets, timeout).await;
                sink(&region, at, ok);
                running.store(false, Ordering::Release);
            });
        }
    }

    fn launch(&self, spec: Arc<SeriesSpec>, running: Arc<AtomicBool>, planned: Instant) {
        let (prober, sink, permits, stats) = (
            self.prober.clone(),
            self.sink.clone(),
            self.permits.clone(),
            self.stats.clone(),
        );
        let (confirms, finished) = (self.confirms.clone(), self.finished.clone());
        self.tasks.spawn(async move {
            let permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let lag = Instant::now().saturating_duration_since(planned);
            let lag_us = lag.as_micros() as u64;
            stats.last_lag_us.store(lag_us, Ordering::Relaxed);
            stats.lag_seconds.observe(lag.as_secs_f64());
            stats
                .lag
                .lock()
                .expect("lag histogram")
                .record_ms(lag.as_secs_f64() * 1000.0);
            stats.started.fetch_add(1, Ordering::Relaxed);
            let now_running = stats.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
            stats
                .peak_in_flight
                .fetch_max(now_running, Ordering::AcqRel);
            let mut report = prober
                .probe(&spec.host, &spec.path, &spec.region, &spec.resolver)
                .await;
            report.started_late = lag;
            stats.in_flight.fetch_sub(1, Ordering::AcqRel);
            drop(permit);
            let failed = probe_failed(&report.results);
            sink(&spec, report);
            running.store(false, Ordering::Release);
            let mut confirms = confirms.lock().expect("confirmations");
            confirms.finished(&spec.key, planned, failed);
            if failed {
                finished.notify_one(); // a confirmation may be due now
            }
        });
    }

    /// Applies a new config: unchanged series keep their rhythm, changed ones are replaced (due at
    /// their old time), removed ones stop, new ones get a phase from a hash of their key.
    pub fn reload(&mut self, config: &Config, prober: Arc<Prober>, now: Instant) {
        self.prober = prober;
        let new_interval = config.probe.interval();
        if self.concurrency != config.probe.concurrency {
            // Runs in flight keep their permits from the old semaphore and finish under its bound.
            self.concurrency = config.probe.concurrency;
            self.permits = Arc::new(Semaphore::new(self.concurrency));
        }
        let specs = series_of(config);
        let wanted: HashMap<SeriesKey, SeriesSpec> =
            specs.into_iter().map(|s| (s.key.clone(), s)).collect();
        self.slots.retain(|k, _| wanted.contains_key(k));
        let interval_changed = new_interval != self.interval;
        self.interval = new_interval;
        for (key, spec) in wanted {
            let unchanged = self
                .slots
                .get(&key)
                .is_some_and(|slot| same_spec(&slot.spec, &spec));
            if unchanged && !interval_changed {
                continue;
            }
            // A changed series keeps its slot in the rhythm; a new one (or a new interval) gets a
            // stable phase from its key.
            let kept = if interval_changed {
                None
            } else {
                self.planned(&key)
            };
            let first = kept.unwrap_or_else(|| now + phase_of(&key, self.interval));
            self.insert(spec, first);
        }
        if self.control.is_some() {
            self.set_controls(config, now);
        }
        let slots = &self.slots;
        self.confirms.lock().expect("confirmations").reload(
            config.probe.confirm_interval(),
            fall_of(config),
            |k| slots.contains_key(k),
        );
        self.stats
            .series
            .store(self.slots.len() as u64, Ordering::Relaxed);
    }

    /// Waits until every probe and control check started so far has handed its result to the sink
    /// (a stepped service runs one interval's probes, then decides on them).
    pub async fn settle(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }

    /// The service loop: sleeps until the next series is due, starts it, and so on, applying reloads
    /// as they arrive. On cancellation it stops starting probes and waits for running ones.
    pub async fn run(
        mut self,
        mut reloads: mpsc::Receiver<(Config, Arc<Prober>)>,
        token: CancellationToken,
    ) {
        loop {
            let next = self
                .next_due()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = token.cancelled() => break,
                Some((config, prober)) = reloads.recv() => {
                    self.reload(&config, prober, Instant::now());
                    tracing::info!(series = self.series_count(), "config reloaded");
                }
                _ = tokio::time::sleep_until(next) => { self.tick(Instant::now()); }
                () = self.finished.notified() => { self.tick(Instant::now()); }
            }
        }
        self.tasks.close();
        self.tasks.wait().await;
    }
}

fn same_spec(a: &SeriesSpec, b: &SeriesSpec) -> bool {
    a.host == b.host && a.path == b.path && a.region == b.region && a.resolver == b.resolver
}

/// The failed confirmations after which a series is left alone: `[engine] fall_rounds`.
fn fall_of(config: &Config) -> u32 {
    u32::try_from(config.engine.fall_rounds).unwrap_or(u32::MAX)
}

/// A stable phase within the interval for a series that joins a running schedule (and a failed
/// series' offset within half the confirm interval).
fn phase_of(key: &SeriesKey, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let frac = (h.finish() % 1_000_000) as f64 / 1_000_000.0;
    interval.mul_f64(frac)
}
