//! The reference client: what the article's apps do with the host list, in Rust, for tests and for
//! app developers to read.
//!
//! - Two sources (the config center and the fallback API) are reconciled by the larger *verified*
//!   `configVersion`: a lower one is rejected, an equal one changes nothing (the article, 4.4).
//! - The current host is the first host that the document enables, whose `rate` admits this
//!   install, and that this client has not itself seen fail (3.2, 3.3).
//! - A 5xx or a socket error marks a host failed locally; HEAD probes revive it after
//!   `reviveProbeInterval` (3.4).
//! - `rate` is applied stickily: `murmur3_32(host + ":" + installId) % 10000 + 1 <= round(rate × 10000)`
//!   (Unleash's bucketing: raising a rate never removes a device that was already in).
//! - A verified document is still refused when its body's `keyId` is not the header's, when it
//!   expired more than [`CLOCK_GRACE`] ago, or when it was issued more than [`CLOCK_GRACE`] in the
//!   future; and below the highest version ever verified, kept across restarts ([`floor`]), or
//!   below the version the app shipped with.

pub mod floor;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use floor::{InMemory, VersionFile, VersionStore};

use crate::publish::{Document, PublicKey, signature_key_id, verify};

/// How far a device's clock may be off before a document's `expiresAt` or `issuedAt` refuses it:
/// one hour. Documents are valid 24 h and re-signed every 6 h, so a right clock never comes near.
pub const CLOCK_GRACE: chrono::Duration = chrono::Duration::hours(1);

/// The bucket (1..=10000) of an install for a host.
pub fn bucket(host: &str, install_id: &str) -> u32 {
    let key = format!("{host}:{install_id}");
    let hash = murmur3::murmur3_32(&mut std::io::Cursor::new(key.as_bytes()), 0)
        .expect("reading from memory cannot fail");
    hash % 10_000 + 1
}

/// Whether `rate` admits this install for `host`.
pub fn in_rollout(host: &str, install_id: &str, rate: f64) -> bool {
    bucket(host, install_id) as f64 <= (rate.clamp(0.0, 1.0) * 10_000.0).round()
}

/// What happened when a document was offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// A newer version was verified and is now current.
    Accepted(i64),
    /// Same version as the current one: nothing to do.
    Unchanged,
    /// Older than the current one.
    Rejected(i64),
    /// The signature did not verify, or the bytes are not a document.
    Invalid(String),
    /// Signed, but not to be used.
    Refused(Refusal),
}

/// Why a document with a good signature is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its `expiresAt` passed more than [`CLOCK_GRACE`] ago.
    Expired(DateTime<Utc>),
    /// Its `issuedAt` is more than [`CLOCK_GRACE`] ahead of this device's clock.
    IssuedInTheFuture(DateTime<Utc>),
    /// The body's `keyId` is not the key id of the signature header.
    KeyIdMismatch {
        /// The header's `keyid`.
        header: String,
        /// The body's `keyId`.
        body: String,
    },
}

/// A client's view of the host list.
pub struct HostListClient {
    install_id: String,
    keys: Vec<(String, PublicKey)>,
    current: Option<Document>,
    /// The highest version verified (or shipped): nothing lower is ever accepted.
    highest: Option<i64>,
    versions: Box<dyn VersionStore>,
    failed: HashMap<String, Instant>,
}

impl HostListClient {
    /// A client for install `install_id` that trusts the signing keys `keys` (key id, key),
    /// keeping its highest version in memory only.
    pub fn new(install_id: impl Into<String>, keys: Vec<(String, PublicKey)>) -> HostListClient {
        HostListClient {
            install_id: install_id.into(),
            keys,
            current: None,
            highest: None,
            versions: Box::new(InMemory::default()),
            failed: HashMap::new(),
        }
    }

    /// The same client keeping its highest verified version in `versions` (and starting from the
    /// one saved there).
    pub fn with_version_store(mut self, versions: impl VersionStore + 'static) -> HostListClient {
        self.highest = self.highest.max(versions.load());
        self.versions = Box::new(versions);
        self
    }

    /// The same client refusing every version below `version`: the one the app shipped with.
    pub fn with_min_version(mut self, version: i64) -> HostListClient {
        self.highest = self.highest.max(Some(version));
        self
    }

    /// The highest version verified or shipped (kept across restarts): nothing lower is accepted.
    pub fn highest_version(&self) -> Option<i64> {
        self.highest
    }

    /// The current document, once one was accepted.
    pub fn document(&self) -> Option<&Document> {
        self.current.as_ref()
    }

    /// The current document's `configVersion`.
    pub fn version(&self) -> Option<i64> {
        self.current.as_ref().map(|d| d.config_version)
    }

    /// Offers the bytes and signature header one source returned, judged at this device's time.
    pub fn offer(&mut self, body: &[u8], signature_header: &str) -> Offer {
        self.offer_at(body, signature_header, Utc::now())
    }

    /// Offers a document at `now`: verified, its key id and times checked, then reconciled by
    /// version with the current one and the highest ever verified.
    pub fn offer_at(&mut self, body: &[u8], signature_header: &str, now: DateTime<Utc>) -> Offer {
        let doc = match self.check(body, signature_header, now) {
            Ok(doc) => doc,
            Err(offer) => return offer,
        };
        let v = doc.config_version;
        if self.highest.is_some_and(|h| v < h) {
            return Offer::Rejected(v);
        }
        if self.version() == Some(v) {
            return Offer::Unchanged;
        }
        if self.highest.is_none_or(|h| v > h) {
            // Kept before it is used; a store that cannot write leaves the floor in memory only.
            let _ = self.versions.save(v);
            self.highest = Some(v);
        }
        self.current = Some(doc);
        Offer::Accepted(v)
    }

    /// The document in `body`, when its signature verifies, its key ids agree and `now` is within
    /// its validity (give or take [`CLOCK_GRACE`]).
    fn check(&self, body: &[u8], header: &str, now: DateTime<Utc>) -> Result<Document, Offer> {
        verify(body, header, &self.keys).map_err(Offer::Invalid)?;
        let doc: Document = serde_json::from_slice(body)
            .map_err(|e| Offer::Invalid(format!("not a host-list document: {e}")))?;
        let header_kid = signature_key_id(header).unwrap_or_default();
        if header_kid != doc.key_id {
            return Err(Offer::Refused(Refusal::KeyIdMismatch {
                header: header_kid.to_string(),
                body: doc.key_id,
            }));
        }
        if now > doc.expires_at + CLOCK_GRACE {
            return Err(Offer::Refused(Refusal::Expired(doc.expires_at)));
        }
        if doc.issued_at > now + CLOCK_GRACE {
            return Err(Offer::Refused(Refusal::IssuedInTheFuture(doc.issued_at)));
        }
        Ok(doc)
    }

    /// The host to load from now: the first enabled, admitted, not locally failed host; `None` means
    /// fall back to the original domains (the article, 3.3 step 4).
    pub fn current_host(&self) -> Option<&str> {
        let doc = self.current.as_ref()?;
        doc.host_list_config
            .iter()
            .find(|h| {
                !h.is_disabled
                    && in_rollout(&h.host, &self.install_id, h.rate)
                    && !self.failed.contains_key(&h.host)
            })
            .map(|h| h.host.as_str())
    }

    /// Reports the outcome of a request to `host`: a 5xx status or a socket error (`None`) marks it
    /// failed (only when the device's own network works: the caller checks `publicIpList`).
    pub fn report(&mut self, host: &str, status: Option<u16>, now: Instant) {
        if status.is_none_or(|s| (500..600).contains(&s)) {
            self.failed.entry(host.to_string()).or_insert(now);
        }
    }

    /// Hosts due for a revive probe at `now` (failed at least `reviveProbeInterval` ago).
    pub fn due_for_revive(&self, now: Instant) -> Vec<String> {
        let interval = Duration::from_millis(
            self.current
                .as_ref()
                .map_or(600_000, |d| d.revive_probe_interval),
        );
        self.failed
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= interval)
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// The outcome of a HEAD probe: 2xx revives the host, anything else restarts its wait.
    pub fn revive_result(&mut self, host: &str, status: Option<u16>, now: Instant) {
        if status.is_some_and(|s| (200..300).contains(&s)) {
            self.failed.remove(host);
        } else if let Some(at) = self.failed.get_mut(host) {
            *at = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{Signer, signature_header};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    /// A document of `version` issued at `issued`, signed by `signer`, its body naming `body_kid`.
    fn signed(
        signer: &Signer,
        version: i64,
        issued: DateTime<Utc>,
        body_kid: &str,
    ) -> (Vec<u8>, String) {
        let doc = Document {
            host_list_config: vec![crate::publish::HostEntry {
                host: "cdn.x.test".into(),
                rate: 1.0,
                is_disabled: false,
            }],
            merge_host_configs: Vec::new(),
            revive_probe_interval: 600_000,
            config_request_interval: 600_000,
            config_version: version,
            public_ip_list: Vec::new(),
            issued_at: issued,
            expires_at: issued + chrono::Duration::hours(24),
            key_id: body_kid.into(),
        };
        let body = serde_json::to_vec(&doc).unwrap();
        let header = signature_header(signer.key_id(), &signer.sign(&body));
        (body, header)
    }

    fn signer(dir: &tempfile::TempDir) -> Signer {
        Signer::load_or_create(&dir.path().join("k")).unwrap()
    }

    #[test]
    fn an_expired_or_far_future_document_is_refused_within_the_stated_grace() {
        let dir = tempfile::tempdir().unwrap();
        let s = signer(&dir);
        let mut c = HostListClient::new("i", s.public_keys());
        let (body, sig) = signed(&s, 5, t(0), s.key_id());
        // Expires at t(0) + 24 h: accepted up to an hour after, refused beyond.
        let expired =
            t(0) + chrono::Duration::hours(24) + CLOCK_GRACE + chrono::Duration::seconds(1);
        assert!(matches!(
            c.offer_at(&body, &sig, expired),
            Offer::Refused(Refusal::Expired(_))
        ));
        // Issued more than an hour ahead of the device's clock.
        let early = t(0) - CLOCK_GRACE - chrono::Duration::seconds(1);
        assert!(matches!(
            c.offer_at(&body, &sig, early),
            Offer::Refused(Refusal::IssuedInTheFuture(_))
        ));
        assert_eq!(c.version(), None, "nothing refused became current");
        let late_but_in_grace = t(0) + chrono::Duration::hours(24) + chrono::Duration::minutes(59);
        assert_eq!(
            c.offer_at(&body, &sig, late_but_in_grace),
            Offer::Accepted(5)
        );
    }

    #[test]
    fn a_body_whose_key_id_is_not_the_headers_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = signer(&dir);
        let mut c = HostListClient::new("i", s.public_keys());
        let (body, sig) = signed(&s, 5, t(0), "0123456789abcdef");
        assert_eq!(
            c.offer_at(&body, &sig, t(10)),
            Offer::Refused(Refusal::KeyIdMismatch {
                header: s.key_id().into(),
                body: "0123456789abcdef".into()
            })
        );
    }

    #[test]
    fn the_highest_verified_version_survives_a_client_restart_and_the_shipped_minimum_holds() {
        let dir = tempfile::tempdir().unwrap();
        let s = signer(&dir);
        let file = VersionFile::new(dir.path().join("hostlist.version"));
        let (v7, sig7) = signed(&s, 7, t(0), s.key_id());
        let (v5, sig5) = signed(&s, 5, t(0), s.key_id());
        let mut c = HostListClient::new("i", s.public_keys()).with_version_store(file.clone());
        assert_eq!(c.offer_at(&v7, &sig7, t(10)), Offer::Accepted(7));
        drop(c);
        // The app restarts: an older signed version (still a good signature) is refused.
        let mut c = HostListClient::new("i", s.public_keys()).with_version_store(file.clone());
        assert_eq!(c.highest_version(), Some(7));
        assert_eq!(c.offer_at(&v5, &sig5, t(10)), Offer::Rejected(5));
        // The same version is taken back as current.
        assert_eq!(c.offer_at(&v7, &sig7, t(10)), Offer::Accepted(7));
        // A fresh install shipped with version 6 refuses 5 too.
        let mut fresh = HostListClient::new("j", s.public_keys()).with_min_version(6);
        assert_eq!(fresh.offer_at(&v5, &sig5, t(10)), Offer::Rejected(5));
        assert_eq!(fresh.offer_at(&v7, &sig7, t(10)), Offer::Accepted(7));
    }

    #[test]
    fn buckets_are_stable_spread_and_rate_increases_never_remove_a_device() {
        assert_eq!(
            bucket("cdn.x.test", "install-1"),
            bucket("cdn.x.test", "install-1")
        );
        let ids: Vec<String> = (0..20_000).map(|i| format!("install-{i}")).collect();
        let admitted = |rate: f64| {
            ids.iter()
                .filter(|id| in_rollout("cdn.x.test", id, rate))
                .cloned()
                .collect::<Vec<_>>()
        };
        let (at10, at50) = (admitted(0.1), admitted(0.5));
        assert!((1_800..2_200).contains(&at10.len()), "{}", at10.len());
        assert!((9_500..10_500).contains(&at50.len()), "{}", at50.len());
        assert!(at10.iter().all(|id| at50.contains(id)));
        assert_eq!(admitted(1.0).len(), 20_000);
        assert_eq!(admitted(0.0).len(), 0);
    }

    #[test]
    fn the_murmur3_bucket_matches_the_published_reference_value() {
        // murmur3_32("hello", seed 0) = 0x248bfa47 (the reference implementation's test vector).
        let h = murmur3::murmur3_32(&mut std::io::Cursor::new(b"hello"), 0).unwrap();
        assert_eq!(h, 0x248b_fa47);
    }
}
