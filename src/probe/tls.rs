//! The TLS phase: the handshake with SNI = host, timed; then the leaf certificate's facts and the
//! chain's verdict against the vendor's trust store.
//!
//! The handshake is allowed to finish whatever the certificate says (handshake signatures are still
//! checked), so one handshake yields both the timing and the verdict, and the HTTP phase can still be
//! measured: on-call wants to see "certificate expired, origin fine". Verification runs after the
//! timed handshake, so it does not count in the TLS time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::PhaseFailure;
use crate::model::{CertInfo, Failure, FailureClass, Phase};

/// A vendor's TLS setup, built once: the client config (resumption off, so every probe does a full
/// handshake) and the verifier for the verdict.
pub struct VendorTls {
    connector: TlsConnector,
    verifier: Arc<WebPkiServerVerifier>,
}

/// Accepts any chain during the handshake but checks the handshake signatures.
#[derive(Debug)]
struct RecordOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for RecordOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl VendorTls {
    /// The TLS setup for a vendor whose certificates are checked against `roots`.
    pub fn new(roots: Arc<RootCertStore>) -> Result<VendorTls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| format!("cannot build a certificate verifier: {e}"))?;
        let record = Arc::new(RecordOnly {
            algorithms: provider.signature_verification_algorithms,
        });
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(record)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        Ok(VendorTls {
            connector: TlsConnector::from(Arc::new(config)),
            verifier,
        })
    }
}

fn provider_default() -> &'static CryptoProvider {
    static P: std::sync::OnceLock<CryptoProvider> = std::sync::OnceLock::new();
    P.get_or_init(rustls::crypto::ring::default_provider)
}

/// The handshake's result: the stream, its time, the certificate and, if the certificate fails
/// verification, that failure (the stream is still usable).
pub struct Handshake {
    /// The encrypted stream, ready for the request.
    pub stream: TlsStream<TcpStream>,
    /// How long the handshake took.
    pub tls_ms: f64,
    /// What the leaf certificate said.
    pub cert: Option<CertInfo>,
    /// Why the certificate failed verification, if it did.
    pub cert_failure: Option<Failure>,
}

/// The TLS handshake with SNI `domain` on `tcp`, within `timeout`. The certificate is verified
/// after the handshake, so a bad one still yields a stream (and a `cert_failure`). A handshake
/// that times out carries the time it waited.
pub async fn handshake(
    tcp: TcpStream,
    domain: &str,
    tls: &VendorTls,
    timeout: Duration,
) -> Result<Handshake, PhaseFailure> {
    let name = ServerName::try_from(domain.to_string()).map_err(|e| {
        Failure::new(
            FailureClass::TlsHandshake,
            Phase::Tls,
            format!("`{domain}` is not a TLS server name: {e}"),
        )
    })?;
    let started = Instant::now();
    let stream = match tokio::time::timeout(timeout, tls.connector.connect(name.clone(), tcp)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(PhaseFailure::ended(classify_io(&e), started)),
        Err(_) => {
            let f = Failure::new(
                FailureClass::TlsTimeout,
                Phase::Tls,
                format!("handshake not done within {} ms", timeout.as_millis()),
            );
            return Err(PhaseFailure::ended(f, started));
        }
    };
    let tls_ms = started.elapsed().as_secs_f64() * 1000.0;
    let chain: Vec<CertificateDer<'static>> = stream
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let Some((leaf, intermediates)) = chain.split_first() else {
        let f = Failure::new(
            FailureClass::TlsHandshake,
            Phase::Tls,
            "the server sent no certificate",
        );
        return Err(f.into());
    };
    let verdict = tls
        .verifier
        .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now());
    let cert_failure = verdict.err().map(|e| classify_cert(&e));
    let cert = cert_info(leaf, cert_failure.is_none());
    Ok(Handshake {
        stream,
        tls_ms,
        cert,
        cert_failure,
    })
}

fn classify_io(e: &std::io::Error) -> Failure {
    use std::io::ErrorKind;
    let (class, detail) = match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => (
            FailureClass::ConnReset,
            format!("reset during the handshake: {e}"),
        ),
        ErrorKind::UnexpectedEof => (
            FailureClass::TlsHandshake,
            "the server closed the connection during the handshake".into(),
        ),
        _ => (FailureClass::TlsHandshake, format!("handshake failed: {e}")),
    };
    Failure::new(class, Phase::Tls, detail)
}

/// Maps rustls's certificate verdict to a class (typed, no string matching).
fn classify_cert(e: &rustls::Error) -> Failure {
    let class = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                FailureClass::TlsCertExpired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                FailureClass::TlsCertNotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                FailureClass::TlsCertNameMismatch
            }
            _ => FailureClass::TlsCertUntrusted,
        },
        _ => FailureClass::TlsCertUntrusted,
    };
    Failure::new(class, Phase::Tls, format!("certificate: {e}"))
}

fn cert_info(der: &CertificateDer<'_>, verified: bool) -> Option<CertInfo> {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(der.as_ref()).ok()?;
    let tbs = &cert.tbs_certificate;
    let at = |t: &x509_cert::time::Time| {
        let secs = i64::try_from(t.to_unix_duration().as_secs()).ok()?;
        chrono::DateTime::from_timestamp(secs, 0)
    };
    Some(CertInfo {
        not_after: at(&tbs.validity.not_after)?,
        not_before: at(&tbs.validity.not_before)?,
        issuer: tbs.issuer.to_string(),
        subject: tbs.subject.to_string(),
        verified,
    })
}

/// Makes sure a process-wide rustls provider exists (reqwest and other clients need one).
pub fn install_default_provider() {
    let _ = provider_default();
    let _ = rustls::crypto::ring::default_provider().install_default();
}
