//! The users service's tables.

use herald_events::{Preferences, Role};
use herald_platform::bulk::SqlType::{BigInt, Text};
use herald_platform::bulk::{JsonRows, ROWS_PER_STATEMENT, select_rows};
use herald_platform::db::{Backend, Database, Tx, is_unique_violation, now_micros, to_datetime};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub preferences: Preferences,
    pub preferences_version: i64,
    /// The version of this account's credentials that its tokens carry.
    pub token_version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub struct NewUser<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

const COLUMNS: &str =
    "id, name, email, role, preferences, preferences_version, token_version, created_at";

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    let prefs: String = row.try_get("preferences")?;
    Ok(User {
        id: id.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        role: Role::parse(&role)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown role {role}").into()))?,
        preferences: serde_json::from_str(&prefs).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        preferences_version: row.try_get("preferences_version")?,
        token_version: row.try_get("token_version")?,
        created_at: to_datetime(row.try_get("created_at")?),
    })
}

#[tracing::instrument(skip_all, fields(user_id = %new.id))]
pub async fn insert_user(tx: &mut Tx, new: &NewUser<'_>) -> Result<User, InsertError> {
    let now = now_micros();
    let prefs = Preferences::default();
    let result = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, name, email, password_hash, role, preferences, preferences_version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7) RETURNING {COLUMNS}"
    )))
    .bind(new.id.to_string())
    .bind(new.name)
    .bind(new.email)
    .bind(new.password_hash)
    .bind(new.role.as_str())
    .bind(serde_json::to_string(&prefs).unwrap_or_default())
    .bind(now)
    .fetch_one(&mut **tx)
    .await;
    match result {
        Ok(row) => Ok(user_from_row(&row)?),
        Err(e) if is_unique_violation(&e, "users_email_key", "users.email") => {
            Err(InsertError::EmailTaken)
        }
        Err(e) => Err(e.into()),
    }
}

#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn find_user(db: &Database, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(user_from_row)
    .transpose()
}

/// The stored hash of an account that has no password yet (an imported customer).
const NO_PASSWORD: &str = "";

/// The user and their password hash (None until they set a password), for login.
#[tracing::instrument(skip_all)]
pub async fn find_credentials(
    db: &Database,
    email: &str,
) -> Result<Option<(User, Option<String>)>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, password_hash FROM users WHERE email = $1"
    )))
    .bind(email)
    .fetch_optional(db.pool())
    .await?;
    match row {
        Some(row) => {
            let hash: String = row.try_get("password_hash")?;
            let hash = (hash != NO_PASSWORD).then_some(hash);
            Ok(Some((user_from_row(&row)?, hash)))
        }
        None => Ok(None),
    }
}

/// A customer to import: who they are and their preferences.
pub struct ImportedUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub preferences: &'a Preferences,
}

/// Inserts the customers whose email is not registered yet, without a password, in one
/// statement per [`ROWS_PER_STATEMENT`]; returns those created (an email registered
/// meanwhile by a concurrent import or registration is skipped, never doubled).
#[tracing::instrument(skip_all, fields(users = users.len()))]
pub async fn insert_imported(
    tx: &mut Tx,
    users: &[ImportedUser<'_>],
) -> Result<Vec<User>, sqlx::Error> {
    let now = now_micros();
    let sql = format!(
        "INSERT INTO users (id, name, email, password_hash, role, preferences,
                            preferences_version, created_at, updated_at)
         SELECT id, name, email, '{NO_PASSWORD}', role, preferences, 1, created_at, created_at
         FROM ({}) AS imported WHERE true
         ON CONFLICT (email) DO NOTHING
         RETURNING {COLUMNS}",
        select_rows(
            Backend::of(tx),
            1,
            &[
                ("id", Text),
                ("name", Text),
                ("email", Text),
                ("role", Text),
                ("preferences", Text),
                ("created_at", BigInt),
            ],
        )
    );
    let mut created = Vec::with_capacity(users.len());
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let mut rows = JsonRows::new();
        for user in chunk {
            let preferences = serde_json::to_string(user.preferences)
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            rows.push(&(
                Uuid::now_v7(),
                user.name,
                user.email,
                Role::Customer.as_str(),
                preferences,
                now,
            ))?;
        }
        let inserted = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(rows.finish())
            .fetch_all(&mut **tx)
            .await?;
        for row in &inserted {
            created.push(user_from_row(row)?);
        }
    }
    Ok(created)
}

/// Locks the user's row for a read-modify-write of preferences (PostgreSQL row lock;
/// SQLite serialises writers anyway).
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn find_user_for_update(
    tx: &mut Tx,
    db: &Database,
    id: Uuid,
) -> Result<Option<User>, sqlx::Error> {
    let lock = match db.backend() {
        herald_platform::db::Backend::Postgres => " FOR UPDATE",
        herald_platform::db::Backend::Sqlite => "",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1{lock}"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(user_from_row)
    .transpose()
}

/// Stores new preferences and returns the new version.
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn update_preferences(
    tx: &mut Tx,
    id: Uuid,
    prefs: &Preferences,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET preferences = $1, preferences_version = preferences_version + 1, updated_at = $2
         WHERE id = $3 RETURNING preferences_version",
    )
    .bind(serde_json::to_string(prefs).unwrap_or_default())
    .bind(now_micros())
    .bind(id.to_string())
    .fetch_one(&mut **tx)
    .await
}

/// The version of `id`'s credentials, if the account exists.
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn token_version(db: &Database, id: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT token_version FROM users WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(db.pool())
        .await
}

/// Refuses every token of `id` issued so far (a new password, a new role): bumps the
/// version they carry. Its refresh tokens are revoked with it (see `sessions`).
#[tracing::instrument(skip_all, fields(user_id = %id))]
/// Sets the user's password hash (the caller also refuses their earlier tokens).
pub async fn set_password(tx: &mut Tx, id: Uuid, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now_micros())
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn bump_token_version(tx: &mut Tx, id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET token_version = token_version + 1, updated_at = $1
         WHERE id = $2 RETURNING token_version",
    )
    .bind(now_micros())
    .bind(id.to_string())
    .fetch_one(&mut **tx)
    .await
}

pub async fn signing_keys(db: &Database) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT kid, pkcs8 FROM signing_keys ORDER BY created_at, kid")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

pub async fn insert_signing_key(
    db: &Database,
    kid: &str,
    pkcs8_b64: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO signing_keys (kid, pkcs8, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(kid)
        .bind(pkcs8_b64)
        .bind(now_micros())
        .execute(db.pool())
        .await?;
    Ok(())
}

#[cfg(all(feature = "backend-tests", not(test)))]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use herald_events::Role;
    use herald_platform::backend_tests;
    use herald_platform::testing::{BackendSet, drop_schema, isolated_settings, migrated_database};

    use super::*;

    backend_tests!(
        users_round_trip_and_emails_are_unique,
        preference_updates_bump_the_version,
        signing_keys_are_kept_in_order
    );

    async fn database(
        set: herald_platform::testing::BackendSet,
        dir: &std::path::Path,
    ) -> Database {
        migrated_database(
            &isolated_settings(set, dir),
            crate::SERVICE,
            &crate::migrations(),
        )
        .await
    }

    async fn users_round_trip_and_emails_are_unique(set: BackendSet) {
        let dir = tempfile::tempdir().unwrap();
        let db = database(set, dir.path()).await;
        let new = NewUser {
            id: Uuid::now_v7(),
            name: "Ada",
            email: "ada@example.com",
            password_hash: "hash",
            role: Role::Admin,
        };
        let mut tx = db.begin().await.unwrap();
        let user = insert_user(&mut tx, &new).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(user.role, Role::Admin);
        assert_eq!(user.preferences, Preferences::default());
        assert_eq!(user.preferences_version, 1);

        assert_eq!(find_user(&db, new.id).await.unwrap(), Some(user.clone()));
        let (found, hash) = find_credentials(&db, "ada@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.id, hash.as_deref()), (new.id, Some("hash")));
        assert!(find_user(&db, Uuid::now_v7()).await.unwrap().is_none());

        let mut tx = db.begin().await.unwrap();
        let again = NewUser {
            id: Uuid::now_v7(),
            ..new
        };
        assert!(
            matches!(
                insert_user(&mut tx, &again).await,
                Err(InsertError::EmailTaken)
            ),
            "{set:?}"
        );
        tx.rollback().await.unwrap();
        drop_schema(&db).await;
    }

    async fn preference_updates_bump_the_version(set: BackendSet) {
        let dir = tempfile::tempdir().unwrap();
        let db = database(set, dir.path()).await;
        let id = Uuid::now_v7();
        let mut tx = db.begin().await.unwrap();
        let new = NewUser {
            id,
            name: "Bo",
            email: "bo@example.com",
            password_hash: "h",
            role: Role::Customer,
        };
        insert_user(&mut tx, &new).await.unwrap();
        let prefs = Preferences {
            promotions: false,
            timezone: "Asia/Tokyo".into(),
            ..Preferences::default()
        };
        let locked = find_user_for_update(&mut tx, &db, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(locked.preferences_version, 1);
        assert_eq!(update_preferences(&mut tx, id, &prefs).await.unwrap(), 2);
        tx.commit().await.unwrap();
        let user = find_user(&db, id).await.unwrap().unwrap();
        assert_eq!((user.preferences, user.preferences_version), (prefs, 2));
        drop_schema(&db).await;
    }

    async fn signing_keys_are_kept_in_order(set: BackendSet) {
        let dir = tempfile::tempdir().unwrap();
        let db = database(set, dir.path()).await;
        assert!(signing_keys(&db).await.unwrap().is_empty());
        insert_signing_key(&db, "k1", "AAAA").await.unwrap();
        insert_signing_key(&db, "k1", "BBBB").await.unwrap();
        insert_signing_key(&db, "k2", "CCCC").await.unwrap();
        let keys = signing_keys(&db).await.unwrap();
        assert_eq!(
            keys,
            vec![("k1".into(), "AAAA".into()), ("k2".into(), "CCCC".into())]
        );
        drop_schema(&db).await;
    }
}
