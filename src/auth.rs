//! Tokens for admin actions and remote agents: read from the environment (or a file it names),
//! kept only as SHA-256 digests, never logged, checked on every protected request.

use sha2::{Digest, Sha256};

/// The variable the admin token comes from. For either token, `<NAME>_FILE` names a file holding
/// it instead.
pub const ADMIN_TOKEN_ENV: &str = "CDNWATCH_ADMIN_TOKEN";
/// The variable the agent token comes from (agents' result uploads).
pub const AGENT_TOKEN_ENV: &str = "CDNWATCH_AGENT_TOKEN";

/// A token's digest. Debug prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

impl TokenDigest {
    /// The digest of `token`, surrounding whitespace trimmed.
    pub fn of(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.trim().as_bytes()).into())
    }
}

/// The tokens in force; `None` disables what the token would allow.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Allows admin actions (overrides, config changes).
    pub admin: Option<TokenDigest>,
    /// Allows remote agents to upload results.
    pub agent: Option<TokenDigest>,
}

/// Why a request was not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token is configured for the action.
    #[error("this action is disabled: no token is configured for it")]
    Disabled,
    /// The request carries no bearer token.
    #[error("missing `Authorization: Bearer <token>` header")]
    Missing,
    /// The bearer token does not match.
    #[error("the token is not valid")]
    Wrong,
}

impl Tokens {
    /// Reads `CDNWATCH_ADMIN_TOKEN` / `CDNWATCH_AGENT_TOKEN` (or their `_FILE` variants).
    pub fn from_env() -> Result<Tokens, String> {
        Ok(Tokens {
            admin: read_token(ADMIN_TOKEN_ENV)?,
            agent: read_token(AGENT_TOKEN_ENV)?,
        })
    }
}

fn read_token(var: &str) -> Result<Option<TokenDigest>, String> {
    if let Ok(t) = std::env::var(var) {
        return Ok((!t.trim().is_empty()).then(|| TokenDigest::of(&t)));
    }
    let file_var = format!("{var}_FILE");
    match std::env::var(&file_var) {
        Ok(path) => {
            let t = std::fs::read_to_string(&path)
                .map_err(|e| format!("{file_var}: cannot read {path}: {e}"))?;
            Ok((!t.trim().is_empty()).then(|| TokenDigest::of(&t)))
        }
        Err(_) => Ok(None),
    }
}

/// Checks a bearer token against the expected digest. Digests are compared, not tokens, so the
/// comparison's timing says nothing useful about the token.
pub fn check(expected: Option<&TokenDigest>, authorization: Option<&str>) -> Result<(), AuthError> {
    let given = authorization.and_then(|h| h.strip_prefix("Bearer "));
    check_token(expected, given)
}

/// Checks a token given by itself (the config page's sign-in form); blank counts as missing.
pub fn check_token(expected: Option<&TokenDigest>, given: Option<&str>) -> Result<(), AuthError> {
    let expected = expected.ok_or(AuthError::Disabled)?;
    let given = given
        .filter(|g| !g.trim().is_empty())
        .ok_or(AuthError::Missing)?;
    if TokenDigest::of(given) == *expected {
        Ok(())
    } else {
        Err(AuthError::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_is_accepted_only_when_it_matches() {
        let d = TokenDigest::of("s3cret");
        assert_eq!(check(Some(&d), Some("Bearer s3cret")), Ok(()));
        assert_eq!(check(Some(&d), Some("Bearer nope")), Err(AuthError::Wrong));
        assert_eq!(check(Some(&d), Some("s3cret")), Err(AuthError::Missing));
        assert_eq!(check(Some(&d), None), Err(AuthError::Missing));
        assert_eq!(check(None, Some("Bearer s3cret")), Err(AuthError::Disabled));
        assert_eq!(check(Some(&d), Some("Bearer ")), Err(AuthError::Missing));
    }

    #[test]
    fn a_token_given_alone_is_checked_the_same_way() {
        let d = TokenDigest::of("s3cret");
        assert_eq!(check_token(Some(&d), Some("s3cret\n")), Ok(()));
        assert_eq!(check_token(Some(&d), Some("nope")), Err(AuthError::Wrong));
        assert_eq!(check_token(Some(&d), Some("  ")), Err(AuthError::Missing));
        assert_eq!(check_token(None, Some("s3cret")), Err(AuthError::Disabled));
    }

    #[test]
    fn a_digest_never_prints_its_token() {
        assert_eq!(
            format!("{:?}", TokenDigest::of("s3cret")),
            "TokenDigest(..)"
        );
    }
}
