//! Accounts and sessions, as other services use them: register, sign in, refresh a
//! session, read and change accounts, and the version of an account's credentials.
//! [`AccountsApi`] is the one way to call them, with two implementations: [`Accounts`]
//! itself, in the same process (no HTTP, no JSON, no second token check), and
//! [`AccountsOverHttp`], across processes with a service credential. The HTTP routes of
//! `api` serve the second with the first, so both run the same code.

use herald_events::{
    Envelope, Event, PasswordChanged, PasswordResetRequested, Role, SignInFailures, UserRegistered,
    UsersImported,
};
use herald_platform::auth::Claims;
use herald_platform::db::{Database, Tx};
use herald_platform::http::ServiceClient;
use herald_platform::outbox::Outbox;
use herald_platform::{ApiError, ApiResult, ErrorCode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::{Email, Password, PreferencesPatch, UserName};
use crate::import::{ImportOutcome, ImportRequest};
use crate::passwords::{dummy_hash, hash_password, verify_password};
use crate::resets::{NewPassword, ResetRequest};
use crate::sessions::{AuthPayload, Sessions};
use crate::store::{self, InsertError, NewUser, User};
use crate::throttle::{SIGN_IN_WINDOW, Throttles};

/// A new customer account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub name: String,
    pub email: String,
    pub password: String,
    /// The address the request came from, as the gateway saw it (registrations are
    /// limited per client).
    #[serde(default)]
    pub client: Option<String>,
}

/// A sign-in with email and password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The address the request came from, as the gateway saw it (failures are counted per
    /// account and client).
    #[serde(default)]
    pub client: Option<String>,
}

/// A refresh token to trade for the next pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// A request taken (its effect comes later, or not at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub accepted: bool,
}

/// The version of an account's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenVersion {
    pub version: i64,
}

/// The operations on accounts and sessions.
#[async_trait::async_trait]
pub trait AccountsApi: Send + Sync + 'static {
    /// A new customer account and its first session. BAD_USER_INPUT for an invalid name,
    /// email or password, CONFLICT for an email already registered, RATE_LIMITED when its
    /// client registered too many.
    async fn register(&self, request: &RegisterRequest) -> ApiResult<AuthPayload>;
    /// A new session. UNAUTHENTICATED for a wrong email or password, RATE_LIMITED when
    /// its client must wait after failures.
    async fn login(&self, request: &LoginRequest) -> ApiResult<AuthPayload>;
    /// Trades a refresh token for a new pair; UNAUTHENTICATED for a used, revoked,
    /// expired or unknown one (a used one also signs its whole family out).
    async fn refresh(&self, refresh_token: &str) -> ApiResult<AuthPayload>;
    /// The signed-in user's account; UNAUTHENTICATED when it no longer exists.
    async fn me(&self, acting: &Claims) -> ApiResult<User>;
    /// An account by id: the user's own, or any for an admin (FORBIDDEN otherwise);
    /// NOT_FOUND when there is none.
    async fn user(&self, acting: &Claims, id: Uuid) -> ApiResult<User>;
    /// Changes the signed-in user's preferences; BAD_USER_INPUT for an invalid change.
    async fn update_preferences(
        &self,
        acting: &Claims,
        patch: &PreferencesPatch,
    ) -> ApiResult<User>;
    /// The version of an account's credentials, which its tokens must carry; `None` when
    /// the account does not exist (any more). For the gateway, which checks tokens by it.
    async fn token_version(&self, user: Uuid) -> ApiResult<Option<i64>>;
    /// Imports customers (ADMIN; FORBIDDEN otherwise), at most [`crate::import::MAX_IMPORT`]:
    /// all or nothing (BAD_USER_INPUT naming every wrong row), an email already known
    /// skipped. They have no password (they set one through a password reset) and are
    /// not welcomed; the other services hear of them in one `user.imported` event.
    async fn import_users(
        &self,
        acting: &Claims,
        request: &ImportRequest,
    ) -> ApiResult<ImportOutcome>;
    /// Sends the account of `email`, if there is one, a single-use link to set a new
    /// password (valid an hour; a newer one supersedes it). Answers the same, as fast,
    /// whether or not the account exists; BAD_USER_INPUT for a malformed address,
    /// RATE_LIMITED when this address or client asked too often.
    async fn request_password_reset(&self, request: &ResetRequest) -> ApiResult<()>;
    /// Sets the password of a reset link's account and signs in; every earlier token of
    /// the account stops working. BAD_USER_INPUT for a used, expired, superseded or
    /// altered link, or a password that is too short.
    async fn reset_password(&self, request: &NewPassword) -> ApiResult<AuthPayload>;
}

impl From<&User> for UserRegistered {
    fn from(user: &User) -> UserRegistered {
        UserRegistered {
            user_id: user.id,
            name: user.name.clone(),
            email: user.email.clone(),
            role: user.role,
            preferences: user.preferences.clone(),
            preferences_version: user.preferences_version,
        }
    }
}

/// Who may read the account `id` (its text as the caller named it, in any of a UUID's
/// spellings): its owner and admins; FORBIDDEN for anyone else.
pub fn may_read(acting: &Claims, id: &str) -> ApiResult<()> {
    if acting.is_admin() || id.parse::<Uuid>().is_ok_and(|id| id == acting.sub) {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins can read other users"))
    }
}

pub(crate) fn no_user(id: impl std::fmt::Display) -> ApiError {
    ApiError::not_found(format!("no user {id}"))
}

fn account_gone() -> ApiError {
    ApiError::unauthenticated("the account of this token no longer exists")
}

/// Accounts and sessions over the service's storage, cache and signing key.
#[derive(Clone)]
pub struct Accounts {
    db: Database,
    outbox: Outbox,
    sessions: Sessions,
    throttles: Throttles,
    /// Where the shop's pages are (HERALD_PUBLIC_URL), for reset links.
    public_url: String,
}

impl Accounts {
    pub fn new(
        db: Database,
        outbox: Outbox,
        sessions: Sessions,
        throttles: Throttles,
        public_url: &str,
    ) -> Accounts {
        Accounts {
            db,
            outbox,
            sessions,
            throttles,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Adds `event`, about the user `user_id`, to the outbox in `tx`.
    async fn announce<E: Event>(&self, tx: &mut Tx, user_id: Uuid, event: &E) -> ApiResult<()> {
        let envelope = Envelope::new(SERVICE, Some(user_id.to_string()), event);
        self.outbox.add(tx, &envelope).await?;
        Ok(())
    }

    /// Stores a reset link for the account of `email`, if there is one, and announces it
    /// (`user.password_reset_requested`) in the same transaction.
    async fn send_reset_link(&self, email: &Email) -> ApiResult<()> {
        let Some((user, _)) = store::find_credentials(&self.db, email.as_str()).await? else {
            return Ok(());
        };
        let mut tx = self.db.begin().await?;
        let (token, expires_at) = crate::resets::issue(&mut tx, user.id).await?;
        let event = PasswordResetRequested {
            user_id: user.id,
            link: format!("{}/reset-password?token={token}", self.public_url),
            expires_at: herald_platform::db::to_datetime(expires_at),
        };
        self.announce(&mut tx, user.id, &event).await?;
        self.outbox.commit(tx).await?;
        Ok(())
    }

    /// Creates an account and its `user.registered` event in one transaction.
    pub(crate) async fn create_user(
        &self,
        name: &UserName,
        email: &Email,
        password: &Password,
        role: Role,
    ) -> ApiResult<User> {
        let hash = hash_password(password).await?;
        let mut tx = self.db.begin().await?;
        let new = NewUser {
            id: Uuid::now_v7(),
            name: name.as_str(),
            email: email.as_str(),
            password_hash: &hash,
            role,
        };
        let user = match store::insert_user(&mut tx, &new).await {
            Ok(user) => user,
            Err(InsertError::EmailTaken) => {
                return Err(ApiError::conflict(format!(
                    "{} is already registered",
                    email.as_str()
                )));
            }
            Err(InsertError::Db(e)) => return Err(e.into()),
        };
        let event = UserRegistered::from(&user);
        self.announce(&mut tx, user.id, &event).await?;
        self.outbox.commit(tx).await?;
        Ok(user)
    }

    /// `user.sign_in_failures`, so the account's owner hears of them.
    async fn tell_owner(
        &self,
        user_id: Uuid,
        failures: u32,
        client: Option<&str>,
    ) -> ApiResult<()> {
        let event = SignInFailures {
            user_id,
            failures,
            window_minutes: u32::try_from(SIGN_IN_WINDOW.as_secs() / 60).unwrap_or(u32::MAX),
            client: client.map(str::to_owned),
        };
        let mut tx = self.db.begin().await?;
        self.announce(&mut tx, user_id, &event).await?;
        self.outbox.commit(tx).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl AccountsApi for Accounts {
    async fn register(&self, request: &RegisterRequest) -> ApiResult<AuthPayload> {
        self.throttles
            .registration_attempt(request.client.as_deref())
            .await?;
        let name = UserName::parse(&request.name)?;
        let email = Email::parse(&request.email)?;
        let password = Password::parse(&request.password)?;
        let user = self
            .create_user(&name, &email, &password, Role::Customer)
            .await?;
        metrics::counter!("users_registered_total").increment(1);
        self.sessions.start(user).await
    }

    async fn login(&self, request: &LoginRequest) -> ApiResult<AuthPayload> {
        let wrong = || ApiError::unauthenticated("wrong email or password");
        let Ok(email) = Email::parse(&request.email) else {
            return Err(wrong());
        };
        let client = request.client.as_deref();
        self.throttles.sign_in_attempt(&email, client).await?;
        let found = store::find_credentials(&self.db, email.as_str()).await?;
        // Verify against a dummy hash when the account is unknown or has no password yet
        // (imported), so timing does not tell; neither can sign in.
        let (user, hash) = match found {
            Some((user, Some(hash))) => (Some(user), hash),
            Some((user, None)) => (Some(user), dummy_hash().to_owned()),
            None => (None, dummy_hash().to_owned()),
        };
        let ok_hash = hash.as_str() != dummy_hash();
        let ok = verify_password(request.password.clone(), hash).await? && ok_hash;
        if !ok {
            metrics::counter!("users_login_failures_total").increment(1);
        }
        match user {
            Some(user) if ok => {
                self.throttles.signed_in(&email, client).await;
                self.sessions.start(user).await
            }
            Some(user) => {
                if let Some(failures) = self.throttles.failed(user.id).await {
                    self.tell_owner(user.id, failures, client).await?;
                }
                Err(wrong())
            }
            None => Err(wrong()),
        }
    }

    async fn refresh(&self, refresh_token: &str) -> ApiResult<AuthPayload> {
        self.sessions.refresh(refresh_token).await
    }

    async fn me(&self, acting: &Claims) -> ApiResult<User> {
        store::find_user(&self.db, acting.sub)
            .await?
            .ok_or_else(account_gone)
    }

    async fn user(&self, acting: &Claims, id: Uuid) -> ApiResult<User> {
        may_read(acting, &id.to_string())?;
        store::find_user(&self.db, id)
            .await?
            .ok_or_else(|| no_user(id))
    }

    async fn update_preferences(
        &self,
        acting: &Claims,
        patch: &PreferencesPatch,
    ) -> ApiResult<User> {
        let mut tx = self.db.begin().await?;
        let user =
            crate::preferences::change(&mut tx, &self.db, &self.outbox, acting.sub, patch.clone())
                .await?
                .ok_or_else(account_gone)?;
        self.outbox.commit(tx).await?;
        Ok(user)
    }

    async fn token_version(&self, user: Uuid) -> ApiResult<Option<i64>> {
        Ok(store::token_version(&self.db, user).await?)
    }

    async fn import_users(
        &self,
        acting: &Claims,
        request: &ImportRequest,
    ) -> ApiResult<ImportOutcome> {
        if !acting.is_admin() {
            return Err(ApiError::forbidden("only admins can import users"));
        }
        let rows = crate::import::check(request)?;
        let imported: Vec<store::ImportedUser> = rows
            .iter()
            .map(|row| store::ImportedUser {
                name: row.name.as_str(),
                email: row.email.as_str(),
                preferences: &row.preferences,
            })
            .collect();
        let mut tx = self.db.begin().await?;
        let created = store::insert_imported(&mut tx, &imported).await?;
        if !created.is_empty() {
            let event = UsersImported {
                users: created.iter().map(UserRegistered::from).collect(),
            };
            self.outbox
                .add(&mut tx, &Envelope::new(SERVICE, None, &event))
                .await?;
        }
        self.outbox.commit(tx).await?;
        let created = created.len() as u64;
        metrics::counter!("users_imported_total").increment(created);
        Ok(ImportOutcome {
            created,
            skipped: request.users.len() as u64 - created,
        })
    }

    async fn request_password_reset(&self, request: &ResetRequest) -> ApiResult<()> {
        let email = Email::parse(&request.email)?;
        self.throttles
            .reset_attempt(Some(&email), request.client.as_deref())
            .await?;
        // The answer leaves before the account is even looked up, so its timing tells
        // nothing; a failure is logged (the owner can ask again).
        let accounts = self.clone();
        tokio::spawn(async move {
            if let Err(e) = accounts.send_reset_link(&email).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "a password reset link was not sent"
                );
            }
        });
        Ok(())
    }

    async fn reset_password(&self, request: &NewPassword) -> ApiResult<AuthPayload> {
        self.throttles
            .reset_attempt(None, request.client.as_deref())
            .await?;
        let password = Password::parse(&request.password)?;
        let hash = hash_password(&password).await?;
        let mut tx = self.db.begin().await?;
        let Some(user_id) = crate::resets::redeem(&mut tx, &request.token).await? else {
            return Err(ApiError::bad_input(
                "this password reset link is used, expired, superseded by a newer one or not valid; ask for a new one",
            ));
        };
        store::set_password(&mut tx, user_id, &hash).await?;
        crate::sessions::sign_out_everywhere(&mut tx, user_id).await?;
        self.announce(&mut tx, user_id, &PasswordChanged { user_id })
            .await?;
        self.outbox.commit(tx).await?;
        metrics::counter!("users_passwords_reset_total").increment(1);
        let user = store::find_user(&self.db, user_id)
            .await?
            .ok_or_else(account_gone)?;
        self.sessions.start(user).await
    }
}

/// The accounts of a users service in another process.
#[derive(Clone, Debug)]
pub struct AccountsOverHttp {
    service: ServiceClient,
}

impl AccountsOverHttp {
    /// `service` calls the users service.
    pub fn new(service: ServiceClient) -> AccountsOverHttp {
        AccountsOverHttp { service }
    }
}

#[async_trait::async_trait]
impl AccountsApi for AccountsOverHttp {
    async fn register(&self, request: &RegisterRequest) -> ApiResult<AuthPayload> {
        self.service.post("/users", request, None).await
    }

    async fn login(&self, request: &LoginRequest) -> ApiResult<AuthPayload> {
        self.service.post("/sessions", request, None).await
    }

    async fn refresh(&self, refresh_token: &str) -> ApiResult<AuthPayload> {
        let request = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        self.service.post("/sessions/refresh", &request, None).await
    }

    async fn me(&self, acting: &Claims) -> ApiResult<User> {
        self.service.get("/users/me", Some(acting)).await
    }

    async fn user(&self, acting: &Claims, id: Uuid) -> ApiResult<User> {
        self.service
            .get(&format!("/users/{id}"), Some(acting))
            .await
    }

    async fn update_preferences(
        &self,
        acting: &Claims,
        patch: &PreferencesPatch,
    ) -> ApiResult<User> {
        self.service
            .patch("/users/me/preferences", patch, Some(acting))
            .await
    }

    async fn import_users(
        &self,
        acting: &Claims,
        request: &ImportRequest,
    ) -> ApiResult<ImportOutcome> {
        self.service
            .post("/users/import", request, Some(acting))
            .await
    }

    async fn request_password_reset(&self, request: &ResetRequest) -> ApiResult<()> {
        let _: Accepted = self.service.post("/password-resets", request, None).await?;
        Ok(())
    }

    async fn reset_password(&self, request: &NewPassword) -> ApiResult<AuthPayload> {
        self.service
            .post("/password-resets/redeem", request, None)
            .await
    }

    async fn token_version(&self, user: Uuid) -> ApiResult<Option<i64>> {
        let asked: ApiResult<TokenVersion> = self
            .service
            .get(&format!("/users/{user}/token-version"), None)
            .await;
        match asked {
            Ok(answer) => Ok(Some(answer.version)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use herald_platform::testing::TestKey;

    use super::*;

    #[test]
    fn owners_read_their_account_however_they_spell_its_id() {
        let key = TestKey::generate("users");
        let own = Uuid::now_v7();
        let ada = key.claims(own, Role::Customer);
        let upper = own.to_string().to_uppercase();
        for spelling in [
            own.to_string(),
            upper,
            format!("{{{own}}}"),
            own.simple().to_string(),
        ] {
            assert!(may_read(&ada, &spelling).is_ok(), "{spelling}");
        }
        for other in [
            Uuid::now_v7().to_string(),
            "not an id".to_owned(),
            String::new(),
        ] {
            let refused = may_read(&ada, &other).unwrap_err();
            assert_eq!(refused.code(), ErrorCode::Forbidden, "{other}");
        }
        let admin = key.claims(Uuid::now_v7(), Role::Admin);
        assert!(may_read(&admin, "anything").is_ok());
    }
}
