//! The regional agents (`[[agents]]`): each agent's id, the regions it speaks for and its tokens
//! (a SHA-256 digest written in the file, or a file holding the token; two at once while one is
//! rotated). A region with no agent is probed by the service itself. Owns the section's checks:
//! ids unique and plain, regions existing and spoken for by one agent only, token files readable
//! and long enough. The service (`fleet`) reads the tokens again at start and on each reload.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::findings::Findings;
use super::locate::FieldPath;
use super::regions::Region;

/// The fewest characters an agent token may have.
pub const MIN_AGENT_TOKEN_CHARS: usize = 32;
/// The most tokens one agent may have at once (the old and the new one during a rotation).
pub(super) const MAX_AGENT_TOKENS: usize = 2;
/// The longest agent id, in bytes.
pub(super) const MAX_AGENT_ID_BYTES: usize = 64;

/// One regional agent (`[[agents]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Its id, as `cdnwatch agent --id` gives it: 1–64 of `A-Z a-z 0-9 - _ .`.
    pub id: String,
    /// The regions it probes from (and the only ones it may send results for).
    pub regions: Vec<String>,
    /// Its tokens' SHA-256 digests (64 hex digits, e.g. `sha256sum` of the token file without
    /// its newline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_sha256: Vec<String>,
    /// Files holding its tokens (relative to the config file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_files: Vec<PathBuf>,
}

/// Whether `id` is a plain agent id (it becomes a metric label and a URL segment).
pub fn valid_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_AGENT_ID_BYTES
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The token in a token file, trimmed; an error says which file and what is wrong.
pub fn read_token_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let token = text.trim().to_string();
    let chars = token.chars().count();
    if chars < MIN_AGENT_TOKEN_CHARS {
        return Err(format!(
            "the token in {} has {chars} characters; at least {MIN_AGENT_TOKEN_CHARS} are required (e.g. `openssl rand -hex 32`)",
            path.display()
        ));
    }
    Ok(token)
}

pub(super) fn check(agents: &[AgentSettings], regions: &[Region], base: &Path, out: &mut Findings) {
    let mut ids = HashMap::new();
    let mut speaker: HashMap<&str, &str> = HashMap::new();
    for (i, a) in agents.iter().enumerate() {
        let at = FieldPath::root().key("agents").index(i);
        if !valid_agent_id(&a.id) {
            out.push((
                at.key("id"),
                format!(
                    "`{}` is not an agent id (1-{MAX_AGENT_ID_BYTES} of A-Z a-z 0-9 - _ .)",
                    a.id
                ),
            ));
        } else if let Some(first) = ids.insert(a.id.as_str(), i) {
            out.push((at.key("id"), format!("`{}` is also agents[{first}]", a.id)));
        }
        if a.regions.is_empty() {
            out.push((
                at.key("regions"),
                "an agent speaks for at least one region".into(),
            ));
        }
        for (j, r) in a.regions.iter().enumerate() {
            if !regions.iter().any(|x| &x.name == r) {
                out.push((
                    at.key("regions").index(j),
                    format!("no region is called `{r}`"),
                ));
            } else if let Some(other) = speaker.insert(r.as_str(), a.id.as_str()) {
                out.push((
                    at.key("regions").index(j),
                    format!("region `{r}` already has agent `{other}`"),
                ));
            }
        }
        check_tokens(a, &at, base, out);
    }
}

fn check_tokens(a: &AgentSettings, at: &FieldPath, base: &Path, out: &mut Findings) {
    let n = a.token_sha256.len() + a.token_files.len();
    if n == 0 || n > MAX_AGENT_TOKENS {
        out.push((
            at.clone(),
            format!("agent `{}` has {n} tokens; give 1 or {MAX_AGENT_TOKENS} (token_sha256 and/or token_files)", a.id),
        ));
    }
    for (j, d) in a.token_sha256.iter().enumerate() {
        if d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
            out.push((
                at.key("token_sha256").index(j),
                "must be 64 hex digits".into(),
            ));
        }
    }
    for (j, f) in a.token_files.iter().enumerate() {
        if let Err(why) = read_token_file(&base.join(f)) {
            out.push((at.key("token_files").index(j), why));
        }
    }
}
