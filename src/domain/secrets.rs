//! Passwords, API keys and tokens. Human-chosen or long-lived secrets are hashed
//! with argon2; random tokens (sessions, confirmation links) have enough entropy
//! that a SHA-256 digest is as safe and can be looked up directly.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// An argon2id hash in PHC string form.
pub fn hash_secret(secret: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Internal(format!("hashing failed: {e}")))
}

/// Whether `secret` matches a hash made by [`hash_secret`]. A malformed stored
/// hash counts as a mismatch (and is logged).
///
/// Protocols that send credentials with every call (WSMailUpImport, the
/// frontend's callers, ExactTarget) would otherwise pay argon2's tens of
/// milliseconds of CPU per request, so successful checks are remembered, keyed
/// by a digest of the stored hash and the secret: a changed password has a new
/// hash and misses, and a wrong guess still costs the full argon2 price.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    let key = verified_key(secret, hash);
    if verified().lock().is_ok_and(|known| known.contains(&key)) {
        return true;
    }
    let matches = match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            log::error!("stored secret hash is malformed: {e}");
            false
        }
    };
    if matches && let Ok(mut known) = verified().lock() {
        if known.len() >= VERIFIED_CAPACITY {
            known.clear();
        }
        known.insert(key);
    }
    matches
}

/// Successful checks remembered at most; the set starts over when full.
const VERIFIED_CAPACITY: usize = 10_000;

fn verified() -> &'static std::sync::Mutex<std::collections::HashSet<[u8; 32]>> {
    static VERIFIED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<[u8; 32]>>> =
        std::sync::OnceLock::new();
    VERIFIED.get_or_init(Default::default)
}

fn verified_key(secret: &str, hash: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(hash.as_bytes());
    digest.update([0]);
    digest.update(secret.as_bytes());
    digest.finalize().into()
}

/// A random string of ASCII letters and digits (about 5.95 bits each).
pub fn random_token(len: usize) -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Hex SHA-256 of a random token, the form tokens are stored in.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_secret() {
        let hash = hash_secret("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("s3cret"));
        assert!(verify_secret("s3cret", &hash));
        assert!(!verify_secret("s3cret ", &hash));
        assert!(!verify_secret("s3cret", "not a hash"));
    }

    #[test]
    fn a_remembered_check_belongs_to_its_hash_only() {
        let old = hash_secret("pw").unwrap();
        assert!(verify_secret("pw", &old));
        assert!(verify_secret("pw", &old), "the second check is remembered");
        assert!(!verify_secret("other", &old));
        // The password changed: the new hash knows only the new secret.
        let new = hash_secret("new pw").unwrap();
        assert!(!verify_secret("pw", &new));
        assert!(verify_secret("new pw", &new));
    }

    #[test]
    fn tokens_are_random_and_alphanumeric() {
        let a = random_token(32);
        let b = random_token(32);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(token_digest("abc").len(), 64);
        assert_eq!(token_digest("abc"), token_digest("abc"));
    }
}
