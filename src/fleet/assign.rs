//! Each agent's assignment, built from the config in force: its part of the config as TOML and
//! the vendors' CA certificates as PEM text, under a version that is a digest of both (so an
//! unchanged config gives the same version, and agents' long polls stay parked).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::agent::wire::Assignment;
use crate::config::Config;

/// One agent's assignment, ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Its `assignment_version` (and ETag).
    pub version: String,
    /// The JSON body.
    pub body: Bytes,
}

/// Why an assignment could not be built.
#[derive(Debug, thiserror::Error)]
#[error("vendor `{vendor}`: cannot read its CA file {path}: {source}")]
pub struct AssignError {
    vendor: String,
    path: String,
    source: std::io::Error,
}

/// Every configured agent's assignment.
pub(super) fn build_all(config: &Config) -> Result<BTreeMap<String, Arc<Served>>, AssignError> {
    let mut pems = BTreeMap::new();
    for v in &config.vendors {
        if let Some(path) = config.ca_path(v) {
            let pem = std::fs::read_to_string(&path).map_err(|source| AssignError {
                vendor: v.name.clone(),
                path: path.display().to_string(),
                source,
            })?;
            pems.insert(v.name.clone(), pem);
        }
    }
    let mut out = BTreeMap::new();
    for a in &config.agents {
        let Some(part) = config.for_agent(&a.id) else {
            continue;
        };
        out.insert(a.id.clone(), Arc::new(build(&a.id, &part.to_toml(), &pems)));
    }
    Ok(out)
}

fn build(agent: &str, toml: &str, pems: &BTreeMap<String, String>) -> Served {
    let mut h = Sha256::new();
    h.update(toml.as_bytes());
    for (vendor, pem) in pems {
        h.update(vendor.as_bytes());
        h.update([0]);
        h.update(pem.as_bytes());
    }
    let version = hex::encode(&h.finalize()[..8]);
    let assignment = Assignment {
        agent: agent.to_string(),
        assignment_version: version.clone(),
        config: toml.to_string(),
        ca_certificates: pems.clone(),
    };
    let body = serde_json::to_vec(&assignment).expect("an assignment serializes");
    Served {
        version,
        body: Bytes::from(body),
    }
}
