//! The objects the lab's edges serve: bytes derived from the path alone, the probe objects made
//! once. Owns no servers and no faults.

use sha2::{Digest, Sha256};

use super::topology::{MERGED, PROBE_PATHS};

/// The object an edge serves at `path` (the query string is ignored), or `None` (404).
///
/// Content is derived from the path alone, so every edge of every vendor serves the same bytes and
/// the config can carry their size and digest.
pub fn object(path: &str) -> Option<Vec<u8>> {
    let path = path.split('?').next().unwrap_or(path);
    if !MERGED
        .iter()
        .any(|(_, prefix, _)| path.starts_with(&format!("{prefix}/")))
    {
        return None;
    }
    let size = match path.rsplit('.').next() {
        Some("jpg" | "png" | "webp") => 16 * 1024,
        Some("json") => 600,
        Some("css" | "js") => 4 * 1024,
        _ => 1024,
    };
    let mut out = Vec::with_capacity(size);
    let mut block = 0u64;
    while out.len() < size {
        let mut h = Sha256::new();
        h.update(path.as_bytes());
        h.update(block.to_le_bytes());
        out.extend_from_slice(&h.finalize());
        block += 1;
    }
    out.truncate(size);
    Some(out)
}

/// [`object`], with the probe objects made once.
pub(super) fn cached_object(path: &str) -> Option<bytes::Bytes> {
    static PROBES: std::sync::LazyLock<Vec<(&'static str, bytes::Bytes)>> =
        std::sync::LazyLock::new(|| {
            PROBE_PATHS
                .iter()
                .map(|p| (*p, bytes::Bytes::from(object(p).expect("probe object"))))
                .collect()
        });
    let bare = path.split('?').next().unwrap_or(path);
    match PROBES.iter().find(|(p, _)| *p == bare) {
        Some((_, body)) => Some(body.clone()),
        None => object(path).map(bytes::Bytes::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_deterministic_and_only_under_the_merged_prefixes() {
        let a = object("/image/probe.jpg").unwrap();
        assert_eq!(a.len(), 16 * 1024);
        assert_eq!(a, object("/image/probe.jpg?v=2").unwrap());
        assert_ne!(a, object("/image/other.jpg").unwrap());
        assert_eq!(object("/product/probe.json").unwrap().len(), 600);
        assert!(object("/video/x.mp4").is_none());
        assert!(object("/imagex/probe.jpg").is_none());
    }
}
