//! Promotions, as other services use them: admins schedule campaigns and list them.
//! [`PromotionsApi`] is the one way to call them, with two implementations: [`Campaigns`]
//! itself, in the same process (no HTTP, no JSON, no second token check), and
//! [`PromotionsOverHttp`], across processes with a service credential. The HTTP routes of
//! `campaign` serve the second with the first, so both run the same code.

use herald_platform::auth::Claims;
use herald_platform::http::ServiceClient;
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};

use crate::campaign::{Campaigns, Promotion, PromotionInput};

/// How many promotions to list: 1 to 100, 20 when left out.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PromotionsQuery {
    pub first: Option<i64>,
}

/// Whose audience to size: a category's, or (None) everyone's.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct AudienceQuery {
    pub category: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    pub users: i64,
}

/// The promotions operations, for admins only (FORBIDDEN for anyone else).
#[async_trait::async_trait]
pub trait PromotionsApi: Send + Sync + 'static {
    /// Schedules a campaign for its `send_at` (or now: it starts sending at once);
    /// BAD_USER_INPUT for an invalid one.
    async fn create_promotion(
        &self,
        acting: &Claims,
        input: &PromotionInput,
    ) -> ApiResult<Promotion>;
    /// The newest first, with their status and recipients so far.
    async fn promotions(
        &self,
        acting: &Claims,
        query: &PromotionsQuery,
    ) -> ApiResult<Vec<Promotion>>;
    /// How many users a promotion created now would reach: those with promotions on (and
    /// with a category, who prefer it or showed interest in it, as the campaign decides);
    /// read from a kept count, not counted.
    async fn promotion_audience(&self, acting: &Claims, query: &AudienceQuery) -> ApiResult<i64>;
}

/// Only admins manage promotions.
pub(crate) fn may_manage_promotions(acting: &Claims) -> ApiResult<()> {
    if acting.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins manage promotions"))
    }
}

#[async_trait::async_trait]
impl PromotionsApi for Campaigns {
    async fn create_promotion(
        &self,
        acting: &Claims,
        input: &PromotionInput,
    ) -> ApiResult<Promotion> {
        may_manage_promotions(acting)?;
        let promotion = self.create(input.clone(), acting.sub).await?;
        if promotion.send_at <= self.clock.now() {
            // Due now: send it without waiting for the scheduler's next tick. Should this
            // process stop midway, the `promotions` job takes over when the lease runs out.
            let campaigns = self.clone();
            tokio::spawn(async move {
                if let Err(e) = campaigns.send_due().await {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "sending promotions failed; the scheduler retries"
                    );
                }
            });
        }
        Ok(promotion)
    }

    async fn promotions(
        &self,
        acting: &Claims,
        query: &PromotionsQuery,
    ) -> ApiResult<Vec<Promotion>> {
        may_manage_promotions(acting)?;
        let first = query.first.unwrap_or(20);
        if !(1..=100).contains(&first) {
            return Err(ApiError::bad_input("first must be between 1 and 100"));
        }
        Ok(self.list(first).await?)
    }

    async fn promotion_audience(&self, acting: &Claims, query: &AudienceQuery) -> ApiResult<i64> {
        may_manage_promotions(acting)?;
        let category = crate::campaign::promotion_category(query.category.as_deref())?;
        Ok(self.audience(category.as_deref()).await?)
    }
}

/// The promotions of a notifications service in another process.
#[derive(Clone, Debug)]
pub struct PromotionsOverHttp {
    service: ServiceClient,
}

impl PromotionsOverHttp {
    /// `service` calls the notifications service.
    pub fn new(service: ServiceClient) -> PromotionsOverHttp {
        PromotionsOverHttp { service }
    }
}

#[async_trait::async_trait]
impl PromotionsApi for PromotionsOverHttp {
    async fn create_promotion(
        &self,
        acting: &Claims,
        input: &PromotionInput,
    ) -> ApiResult<Promotion> {
        self.service.post("/promotions", input, Some(acting)).await
    }

    async fn promotions(
        &self,
        acting: &Claims,
        query: &PromotionsQuery,
    ) -> ApiResult<Vec<Promotion>> {
        let path = match query.first {
            Some(first) => format!("/promotions?first={first}"),
            None => "/promotions".to_owned(),
        };
        self.service.get(&path, Some(acting)).await
    }

    async fn promotion_audience(&self, acting: &Claims, query: &AudienceQuery) -> ApiResult<i64> {
        let mut url = url::Url::parse("http://notifications.invalid/promotions/audience")
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        if let Some(category) = &query.category {
            url.query_pairs_mut().append_pair("category", category);
        }
        let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        let audience: Audience = self.service.get(&path, Some(acting)).await?;
        Ok(audience.users)
    }
}
