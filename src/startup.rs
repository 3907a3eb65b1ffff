//! Start-up and shutdown of the long-running service (`serve`, `demo`, the integration tests and
//! the benchmarks): opens the store, builds the shared state, starts every task, stops them in order.
//! It only wires things; each part's behaviour lives in its own module.
//!
//! Data flow: config → scheduler → probe → [`results`](crate::results) → store queue, metrics and
//! the latest rounds → decision loop → engine → publisher → web.
//!
//! Shutdown order: stop starting probes and wait for running ones (they end within their phase
//! timeouts), then let the writer flush its queue and checkpoint, then stop the HTTP server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::{Config, LiveConfig};
use crate::decision_loop::{self, DecisionLoop};
use crate::engine::Evaluation;
use crate::fleet::Fleet;
use crate::incident::Board;
use crate::metrics::{Metrics, ServiceState, Source};
use crate::model::Probed;
use crate::notify::dispatch::{self, Outbox, Shared};
use crate::probe::{ProbeSetupError, Prober};
use crate::publish::{self, Publisher};
use crate::results::Results;
use crate::scheduler::{ControlSink, Scheduler, Sink};
use crate::store::writer::{self, WriterSettings};
use crate::store::{Retention, Store, StoreError};
use crate::web::{self, AppState};

/// What `serve` needs beyond the config.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The config file, read again on reload.
    pub config_path: PathBuf,
    /// Where the database and the signing key live.
    pub data_dir: PathBuf,
    /// The HTTP server's address (port 0 picks one): every route, or with `public_listen` the
    /// internal ones (pages, admin, status, metrics, the agents' API).
    pub listen: SocketAddr,
    /// The public listener's address: only what app clients need (README: "Listeners and
    /// limits"). `None`: `listen` serves everything.
    pub public_listen: Option<SocketAddr>,
    /// This prober's identity, stored with every result.
    pub prober_id: String,
    /// Admin and agent tokens (from the environment for `serve`).
    pub tokens: crate::auth::Tokens,
    /// Raise the next config version above this (after restoring an older database).
    pub bump_version: Option<i64>,
    /// Make a new signing key even though this data directory has published versions (`--init-key`).
    pub init_key: bool,
    /// The clock results are stamped with and decisions made at. With the system clock the
    /// scheduler and the decision loop run on their own; with a stepped one nothing probes or
    /// decides until [`Running::step`] says so (the integration tests step a whole outage).
    pub clock: Clock,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config could not be loaded.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The prober could not be set up.
    #[error(transparent)]
    Prober(#[from] ProbeSetupError),
    /// The publisher could not be set up.
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    /// The metrics could not be registered.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// A listener could not be served.
    #[error(transparent)]
    Serve(#[from] web::server::ServeError),
    /// A notification channel could not be set up.
    #[error(transparent)]
    Notify(#[from] dispatch::DispatchError),
    /// The agents could not be set up (a token file, a CA file).
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
}

/// How long a stepped round waits for its results to be written.
const STEP_FLUSH: Duration = Duration::from_secs(10);

/// A running service.
pub struct Running {
    /// Where the HTTP server listens (the internal listener when there is a public one).
    pub addr: SocketAddr,
    /// Where the public listener listens, if there is one.
    pub public_addr: Option<SocketAddr>,
    /// The handles the HTTP handlers use.
    pub state: AppState,
    reload_tx: mpsc::Sender<(Config, Arc<Prober>)>,
    config_path: PathBuf,
    clock: Clock,
    /// With a stepped clock: the scheduler and decision loop that [`Running::step`] drives.
    stepper: Option<tokio::sync::Mutex<Stepper>>,
    probes_token: CancellationToken,
    writer_token: CancellationToken,
    http_token: CancellationToken,
    probes: TaskTracker,
    writer: TaskTracker,
    http: TaskTracker,
}

/// What a stepped service runs by hand: one interval of probes, then one decision.
struct Stepper {
    scheduler: Scheduler,
    decisions: DecisionLoop,
    /// The scheduler's time: it moves one interval a step, like the clock.
    at: tokio::time::Instant,
    /// The scheduler's time at the last decision of an interval.
    decided: tokio::time::Instant,
}

/// Opens the store, binds the listeners (port 0 is fine) and starts the scheduler, the writer, the
/// decision loop and the HTTP server.
pub async fn start(opts: ServeOptions) -> Result<Running, StartError> {
    let config = Config::load(&opts.config_path)?;
    std::fs::create_dir_all(&opts.data_dir).map_err(|source| StartError::DataDir {
        path: opts.data_dir.clone(),
        source,
    })?;
    let (listener, addr) = bind(opts.listen).await?;
    let public = match opts.public_listen {
        Some(at) => Some(bind(at).await?),
        None => None,
    };
    let (writer_token, writer) = (CancellationToken::new(), TaskTracker::new());
    let (state, scheduler) = state(&opts, &config, writer_token.clone(), &writer).await?;
    let (reload_tx, reload_rx) = mpsc::channel(4);
    let (probes_token, probes) = (CancellationToken::new(), TaskTracker::new());
    let senders = Shared {
        store: state.store.clone(),
        clock: opts.clock.clone(),
        metrics: state.metrics.clone(),
        outbox: state.outbox.clone(),
        roots: crate::trust::root_store(true, &[]),
    };
    dispatch::spawn(&state.config.get(), &senders, &probes_token, &probes)?;
    let stepper = if opts.clock.is_stepped() {
        Some(stepper(&config, scheduler, &state, &opts.clock).await)
    } else {
        probes.spawn(scheduler.run(reload_rx, probes_token.clone()));
        spawn_deciding(&state, &opts.clock, &probes_token, &probes);
        None
    };
    let (http_token, http) = (CancellationToken::new(), TaskTracker::new());
    let public_addr = public.as_ref().map(|(_, a)| *a);
    serve_http(listener, public.map(|(l, _)| l), &state, &http_token, &http)?;
    Ok(Running {
        addr,
        public_addr,
        state,
        reload_tx,
        config_path: opts.config_path,
        clock: opts.clock,
        stepper,
        probes_token,
        writer_token,
        http_token,
        probes,
        writer,
        http,
    })
}

/// Starts the decision loop and the agents' liveness checks on `tasks`, until `token`.
fn spawn_deciding(state: &AppState, clock: &Clock, token: &CancellationToken, tasks: &TaskTracker) {
    tasks.spawn(decision_loop::run(
        state.config.clone(),
        state.latest().clone(),
        (
            state.store.clone(),
            state.publisher.clone(),
            state.incidents.clone(),
            state.outbox.clone(),
        ),
        clock.clone(),
        token.clone(),
    ));
    tasks.spawn(watch_agents(state.clone(), token.clone()));
}

/// Serves every route on `listener`, or with a `public` listener the internal routes there and
/// the app clients' on `public`; their servers run on `http` until `stop`.
fn serve_http(
    listener: TcpListener,
    public: Option<TcpListener>,
    state: &AppState,
    stop: &CancellationToken,
    http: &TaskTracker,
) -> Result<(), StartError> {
    let face = if public.is_some() {
        web::Face::Internal
    } else {
        web::Face::All
    };
    let faces = std::iter::once((listener, face)).chain(public.map(|l| (l, web::Face::Public)));
    for (listener, face) in faces {
        let server = web::server::serve(listener, state.clone(), face, stop.clone())?;
        http.spawn(server.stopped());
    }
    Ok(())
}

/// A listener on `at` (port 0 picks one) and the address it got.
async fn bind(at: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listen_err = |source| StartError::Listen { addr: at, source };
    let listener = TcpListener::bind(at).await.map_err(listen_err)?;
    let addr = listener.local_addr().map_err(listen_err)?;
    Ok((listener, addr))
}

/// The shared state — store, its writer (started on `writer`, stopped by `writer_token`),
/// publisher, metrics, results — and the scheduler that feeds it, not yet running.
async fn state(
    opts: &ServeOptions,
    config: &Config,
    writer_token: CancellationToken,
    writer: &TaskTracker,
) -> Result<(AppState, Scheduler), StartError> {
    let store = Store::open(&opts.data_dir.join("cdnwatch.db")).await?;
    let prober = Arc::new(Prober::new(config)?.with_clock(opts.clock.clone()));
    let ingest = writer::spawn(
        store.clone(),
        writer_settings(config, &opts.clock),
        writer_token,
        writer,
    );
    let floor = opts.data_dir.join("version.floor");
    let signer = publish::keys::open_signer(&opts.data_dir, &store, &floor, opts.init_key).await?;
    let signer = Arc::new(signer);
    let publisher =
        Arc::new(Publisher::open(store.clone(), signer, floor, opts.bump_version).await?);
    let metrics = Metrics::new()?;
    let live = LiveConfig::new(config.clone());
    let results = Results::new(ingest.clone(), metrics.clone(), live.clone());
    let fleet = Arc::new(Fleet::new(config, opts.clock.now())?);
    let scheduler = scheduler(&config.locally_probed(), prober, &results, &opts.prober_id);
    let state = AppState {
        store,
        ingest,
        results,
        scheduler: scheduler.stats(),
        config: live,
        clock: opts.clock.clone(),
        tokens: Arc::new(opts.tokens.clone()),
        publisher,
        metrics,
        guards: Arc::default(),
        incidents: Board::new(),
        outbox: Outbox::new(),
        fleet,
    };
    check_agents(&state).await;
    state.metrics.watch(ServiceState {
        publisher: state.publisher.clone(),
        config: state.config.clone(),
        scheduler: state.scheduler.clone(),
        ingest: state.ingest.clone(),
        incidents: state.incidents.clone(),
        fleet: state.fleet.clone(),
    })?;
    Ok((state, scheduler))
}

/// How often the agents' heartbeats are checked for one missed too many.
const AGENTS_CHECKED_EVERY: Duration = Duration::from_secs(1);

/// Decides which agents are up, at the service's time: their regions without a live agent get no
/// valid evidence, and each agent that went down or came back is an event.
async fn check_agents(state: &AppState) {
    if state.fleet.is_empty() {
        return;
    }
    let (events, unheard) = state.fleet.liveness(state.clock.now().timestamp_millis());
    state.latest().set_unheard(unheard);
    for e in &events {
        tracing::warn!(reason = e.reason.as_str(), "{}", e.detail);
    }
    if !events.is_empty()
        && let Err(e) = state.store.record_events(&events).await
    {
        tracing::error!(error = %e, "recording agent events failed");
    }
}

/// Checks the agents every second until cancelled.
async fn watch_agents(state: AppState, token: CancellationToken) {
    let mut ticker = tokio::time::interval(AGENTS_CHECKED_EVERY);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = ticker.tick() => check_agents(&state).await,
        }
    }
}

/// The scheduler of every series of `config`, its probes and control checks handed to `results`
/// as this prober's (`prober_id`).
fn scheduler(
    config: &Config,
    prober: Arc<Prober>,
    results: &Results,
    prober_id: &str,
) -> Scheduler {
    let prober_id: Arc<str> = Arc::from(prober_id);
    let to_results = results.clone();
    let sink: Sink = Arc::new(move |_spec, report| {
        let probed = Probed::probe(report.results, report.started_late);
        to_results.accept(Source::Local, &prober_id, probed);
    });
    let to_results = results.clone();
    let control: ControlSink =
        Arc::new(move |region, at, ok| to_results.accept_control(region, at, ok));
    let now = tokio::time::Instant::now();
    Scheduler::new(config, prober, sink, now).with_control(config, control, now)
}

/// The stepped service's scheduler and decision loop, after the cold-start publish.
async fn stepper(
    config: &Config,
    scheduler: Scheduler,
    state: &AppState,
    clock: &Clock,
) -> tokio::sync::Mutex<Stepper> {
    let decisions = DecisionLoop::new(
        config,
        &state.publisher,
        state.incidents.clone(),
        clock.now(),
    )
    .with_outbox(state.outbox.clone());
    decision_loop::publish_cold_start(config, &state.publisher, clock.now()).await;
    let now = tokio::time::Instant::now();
    tokio::sync::Mutex::new(Stepper {
        scheduler,
        decisions,
        at: now,
        decided: now,
    })
}

fn writer_settings(config: &Config, clock: &Clock) -> WriterSettings {
    let st = &config.store;
    WriterSettings {
        batch_size: st.batch_size,
        queue_capacity: st.queue_capacity,
        maintenance_interval: st.maintenance_interval(),
        retention: Retention {
            raw: st.raw_retention(),
            minute: st.minute_rollup_retention(),
            hour: st.hour_rollup_retention(),
        },
        clock: clock.clone(),
    }
}

impl Running {
    /// Re-reads the config file. A bad file is refused with the same problems `check-config`
    /// prints, and the running config stays in force.
    pub async fn reload(&self) -> Result<(), StartError> {
        let config = Config::load(&self.config_path)?;
        let prober = Arc::new(Prober::new(&config)?.with_clock(self.clock.clone()));
        self.state.fleet.reload(&config)?;
        self.state.config.set(config.clone());
        let local = config.locally_probed();
        if let Some(stepper) = &self.stepper {
            let mut s = stepper.lock().await;
            let at = s.at;
            s.scheduler.reload(&local, prober, at);
            return Ok(());
        }
        // The scheduler only stops receiving at shutdown; a reload then has nothing left to apply.
        let _ = self.reload_tx.send((local, prober)).await;
        Ok(())
    }

    /// With a stepped clock: runs one interval — every series and control check due in it, until
    /// all have reported and their results are written — then one decision at the clock's time (published if it changed
    /// anything), then moves the clock on by the interval. `None` with the system clock, or when
    /// the decision could not be made.
    pub async fn step(&self) -> Option<Evaluation> {
        let mut s = self.stepper.as_ref()?.lock().await;
        let config = self.state.config.get();
        let interval = config.probe.interval();
        s.at += interval;
        let at = s.at;
        s.scheduler.tick(at);
        s.scheduler.settle().await;
        // The confirmations of failed series due within the interval run in it too.
        while s.scheduler.next_confirmation().is_some_and(|t| t <= at) {
            s.scheduler.tick(at);
            s.scheduler.settle().await;
        }
        s.decided = at;
        check_agents(&self.state).await;
        if !self.state.ingest.flush(STEP_FLUSH).await {
            tracing::warn!("a stepped round's results were not all written within {STEP_FLUSH:?}");
        }
        let state = &self.state;
        let evaluation = s
            .decisions
            .tick(
                &config,
                state.latest(),
                &state.store,
                &state.publisher,
                self.clock.now(),
            )
            .await;
        self.clock.advance(interval);
        evaluation
    }

    /// With a stepped clock: moves the service's time on by `by`, as a running service would
    /// spend it — each series, confirmation and control check at its own instant (the clock
    /// following), a decision when confirmations complete a fall, and one per interval. Returns
    /// the last decision made; `None` with the system clock or when none was due.
    pub async fn advance(&self, by: Duration) -> Option<Evaluation> {
        let mut s = self.stepper.as_ref()?.lock().await;
        let config = self.state.config.get();
        let end = s.at + by;
        let mut last = None;
        loop {
            let due = s.scheduler.next_due().filter(|t| *t <= end);
            let t = due.unwrap_or(end).max(s.at);
            self.clock.advance(t - s.at);
            s.at = t;
            let falls = self.state.latest().confirmed_falls();
            s.scheduler.tick(t);
            s.scheduler.settle().await;
            self.state.ingest.flush(STEP_FLUSH).await;
            let (state, now) = (&self.state, self.clock.now());
            let (latest, store, publisher) = (state.latest(), &state.store, &state.publisher);
            if latest.confirmed_falls() != falls {
                let d = &mut s.decisions;
                last = d.confirm_tick(&config, latest, store, publisher, now).await;
            }
            if t - s.decided >= config.probe.interval() {
                s.decided = t;
                // As `step` and the running service: which agents are down, before deciding.
                check_agents(state).await;
                last = s
                    .decisions
                    .tick(&config, latest, store, publisher, now)
                    .await;
            }
            if t >= end {
                return last;
            }
        }
    }

    /// Stops everything in order; returns once the store is flushed and closed.
    pub async fn shutdown(self) {
        self.probes_token.cancel();
        self.probes.close();
        self.probes.wait().await;
        if let Some(stepper) = &self.stepper {
            stepper.lock().await.scheduler.settle().await;
        }
        self.writer_token.cancel();
        self.writer.close();
        self.writer.wait().await;
        self.http_token.cancel();
        self.http.close();
        self.http.wait().await;
        self.state.store.close().await;
    }
}
