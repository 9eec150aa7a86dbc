//! Password hashes: Argon2id, computed off the async worker threads.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
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

/// A random salt of the recommended length, from the OS' generator. (`SaltString::generate`
/// wants password-hash's own `rand_core`, an older one than `rand`'s.)
fn new_salt() -> Result<SaltString, argon2::password_hash::Error> {
    use rand::Rng;
    let mut bytes = [0u8; argon2::password_hash::Salt::RECOMMENDED_LENGTH];
    rand::rand_core::UnwrapErr(rand::rngs::SysRng).fill_bytes(&mut bytes);
    SaltString::encode_b64(&bytes)
}

pub(crate) async fn hash_password(password: &Password) -> ApiResult<String> {
    let password = password.expose().to_owned();
    let hash = argon2(move || {
        new_salt().and_then(|salt| {
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
    })
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
    DUMMY.get_or_init(|| {
        new_salt()
            .and_then(|salt| {
                Argon2::default()
                    .hash_password(b"not a real password", &salt)
                    .map(|h| h.to_string())
            })
            .unwrap_or_default()
    })
}
