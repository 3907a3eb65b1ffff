//! The lab's certificate authority, made fresh at each start (rcgen), and the edges' certificates:
//! a valid one per host, and the broken ones certificate faults ask for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// Which certificate an edge presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertVariant {
    /// Valid now, for the host, from the lab CA.
    Valid,
    /// Expired yesterday.
    Expired,
    /// Valid now, expiring in this many days.
    ExpiringInDays(i64),
    /// Valid from tomorrow.
    NotYetValid,
    /// Issued for another name.
    WrongName,
    /// Self-signed: no CA vouches for it.
    Untrusted,
}

/// The CA and a cache of server configs per (host, variant).
pub struct LabCa {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    configs: Mutex<HashMap<(String, CertVariant), Arc<ServerConfig>>>,
}

impl LabCa {
    /// A new CA with a fresh key, valid from two days ago to ten years ahead.
    pub fn new() -> Result<LabCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "cdnwatch lab CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(2);
        params.not_after = now + Duration::days(3650);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(LabCa {
            ca_der: cert.der().clone(),
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            configs: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM, for the prober to trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A TLS server config presenting `variant` of the certificate for `host` (made once, cached).
    pub fn server_config(
        &self,
        host: &str,
        variant: CertVariant,
    ) -> Result<Arc<ServerConfig>, String> {
        let key = (host.to_string(), variant);
        if let Some(c) = self.configs.lock().expect("cert cache").get(&key) {
            return Ok(c.clone());
        }
        let config = Arc::new(
            self.make(host, variant)
                .map_err(|e| format!("making a certificate for {host}: {e}"))?,
        );
        self.configs
            .lock()
            .expect("cert cache")
            .insert(key, config.clone());
        Ok(config)
    }

    fn make(
        &self,
        host: &str,
        variant: CertVariant,
    ) -> Result<ServerConfig, Box<dyn std::error::Error>> {
        let name = match variant {
            CertVariant::WrongName => format!("wrong-name.{host}.invalid"),
            _ => host.to_string(),
        };
        let mut params = CertificateParams::new(vec![name.clone()])?;
        params.distinguished_name.push(DnType::CommonName, name);
        let now = OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = match variant {
            CertVariant::Expired => (now - Duration::days(30), now - Duration::days(1)),
            CertVariant::ExpiringInDays(d) => (
                now - Duration::days(1),
                now + Duration::days(d) + Duration::hours(1),
            ),
            CertVariant::NotYetValid => (now + Duration::days(1), now + Duration::days(365)),
            _ => (now - Duration::days(1), now + Duration::days(365)),
        };
        let key = KeyPair::generate()?;
        let chain = if variant == CertVariant::Untrusted {
            vec![params.self_signed(&key)?.der().clone()]
        } else {
            vec![
                params.signed_by(&key, &self.issuer)?.der().clone(),
                self.ca_der.clone(),
            ]
        };
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(chain, private)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}
