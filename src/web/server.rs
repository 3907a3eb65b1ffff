//! The HTTP server: the accept loop on per-core threads, the host-list fast path, and the drain at
//! shutdown. [`serve`] is its one entry point; what each route does is the router's business.
//!
//! Each HTTP thread is a single-threaded runtime, all accepting on the same socket. Requests then
//! never wake a thread of the probing runtime or hop between threads, and `GET /api/v1/hostlist` —
//! what millions of clients poll — is answered before the router, from the publisher's precomputed
//! bytes and headers (README, benchmarks: the CPU per request against nginx). Everything else goes
//! through the axum router. At shutdown the threads stop accepting, give open connections (long
//! polls included) [`DRAIN`] to finish, then close them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::AppState;
use crate::publish::Publisher;

/// How long open connections get to finish once the server stops.
pub const DRAIN: Duration = Duration::from_secs(2);

/// A running server; [`Server::stopped`] completes once every HTTP thread and the page warmer have
/// stopped (after the `stop` token given to [`serve`] is cancelled).
pub struct Server {
    threads_done: oneshot::Receiver<()>,
    warmer: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Waits until the server has stopped.
    pub async fn stopped(self) {
        let _ = self.threads_done.await;
        let _ = self.warmer.await;
    }
}

/// Serves the router for `state` on `listener` until `stop` is cancelled, on one thread per core
/// (`CDNWATCH_HTTP_THREADS` overrides), and keeps the heaviest pages warm meanwhile.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    stop: CancellationToken,
) -> std::io::Result<Server> {
    let app = super::router(state.clone());
    let listener = listener.into_std()?;
    let threads = http_threads();
    let (done_tx, threads_done) = oneshot::channel();
    let remaining = Arc::new(AtomicUsize::new(threads));
    let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
    for i in 0..threads {
        let listener = listener.try_clone()?;
        let (app, publisher, stop) = (app.clone(), state.publisher.clone(), stop.clone());
        let (remaining, done_tx) = (remaining.clone(), done_tx.clone());
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
                if remaining.fetch_sub(1, Ordering::AcqRel) == 1
                    && let Some(tx) = done_tx.lock().expect("done lock").take()
                {
                    let _ = tx.send(());
                }
            })?;
    }
    let warmer = tokio::spawn(super::dashboard::keep_warm(app, stop));
    Ok(Server {
        threads_done,
        warmer,
    })
}

/// One per core by default, as nginx's `worker_processes auto`; `CDNWATCH_HTTP_THREADS` overrides.
fn http_threads() -> usize {
    std::env::var("CDNWATCH_HTTP_THREADS")
        .ok()
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|t| *t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// One HTTP thread: accepts until `stop`, then drains its connections.
async fn http_thread(
    listener: std::net::TcpListener,
    app: axum::Router,
    publisher: Arc<Publisher>,
    stop: CancellationToken,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "the HTTP thread cannot listen");
            return;
        }
    };
    let connections = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
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
        connections.spawn(connection(
            tcp,
            peer,
            app.clone(),
            publisher.clone(),
            stop.clone(),
        ));
    }
    connections.close();
    let _ = tokio::time::timeout(DRAIN, connections.wait()).await;
}

/// One connection: the host-list fast path, else the router (which sees the peer's address as
/// axum's `ConnectInfo<SocketAddr>`); closed gracefully at `stop`.
async fn connection(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    app: axum::Router,
    publisher: Arc<Publisher>,
    stop: CancellationToken,
) {
    use tower::ServiceExt as _;
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let (app, publisher) = (app.clone(), publisher.clone());
        async move {
            if req.method() == hyper::Method::GET && req.uri().path() == "/api/v1/hostlist" {
                return Ok(super::hostlist::current_response(&publisher, req.headers()));
            }
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            app.oneshot(req).await
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
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}
