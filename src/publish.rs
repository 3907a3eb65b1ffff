//! The versioned host-list document: built with the article's field names (section 3.2), signed with
//! Ed25519 over the exact bytes served, stored as a new version only when its content changes (or
//! when the signature is about to lapse), and served from memory.
//!
//! It must not decide anything: which hosts are disabled comes from the engine.
//!
//! `content` is what a version says, `signer` the key and its signature, [`keys`] the key files
//! of a deployment, `publisher` the versions stored, the one served and its re-signing; [`PublishReason`] says why a version was made.

mod content;
pub mod keys;
mod publisher;
mod reason;
mod signer;

use std::path::PathBuf;

pub use content::{Content, Document, HostEntry, MergeEntry};
pub use publisher::{Published, Publisher};
pub use reason::PublishReason;
pub use signer::{PublicKey, Signer, key_id, signature_header, signature_key_id, verify};

use crate::store::StoreError;

/// How long a signed document stays valid.
pub const VALIDITY: chrono::Duration = chrono::Duration::hours(24);
/// A document older than this is re-signed (a new version with the same content).
pub const RESIGN_AFTER: chrono::Duration = chrono::Duration::hours(6);

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The signing key file could not be read.
    #[error("cannot read the signing key {path}: {source}")]
    KeyRead {
        /// The key file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The signing key file does not hold a key.
    #[error("the signing key {path} is malformed: {why}")]
    KeyMalformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The deployment has published versions but its signing key is gone: a new key would
    /// silently strand every app that pinned the old one.
    #[error(
        "the signing key {path} is missing, but this data directory has published versions: restore the key, or start once with --init-key to make a new one (apps that pinned the old key will refuse every document until they ship the new one)"
    )]
    KeyMissing {
        /// The key file.
        path: PathBuf,
    },
    /// A file (the key, the version floor) could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why it could not be written.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests;
