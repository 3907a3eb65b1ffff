//! The HTTP server: the accept loop on per-core threads, the host-list fast path, the limits of
//! the edge, and the drain at shutdown. [`serve`] is its one entry point; which routes a listener
//! has is the router's business (`web::router`, by [`Face`]).
//!
//! Each HTTP thread is a single-threaded runtime, all accepting on the same socket, and a thread
//! holding more connections than another hands a new one over (`balance`). Requests then
//! never wake a thread of the probing runtime or hop between threads. `GET /api/v1/hostlist` —
//! what millions of clients poll — is answered before hyper while a connection asks nothing else
//! (`fast`: bytes serialized once per version), and before the router once hyper has the
//! connection (README, "Benchmarks": the CPU per request against nginx). Everything else goes
//! through the axum router. At shutdown the threads stop accepting, give open connections (long
//! polls included) [`DRAIN`] to finish, then close them.
//!
//! The edge (README: "Listeners and limits"; `[http]`): a connection's head is due within the
//! header timeout and a kept-alive one is closed once idle past the idle timeout (`activity`);
//! each listener caps its open connections, keeps a reserve of them for host-list clients, and
//! closes new ones at once past the cap (`limits`); heads past their caps get 414/431 with the
//! JSON error; accept errors are logged at most once a second (`accept_log`).

mod accept_log;
mod activity;
mod balance;
mod fast;
mod gate;
mod limits;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::Either;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::accept_log::AcceptLog;
use self::activity::{Activity, Verdict, Watched};
use self::balance::{Balance, Placement};
use self::limits::{Limits, Occupancy};
use super::{AppState, Face};
use crate::publish::Publisher;

pub use gate::Gates;

/// How long open connections get to finish once the server stops.
pub const DRAIN: Duration = Duration::from_secs(2);

/// A running server; [`Server::stopped`] completes once every HTTP thread and the page warmer have
/// stopped (after the `stop` token given to [`serve`] is cancelled).
pub struct Server {
    threads_done: oneshot::Receiver<()>,
    warmer: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Waits until the server has stopped.
    pub async fn stopped(self) {
        let _ = self.threads_done.await;
        if let Some(warmer) = self.warmer {
            let _ = warmer.await;
        }
    }
}

/// Why a listener could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket could not be handed to the HTTP threads, or a thread not started.
    #[error("cannot serve the listener: {0}")]
    Io(#[from] std::io::Error),
    /// The `/metrics` token file could not be read (the message names the file, never the token).
    #[error("http.metrics_token_file: {0}")]
    MetricsToken(String),
}

/// What every connection of one listener shares.
struct Listener {
    app: axum::Router,
    publisher: Arc<Publisher>,
    limits: Limits,
    occupancy: Occupancy,
    accept_log: AcceptLog,
    balance: Balance<Handoff>,
}

/// One open connection's place in its listener's count and in its thread's; given back when
/// dropped.
struct Slot {
    shared: Arc<Listener>,
    thread: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.occupancy.leave();
        self.shared.balance.left(self.thread);
    }
}

/// An accepted socket on its way to the thread that will serve it, counted as that thread's.
struct Handoff {
    socket: std::net::TcpStream,
    peer: SocketAddr,
    slot: Slot,
}

/// Serves `face`'s routes for `state` on `listener` until `stop` is cancelled, on one thread per
/// core (`CDNWATCH_HTTP_THREADS` overrides), with the limits of the config's `[http]`; a face with
/// the pages keeps the heaviest of them warm meanwhile.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    face: Face,
    stop: CancellationToken,
) -> Result<Server, ServeError> {
    let config = state.config.get();
    let token = config
        .http
        .metrics_token(&config.base_dir)
        .map_err(ServeError::MetricsToken)?
        .map(|t| crate::auth::TokenDigest::of(&t));
    let app = super::router(state.clone(), face, &Gates::new(&config.http, token));
    let limits = Limits::new(&config.http);
    let (balance, inboxes) = Balance::new(http_threads());
    let shared = Arc::new(Listener {
        app: app.clone(),
        publisher: state.publisher.clone(),
        limits,
        occupancy: Occupancy::new(limits),
        accept_log: AcceptLog::new(),
        balance,
    });
    let threads_done = spawn_threads(listener.into_std()?, &shared, inboxes, &stop)?;
    let warmer = face
        .serves_internal()
        .then(|| tokio::spawn(super::dashboard::keep_warm(app, stop)));
    Ok(Server {
        threads_done,
        warmer,
    })
}

/// Starts the HTTP threads on `listener`, one per inbox of the balance; the receiver completes
/// when the last one has stopped.
fn spawn_threads(
    listener: std::net::TcpListener,
    shared: &Arc<Listener>,
    inboxes: Vec<mpsc::UnboundedReceiver<Handoff>>,
    stop: &CancellationToken,
) -> std::io::Result<oneshot::Receiver<()>> {
    let (done_tx, threads_done) = oneshot::channel();
    let remaining = Arc::new(AtomicUsize::new(inboxes.len()));
    let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
    for (i, inbox) in inboxes.into_iter().enumerate() {
        let listener = listener.try_clone()?;
        // A child token per thread: every wake of a connection checks its token under the
        // token's own lock, and a lock shared by the threads' connections would bounce between
        // cores on every request (the profile of the 304 path showed it).
        let (shared, stop) = (shared.clone(), stop.child_token());
        let (remaining, done_tx) = (remaining.clone(), done_tx.clone());
        std::thread::Builder::new()
            .name(format!("cdnwatch-http-{i}"))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(http_thread(listener, shared, (i, inbox), stop)),
                    Err(e) => tracing::error!(error = %e, "the HTTP thread has no runtime"),
                }
                if remaining.fetch_sub(1, Ordering::AcqRel) == 1
                    && let Some(tx) = done_tx.lock().unwrap_or_else(|p| p.into_inner()).take()
                {
                    let _ = tx.send(());
                }
            })?;
    }
    Ok(threads_done)
}

/// One per core by default, as nginx's `worker_processes auto`; `CDNWATCH_HTTP_THREADS` overrides.
fn http_threads() -> usize {
    std::env::var("CDNWATCH_HTTP_THREADS")
        .ok()
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|t| *t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// One HTTP thread (number `me`): accepts until `stop`, and serves what it accepts or hands it to
/// a thread with fewer connections, and what is handed to it through `inbox`; then drains its
/// connections. Past the listener's cap a new connection is closed at once, so `accept` itself
/// never runs out of descriptors first.
async fn http_thread(
    listener: std::net::TcpListener,
    shared: Arc<Listener>,
    (me, mut inbox): (usize, mpsc::UnboundedReceiver<Handoff>),
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
            Some(handed) = inbox.recv() => {
                if let Ok(tcp) = tokio::net::TcpStream::from_std(handed.socket) {
                    connections.spawn(connection(tcp, handed.peer, handed.slot, stop.clone()));
                }
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or the like: wait a little rather than spin.
                    shared.accept_log.failed(&e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if !shared.occupancy.enter() {
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let (tcp, slot) = match shared.balance.place(me) {
            Placement::Here => {
                let slot = Slot {
                    shared: shared.clone(),
                    thread: me,
                };
                (tcp, slot)
            }
            Placement::There(to) => match hand_over(&shared, tcp, peer, (me, to)) {
                Some(back) => back,
                None => continue,
            },
        };
        connections.spawn(connection(tcp, peer, slot, stop.clone()));
    }
    connections.close();
    let _ = tokio::time::timeout(DRAIN, connections.wait()).await;
}

/// Hands `tcp`, accepted by thread `me`, to thread `to`; gives it back with its count moved to
/// `me` if that thread has stopped reading, or nothing once handed (or if the socket cannot move:
/// it is then closed, its slot given back).
fn hand_over(
    shared: &Arc<Listener>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    (me, to): (usize, usize),
) -> Option<(tokio::net::TcpStream, Slot)> {
    let slot = Slot {
        shared: shared.clone(),
        thread: to,
    };
    let socket = tcp.into_std().ok()?;
    let back = shared
        .balance
        .hand(to, Handoff { socket, peer, slot })
        .err()?;
    let mut slot = back.slot;
    shared.balance.moved(to, me);
    slot.thread = me;
    let tcp = tokio::net::TcpStream::from_std(back.socket).ok()?;
    Some((tcp, slot))
}

/// One connection, served until it ends, its head is too slow, it is idle too long, or `stop`
/// (then closed gracefully): its host-list requests by the fast path, from the first request of
/// another kind on by hyper.
async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    slot: Slot,
    stop: CancellationToken,
) {
    let activity = Activity::new();
    let mut io = Watched::new(tcp, activity.clone());
    let limits = slot.shared.limits;
    let mut watchdog = Watchdog {
        activity: &activity,
        stop: &stop,
        limits,
        look: Instant::now() + limits.timeouts.header,
    };
    let read = {
        let fast = fast::serve(&mut io, &slot.shared.publisher, &activity, &limits);
        match watchdog.watch(std::pin::pin!(fast)).await {
            Ok(fast::Outcome::Hyper(read)) => read,
            // Between requests nothing is owed: stopping or idle closes the socket as hyper's
            // graceful shutdown would.
            Ok(fast::Outcome::Closed) | Err(_) => return,
        }
    };
    let io = hyper_util::rt::TokioIo::new(io.replay(read));
    let shared = slot.shared.clone();
    let watched = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        match answer_now(&req, &shared) {
            // Answered in place: nothing of the listener's shared state is cloned, whose count
            // would bounce between the threads' cores on every poll, and the watchdog's
            // activity is noted with plain stores (no guard to count and drop).
            Some(response) => {
                watched.answered_at_once();
                Either::Left(std::future::ready(Ok::<_, Infallible>(response)))
            }
            None => {
                let busy = watched.busy();
                let shared = shared.clone();
                Either::Right(async move {
                    let response = route(req, &shared, peer).await;
                    drop(busy);
                    Ok(response)
                })
            }
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(limits.hyper_buffer())
        .serve_connection(io, service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    match watchdog.watch(conn.as_mut()).await {
        // Dropping the connection closes the socket: a slow head gets no answer.
        Ok(_) | Err(Cut::SlowHead) => return,
        Err(Cut::Stopped | Cut::Idle) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(DRAIN, conn).await;
}

/// Why the watchdog cut a connection short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// The server is stopping.
    Stopped,
    /// A head took longer than the header timeout.
    SlowHead,
    /// Nothing was asked for longer than the idle timeout.
    Idle,
}

/// One connection's watchdog: its timeouts and the server's stop, around whatever serves it.
struct Watchdog<'a> {
    activity: &'a Activity,
    stop: &'a CancellationToken,
    limits: Limits,
    /// When the activity is looked at next.
    look: Instant,
}

impl Watchdog<'_> {
    /// Runs `serving` to its end unless the server stops or a timeout passes first.
    async fn watch<F: std::future::Future>(
        &mut self,
        mut serving: std::pin::Pin<&mut F>,
    ) -> Result<F::Output, Cut> {
        loop {
            tokio::select! {
                // The connection first: it is what woke the task nearly every time.
                biased;
                out = serving.as_mut() => return Ok(out),
                () = self.stop.cancelled() => return Err(Cut::Stopped),
                () = tokio::time::sleep_until(self.look) => {
                    match self.activity.verdict(Instant::now(), self.limits.timeouts) {
                        Verdict::Wait(at) => self.look = at,
                        Verdict::SlowHead => return Err(Cut::SlowHead),
                        Verdict::Idle => return Err(Cut::Idle),
                    }
                }
            }
        }
    }
}

/// What hyper's requests get at once, with no await: heads past their caps refused, and the host
/// list (a request `fast` left to hyper, such as one with a query). Anything else is left to
/// [`route`].
fn answer_now<B>(req: &hyper::Request<B>, shared: &Listener) -> Option<axum::response::Response> {
    if let Some(refusal) = shared.limits.screen(req) {
        return Some(refusal);
    }
    if req.method() == hyper::Method::GET && req.uri().path() == "/api/v1/hostlist" {
        return Some(super::hostlist::current_response(
            &shared.publisher,
            req.headers(),
        ));
    }
    None
}

/// A request [`answer_now`] gave back: near the connection cap nothing but the host list; else
/// the router (which sees the peer's address as axum's `ConnectInfo<SocketAddr>`).
async fn route(
    req: hyper::Request<hyper::body::Incoming>,
    shared: &Listener,
    peer: SocketAddr,
) -> axum::response::Response {
    use tower::ServiceExt as _;
    if shared.occupancy.near_cap() && !limits::is_host_list(&req) {
        return limits::at_capacity();
    }
    let mut req = req.map(axum::body::Body::new);
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    match shared.app.clone().oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
