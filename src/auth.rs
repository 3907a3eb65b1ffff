//! Tokens for admin actions (and an agent's own, on the agent): read from the environment (or a file it names),
//! refused at start when shorter than [`MIN_TOKEN_CHARS`], kept only as SHA-256 digests, never
//! logged, checked on every protected request. How often a peer may try is `attempts`' business.

mod attempts;

use sha2::{Digest, Sha256};

pub use attempts::{Attempts, FREE_FAILURES, Refused};

/// `N` bytes from the operating system's random source, for secrets and ids: session tokens,
/// signing seeds, an agent's boot id. (Not for jitter: `fastrand` is enough there.)
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source answers");
    bytes
}

/// The variable the admin token comes from. For either token, `<NAME>_FILE` names a file holding
/// it instead.
pub const ADMIN_TOKEN_ENV: &str = "CDNWATCH_ADMIN_TOKEN";
/// The variable `cdnwatch agent` reads its token from without `--token-file` (the service reads
/// each agent's tokens from `[[agents]]`).
pub const AGENT_TOKEN_ENV: &str = "CDNWATCH_AGENT_TOKEN";
/// Fewest characters a token may have (surrounding whitespace trimmed): 32 random characters of
/// base64 or hex are beyond guessing at any rate the attempt limits allow.
pub const MIN_TOKEN_CHARS: usize = 32;

/// A token's digest. Debug prints nothing of it; two digests compare in constant time.
#[derive(Clone, Eq)]
pub struct TokenDigest([u8; 32]);

impl PartialEq for TokenDigest {
    fn eq(&self, other: &TokenDigest) -> bool {
        self.0
            .iter()
            .zip(other.0)
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
    }
}

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

    /// A digest given as its 32 bytes (written in the config file as hex).
    pub fn from_bytes(bytes: [u8; 32]) -> TokenDigest {
        TokenDigest(bytes)
    }
}

/// The tokens in force; `None` disables what the token would allow.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Allows admin actions (overrides, config changes).
    pub admin: Option<TokenDigest>,
}

/// Where a token is presented: the `endpoint` label of `cdnwatch_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthEndpoint {
    /// The admin JSON API (`POST /api/v1/overrides`, `DELETE /api/v1/overrides/{id}`).
    Admin,
    /// The agents' API (`/api/v1/agents/{id}/…`, each agent's own token).
    Ingest,
    /// The config page's sign-in form.
    SignIn,
    /// `/metrics`, when it has a bearer token (`[http] metrics_token_file`).
    Metrics,
}

impl AuthEndpoint {
    /// Every endpoint, in label order.
    pub const ALL: [AuthEndpoint; 4] = [
        AuthEndpoint::Admin,
        AuthEndpoint::Ingest,
        AuthEndpoint::SignIn,
        AuthEndpoint::Metrics,
    ];

    /// The one spelling, as in the `endpoint` label and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthEndpoint::Admin => "admin",
            AuthEndpoint::Ingest => "ingest",
            AuthEndpoint::SignIn => "sign_in",
            AuthEndpoint::Metrics => "metrics",
        }
    }
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

/// Why the tokens could not be read at start.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `<NAME>_FILE` names a file that cannot be read.
    #[error("{var}: cannot read {path}: {source}")]
    Unreadable {
        /// The variable naming the file.
        var: String,
        /// The file.
        path: String,
        /// Why not.
        source: std::io::Error,
    },
    /// The token is too short to resist guessing.
    #[error(
        "{var}: the token has {chars} characters; at least {MIN_TOKEN_CHARS} are required (e.g. `openssl rand -hex 32`)"
    )]
    TooShort {
        /// The variable it came from.
        var: String,
        /// Its length in characters.
        chars: usize,
    },
}

impl Tokens {
    /// Reads `CDNWATCH_ADMIN_TOKEN` (or `CDNWATCH_ADMIN_TOKEN_FILE`); a token
    /// shorter than [`MIN_TOKEN_CHARS`] is refused, naming its variable.
    pub fn from_env() -> Result<Tokens, TokenError> {
        Ok(Tokens {
            admin: read_token(ADMIN_TOKEN_ENV)?,
        })
    }
}

/// The digest of the token in `var` (or in the file `<var>_FILE` names): none when unset or
/// blank, refused when too short.
pub fn read_token(var: &str) -> Result<Option<TokenDigest>, TokenError> {
    if let Ok(t) = std::env::var(var) {
        return digest_of(var, &t);
    }
    let file_var = format!("{var}_FILE");
    match std::env::var(&file_var) {
        Ok(path) => {
            let t = std::fs::read_to_string(&path).map_err(|source| TokenError::Unreadable {
                var: file_var.clone(),
                path,
                source,
            })?;
            digest_of(&file_var, &t)
        }
        Err(_) => Ok(None),
    }
}

/// The digest of a token read from `var`: none when blank, refused when too short.
fn digest_of(var: &str, token: &str) -> Result<Option<TokenDigest>, TokenError> {
    let chars = token.trim().chars().count();
    match chars {
        0 => Ok(None),
        n if n < MIN_TOKEN_CHARS => Err(TokenError::TooShort {
            var: var.to_owned(),
            chars,
        }),
        _ => Ok(Some(TokenDigest::of(token))),
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
    fn a_short_token_is_refused_naming_its_variable_and_a_blank_one_disables() {
        let short = digest_of(ADMIN_TOKEN_ENV, "secret-admin").unwrap_err();
        let said = short.to_string();
        assert!(said.starts_with("CDNWATCH_ADMIN_TOKEN: "), "{said}");
        assert!(said.contains("12 characters; at least 32"), "{said}");
        // Characters, not bytes: 31 two-byte characters are still too short.
        assert!(digest_of(AGENT_TOKEN_ENV, &"é".repeat(31)).is_err());
        assert!(
            digest_of(AGENT_TOKEN_ENV, &"é".repeat(32))
                .unwrap()
                .is_some()
        );
        assert!(digest_of(AGENT_TOKEN_ENV, " \n").unwrap().is_none());
    }

    #[test]
    fn a_digest_never_prints_its_token() {
        assert_eq!(
            format!("{:?}", TokenDigest::of("s3cret")),
            "TokenDigest(..)"
        );
    }
}
