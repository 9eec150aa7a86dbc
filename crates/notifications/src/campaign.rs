//! Promotions: admins' campaigns, sent to every opted-in user (or those who prefer its
//! category) when their time comes.
//!
//! The fan-out is set-based: it walks the recipients replica in user-id order, a batch of
//! [`Campaigns::batch_size`] at a time, and decides and stores each batch with
//! [`Notifier::deliver_all`] (a few multi-row statements) in one transaction that also
//! records the promotion's progress. Each user's draft has the dedupe key
//! `promotion:{id}:{user}`, so a fan-out resumed after a crash, retried, or run by two
//! replicas at once never notifies anyone twice; channels, quiet hours and the daily cap
//! apply through the one decision function.

use std::collections::HashSet;

use async_trait::async_trait;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use herald_events::{JOB_PROMOTIONS, JobDue};
use herald_platform::auth::{Caller, TokenVerifier};
use herald_platform::bulk::{ROWS_PER_STATEMENT, json_list, select_list};
use herald_platform::db::{Backend, Database, Tx, to_datetime};
use herald_platform::http::created;
use herald_platform::jobs::Job;
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, Row};
use uuid::Uuid;

use crate::clock::Clock;
use crate::decision::Decision;
use crate::delivery::Notifier;
use crate::domain::{Draft, NotificationType, Recipient};
use crate::promotions::{
    Audience, AudienceQuery, PromotionsApi, PromotionsQuery, may_manage_promotions,
};
use crate::recipients::{columns_of, recipient_from_row};

/// How long a fan-out holds its promotion before another may take over; renewed per batch.
const LEASE: Duration = Duration::seconds(120);
/// Limits of what an admin may write.
const MAX_TITLE: usize = 200;
const MAX_BODY: usize = 2000;
const MAX_CATEGORY: usize = 100;

/// A promotion as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    pub category: Option<String>,
    pub send_at: DateTime<Utc>,
    pub status: String,
    pub recipients: i64,
}

/// A campaign as an admin writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionInput {
    pub title: String,
    pub body: String,
    pub category: Option<String>,
    pub send_at: Option<DateTime<Utc>>,
}

impl PromotionInput {
    /// The input trimmed and checked; a `sendAt` in the past means now.
    fn validate(
        self,
        now: DateTime<Utc>,
    ) -> ApiResult<(String, String, Option<String>, DateTime<Utc>)> {
        let title = self.title.trim().to_owned();
        let body = self.body.trim().to_owned();
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Err(ApiError::bad_input(format!(
                "title must be 1 to {MAX_TITLE} characters"
            )));
        }
        if body.is_empty() || body.chars().count() > MAX_BODY {
            return Err(ApiError::bad_input(format!(
                "body must be 1 to {MAX_BODY} characters"
            )));
        }
        let category = promotion_category(self.category.as_deref())?;
        let send_at = self.send_at.unwrap_or(now).max(now);
        if send_at > now + Duration::days(366) {
            return Err(ApiError::bad_input("sendAt must be within a year"));
        }
        Ok((title, body, category, send_at))
    }
}

/// A promotion's category as an admin gives it: trimmed, 1 to [`MAX_CATEGORY`]
/// characters, or None for everyone.
pub(crate) fn promotion_category(category: Option<&str>) -> ApiResult<Option<String>> {
    match category.map(str::trim) {
        Some(c) if c.is_empty() || c.chars().count() > MAX_CATEGORY => Err(ApiError::bad_input(
            format!("category must be 1 to {MAX_CATEGORY} characters, or null for everyone"),
        )),
        category => Ok(category.map(str::to_owned)),
    }
}

const COLUMNS: &str = "id, title, body, category, send_at, status, recipients";

fn promotion_from_row(row: &AnyRow) -> Result<Promotion, sqlx::Error> {
    let id: String = row.try_get("id")?;
    Ok(Promotion {
        id: id.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        category: row.try_get("category")?,
        send_at: to_datetime(row.try_get("send_at")?),
        status: row.try_get("status")?,
        recipients: row.try_get("recipients")?,
    })
}

/// What one call of [`Campaigns::send_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub promotions: usize,
    pub notifications: u64,
}

/// Keeps and sends promotions.
#[derive(Clone, Debug)]
pub struct Campaigns {
    pub db: Database,
    pub notifier: Notifier,
    pub clock: Clock,
    /// Recipients decided per transaction.
    pub batch_size: usize,
    /// Transactions of a fan-out at once: 3 on PostgreSQL (one waits for the database
    /// while two keep both cores busy), 1 on SQLite (one writer at a time anyway).
    pub parallel: usize,
}

impl Campaigns {
    pub fn new(db: Database, notifier: Notifier, clock: Clock) -> Campaigns {
        let parallel = match db.backend() {
            Backend::Postgres => 3,
            Backend::Sqlite => 1,
        };
        Campaigns {
            db,
            notifier,
            clock,
            batch_size: 2000,
            parallel,
        }
    }

    pub async fn create(&self, input: PromotionInput, by: Uuid) -> ApiResult<Promotion> {
        let now = self.clock.now();
        let (title, body, category, send_at) = input.validate(now)?;
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO promotions (id, title, body, category, send_at, status, recipients, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, 'SCHEDULED', 0, $6, $7)",
        )
        .bind(id.to_string())
        .bind(&title)
        .bind(&body)
        .bind(category.clone())
        .bind(send_at.timestamp_micros())
        .bind(by.to_string())
        .bind(now.timestamp_micros())
        .execute(self.db.pool())
        .await?;
        tracing::info!(promotion = %id, %send_at, category, "promotion scheduled");
        Ok(Promotion {
            id,
            title,
            body,
            category,
            send_at,
            status: "SCHEDULED".to_owned(),
            recipients: 0,
        })
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Promotion>, sqlx::Error> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM promotions WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await?
        .as_ref()
        .map(promotion_from_row)
        .transpose()
    }

    /// The newest promotions first.
    pub async fn list(&self, first: i64) -> Result<Vec<Promotion>, sqlx::Error> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM promotions ORDER BY created_at DESC, id DESC LIMIT $1"
        )))
        .bind(first)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(promotion_from_row)
        .collect()
    }

    /// How many users a promotion of `category` (None: for everyone) created now would
    /// reach: a row of the audiences the database keeps (see its migration).
    pub async fn audience(&self, category: Option<&str>) -> Result<i64, sqlx::Error> {
        let category = category.map(str::to_lowercase).unwrap_or_default();
        let users: Option<i64> =
            sqlx::query_scalar("SELECT users FROM promotion_audience WHERE category = $1")
                .bind(category)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(users.unwrap_or(0))
    }

    /// Takes the next promotion to send: a due SCHEDULED one, or a SENDING one whose
    /// sender's lease ran out. Of concurrent callers one gets it.
    async fn claim_next(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<(Promotion, String)>, sqlx::Error> {
        let now_us = now.timestamp_micros();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE promotions SET status = 'SENDING', lease_until = $1
             WHERE id = (SELECT id FROM promotions
                         WHERE (status = 'SCHEDULED' AND send_at <= $2)
                            OR (status = 'SENDING' AND lease_until < $2)
                         ORDER BY send_at, id LIMIT 1)
               AND (status = 'SCHEDULED' OR (status = 'SENDING' AND lease_until < $2))
             RETURNING {COLUMNS}, cursor"
        )))
        .bind((now + LEASE).timestamp_micros())
        .bind(now_us)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            let cursor: Option<String> = row.try_get("cursor")?;
            Ok((promotion_from_row(&row)?, cursor.unwrap_or_default()))
        })
        .transpose()
    }

    /// Sends every promotion whose time has come, one after the other. Promotions are the
    /// only notifications the daily cap counts, and only one sender fans out at a time
    /// in the whole deployment ([`SenderLock`]), so two promotions never decide the same
    /// user's allowance at once. When another sender is busy this returns at once: that
    /// sender goes on to every due promotion before it stops.
    pub async fn send_due(&self) -> anyhow::Result<Sent> {
        let mut sent = Sent::default();
        let Some(mut lock) = SenderLock::try_take(&self.db).await? else {
            tracing::debug!("another sender is fanning out promotions");
            return Ok(sent);
        };
        let result = async {
            while let Some((promotion, cursor)) = self.claim_next(self.clock.now()).await? {
                sent.notifications += self.fan_out(&promotion, cursor, &mut lock).await?;
                sent.promotions += 1;
            }
            anyhow::Ok(sent)
        }
        .await;
        lock.release().await;
        result
    }

    /// Decides the promotion for every opted-in recipient after `cursor`; returns the
    /// notifications created (in-app or email, now or after quiet hours).
    ///
    /// A reader task fetches pages of recipients in user-id order a page ahead, and up to
    /// [`Campaigns::parallel`] pages are decided at once, each in a transaction of its own
    /// (they touch different users). Pages finish in their order: the cursor moves past a
    /// page only once it and every page before it have committed. A sender that dies in
    /// between leaves the cursor before them: the next one decides them again and the
    /// dedupe keys make that a no-op for those already notified.
    #[tracing::instrument(skip_all, fields(promotion = %promotion.id))]
    async fn fan_out(
        &self,
        promotion: &Promotion,
        cursor: String,
        lock: &mut SenderLock,
    ) -> anyhow::Result<u64> {
        let started = std::time::Instant::now();
        let mut reached = 0u64;
        let parallel = self.parallel.max(1);
        let data = serde_json::json!({
            "promotionId": promotion.id,
            "category": promotion.category,
        });
        let pages = self.read_ahead(cursor);
        let decided = futures::stream::unfold(pages, |mut pages| async move {
            pages.recv().await.map(|page| (page, pages))
        })
        .map(|page| {
            let campaigns = self.clone();
            let promotion = promotion.clone();
            let data = data.clone();
            async move {
                let page = page?;
                let last = page.last().map(|r| r.user_id.to_string());
                // A task of its own, so that a page keeps going while the loop below
                // records the progress of the one before.
                let sent =
                    tokio::spawn(async move { campaigns.send_page(&promotion, &data, page).await })
                        .await??;
                anyhow::Ok((sent, last))
            }
        })
        .buffered(parallel);
        let mut decided = std::pin::pin!(decided);
        while let Some(page) = decided.next().await {
            let (sent, last) = page?;
            reached += sent;
            lock.still_held().await?;
            sqlx::query("UPDATE promotions SET cursor = $1, lease_until = $2 WHERE id = $3")
                .bind(last)
                .bind((self.clock.now() + LEASE).timestamp_micros())
                .bind(promotion.id.to_string())
                .execute(self.db.pool())
                .await?;
        }
        sqlx::query(
            "UPDATE promotions SET status = 'SENT', lease_until = NULL WHERE id = $1 AND status = 'SENDING'",
        )
        .bind(promotion.id.to_string())
        .execute(self.db.pool())
        .await?;
        metrics::counter!("notifications_campaign_notifications_total").increment(reached);
        tracing::info!(
            notifications = reached,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "promotion sent"
        );
        Ok(reached)
    }

    /// The opted-in recipients after `cursor`, a page at a time, read by a task that stays
    /// a page ahead of its reader; it stops at the end, at an error (handed on), or when
    /// the receiver is dropped.
    fn read_ahead(
        &self,
        mut cursor: String,
    ) -> tokio::sync::mpsc::Receiver<Result<Vec<Recipient>, sqlx::Error>> {
        let (pages, receiver) = tokio::sync::mpsc::channel(1);
        let campaigns = self.clone();
        tokio::spawn(async move {
            loop {
                let page = campaigns.recipients_after(&cursor).await;
                if let Ok(page) = &page {
                    match page.last() {
                        Some(last) => cursor = last.user_id.to_string(),
                        None => return,
                    }
                }
                let failed = page.is_err();
                if pages.send(page).await.is_err() || failed {
                    return;
                }
            }
        });
        receiver
    }

    /// The next [`Campaigns::batch_size`] recipients with promotions on, after `after`.
    async fn recipients_after(&self, after: &str) -> Result<Vec<Recipient>, sqlx::Error> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM recipients r WHERE r.promotions = $1 AND r.user_id > $2
             ORDER BY r.user_id LIMIT $3",
            columns_of("r")
        )))
        .bind(true)
        .bind(after)
        .bind(self.batch_size as i64)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(recipient_from_row)
        .collect()
    }

    /// Decides the promotion for one page of recipients (those of its category, if it has
    /// one) in one transaction; returns the notifications created.
    async fn send_page(
        &self,
        promotion: &Promotion,
        data: &serde_json::Value,
        page: Vec<Recipient>,
    ) -> anyhow::Result<u64> {
        let category = promotion.category.as_deref().map(str::to_lowercase);
        let category = category.as_deref();
        let mut tx = self.db.begin().await?;
        let interested = match category {
            Some(category) => interested_in(&mut tx, category, &page).await?,
            None => HashSet::new(),
        };
        let addressed: Vec<(Option<Recipient>, Draft)> = page
            .into_iter()
            .filter(|r| {
                category.is_none_or(|c| {
                    interested.contains(&r.user_id)
                        || r.preferences
                            .categories
                            .iter()
                            .any(|own| own.to_lowercase() == c)
                })
            })
            .map(|r| {
                let draft = Draft {
                    user_id: r.user_id,
                    notification_type: NotificationType::Promotion,
                    title: promotion.title.clone(),
                    body: promotion.body.clone(),
                    data: Some(data.clone()),
                    dedupe_key: format!("promotion:{}:{}", promotion.id, r.user_id),
                    every_channel: false,
                };
                (Some(r), draft)
            })
            .collect();
        let deliveries = self.notifier.deliver_all(&mut tx, &addressed).await?;
        let created = deliveries
            .iter()
            .filter(|d| {
                d.decision()
                    .is_some_and(|decision| !matches!(decision, Decision::Suppressed { .. }))
            })
            .count() as i64;
        sqlx::query("UPDATE promotions SET recipients = recipients + $1 WHERE id = $2")
            .bind(created)
            .bind(promotion.id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.notifier.committed_all(&deliveries).await;
        Ok(created as u64)
    }
}

/// The right to fan out promotions, held by one sender of the deployment at a time.
///
/// On PostgreSQL, a session-level advisory lock on a connection taken from the pool for
/// the sender's whole run: when the sender's process dies, its session ends and the lock
/// with it, and the next `promotions` run takes over (the promotion's lease says when).
/// Unlike a lock per recipient in each page's transaction it costs nothing per user and
/// cannot exhaust PostgreSQL's lock table (a page of 2,000 users held 2,000 locks). On
/// SQLite the service is one process whose writers take turns: there is nothing to hold.
struct SenderLock {
    connection: Option<PoolConnection<Any>>,
}

/// Advisory locks are per database: the key names the service's schema, so that
/// deployments (and tests) sharing a database do not wait for one another.
const SENDER_LOCK: &str = "hashtext('herald.promotions.sender:' || current_schema())";

impl SenderLock {
    async fn try_take(db: &Database) -> Result<Option<SenderLock>, sqlx::Error> {
        if db.backend() != Backend::Postgres {
            return Ok(Some(SenderLock { connection: None }));
        }
        let mut connection = db.pool().acquire().await?;
        let taken: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT pg_try_advisory_lock({SENDER_LOCK})"
        )))
        .fetch_one(&mut *connection)
        .await?;
        Ok(taken.then_some(SenderLock {
            connection: Some(connection),
        }))
    }

    /// Fails when the lock's session is gone: another sender may have taken over.
    async fn still_held(&mut self) -> Result<(), sqlx::Error> {
        if let Some(connection) = &mut self.connection {
            sqlx::query("SELECT 1").execute(&mut **connection).await?;
        }
        Ok(())
    }

    async fn release(mut self) {
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        let unlocked = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT pg_advisory_unlock({SENDER_LOCK})"
        )))
        .execute(&mut *connection)
        .await;
        if let Err(e) = unlocked {
            tracing::warn!(error = %e, "releasing the sender lock failed; closing its connection");
            drop(connection.detach());
        }
    }
}

impl Drop for SenderLock {
    /// Dropped unreleased (a cancelled or panicking sender): the connection is closed
    /// rather than returned to the pool, which would keep the lock for good.
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            drop(connection.detach());
        }
    }
}

/// Which of `recipients` showed interest in `category` (bought, carted, wished for or
/// viewed one of its products).
async fn interested_in(
    tx: &mut Tx,
    category: &str,
    recipients: &[Recipient],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let mut interested = HashSet::new();
    let sql = format!(
        "SELECT user_id FROM category_interests WHERE category = $1 AND user_id IN ({})",
        select_list(Backend::of(tx), 2)
    );
    for chunk in recipients.chunks(ROWS_PER_STATEMENT) {
        // Planned each time: a plan cached while the table was small would scan it.
        let users: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .persistent(false)
            .bind(category)
            .bind(json_list(chunk.iter().map(|r| r.user_id))?)
            .fetch_all(&mut **tx)
            .await?;
        interested.extend(users.iter().filter_map(|user| user.parse::<Uuid>().ok()));
    }
    Ok(interested)
}

/// The `promotions` job: sends the scheduled promotions whose time has come.
pub struct PromotionsJob(pub Campaigns);

#[async_trait]
impl Job for PromotionsJob {
    fn name(&self) -> &'static str {
        JOB_PROMOTIONS
    }

    async fn run(&self, _due: &JobDue) -> anyhow::Result<String> {
        let sent = self.0.send_due().await?;
        Ok(format!(
            "{} promotions, {} notifications",
            sent.promotions, sent.notifications
        ))
    }
}

#[derive(Clone)]
pub struct CampaignsState {
    pub campaigns: Campaigns,
    pub verifier: TokenVerifier,
}

impl FromRef<CampaignsState> for TokenVerifier {
    fn from_ref(state: &CampaignsState) -> TokenVerifier {
        state.verifier.clone()
    }
}

/// - `POST /promotions` `{"title","body","category"?,"sendAt"?}` → 201 the promotion; one
///   due now starts sending at once
/// - `GET /promotions?first=20` → newest first
///
/// Both for admins only, through the same [`PromotionsApi`] other services in this
/// process call directly.
pub fn router(state: CampaignsState) -> Router {
    Router::new()
        .route("/promotions", get(list).post(create))
        .route("/promotions/audience", get(audience))
        .with_state(state)
}

async fn create(
    State(state): State<CampaignsState>,
    Caller(claims): Caller,
    input: Result<Json<PromotionInput>, JsonRejection>,
) -> ApiResult<axum::response::Response> {
    // Before the request is read, so others learn nothing from its mistakes.
    may_manage_promotions(&claims)?;
    let Json(input) = input.map_err(|e| ApiError::bad_input(e.body_text()))?;
    let promotion = state.campaigns.create_promotion(&claims, &input).await?;
    Ok(created(promotion))
}

async fn list(
    State(state): State<CampaignsState>,
    Caller(claims): Caller,
    query: Result<Query<PromotionsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<Promotion>>> {
    may_manage_promotions(&claims)?;
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    Ok(Json(state.campaigns.promotions(&claims, &query).await?))
}

async fn audience(
    State(state): State<CampaignsState>,
    Caller(claims): Caller,
    query: Result<Query<AudienceQuery>, QueryRejection>,
) -> ApiResult<Json<Audience>> {
    may_manage_promotions(&claims)?;
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    let users = state.campaigns.promotion_audience(&claims, &query).await?;
    Ok(Json(Audience { users }))
}
