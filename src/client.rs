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

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;

use crate::publish::{Document, verify};

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
}

/// A client's view of the host list.
pub struct HostListClient {
    install_id: String,
    keys: Vec<(String, VerifyingKey)>,
    current: Option<Document>,
    failed: HashMap<String, Instant>,
}

impl HostListClient {
    /// A client for install `install_id` that trusts the signing keys `keys` (key id, key).
    pub fn new(install_id: impl Into<String>, keys: Vec<(String, VerifyingKey)>) -> HostListClient {
        HostListClient {
            install_id: install_id.into(),
            keys,
            current: None,
            failed: HashMap::new(),
        }
    }

    /// The current document, once one was accepted.
    pub fn document(&self) -> Option<&Document> {
        self.current.as_ref()
    }

    /// The current document's `configVersion`.
    pub fn version(&self) -> Option<i64> {
        self.current.as_ref().map(|d| d.config_version)
    }

    /// Offers the bytes and signature header one source returned.
    pub fn offer(&mut self, body: &[u8], signature_header: &str) -> Offer {
        if let Err(why) = verify(body, signature_header, &self.keys) {
            return Offer::Invalid(why);
        }
        let doc: Document = match serde_json::from_slice(body) {
            Ok(d) => d,
            Err(e) => return Offer::Invalid(format!("not a host-list document: {e}")),
        };
        match self.version() {
            Some(v) if doc.config_version < v => Offer::Rejected(doc.config_version),
            Some(v) if doc.config_version == v => Offer::Unchanged,
            _ => {
                let v = doc.config_version;
                self.current = Some(doc);
                Offer::Accepted(v)
            }
        }
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
