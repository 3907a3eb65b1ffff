//! One POST to a receiver: over http or https (Mozilla's roots, or the test CA given), bounded in
//! time and in the answer read. Written on hyper's client connection and rustls, which the binary
//! has for the prober, rather than with reqwest: reqwest in the binary would add a noticeable part
//! to a release build that must stay under three minutes (as the `lab` command's calls do).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

/// The most of an answer read: a robot's answer is a small JSON object.
const ANSWER_CAP: usize = 64 * 1024;

/// What a receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The status code.
    pub status: u16,
    /// Its `Retry-After`, in seconds, when it gave one.
    pub retry_after: Option<Duration>,
    /// The answer's body (at most 64 KiB).
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
}

/// The TLS client config for receivers: `roots` (Mozilla's unless a test gives its CA).
pub fn tls(roots: Arc<rustls::RootCertStore>) -> Arc<rustls::ClientConfig> {
    crate::probe::tls::install_default_provider();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// POSTs `body` to `url` as `content_type`, within `timeout`.
pub async fn post(
    url: &str,
    content_type: &'static str,
    body: Vec<u8>,
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Posted, PostError> {
    tokio::time::timeout(timeout, exchange(url, content_type, body, tls))
        .await
        .map_err(|_| PostError::Timeout(timeout))?
}

async fn exchange(
    url: &str,
    content_type: &'static str,
    body: Vec<u8>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Posted, PostError> {
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
    let request = hyper::Request::post(target)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .header(hyper::header::USER_AGENT, "cdnwatch")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| PostError::Http(e.to_string()))?;
    if https {
        let name = ServerName::try_from(bare).map_err(|_| PostError::Url)?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(PostError::Tls)?;
        send(TokioIo::new(stream), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    }
}

async fn send<I>(io: I, request: hyper::Request<Full<Bytes>>) -> Result<Posted, PostError>
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
    let body = Limited::new(response.into_body(), ANSWER_CAP)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    driver.abort();
    Ok(Posted {
        status,
        retry_after,
        body,
    })
}
