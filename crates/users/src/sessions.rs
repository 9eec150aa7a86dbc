//! Sessions: a short-lived access token and a refresh token that is good once. Refreshing
//! uses the refresh token and issues the next pair of its family; a refresh token used
//! twice (stolen and raced, or replayed) revokes its whole family. Access tokens carry the
//! account's credentials version, so a new password or role refuses the ones issued before.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_platform::auth::SigningKey;
use herald_platform::db::{Backend, Database, Tx, now_micros};
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{self, User};

/// What signing in, registering or refreshing answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthPayload {
    pub token: String,
    pub refresh_token: String,
    pub user: User,
}

#[derive(Clone)]
pub struct Sessions {
    db: Database,
    signing_key: Arc<SigningKey>,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl Sessions {
    pub fn new(
        db: Database,
        signing_key: Arc<SigningKey>,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Sessions {
        Sessions {
            db,
            signing_key,
            access_ttl,
            refresh_ttl,
        }
    }

    /// A new session (a new family of refresh tokens) for `user`.
    pub async fn start(&self, user: User) -> ApiResult<AuthPayload> {
        let mut tx = self.db.begin().await?;
        let refresh_token = self.next(&mut tx, Uuid::now_v7(), user.id).await?;
        tx.commit().await?;
        self.payload(user, refresh_token)
    }

    /// Trades a refresh token for a new pair. A used, revoked, expired or unknown one is
    /// UNAUTHENTICATED; a used one also revokes its family.
    pub async fn refresh(&self, presented: &str) -> ApiResult<AuthPayload> {
        let refused = || ApiError::unauthenticated("this refresh token is not valid: sign in");
        let hash = digest(presented);
        let mut tx = self.db.begin().await?;
        // A user's sessions change one at a time (see [`lock_sessions`]).
        let owner: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(&hash)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(owner) = owner else {
            return Err(refused());
        };
        lock_sessions(&self.db, &mut tx, &owner).await?;
        let now = now_micros();
        let taken: Option<(String, String)> = sqlx::query_as(
            "UPDATE refresh_tokens SET used_at = $1
             WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1
             RETURNING family, user_id",
        )
        .bind(now)
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((family, user_id)) = taken else {
            let reused: Option<String> = sqlx::query_scalar(
                "SELECT family FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL",
            )
            .bind(&hash)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(family) = reused {
                revoke_family(&mut tx, &family, now).await?;
                tx.commit().await?;
                metrics::counter!("users_refresh_token_reuse_total").increment(1);
                tracing::warn!(
                    family,
                    "a used refresh token came back: its family is revoked"
                );
                return Err(ApiError::unauthenticated(
                    "this refresh token was used already: every session it belongs to is \
                     signed out",
                ));
            }
            return Err(refused());
        };
        let (family, user_id) = (parse_id(&family)?, parse_id(&user_id)?);
        let Some(user) = store::find_user(&self.db, user_id).await? else {
            return Err(refused());
        };
        let refresh_token = self.next(&mut tx, family, user.id).await?;
        tx.commit().await?;
        self.payload(user, refresh_token)
    }

    fn payload(&self, user: User, refresh_token: String) -> ApiResult<AuthPayload> {
        let token =
            self.signing_key
                .issue(user.id, user.role, user.token_version, self.access_ttl)?;
        Ok(AuthPayload {
            token,
            refresh_token,
            user,
        })
    }

    /// Stores and returns the next refresh token of `family`.
    async fn next(&self, tx: &mut Tx, family: Uuid, user_id: Uuid) -> ApiResult<String> {
        use rand::Rng;
        let mut raw = [0u8; 32];
        rand::rand_core::UnwrapErr(rand::rngs::SysRng).fill_bytes(&mut raw);
        let token = URL_SAFE_NO_PAD.encode(raw);
        let now = now_micros();
        let ttl = i64::try_from(self.refresh_ttl.as_micros()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family, user_id, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest(&token))
        .bind(family.to_string())
        .bind(user_id.to_string())
        .bind(now.saturating_add(ttl))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(token)
    }
}

/// Refuses every token of `user_id` issued so far: its access tokens by the version they
/// carry, its refresh tokens by revoking them.
pub async fn sign_out_everywhere(tx: &mut Tx, user_id: Uuid) -> ApiResult<i64> {
    let version = store::bump_token_version(tx, user_id).await?;
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now_micros())
    .bind(user_id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(version)
}

/// Waits until no other transaction changes `user_id`'s sessions, until this one ends. A
/// refresh holds it from before it takes its token until its next token is stored, and
/// so does whatever revokes (a reused token's family; every session, which updates the
/// user's row), so a revocation sees every token issued before it and a refresh that comes
/// after it finds its token revoked. Without it, on PostgreSQL, a refresh that stored its
/// next token while a reused one revoked the family kept a live token in it. SQLite runs
/// one writer at a time already.
async fn lock_sessions(db: &Database, tx: &mut Tx, user_id: &str) -> ApiResult<()> {
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn revoke_family(tx: &mut Tx, family: &str, now: i64) -> ApiResult<()> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Refresh tokens are kept as their SHA-256 only.
fn digest(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn parse_id(text: &str) -> ApiResult<Uuid> {
    text.parse()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("a stored id is not a UUID: {e}")))
}
