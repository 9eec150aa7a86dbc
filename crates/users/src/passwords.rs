//! Password hashes: Argon2id, computed off the async worker threads.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use herald_platform::ApiResult;

use crate::domain::Password;

/// Runs Argon2id work off the async worker threads, at most two per core at once: each
/// takes ~19 MiB and tens of milliseconds of CPU, so a flood of sign-ins waits its turn
/// instead of taking every blocking thread and gigabytes with them.
async fn argon2<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores * 2)
    });
    let _slot = slots
        .acquire()
        .await
        .map_err(|e| anyhow::anyhow!("password hashing closed: {e}"))?;
    Ok(tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| anyhow::anyhow!("password hashing task failed: {e}"))?)
}

/// An Argon2id hash in PHC form, with the default parameters and a fresh 16-byte salt from
/// the OS' generator.
fn hash(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    Argon2::default()
        .hash_password(password)
        .map(|h| h.to_string())
}

pub(crate) async fn hash_password(password: &Password) -> ApiResult<String> {
    let password = password.expose().to_owned();
    let hash = argon2(move || hash(password.as_bytes()))
        .await?
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?;
    Ok(hash)
}

pub(crate) async fn verify_password(password: String, hash: String) -> ApiResult<bool> {
    argon2(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
}

/// A hash to verify against when the account is unknown, so timing does not tell.
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash(b"not a real password").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes stored before the move to argon2 0.6 (this one made by argon2 0.5 with its
    /// defaults) still verify, so nobody has to reset a password after an upgrade.
    #[tokio::test]
    async fn a_hash_stored_by_the_previous_argon2_still_verifies() {
        let stored = "$argon2id$v=19$m=19456,t=2,p=1$aGVyYWxkLTAuNS1zYWx0IQ$\
                      JAY8SQbesWV0tQuaKwdgHx5abEEH7ClT2pkcDKYH1uI";
        assert!(
            verify_password("correct horse battery".into(), stored.into())
                .await
                .unwrap()
        );
        assert!(
            !verify_password("correct horse battery!".into(), stored.into())
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn new_hashes_are_argon2id_with_a_fresh_salt_each() {
        let password = Password::parse("correct horse battery").unwrap();
        let (a, b) = (
            hash_password(&password).await.unwrap(),
            hash_password(&password).await.unwrap(),
        );
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(
            verify_password("correct horse battery".into(), a)
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong".into(), b).await.unwrap());
        assert!(
            !verify_password("x".into(), "not a hash".into())
                .await
                .unwrap()
        );
    }
}
