//! Password resets: a link with a single-use token, valid an hour, sent to the account's
//! address. Only the token's SHA-256 is kept; a newer request for the same account
//! supersedes the older links.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_platform::db::{Tx, now_micros};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long a reset link works.
pub const VALID_FOR: Duration = Duration::from_secs(3600);

/// An account's owner asks for a reset link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResetRequest {
    pub email: String,
    /// The address the request came from, as the gateway saw it (requests are limited per
    /// client and per email).
    #[serde(default)]
    pub client: Option<String>,
}

/// A reset link's token and the new password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewPassword {
    pub token: String,
    pub password: String,
    #[serde(default)]
    pub client: Option<String>,
}

fn digest(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// A new reset token for `user_id`, valid for [`VALID_FOR`]; the user's unused older ones
/// are gone. Returns the token and when it expires (microseconds).
pub(crate) async fn issue(tx: &mut Tx, user_id: Uuid) -> Result<(String, i64), sqlx::Error> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| sqlx::Error::Protocol("no random bytes for a reset token".to_owned()))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let now = now_micros();
    let expires_at = now + VALID_FOR.as_micros() as i64;
    sqlx::query("DELETE FROM password_resets WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id.to_string())
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO password_resets (token_hash, user_id, expires_at, created_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(digest(&token))
    .bind(user_id.to_string())
    .bind(expires_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok((token, expires_at))
}

/// Uses `token` up: the user it resets, if it is unused, unexpired and the user's newest.
/// One statement, so of two uses at once only one succeeds.
pub(crate) async fn redeem(tx: &mut Tx, token: &str) -> Result<Option<Uuid>, sqlx::Error> {
    let user: Option<String> = sqlx::query_scalar(
        "UPDATE password_resets SET used_at = $1
         WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
         RETURNING user_id",
    )
    .bind(now_micros())
    .bind(digest(token))
    .fetch_optional(&mut **tx)
    .await?;
    user.map(|id| id.parse().map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}
