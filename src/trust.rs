//! Trust stores: reading PEM CA files and building the root stores the prober verifies against.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Reads every certificate in a PEM file; an error says which file and why, in a plain sentence.
pub fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
    parse_pem_certs(&bytes, &format!("CA file {}", path.display()))
}

/// Every certificate in PEM text; `what` names it in the error.
pub fn parse_pem_certs(bytes: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what} is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what} holds no certificate"));
    }
    Ok(certs)
}

/// A root store of the system roots (Mozilla's, from webpki-roots) and/or extra CA certificates.
pub fn root_store(system_roots: bool, extra: &[CertificateDer<'static>]) -> Arc<RootCertStore> {
    let mut store = RootCertStore::empty();
    if system_roots {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for cert in extra {
        // A CA that does not parse was already reported when the config loaded; skip it here.
        let _ = store.add(cert.clone());
    }
    Arc::new(store)
}
