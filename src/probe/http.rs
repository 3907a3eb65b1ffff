//! The processing and transfer phases: one HTTP/1.1 request over an established (TLS) stream.
//!
//! reqwest cannot report phases, so the prober drives hyper's client connection API itself: the
//! request is written on the connection this probe opened, `send_request` resolving is the first
//! byte (the response head), and the body is read frame by frame under the transfer timeout and the
//! byte cap, hashed on the fly when the path checks a sha256. The Host header is set by hand (the
//! connection API does not add one).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::{ContentCheck, Method};
use crate::model::{Failure, FailureClass, Phase};

/// hyper refuses a read buffer below 8 KiB; a smaller header cap is rounded up to it.
const HYPER_MIN_BUF: usize = 8192;

/// What the request asks for and what it may cost.
pub struct RequestSpec<'a> {
    /// The `Host` header: the probed domain.
    pub host_header: &'a str,
    /// `GET` or `HEAD`.
    pub method: Method,
    /// The request path.
    pub path: &'a str,
    /// Status codes that pass.
    pub accept_status: &'a [u16],
    /// The content check on the body, if any.
    pub check: Option<ContentCheck>,
    /// From the request written to the response head.
    pub first_byte_timeout: Duration,
    /// For the whole body once the head has arrived.
    pub transfer_timeout: Duration,
    /// Response-head bytes read at most.
    pub max_header_bytes: usize,
    /// Body bytes read at most.
    pub max_body_bytes: u64,
}

/// The measured outcome; the phases reached are `Some`.
#[derive(Debug, Default)]
pub struct HttpOutcome {
    /// From the request written to the response head (or to the first-byte timeout firing).
    pub first_byte_ms: Option<f64>,
    /// The body read (or until the transfer timeout fired).
    pub transfer_ms: Option<f64>,
    /// The response's status, once its head arrived.
    pub status: Option<u16>,
    /// Body bytes read.
    pub body_bytes: u64,
    /// Why the request failed (status, content, timeout …); `None` when it passed.
    pub failure: Option<Failure>,
}

/// Sends one HTTP/1.1 request over `stream` and reads the response within `spec`'s limits, timing
/// the first byte and the transfer. Never panics; a failure is in the outcome.
pub async fn request<S>(stream: S, spec: &RequestSpec<'_>) -> HttpOutcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut out = HttpOutcome::default();
    let started = Instant::now();
    let handshake = hyper::client::conn::http1::Builder::new()
        .max_buf_size(spec.max_header_bytes.max(HYPER_MIN_BUF))
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await;
    let (mut sender, conn) = match handshake {
        Ok(parts) => parts,
        Err(e) => {
            out.failure = Some(classify(&e, Phase::Processing));
            return out;
        }
    };
    // The connection task is aborted when the probe ends, closing the socket whatever the peer does.
    let conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let method = match spec.method {
        Method::Get => hyper::Method::GET,
        Method::Head => hyper::Method::HEAD,
    };
    let req = Request::builder()
        .method(method)
        .uri(spec.path)
        .header(hyper::header::HOST, spec.host_header)
        .header(
            hyper::header::USER_AGENT,
            concat!("cdnwatch/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::ACCEPT, "*/*")
        .body(Empty::<Bytes>::new());
    let req = match req {
        Ok(r) => r,
        Err(e) => {
            out.failure = Some(Failure::new(
                FailureClass::HttpProtocol,
                Phase::Processing,
                format!("cannot build the request: {e}"),
            ));
            return out;
        }
    };
    let response =
        match tokio::time::timeout(spec.first_byte_timeout, sender.send_request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                out.failure = Some(classify(&e, Phase::Processing));
                return out;
            }
            Err(_) => {
                // The phase's figure is the time it waited: a slow edge must not read as a fast one.
                out.first_byte_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                let detail = format!(
                    "no response head within {} ms",
                    spec.first_byte_timeout.as_millis()
                );
                out.failure = Some(Failure::new(
                    FailureClass::HttpTimeout,
                    Phase::Processing,
                    detail,
                ));
                return out;
            }
        };
    out.first_byte_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    let status = response.status().as_u16();
    out.status = Some(status);
    let body_started = Instant::now();
    let read = tokio::time::timeout(
        spec.transfer_timeout,
        read_body(response.into_body(), spec, &mut out.body_bytes),
    )
    .await;
    out.transfer_ms = Some(body_started.elapsed().as_secs_f64() * 1000.0);
    drop(conn);
    let body_failure = match read {
        Ok(Ok(digest)) => check_content(spec, out.body_bytes, digest),
        Ok(Err(f)) => Some(f),
        Err(_) => Some(Failure::new(
            FailureClass::HttpTimeout,
            Phase::Transfer,
            format!(
                "body not complete within {} ms ({} bytes read)",
                spec.transfer_timeout.as_millis(),
                out.body_bytes
            ),
        )),
    };
    out.failure = if spec.accept_status.contains(&status) {
        body_failure
    } else {
        Some(Failure::new(
            FailureClass::HttpStatus,
            Phase::Processing,
            format!("status {status} is not accepted"),
        ))
    };
    out
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the body to its end or to the cap, counting bytes and hashing when needed.
async fn read_body(
    mut body: hyper::body::Incoming,
    spec: &RequestSpec<'_>,
    bytes: &mut u64,
) -> Result<Option<String>, Failure> {
    let mut hasher = matches!(spec.check, Some(ContentCheck::Sha256(_))).then(Sha256::new);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| classify(&e, Phase::Transfer))?;
        if let Some(data) = frame.data_ref() {
            *bytes += data.len() as u64;
            if *bytes > spec.max_body_bytes {
                return Err(Failure::new(
                    FailureClass::BodyTooLarge,
                    Phase::Transfer,
                    format!("body passed the {}-byte cap", spec.max_body_bytes),
                ));
            }
            if let Some(h) = hasher.as_mut() {
                h.update(data);
            }
        }
    }
    Ok(hasher.map(|h| hex::encode(h.finalize())))
}

fn check_content(spec: &RequestSpec<'_>, bytes: u64, digest: Option<String>) -> Option<Failure> {
    let mismatch = |d: String| {
        Some(Failure::new(
            FailureClass::ContentMismatch,
            Phase::Transfer,
            d,
        ))
    };
    match &spec.check {
        Some(ContentCheck::Size(n)) if bytes != *n => {
            mismatch(format!("body is {bytes} bytes, expected {n}"))
        }
        Some(ContentCheck::MinSize(n)) if bytes < *n => {
            mismatch(format!("body is {bytes} bytes, expected at least {n}"))
        }
        Some(ContentCheck::Sha256(want)) if digest.as_deref() != Some(want.as_str()) => {
            mismatch(format!(
                "body sha256 is {}, expected {want}",
                digest.unwrap_or_default()
            ))
        }
        _ => None,
    }
}

/// Classifies a hyper error from its typed facts: hyper's own kinds, then the io error beneath.
fn classify(e: &hyper::Error, phase: Phase) -> Failure {
    let class = if e.is_parse_too_large() {
        FailureClass::HeadersTooLarge
    } else if let Some(io) = io_source(e) {
        match io.kind() {
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe => FailureClass::ConnReset,
            _ => FailureClass::HttpProtocol,
        }
    } else if e.is_timeout() {
        FailureClass::HttpTimeout
    } else {
        FailureClass::HttpProtocol
    };
    let phase = if class == FailureClass::HeadersTooLarge {
        Phase::Processing
    } else {
        phase
    };
    Failure::new(class, phase, format!("HTTP: {e}"))
}

fn io_source(e: &hyper::Error) -> Option<&std::io::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}
