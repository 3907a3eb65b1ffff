//! The versioned host-list document: built with the article's field names (section 3.2), signed with
//! Ed25519 over the exact bytes served, stored as a new version only when its content changes (or
//! when the signature is about to lapse), and served from memory.
//!
//! It must not decide anything: which hosts are disabled comes from the engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::config::Config;
use crate::engine::Event;
use crate::store::publish::VersionRow;
use crate::store::{Store, StoreError};

/// How long a signed document stays valid.
pub const VALIDITY: chrono::Duration = chrono::Duration::hours(24);
/// A document older than this is re-signed (a new version with the same content).
pub const RESIGN_AFTER: chrono::Duration = chrono::Duration::hours(6);

/// One entry of `hostListConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    pub host: String,
    pub rate: f64,
    pub is_disabled: bool,
}

/// One entry of `mergeHostConfigs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeEntry {
    pub host: String,
    pub path_prefix: String,
    pub rate: f64,
}

/// What a version says, without its version number and timestamps: equal content, no new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    pub host_list_config: Vec<HostEntry>,
    pub merge_host_configs: Vec<MergeEntry>,
    pub revive_probe_interval: u64,
    pub config_request_interval: u64,
    pub public_ip_list: Vec<String>,
}

impl Content {
    /// The document content for `config` with the engine's `disabled` hosts, hosts in client order
    /// (primary, same-vendor backup, other-vendor backup; config order within a role).
    pub fn new(config: &Config, disabled: impl Fn(&str) -> bool) -> Content {
        let mut hosts: Vec<&crate::config::Host> = config.hosts.iter().collect();
        hosts.sort_by_key(|h| h.role);
        Content {
            host_list_config: hosts
                .iter()
                .map(|h| HostEntry {
                    host: h.domain.clone(),
                    rate: h.rate,
                    is_disabled: disabled(&h.domain),
                })
                .collect(),
            merge_host_configs: config
                .merged_hosts
                .iter()
                .map(|m| MergeEntry {
                    host: m.host.clone(),
                    path_prefix: m.path_prefix.clone(),
                    rate: m.rate,
                })
                .collect(),
            revive_probe_interval: config.client.revive_probe_interval_ms,
            config_request_interval: config.client.config_request_interval_ms,
            public_ip_list: config.client.public_ip_list.clone(),
        }
    }

    pub fn canonical(&self) -> String {
        serde_json::to_string(self).expect("content serializes")
    }
}

/// The served document: the article's fields, then `configVersion`, `issuedAt`, `expiresAt`, `keyId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub host_list_config: Vec<HostEntry>,
    pub merge_host_configs: Vec<MergeEntry>,
    pub revive_probe_interval: u64,
    pub config_request_interval: u64,
    pub config_version: i64,
    pub public_ip_list: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub key_id: String,
}

impl Document {
    fn new(content: &Content, version: i64, issued_at: DateTime<Utc>, key_id: &str) -> Document {
        let c = content.clone();
        Document {
            host_list_config: c.host_list_config,
            merge_host_configs: c.merge_host_configs,
            revive_probe_interval: c.revive_probe_interval,
            config_request_interval: c.config_request_interval,
            config_version: version,
            public_ip_list: c.public_ip_list,
            issued_at,
            expires_at: issued_at + VALIDITY,
            key_id: key_id.to_string(),
        }
    }
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot read the signing key {path}: {source}")]
    KeyRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the signing key {path} is malformed: {why}")]
    KeyMalformed { path: PathBuf, why: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The Ed25519 signing key. Its Debug prints only the key id; the key is never logged.
pub struct Signer {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer(keyid={})", self.key_id)
    }
}

/// The key id: the first 8 bytes of the SHA-256 of the public key, hex.
pub fn key_id(public: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(public.as_bytes())[..8])
}

impl Signer {
    /// Loads the key (64 hex characters: the 32-byte seed) from `path`, creating it with mode 0600
    /// when absent.
    pub fn load_or_create(path: &Path) -> Result<Signer, PublishError> {
        let key = match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).map_err(|e| PublishError::KeyMalformed {
                    path: path.to_owned(),
                    why: e.to_string(),
                })?;
                let seed: [u8; 32] = bytes.try_into().map_err(|_| PublishError::KeyMalformed {
                    path: path.to_owned(),
                    why: "expected 32 bytes (64 hex characters)".into(),
                })?;
                SigningKey::from_bytes(&seed)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let seed: [u8; 32] = rand::random();
                write_private(path, &hex::encode(seed))?;
                tracing::info!(path = %path.display(), "created a new signing key");
                SigningKey::from_bytes(&seed)
            }
            Err(source) => {
                return Err(PublishError::KeyRead {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let key_id = key_id(&key.verifying_key());
        Ok(Signer { key, key_id })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Base64 signature over `bytes`.
    pub fn sign(&self, bytes: &[u8]) -> String {
        B64.encode(self.key.sign(bytes).to_bytes())
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), PublishError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |source| PublishError::Write {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

/// The `X-Config-Signature` header value.
pub fn signature_header(key_id: &str, signature: &str) -> String {
    format!("alg=Ed25519; keyid={key_id}; sig={signature}")
}

/// A version as it is served: the bytes and their headers, precomputed.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub version: i64,
    pub body: Bytes,
    pub signature_header: String,
    /// `"v<version>"`, quoted.
    pub etag: String,
    /// The ETag and signature header as header values, made once: the API serves them per request.
    pub etag_value: axum::http::HeaderValue,
    pub signature_value: axum::http::HeaderValue,
    pub issued_at: DateTime<Utc>,
    pub reason: String,
    pub content: String,
}

impl Published {
    pub fn from_row(row: VersionRow) -> Published {
        let etag = format!("\"v{}\"", row.version);
        let signature = signature_header(&row.key_id, &row.signature);
        Published {
            version: row.version,
            etag_value: axum::http::HeaderValue::from_str(&etag).expect("digits and quotes"),
            signature_value: axum::http::HeaderValue::from_str(&signature)
                .expect("base64 and ASCII"),
            etag,
            signature_header: signature,
            body: Bytes::from(row.body),
            issued_at: DateTime::from_timestamp_millis(row.issued_at_ms).unwrap_or_default(),
            reason: row.reason,
            content: row.content,
        }
    }
}

/// Publishes versions and holds the current one in memory for the API.
pub struct Publisher {
    store: Store,
    signer: Arc<Signer>,
    floor_path: PathBuf,
    current: watch::Sender<Option<Arc<Published>>>,
}

impl Publisher {
    /// Loads the newest stored version into memory, after making sure the next version number is
    /// above both the floor file (the highest version ever published from this data directory) and
    /// `bump_to` (for a database restored from an older copy).
    pub async fn open(
        store: Store,
        signer: Arc<Signer>,
        floor_path: PathBuf,
        bump_to: Option<i64>,
    ) -> Result<Publisher, PublishError> {
        let floor_file = std::fs::read_to_string(&floor_path)
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok());
        let floor = floor_file.into_iter().chain(bump_to).max();
        if let Some(floor) = floor {
            store.raise_version_floor(floor).await?;
        }
        let latest = store
            .latest_version()
            .await?
            .map(|r| Arc::new(Published::from_row(r)));
        let (current, _) = watch::channel(latest);
        Ok(Publisher {
            store,
            signer,
            floor_path,
            current,
        })
    }

    pub fn current(&self) -> Option<Arc<Published>> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every new version (long polls subscribe before comparing).
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Published>>> {
        self.current.subscribe()
    }

    pub fn signer(&self) -> &Arc<Signer> {
        &self.signer
    }

    /// Publishes `content` as a new version unless it equals the current content and the current
    /// signature is still fresh. The events are stored with the version (or alone when no version
    /// is made). Returns the new version, if any.
    pub async fn publish(
        &self,
        content: &Content,
        reason: &str,
        events: &[Event],
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<Published>>, PublishError> {
        let canonical = content.canonical();
        let (same, fresh) = match self.current() {
            Some(cur) => (cur.content == canonical, now - cur.issued_at < RESIGN_AFTER),
            None => (false, false),
        };
        if same && fresh {
            self.store.record_events(events).await?;
            return Ok(None);
        }
        let reason = if same { "resign" } else { reason };
        let signer = self.signer.clone();
        let row = self
            .store
            .publish_version(
                now.timestamp_millis(),
                signer.key_id(),
                reason,
                &canonical,
                events,
                |version| {
                    let doc = Document::new(content, version, now, signer.key_id());
                    let body = serde_json::to_vec(&doc).expect("document serializes");
                    let sig = signer.sign(&body);
                    (body, sig)
                },
            )
            .await?;
        write_floor(&self.floor_path, row.version)?;
        let published = Arc::new(Published::from_row(row));
        self.current.send_replace(Some(published.clone()));
        Ok(Some(published))
    }
}

/// Records the highest published version beside the database (written atomically).
fn write_floor(path: &Path, version: i64) -> Result<(), PublishError> {
    let tmp = path.with_extension("tmp");
    let err = |source| PublishError::Write {
        path: path.to_owned(),
        source,
    };
    std::fs::write(&tmp, format!("{version}\n")).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Verifies a signature header against the bytes and a public key (used by the reference client
/// and the tests).
pub fn verify(body: &[u8], header: &str, keys: &[(String, VerifyingKey)]) -> Result<(), String> {
    let mut alg = None;
    let mut kid = None;
    let mut sig = None;
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("alg", v)) => alg = Some(v),
            Some(("keyid", v)) => kid = Some(v),
            Some(("sig", v)) => sig = Some(v),
            _ => {}
        }
    }
    if alg != Some("Ed25519") {
        return Err(format!("unsupported alg {alg:?}"));
    }
    let kid = kid.ok_or("no keyid")?;
    let key = keys
        .iter()
        .find(|(id, _)| id == kid)
        .ok_or_else(|| format!("unknown keyid {kid}"))?;
    let sig = B64
        .decode(sig.ok_or("no sig")?)
        .map_err(|e| format!("sig is not base64: {e}"))?;
    let sig = ed25519_dalek::Signature::from_slice(&sig)
        .map_err(|e| format!("malformed signature: {e}"))?;
    key.1
        .verify_strict(body, &sig)
        .map_err(|e| format!("signature does not verify: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = r#"
[client]
public_ip_list = ["223.5.5.5", "180.76.76.76"]
[[vendors]]
name = "a"
[[vendors]]
name = "b"
[[hosts]]
domain = "cdn-bak.x.test"
vendor = "b"
role = "other_vendor_backup"
paths = [{ path = "/p" }]
[[hosts]]
domain = "cdn.x.test"
vendor = "a"
role = "primary"
paths = [{ path = "/p" }]
[[merged_hosts]]
host = "image.x.test"
path_prefix = "/image"
rate = 0.5
[[regions]]
name = "r"
resolvers = [{ name = "isp", udp = "127.0.0.1:53" }]
"#;
        Config::parse(text, "t", Path::new(".")).unwrap()
    }

    #[test]
    fn the_document_keeps_the_article_field_names_and_client_order() {
        let content = Content::new(&config(), |h| h == "cdn.x.test");
        let doc = Document::new(
            &content,
            7,
            DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            "abcd",
        );
        let v: serde_json::Value = serde_json::to_value(&doc).unwrap();
        assert_eq!(
            v["hostListConfig"][0],
            serde_json::json!({"host": "cdn.x.test", "rate": 1.0, "isDisabled": true})
        );
        assert_eq!(v["hostListConfig"][1]["host"], "cdn-bak.x.test");
        assert_eq!(
            v["mergeHostConfigs"][0],
            serde_json::json!({"host": "image.x.test", "pathPrefix": "/image", "rate": 0.5})
        );
        assert_eq!(v["reviveProbeInterval"], 600000);
        assert_eq!(v["configRequestInterval"], 600000);
        assert_eq!(v["configVersion"], 7);
        assert_eq!(
            v["publicIpList"],
            serde_json::json!(["223.5.5.5", "180.76.76.76"])
        );
        assert_eq!(v["expiresAt"], "2027-01-16T08:00:00Z");
        assert_eq!(v["keyId"], "abcd");
    }

    #[test]
    fn a_signature_verifies_only_for_the_exact_bytes_and_the_right_key() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::load_or_create(&dir.path().join("k")).unwrap();
        let again = Signer::load_or_create(&dir.path().join("k")).unwrap();
        assert_eq!(
            signer.key_id(),
            again.key_id(),
            "the key is reused, not recreated"
        );
        let body = br#"{"configVersion":1}"#;
        let header = signature_header(signer.key_id(), &signer.sign(body));
        let keys = [(signer.key_id().to_string(), signer.public_key())];
        assert_eq!(verify(body, &header, &keys), Ok(()));
        assert!(
            verify(br#"{"configVersion":2}"#, &header, &keys)
                .unwrap_err()
                .contains("does not verify")
        );
        let other = Signer::load_or_create(&dir.path().join("k2")).unwrap();
        assert!(
            verify(
                body,
                &header,
                &[(other.key_id().into(), other.public_key())]
            )
            .unwrap_err()
            .contains("unknown keyid")
        );
        assert!(!format!("{signer:?}").contains(&hex::encode(signer.key.to_bytes())));
        let mode = std::fs::metadata(dir.path().join("k"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[tokio::test]
    async fn versions_increase_only_on_change_survive_restarts_and_respect_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let floor = dir.path().join("version.floor");
        let signer = Arc::new(Signer::load_or_create(&dir.path().join("k")).unwrap());
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let cfg = config();
        let all_on = Content::new(&cfg, |_| false);
        let primary_off = Content::new(&cfg, |h| h == "cdn.x.test");
        {
            let store = Store::open(&db).await.unwrap();
            let p = Publisher::open(store.clone(), signer.clone(), floor.clone(), None)
                .await
                .unwrap();
            assert_eq!(
                p.publish(&all_on, "cold_start", &[], t0)
                    .await
                    .unwrap()
                    .unwrap()
                    .version,
                1
            );
            assert!(
                p.publish(&all_on, "x", &[], t0 + chrono::Duration::minutes(1))
                    .await
                    .unwrap()
                    .is_none()
            );
            assert_eq!(
                p.publish(&primary_off, "quorum_fall", &[], t0)
                    .await
                    .unwrap()
                    .unwrap()
                    .version,
                2
            );
            // A rollback of content is a new, higher version.
            assert_eq!(
                p.publish(&all_on, "rise", &[], t0)
                    .await
                    .unwrap()
                    .unwrap()
                    .version,
                3
            );
            // Same content, but the signature is getting old: re-signed as a new version.
            let v = p
                .publish(&all_on, "x", &[], t0 + RESIGN_AFTER)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((v.version, v.reason.as_str()), (4, "resign"));
            store.close().await;
        }
        {
            // A restart goes on from where it was.
            let store = Store::open(&db).await.unwrap();
            let p = Publisher::open(store.clone(), signer.clone(), floor.clone(), None)
                .await
                .unwrap();
            assert_eq!(p.current().unwrap().version, 4);
            assert_eq!(
                p.publish(&primary_off, "quorum_fall", &[], t0)
                    .await
                    .unwrap()
                    .unwrap()
                    .version,
                5
            );
            store.close().await;
        }
        {
            // An older copy of the database (here: a new one) still continues above the floor file …
            let store = Store::open(&dir.path().join("restored.db")).await.unwrap();
            let p = Publisher::open(store.clone(), signer.clone(), floor.clone(), None)
                .await
                .unwrap();
            assert_eq!(
                p.publish(&all_on, "rise", &[], t0)
                    .await
                    .unwrap()
                    .unwrap()
                    .version,
                6
            );
            store.close().await;
        }
        {
            // … and above --bump-version.
            let store = Store::open(&dir.path().join("restored2.db")).await.unwrap();
            let p = Publisher::open(store.clone(), signer, floor, Some(100))
                .await
                .unwrap();
            assert_eq!(
                p.publish(&all_on, "rise", &[], t0)
                    .await
                    .unwrap()
                    .unwrap()
                    .version,
                101
            );
            store.close().await;
        }
    }
}
