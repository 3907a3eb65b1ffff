//! Start-up and shutdown of the long-running service (`serve`, `demo`, and the integration tests):
//! builds the shared state, starts every task under one cancellation token, stops them in order.
//!
//! Shutdown order: stop starting probes and wait for running ones (they end within their phase
//! timeouts), then let the writer flush its queue and checkpoint, then stop the HTTP server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::decider::{self, LatestResults};
use crate::probe::{ProbeSetupError, Prober};
use crate::publish::{Publisher, Signer};
use crate::scheduler::{Scheduler, SchedulerStats, Sink};
use crate::store::writer::{self, Ingest, WriterSettings};
use crate::store::{Record, Retention, Store, StoreError};
use crate::web;

/// What `serve` needs beyond the config.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// This prober's identity, stored with every result.
    pub prober_id: String,
    /// Admin and agent tokens (from the environment for `serve`).
    pub tokens: crate::auth::Tokens,
    /// Raise the next config version above this (after restoring an older database).
    pub bump_version: Option<i64>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Prober(#[from] ProbeSetupError),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The state every HTTP handler sees: cheap handles only.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub ingest: Ingest,
    pub scheduler: Arc<SchedulerStats>,
    pub config: Arc<std::sync::RwLock<Arc<Config>>>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub tokens: Arc<crate::auth::Tokens>,
    pub publisher: Arc<Publisher>,
    pub latest: Arc<LatestResults>,
}

/// A running service.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    reload_tx: mpsc::Sender<(Config, Arc<Prober>)>,
    config_path: PathBuf,
    probes_token: CancellationToken,
    writer_token: CancellationToken,
    http_token: CancellationToken,
    probes: TaskTracker,
    writer: TaskTracker,
    http: TaskTracker,
}

/// Opens the store, binds the listener (port 0 is fine) and starts the scheduler, the writer and
/// the HTTP server.
pub async fn start(opts: ServeOptions) -> Result<Running, StartError> {
    let config = Config::load(&opts.config_path)?;
    std::fs::create_dir_all(&opts.data_dir).map_err(|source| StartError::DataDir {
        path: opts.data_dir.clone(),
        source,
    })?;
    let store = Store::open(&opts.data_dir.join("cdnwatch.db")).await?;
    let prober = Arc::new(Prober::new(&config)?);
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: opts.listen,
        source,
    })?;

    let (writer_token, writer_tracker) = (CancellationToken::new(), TaskTracker::new());
    let ingest = writer::spawn(
        store.clone(),
        writer_settings(&config),
        writer_token.clone(),
        &writer_tracker,
    );

    let signer = Arc::new(Signer::load_or_create(&opts.data_dir.join("signing.key"))?);
    let floor = opts.data_dir.join("version.floor");
    let publisher =
        Arc::new(Publisher::open(store.clone(), signer, floor, opts.bump_version).await?);
    let latest = Arc::new(LatestResults::default());

    let prober_id: Arc<str> = Arc::from(opts.prober_id.as_str());
    let sink_ingest = ingest.clone();
    let sink_latest = latest.clone();
    let sink: Sink = Arc::new(move |spec, report| {
        sink_latest.put(spec.key.clone(), report.results.clone());
        for result in report.results {
            // A full queue drops (and counts) the record: probing never waits on the database.
            let _ = sink_ingest.submit(Record {
                prober: prober_id.clone(),
                result,
            });
        }
    });
    let scheduler = Scheduler::new(&config, prober, sink, tokio::time::Instant::now());
    let state = AppState {
        store: store.clone(),
        ingest,
        scheduler: scheduler.stats(),
        config: Arc::new(std::sync::RwLock::new(Arc::new(config))),
        started_at: chrono::Utc::now(),
        tokens: Arc::new(opts.tokens.clone()),
        publisher: publisher.clone(),
        latest: latest.clone(),
    };
    let (reload_tx, reload_rx) = mpsc::channel(4);
    let (probes_token, probes) = (CancellationToken::new(), TaskTracker::new());
    probes.spawn(scheduler.run(reload_rx, probes_token.clone()));
    probes.spawn(decider::run(
        state.config.clone(),
        latest,
        store.clone(),
        publisher,
        probes_token.clone(),
    ));

    let (http_token, http) = (CancellationToken::new(), TaskTracker::new());
    let app = web::router(state.clone());
    let stop = http_token.clone();
    http.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!(error = %e, "the HTTP server failed");
        }
    });
    Ok(Running {
        addr,
        state,
        reload_tx,
        config_path: opts.config_path,
        probes_token,
        writer_token,
        http_token,
        probes,
        writer: writer_tracker,
        http,
    })
}

fn writer_settings(config: &Config) -> WriterSettings {
    let st = &config.store;
    WriterSettings {
        batch_size: st.batch_size,
        queue_capacity: st.queue_capacity,
        maintenance_interval: Duration::from_millis(st.maintenance_interval_ms),
        retention: Retention {
            raw: Duration::from_secs(st.raw_retention_hours * 3600),
            minute: Duration::from_secs(st.minute_rollup_days * 86_400),
            hour: Duration::from_secs(st.hour_rollup_days * 86_400),
        },
    }
}

impl Running {
    /// Re-reads the config file. A bad file is refused with the same problems `check-config`
    /// prints, and the running config stays in force.
    pub async fn reload(&self) -> Result<(), StartError> {
        let config = Config::load(&self.config_path)?;
        let prober = Arc::new(Prober::new(&config)?);
        *self.state.config.write().expect("config lock") = Arc::new(config.clone());
        // The scheduler only stops receiving at shutdown; a reload then has nothing left to apply.
        let _ = self.reload_tx.send((config, prober)).await;
        Ok(())
    }

    /// Stops everything in order; returns once the store is flushed and closed.
    pub async fn shutdown(self) {
        self.probes_token.cancel();
        self.probes.close();
        self.probes.wait().await;
        self.writer_token.cancel();
        self.writer.close();
        self.writer.wait().await;
        self.http_token.cancel();
        self.http.close();
        self.http.wait().await;
        self.state.store.close().await;
    }
}

/// `cdnwatch serve`: runs until SIGTERM or SIGINT; SIGHUP reloads the config.
pub async fn serve(opts: ServeOptions) -> anyhow::Result<std::process::ExitCode> {
    let running = start(opts).await?;
    tracing::info!(addr = %running.addr, "serving");
    println!("cdnwatch listening on http://{}", running.addr);
    wait_for_signals(&running).await?;
    tracing::info!("shutting down: finishing running probes, flushing the store");
    running.shutdown().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Waits for SIGTERM/SIGINT, reloading the config on each SIGHUP meanwhile.
pub async fn wait_for_signals(running: &Running) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = hup.recv() => match running.reload().await {
                Ok(()) => tracing::info!("SIGHUP: config reloaded"),
                Err(e) => tracing::error!("SIGHUP: the new config was refused, the old one keeps running:\n{e}"),
            },
        }
    }
}

/// The default data directory for a config file: `data/` beside the current directory.
pub fn default_data_dir() -> &'static Path {
    Path::new("data")
}
