//! One HTTP request to a peer — a notification channel's receiver, or the service an agent
//! reports to: over http or https (Mozilla's roots, or the CA given), bounded in time and in the
//! answer read. Written on hyper's client connection and rustls, which the binary has for the
//! prober, rather than with reqwest: reqwest in the binary would add a noticeable part to a
//! release build that must stay under three minutes (as the `lab` command's calls do).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

/// The most of an answer read by [`post`]: a robot's answer is a small JSON object.
const ANSWER_CAP: usize = 64 * 1024;

/// One request to send.
#[derive(Debug, Clone)]
pub struct Outbound<'a> {
    /// GET or POST.
    pub method: hyper::Method,
    /// The full http(s) URL.
    pub url: &'a str,
    /// Headers besides `Host` and `User-Agent`.
    pub headers: Vec<(hyper::header::HeaderName, String)>,
    /// The body (empty for a GET).
    pub body: Bytes,
    /// The most of the answer read; past it the answer is an error.
    pub answer_cap: usize,
}

/// What a receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The status code.
    pub status: u16,
    /// Its `Retry-After`, in seconds, when it gave one.
    pub retry_after: Option<Duration>,
    /// Its `ETag`, when it gave one.
    pub etag: Option<String>,
    /// The answer's body (at most the cap).
    pub body: Bytes,
}

/// Why a POST got no answer. Never carries the URL: a robot's URL holds its token.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The URL is not an http(s) URL with a host.
    #[error("the channel's URL is not an http(s) URL with a host")]
    Url,
    /// The host could not be reached.
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// The TLS handshake failed.
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(String),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer was longer than the cap.
    #[error("the answer is longer than {0} bytes")]
    TooLong(usize),
}

/// The TLS client config for receivers: `roots` (Mozilla's unless a test gives its CA).
pub fn tls(roots: Arc<rustls::RootCertStore>) -> Arc<rustls::ClientConfig> {
    // The process's default provider (ring), as the prober installs it; once is enough.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// POSTs `body` to `url` as `content_type`, within `timeout`; a short answer (64 KiB) is read.
pub async fn post(
    url: &str,
    content_type: &'static str,
    body: Vec<u8>,
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Posted, PostError> {
    let request = Outbound {
        method: hyper::Method::POST,
        url,
        headers: vec![(hyper::header::CONTENT_TYPE, content_type.to_string())],
        body: Bytes::from(body),
        answer_cap: ANSWER_CAP,
    };
    send(request, tls, timeout).await
}

/// Sends `request` and reads its answer, all within `timeout`.
pub async fn send(
    request: Outbound<'_>,
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Posted, PostError> {
    tokio::time::timeout(timeout, exchange(request, tls))
        .await
        .map_err(|_| PostError::Timeout(timeout))?
}

async fn exchange(req: Outbound<'_>, tls: &Arc<rustls::ClientConfig>) -> Result<Posted, PostError> {
    let url = req.url;
    let uri: Uri = url.parse().map_err(|_| PostError::Url)?;
    let host = uri.host().ok_or(PostError::Url)?.to_string();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(PostError::Url),
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(PostError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let target = uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
    let authority = uri
        .authority()
        .map_or_else(|| host.clone(), |a| a.to_string());
    let mut request = hyper::Request::builder()
        .method(req.method)
        .uri(target)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "cdnwatch");
    for (name, value) in req.headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(req.body))
        .map_err(|e| PostError::Http(e.to_string()))?;
    let cap = req.answer_cap;
    if https {
        let name = ServerName::try_from(bare).map_err(|_| PostError::Url)?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(PostError::Tls)?;
        over(TokioIo::new(stream), request, cap).await
    } else {
        over(TokioIo::new(tcp), request, cap).await
    }
}

async fn over<I>(
    io: I,
    request: hyper::Request<Full<Bytes>>,
    cap: usize,
) -> Result<Posted, PostError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let http = |e: hyper::Error| PostError::Http(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(http)?;
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let etag = response
        .headers()
        .get(hyper::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('"').to_string());
    let body = Limited::new(response.into_body(), cap).collect().await;
    driver.abort();
    let body = match body {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(PostError::TooLong(cap));
        }
        Err(e) => return Err(PostError::Http(e.to_string())),
    };
    Ok(Posted {
        status,
        retry_after,
        etag,
        body,
    })
}
