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
use crate::metrics::{Metrics, ServiceState, Source};
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
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
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
    pub metrics: Metrics,
}

impl axum::extract::FromRef<AppState> for Arc<Publisher> {
    fn from_ref(state: &AppState) -> Arc<Publisher> {
        state.publisher.clone()
    }
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

    let metrics = Metrics::new()?;
    let prober_id: Arc<str> = Arc::from(opts.prober_id.as_str());
    let sink_ingest = ingest.clone();
    let sink_latest = latest.clone();
    let sink_metrics = metrics.clone();
    let sink: Sink = Arc::new(move |spec, report| {
        sink_metrics.observe_probe(&spec.host.vendor, Source::Local, &report.results);
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
        metrics,
    };
    state.metrics.watch(ServiceState {
        publisher: state.publisher.clone(),
        config: state.config.clone(),
        scheduler: state.scheduler.clone(),
        ingest: state.ingest.clone(),
    })?;
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
    http.spawn(web::dashboard::keep_warm(app.clone(), http_token.clone()));
    let done = serve_http(
        listener,
        app,
        state.publisher.clone(),
        http_token.clone(),
        &addr,
    )?;
    http.spawn(async move {
        let _ = done.await;
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

/// Serves HTTP on threads of its own, each a single-threaded runtime, all accepting on the same
/// socket. Requests then never wake a thread of the probing runtime or hop between threads, and
/// `GET /api/v1/hostlist` — what millions of clients poll — is answered before the router, from the
/// publisher's precomputed bytes and headers (README, benchmarks: the CPU per request against
/// nginx). Everything else goes through the axum router. At shutdown the threads stop accepting,
/// give open connections (long polls included) a moment, then close them. The returned receiver
/// completes when every HTTP thread has stopped.
fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    publisher: Arc<Publisher>,
    stop: CancellationToken,
    addr: &SocketAddr,
) -> Result<tokio::sync::oneshot::Receiver<()>, StartError> {
    let bind_err = |source| StartError::Listen {
        addr: *addr,
        source,
    };
    let listener = listener.into_std().map_err(bind_err)?;
    // One per core by default, as nginx's `worker_processes auto`; CDNWATCH_HTTP_THREADS overrides.
    let threads = std::env::var("CDNWATCH_HTTP_THREADS")
        .ok()
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|t| *t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(threads));
    let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
    for i in 0..threads {
        let listener = listener.try_clone().map_err(bind_err)?;
        let (app, publisher, stop, remaining, done_tx) = (
            app.clone(),
            publisher.clone(),
            stop.clone(),
            remaining.clone(),
            done_tx.clone(),
        );
        std::thread::Builder::new()
            .name(format!("cdnwatch-http-{i}"))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(http_thread(listener, app, publisher, stop)),
                    Err(e) => tracing::error!(error = %e, "the HTTP thread has no runtime"),
                }
                if remaining.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1
                    && let Some(tx) = done_tx.lock().expect("done lock").take()
                {
                    let _ = tx.send(());
                }
            })
            .map_err(bind_err)?;
    }
    Ok(done_rx)
}

/// How long open connections get to finish once the server stops.
const HTTP_DRAIN: Duration = Duration::from_secs(2);

async fn http_thread(
    listener: std::net::TcpListener,
    app: axum::Router,
    publisher: Arc<Publisher>,
    stop: CancellationToken,
) {
    use tower::ServiceExt as _;
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "the HTTP thread cannot listen");
            return;
        }
    };
    let connections = TaskTracker::new();
    loop {
        let (tcp, _) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (app, publisher, stop) = (app.clone(), publisher.clone(), stop.clone());
        connections.spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (app, publisher) = (app.clone(), publisher.clone());
                    async move {
                        if req.method() == hyper::Method::GET
                            && req.uri().path() == "/api/v1/hostlist"
                        {
                            return Ok(web::hostlist::current_response(&publisher, req.headers()));
                        }
                        app.oneshot(req.map(axum::body::Body::new)).await
                    }
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(HTTP_DRAIN, conn).await;
                }
            }
        });
    }
    connections.close();
    let _ = tokio::time::timeout(HTTP_DRAIN, connections.wait()).await;
}

fn writer_settings(config: &Config) -> WriterSettings {
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
    let mut signals = Signals::install()?;
    let running = start(opts).await?;
    tracing::info!(addr = %running.addr, "serving");
    println!("cdnwatch listening on http://{}", running.addr);
    signals.wait(&running).await;
    tracing::info!("shutting down: finishing running probes, flushing the store");
    running.shutdown().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// SIGTERM, SIGINT and SIGHUP, taken over before the service announces itself: whoever reads the address
/// (a supervisor, a test) may signal at once, and the default action would kill the process
/// without flushing the store.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for SIGTERM/SIGINT, reloading the config on each SIGHUP meanwhile.
    pub async fn wait(&mut self, running: &Running) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => match running.reload().await {
                    Ok(()) => tracing::info!("SIGHUP: config reloaded"),
                    Err(e) => tracing::error!("SIGHUP: the new config was refused, the old one keeps running:\n{e}"),
                },
            }
        }
    }
}

/// The default data directory for a config file: `data/` beside the current directory.
pub fn default_data_dir() -> &'static Path {
    Path::new("data")
}
