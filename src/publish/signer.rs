//! The Ed25519 key that signs the exact bytes served: loaded or created (mode 0600), its key id,
//! the keys trusted beside it during a rotation, the `X-Config-Signature` header, and its
//! verification. It must not know what a document says.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use super::PublishError;

/// An Ed25519 public key: what clients pin and `GET /api/v1/keys` lists.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key of these 32 bytes (any 32 bytes: a bad key only fails to verify).
    pub fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `signature` is this key's Ed25519 signature over `body`.
    pub fn verifies(&self, body: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(body, signature)
            .is_ok()
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", key_id(self))
    }
}

/// An Ed25519 signing key, made from its 32-byte seed (what the key file holds).
pub(super) struct SigningKey {
    pair: Ed25519KeyPair,
}

impl SigningKey {
    fn from_seed(seed: &[u8; 32]) -> SigningKey {
        SigningKey {
            pair: Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32 bytes are a seed"),
        }
    }

    /// The key that verifies this key's signatures.
    pub(super) fn public(&self) -> PublicKey {
        let bytes = self.pair.public_key().as_ref();
        PublicKey(bytes.try_into().expect("an Ed25519 public key is 32 bytes"))
    }
}

/// The Ed25519 signing key, and the other keys clients may trust meanwhile (a key being rotated
/// in or out). Its Debug prints only key ids; the key is never logged.
pub struct Signer {
    pub(super) key: SigningKey,
    key_id: String,
    others: Vec<(String, PublicKey)>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer(keyid={}", self.key_id)?;
        for (id, _) in &self.others {
            write!(f, ", also trusted {id}")?;
        }
        write!(f, ")")
    }
}

/// The key id: the first 8 bytes of the SHA-256 of the public key, hex.
pub fn key_id(public: &PublicKey) -> String {
    hex::encode(&Sha256::digest(public.as_bytes())[..8])
}

/// Reads a key file (64 hex characters: the 32-byte seed); `None` when there is no such file.
pub(super) fn read_key(path: &Path) -> Result<Option<SigningKey>, PublishError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PublishError::KeyRead {
                path: path.to_owned(),
                source,
            });
        }
    };
    let bytes = hex::decode(text.trim()).map_err(|e| PublishError::KeyMalformed {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| PublishError::KeyMalformed {
        path: path.to_owned(),
        why: "expected 32 bytes (64 hex characters)".into(),
    })?;
    Ok(Some(SigningKey::from_seed(&seed)))
}

impl Signer {
    /// Loads the key (64 hex characters: the 32-byte seed) from `path`, creating it with mode 0600
    /// when absent.
    pub fn load_or_create(path: &Path) -> Result<Signer, PublishError> {
        match read_key(path)? {
            Some(key) => Ok(Signer::from_key(key)),
            None => Signer::create(path),
        }
    }

    /// Makes a new key and writes it to `path` (mode 0600), which must not exist.
    pub fn create(path: &Path) -> Result<Signer, PublishError> {
        let seed: [u8; 32] = crate::auth::random_bytes();
        write_private(path, &hex::encode(seed))?;
        tracing::info!(path = %path.display(), "created a new signing key");
        Ok(Signer::from_key(SigningKey::from_seed(&seed)))
    }

    /// A signer for `key`, trusting no other.
    pub(super) fn from_key(key: SigningKey) -> Signer {
        let key_id = key_id(&key.public());
        Signer {
            key,
            key_id,
            others: Vec::new(),
        }
    }

    /// The same signer, also listing `key` as trusted (it signs nothing).
    pub fn also_trusting(mut self, key: PublicKey) -> Signer {
        let id = key_id(&key);
        if id != self.key_id && self.others.iter().all(|(o, _)| *o != id) {
            self.others.push((id, key));
        }
        self
    }

    /// Every key clients may trust, the signing one first: what `GET /api/v1/keys` lists.
    pub fn public_keys(&self) -> Vec<(String, PublicKey)> {
        std::iter::once((self.key_id.clone(), self.public_key()))
            .chain(self.others.iter().cloned())
            .collect()
    }

    /// The id of the key, as in `keyId` and the signature header.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key that verifies this signer's signatures.
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    /// Base64 signature over `bytes`.
    pub fn sign(&self, bytes: &[u8]) -> String {
        B64.encode(self.key.pair.sign(bytes))
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

/// The `keyid` a signature header names, if any.
pub fn signature_key_id(header: &str) -> Option<&str> {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("keyid="))
}

/// Verifies a signature header against the bytes and a public key (used by the reference client
/// and the tests).
pub fn verify(body: &[u8], header: &str, keys: &[(String, PublicKey)]) -> Result<(), String> {
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
    if sig.len() != 64 {
        return Err(format!(
            "malformed signature: {} bytes where Ed25519 has 64",
            sig.len()
        ));
    }
    if key.1.verifies(body, &sig) {
        Ok(())
    } else {
        Err("signature does not verify".into())
    }
}
