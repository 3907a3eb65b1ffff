//! The signing keys in the data directory, as `serve` opens them: `signing.key` signs; a
//! `signing.key.next` (being rotated in) and a `signing.key.previous` (being rotated out) are
//! listed by `GET /api/v1/keys` beside it and sign nothing. A missing `signing.key` is made only for
//! a new deployment or when told to (`--init-key`): a new key on an existing one silently strands
//! every app that pinned the old key. The README's "Rotating the signing key" says how to use them.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use super::signer::read_key;
use super::{PublishError, Signer};
use crate::store::Store;

/// The signing key's file in the data directory.
pub const KEY_FILE: &str = "signing.key";
/// A key being rotated in: trusted (listed), not yet signing.
pub const NEXT_KEY_FILE: &str = "signing.key.next";
/// A key being rotated out: still trusted (listed), no longer signing.
pub const PREVIOUS_KEY_FILE: &str = "signing.key.previous";

/// Opens the signing key of the deployment in `data_dir`, with the keys trusted beside it. When
/// `signing.key` is absent it is created only if nothing was ever published from here (no version
/// in `store`, no version floor `floor`) or `init_key` says so; otherwise that is
/// [`PublishError::KeyMissing`]. Warns when a key file can be read by others than its owner.
pub async fn open_signer(
    data_dir: &Path,
    store: &Store,
    floor: &Path,
    init_key: bool,
) -> Result<Signer, PublishError> {
    let path = data_dir.join(KEY_FILE);
    let signer = match read_key(&path)? {
        Some(key) => Signer::from_key(key),
        None => {
            let published = store.latest_version().await?.is_some() || floor.exists();
            if published && !init_key {
                return Err(PublishError::KeyMissing { path });
            }
            if published {
                tracing::warn!(path = %path.display(), "signing key missing on a deployment that has published: making a new one as told (--init-key); apps that pinned the old key will refuse every document");
            }
            Signer::create(&path)?
        }
    };
    warn_if_readable(&path);
    let mut signer = signer;
    for other in [NEXT_KEY_FILE, PREVIOUS_KEY_FILE] {
        let other = data_dir.join(other);
        if let Some(key) = read_key(&other)? {
            warn_if_readable(&other);
            tracing::info!(path = %other.display(), "trusting a second key for rotation");
            signer = signer.also_trusting(key.public());
        }
    }
    Ok(signer)
}

/// Logs a warning when the key file at `path` is not mode 0600 (or stricter).
fn warn_if_readable(path: &Path) {
    if let Some(mode) = loose_mode(path) {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the signing key can be read by others than its owner: chmod 600 it");
    }
}

/// The file's permission bits when they let anyone but the owner in.
pub(super) fn loose_mode(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}
