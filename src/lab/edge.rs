//! The lab's edges: HTTPS on one port per edge address (plain TCP for control targets), serving
//! the probe objects, with faults applied where their scope becomes known:
//! - at accept (vendor, region, edge): `refuse` closes the listener, `blackhole` holds the
//!   connection without a byte;
//! - after the ClientHello (the host, from SNI): certificate faults pick the certificate, a
//!   host-scoped `blackhole` holds the connection there;
//! - after the request (the path): `reset`, path-scoped `blackhole`, `delay`, `http_status`,
//!   `slow_body`.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::Shared;
use super::ca::CertVariant;
use super::fault::{Context, FaultKind, FaultSpec, Faults};
use super::objects::cached_object;
use super::topology::{Owner, Topology};

/// How long a held (blackholed) connection is kept before the lab lets go of it.
const HOLD: Duration = Duration::from_secs(300);
/// Bytes of response header a `huge_headers` fault sends.
const HUGE_HEADERS: usize = 10 * 1024 * 1024;
/// Longest a client may take over the TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

type Body = BoxBody<Bytes, Infallible>;

/// Runs one edge-port address: accepts while no `refuse` fault covers it, closes the listener
/// while one does, and rebinds when it is lifted.
pub(crate) async fn listen(shared: Arc<Shared>, listener: TcpListener, ip: Ipv4Addr, owner: Owner) {
    let addr = listener.local_addr().expect("bound listener");
    let ctx = accept_context(ip, owner);
    let mut changes = shared.faults.subscribe();
    let mut listener = Some(listener);
    loop {
        let refused = shared.faults.active(&ctx, FaultKind::Refuse);
        if refused {
            listener = None;
        } else if listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "lab edge could not listen again; retrying");
                    tokio::select! {
                        _ = shared.cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            }
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = changes.changed() => continue,
            accepted = accept(listener.as_ref()) => {
                let Ok((tcp, _)) = accepted else { continue };
                shared.edge_connections.fetch_add(1, Ordering::Relaxed);
                let s = shared.clone();
                shared.tasks.spawn(async move {
                    tokio::select! {
                        _ = s.cancel.cancelled() => {}
                        _ = connection(s.clone(), tcp, ip, owner) => {}
                    }
                });
            }
        }
    }
}

async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Whether a fault acts at the accept stage (its scope needs neither host nor path).
fn at_accept(f: &FaultSpec) -> bool {
    f.host.is_none() && f.path_prefix.is_none()
}

/// Whether a fault acts after the ClientHello (its scope needs the host, not the path).
fn at_hello(f: &FaultSpec) -> bool {
    f.host.is_some() && f.path_prefix.is_none()
}

/// What is known when a connection is accepted: its vendor, region and edge.
fn accept_context(ip: Ipv4Addr, owner: Owner) -> Context<'static> {
    Context {
        vendor: owner.vendor,
        region: Some(owner.region),
        edge: Some(IpAddr::V4(ip)),
        ..Context::default()
    }
}

/// One accepted connection: the accept-stage faults, the TLS handshake, then HTTP.
async fn connection(shared: Arc<Shared>, tcp: TcpStream, ip: Ipv4Addr, owner: Owner) {
    let _ = tcp.set_nodelay(true);
    if owner.vendor.is_none() {
        // A control target: it only has to accept.
        tokio::time::sleep(Duration::from_secs(1)).await;
        return;
    }
    let mut ctx = accept_context(ip, owner);
    if shared
        .faults
        .pick_where(&ctx, &[FaultKind::Blackhole], at_accept)
        .is_some()
    {
        hold(tcp).await;
        return;
    }
    // A duplicate of the socket's descriptor, kept to reset the connection (SO_LINGER 0, then the
    // last close) while hyper and rustls own the stream.
    let Ok((tcp, dup)) = duplicate(tcp) else {
        return;
    };
    let Some(tls) = handshake(&shared, tcp, &mut ctx).await else {
        return;
    };
    if shared
        .faults
        .pick(&ctx, &[FaultKind::HttpGarbage])
        .is_some()
    {
        garbage(tls).await;
    } else {
        serve(shared, tls, ctx, dup).await;
    }
}

/// The TLS handshake: reads the ClientHello, learns the host from SNI (into `ctx`), applies the
/// hello-stage faults (a host-scoped `blackhole`, the certificate faults) and completes it.
/// `None` when the connection ends here.
async fn handshake(
    shared: &Shared,
    tcp: TcpStream,
    ctx: &mut Context<'static>,
) -> Option<TlsStream<TcpStream>> {
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
    let Ok(Ok(start)) = tokio::time::timeout(HANDSHAKE_LIMIT, start).await else {
        return None;
    };
    // No SNI, or a name the lab does not serve: end the handshake.
    let host = start
        .client_hello()
        .server_name()
        .and_then(|sni| known_host(&shared.topology, sni))?;
    ctx.host = Some(host);
    if shared
        .faults
        .pick_where(ctx, &[FaultKind::Blackhole], at_hello)
        .is_some()
    {
        hold(start).await;
        return None;
    }
    let config = match shared
        .ca
        .server_config(host, cert_variant(&shared.faults, ctx))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "lab edge has no certificate");
            return None;
        }
    };
    let tls = tokio::time::timeout(HANDSHAKE_LIMIT, start.into_stream(config)).await;
    tls.ok()?.ok()
}

/// The certificate the certificate faults ask for (a valid one when none applies).
fn cert_variant(faults: &Faults, ctx: &Context<'_>) -> CertVariant {
    let cert_kinds = [
        FaultKind::CertExpired,
        FaultKind::CertExpiring,
        FaultKind::CertNotYetValid,
        FaultKind::CertWrongName,
        FaultKind::CertUntrusted,
    ];
    match faults.pick(ctx, &cert_kinds).map(|f| (f.kind, f.days)) {
        Some((FaultKind::CertExpired, _)) => CertVariant::Expired,
        Some((FaultKind::CertExpiring, days)) => CertVariant::ExpiringInDays(days.unwrap_or(0)),
        Some((FaultKind::CertNotYetValid, _)) => CertVariant::NotYetValid,
        Some((FaultKind::CertUntrusted, _)) => CertVariant::Untrusted,
        Some(_) => CertVariant::WrongName,
        None => CertVariant::Valid,
    }
}

/// `http_garbage`: waits for the request, then answers in another protocol.
async fn garbage(mut tls: TlsStream<TcpStream>) {
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(HANDSHAKE_LIMIT, tls.read(&mut buf)).await;
    let _ = tls
        .write_all(b"SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n")
        .await;
    let _ = tls.shutdown().await;
}

/// Serves HTTP/1.1 on the connection until it ends, or until a `reset` fault asks for an RST
/// (sent by closing `dup`, the last descriptor, with linger 0).
async fn serve(
    shared: Arc<Shared>,
    tls: TlsStream<TcpStream>,
    ctx: Context<'static>,
    dup: std::net::TcpStream,
) {
    let reset = Arc::new(Notify::new());
    let service = {
        let reset = reset.clone();
        hyper::service::service_fn(move |req| respond(shared.clone(), ctx, reset.clone(), req))
    };
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service);
    tokio::select! {
        _ = conn => {}
        _ = reset.notified() => {
            // Linger 0 turns the close below into an RST.
            let _ = socket2::SockRef::from(&dup).set_linger(Some(Duration::ZERO));
        }
    }
}

fn known_host(topology: &Topology, sni: &str) -> Option<&'static str> {
    topology
        .served_hosts()
        .find(|h| h.eq_ignore_ascii_case(sni))
}

fn duplicate(tcp: TcpStream) -> std::io::Result<(TcpStream, std::net::TcpStream)> {
    let std = tcp.into_std()?;
    let dup = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, dup))
}

async fn hold<T>(io: T) {
    tokio::time::sleep(HOLD).await;
    drop(io);
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r
}

/// One request: the Host header must match SNI; then the request-stage faults; then the object,
/// shaped by the body faults.
async fn respond(
    shared: Arc<Shared>,
    ctx: Context<'static>,
    reset: Arc<Notify>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    if host_header(&req).as_deref() != ctx.host {
        return Ok(full(
            StatusCode::MISDIRECTED_REQUEST,
            "Host header does not match the TLS server name\n",
        ));
    }
    let ctx = Context {
        path: Some(&path),
        ..ctx
    };
    if let Some(r) = request_faults(&shared.faults, &ctx, &reset).await {
        return Ok(r);
    }
    let object = Topology::object_path(ctx.host.unwrap_or_default(), &path);
    let Some(body) = cached_object(&object) else {
        return Ok(full(StatusCode::NOT_FOUND, "no such object\n"));
    };
    Ok(object_response(&shared.faults, &ctx, &path, body))
}

/// The request's Host header without its port, in lower case.
fn host_header<B>(req: &Request<B>) -> Option<String> {
    req.headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.rsplit_once(':')
                .map_or(h, |(name, _)| name)
                .to_ascii_lowercase()
        })
}

/// The faults that act before the object is looked up: `reset` (never answers; the connection
/// is reset), a path-scoped `blackhole`, `delay` (then goes on), `http_status`. `None`: go on.
async fn request_faults(
    faults: &Faults,
    ctx: &Context<'_>,
    reset: &Notify,
) -> Option<Response<Body>> {
    if faults.pick(ctx, &[FaultKind::Reset]).is_some() {
        reset.notify_one();
        return std::future::pending().await;
    }
    if faults
        .pick_where(ctx, &[FaultKind::Blackhole], |f| f.path_prefix.is_some())
        .is_some()
    {
        tokio::time::sleep(HOLD).await;
        return Some(full(StatusCode::GATEWAY_TIMEOUT, ""));
    }
    if let Some(f) = faults.pick(ctx, &[FaultKind::Delay]) {
        super::fault::delay(f.ms.unwrap_or(0)).await;
    }
    let f = faults.pick(ctx, &[FaultKind::HttpStatus])?;
    let status = StatusCode::from_u16(f.status.unwrap_or(502)).unwrap_or(StatusCode::BAD_GATEWAY);
    Some(full(
        status,
        format!("lab fault: status {}\n", status.as_u16()),
    ))
}

/// The object at `path`, shaped by the body faults: `huge_headers`, `endless_body`,
/// `wrong_content`, `slow_body`.
fn object_response(faults: &Faults, ctx: &Context<'_>, path: &str, body: Bytes) -> Response<Body> {
    if faults.pick(ctx, &[FaultKind::HugeHeaders]).is_some() {
        let mut r = full(StatusCode::OK, body);
        let padding = "a".repeat(HUGE_HEADERS);
        r.headers_mut()
            .insert("x-padding", padding.parse().expect("ASCII"));
        return r;
    }
    if faults.pick(ctx, &[FaultKind::EndlessBody]).is_some() {
        let mut r = Response::new(endless());
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            content_type(path).parse().expect("static"),
        );
        return r;
    }
    let body = if faults.pick(ctx, &[FaultKind::WrongContent]).is_some() {
        Bytes::from(body.iter().map(|b| b ^ 0x5a).collect::<Vec<u8>>())
    } else {
        body
    };
    let len = body.len();
    let body = match faults.pick(ctx, &[FaultKind::SlowBody]) {
        Some(f) => trickle(body, f.bytes_per_sec.unwrap_or(1)),
        None => Full::new(body).boxed(),
    };
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(hyper::header::CONTENT_LENGTH, len.into());
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        content_type(path).parse().expect("static"),
    );
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        "max-age=60".parse().expect("static"),
    );
    r
}

/// A body that never ends (64 KiB chunks, as fast as the client reads).
fn endless() -> Body {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let stream =
        futures_util::stream::repeat_with(move || Ok::<_, Infallible>(Frame::data(chunk.clone())));
    StreamBody::new(stream).boxed()
}

/// A body sent at `rate` bytes per second: a tenth of a second's worth every 100 ms, or one
/// byte every 1/rate seconds when that is less than a byte.
fn trickle(body: Bytes, rate: u64) -> Body {
    let (chunk, every) = if rate >= 10 {
        ((rate / 10) as usize, Duration::from_millis(100))
    } else {
        (1, Duration::from_secs_f64(1.0 / rate as f64))
    };
    let stream = futures_util::stream::unfold(body, move |mut rest| async move {
        if rest.is_empty() {
            return None;
        }
        tokio::time::sleep(every).await;
        let piece = rest.split_to(chunk.min(rest.len()));
        Some((Ok::<_, Infallible>(Frame::data(piece)), rest))
    });
    StreamBody::new(stream).boxed()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("jpg") => "image/jpeg",
        Some("json") => "application/json",
        Some("css") => "text/css",
        _ => "application/octet-stream",
    }
}
