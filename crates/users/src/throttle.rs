//! Guessing slowed down without locking anyone out. Failed sign-ins are counted per
//! account *and client*, so an attacker elsewhere cannot lock the owner out, and per client
//! across accounts, so spraying one password over many emails slows down too; past the
//! free attempts each next one waits twice as long as the one before. Registrations are
//! counted per client. Every attempt counts, including each alias of one request.

use std::time::Duration;

use herald_platform::cache::{Backoff, Cache};
use herald_platform::{ApiError, ApiResult, Settings};
use uuid::Uuid;

use crate::domain::Email;

/// Failed sign-ins are remembered this long.
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(15 * 60);
const REGISTRATION_WINDOW: Duration = Duration::from_secs(3600);
/// Password reset requests: a few an hour for one address, more for one client (a
/// household, an office), each past them waiting twice as long as the one before.
const RESETS_PER_EMAIL: u32 = 3;
const RESETS_PER_CLIENT: u32 = 10;

#[derive(Clone)]
pub struct Throttles {
    cache: Cache,
    per_account_client: Option<Backoff>,
    per_client: Option<Backoff>,
    registrations: Option<Backoff>,
    alert_after: u32,
}

/// A client as the gateway named it; requests that came another way share one name.
fn client_name(client: Option<&str>) -> &str {
    client.filter(|c| !c.is_empty()).unwrap_or("unnamed")
}

impl Throttles {
    pub fn new(settings: &Settings, cache: Cache) -> Throttles {
        let sign_in = |free: u32| {
            (free > 0).then_some(Backoff {
                free,
                window: SIGN_IN_WINDOW,
                first_delay: Duration::from_secs(1),
                max_delay: SIGN_IN_WINDOW,
            })
        };
        Throttles {
            cache,
            per_account_client: sign_in(settings.login_failures_per_account_client),
            per_client: sign_in(settings.login_failures_per_client),
            registrations: (settings.registrations_per_client_per_hour > 0).then_some(Backoff {
                free: settings.registrations_per_client_per_hour,
                window: REGISTRATION_WINDOW,
                first_delay: Duration::from_secs(60),
                max_delay: REGISTRATION_WINDOW,
            }),
            alert_after: settings.login_failures_alert,
        }
    }

    /// Counts a sign-in attempt before the password is checked; RATE_LIMITED with how long
    /// to wait when this client must slow down (for this account, or at all).
    pub async fn sign_in_attempt(&self, email: &Email, client: Option<&str>) -> ApiResult<()> {
        let client = client_name(client);
        let account_key = account_client_key(email, client);
        if let Some(backoff) = &self.per_account_client
            && let Some(wait) = self.cache.attempt(&account_key, backoff).await
        {
            return Err(throttled(wait));
        }
        if let Some(backoff) = &self.per_client
            && let Some(wait) = self.cache.attempt(&client_key(client), backoff).await
        {
            // Not an attempt on this account after all.
            if self.per_account_client.is_some() {
                self.cache.refund(&account_key).await;
            }
            return Err(throttled(wait));
        }
        Ok(())
    }

    /// The right password: this client's attempts on the account are forgotten, and its
    /// attempt is taken back from its count across accounts (only failures count).
    pub async fn signed_in(&self, email: &Email, client: Option<&str>) {
        let client = client_name(client);
        if self.per_account_client.is_some() {
            self.cache.delete(&account_client_key(email, client)).await;
        }
        if self.per_client.is_some() {
            self.cache.refund(&client_key(client)).await;
        }
    }

    /// A wrong password for an existing account. The failures on it from anywhere within
    /// the window when they reach the alert threshold (once per window), for its owner.
    pub async fn failed(&self, user_id: Uuid) -> Option<u32> {
        if self.alert_after == 0 {
            return None;
        }
        let failures = self
            .cache
            .incr(&format!("sign-in-failures:{user_id}"), SIGN_IN_WINDOW)
            .await?;
        (failures == i64::from(self.alert_after)).then_some(self.alert_after)
    }

    /// Counts a password reset request (or the use of a link) for `email` from `client`;
    /// RATE_LIMITED when it must wait. Whether the account exists plays no part.
    pub async fn reset_attempt(
        &self,
        email: Option<&Email>,
        client: Option<&str>,
    ) -> ApiResult<()> {
        let backoff = |free| Backoff {
            free,
            window: REGISTRATION_WINDOW,
            first_delay: Duration::from_secs(60),
            max_delay: REGISTRATION_WINDOW,
        };
        let mut keys = vec![(
            format!("resets:{}", client_name(client)),
            backoff(RESETS_PER_CLIENT),
        )];
        if let Some(email) = email {
            keys.push((
                format!("resets:{}", email.as_str()),
                backoff(RESETS_PER_EMAIL),
            ));
        }
        for (key, backoff) in keys {
            if let Some(wait) = self.cache.attempt(&key, &backoff).await {
                metrics::counter!("users_password_resets_throttled_total").increment(1);
                return Err(ApiError::throttled(
                    format!(
                        "too many password resets asked for; try again in {} s",
                        seconds(wait)
                    ),
                    wait,
                ));
            }
        }
        Ok(())
    }

    /// Counts a registration of `client`; RATE_LIMITED when it must wait.
    pub async fn registration_attempt(&self, client: Option<&str>) -> ApiResult<()> {
        if let Some(backoff) = &self.registrations {
            let key = format!("registrations:{}", client_name(client));
            if let Some(wait) = self.cache.attempt(&key, backoff).await {
                metrics::counter!("users_registrations_throttled_total").increment(1);
                return Err(ApiError::throttled(
                    format!(
                        "too many accounts registered from here; try again in {} s",
                        seconds(wait)
                    ),
                    wait,
                ));
            }
        }
        Ok(())
    }
}

fn account_client_key(email: &Email, client: &str) -> String {
    format!("sign-in:{}:{client}", email.as_str())
}

fn client_key(client: &str) -> String {
    format!("sign-in:{client}")
}

fn seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

fn throttled(wait: Duration) -> ApiError {
    metrics::counter!("users_sign_ins_throttled_total").increment(1);
    ApiError::throttled(
        format!("too many failed sign-ins; try again in {} s", seconds(wait)),
        wait,
    )
}
