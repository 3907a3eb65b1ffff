//! Stores a new version only when its content changes (or when the signature is about to lapse),
//! keeps the floor file, and holds the current version in memory for the API. It must not decide
//! which hosts are disabled.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::signer::signature_header;
use super::{Content, Document, HostEntry, PublishError, PublishReason, RESIGN_AFTER, Signer};
use crate::engine::Event;
use crate::store::publish::VersionRow;
use crate::store::{Store, StoreError};

/// A version as it is served: the bytes and their headers, precomputed.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The version number.
    pub version: i64,
    /// The document's bytes, as signed.
    pub body: Bytes,
    /// The `X-Config-Signature` header.
    pub signature_header: String,
    /// `"v<version>"`, quoted.
    pub etag: String,
    /// The ETag and signature header as header values, made once: the API serves them per request.
    pub etag_value: axum::http::HeaderValue,
    /// See `etag_value`.
    pub signature_value: axum::http::HeaderValue,
    /// When the version was issued.
    pub issued_at: DateTime<Utc>,
    /// Why it was published.
    pub reason: PublishReason,
    /// What the version says, read once from its stored text; `None` when that text no longer
    /// reads as [`Content`] (every reader then sees no host).
    pub content: Option<Content>,
    /// The stored content text ([`Content::canonical`]): equal text, equal content.
    pub canonical: String,
    /// The id of the key that signed it.
    pub key_id: String,
}

impl Published {
    /// A stored version made ready to serve; a corrupt row when its reason is not one we write
    /// (as for an event's).
    pub fn from_row(row: VersionRow) -> Result<Published, StoreError> {
        let reason = PublishReason::parse(&row.reason).ok_or_else(|| StoreError::Corrupt {
            what: "versions.reason",
            detail: format!("version {}: unknown reason `{}`", row.version, row.reason),
        })?;
        let etag = format!("\"v{}\"", row.version);
        let signature = signature_header(&row.key_id, &row.signature);
        Ok(Published {
            version: row.version,
            etag_value: axum::http::HeaderValue::from_str(&etag).expect("digits and quotes"),
            signature_value: axum::http::HeaderValue::from_str(&signature)
                .expect("base64 and ASCII"),
            etag,
            signature_header: signature,
            body: Bytes::from(row.body),
            issued_at: DateTime::from_timestamp_millis(row.issued_at_ms).unwrap_or_default(),
            reason,
            content: Content::parse(&row.content),
            canonical: row.content,
            key_id: row.key_id,
        })
    }

    /// The hosts of the version, in client order (none when its content cannot be read).
    pub fn hosts(&self) -> &[HostEntry] {
        self.content
            .as_ref()
            .map_or(&[], |c| c.host_list_config.as_slice())
    }
}

/// Publishes versions and holds the current one in memory for the API.
pub struct Publisher {
    store: Store,
    signer: Arc<Signer>,
    floor_path: PathBuf,
    current: watch::Sender<Option<Arc<Published>>>,
    /// The same version for readers on the hot path: an `ArcSwap` load touches no shared counter
    /// or lock (the watch's read lock and the `Arc`'s count bounced between the HTTP threads' cores
    /// on every poll).
    served: ArcSwapOption<Published>,
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
        let latest = match store.latest_version().await? {
            Some(row) => Some(Arc::new(Published::from_row(row)?)),
            None => None,
        };
        let served = ArcSwapOption::new(latest.clone());
        let (current, _) = watch::channel(latest);
        Ok(Publisher {
            store,
            signer,
            floor_path,
            current,
            served,
        })
    }

    /// The version being served; `None` before the first.
    pub fn current(&self) -> Option<Arc<Published>> {
        self.served.load_full()
    }

    /// The version being served, borrowed for one answer: what the host-list path reads, with no
    /// write to memory another core shares.
    pub fn serving(&self) -> arc_swap::Guard<Option<Arc<Published>>> {
        self.served.load()
    }

    /// A receiver that sees every new version (long polls subscribe before comparing).
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Published>>> {
        self.current.subscribe()
    }

    /// The key versions are signed with.
    pub fn signer(&self) -> &Arc<Signer> {
        &self.signer
    }

    /// Publishes `content` as a new version unless it equals the current content and the current
    /// signature is still fresh. The events are stored with the version (or alone when no version
    /// is made). Returns the new version, if any.
    pub async fn publish(
        &self,
        content: &Content,
        reason: PublishReason,
        events: &[Event],
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<Published>>, PublishError> {
        let canonical = content.canonical();
        let (same, fresh) = match self.current() {
            Some(cur) => (cur.canonical == canonical, self.fresh(&cur, now)),
            None => (false, false),
        };
        if same && fresh {
            self.store.record_events(events).await?;
            return Ok(None);
        }
        let reason = if same { PublishReason::Resign } else { reason };
        let signer = self.signer.clone();
        let row = self
            .store
            .publish_version(
                now.timestamp_millis(),
                signer.key_id(),
                reason.as_str(),
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
        // Durable before served: the floor is on disk (file and directory synced) before any
        // client can see the version, so a power loss cannot renumber it.
        write_floor(&self.floor_path, row.version, &mut Fsync)?;
        let published = Arc::new(Published::from_row(row)?);
        self.served.store(Some(published.clone()));
        self.current.send_replace(Some(published.clone()));
        Ok(Some(published))
    }

    /// Re-signs the current content as a new version when the served signature is due (older
    /// than [`RESIGN_AFTER`], or made with a key that is no longer the signing one), whatever the
    /// engine says: the served `expiresAt` must never lapse, frozen or not. Returns the new
    /// version, if one was made.
    pub async fn resign_if_due(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<Published>>, PublishError> {
        let Some(cur) = self.current() else {
            return Ok(None);
        };
        if self.fresh(&cur, now) {
            return Ok(None);
        }
        let Some(content) = &cur.content else {
            tracing::warn!(
                version = cur.version,
                "the current version's content does not read back; cannot re-sign it"
            );
            return Ok(None);
        };
        self.publish(content, PublishReason::Resign, &[], now).await
    }

    /// Whether `cur`'s signature needs no renewal at `now`: made by the signing key, not yet
    /// [`RESIGN_AFTER`] old.
    fn fresh(&self, cur: &Published, now: DateTime<Utc>) -> bool {
        now - cur.issued_at < RESIGN_AFTER && cur.key_id == self.signer.key_id()
    }
}

/// What makes a written file durable; the publish path's calls are visible to a test through it.
pub(super) trait Durability {
    /// Flushes the file's data and metadata to the disk.
    fn file(&mut self, file: &std::fs::File) -> std::io::Result<()>;
    /// Flushes the directory `dir` (a rename in it) to the disk.
    fn dir(&mut self, dir: &Path) -> std::io::Result<()>;
}

/// The real [`Durability`]: `fsync` on the file and on the directory.
pub(super) struct Fsync;

impl Durability for Fsync {
    fn file(&mut self, file: &std::fs::File) -> std::io::Result<()> {
        file.sync_all()
    }

    fn dir(&mut self, dir: &Path) -> std::io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
}

/// Records the highest published version beside the database: written to a temporary file,
/// synced, renamed over the floor, and the directory synced, so that once this returns the floor
/// survives a power loss.
pub(super) fn write_floor(
    path: &Path,
    version: i64,
    sync: &mut impl Durability,
) -> Result<(), PublishError> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let err = |source| PublishError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::create(&tmp).map_err(err)?;
    file.write_all(format!("{version}\n").as_bytes())
        .map_err(err)?;
    sync.file(&file).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sync.dir(dir).map_err(err)
}
