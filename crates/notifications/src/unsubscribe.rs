//! One-click unsubscribe (RFC 8058): every email but SECURITY carries a signed, expiring
//! link that switches its notification type off for its recipient, with one POST and no
//! login. The preference belongs to the users service, so a valid POST publishes
//! `user.unsubscribe_requested` through this service's outbox; a GET only shows a button
//! (mail scanners follow links).
//!
//! A token is `base64url(payload).base64url(HMAC-SHA256(key, payload))` with the payload
//! `{user_id}:{TYPE}:{expires_unix}`.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use herald_events::{Envelope, UnsubscribeRequested};
use herald_platform::db::{Database, now_micros};
use herald_platform::http::page::{escape, small_page};
use herald_platform::outbox::Outbox;
use herald_platform::{ApiError, Settings};
use ring::hmac;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use crate::SERVICE;
use crate::clock::Clock;
use crate::domain::NotificationType;

/// How long an unsubscribe link works.
pub const LINK_LIFETIME_DAYS: i64 = 30;
const SECRET_NAME: &str = "unsubscribe_key";

/// Makes and checks unsubscribe links.
#[derive(Clone)]
pub struct UnsubscribeLinks {
    key: hmac::Key,
    public_url: String,
    clock: Clock,
}

impl std::fmt::Debug for UnsubscribeLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsubscribeLinks")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// What a valid token asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe {
    pub user_id: Uuid,
    pub notification_type: NotificationType,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidToken {
    #[error("this unsubscribe link is malformed")]
    Malformed,
    #[error("this unsubscribe link is not genuine")]
    Forged,
    #[error("this unsubscribe link has expired")]
    Expired,
}

impl UnsubscribeLinks {
    pub fn new(secret: &[u8], public_url: &str, clock: Clock) -> UnsubscribeLinks {
        UnsubscribeLinks {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            public_url: public_url.trim_end_matches('/').to_owned(),
            clock,
        }
    }

    /// The key from the `unsubscribe_secret` setting, else the one this service generated
    /// on its first start and keeps in its database (replicas agree on the first stored).
    pub async fn load(settings: &Settings, db: &Database, clock: Clock) -> anyhow::Result<Self> {
        let secret = match &settings.unsubscribe_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => stored_secret(db).await?,
        };
        Ok(UnsubscribeLinks::new(&secret, &settings.public_url, clock))
    }

    /// The signed token for `notification_type` of `user_id`, valid for 30 days; None for
    /// SECURITY, which cannot be switched off.
    pub fn token(&self, user_id: Uuid, notification_type: NotificationType) -> Option<String> {
        if notification_type == NotificationType::Security {
            return None;
        }
        let expires = self.clock.now() + Duration::days(LINK_LIFETIME_DAYS);
        Some(self.sign(user_id, notification_type.as_str(), expires.timestamp()))
    }

    /// `{public_url}/unsubscribe?token=…`, or None for SECURITY.
    pub fn link(&self, user_id: Uuid, notification_type: NotificationType) -> Option<String> {
        let token = self.token(user_id, notification_type)?;
        Some(format!("{}/unsubscribe?token={token}", self.public_url))
    }

    fn sign(&self, user_id: Uuid, notification_type: &str, expires_unix: i64) -> String {
        let payload = format!("{user_id}:{notification_type}:{expires_unix}");
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// What `token` asks for, if it is genuine and has not expired.
    pub fn verify(&self, token: &str) -> Result<Unsubscribe, InvalidToken> {
        let (payload, tag) = token.split_once('.').ok_or(InvalidToken::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| InvalidToken::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| InvalidToken::Malformed)?;
        hmac::verify(&self.key, &payload, &tag).map_err(|_| InvalidToken::Forged)?;
        // Signed by this service: what follows can only fail for a token it never made.
        let payload = String::from_utf8(payload).map_err(|_| InvalidToken::Malformed)?;
        let mut parts = payload.splitn(3, ':');
        let (Some(user), Some(kind), Some(expires)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidToken::Malformed);
        };
        let user_id: Uuid = user.parse().map_err(|_| InvalidToken::Malformed)?;
        let notification_type = NotificationType::parse(kind)
            .filter(|t| *t != NotificationType::Security)
            .ok_or(InvalidToken::Malformed)?;
        let expires: i64 = expires.parse().map_err(|_| InvalidToken::Malformed)?;
        let expires = DateTime::<Utc>::from_timestamp(expires, 0).ok_or(InvalidToken::Malformed)?;
        if self.clock.now() >= expires {
            return Err(InvalidToken::Expired);
        }
        Ok(Unsubscribe {
            user_id,
            notification_type,
        })
    }
}

async fn stored_secret(db: &Database) -> anyhow::Result<Vec<u8>> {
    let mut fresh = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh)
        .map_err(|_| anyhow::anyhow!("no randomness for the unsubscribe key"))?;
    sqlx::query(
        "INSERT INTO notification_secrets (name, value, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(SECRET_NAME)
    .bind(STANDARD.encode(fresh))
    .bind(now_micros())
    .execute(db.pool())
    .await?;
    let row = sqlx::query("SELECT value FROM notification_secrets WHERE name = $1")
        .bind(SECRET_NAME)
        .fetch_one(db.pool())
        .await?;
    let value: String = row.try_get("value")?;
    Ok(STANDARD.decode(value)?)
}

#[derive(Clone, Debug)]
pub struct UnsubscribeState {
    pub links: UnsubscribeLinks,
    pub outbox: Outbox,
    pub db: Database,
}

/// `GET /unsubscribe?token=` (a page with a button) and `POST /unsubscribe?token=` (the
/// one-click unsubscribe itself). No login: the token is the proof.
pub fn router(state: UnsubscribeState) -> Router {
    Router::new()
        .route("/unsubscribe", get(confirm_page).post(unsubscribe))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscribed {
    pub unsubscribed: bool,
    #[serde(rename = "type")]
    pub notification_type: String,
}

fn checked(
    links: &UnsubscribeLinks,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Unsubscribe, InvalidToken> {
    let token = query
        .ok()
        .and_then(|Query(q)| q.token)
        .ok_or(InvalidToken::Malformed)?;
    links.verify(&token)
}

/// The body of a POST that came from the page's own button, not a mail client.
fn from_the_page(body: &[u8]) -> bool {
    String::from_utf8_lossy(body)
        .split('&')
        .any(|pair| pair == "source=page")
}

async fn unsubscribe(
    State(state): State<UnsubscribeState>,
    query: Result<Query<TokenQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    let wanted = match checked(&state.links, query) {
        Ok(wanted) => wanted,
        Err(e) => {
            tracing::info!(reason = %e, "refused an unsubscribe link");
            if from_the_page(&body) {
                return invalid_page(&e);
            }
            let body = ApiError::bad_input(e.to_string()).body();
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    if let Err(e) = request_unsubscribe(&state, wanted).await {
        return ApiError::Unexpected(e).into_response();
    }
    tracing::info!(
        user_id = %wanted.user_id,
        notification_type = wanted.notification_type.as_str(),
        "unsubscribe requested"
    );
    if from_the_page(&body) {
        return page(
            StatusCode::OK,
            "Unsubscribed",
            &format!(
                "You will no longer hear about {}.",
                label(wanted.notification_type)
            ),
            false,
        );
    }
    Json(Unsubscribed {
        unsubscribed: true,
        notification_type: wanted.notification_type.as_str().to_owned(),
    })
    .into_response()
}

async fn request_unsubscribe(state: &UnsubscribeState, wanted: Unsubscribe) -> anyhow::Result<()> {
    let event = Envelope::new(
        SERVICE,
        Some(wanted.user_id.to_string()),
        &UnsubscribeRequested {
            user_id: wanted.user_id,
            notification_type: wanted.notification_type.as_str().to_owned(),
        },
    );
    let mut tx = state.db.begin().await?;
    state.outbox.add(&mut tx, &event).await?;
    state.outbox.commit(tx).await?;
    Ok(())
}

async fn confirm_page(
    State(state): State<UnsubscribeState>,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    match checked(&state.links, query) {
        Ok(wanted) => page(
            StatusCode::OK,
            "Unsubscribe",
            &format!(
                "Stop hearing about {}? You can switch them on again in your preferences.",
                label(wanted.notification_type)
            ),
            true,
        ),
        Err(e) => invalid_page(&e),
    }
}

fn invalid_page(e: &InvalidToken) -> Response {
    let message = format!("{e}. Change what you hear about in your preferences instead.");
    page(StatusCode::BAD_REQUEST, "Unsubscribe", &message, false)
}

fn label(notification_type: NotificationType) -> &'static str {
    match notification_type {
        NotificationType::OrderUpdate => "order updates",
        NotificationType::Promotion => "promotions",
        NotificationType::Recommendation => "recommendations",
        NotificationType::Inventory => "inventory alerts",
        NotificationType::Security => "account messages",
    }
}

/// A small page in the app's look; `message` is our own text. The form posts to the page's
/// own address, token included, so it works behind the gateway as well.
fn page(status: StatusCode, title: &str, message: &str, with_button: bool) -> Response {
    let button = if with_button {
        "<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" \
         value=\"One-Click\"><input type=\"hidden\" name=\"source\" value=\"page\">\
         <button type=\"submit\">Unsubscribe</button></form>"
    } else {
        "<p><a href=\"/#/preferences\">Your preferences</a></p>"
    };
    small_page(
        status,
        title,
        &format!("<p>{}</p>{button}", escape(message)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(clock: &Clock) -> UnsubscribeLinks {
        UnsubscribeLinks::new(b"a test key", "http://localhost:4000/", clock.clone())
    }

    #[test]
    fn a_token_names_its_user_and_type_until_it_expires() {
        let clock = Clock::manual("2026-06-15T12:00:00Z".parse().unwrap());
        let links = links(&clock);
        let ada = Uuid::now_v7();
        let link = links.link(ada, NotificationType::Promotion).unwrap();
        let token = link
            .strip_prefix("http://localhost:4000/unsubscribe?token=")
            .unwrap();
        let wanted = Unsubscribe {
            user_id: ada,
            notification_type: NotificationType::Promotion,
        };
        assert_eq!(links.verify(token), Ok(wanted));
        clock.advance(Duration::days(LINK_LIFETIME_DAYS) - Duration::seconds(1));
        assert_eq!(links.verify(token), Ok(wanted));
        clock.advance(Duration::seconds(1));
        assert_eq!(links.verify(token), Err(InvalidToken::Expired));
    }

    #[test]
    fn security_has_no_link() {
        let links = links(&Clock::system());
        assert_eq!(links.link(Uuid::now_v7(), NotificationType::Security), None);
        let forged_security = links.sign(Uuid::now_v7(), "SECURITY", i64::MAX / 2);
        assert_eq!(links.verify(&forged_security), Err(InvalidToken::Malformed));
    }

    #[test]
    fn forged_and_malformed_tokens_are_told_apart() {
        let clock = Clock::system();
        let links = links(&clock);
        let ada = Uuid::now_v7();
        let token = links.token(ada, NotificationType::Inventory).unwrap();
        let (payload, tag) = token.split_once('.').unwrap();
        // Someone else's id under Ada's signature.
        let bob = URL_SAFE_NO_PAD.encode(format!(
            "{}:INVENTORY:{}",
            Uuid::now_v7(),
            (Utc::now() + Duration::days(1)).timestamp()
        ));
        assert_eq!(
            links.verify(&format!("{bob}.{tag}")),
            Err(InvalidToken::Forged)
        );
        // Signed with another key.
        let other = UnsubscribeLinks::new(b"another key", "http://x", clock.clone());
        let theirs = other.token(ada, NotificationType::Inventory).unwrap();
        assert_eq!(links.verify(&theirs), Err(InvalidToken::Forged));
        for bad in [
            "",
            "abc",
            "abc.",
            ".abc",
            "!!.??",
            &format!("{payload}.{payload}.x"),
        ] {
            assert!(links.verify(bad).is_err(), "{bad}");
        }
        assert_eq!(links.verify(payload), Err(InvalidToken::Malformed));
    }
}
